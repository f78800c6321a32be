/* mvcc: the revisioned key space on LMDB with etcd v3.4's semantics (range,
 * put, delete range, txn, compaction, hashes, defragmentation, quota) and
 * its watchers. It knows nothing of Raft: the member applies committed
 * entries in order, and each apply batch records the consistent index in the
 * same LMDB transaction as the data it produced.
 *
 * Threads. One apply thread owns the write side: mvcc_batch_begin ... one or
 * more write requests ... mvcc_batch_commit, plus compaction steps,
 * defragmentation and the ext table used by lease/. Reads (mvcc_range,
 * mvcc_hash_kv, mvcc_hash, mvcc_status) may run on any thread at the same
 * time as the writer: each uses its own LMDB read transaction and sees the
 * last committed batch, never a half-applied one. Watch hubs belong to one
 * thread (the server's loop) and pull committed events from the store, so a
 * writer never waits for a watcher (docs/mvcc.md, "Watchers").
 *
 * Memory. Responses are built in a caller-owned struct mvcc_arena; every
 * pointer in a response is valid until that arena is reset or freed.
 * Requests are borrowed for the duration of the call only.
 *
 * Semantics (etcd v3.4 mvcc/ and etcdserver/apply.go): revision 1 is the
 * empty store; every write request that changes something makes one new main
 * revision, its changes numbered by sub-revision; a range_end of "\0" means
 * every key >= key; an empty range_end means the single key. */
#ifndef CAIRN_MVCC_MVCC_H
#define CAIRN_MVCC_MVCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef int64_t mvcc_rev;

/* Keys may have any length, as etcd's (its request size bounds them);
 * keys over 479 bytes take a slower path (docs/mvcc.md, "Long keys"). */

/* ---- arena for responses ---- */

/* A chunked bump allocator. Not thread-safe; one owner. */
struct mvcc_arena {
    struct mvcc__chunk *head;
    size_t bytes; /* total bytes handed out, for size estimates */
};
void mvcc_arena_init(struct mvcc_arena *a);
/* Frees every chunk; pointers into the arena become invalid. */
void mvcc_arena_free(struct mvcc_arena *a);
/* Like free then init, but keeps the first chunk for reuse. */
void mvcc_arena_reset(struct mvcc_arena *a);
/* n bytes aligned to 8, or NULL when out of memory. */
void *mvcc_arena_alloc(struct mvcc_arena *a, size_t n);

/* ---- key-values and requests (mirrors of etcd's protobuf messages) ---- */

struct mvcc_kv {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value; /* NULL with value_len 0 for keys_only */
    size_t value_len;
    mvcc_rev create_rev;
    mvcc_rev mod_rev;
    int64_t version;
    int64_t lease;
};

/* Numbering as etcd's RangeRequest.SortOrder / SortTarget. */
enum mvcc_sort_order {
    MVCC_SORT_NONE = 0,
    MVCC_SORT_ASCEND = 1,
    MVCC_SORT_DESCEND = 2
};
enum mvcc_sort_target {
    MVCC_SORT_KEY = 0,
    MVCC_SORT_VERSION = 1,
    MVCC_SORT_CREATE = 2,
    MVCC_SORT_MOD = 3,
    MVCC_SORT_VALUE = 4
};

struct mvcc_range_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *end; /* range_end; end_len 0: key only; "\0": >= key */
    size_t end_len;
    int64_t limit;     /* 0: none */
    mvcc_rev revision; /* <= 0: current */
    enum mvcc_sort_order sort_order;
    enum mvcc_sort_target sort_target;
    bool keys_only;
    bool count_only;
    mvcc_rev min_mod_rev, max_mod_rev; /* 0: no bound */
    mvcc_rev min_create_rev, max_create_rev;
};
struct mvcc_range_resp {
    mvcc_rev header_rev; /* the store's revision, not the one read at */
    struct mvcc_kv *kvs;
    size_t n_kvs;
    bool more;
    int64_t count; /* keys in the whole range at that revision */
};

struct mvcc_put_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *value;
    size_t value_len;
    int64_t lease;
    bool prev_kv;
    bool ignore_value;
    bool ignore_lease;
};
struct mvcc_put_resp {
    mvcc_rev header_rev;
    struct mvcc_kv *prev_kv; /* NULL: none asked or none existed */
};

struct mvcc_delete_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *end;
    size_t end_len;
    bool prev_kv;
};
struct mvcc_delete_resp {
    mvcc_rev header_rev;
    int64_t deleted;
    struct mvcc_kv *prev_kvs;
    size_t n_prev_kvs;
};

/* Numbering as etcd's Compare.CompareResult / CompareTarget. */
enum mvcc_cmp_result {
    MVCC_CMP_EQUAL = 0,
    MVCC_CMP_GREATER = 1,
    MVCC_CMP_LESS = 2,
    MVCC_CMP_NOT_EQUAL = 3
};
enum mvcc_cmp_target {
    MVCC_CMP_VERSION = 0,
    MVCC_CMP_CREATE = 1,
    MVCC_CMP_MOD = 2,
    MVCC_CMP_VALUE = 3,
    MVCC_CMP_LEASE = 4
};
struct mvcc_compare {
    enum mvcc_cmp_result result;
    enum mvcc_cmp_target target;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *end;
    size_t end_len;
    int64_t number; /* version, create/mod revision or lease */
    const uint8_t *value;
    size_t value_len;
};

enum mvcc_op_type {
    MVCC_OP_RANGE = 1,
    MVCC_OP_PUT = 2,
    MVCC_OP_DELETE = 3,
    MVCC_OP_TXN = 4
};
struct mvcc_txn_req;
struct mvcc_op {
    enum mvcc_op_type type;
    union {
        struct mvcc_range_req range;
        struct mvcc_put_req put;
        struct mvcc_delete_req del;
        const struct mvcc_txn_req *txn;
    } u;
};
struct mvcc_txn_req {
    const struct mvcc_compare *compares;
    size_t n_compares;
    const struct mvcc_op *success;
    size_t n_success;
    const struct mvcc_op *failure;
    size_t n_failure;
};
struct mvcc_txn_resp;
struct mvcc_op_resp {
    enum mvcc_op_type type;
    union {
        struct mvcc_range_resp range;
        struct mvcc_put_resp put;
        struct mvcc_delete_resp del;
        struct mvcc_txn_resp *txn;
    } u;
};
struct mvcc_txn_resp {
    mvcc_rev header_rev;
    bool succeeded;
    struct mvcc_op_resp *responses;
    size_t n_responses;
};

/* ---- the store ---- */

/* Hooks the lease module installs so that puts can check lease ids
 * (etcd's lessor.Lookup). Called on the apply thread only. */
struct mvcc_lease_hooks {
    bool (*exists)(void *arg, int64_t lease_id);
    void *arg;
};

/* Called on the apply thread after a batch, a compaction step or a
 * snapshot restore was committed, with the store's revision: the place to
 * wake the loop (uv_async_send) so that it polls its watch hubs. Must not
 * call back into the store. */
typedef void (*mvcc_commit_cb)(void *arg, mvcc_rev rev);

/* Where a test may inject an LMDB failure (mvcc_options.fault). */
enum mvcc_fault_site {
    MVCC_FAULT_WRITE = 1, /* a record written by a batch (kv or ext) */
    MVCC_FAULT_SYNC = 2,  /* mvcc_sync's mdb_env_sync */
    /* A compaction step's deletes (copy-on-write needs free pages): the
     * step's transaction is aborted, nothing of it committed. */
    MVCC_FAULT_COMPACT = 3,
    /* A snapshot restore, before the image replaces the store's file:
     * the store is left as it was. */
    MVCC_FAULT_RESTORE = 4,
    /* A defragmentation, after its copy was written and before the swap:
     * the copy is removed, the store is left as it was. */
    MVCC_FAULT_DEFRAG = 5,
};
/* Returns the LMDB or errno code that call fails with (MDB_MAP_FULL, EIO),
 * or 0 to let it run. */
typedef int (*mvcc_fault_cb)(void *arg, int site);

struct mvcc_options {
    const char *dir;          /* directory holding the LMDB files; created */
    size_t quota_bytes;       /* 0: 2 GiB, etcd's default quota */
    size_t map_bytes;         /* 0: quota + headroom (see docs/mvcc.md) */
    bool no_meta_sync;        /* MDB_NOMETASYNC instead of MDB_NOSYNC */
    struct cairn_log *log;    /* borrowed, may be NULL */
    mvcc_commit_cb on_commit; /* may be NULL */
    void *on_commit_arg;
    /* May be NULL. Each batch's LMDB commit and each mvcc_sync are timed
     * into it: etcd's etcd_disk_backend_commit_duration_seconds. Borrowed;
     * outlives the store. */
    struct cairn_hist *commit_hist;
    /* Test only (the whole-member simulation runs the normal build), NULL
     * elsewhere: a full map or a failed fdatasync injected where LMDB
     * would report it, so that mvcc's own error paths run. One pointer
     * test per record written. */
    mvcc_fault_cb fault;
    void *fault_arg;
#ifdef CAIRN_FAULTS
    /* Test only: keep this many low bits of a long key's tail hash (0:
     * all), so that long keys collide (docs/mvcc.md, "Long keys"). */
    unsigned long_key_hash_bits;
#endif
};

struct mvcc_store;

/* Opens (creating when missing) the store in opts->dir. The store owns
 * nothing of opts but copies dir. Returns 0, CAIRN_EIO, CAIRN_ENOMEM,
 * CAIRN_ECORRUPT, with text in em. */
int mvcc_open(const struct mvcc_options *opts, struct mvcc_store **out,
              struct cairn_errmsg *em);
/* Closes the store. No call may be in flight; an open batch is aborted. */
void mvcc_close(struct mvcc_store *s);

/* Installs the lease hooks (apply thread, before the first batch). */
void mvcc_set_lease_hooks(struct mvcc_store *s,
                          const struct mvcc_lease_hooks *hooks);

/* Status figures, any thread. */
struct mvcc_status {
    mvcc_rev rev;              /* current (committed) revision */
    mvcc_rev compact_rev;      /* scheduled compaction: reads below fail */
    mvcc_rev compact_done_rev; /* physically finished compaction */
    uint64_t consistent_index;
    uint64_t db_bytes;     /* file size in use (LMDB high-water mark) */
    uint64_t in_use_bytes; /* db_bytes minus free pages: what the quota
                              charges */
    bool nospace_alarm;
};
int mvcc_status_get(struct mvcc_store *s, struct mvcc_status *st);
/* The current (committed) revision, any thread; cheap (no transaction). */
mvcc_rev mvcc_current_rev(struct mvcc_store *s);
/* The consistent index stored with the last committed batch, any thread;
 * cheap (no transaction): what the applier needs per batch. */
uint64_t mvcc_consistent_index(struct mvcc_store *s);

/* Operation counters with etcd's meanings (mvcc/metrics_txn.go,
 * key_index.go), any thread: puts, delete ranges and ranges executed
 * (reads included; a txn's compares count as ranges, as etcd reads them),
 * txns of more than one of those, and live keys (stored with each batch
 * and read at open, after a restore or a defragmentation). */
struct mvcc_op_counts {
    uint64_t puts;    /* etcd_mvcc_put_total */
    uint64_t deletes; /* etcd_mvcc_delete_total */
    uint64_t ranges;  /* etcd_mvcc_range_total */
    uint64_t txns;    /* etcd_mvcc_txn_total */
    int64_t keys;     /* etcd_debugging_mvcc_keys_total */
};
void mvcc_op_counts_get(struct mvcc_store *s, struct mvcc_op_counts *out);

/* ---- apply side (the apply thread only) ---- */

/* Starts a write batch (one LMDB write transaction). */
int mvcc_batch_begin(struct mvcc_store *s);
/* Commits the batch with the consistent index of its last entry. Without a
 * sync this is durable only after mvcc_sync (MDB_NOSYNC). Any error leaves
 * the batch aborted: the member must replay from the stored index. */
int mvcc_batch_commit(struct mvcc_store *s, uint64_t consistent_index);
void mvcc_batch_abort(struct mvcc_store *s);
/* Flushes LMDB to disk (fdatasync). A failure returns CAIRN_ESYNC and must
 * stop the member. Apply thread, outside a batch. */
int mvcc_sync(struct mvcc_store *s);

/* Write requests, each inside a batch and each its own revision if it
 * changes anything. A request
 * that fails after writing something (I/O or memory) fails the batch: later
 * requests return CAIRN_EIO and the commit refuses. Other errors change
 * nothing: CAIRN_EKEYNOTFOUND (ignore_value or ignore_lease without the key),
 * CAIRN_ELEASENOTFOUND, CAIRN_EQUOTA (while the NOSPACE alarm is set),
 * CAIRN_EDUPLICATEKEY, CAIRN_EVALUEPROVIDED, CAIRN_ELEASEPROVIDED,
 * CAIRN_EEMPTYKEY, CAIRN_EREVCOMPACTED and CAIRN_EFUTUREREV (a range inside a
 * txn), CAIRN_ENOMEM, CAIRN_EIO. */
int mvcc_put(struct mvcc_store *s, const struct mvcc_put_req *req,
             struct mvcc_arena *a, struct mvcc_put_resp *resp);
int mvcc_delete_range(struct mvcc_store *s, const struct mvcc_delete_req *req,
                      struct mvcc_arena *a, struct mvcc_delete_resp *resp);
int mvcc_txn(struct mvcc_store *s, const struct mvcc_txn_req *req,
             struct mvcc_arena *a, struct mvcc_txn_resp *resp);
/* etcd's request validation (v3rpc checkTxnRequest and checkIntervals):
 * more than max_ops compares or operations in a branch
 * (CAIRN_ETOOMANYOPS; nested txns get what is left; etcd's --max-txn-ops
 * is 128), an empty key, a value with ignore_value, a lease with
 * ignore_lease, a key put twice or put inside a deleted range of the same
 * txn. The api layer calls it before proposing; mvcc_txn calls it too
 * without an operation limit. Any thread. */
int mvcc_txn_validate(const struct mvcc_txn_req *req, size_t max_ops);

/* Schedules compaction at rev: reads below rev fail with
 * CAIRN_EREVCOMPACTED from now on; the history is dropped by
 * mvcc_compact_step. Inside a batch. CAIRN_EREVCOMPACTED if rev <= the
 * compacted revision, CAIRN_EFUTUREREV if rev > the current one. */
int mvcc_compact(struct mvcc_store *s, mvcc_rev rev, mvcc_rev *header_rev);
/* Runs one step of the scheduled compaction in its own write transaction,
 * visiting at most max_records records, so writers between steps never
 * stall long. *done is true when nothing is left (compact_done_rev then
 * equals compact_rev: etcd's "physical" compaction). Outside a batch. */
int mvcc_compact_step(struct mvcc_store *s, size_t max_records, bool *done);
/* Whether the scheduled compaction has history left to drop (committed
 * state; two meta reads). Any thread; false on a read error. */
bool mvcc_compact_pending(struct mvcc_store *s);

/* Deletes, in one revision, every key attached to lease_id (lease revoke).
 * *deleted receives how many. Inside a batch. */
int mvcc_lease_revoke_keys(struct mvcc_store *s, int64_t lease_id,
                           int64_t *deleted);

/* The ext table: small records other modules (lease/) keep in the same
 * LMDB transaction as the kv changes. table is a one-byte namespace. Put and
 * delete inside a batch; scan any time outside (a read transaction). */
int mvcc_ext_put(struct mvcc_store *s, uint8_t table, const void *key,
                 size_t key_len, const void *val, size_t val_len);
int mvcc_ext_del(struct mvcc_store *s, uint8_t table, const void *key,
                 size_t key_len);
/* Calls cb for every record of table in key order; cb returning non-zero
 * stops the scan and is returned. Pointers valid during the call only. */
typedef int (*mvcc_ext_scan_cb)(void *arg, const uint8_t *key, size_t key_len,
                                const uint8_t *val, size_t val_len);
int mvcc_ext_scan(struct mvcc_store *s, uint8_t table, void *arg,
                  mvcc_ext_scan_cb cb);
/* The same inside a batch, on the batch's thread: the batch's own view,
 * its uncommitted writes included (an applier reading what earlier
 * requests of its batch wrote). */
int mvcc_ext_scan_batch(struct mvcc_store *s, uint8_t table, void *arg,
                        mvcc_ext_scan_cb cb);
/* The same two over the records whose key starts with prefix (n bytes;
 * NULL, 0: all): one seek, then the matching run only. */
int mvcc_ext_scan_prefix(struct mvcc_store *s, uint8_t table,
                         const void *prefix, size_t n, void *arg,
                         mvcc_ext_scan_cb cb);
int mvcc_ext_scan_prefix_batch(struct mvcc_store *s, uint8_t table,
                               const void *prefix, size_t n, void *arg,
                               mvcc_ext_scan_cb cb);
/* The records of table from the first key >= start (n bytes) to the
 * table's end, committed state (any thread). */
int mvcc_ext_scan_from(struct mvcc_store *s, uint8_t table, const void *start,
                       size_t n, void *arg, mvcc_ext_scan_cb cb);
/* The ext table on a reader's snapshot (mvcc_reader_begin; any thread,
 * the reader's): one record (*val valid until mvcc_reader_end;
 * CAIRN_ENOTFOUND when absent), or the records under a prefix. */
struct mvcc_reader;
int mvcc_reader_ext_get(struct mvcc_reader *r, uint8_t table, const void *key,
                        size_t key_len, const uint8_t **val, size_t *val_len);
int mvcc_reader_ext_scan_prefix(struct mvcc_reader *r, uint8_t table,
                                const void *prefix, size_t n, void *arg,
                                mvcc_ext_scan_cb cb);
/* One record inside a batch, as mvcc_ext_scan_batch sees it: *val points
 * into the map, valid until the next write of the batch or its end.
 * CAIRN_ENOTFOUND when absent. */
int mvcc_ext_get_batch(struct mvcc_store *s, uint8_t table, const void *key,
                       size_t key_len, const uint8_t **val, size_t *val_len);
/* Calls cb(arg, key, key_len) for each key attached to lease_id (at most
 * max keys); committed state, any thread. */
typedef int (*mvcc_lease_key_cb)(void *arg, const uint8_t *key, size_t key_len);
int mvcc_lease_keys(struct mvcc_store *s, int64_t lease_id, size_t max,
                    void *arg, mvcc_lease_key_cb cb);

/* Quota, as etcd's: before proposing a Put, Txn or LeaseGrant the leader
 * asks mvcc_quota_ok with the request's cost; when it says no, the leader
 * proposes a NOSPACE alarm instead, and applying the alarm
 * (mvcc_alarm_set) makes every member refuse Puts, Txns whose cost is not
 * 0, and lease grants with CAIRN_EQUOTA, deterministically, until the alarm
 * is cleared (etcd's alarm disarm). The LMDB map is larger than the quota,
 * so requests admitted under it never fail halfway. */
size_t mvcc_put_cost(const struct mvcc_put_req *req);
size_t mvcc_txn_cost(const struct mvcc_txn_req *req);
/* Any thread, cheap (figures of the last commit): size + cost < quota,
 * as etcd's backend size + cost < quota, where size is the most bytes in
 * use since the last defragmentation (compaction does not lower it, as it
 * does not lower etcd's; docs/mvcc.md, "Quota"), and the high-water mark
 * + cost below half-way through the map's headroom past the quota (so
 * pages that a long reader keeps from reuse cannot fill the map). */
bool mvcc_quota_ok(struct mvcc_store *s, size_t cost);
/* Raises or clears the alarm, persisted with the batch. Inside a batch. */
int mvcc_alarm_set(struct mvcc_store *s, bool on);
/* Whether the alarm is raised (apply thread). */
bool mvcc_alarm_active(struct mvcc_store *s);

/* Compacting copy of the database into a new file that replaces the old
 * one (etcd's defragment). Apply thread, outside a batch; readers on other
 * threads wait for it to finish. */
int mvcc_defrag(struct mvcc_store *s, struct cairn_errmsg *em);

/* ---- Raft snapshots ---- */

/* Writes a consistent copy of the whole store (an LMDB environment file,
 * as of the last committed batch) to fd, from the current position. Any
 * thread; writers go on meanwhile. CAIRN_EIO with text in em. */
int mvcc_snapshot_write(struct mvcc_store *s, int fd, struct cairn_errmsg *em);
/* Replaces the store's content with a snapshot file written by
 * mvcc_snapshot_write (the file is renamed into place: same file system as
 * the store's directory). Apply thread, outside a batch; readers wait.
 * Refused with CAIRN_EINVAL (and nothing changed) if the snapshot's
 * revision is below the store's, so watchers never see revisions go back;
 * watch hubs continue from their watchers' next revisions (catching up
 * from the new content, or canceled if it was compacted past them). The
 * lessor must be reopened afterwards. */
int mvcc_snapshot_restore(struct mvcc_store *s, const char *file,
                          struct cairn_errmsg *em);

/* ---- reads (any thread) ---- */

/* etcd's Range on the committed state. Errors: CAIRN_EREVCOMPACTED,
 * CAIRN_EFUTUREREV, CAIRN_ENOMEM, CAIRN_EIO. */
int mvcc_range(struct mvcc_store *s, const struct mvcc_range_req *req,
               struct mvcc_arena *a, struct mvcc_range_resp *resp);

/* A read snapshot of the committed state for several reads in a row (for
 * instance every serializable read of one loop turn): one transaction for
 * all of them. Any thread; the reader belongs to that thread until
 * mvcc_reader_end. Hold it briefly: it pins the snapshot's pages and holds
 * off defragmentation and snapshot restore. */
struct mvcc_reader;
int mvcc_reader_begin(struct mvcc_store *s, struct mvcc_reader **out);
/* mvcc_range on the reader's snapshot; header_rev is the snapshot's
 * revision. */
int mvcc_reader_range(struct mvcc_reader *r, const struct mvcc_range_req *req,
                      struct mvcc_arena *a, struct mvcc_range_resp *resp);
void mvcc_reader_end(struct mvcc_reader *r);

/* HashKV(rev), etcd v3.4's algorithm and value (HashByRev): CRC-32C over
 * "key", then in revision order each record's etcd revision key and
 * marshaled KeyValue, for every record in (compact_rev, rev] and, at or
 * below compact_rev, each key's version alive at rev. It does not depend on
 * how far physical compaction got, so members that applied the same log
 * agree. rev <= 0: current; rev <= compact_rev: CAIRN_EREVCOMPACTED.
 * *compact_rev is -1 before the first compaction, as etcd's. */
int mvcc_hash_kv(struct mvcc_store *s, mvcc_rev rev, uint32_t *hash,
                 mvcc_rev *compact_rev, mvcc_rev *header_rev);
/* Hash of the whole database content (kv history, lease attachments, ext
 * records, revision and compaction meta), as etcd's Hash. */
int mvcc_hash(struct mvcc_store *s, uint32_t *hash, mvcc_rev *header_rev);

/* ---- watchers ---- */

struct mvcc_event {
    bool is_delete;          /* PUT or DELETE */
    struct mvcc_kv kv;       /* for a delete: key and mod_rev only */
    struct mvcc_kv *prev_kv; /* with prev_kv, when it still exists */
};

struct mvcc_watch_resp {
    int64_t watch_id;
    mvcc_rev header_rev;
    mvcc_rev compact_rev; /* non-zero: canceled because compacted */
    bool canceled;
    bool fragment; /* more fragments of this response follow */
    const struct mvcc_event *events;
    size_t n_events;
};

/* Receives one response. Return 0 when taken; CAIRN_EAGAIN when the
 * consumer cannot take more now: the watcher is paused at the first
 * revision of this response (nothing of it counts as delivered) until
 * mvcc_watch_resume, and catches up from the store then. The response's
 * pointers are valid during the call only. */
typedef int (*mvcc_watch_cb)(void *arg, const struct mvcc_watch_resp *resp);

struct mvcc_watch_req {
    const uint8_t *key;
    size_t key_len;
    const uint8_t *end;
    size_t end_len;
    mvcc_rev start_rev; /* 0: from the next revision */
    bool prev_kv;
    bool no_put;
    bool no_delete;
    bool fragment; /* split responses larger than fragment_bytes */
};

struct mvcc_watch_hub;

/* A hub of watchers served from s (borrowed: close the hub before the
 * store). Owned by one thread (the loop): every mvcc_watch_* call on it
 * comes from that thread. cb receives every response for every watcher of
 * the hub, during mvcc_watch_hub_poll or mvcc_watch_progress, and must not
 * call back into the hub. */
struct mvcc_watch_hub_options {
    size_t max_revs_per_poll; /* 0: 1000 */
    size_t fragment_bytes;    /* 0: 1.5 MiB, etcd's max request bytes */
    size_t max_watchers;      /* 0: 100000 */
#ifdef CAIRN_FAULTS
    /* Test-only (the whole-member simulation shows its watch checks catch
     * it): a whole response whose first event's revision is a multiple of
     * 5 is delivered twice, as a resent batch would be. */
    bool fault_deliver_twice;
#endif
};
int mvcc_watch_hub_init(struct mvcc_store *s,
                        const struct mvcc_watch_hub_options *opts, void *arg,
                        mvcc_watch_cb cb, struct mvcc_watch_hub **out);
void mvcc_watch_hub_close(struct mvcc_watch_hub *h);

/* Creates a watcher. Its id is *id when *id >= 0 (CAIRN_EEXISTS if taken),
 * otherwise the lowest free one from 0 up, written to *id. Nothing is
 * delivered until the next poll. CAIRN_EFULL past max_watchers. */
int mvcc_watch_create(struct mvcc_watch_hub *h, const struct mvcc_watch_req *r,
                      int64_t *id);
/* Removes a watcher; CAIRN_ENOTFOUND if unknown. */
int mvcc_watch_cancel(struct mvcc_watch_hub *h, int64_t id);
/* Un-pauses a watcher paused by CAIRN_EAGAIN from the callback. */
int mvcc_watch_resume(struct mvcc_watch_hub *h, int64_t id);
/* Sends a progress notification (no events, header_rev = R) to watcher id
 * if it has received everything up to the current revision R, which is
 * then a bookmark; CAIRN_EAGAIN if it is behind (etcd sends none then). */
int mvcc_watch_progress(struct mvcc_watch_hub *h, int64_t id);
/* Delivers committed events to watchers: at most max_revs_per_poll
 * revisions are read per call; *more is true when some watcher is still
 * behind. Call after each committed batch (the apply thread may signal the
 * loop) and again while *more. */
int mvcc_watch_hub_poll(struct mvcc_watch_hub *h, bool *more);

#endif
