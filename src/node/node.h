/* node: the public header of a cairn member's logic — an event-in,
 * actions-out state machine around the Raft core, with no I/O, threads or
 * clock of its own (DESIGN.md, "The path of a write"; issue 7 item 1).
 *
 * Two halves
 * ----------
 *   struct node          the member's brain, on the LOOP thread: drives the
 *                        raft core, keeps the proposal and ReadIndex waiters,
 *                        decides lease expiry, snapshots, log compaction and
 *                        WAL release, refuses work with etcd's meanings.
 *   struct node_applier  the deterministic executor, on the APPLY thread:
 *                        decodes committed entries (docs/node.md) and runs
 *                        them against mvcc and lease, one mvcc batch per
 *                        apply batch storing the consistent index.
 * The server binds both to libuv and its WAL and apply threads; the
 * simulator binds them to simulated ones and calls the applier inline.
 *
 * The environment (struct node_env) and the order of actions
 * ----------------------------------------------------------
 * The node reaches the outside only through node_env. Every action is
 * asynchronous: an env function only records or starts the work and returns;
 * its completion comes back later as an event (node_persisted, node_applied,
 * node_snapshot_done). An env function must never call into the node.
 *   persist   the snapshot metadata (if any), then the entries (truncating
 *             the log from entries[0].index), then the hard state, durable
 *             with one fdatasync (wal_append / wal_snapshot), in the order
 *             the persists were issued. Report node_persisted(seq) in order.
 *   send      raft messages to peers. The node calls it only when the order
 *             allows: the leader's appends and heartbeats at once (its own
 *             write may be in flight), vote and append answers only after
 *             the persist they depend on completed (raft.h's contract: a
 *             follower acknowledges only what is synced). A MsgSnap carries
 *             the snapshot's metadata only (len 0): the transport streams
 *             the state machine image itself (mvcc_snapshot_write), and on
 *             the receiving side hands node_receive a MsgSnap whose data is
 *             the path of the received image file.
 *   apply     one struct node_apply_batch to run on the apply thread with
 *             node_applier_apply, in the order issued; then hand the same
 *             batch back with node_applied on the loop thread.
 *   snapshot  make a snapshot at meta->index durable: after every apply
 *             batch issued before it, sync mvcc (node_applier_sync, apply
 *             thread); then record it (wal_snap_save, then wal_snapshot:
 *             docs/wal.md), wal_snap_purge, and release the WAL segments
 *             below meta->index (wal_release) — DESIGN.md: LMDB is synced
 *             before a snapshot is taken and before segments are released.
 *             Report node_snapshot_done.
 * Nothing reaches a client before its entry is committed — which the raft
 * core hands out only once it is locally durable, also on one member — and
 * applied.
 *
 * A received snapshot (a follower far behind): the node persists its
 * metadata, and only once that is durable issues an apply batch that
 * restores mvcc from the received image (node_apply_batch_restore_path).
 * The server must keep the received image in the snap directory until the
 * restore is durable, so that a crash between the two recovers from it.
 *
 * Threads: node_* functions except node_applier_* are called on one thread
 * (the loop); the node takes no locks. node_applier_* run on the apply
 * thread (or inline in the simulator); reads of mvcc done by the node
 * (serializable and linearizable ranges, hashes, member list) use mvcc's
 * any-thread read calls.
 *
 * Callbacks to clients: every request function returns 0 when it accepted
 * the request, and then its callback runs exactly once, with a result or a
 * CAIRN_E* code — possibly before the request function returns (a
 * serializable range is answered at once). A negative return means refused
 * and the callback never runs. The result and every pointer in it are valid
 * during the callback only. Callbacks run on the loop thread and may call
 * node functions again. Every waiting request but defragment and snapshot
 * export (which end with their apply batch) has a deadline
 * (node_config.request_timeout_ms) after which it fails with CAIRN_ETIMEOUT.
 * A write's result is matched to its request by id and by the crc of its
 * bytes, so a restarted member reusing an id never answers wrongly.
 *
 * Errors with etcd's meanings: CAIRN_ENOLEADER (no leader), CAIRN_ETIMEOUT,
 * CAIRN_ELEADERCHANGED (the leader changed while a proposal or keep-alive
 * waited; the write may or may not have been applied — reads waiting for a
 * ReadIndex answer ask again instead), CAIRN_ETOOMANYREQUESTS (apply
 * lags commit by more than 5,000 entries, or too many pending requests),
 * CAIRN_ETOOBIG (an encoded request larger than max_request_bytes),
 * CAIRN_EQUOTA (the NOSPACE alarm), CAIRN_ESTOPPED (the member stopped:
 * removed, or a fatal persist/apply failure), CAIRN_ENOTLEADER (a leader-only
 * request on a follower: lease keep-alive, move-leader).
 */
#ifndef CAIRN_NODE_NODE_H
#define CAIRN_NODE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "raft/raft.h"
#include "util/util.h"
#include "v2/v2.h"
#include "wal/wal.h"

/* etcd's defaults. */
#define NODE_SNAPSHOT_COUNT_DEFAULT 100000
#define NODE_SNAPSHOT_CATCHUP_ENTRIES                             \
    5000                        /* log tail kept after a snapshot \
                                 */
#define NODE_MAX_APPLY_LAG 5000 /* commit - applied before refusing */
/* cairn's: the log cache's bound in bytes (docs/node.md, "Snapshots and
 * compaction"); etcd keeps every entry since its last snapshot. */
#define NODE_LOG_CACHE_BYTES_DEFAULT (8u << 20)
#define NODE_MAX_REQUEST_BYTES_DEFAULT (1536u * 1024)
#define NODE_MEMBER_URLS_MAX 8
#define NODE_MEMBER_NAME_MAX 64
#define NODE_URL_MAX 256

struct node;
struct node_applier;
/* A batch of work for the apply thread; owned by the node, lent to the
 * server between env.apply and node_applied. Opaque. */
struct node_apply_batch;

/* ------------------------------------------------------------------------ */
/* Members (etcd's membership.Member)                                        */

struct node_member {
    uint64_t id;
    char name[NODE_MEMBER_NAME_MAX]; /* "" until the member publishes it */
    uint32_t n_peer_urls;
    char peer_urls[NODE_MEMBER_URLS_MAX][NODE_URL_MAX];
    uint32_t n_client_urls;
    char client_urls[NODE_MEMBER_URLS_MAX][NODE_URL_MAX];
    bool is_learner;
};

/* ------------------------------------------------------------------------ */
/* Environment                                                               */

/* One persist action: what update made durable and in what order. All
 * pointers are owned by the node and stay valid until node_persisted(seq)
 * has been called. */
/* A persist whose hard state differs from the last one only in commit,
 * with no entries and no snapshot, may be written without its own
 * fdatasync (raft.h: commit may be persisted lazily; etcd's MustSync); its
 * completion must still be reported in order. */
struct node_persist {
    uint64_t seq; /* 1, 2, 3 ... in issue order */
    const struct raft_snapshot_meta
        *snap; /* NULL, or a snapshot to record
                * first (wal_snap_save, wal_snapshot) */
    /* With snap: the received image to keep for the restore that follows
     * (node_apply_batch_restore_path), or NULL when there is no image (the
     * bootstrap snapshot of a new cluster at index 1). */
    const char *snap_image_path;
    const struct raft_entry *entries;
    size_t n_entries;
    const struct raft_hard_state *hard_state; /* NULL: unchanged */
};

struct node_env {
    void *ctx;
    /* Monotonic milliseconds (lease expiry, deadlines, member ids). */
    int64_t (*now_ms)(void *ctx);
    /* Sends messages; borrowed for the call only (the transport copies or
     * encodes them). A failed send is reported later with
     * node_report_unreachable. */
    void (*send)(void *ctx, const struct raft_message *msgs, size_t n);
    void (*persist)(void *ctx, const struct node_persist *p);
    void (*apply)(void *ctx, struct node_apply_batch *b);
    void (*snapshot)(void *ctx, const struct raft_snapshot_meta *meta);
    /* Optional. When set, client proposals (put, delete, txn, compact,
     * lease grant and revoke, ...) are gathered instead of stepped one by
     * one: this is called when the first is gathered, and the host must
     * then call node_flush_proposals soon (before its loop waits again),
     * which hands them to raft as one batch: one entry batch, one persist
     * and one append message per follower for all of them. NULL: each is
     * proposed at once (the simulator, the unit harness). */
    void (*proposals_queued)(void *ctx);
    /* Optional. When set, the leader tells followers a new commit index
     * lazily (raft's lazy_commit, docs/raft.md): this is called with true
     * when some follower has not been told it, and the host must then
     * call node_send_commit within a short bound (the server: 1-2 ms)
     * unless it is called with false first. NULL: every commit move is
     * sent at once. */
    void (*commit_unsent)(void *ctx, bool unsent);
    /* Borrowed; outlives the node; NULL for silence. */
    const struct cairn_log *log;
};

/* ------------------------------------------------------------------------ */
/* Configuration and start                                                   */

#ifdef CAIRN_FAULTS
/* Test-only switches that break the node on purpose, so that the
 * whole-member simulation (issue 11) can show its checks catch each kind
 * of bug. Compiled only when CAIRN_FAULTS is defined (the ASan build). */
struct node_faults {
    /* Tell the core entries are durable as soon as they are handed to
     * env.persist, and send answers without waiting: a follower
     * acknowledges, a leader commits and answers, before the local sync. */
    bool ack_before_persist;
    /* Serve a linearizable read as soon as its round is answered, without
     * waiting for the applied index to reach it. */
    bool read_before_applied;
    /* Serve a new linearizable read from the last round's answer instead
     * of asking a new round (etcd #20418). */
    bool reuse_read_index;
    /* Run the lease clock and propose revokes on every member, not only
     * on the leader. */
    bool expire_leases_on_follower;
};
#endif

struct node_config {
    uint64_t id;             /* this member's id (non-zero) */
    uint64_t cluster_id;     /* for response headers */
    unsigned tick_ms;        /* --heartbeat-interval (etcd: 100) */
    unsigned election_ticks; /* --election-timeout / tick_ms (etcd: 10) */
    uint64_t snapshot_count; /* 0: NODE_SNAPSHOT_COUNT_DEFAULT */
    uint64_t snapshot_catchup_entries; /* 0: NODE_SNAPSHOT_CATCHUP_ENTRIES */
    uint64_t log_cache_bytes;          /* 0: NODE_LOG_CACHE_BYTES_DEFAULT */
    size_t max_request_bytes;          /* 0: NODE_MAX_REQUEST_BYTES_DEFAULT */
    bool strict_reconfig_check;
    bool pre_vote;               /* etcd 3.4's default: false; cairn: true */
    uint64_t request_timeout_ms; /* 0: 5 s + 2 election timeouts (etcd) */
    size_t max_pending_requests; /* 0: 100,000 */
    uint64_t seed;               /* raft's elections */
    /* A new cluster: its initial members (bootstrap). Ignored when
     * recovery holds a snapshot or entries (a restart). */
    const struct node_member *initial_members;
    size_t n_initial_members;
    /* A restart: what wal_recover returned (borrowed for node_new). NULL or
     * empty for a new member. */
    const struct wal_recovery *recovery;
    /* --force-new-cluster (etcd's restartAsStandaloneNode), on a restart
     * only: entries past the commit are dropped and configuration changes
     * removing every other member are appended, taken as committed and
     * handed to env.persist before node_new returns; the member then runs
     * as a one-member cluster with its data. */
    bool force_new_cluster;
    /* mvcc's consistent index at start (entries up to it are not applied
     * again). */
    uint64_t applied_index;
    /* The store the applier uses; the node reads it through mvcc's
     * any-thread calls. Borrowed; outlives the node. */
    struct mvcc_store *store;
    /* The applier (borrowed; outlives the node). The node drives the
     * lessor's primary clock and answers lease queries through the
     * applier's current lessor, which a snapshot restore replaces; the node
     * does not touch it while a restore batch is out. */
    struct node_applier *applier;
#ifdef CAIRN_FAULTS
    struct node_faults faults;
#endif
};

/* Creates the node (raft core over an in-memory copy of the recovered log).
 * A new cluster (no recovery, initial members given) is bootstrapped as a
 * snapshot at index 1, term 1 holding the initial voters, followed by one
 * entry per initial member recording it (so every member's mvcc lists the
 * same members); node_new hands that to env.persist before it returns. A
 * member joining an existing cluster passes neither and waits for the
 * leader's snapshot. CAIRN_EINVAL, CAIRN_ENOMEM. */
int node_new(const struct node_config *config, const struct node_env *env,
             struct node **out);
/* Frees the node; pending requests fail with CAIRN_ESTOPPED first. Batches
 * and persists still lent to the server must have been handed back (or the
 * server is shutting down and drops them). */
void node_free(struct node *n);

/* ------------------------------------------------------------------------ */
/* Events in (loop thread)                                                   */

/* One tick of --heartbeat-interval. */
int node_tick(struct node *n);
/* Proposes the gathered proposals (node_env.proposals_queued); a refusal
 * answers each of their waiters with it. Nothing gathered: nothing done. */
int node_flush_proposals(struct node *n);
/* Tells followers not told yet the commit index (node_env.commit_unsent);
 * nothing when none is owed or this member does not lead. */
int node_send_commit(struct node *n);
/* A message from a peer; borrowed for the call (the core copies it). */
int node_receive(struct node *n, const struct raft_message *m);
/* The persist with this seq completed; status 0 or the failure (then the
 * member stops: CAIRN_ESTOPPED to everything, never a retry). */
int node_persisted(struct node *n, uint64_t seq, int status);
/* Does the node need node_persisted for the persists in flight promptly
 * (answers held for the disk, a restore, a commit missing only this
 * member's acknowledgement, a follower's acknowledgements), or would it
 * do nothing with it until another event arrives? False also when no
 * persist is in flight. A leader of three whose followers have not
 * answered yet needs no wake-up for its own sync: the host may hand the
 * completion over at its next wake-up for anything else, provided it asks
 * again after every call into the node and wakes for the completion
 * while the answer is true. */
bool node_waits_on_persist(const struct node *n);
/* The batch b came back from node_applier_apply. */
int node_applied(struct node *n, struct node_apply_batch *b);
/* The snapshot requested at index is durable (status 0) or failed. */
int node_snapshot_done(struct node *n, raft_index index, int status);
int node_report_unreachable(struct node *n, uint64_t peer);
int node_report_snapshot(struct node *n, uint64_t peer, bool failed);
/* The peers refused this member as removed from the cluster (the
 * transport's handshake): the member stops with CAIRN_EREMOVED, as etcd's
 * does, also when it missed the log entry removing it. */
int node_report_removed(struct node *n);
/* Campaign at once (tests, a single-member start). */
int node_campaign(struct node *n);

/* ------------------------------------------------------------------------ */
/* Requests (loop thread)                                                    */

enum node_req_type {
    NODE_REQ_RANGE = 1,
    NODE_REQ_PUT,
    NODE_REQ_DELETE,
    NODE_REQ_TXN,
    NODE_REQ_COMPACT,
    NODE_REQ_LEASE_GRANT,
    NODE_REQ_LEASE_REVOKE,
    NODE_REQ_LEASE_KEEPALIVE,
    NODE_REQ_LEASE_TTL,
    NODE_REQ_LEASE_LIST,
    NODE_REQ_MEMBER_ADD,
    NODE_REQ_MEMBER_REMOVE,
    NODE_REQ_MEMBER_UPDATE,
    NODE_REQ_MEMBER_LIST,
    NODE_REQ_MEMBER_PROMOTE,
    NODE_REQ_STATUS,
    NODE_REQ_HASH,
    NODE_REQ_HASH_KV,
    NODE_REQ_MOVE_LEADER,
    NODE_REQ_DEFRAGMENT,
    NODE_REQ_ALARM,
    NODE_REQ_SNAPSHOT_EXPORT,
    NODE_REQ_AUTH,
    NODE_REQ_V2,
};

/* Alarm types and actions, numbered as etcd's AlarmType / AlarmAction. */
enum node_alarm_type {
    NODE_ALARM_NONE = 0,
    NODE_ALARM_NOSPACE = 1,
    NODE_ALARM_CORRUPT = 2
};
enum node_alarm_action {
    NODE_ALARM_GET = 0,
    NODE_ALARM_ACTIVATE = 1,
    NODE_ALARM_DEACTIVATE = 2
};
struct node_alarm {
    uint64_t member_id;
    uint8_t type; /* enum node_alarm_type */
};
#define NODE_ALARMS_MAX 64

struct node_status {
    uint64_t member_id;
    uint64_t leader;
    raft_index raft_index; /* last index */
    raft_term raft_term;
    raft_index applied_index;
    raft_index commit_index;
    uint64_t db_bytes;
    uint64_t db_in_use_bytes;
    bool is_learner;
};

/* What a request's callback receives. header: etcd's ResponseHeader
 * fields. Only the member of the union matching type is set, and only when
 * err == 0. Valid during the callback only. */
struct node_result {
    uint8_t type; /* enum node_req_type */
    int err;
    uint64_t cluster_id;
    uint64_t member_id;
    mvcc_rev revision;
    raft_term raft_term;
    union {
        struct mvcc_range_resp range;
        struct mvcc_put_resp put;
        struct mvcc_delete_resp del;
        struct mvcc_txn_resp txn;
        struct {
            int64_t id, ttl_s;
        } lease_grant;
        struct {
            int64_t id, ttl_s;
        } lease_keepalive;
        struct {
            struct lease_info info;
            const uint8_t *const *keys; /* n_keys key pointers */
            const size_t *key_lens;
            size_t n_keys;
        } lease_ttl;
        struct {
            const int64_t *ids;
            size_t n;
        } lease_list;
        /* MEMBER_*: the member concerned (add, remove, update, promote)
         * and the whole list after the change. */
        struct {
            const struct node_member *member;
            const struct node_member *list;
            size_t n;
        } members;
        struct node_status status;
        struct {
            uint32_t hash;
            mvcc_rev compact_rev;
        } hash;
        struct {
            const struct node_alarm *alarms;
            size_t n;
        } alarms;
        struct auth_result auth;
        struct v2_result v2;
    } u;
};

typedef void (*node_done_cb)(void *arg, const struct node_result *res);

/* KV. Requests are borrowed for the call (encoded at once). A
 * linearizable range takes a ReadIndex round shared with every read that
 * is waiting when the round starts, waits until the applied index reaches
 * the round's answer, then reads mvcc; serializable reads mvcc at once. */
int node_range(struct node *n, const struct mvcc_range_req *req,
               bool serializable, void *arg, node_done_cb cb);
int node_put(struct node *n, const struct mvcc_put_req *req, void *arg,
             node_done_cb cb);
int node_delete_range(struct node *n, const struct mvcc_delete_req *req,
                      void *arg, node_done_cb cb);
int node_txn(struct node *n, const struct mvcc_txn_req *req, void *arg,
             node_done_cb cb);
/* physical: answer only after the local store dropped the history (etcd's
 * physical flag: the compaction's steps finished, without a timeout);
 * otherwise once the compaction is applied, its steps going on after. */
int node_compact(struct node *n, mvcc_rev rev, bool physical, void *arg,
                 node_done_cb cb);

/* Leases. Keep-alive is leader-only: on a follower it is refused with
 * CAIRN_ENOTLEADER and the server forwards it to node_leader() (etcd
 * forwards LeaseRenew over the peer port too). Time-to-live and list are
 * answered from the local lessor. */
int node_lease_grant(struct node *n, int64_t id, int64_t ttl_s, void *arg,
                     node_done_cb cb);
int node_lease_revoke(struct node *n, int64_t id, void *arg, node_done_cb cb);
int node_lease_keepalive(struct node *n, int64_t id, void *arg,
                         node_done_cb cb);
int node_lease_ttl(struct node *n, int64_t id, bool keys, void *arg,
                   node_done_cb cb);
int node_lease_list(struct node *n, void *arg, node_done_cb cb);

/* Membership (etcd's MemberAdd / Remove / Update / Promote / List). m->id
 * is ignored for add (derived from the peer URLs and the clock, as etcd
 * does). */
int node_member_add(struct node *n, const struct node_member *m, void *arg,
                    node_done_cb cb);
int node_member_remove(struct node *n, uint64_t id, void *arg, node_done_cb cb);
/* Replaces the peer URLs of member m->id. */
int node_member_update(struct node *n, const struct node_member *m, void *arg,
                       node_done_cb cb);
int node_member_promote(struct node *n, uint64_t id, void *arg,
                        node_done_cb cb);
/* As etcd 3.4's MemberList: served from the locally applied state. */
int node_member_list(struct node *n, void *arg, node_done_cb cb);

/* Maintenance. */
int node_status(struct node *n, void *arg, node_done_cb cb);
int node_hash(struct node *n, void *arg, node_done_cb cb);
int node_hash_kv(struct node *n, mvcc_rev rev, void *arg, node_done_cb cb);
int node_move_leader(struct node *n, uint64_t target, void *arg,
                     node_done_cb cb);
/* Runs mvcc_defrag on the apply thread, between apply batches. */
int node_defragment(struct node *n, void *arg, node_done_cb cb);
/* action NODE_ALARM_GET lists; ACTIVATE/DEACTIVATE are proposed. */
int node_alarm(struct node *n, uint8_t action, uint64_t member_id, uint8_t type,
               void *arg, node_done_cb cb);
/* Writes the store's image to fd (mvcc_snapshot_write) on the apply
 * thread, between apply batches; fd is borrowed until the callback. */
int node_snapshot_export(struct node *n, int fd, void *arg, node_done_cb cb);

/* The user and role store (auth/auth.h): every operation, reads included,
 * is proposed and answered once applied, as etcd 3.4 does. req is
 * borrowed for the call (encoded at once); passwords must already be
 * hashed. Refused with auth_req_check's codes (CAIRN_ETOOBIG, CAIRN_EINVAL)
 * before proposing. */
int node_auth(struct node *n, const struct auth_req *req, void *arg,
              node_done_cb cb);

/* The v2 key store (v2/v2.h): every request is proposed and answered once
 * applied, but a GET without quorum, which reads the local store at once
 * (etcd's GET); the answer is the JSON body etcd prints. req is borrowed
 * for the call. Refused with
 * CAIRN_EINVAL (v2_req_check) before proposing. SYNC requests are the
 * leader's to propose (node_v2_sync). */
int node_v2(struct node *n, const struct v2_req *req, void *arg,
            node_done_cb cb);
/* On the leader, when some v2 key has a TTL: proposes a SYNC carrying
 * now_ns (the leader's wall clock), which expires what is due on every
 * member (etcd's sync every 500 ms). No callback; 0 when nothing to do. */
int node_v2_sync(struct node *n, int64_t now_ns);

/* ------------------------------------------------------------------------ */
/* Introspection (loop thread)                                               */

void node_status_get(struct node *n, struct node_status *st);
bool node_is_leader(const struct node *n);
uint64_t node_leader(const struct node *n);
/* The current term (node_status_get's raft_term, without its store read). */
raft_term node_term(const struct node *n);
raft_index node_applied_index(const struct node *n);
/* What the log cache's entries cost in memory (raft_memory_storage_bytes),
 * bounded by log_cache_bytes once they are applied. */
uint64_t node_log_cache_bytes(const struct node *n);
/* True once the member stopped (removed, or a fatal failure); *err says
 * why. */
bool node_stopped(const struct node *n, int *err);
/* The members as last applied (copied into list, at most max); returns how
 * many there are. */
size_t node_members(struct node *n, struct node_member *list, size_t max);
/* The same read from a store without a node (start-up checks before the
 * node exists): the member records the store's applied log left. */
size_t node_store_members(struct mvcc_store *store, struct node_member *list,
                          size_t max);
/* The ids of removed members (etcd's members_removed), kept in the store
 * for good: applied with the removal, so they survive restarts and travel
 * with snapshots. Copies at most max into ids; returns how many there are.
 * The host's transport refuses them (transport_mark_removed). */
size_t node_removed(struct node *n, uint64_t *ids, size_t max);
size_t node_store_removed(struct mvcc_store *store, uint64_t *ids, size_t max);
/* Whether id was removed from the cluster (as last applied). */
bool node_is_removed(struct node *n, uint64_t id);
/* The raft core, for traces and the simulator's invariant checks. */
const struct raft *node_raft(const struct node *n);

/* ------------------------------------------------------------------------ */
/* The applier (apply thread)                                                */

/* The lessor the applier currently uses (replaced by a snapshot restore). */
struct lessor *node_applier_lessor(const struct node_applier *a);

/* Over the store (borrowed; outlives the applier) and the lessor opened on
 * it (owned by the applier from now on: node_applier_free closes it; a
 * snapshot restore closes it and reopens one with lease_opts, copied). The
 * applier's state is all in the store: a restarted applier continues from
 * mvcc's consistent index. log may be NULL. */
int node_applier_new(struct mvcc_store *store, struct lessor *lessor,
                     const struct lease_options *lease_opts,
                     const struct cairn_log *log, struct node_applier **out);
void node_applier_free(struct node_applier *a);
/* Runs one batch: committed entries (skipping those at or below the
 * consistent index) in one mvcc batch, or a snapshot restore, or a local
 * operation (defragment, export). Fills the batch's per-request results.
 * Returns 0 or a fatal error (the batch was aborted; the member must stop
 * and replay from the stored index), which node_applied then reports.
 * After a fatal error (of a batch, a compaction step, a restore or a
 * sync) every later batch and sync fails with it and applies nothing: the
 * store keeps the consistent index of the last batch before the failure.
 * A failed defragmentation or export is not fatal. */
int node_applier_apply(struct node_applier *a, struct node_apply_batch *b);
/* mvcc_sync for the snapshot action. */
int node_applier_sync(struct node_applier *a);
/* For the server: what a batch holds (loop or apply thread). */
raft_index node_apply_batch_last_index(const struct node_apply_batch *b);
/* The received image to restore, or NULL. */
const char *node_apply_batch_restore_path(const struct node_apply_batch *b);
/* Whether b is light enough for the host to apply on its loop thread
 * rather than hand to its apply thread: entries only, at most
 * NODE_APPLY_LIGHT_ENTRIES_MAX of them, each empty or a put, with at most
 * NODE_APPLY_LIGHT_BYTES_MAX bytes in all (a delete, txn or lease revoke
 * may touch any number of keys; a put touches one). */
#define NODE_APPLY_LIGHT_ENTRIES_MAX 16
#define NODE_APPLY_LIGHT_BYTES_MAX (64 * 1024)
bool node_apply_batch_light(const struct node_apply_batch *b);
/* Whether a failure of b is not fatal (a defragmentation or an export: the
 * store is left as it was and the member goes on). */
bool node_apply_batch_failure_harmless(const struct node_apply_batch *b);
/* Frees a batch that will never be handed back because the member crashed
 * (the simulator drops its apply queue; node_free frees only what the node
 * holds). Nothing of it is applied or reported. NULL is fine. */
void node_apply_batch_free(struct node_apply_batch *b);

/* ------------------------------------------------------------------------ */
/* Entry encoding (docs/node.md), public for tools and tests                 */

/* Decodes the internal request in an entry's data and prints one line
 * ("put id=.. key=..") into out (size bytes, NUL included); returns 0 or
 * CAIRN_EMALFORMED. */
int node_entry_describe(const void *data, size_t len, char *out, size_t size);

#endif
