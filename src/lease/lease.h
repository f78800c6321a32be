/* lease: etcd v3.4's lessor over the mvcc store: grant, revoke (every
 * attached key deleted in one revision), attach and detach through Put,
 * time-to-live with keys, list, expiry by the caller's clock, and
 * checkpoints of the remaining TTL so a restart or a leader change neither
 * shortens a lease nor extends it without end.
 *
 * State changes (grant, revoke, checkpoint) are applied from the log on the
 * apply thread inside an mvcc batch, and persisted in the same LMDB
 * transaction as the key changes (mvcc's ext table). The expiry clock runs
 * only on the primary (the leader): lease_promote starts it from each
 * lease's remaining TTL, lease_demote stops it. The loop thread asks
 * lease_expired and lease_checkpoints_due and proposes revokes and
 * checkpoints; it may call lease_renew, lease_time_to_live and lease_list.
 * Every call is thread-safe (one mutex). Times are milliseconds on the
 * caller's clock: no clock is read inside. The in-memory state follows the
 * applied calls at once: after an aborted mvcc batch, close and reopen the
 * lessor so it reloads what was committed. */
#ifndef CAIRN_LEASE_LEASE_H
#define CAIRN_LEASE_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc/mvcc.h"
#include "util/util.h"

/* etcd's MaxLeaseTTL, in seconds. */
#define LEASE_TTL_MAX 9000000000LL

struct lease_options {
    int64_t min_ttl_s;              /* grants below are raised to it */
    int64_t checkpoint_interval_ms; /* 0: 5 minutes, etcd's default */
};

struct lessor;

/* Opens the lessor over s (borrowed; outlives the lessor), loading the
 * leases persisted there, and installs the mvcc lease hooks. Not primary. */
int lease_open(struct mvcc_store *s, const struct lease_options *o,
               struct lessor **out);
void lease_close(struct lessor *l);

/* ---- applied from the log (apply thread, inside an mvcc batch) ---- */

/* Grants a lease. id 0 picks the lowest unused id above the last picked
 * one (deterministic on every member); *granted_id and *granted_ttl_s
 * receive the result (the TTL raised to the minimum). Errors:
 * CAIRN_ELEASEEXISTS, CAIRN_ELEASETTLTOOLARGE, CAIRN_EQUOTA (NOSPACE
 * alarm), CAIRN_EIO. now_ms starts the expiry clock on the primary. */
int lease_grant(struct lessor *l, int64_t id, int64_t ttl_s, int64_t now_ms,
                int64_t *granted_id, int64_t *granted_ttl_s);
/* Revokes: deletes every attached key in one revision, then the lease.
 * CAIRN_ELEASENOTFOUND if unknown. */
int lease_revoke(struct lessor *l, int64_t id);
/* Records a checkpoint of the remaining TTL (0 clears it, as a renew
 * does). Unknown ids are ignored, as etcd's. */
int lease_checkpoint(struct lessor *l, int64_t id, int64_t remaining_ttl_s);

/* ---- the primary's clock (loop thread) ---- */

/* Becomes primary at now_ms: every lease expires at now + its remaining
 * TTL (the checkpointed one if set, else its TTL) + extend_ms; with 1,000
 * leases or more, expiries crowding one second are pushed later so that at
 * most 750 fall in each second (etcd's Promote). */
void lease_promote(struct lessor *l, int64_t now_ms, int64_t extend_ms);
/* Stops the clock: leases never expire on a non-primary. */
void lease_demote(struct lessor *l);
bool lease_is_primary(struct lessor *l);
/* Renews (primary only): expiry = now + TTL. *ttl_s receives the TTL;
 * *clear_checkpoint tells the caller to propose a checkpoint of 0 because
 * a remaining TTL was recorded (etcd). CAIRN_ENOTLEADER when not primary,
 * CAIRN_ELEASENOTFOUND when unknown or already expired. */
int lease_renew(struct lessor *l, int64_t id, int64_t now_ms, int64_t *ttl_s,
                bool *clear_checkpoint);
/* Up to max ids of leases expired at now_ms, oldest expiry first (ties by
 * id); they stay expired, and are returned again, until revoked: the
 * caller proposes their revocation and paces retries. O(max log max).
 * Returns how many. */
size_t lease_expired(struct lessor *l, int64_t now_ms, int64_t *ids,
                     size_t max);
/* Up to max (id, remaining TTL) pairs whose checkpoint is due at now_ms,
 * earliest due first (leases with more than one interval to go get one per
 * interval; an expired lease gets none until the next promote); the caller
 * proposes them as one checkpoint entry. Returns how many. now_ms must not
 * go back between calls. */
size_t lease_checkpoints_due(struct lessor *l, int64_t now_ms, int64_t *ids,
                             int64_t *remaining_ttl_s, size_t max);

/* ---- queries (any thread) ---- */

struct lease_info {
    int64_t id;
    int64_t granted_ttl_s;
    int64_t ttl_s; /* remaining: by the clock on the primary, else the
                      checkpointed remaining TTL or the granted one */
};
/* Time-to-live; with keys, cb receives each attached key (at most
 * max_keys) in key order. CAIRN_ELEASENOTFOUND if unknown. */
int lease_time_to_live(struct lessor *l, int64_t id, int64_t now_ms,
                       struct lease_info *info, size_t max_keys, void *arg,
                       mvcc_lease_key_cb cb);
/* Lists lease ids in ascending order, up to max; returns how many there
 * are in all. */
size_t lease_list(struct lessor *l, int64_t *ids, size_t max);
bool lease_exists(struct lessor *l, int64_t id);

/* For tests: leases visited or moved by the lessor so far (scans, shifts,
 * heap and hash steps), so a test can bound the work of an operation. */
uint64_t lease__work_steps(struct lessor *l);

#endif
