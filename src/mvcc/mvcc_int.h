/* mvcc internals shared by the module's files: the store structure, the
 * on-disk record encodings (docs/mvcc.md) and helpers. Private to mvcc/. */
#ifndef CAIRN_MVCC_MVCC_INT_H
#define CAIRN_MVCC_MVCC_INT_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "mvcc/mvcc.h"

/* Bytes of the revision suffix of a kv-db key:
 * userkey || BE64(main) || BE64(sub). The sub-revision is part of the key
 * because one txn may put a key and delete it in a sibling nested txn (etcd
 * allows it), giving two changes of one key in one main revision. */
#define MVCC__REV_BYTES 16
/* Record flags: the record is a tombstone (the key was deleted); the key
 * is long (its full bytes are in the value, docs/mvcc.md "Long keys"). */
#define MVCC__FLAG_TOMB 0x01
#define MVCC__FLAG_LONG 0x02
/* Keys of up to MVCC__SHORT_MAX bytes are stored as they are. A longer
 * key's kv-db key part ("ekey") is its first MVCC__SHORT_MAX bytes, a
 * 64-bit hash of the rest and a BE64 sequence number that tells keys with
 * equal prefix and hash apart: MVCC__EKEY_LONG bytes, which with the
 * revision suffix fills LMDB's 511-byte key limit. Long keys of one prefix
 * sort together, right after the prefix itself; readers sort such a group
 * by the full keys. */
#define MVCC__SHORT_MAX 479
#define MVCC__EKEY_LONG (MVCC__SHORT_MAX + 16)
/* The on-disk format this code writes and reads (meta "format"). */
#define MVCC__FORMAT 2
/* Bound on pooled read transactions. */
#define MVCC__READ_POOL 16
/* Bounds on txn nesting (etcd has none but max-txn-ops bounds its size). */
#define MVCC__TXN_DEPTH_MAX 64
#define MVCC__TXN_PATH_MAX 4096

/* The LMDB map of a store, for the comparator's prefetch (store.c): base,
 * length and page size - 1 (len 0: none). */
struct mvcc__pf {
    uintptr_t lo, len, page_mask;
};

struct mvcc_store {
    char *dir;
    struct cairn_log *log;
    MDB_env *env;
    MDB_dbi kv, rev, meta, lkey, ext;
    MDB_dbi main_dbi;   /* LMDB's main database: the named ones' records */
    struct mvcc__pf pf; /* env's map, set when it opens */
    size_t quota_bytes;
    size_t map_bytes;
    unsigned env_flags;
    struct mvcc_lease_hooks hooks;
    mvcc_commit_cb on_commit;
    void *on_commit_arg;
    struct cairn_hist *commit_hist; /* may be NULL */
    mvcc_fault_cb fault;            /* tests only; may be NULL */
    void *fault_arg;
    /* Operation counters: a batch's own (apply thread) folded into the
     * published ones at its commit, dropped at its abort. */
    struct mvcc__ops {
        uint64_t puts, deletes, ranges, txns;
        int64_t keys;
    } ops_batch;
    _Atomic uint64_t ops_puts, ops_deletes, ops_ranges, ops_txns;
    _Atomic int64_t ops_keys;
    uint64_t hash_mask; /* all ones but in collision tests */

    /* Defragmentation replaces the environment: readers hold this lock
     * shared, defrag holds it exclusively. */
    pthread_rwlock_t env_lock;
    pthread_mutex_t pool_mu;
    struct mvcc__rd *pool[MVCC__READ_POOL];
    int pool_n;
    /* Raised (under pool_mu) after every commit of a write transaction:
     * a pooled reader whose snapshot is of the current generation holds
     * every commit published so far and is reused as it is (docs/mvcc.md,
     * "Read transactions"). */
    uint64_t snap_gen;

    /* Apply-thread state. */
    MDB_txn *wtxn;     /* the open batch, or NULL */
    MDB_cursor *wcur;  /* a kv-db cursor of wtxn, reused by the batch */
    MDB_cursor *wrcur; /* a rev-db cursor of wtxn: appends of the batch */
    struct mvcc__pf wpf_saved; /* the apply thread's before the batch */
    bool batch_failed; /* an I/O error inside the batch: commit refuses */
    mvcc_rev wrev;     /* revision including the open batch */
    mvcc_rev wcompact; /* scheduled compaction including the batch */
    bool alarm;

    /* Committed figures, read by any thread. */
    _Atomic int64_t committed_rev;
    _Atomic int64_t committed_compact;
    _Atomic uint64_t committed_ci;
    /* Sizes after the last commit (mvcc__sizes_publish): the file's
     * high-water mark and the pages the trees use, which the quota
     * charges (docs/mvcc.md, "Quota"). */
    _Atomic uint64_t committed_db_bytes;
    _Atomic uint64_t committed_in_use_bytes;
    /* What the quota charges: the most bytes in use since the file was
     * last written compactly (defragmentation), as etcd charges bolt's
     * file size, which compaction does not shrink (docs/mvcc.md,
     * "Quota"). Kept in meta `quota_size` (stored_quota_bytes: the value
     * there, apply thread) so that a restart does not forget it. */
    _Atomic uint64_t committed_quota_bytes;
    uint64_t stored_quota_bytes;
};

/* One visible record of the kv db, decoded. Pointers borrow LMDB pages:
 * valid until the transaction ends or the next write in it. */
struct mvcc__rec {
    const uint8_t *key; /* the full user key */
    size_t key_len;
    const uint8_t *ekey; /* the kv-db key part (== key for short keys) */
    size_t ekey_len;
    mvcc_rev main;
    int64_t sub;
    bool tomb;
    mvcc_rev create;
    int64_t version;
    int64_t lease;
    const uint8_t *val;
    size_t val_len;
    const uint8_t *raw; /* the whole stored value, for hashing */
    size_t raw_len;
};

/* Big-endian 64-bit words as one load or store and a byte swap: GCC 12
 * at -O2 kept the byte loops as loops (some 40 instructions each, five
 * of them in a point get). */
static inline void mvcc__put_be64(uint8_t *p, uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    memcpy(p, &v, sizeof(v));
}
static inline uint64_t mvcc__get_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Publishes the sizes of the last commit into committed_db_bytes and
 * committed_in_use_bytes. Apply thread (or under the env lock held
 * exclusively), outside a batch. */
void mvcc__sizes_publish(struct mvcc_store *s);

/* LMDB error to cairn code. */
int mvcc__err(int mdb_rc);

/* The test's injected failure at site, or 0 (mvcc_options.fault). */
static inline int mvcc__fault(struct mvcc_store *s, int site)
{
    return s->fault != NULL ? s->fault(s->fault_arg, site) : 0;
}
/* Decodes a kv-db entry; false if malformed. */
bool mvcc__rec_decode(const MDB_val *k, const MDB_val *v, struct mvcc__rec *r);
/* User-key order: memcmp then length. */
int mvcc__key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl);
/* Whether key is inside [start, end) with etcd's conventions (empty end:
 * only start; "\0": everything >= start). */
bool mvcc__in_range(const uint8_t *start, size_t start_len, const uint8_t *end,
                    size_t end_len, const uint8_t *key, size_t key_len);

/* A read transaction with a kv-db cursor, pooled so that a point read
 * costs no allocation. While `live` its snapshot is held, taken in
 * generation `gen` of the store's snap_gen. */
struct mvcc__rd {
    MDB_txn *t;
    MDB_cursor *kv;
    struct mvcc__pf pf_saved; /* the thread's before read_begin */
    uint64_t gen;
    bool live;
    /* The kv tree's root page in this snapshot, for mvcc__tree_get:
     * 0 not looked up yet (reset whenever the snapshot is taken), 1
     * kv_root holds it, -1 not available (point reads use the cursor). */
    int8_t root_state;
    uint64_t kv_root;
};
/* Read transactions from the pool; the env lock is held shared between
 * begin and end. The snapshot holds at least every commit after which
 * mvcc__snap_advance returned before mvcc__read_begin was called. */
int mvcc__read_begin(struct mvcc_store *s, struct mvcc__rd **rd);
void mvcc__read_end(struct mvcc_store *s, struct mvcc__rd *rd);
/* The calling thread's kv-db searches prefetch the pages of s's map
 * until mvcc__prefetch_leave restores what enter returned. */
struct mvcc__pf mvcc__prefetch_enter(const struct mvcc_store *s);
void mvcc__prefetch_leave(struct mvcc__pf old);
/* Called by the writer after each commit, before publishing what it
 * committed: pooled snapshots are released and no longer reused. */
void mvcc__snap_advance(struct mvcc_store *s);
/* A reader's transaction (read.c), for the ext reads in store.c. */
MDB_txn *mvcc__reader_txn(struct mvcc_reader *r);
struct mvcc_store *mvcc__reader_store(struct mvcc_reader *r);
/* Meta values as u64 (0 when missing). */
int mvcc__meta_get(struct mvcc_store *s, MDB_txn *t, const char *name,
                   uint64_t *v);
int mvcc__meta_put(struct mvcc_store *s, MDB_txn *t, const char *name,
                   uint64_t v);

/* Visits the records visible at revision `at` (latest of each key with
 * main <= at, tombstones skipped) in [key, end) in key order, with cursor c
 * on the kv db. cb returning non-zero stops the walk: 1 means "stop,
 * fine", negative is an error. */
typedef int (*mvcc__visit_cb)(void *arg, const struct mvcc__rec *r);
int mvcc__visit(struct mvcc_store *s, MDB_cursor *c, const uint8_t *key,
                size_t key_len, const uint8_t *end, size_t end_len, mvcc_rev at,
                void *arg, mvcc__visit_cb cb);
static inline bool mvcc__ekey_is_long(size_t ekey_len)
{
    return ekey_len > MVCC__SHORT_MAX;
}
/* The kv-db key part of key into ekey (room for MVCC__EKEY_LONG bytes),
 * moving cursor c. A long key is looked up among the records sharing its
 * prefix and hash: CAIRN_ENOTFOUND if it has none, unless for_write, which
 * then gives it the next free sequence number. */
int mvcc__ekey_find(const struct mvcc_store *s, MDB_cursor *c,
                    const uint8_t *key, size_t key_len, bool for_write,
                    uint8_t *ekey, size_t *ekey_len);
/* The full user key of a stored ekey (borrowing LMDB's page: valid until
 * the transaction ends or writes), read from its first record. */
int mvcc__ekey_full(MDB_cursor *c, const uint8_t *ekey, size_t ekey_len,
                    const uint8_t **key, size_t *key_len);
/* The record of key visible at `at`; CAIRN_ENOTFOUND if none. Tombstones
 * are returned too when want_tomb. mvcc__get_e takes the ekey. */
int mvcc__get(struct mvcc_store *s, MDB_cursor *c, const uint8_t *key,
              size_t key_len, mvcc_rev at, bool want_tomb, struct mvcc__rec *r);
int mvcc__get_e(MDB_cursor *c, const uint8_t *ekey, size_t ekey_len,
                mvcc_rev at, bool want_tomb, struct mvcc__rec *r);
/* The record of ekey at exactly (main, sub); CAIRN_ENOTFOUND if none. */
int mvcc__get_exact(struct mvcc_store *s, MDB_txn *t, const uint8_t *ekey,
                    size_t ekey_len, mvcc_rev main, int64_t sub,
                    struct mvcc__rec *r);
/* Copies a record into the arena as an mvcc_kv. */
int mvcc__kv_copy(struct mvcc_arena *a, const struct mvcc__rec *r,
                  bool keys_only, struct mvcc_kv *kv);

/* Range with kv cursor c in a transaction whose current revision is cur and
 * compaction revision compact. rd: the pooled read transaction c belongs
 * to, whose point reads may take mvcc__tree_get; NULL inside a batch. */
int mvcc__range(struct mvcc_store *s, struct mvcc__rd *rd, MDB_cursor *c,
                mvcc_rev cur, mvcc_rev compact,
                const struct mvcc_range_req *req, struct mvcc_arena *a,
                struct mvcc_range_resp *resp);

/* Point reads by our own descent of the kv tree in a read snapshot
 * (tree.c, docs/mvcc.md "Point reads"). mvcc__tree_root finds the tree's
 * root page in transaction t (false: unknown). mvcc__tree_get answers as
 * mvcc__get does for a key of at most MVCC__SHORT_MAX bytes, or returns
 * MVCC__TREE_FALLBACK when the cursor must answer instead. Read-only
 * transactions only: a batch's pages change under it. */
#define MVCC__TREE_FALLBACK 1
bool mvcc__tree_root(const struct mvcc_store *s, MDB_txn *t, uint64_t *root);
int mvcc__tree_get(const struct mvcc_store *s, uint64_t root,
                   const uint8_t *key, size_t key_len, mvcc_rev at,
                   bool want_tomb, struct mvcc__rec *r);

#endif
