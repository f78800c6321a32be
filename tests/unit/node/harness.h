/* A fake environment for node tests: members wired in-process, a fake
 * clock, queued persist/apply/snapshot actions completed when the test
 * runs them, messages delivered in order (or dropped for a member cut
 * off), mvcc stores in a mkdtemp directory removed at the end. */
#ifndef CAIRN_TESTS_NODE_HARNESS_H
#define CAIRN_TESTS_NODE_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mvcc/mvcc.h"
#include "node/node.h"

#define H_MEMBERS_MAX 5

/* Store and lessor options for members opened from now on. */
struct h_opts {
    size_t quota_bytes;             /* 0: 64 MiB */
    int64_t checkpoint_interval_ms; /* 0: lease's default */
    mvcc_fault_cb fault;            /* mvcc's test hook, may be NULL */
    void *fault_arg;
    /* Members gather proposals (node_env.proposals_queued) until the test
     * calls node_flush_proposals, as the server does once per loop turn. */
    bool gather_proposals;
};

struct h_msg {
    uint64_t from, to;
    struct buf bytes;
    char *image; /* MsgSnap: the sender's store image file */
};

struct h_member {
    struct h_cluster *c;
    uint64_t id;
    bool started;
    bool cut;          /* messages to and from it are dropped */
    bool hold_persist; /* persists stay pending */
    bool hold_apply;   /* apply batches stay pending */
    bool hold_snap;    /* snapshot requests stay pending (a restart drops
                        * them, as a crash before the snapshot would) */
    char dir[128];
    struct mvcc_store *s;
    struct node_applier *ap;
    struct node *n;
    /* WAL mode (h_member_use_wal): persists and snapshots go to a real
     * WAL on an in-memory file system, as the server's WAL thread does. */
    bool use_wal;
    struct cairn_fs fs;
    struct prng rng;
    struct wal *w;
    const struct node_persist **persists; /* pending, borrowed */
    size_t n_persists, cap_persists;
    struct node_apply_batch **batches;
    size_t n_batches, cap_batches;
    struct raft_snapshot_meta snaps[8];
    size_t n_snaps;
    /* counters for assertions */
    uint64_t sent_by_type[RAFT_MSG_TYPE_MAX + 1];
    uint64_t snapshots_done;
    raft_index last_snapshot_index;
    uint64_t entries_persisted;
    uint64_t persists_issued;
    uint64_t hs_only_persists;      /* a hard state and nothing else */
    uint64_t last_persisted_commit; /* of the last hard state persisted */
    uint64_t proposals_queued;      /* env.proposals_queued calls */
};

struct h_cluster {
    char root[64];
    int64_t now_ms;
    unsigned tick_ms;
    size_t n;
    struct h_member m[H_MEMBERS_MAX];
    struct h_msg *msgs;
    size_t n_msgs, cap_msgs;
    uint64_t images;
    /* Allocation-failure tests: an apply that fails is handed back (the
     * node stops) instead of failing the test. */
    bool tolerate_apply_errors;
    struct node_config base; /* template for each member's config */
    struct h_opts opts;
};

/* n members with ids 1..n, all bootstrapped with each other as voters;
 * base may set snapshot_count and the like (NULL: defaults). */
void h_cluster_init(struct h_cluster *c, size_t n,
                    const struct node_config *base);
/* The same with every member persisting through a WAL. */
void h_cluster_init_wal(struct h_cluster *c, size_t n,
                        const struct node_config *base, bool wal);
void h_cluster_init_opts(struct h_cluster *c, size_t n,
                         const struct node_config *base, bool wal,
                         const struct h_opts *o);
void h_cluster_free(struct h_cluster *c);
/* A member id `id` in slot c->n, joining (no bootstrap), not started
 * until h_member_start. */
struct h_member *h_member_add(struct h_cluster *c, uint64_t id);
void h_member_start(struct h_member *m, bool bootstrap);
/* Before h_member_start: this member persists through a WAL (created on
 * its in-memory file system if none is there, else recovered). */
void h_member_use_wal(struct h_member *m);
/* Stops the member's node, applier, lessor and store, as a process exit
 * would after its WAL thread drained, and starts it again from its WAL
 * and store (WAL mode only). */
void h_member_restart(struct h_member *m);
/* Completes pending actions and delivers messages until nothing is left
 * (bounded); returns how many actions ran. */
size_t h_run(struct h_cluster *c);
/* One tick on every started member (clock advances tick_ms), then h_run. */
void h_tick(struct h_cluster *c, unsigned ticks);
/* Ticks until some member leads (bounded); returns it or NULL. */
struct h_member *h_leader(struct h_cluster *c);
struct h_member *h_elect(struct h_cluster *c, uint64_t id);

/* A request's outcome, for callbacks. */
struct h_result {
    int calls;
    int err;
    int64_t rev;
    char value[64];
    int64_t count;
    int64_t lease_id;
    size_t n_members;
    uint64_t member_id;
    bool succeeded;
    uint32_t hash;
    int64_t ttl_s;
    size_t n_keys;
    size_t n_alarms;
    bool is_learner; /* MEMBER_*: the member concerned */
    int type_hint;   /* free for the test's bookkeeping */
};
void h_done(void *arg, const struct node_result *r);

int h_put(struct h_member *m, const char *k, const char *v,
          struct h_result *res);
int h_get(struct h_member *m, const char *k, bool serializable,
          struct h_result *res);
uint32_t h_hash_kv(struct h_member *m);

#endif
