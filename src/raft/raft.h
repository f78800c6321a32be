/* raft: the public header of cairn's Raft core, a deterministic state machine
 * that turns events into updates (the shape of etcd's RawNode/Ready and of
 * cowsql/raft's step), with no I/O, no clock, no threads and no globals.
 *
 * How a host drives it
 * --------------------
 *   raft_new(config)                   reads the initial state from storage
 *   loop:
 *     raft_step(r, event, &update)     one input, one output
 *     carry the update out, in this order of durability:
 *       1. persist update.snapshot (if any), then update.entries (truncating
 *          the host's log from entries[0].index first) and update.hard_state
 *          (if hard_state_changed); make them durable (fdatasync);
 *       2. send the messages: a message with after_persist == false may go out
 *          at once (the leader's appends and heartbeats: Raft thesis §10.2.1
 *          lets the leader write its own log in parallel); one with
 *          after_persist == true only after step 1 of this update (and of all
 *          earlier updates) is durable: vote answers and append answers;
 *       3. apply update.committed (in order) to the state machine;
 *       4. hand update.read_states to the readers waiting on them;
 *     then report completions as events: RAFT_EVENT_PERSISTED once the
 *     entries up to (index, term), and the hard states of the updates that
 *     carried them, are durable AND the entries readable through the
 *     storage interface; RAFT_EVENT_SNAPSHOT_INSTALLED once a snapshot from
 *     an update is durable, readable through storage and applied.
 *     A new leader's first messages carry after_persist too, until the
 *     entry opening its term is durable (else a crash could let it lead
 *     the same term twice).
 *
 * Every update is a delta: it holds only what this step produced. The host
 * processes updates in the order it received them.
 *
 * Threads: a struct raft is used by one thread at a time; the library has no
 * locks and no global state, so separate instances run on separate threads.
 * Determinism: given the same config (seed included), storage contents and
 * sequence of events, raft_step produces byte-identical updates.
 *
 * Lifetimes: everything an update points to is owned by the core and stays
 * valid until the next call to raft_step or raft_free on that core. Pointers
 * passed in an event are borrowed for the duration of the call only: the core
 * copies what it keeps.
 *
 * Configuration changes (thesis §4.1, PITFALLS): the configuration in force
 * on a member is the latest one in its log, committed or not, from the
 * moment its entry is appended; a truncated log rolls it back. Elections and
 * commit counting use it. A leader proposes a change only when the previous
 * one is committed and it has committed an entry of its own term
 * (PITFALLS: single-server change safety). A member being removed keeps
 * receiving the log until its removal commits, so it learns of it. A leader
 * that a committed change removes or demotes stops accepting proposals,
 * hands leadership to the most advanced voter (TimeoutNow once it has every
 * entry) and steps down when that one takes over, or after an election
 * timeout at the latest. update.conf_state is the configuration as of the
 * last entry handed out for applying: what a snapshot at the applied index
 * must record.
 *
 * Errors: functions return 0 or a negative CAIRN_E* code (util/err.h).
 * Storage callbacks may fail only with CAIRN_ECOMPACTED or CAIRN_EUNAVAILABLE
 * (term, entries) or CAIRN_EAGAIN (snapshot, temporarily unavailable); any
 * other failure is a broken host and the core asserts.
 */
#ifndef CAIRN_RAFT_RAFT_H
#define CAIRN_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef uint64_t raft_index;
typedef uint64_t raft_term;
typedef uint64_t raft_id;

/* No node: the vote of a member that has not voted, the leader when there is
 * none. Node ids are non-zero. */
#define RAFT_NONE ((raft_id)0)

/* ------------------------------------------------------------------------ */
/* Log entries                                                               */

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 0,
    /* data is a raft_conf_change with exactly one change and the AUTO
     * transition: a single-step change (thesis §4.1). */
    RAFT_ENTRY_CONF_CHANGE = 1,
    /* data is any raft_conf_change: joint consensus (thesis §4.3), including
     * the empty change that leaves a joint configuration. */
    RAFT_ENTRY_CONF_CHANGE_V2 = 2,
};

/* One log entry. These five fields are all a log (the WAL) has to store. An
 * empty NORMAL entry is what a new leader appends (thesis §6.4). */
struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;        /* enum raft_entry_type */
    const uint8_t *data; /* len bytes; NULL when len == 0; never owned by
                          * the struct itself: see who handed it out */
    size_t len;
};

/* ------------------------------------------------------------------------ */
/* Durable state                                                             */

/* What must be durable before a vote or an append answer goes out. */
struct raft_hard_state {
    raft_term term;
    raft_id vote;      /* RAFT_NONE if no vote in this term */
    raft_index commit; /* may be persisted lazily; never goes backwards */
};

/* Most ids in each list of a configuration. Real clusters have 3 to 7 voters;
 * the cap keeps configurations plain values that copy without allocation. */
#define RAFT_CONF_MAX 32

/* A configuration (etcd's ConfState). Outside a joint configuration,
 * n_voters_outgoing and n_learners_next are 0. In a joint configuration
 * voters is the incoming majority, voters_outgoing the outgoing one;
 * learners_next are voters of the outgoing configuration that become
 * learners when the joint configuration is left (they cannot be learners
 * and voters at once). auto_leave: leave the joint configuration by itself
 * (the leader proposes the empty change) once it is committed. */
struct raft_conf_state {
    uint32_t n_voters;
    uint32_t n_learners;
    uint32_t n_voters_outgoing;
    uint32_t n_learners_next;
    raft_id voters[RAFT_CONF_MAX];
    raft_id learners[RAFT_CONF_MAX];
    raft_id voters_outgoing[RAFT_CONF_MAX];
    raft_id learners_next[RAFT_CONF_MAX];
    bool auto_leave;
};

/* Largest encoded raft_conf_state, in bytes. */
#define RAFT_CONF_STATE_ENCODED_MAX (1 + 4 * (1 + RAFT_CONF_MAX * 10))

/* Encodes cs into out (which has room for RAFT_CONF_STATE_ENCODED_MAX
 * bytes); returns the number of bytes written. The WAL stores a snapshot's
 * configuration as these bytes. Format: docs/raft-codec.md. */
size_t raft_conf_state_encode(const struct raft_conf_state *cs, uint8_t *out);
/* Decodes len bytes; 0 or CAIRN_EMALFORMED (truncated, trailing bytes, a
 * list longer than RAFT_CONF_MAX, a zero id). */
int raft_conf_state_decode(const void *p, size_t len,
                           struct raft_conf_state *cs);
/* True if both describe the same configuration (lists compared as sets). */
bool raft_conf_state_equal(const struct raft_conf_state *a,
                           const struct raft_conf_state *b);

struct raft_snapshot_meta {
    raft_index index;            /* last entry the snapshot covers */
    raft_term term;              /* term of that entry */
    struct raft_conf_state conf; /* configuration in force at index */
};

/* A snapshot as the core sees it: its metadata and the host's opaque bytes
 * (the state machine's image, or a descriptor the host understands). */
struct raft_snapshot {
    struct raft_snapshot_meta meta;
    const uint8_t *data;
    size_t len;
};

/* ------------------------------------------------------------------------ */
/* Configuration changes                                                     */

enum raft_conf_change_type {
    RAFT_CC_ADD_NODE = 0,    /* add a voter, or promote a learner */
    RAFT_CC_REMOVE_NODE = 1, /* remove a voter or a learner */
    RAFT_CC_ADD_LEARNER = 2, /* add a learner, or demote a voter */
};

enum raft_conf_transition {
    /* One change: single step. More: joint, left automatically. */
    RAFT_CC_TRANSITION_AUTO = 0,
    /* Joint even for one change, left automatically once committed. */
    RAFT_CC_TRANSITION_JOINT_IMPLICIT = 1,
    /* Joint; the host leaves it by proposing an empty change. */
    RAFT_CC_TRANSITION_JOINT_EXPLICIT = 2,
};

struct raft_conf_change_item {
    uint8_t type; /* enum raft_conf_change_type */
    raft_id node;
};

/* A configuration change proposal. Zero changes with transition AUTO leaves
 * a joint configuration. context is opaque to the core (etcd carries the
 * member's URLs there); borrowed. */
struct raft_conf_change {
    uint8_t transition; /* enum raft_conf_transition */
    uint32_t n_changes;
    struct raft_conf_change_item changes[RAFT_CONF_MAX];
    const uint8_t *context;
    size_t context_len;
};

/* Encoded size of cc in bytes. */
size_t raft_conf_change_encoded_size(const struct raft_conf_change *cc);
/* Writes raft_conf_change_encoded_size(cc) bytes to out; returns that size. */
size_t raft_conf_change_encode(const struct raft_conf_change *cc, uint8_t *out);
/* Decodes an entry's data; cc->context points into p. 0 or
 * CAIRN_EMALFORMED. */
int raft_conf_change_decode(const void *p, size_t len,
                            struct raft_conf_change *cc);

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

enum raft_msg_type {
    RAFT_MSG_APP = 1,              /* append entries (also a probe) */
    RAFT_MSG_APP_RESP = 2,         /* its answer, reject carries a hint */
    RAFT_MSG_VOTE = 3,             /* request vote */
    RAFT_MSG_VOTE_RESP = 4,        /* its answer */
    RAFT_MSG_PRE_VOTE = 5,         /* thesis §9.6, term is the would-be term */
    RAFT_MSG_PRE_VOTE_RESP = 6,    /* its answer */
    RAFT_MSG_SNAP = 7,             /* install snapshot */
    RAFT_MSG_HEARTBEAT = 8,        /* leader liveness, commit, read rounds */
    RAFT_MSG_HEARTBEAT_RESP = 9,   /* its answer, echoes ctx */
    RAFT_MSG_TIMEOUT_NOW = 10,     /* transfer: campaign at once (§3.10) */
    RAFT_MSG_PROP = 11,            /* a proposal forwarded to the leader */
    RAFT_MSG_READ_INDEX = 12,      /* a read request forwarded to the leader */
    RAFT_MSG_READ_INDEX_RESP = 13, /* the leader's read index for it */
    RAFT_MSG_TRANSFER_LEADER = 14, /* a transfer request forwarded */
};
#define RAFT_MSG_TYPE_MAX 14

/* One message between members (etcd's raftpb.Message, slimmed). Fields a
 * type does not use are zero.
 *   APP:        term, log_term/index (the entry before entries), entries,
 *               commit.
 *   APP_RESP:   index = last index now matching (accept) or the rejected
 *               index (reject); reject_hint/log_term = the follower's hint
 *               for fast backtracking: its last index <= the rejected one
 *               whose term <= the leader's log_term, and that term.
 *   VOTE/PRE_VOTE: index/log_term = the candidate's last entry;
 *               transfer = campaigning because of a leadership transfer
 *               (overrides the CheckQuorum lease).
 *   *_RESP of votes: reject.
 *   SNAP:       snapshot.
 *   HEARTBEAT:  commit = min(follower's match, leader's commit); ctx = the
 *               read round it confirms (0: none).
 *   HEARTBEAT_RESP: ctx echoed.
 *   PROP:       entries (data only; index/term filled by the leader).
 *   READ_INDEX: ctx; READ_INDEX_RESP: ctx and index.
 *   TRANSFER_LEADER: from = the requested transferee.
 * after_persist is not on the wire: in an update it says the message may
 * be sent only once the update's snapshot, entries and hard state are
 * durable. */
struct raft_message {
    uint8_t type; /* enum raft_msg_type */
    bool reject;
    bool transfer;
    bool after_persist;
    raft_id from;
    raft_id to;
    raft_term term;
    raft_term log_term;
    raft_index index;
    raft_index commit;
    raft_index reject_hint;
    uint64_t ctx;
    const struct raft_entry *entries;
    size_t n_entries;
    const struct raft_snapshot *snapshot; /* SNAP only, else NULL */
};

/* Name of a message type ("MsgApp"...), for traces. */
const char *raft_msg_type_name(int type);

/* Encodes m (after_persist excluded) appending to out. 0 or CAIRN_ENOMEM.
 * Format: docs/raft-codec.md. */
int raft_message_encode(const struct raft_message *m, struct buf *out);
/* Decodes one message from exactly len bytes. On success m->entries and
 * m->snapshot point into memory allocated for the message (free it with
 * raft_message_decoded_free), and every entry's data and the snapshot's
 * data point into p, which must outlive m. Returns 0, CAIRN_EMALFORMED
 * (any malformed input: never a crash) or CAIRN_ENOMEM. */
int raft_message_decode(const void *p, size_t len, struct raft_message *m);
void raft_message_decoded_free(struct raft_message *m);

/* Encodes one entry appending to out (the WAL may store entries so). */
int raft_entry_encode(const struct raft_entry *e, struct buf *out);
/* Decodes one entry from exactly len bytes; e->data points into p. 0 or
 * CAIRN_EMALFORMED. */
int raft_entry_decode(const void *p, size_t len, struct raft_entry *e);

/* ------------------------------------------------------------------------ */
/* Storage (read-only from the core's side)                                  */

/* The host's log, as the core reads it. The host writes it (appends,
 * truncates, installs snapshots, compacts) between calls to raft_step; the
 * core only reads, and only during raft_step and raft_new. Index i is
 * available if first_index <= i <= last_index; term() also answers for
 * first_index - 1 (the snapshot's index). An empty log has first_index 1,
 * last_index 0, term(0) == 0.
 *
 * Pointers returned by entries() and snapshot() are borrowed until the host
 * next modifies the storage; the core copies what it hands out. */
struct raft_storage {
    void *ctx;
    /* The persisted hard state and the configuration at the snapshot's
     * index (the core replays the configuration entries after it). */
    int (*initial_state)(void *ctx, struct raft_hard_state *hs,
                         struct raft_conf_state *cs);
    int (*first_index)(void *ctx, raft_index *out);
    int (*last_index)(void *ctx, raft_index *out);
    /* CAIRN_ECOMPACTED below first_index - 1, CAIRN_EUNAVAILABLE above
     * last_index. */
    int (*term)(void *ctx, raft_index i, raft_term *out);
    /* Entries [lo, hi) (first_index <= lo < hi <= last_index + 1), stopping
     * before the total of data lengths exceeds max_bytes, but at least one.
     * CAIRN_ECOMPACTED if lo < first_index. */
    int (*entries)(void *ctx, raft_index lo, raft_index hi, uint64_t max_bytes,
                   const struct raft_entry **out, size_t *n);
    /* The latest snapshot; CAIRN_EAGAIN if it is being prepared. */
    int (*snapshot)(void *ctx, const struct raft_snapshot **out);
};

/* The in-memory storage that ships with the library (etcd's MemoryStorage):
 * used by the simulator, the tests, the benchmark and the server's log cache.
 * It copies everything it is given and frees it on compaction and on
 * raft_memory_storage_free. Single-threaded like the core. */
struct raft_memory_storage;

int raft_memory_storage_new(struct raft_memory_storage **out);
void raft_memory_storage_free(struct raft_memory_storage *ms);
/* The table the core reads through; valid until the storage is freed. */
const struct raft_storage *
raft_memory_storage_iface(struct raft_memory_storage *ms);
/* A new cluster: an empty log whose snapshot is index 1, term 1, with
 * configuration cs and no data. Fails with CAIRN_EEXISTS unless empty. */
int raft_memory_storage_bootstrap(struct raft_memory_storage *ms,
                                  const struct raft_conf_state *cs);
void raft_memory_storage_set_hard_state(struct raft_memory_storage *ms,
                                        const struct raft_hard_state *hs);
void raft_memory_storage_hard_state(const struct raft_memory_storage *ms,
                                    struct raft_hard_state *hs);
/* Appends copies of entries (consecutive indexes), truncating any entries at
 * or after entries[0].index first. Entries older than the snapshot are
 * skipped. CAIRN_EUNAVAILABLE if entries[0].index would leave a gap;
 * CAIRN_ENOMEM. */
int raft_memory_storage_append(struct raft_memory_storage *ms,
                               const struct raft_entry *entries, size_t n);
/* Replaces the whole log by a copy of snap (a snapshot received from a
 * leader). CAIRN_ESNAPOUTOFDATE if snap is older than the current one. */
int raft_memory_storage_apply_snapshot(struct raft_memory_storage *ms,
                                       const struct raft_snapshot *snap);
/* Makes a snapshot at index (<= last index, > current snapshot) with the
 * given configuration and data (copied); the log is kept (compact it
 * separately). CAIRN_ESNAPOUTOFDATE, CAIRN_EUNAVAILABLE, CAIRN_ENOMEM. */
int raft_memory_storage_create_snapshot(struct raft_memory_storage *ms,
                                        raft_index index,
                                        const struct raft_conf_state *cs,
                                        const void *data, size_t len);
/* Drops entries up to and including index (the host compacts only what a
 * snapshot covers); the term of index stays known. CAIRN_ECOMPACTED if
 * already compacted, CAIRN_EUNAVAILABLE beyond the last index. */
int raft_memory_storage_compact(struct raft_memory_storage *ms,
                                raft_index index);
/* What the entries after the snapshot cost in memory: their data bytes
 * plus RAFT_MEMORY_STORAGE_ENTRY_OVERHEAD each. O(1). */
#define RAFT_MEMORY_STORAGE_ENTRY_OVERHEAD \
    (sizeof(struct raft_entry) + sizeof(void *))
uint64_t raft_memory_storage_bytes(const struct raft_memory_storage *ms);
/* The lowest index that raft_memory_storage_compact may be given (the
 * snapshot's index when nothing is to drop) so that the entries left after
 * it cost at most `bytes`. Walks back from the last entry: O(entries
 * kept). */
raft_index raft_memory_storage_keep_bytes(const struct raft_memory_storage *ms,
                                          uint64_t bytes);
/* The index of the first entry kept (snapshot index + 1). */
raft_index
raft_memory_storage_first_index(const struct raft_memory_storage *ms);

/* ------------------------------------------------------------------------ */
/* The core                                                                  */

struct raft;

enum raft_role {
    RAFT_FOLLOWER = 0,
    RAFT_PRE_CANDIDATE = 1,
    RAFT_CANDIDATE = 2,
    RAFT_LEADER = 3,
};
const char *raft_role_name(int role);

/* How ReadIndex confirms leadership (thesis §6.4). */
enum raft_read_only_option {
    /* A heartbeat round acknowledged by a quorum. */
    RAFT_READ_ONLY_SAFE = 0,
    /* The leader lease (§6.4.1): no round; valid only with check_quorum
     * (raft_new refuses it otherwise), and it relies on bounded clock drift
     * between members. */
    RAFT_READ_ONLY_LEASE_BASED = 1,
};

/* Test-only switches that break the protocol on purpose, so the simulator
 * can show that its checks catch each kind of bug. Compiled only when
 * CAIRN_FAULTS is defined (the ASan build); absent from production builds. */
#ifdef CAIRN_FAULTS
struct raft_faults {
    /* The leader commits entries of earlier terms by counting replicas
     * (the Figure 8 bug, LogCabin #44). */
    bool commit_earlier_terms;
    /* Vote answers go out without waiting for the hard state that records
     * the vote to be durable (after_persist false): a crash forgets it. */
    bool vote_before_persist;
    /* Votes are granted without the §5.4.1 up-to-date check. */
    bool skip_up_to_date_check;
    /* A follower appends without checking that its entry at log_term/index
     * matches (the consistency check) and without detecting conflicts. */
    bool skip_append_conflict_check;
};
#endif

struct raft_config {
    raft_id id; /* non-zero */
    /* A follower that hears nothing for election_ticks (randomized within
     * [election_ticks, 2 * election_ticks)) campaigns. Must be greater than
     * heartbeat_ticks; etcd uses 10 and 1. */
    unsigned election_ticks;
    unsigned heartbeat_ticks;
    /* Read at raft_new and during raft_step; borrowed; outlives the core. */
    const struct raft_storage *storage;
    /* The last index the host's state machine has applied (on restart);
     * committed entries are handed out from applied + 1. It may exceed the
     * stored hard state's commit (that is raised to it) but not the last
     * index (CAIRN_EINVAL). */
    raft_index applied;
    /* Most bytes of entry data in one append message; a message carries at
     * least one entry, and entries without data count nothing. */
    uint64_t max_size_per_msg;
    /* Most bytes of committed entries in one update (0: no limit). */
    uint64_t max_committed_size_per_update;
    /* Refuse proposals once the uncommitted tail of the leader's log holds
     * this many data bytes (0: no limit); an empty log tail always accepts
     * one proposal. */
    uint64_t max_uncommitted_entries_size;
    /* The in-flight window per follower in replicate state: at most this
     * many append messages (> 0) and bytes (0: no byte limit) unacknowledged.
     */
    unsigned max_inflight_msgs;
    uint64_t max_inflight_bytes;
    bool check_quorum; /* thesis §6.2 */
    bool pre_vote;     /* thesis §9.6 */
    /* Followers refuse proposals instead of forwarding them. */
    bool disable_proposal_forwarding;
    /* When the leader's commit index moves, followers it has nothing new
     * to send are not sent an append carrying only the commit at once:
     * the next append carries it, or the host steps RAFT_EVENT_SEND_COMMIT
     * within a bounded delay while update.commit_unsent says some follower
     * has not been told (docs/raft.md, "Lazy commit"). A follower waiting
     * for the commit (a proposal it forwarded, a read index it was
     * answered) is told at once. Off: etcd's behaviour, an append to every
     * follower at each commit move. */
    bool lazy_commit;
    enum raft_read_only_option read_only;
    /* Seeds the core's own generator (election timeouts). */
    uint64_t seed;
    /* Borrowed; NULL for silence. */
    const struct cairn_log *log;
#ifdef CAIRN_FAULTS
    struct raft_faults faults;
#endif
};

/* Creates a core from config and its storage's initial state. The core
 * starts as a follower of term hs.term. CAIRN_EINVAL for a bad config,
 * CAIRN_ENOMEM. */
int raft_new(const struct raft_config *config, struct raft **out);
void raft_free(struct raft *r);

/* ---- events ---- */

enum raft_event_type {
    RAFT_EVENT_TICK = 0,    /* one unit of logical time passed */
    RAFT_EVENT_RECEIVE = 1, /* a message arrived from a peer */
    RAFT_EVENT_PROPOSE = 2, /* append normal entries (leader, or forward) */
    RAFT_EVENT_PROPOSE_CONF_CHANGE = 3,
    RAFT_EVENT_READ_INDEX = 4, /* ask for a linearizable read index */
    RAFT_EVENT_TRANSFER_LEADERSHIP = 5,
    RAFT_EVENT_CAMPAIGN = 6, /* campaign now (tests, bootstrap) */
    RAFT_EVENT_PERSISTED = 7,
    RAFT_EVENT_SNAPSHOT_INSTALLED = 8,
    RAFT_EVENT_REPORT_UNREACHABLE = 9,
    RAFT_EVENT_REPORT_SNAPSHOT = 10,
    /* lazy_commit: tell every follower not told yet the commit index
     * (nothing when not leader). */
    RAFT_EVENT_SEND_COMMIT = 11,
};

/* One proposed payload (borrowed for the call; the core copies it). */
struct raft_proposal {
    const uint8_t *data;
    size_t len;
};

struct raft_event {
    uint8_t type; /* enum raft_event_type */
    union {
        /* RECEIVE: borrowed; its entries and snapshot are copied. */
        const struct raft_message *message;
        /* PROPOSE: a batch appended as consecutive entries, all or none.
         * Errors: CAIRN_ENOLEADER (no leader known),
         * CAIRN_ETRANSFERRING (leader transferring),
         * CAIRN_EPROPOSALDROPPED (forwarding disabled, uncommitted-size cap,
         * or this member was removed from the configuration). Note that a
         * forwarded proposal may still be lost; the host retries. */
        struct {
            const struct raft_proposal *items;
            size_t n;
        } propose;
        /* PROPOSE_CONF_CHANGE: borrowed. Errors as PROPOSE, plus
         * CAIRN_ECONFCHANGEPENDING (another change is pending or the
         * leader has not committed an entry of its term yet) and
         * CAIRN_EINVAL (a change that cannot apply to the configuration,
         * e.g. leaving a configuration that is not joint). */
        const struct raft_conf_change *conf_change;
        /* READ_INDEX: ctx identifies the request (use a fresh one per
         * round, PITFALLS etcd #20418); the answer comes back as a read
         * state with that ctx, possibly in a later update, or never (the
         * leader changed: the host times the read out and retries).
         * Errors: CAIRN_ENOLEADER; CAIRN_EBUSY when the leader already
         * holds 65536 unanswered requests. A leader that has not yet
         * committed an entry of its term queues the request until it has
         * (TiKV #6340). */
        uint64_t read_ctx;
        /* TRANSFER_LEADERSHIP: the transferee (forwarded by followers). */
        raft_id transferee;
        /* PERSISTED: the entries up to index, ending with one of term,
         * are durable and readable from storage. Stale reports (the entry
         * at index has another term by now) are ignored. Entries after a
         * snapshot from an update may be reported before or after its
         * SNAPSHOT_INSTALLED: the core holds them until the snapshot is
         * installed and counts them durable from then on. */
        struct {
            raft_index index;
            raft_term term;
        } persisted;
        /* SNAPSHOT_INSTALLED: the snapshot at index from an update is
         * durable, in storage and applied to the state machine. */
        raft_index snapshot_index;
        /* REPORT_UNREACHABLE: a send to id failed. */
        raft_id unreachable;
        /* REPORT_SNAPSHOT: the snapshot sent to id arrived (failed false)
         * or did not. The host must report every MsgSnap it was given:
         * until it does, the leader sends that follower nothing more. */
        struct {
            raft_id id;
            bool failed;
        } snapshot_report;
    } u;
};

/* ---- updates ---- */

struct raft_soft_state {
    raft_id lead; /* RAFT_NONE when unknown */
    uint8_t role; /* enum raft_role */
};

/* A read index answer (thesis §6.4): once the state machine has applied
 * index, the read identified by ctx may be served. Read states come in the
 * order the requests were made to the leader. */
struct raft_read_state {
    uint64_t ctx;
    raft_index index;
};

struct raft_update {
    bool soft_state_changed;
    struct raft_soft_state soft_state; /* always the current one */
    bool hard_state_changed;
    struct raft_hard_state hard_state; /* always the current one */
    /* A snapshot to persist and install, before the entries. */
    const struct raft_snapshot *snapshot;
    /* Entries to append, consecutive; the host truncates its log from
     * entries[0].index before appending. */
    const struct raft_entry *entries;
    size_t n_entries;
    /* Committed, locally durable entries to apply, in order. */
    const struct raft_entry *committed;
    size_t n_committed;
    /* True if the committed entries of this update, or the snapshot,
     * changed the configuration as of the applied index; conf_state (always
     * filled) is that configuration, which the host records with its
     * snapshots. The configuration in force may be newer (raft_status). */
    bool conf_changed;
    struct raft_conf_state conf_state;
    const struct raft_message *messages;
    size_t n_messages;
    const struct raft_read_state *read_states;
    size_t n_read_states;
    /* lazy_commit: a follower that could be sent an append has not been
     * told the commit index; the host steps RAFT_EVENT_SEND_COMMIT within
     * its bound unless a later update says false. */
    bool commit_unsent;
};

/* Feeds one event to the core and fills *update with what it produced
 * (always filled, also when an error is returned; a refused event leaves
 * the core unchanged). update's pointers are valid until the next raft_step
 * or raft_free. Errors are the per-event ones listed above and
 * CAIRN_ENOMEM (the core's state stays consistent, but the event may have
 * been partly processed: treat the member as failed). */
int raft_step(struct raft *r, const struct raft_event *event,
              struct raft_update *update);

/* Convenience wrappers around raft_step. */
int raft_tick(struct raft *r, struct raft_update *update);
int raft_receive(struct raft *r, const struct raft_message *m,
                 struct raft_update *update);
int raft_propose(struct raft *r, const void *data, size_t len,
                 struct raft_update *update);
int raft_persisted(struct raft *r, raft_index index, raft_term term,
                   struct raft_update *update);

/* Would reporting the entries handed out as persisted let the core do
 * something now: commit (the followers' acknowledgements are in and ours
 * is missing), hand out committed entries, send messages held for the
 * disk, install a snapshot? Always true on a follower or candidate, whose
 * answers wait for it. A false answer lets a host take a leader's
 * persist completions lazily (at its next wake-up for anything else,
 * e.g. a follower's acknowledgement) instead of waking for each; it must
 * ask again after every step, since any step may change the answer. */
bool raft_waits_on_persist(const struct raft *r);

/* ---- introspection ---- */

enum raft_progress_state {
    RAFT_PROGRESS_PROBE = 0,
    RAFT_PROGRESS_REPLICATE = 1,
    RAFT_PROGRESS_SNAPSHOT = 2,
};
const char *raft_progress_state_name(int state);

struct raft_progress_status {
    raft_id id;
    raft_index match;
    raft_index next;
    uint8_t state; /* enum raft_progress_state */
    bool learner;
    bool recent_active;
    bool probe_sent;
    raft_index pending_snapshot;
    uint32_t inflight_count;
    uint64_t inflight_bytes;
};

#define RAFT_STATUS_PEERS_MAX (4 * RAFT_CONF_MAX)

struct raft_status {
    raft_id id;
    struct raft_hard_state hard_state;
    struct raft_soft_state soft_state;
    raft_index applied;
    raft_index last_index;
    raft_id lead_transferee;
    /* The configuration in force (the latest in the log). */
    struct raft_conf_state conf;
    /* Leader only: one row per member of the configuration in force, and
     * per member whose removal has not committed yet. */
    uint32_t n_progress;
    struct raft_progress_status progress[RAFT_STATUS_PEERS_MAX];
};

void raft_status_get(const struct raft *r, struct raft_status *st);
/* The configuration as of the applied index (what every update's
 * conf_state carries); right after raft_new, the one config.applied left,
 * configuration entries between the storage's snapshot and it included. */
void raft_applied_conf(const struct raft *r, struct raft_conf_state *out);
/* One line for traces:
 *   "1 leader term=3 vote=1 commit=7 applied=7 last=7 lead=1"
 * Writes at most size bytes, NUL included; returns the length it wanted. */
size_t raft_describe(const struct raft *r, char *buf, size_t size);

#endif
