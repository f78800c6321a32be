/* A test cluster of raft cores in one process: memory storages persisted at
 * once, messages passed through the wire codec, partitions and drops, and
 * the applied sequence of every member recorded for safety checks. */
#ifndef CAIRN_TEST_RAFT_HARNESS_H
#define CAIRN_TEST_RAFT_HARNESS_H

#include "raft/raft_int.h"

#define H_MAX_NODES 8
#define H_MAX_APPLIED 4096

struct h_node {
    raft_id id;
    struct raft *r;
    struct raft_memory_storage *ms;
    bool up;
    /* chain[i]: hash of the applied sequence up to index i (known[i]). */
    uint64_t chain[H_MAX_APPLIED];
    bool known[H_MAX_APPLIED];
    raft_index applied_to;
    struct raft_read_state reads[256];
    size_t n_reads;
    raft_term max_term_led; /* to check one leader per term */
    /* Lazy disk: updates' writes (and the messages waiting for them) wait
     * in `pending` until h_sync; a crash loses them. */
    bool lazy;
    struct h_pending *pending;
    size_t n_pending;
    size_t cap_pending;
    struct raft_conf_state conf; /* from update.conf_state */
    /* When one write completes a received snapshot and entries after it,
     * report PERSISTED before SNAPSHOT_INSTALLED (the core takes either
     * order); a lazy member reports the installation only at its next
     * h_sync (the state machine is slow to load the image), so other
     * events come in between. */
    bool entries_first;
    raft_index install_deferred; /* 0: none */
    bool commit_unsent;          /* the last update's (lazy_commit) */
};

enum h_pending_kind { H_PEND_SNAP, H_PEND_ENTRIES, H_PEND_HS, H_PEND_MSG };

/* A write not yet synced: snapshots and entries travel encoded as
 * messages (MsgSnap, MsgApp) so the codec does the copying. */
struct h_pending {
    int kind;
    struct raft_hard_state hs;
    raft_id to;
    struct buf bytes;
};

struct h_msg {
    raft_id from;
    raft_id to;
    uint8_t type;
    struct buf bytes; /* encoded message */
};

struct h_net {
    struct h_node nodes[H_MAX_NODES + 1]; /* by id, 1-based */
    int n;                                /* ids 1..n exist */
    struct h_msg *q;
    size_t nq;
    size_t cap;
    bool cut[H_MAX_NODES + 1][H_MAX_NODES + 1]; /* from -> to dropped */
    struct raft_config base;
    /* leader of each term seen, for election safety */
    raft_id leader_of_term[4096];
    /* term of each committed (applied somewhere) index; 0: unknown */
    raft_term committed_term[H_MAX_APPLIED];
    /* the lowest current term of a member applying it: the entry was
     * committed in this term or earlier */
    raft_term committed_by[H_MAX_APPLIED];
    uint64_t delivered;
};

/* A config with etcd's test defaults: election 10, heartbeat 1. */
void h_default_config(struct raft_config *c);
/* n members; voters are ids 1..voters, learners voters+1..n. cfg may be
 * NULL for defaults (seed varies with the id). */
void h_init(struct h_net *net, int n, int voters,
            const struct raft_config *cfg);
void h_close(struct h_net *net);
/* Creates (or re-creates after h_crash) member id from its storage. */
void h_start(struct h_net *net, raft_id id);
/* Loses the core and unsynced writes; synced storage survives. */
void h_crash(struct h_net *net, raft_id id);
/* Makes id's pending writes durable, sends what waited for them and
 * reports the completions to the core. */
void h_sync(struct h_net *net, raft_id id);
/* A member with empty storage (to be added by a configuration change). */
void h_add_empty(struct h_net *net, raft_id id);

/* Feeds an event and carries the update out; returns raft_step's code. */
int h_step(struct h_net *net, raft_id id, const struct raft_event *ev);
int h_tick(struct h_net *net, raft_id id, int n);
int h_campaign(struct h_net *net, raft_id id);
int h_propose(struct h_net *net, raft_id id, const char *text);
int h_read(struct h_net *net, raft_id id, uint64_t ctx);
int h_transfer(struct h_net *net, raft_id id, raft_id to);
int h_conf(struct h_net *net, raft_id id, uint8_t transition, int n, ...);

/* Delivers queued messages (and what they cause) until none are left or
 * max deliveries; returns deliveries made. */
int h_deliver(struct h_net *net, int max);
/* Delivers only the first queued message; false if none. */
bool h_deliver_one(struct h_net *net);
/* Delivers queued message i (< nq); with duplicate, a copy stays queued. */
void h_deliver_at(struct h_net *net, size_t i, bool duplicate);
/* Drops queued message i. */
void h_drop_at(struct h_net *net, size_t i);
/* Renders the queued messages, one per line:
 *   "1->2 MsgVote term=2 logterm=1 index=1"
 * into buf; returns buf. */
const char *h_render_queue(struct h_net *net, char *buf, size_t size);
/* Drops every queued message. */
void h_drop_queue(struct h_net *net);
/* Partitions: isolate id both ways; heal all. */
void h_isolate(struct h_net *net, raft_id id);
void h_cut(struct h_net *net, raft_id a, raft_id b);
void h_heal(struct h_net *net);

struct raft *h_r(struct h_net *net, raft_id id);
uint8_t h_role(struct h_net *net, raft_id id);
raft_term h_term(struct h_net *net, raft_id id);
raft_index h_commit(struct h_net *net, raft_id id);
raft_index h_last(struct h_net *net, raft_id id);
/* The one leader among up members (highest term), or RAFT_NONE. */
raft_id h_leader(struct h_net *net);
/* Ticks every up member until a leader emerges (bounded); returns it. */
raft_id h_elect(struct h_net *net, int max_rounds);

/* Checks the safety properties across members: applied sequences are
 * prefixes of one another, one leader per term, log matching among
 * committed prefixes. Fails the test otherwise. */
void h_check_safety(struct h_net *net);

/* Snapshot of id's applied state at its applied index, then compaction of
 * its log up to there. */
void h_compact(struct h_net *net, raft_id id);

/* Renders the one-line form of a message. */
size_t h_render_msg(const struct raft_message *m, char *buf, size_t size);

#endif
