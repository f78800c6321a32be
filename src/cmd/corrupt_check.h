/* corrupt_check: --experimental-initial-corrupt-check for `cairn`, the
 * asking half of etcd's CheckInitialHashKV (the server takes the local
 * hash; this asks the peers through the etcd API). */
#ifndef CAIRN_CMD_CORRUPT_CHECK_H
#define CAIRN_CMD_CORRUPT_CHECK_H

#include "server/server.h"

/* A server_initial_check_fn; arg is the struct cairn_log to report to.
 * Asks every peer with client URLs for Maintenance/HashKV at c->revision
 * (one blocking client per peer, c->timeout_ms per call). A peer whose
 * hash differs at the same compact revision is a mismatch; a peer that
 * cannot answer (down, behind, compacted, another compact revision) is
 * logged and skipped, as etcd does. Returns 0, or CAIRN_ECORRUPT with
 * etcd's text "<id> found data inconsistency with peers" in msg. */
int cairn_corrupt_check(void *arg, const struct server_hash_check *c,
                        struct cairn_errmsg *msg);

#endif
