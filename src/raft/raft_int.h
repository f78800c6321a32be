/* Private to the raft module (and its unit tests): the core's internal
 * pieces — per-update arena, the log with its unstable tail, progress and
 * the in-flight window, quorum arithmetic, configuration changes — and the
 * struct raft itself. */
#ifndef CAIRN_RAFT_RAFT_INT_H
#define CAIRN_RAFT_RAFT_INT_H

#include "raft/raft.h"

/* ---- arena: memory for one update, reused from step to step ---- */

struct arena_block {
    struct arena_block *next;
    size_t cap;
    size_t used;
    /* data follows, 16-byte aligned */
};

/* Blocks never move, so pointers into them stay valid until the next reset;
 * reset keeps the blocks, so the steady state allocates nothing. */
struct arena {
    struct arena_block *first;
    struct arena_block *cur;
};

void raft__arena_init(struct arena *a);
void raft__arena_reset(struct arena *a);
void raft__arena_free(struct arena *a);
/* NULL when out of memory; size 0 gives a valid non-NULL pointer. */
void *raft__arena_alloc(struct arena *a, size_t size);

/* ---- entry arrays with shared data blocks (entries.c) ---- */

struct data_block;

/* ents[i].data points into blocks[i] (NULL when len is 0). */
struct entry_vec {
    struct raft_entry *ents;
    struct data_block **blocks;
    size_t n;
    size_t cap;
};

int raft__ev_reserve(struct entry_vec *v, size_t want);
/* Replaces entries [at, n) by copies of ents (data in one new block).
 * CAIRN_ENOMEM leaves v unchanged. */
int raft__ev_replace_from(struct entry_vec *v, size_t at,
                          const struct raft_entry *ents, size_t n);
/* Removes entries [from, to), moving later ones down. */
void raft__ev_remove_range(struct entry_vec *v, size_t from, size_t to);
/* Drops the data references of [from, to) without moving anything. */
void raft__ev_release(struct entry_vec *v, size_t from, size_t to);
void raft__ev_free(struct entry_vec *v);

/* ---- the log: storage plus the unstable tail (etcd's raftLog) ---- */

struct unstable {
    /* A snapshot received from a leader and not yet installed by the host;
     * owned with its data. */
    struct raft_snapshot *snap;
    bool snap_handed_out;
    /* Entries not yet reported persisted, v.ents[i].index == offset + i. */
    struct entry_vec v;
    raft_index offset;
    /* Entries up to this index were handed to the host in an update. */
    raft_index handed_out;
    /* Highest index reported persisted while snap was not yet installed
     * (0: none). Those entries stay here until the snapshot is installed:
     * the log's bounds and terms come from snap and this tail until then,
     * so reports may arrive in either order without losing entries. */
    raft_index stable_pending;
};

struct raft_log {
    const struct raft_storage *storage;
    struct unstable u;
    raft_index committed;
    raft_index applied; /* handed out in update.committed */
#ifdef CAIRN_FAULTS
    const struct raft_faults *faults;
#endif
};

int raft__log_init(struct raft_log *l, const struct raft_storage *storage);
void raft__log_close(struct raft_log *l);
raft_index raft__log_first_index(const struct raft_log *l);
raft_index raft__log_last_index(const struct raft_log *l);
/* 0, CAIRN_ECOMPACTED or CAIRN_EUNAVAILABLE. */
int raft__log_term(const struct raft_log *l, raft_index i, raft_term *t);
/* The term of i, or 0 if i is compacted or unavailable. */
raft_term raft__log_term_or_zero(const struct raft_log *l, raft_index i);
raft_term raft__log_last_term(const struct raft_log *l);
bool raft__log_match_term(const struct raft_log *l, raft_index i, raft_term t);
/* §5.4.1: is (last_index, last_term) at least as up to date as ours? */
bool raft__log_is_up_to_date(const struct raft_log *l, raft_index last,
                             raft_term term);
/* The first index whose entry conflicts with (or extends) ours; 0 if all
 * given entries are already in the log. */
raft_index raft__log_find_conflict(const struct raft_log *l,
                                   const struct raft_entry *ents, size_t n);
/* The largest index <= index whose term is <= term, and its term: the
 * fast-backtracking hint (etcd's findConflictByTerm). */
raft_index raft__log_find_conflict_by_term(const struct raft_log *l,
                                           raft_index index, raft_term term,
                                           raft_term *found_term);
/* Appends copies (truncating conflicting unstable entries). ents[0].index
 * must be in (committed, last + 1]. CAIRN_ENOMEM. */
int raft__log_append(struct raft_log *l, const struct raft_entry *ents,
                     size_t n);
/* The follower's append (§5.3): on a match of (index, log_term) appends the
 * new part of ents, advances commit to min(committed, last new) and sets
 * *last_new, and *written_from to the first index written (truncating what
 * was there), or 0 if nothing was. Returns 1 if it matched, 0 if not, or
 * CAIRN_ENOMEM. */
int raft__log_maybe_append(struct raft_log *l, raft_index index,
                           raft_term log_term, raft_index committed,
                           const struct raft_entry *ents, size_t n,
                           raft_index *last_new, raft_index *written_from);
void raft__log_commit_to(struct raft_log *l, raft_index i);
/* Leader: commit max if it is of term (§5.4.2). True if commit moved. */
bool raft__log_maybe_commit(struct raft_log *l, raft_index max, raft_term term);
/* Copies of [lo, hi) with at most max_bytes of data (at least one entry)
 * into arena memory. 0, CAIRN_ECOMPACTED, CAIRN_ENOMEM. */
int raft__log_slice(const struct raft_log *l, raft_index lo, raft_index hi,
                    uint64_t max_bytes, struct arena *a,
                    struct raft_entry **out, size_t *n);
/* The host made entries up to (i, t) durable. While a received snapshot
 * is not installed, the drop of those entries waits for
 * raft__log_stable_snap_to. */
void raft__log_stable_to(struct raft_log *l, raft_index i, raft_term t);
/* The host installed the snapshot at i: forget it, and drop the entries
 * after it reported persisted meanwhile. */
void raft__log_stable_snap_to(struct raft_log *l, raft_index i);
/* Replaces the log by a copy of snap (copied). CAIRN_ENOMEM. */
int raft__log_restore(struct raft_log *l, const struct raft_snapshot *snap);
/* The highest index durable locally (entries below the unstable tail). */
raft_index raft__log_durable_index(const struct raft_log *l);
/* The snapshot the leader sends: unstable one or storage's. */
int raft__log_snapshot(const struct raft_log *l,
                       const struct raft_snapshot **out);

/* ---- in-flight window (etcd's tracker.Inflights) ---- */

struct inflight {
    raft_index index;
    uint64_t bytes;
};

struct inflights {
    uint32_t start;
    uint32_t count;
    uint32_t size; /* most messages */
    uint32_t cap;  /* allocated slots, grown up to size */
    uint64_t bytes;
    uint64_t max_bytes; /* 0: no byte limit */
    struct inflight *buf;
};

void raft__inflights_init(struct inflights *in, uint32_t size,
                          uint64_t max_bytes);
void raft__inflights_close(struct inflights *in);
/* Records an append ending at index with bytes of data; the window must
 * not be full. CAIRN_ENOMEM. */
int raft__inflights_add(struct inflights *in, raft_index index, uint64_t bytes);
/* Frees every message ending at or before index. */
void raft__inflights_free_le(struct inflights *in, raft_index index);
void raft__inflights_free_first_one(struct inflights *in);
bool raft__inflights_full(const struct inflights *in);
void raft__inflights_reset(struct inflights *in);

/* ---- progress of one peer, kept by the leader ---- */

struct progress {
    raft_id id;
    raft_index match;
    raft_index next;
    uint8_t state; /* enum raft_progress_state */
    bool probe_sent;
    bool recent_active;
    bool learner;
    raft_index pending_snapshot;
    uint64_t read_ack_round; /* highest read round this peer confirmed */
    /* lazy_commit: the highest commit index sent to this peer, and the
     * index whose commit it waits for (its forwarded proposal, its read). */
    raft_index sent_commit;
    raft_index want_commit;
    struct inflights ins;
};

void raft__progress_become_probe(struct progress *pr);
void raft__progress_become_replicate(struct progress *pr);
void raft__progress_become_snapshot(struct progress *pr, raft_index snapi);
bool raft__progress_maybe_update(struct progress *pr, raft_index n);
bool raft__progress_maybe_decr_to(struct progress *pr, raft_index rejected,
                                  raft_index match_hint);
bool raft__progress_is_paused(const struct progress *pr);

/* ---- quorum arithmetic ---- */

enum vote_result { VOTE_PENDING = 0, VOTE_LOST = 1, VOTE_WON = 2 };

/* The largest index acked by a majority of ids (acked[i] is ids[i]'s);
 * UINT64_MAX for an empty set (so a joint half that is empty defers to the
 * other). */
raft_index raft__quorum_committed(const raft_index *acked, uint32_t n);
/* Votes: 1 granted, -1 rejected, 0 missing, one per id. An empty set wins. */
enum vote_result raft__quorum_vote(const int8_t *votes, uint32_t n);
/* A joint configuration decides only when both majorities do (§4.3). */
enum vote_result raft__quorum_vote_joint(const int8_t *in, uint32_t n_in,
                                         const int8_t *out, uint32_t n_out);

/* ---- configuration changes (etcd's confchange.Changer) ---- */

/* Applies cc to cs in place, following etcd's rules for simple changes,
 * entering and leaving joint configurations. 0 or CAIRN_EINVAL (cs
 * unchanged). */
int raft__conf_apply(struct raft_conf_state *cs,
                     const struct raft_conf_change *cc);
bool raft__conf_is_joint(const struct raft_conf_state *cs);
bool raft__conf_is_voter(const struct raft_conf_state *cs, raft_id id);
bool raft__conf_contains(const struct raft_conf_state *cs, raft_id id);
bool raft__conf_is_learner(const struct raft_conf_state *cs, raft_id id);

/* ---- the core ---- */

/* A ReadIndex request waiting at the leader. */
struct read_request {
    uint64_t ctx;
    raft_id from;     /* the member that asked (ourselves: a local read) */
    raft_index index; /* commit index when it was received */
    uint64_t round;   /* heartbeat round that confirms it; 0: queued until
                       * the leader commits an entry of its term */
};

struct vec {
    void *data;
    size_t len;
    size_t cap;
};

/* A configuration entry in the uncommitted part of the log, and the
 * configuration it puts in force (thesis §4.1: on append, committed or not;
 * a truncation rolls it back). */
struct conf_hist {
    raft_index index;
    struct raft_conf_state cs;
};

struct raft {
    struct raft_config cfg;
    raft_id id;
    raft_term term;
    raft_id vote;
    struct raft_log log;
    uint8_t role;
    raft_id lead;
    raft_id lead_transferee;
    /* In force: the latest configuration in the log, committed or not. */
    struct raft_conf_state conf;
    /* In force before the uncommitted configuration entries in hist. */
    struct raft_conf_state base_conf;
    struct conf_hist *hist;
    size_t n_hist;
    size_t cap_hist;
    /* As of the last entry handed out for applying: what the host records
     * with a snapshot at its applied index. */
    struct raft_conf_state applied_conf;
    struct progress prs[RAFT_STATUS_PEERS_MAX];
    uint32_t n_prs;
    int8_t votes[RAFT_STATUS_PEERS_MAX]; /* by progress slot */
    raft_index pending_conf_index;
    /* Leader: index of the empty entry that opened its term. Until it is
     * durable, so is not the term: messages wait (see send()). */
    raft_index term_start_index;
    uint64_t uncommitted_size;
    unsigned election_elapsed;
    unsigned heartbeat_elapsed;
    unsigned randomized_election_timeout;
    struct prng prng;
    /* ReadIndex: requests in order, each confirmed by a round. */
    struct read_request *reads;
    size_t n_reads;
    size_t cap_reads;
    uint64_t read_round;
    /* Output of the current step. */
    struct arena arena;
    struct vec msgs;        /* struct raft_message */
    struct vec read_states; /* struct raft_read_state */
    struct raft_hard_state prev_hs;
    struct raft_soft_state prev_ss;
    bool conf_changed;
    int nomem; /* a failed allocation inside a step */
};

#endif
