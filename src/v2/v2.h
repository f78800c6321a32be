/* v2: etcd 3.4's v2 key store (etcdserver/api/v2store) kept in mvcc's ext
 * table, so that it is written in the apply batch that stores the
 * consistent index, travels in snapshots and survives restarts
 * (docs/v2.md).
 *
 * Every request is applied from the log on every member (v2_apply, inside
 * a batch, apply thread), reads included: the answer is the JSON body etcd
 * prints, built at apply time. The watch history (the last
 * V2_HISTORY_MAX events) is kept in the store too and read with
 * v2_history_scan from any thread.
 *
 * Paths are cleaned by v2_path_clean before proposing ("/a//b/" → "/a/b");
 * the root "/" is read-only, as in etcd. Expiry is decided by the
 * proposer's wall clock: a key's expiration is absolute (ns since the
 * epoch) and a SYNC request carrying the leader's time expires what is
 * due, so every member's store stays identical.
 *
 * Ownership: requests are borrowed for the call; result bodies are
 * allocated in the arena given (valid until it is reset). */
#ifndef CAIRN_V2_V2_H
#define CAIRN_V2_V2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc/mvcc.h"
#include "util/util.h"

/* ext tables: nodes by path, TTL index, history by index, meta. */
#define V2_TABLE_NODE 'K'
#define V2_TABLE_TTL 'X'
#define V2_TABLE_HISTORY 'H'
#define V2_TABLE_META 'J'

/* Longest path (LMDB keys are at most 511 bytes; a TTL entry adds 9). */
#define V2_PATH_MAX 400

/* etcd's EventHistory capacity. */
#define V2_HISTORY_MAX 1000

enum v2_op {
    V2_OP_GET = 1,
    V2_OP_PUT = 2,
    V2_OP_POST = 3,
    V2_OP_DELETE = 4,
    V2_OP_SYNC = 5,
};
#define V2_OP_MAX 5

enum v2_prev_exist { V2_PREV_UNSET = 0, V2_PREV_FALSE = 1, V2_PREV_TRUE = 2 };

struct v2_req {
    uint8_t op;         /* enum v2_op */
    uint8_t prev_exist; /* enum v2_prev_exist */
    bool dir, recursive, sorted, refresh;
    /* GET only, not in the entry: through Raft (etcd's QGET) when set,
     * else from the local store (node_v2) */
    bool quorum;
    const uint8_t *path; /* cleaned: "/" or "/a/b" */
    size_t path_len;
    const uint8_t *value;
    size_t value_len;
    const uint8_t *prev_value; /* prev_value_len 0: not compared */
    size_t prev_value_len;
    uint64_t prev_index;   /* 0: not compared */
    int64_t expiration_ns; /* 0: permanent */
    int64_t now_ns;        /* proposer's wall clock; SYNC: the cutoff */
};

/* etcd's v2error codes. */
enum v2_ecode {
    V2_E_KEY_NOT_FOUND = 100,
    V2_E_TEST_FAILED = 101,
    V2_E_NOT_FILE = 102,
    V2_E_NOT_DIR = 104,
    V2_E_NODE_EXIST = 105,
    V2_E_ROOT_RONLY = 107,
    V2_E_DIR_NOT_EMPTY = 108,
    V2_E_PREV_VALUE_REQUIRED = 201,
    V2_E_TTL_NAN = 202,
    V2_E_INDEX_NAN = 203,
    V2_E_INVALID_FIELD = 209,
    V2_E_INVALID_FORM = 210,
    V2_E_REFRESH_VALUE = 211,
    V2_E_REFRESH_TTL_REQUIRED = 212,
    V2_E_RAFT_INTERNAL = 300,
    V2_E_LEADER_ELECT = 301,
    V2_E_EVENT_INDEX_CLEARED = 401,
};

/* What a request answers: HTTP status, the etcd index for X-Etcd-Index
 * and the JSON body with etcd's trailing newline. */
struct v2_result {
    int status;
    uint64_t etcd_index;
    const char *body;
    size_t body_len;
    uint64_t raft_index; /* the entry's (X-Raft-Index), set by node */
};

/* Cleans a user path as Go's path.Clean("/" + p) into out (at least
 * len + 2 bytes); returns the cleaned length. */
size_t v2_path_clean(const char *p, size_t len, char *out);

/* Checks a decoded request: 0 or CAIRN_EINVAL. */
int v2_req_check(const struct v2_req *q);

/* Applies q inside a batch. Request errors (Key not found...) are
 * answers, not failures: the return is 0 or a fatal store error. */
int v2_apply(struct mvcc_store *s, const struct v2_req *q, struct mvcc_arena *a,
             struct v2_result *out);

/* A GET served from the committed store (etcd's GET without
 * quorum=true), on one read snapshot: the same answer v2_apply would give
 * at the applied index. Any thread. */
int v2_read(struct mvcc_store *s, const struct v2_req *q, struct mvcc_arena *a,
            struct v2_result *out);

/* Counts one of etcd's internal v2 writes (a membership change under
 * /0/members in etcd): the index moves, no event is visible. In a batch. */
int v2_bump_index(struct mvcc_store *s);

/* etcd's one write of /0/version when its cluster version is first set
 * (once every member published): the index moves once in the store's
 * life, later calls do nothing ('J' "v" remembers it). In a batch. */
int v2_cluster_version_set(struct mvcc_store *s);

/* Whether any key has a TTL (the leader then proposes SYNC). Any thread,
 * committed state. */
bool v2_has_ttl_keys(struct mvcc_store *s);

/* The current etcd index (committed state, any thread). */
uint64_t v2_current_index(struct mvcc_store *s);

/* Where a history scan stands. */
struct v2_scan_pos {
    uint64_t index;      /* the store's current etcd index */
    uint64_t found;      /* the reported event's index; 0: none */
    uint64_t raft_index; /* the member's applied index (not set here) */
};

/* etcd's EventHistory.scan: the first event at or after since (0: after
 * the current index) on path (or under it, recursive); refreshes are never
 * reported. live: the events are ones etcd would notify a waiting watcher
 * of, so a key hidden below path ('_' starting an element past it) is
 * skipped, as etcd's notifyWatchers skips it. pos receives
 * the current index and the reported event's. Returns 0 with the event's JSON
 * (and a newline) in out; CAIRN_ENOTFOUND when none yet (wait);
 * CAIRN_ECOMPACTED with etcd's error 401 body in out when since is older than
 * the history. Committed state, any thread. */
int v2_history_scan(struct mvcc_store *s, const char *path, size_t path_len,
                    bool recursive, bool live, uint64_t since, struct buf *out,
                    struct v2_scan_pos *pos);

/* etcd's error body: {"errorCode":..,"message":..,"cause":..,"index":..}
 * and a newline, appended to out; returns the HTTP status for code. */
int v2_error_json(struct buf *out, int code, const char *cause,
                  size_t cause_len, uint64_t index);
/* A JSON string (quotes included) escaped as Go's encoding/json does. */
int v2_json_string(struct buf *out, const void *s, size_t len);

#endif
