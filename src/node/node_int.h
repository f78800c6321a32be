/* node_int: node's private declarations shared by its files — the decoded
 * form of the internal requests carried in log entries (docs/node.md), the
 * apply batch, and the applier's results. */
#ifndef CAIRN_NODE_NODE_INT_H
#define CAIRN_NODE_NODE_INT_H

#include "node/node.h"

/* First byte of every internal request entry: the format's version. */
#define NODE__ENTRY_V1 0xC1
/* Most nesting of txns inside txns an entry may carry. */
#define NODE__TXN_DEPTH_MAX 8
/* Most (id, remaining) pairs in one checkpoint entry. */
#define NODE__CHECKPOINTS_MAX 1000
/* ext tables of mvcc used by node (lease/ uses 'L' and 'M'). */
#define NODE__TABLE_MEMBER 'N'
#define NODE__TABLE_ALARM 'A'
/* Removed member ids (etcd's members_removed): kept for good, so a removed
 * member stays refused across restarts and by members joining later. */
#define NODE__TABLE_REMOVED 'D'

enum node__entry_type {
    NODE__E_PUT = 1,
    NODE__E_DELETE = 2,
    NODE__E_TXN = 3,
    NODE__E_COMPACT = 4,
    NODE__E_LEASE_GRANT = 5,
    NODE__E_LEASE_REVOKE = 6,
    NODE__E_LEASE_CHECKPOINT = 7,
    NODE__E_ALARM = 8,
    NODE__E_MEMBER_UPDATE = 9,
    NODE__E_AUTH = 10,
    NODE__E_V2 = 11,
};
#define NODE__E_MAX 11

/* A decoded internal request. Byte pointers point into the entry data;
 * arrays (txn operations, checkpoints) are allocated in the arena given to
 * the decoder. */
struct node__req {
    uint8_t type; /* enum node__entry_type */
    uint64_t id;  /* request id; 0: internal (no waiter) */
    union {
        struct mvcc_put_req put;
        struct mvcc_delete_req del;
        struct mvcc_txn_req txn;
        struct {
            mvcc_rev rev;
            bool physical;
        } compact;
        struct {
            int64_t id, ttl_s;
        } grant;
        int64_t revoke_id;
        struct {
            const int64_t *ids;
            const int64_t *remaining_s;
            size_t n;
        } checkpoint;
        struct {
            uint8_t action, type;
            uint64_t member;
        } alarm;
        struct node_member *member; /* MEMBER_UPDATE, arena-allocated */
        struct auth_req auth;
        struct v2_req v2;
    } u;
};

/* Encodes r appending to out: 0 or CAIRN_ENOMEM. */
int node__req_encode(const struct node__req *r, struct buf *out);
/* Decodes exactly len bytes: 0, CAIRN_EMALFORMED (never a crash, whatever
 * the input) or CAIRN_ENOMEM. */
int node__req_decode(const void *p, size_t len, struct mvcc_arena *a,
                     struct node__req *r);

/* The context of a configuration change entry: the request id and the
 * member concerned. */
int node__member_encode(uint64_t req_id, const struct node_member *m,
                        struct buf *out);
int node__member_decode(const void *p, size_t len, uint64_t *req_id,
                        struct node_member *m);

/* Per-request result of an apply batch, keyed by request id. */
struct node__result {
    uint64_t id;
    /* crc32c of the entry's request bytes (a conf change: its context):
     * the waiter checks it too, so a request id reused by a restarted
     * member never takes another request's result. */
    uint32_t crc;
    struct node_result res;
};

/* kv records a compaction step walks (etcd deletes 1,000 revisions per
 * batch): bounds how long a compaction holds the apply thread at once. */
#define NODE__COMPACT_STEP_RECORDS 1000

enum node__batch_kind {
    NODE__BATCH_ENTRIES = 0,
    NODE__BATCH_RESTORE = 1,
    NODE__BATCH_DEFRAG = 2,
    NODE__BATCH_EXPORT = 3,
    /* One bounded step of a scheduled compaction (applier.c). */
    NODE__BATCH_COMPACT = 4,
};

struct node_apply_batch {
    uint8_t kind; /* enum node__batch_kind */
    /* ENTRIES: owned copies (one block: data). */
    struct raft_entry *entries;
    size_t n_entries;
    uint8_t *data;
    raft_term term;     /* the node's term when issued (headers) */
    uint64_t member_id; /* for headers */
    uint64_t cluster_id;
    int64_t now_ms;       /* lease grants start their clock here */
    uint32_t cur_crc;     /* applier: crc of the entry being applied */
    raft_index cur_index; /* applier: index of the entry being applied */
    /* RESTORE: the snapshot applied. */
    struct raft_snapshot_meta snap;
    char *restore_path;
    /* EXPORT: the fd; DEFRAG/EXPORT: the waiting request. */
    int fd;
    uint64_t local_req;
    /* Filled by the applier. */
    int status;            /* fatal apply error, or a local op's result */
    bool compact_pending;  /* ENTRIES/COMPACT: history left to drop */
    raft_index last_index; /* last index this batch covers */
    struct node__result *results;
    size_t n_results;
    size_t cap_results;
    struct mvcc_arena arena;       /* results and decoding */
    struct node_apply_batch *next; /* node's in-flight list */
};

void node__batch_free(struct node_apply_batch *b);

/* --force-new-cluster (force.c): what a restart keeps of the recovered log
 * and the configuration changes it appends after it. */
struct node__forced {
    size_t n_keep;           /* rec->entries[0..n_keep) are kept (committed) */
    size_t n_dropped;        /* uncommitted entries discarded */
    size_t n_removed;        /* other members removed */
    raft_index commit;       /* the last index once ents are appended */
    struct raft_entry *ents; /* conf changes at the recovered term; owned */
    size_t n_ents;
};
/* Plans the forced restart of member self from rec: entries up to the
 * hard state's commit (or up to `applied`, the store's consistent index, if
 * that is further) are kept; then, if self is not a voter, a change adding
 * it (with self_record as its member record when not NULL); then one
 * removal per other member of the configuration. 0 or CAIRN_ENOMEM. */
int node__force_plan(const struct wal_recovery *rec, uint64_t self,
                     uint64_t applied, const struct node_member *self_record,
                     struct node__forced *f);
void node__force_plan_free(struct node__forced *f);

/* Waiters visited by the walks that serve reads and keep-alives and
 * start ReadIndex rounds, since node_new: tests bound it. */
uint64_t node__read_walk_steps(const struct node *n);

#endif
