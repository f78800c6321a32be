/* server_int: the server's private state, shared by its source files
 * (server.c: start-up, threads and the node environment; requests.c: the
 * request pass-through; join.c, compactor.c, watch.c). */
#ifndef CAIRN_SERVER_SERVER_INT_H
#define CAIRN_SERVER_SERVER_INT_H

#include <pthread.h>

#include "lease/lease.h"
#include "mvcc/mvcc.h"
#include "net/net.h"
#include "node/node.h"
#include "server/server.h"
#include "server/wake.h"
#include "transport/transport.h"
#include "wal/wal.h"

/* Bounds of the queues to the WAL and apply threads (items in flight); the
 * loop blocks on a full queue, which is the back-pressure on the node. */
#define SERVER__WAL_QUEUE_CAP 1024
#define SERVER__APPLY_QUEUE_CAP 1024
/* Most persists merged into one wal_append (one fdatasync). */
#define SERVER__WAL_BATCH_MAX 64
#define SERVER__MEMBERS_MAX 64
/* The leader's bound on telling followers a new commit index when no
 * append carries it sooner (node_env.commit_unsent): libuv's timers count
 * whole milliseconds, so 2 means more than 1 ms and at most 2. */
#define SERVER__COMMIT_DELAY_MS 2
#define SERVER__JOIN_SENDERS_MAX 32
/* Revisions a periodic compactor remembers (etcd: retention / retry + 1,
 * 11 for retentions up to an hour, 10 more per hour beyond). */
#define SERVER__COMPACT_WINDOW_MAX 4096

/* TLS (tls.c): opens the client and peer contexts from c as etcd's
 * configurePeerListeners/configureClientListeners would, with etcd's
 * refusals; logs what it ignores. server__tls_close frees both (NULL ok). */
int server__tls_open(struct server *s, const struct server_config *c,
                     struct cairn_errmsg *m);
void server__tls_close(struct server *s);

/* Auto compaction state (compactor.c), loop thread. */
struct server__compactor {
    enum server_auto_compaction_mode mode;
    int64_t retention; /* ms (periodic) or revisions; 0: off */
    int64_t compact_interval_ms;
    int64_t base_interval_ms;
    int64_t last_success_ms;
    mvcc_rev prev_rev;
    mvcc_rev asked_rev;
    bool in_flight;
    size_t window;
    size_t n_revs;
    mvcc_rev revs[SERVER__COMPACT_WINDOW_MAX];
};

/* Counters behind server_metrics (metrics.c). The histograms are written
 * by the WAL and apply threads (atomics); the rest only on the loop. */
struct server__metrics {
    struct cairn_hist wal_fsync;
    struct cairn_hist backend_commit;
    uint64_t leader;
    uint64_t leader_changes;
    uint64_t proposals_pending;
    uint64_t proposals_failed;
};

enum server__job_kind {
    SERVER__JOB_PERSIST = 1, /* WAL thread: a node_persist */
    SERVER__JOB_APPLY,       /* apply thread: a node_apply_batch */
    SERVER__JOB_SNAPSHOT,    /* apply thread (mvcc sync), then WAL thread */
};

/* One unit of work handed to a thread and back to the loop through the
 * done list. Allocated by the loop, freed by the loop. */
struct server__job {
    enum server__job_kind kind;
    int status;
    struct server__job *next; /* in the done list */
    bool counted;             /* counted in apply_inflight */
    const struct node_persist *persist;
    uint64_t seq;
    struct node_apply_batch *batch;
    /* Snapshot jobs only (owned): the meta is over 1 KiB, and inline it
     * made every persist and apply job a large, zeroed allocation. */
    struct raft_snapshot_meta *snap;
};

struct server {
    uv_loop_t *loop;
    struct cairn_log *log;
    char name[SERVER_NAME_LEN_MAX];
    struct server_urls client_urls;
    struct server_urls peer_urls;
    struct server_urls listen_peer_urls;
    struct server_paths paths;
    uint64_t member_id;
    uint64_t cluster_id;
    uint64_t max_request_bytes;

    struct cairn_fs fs;
    struct wal *wal; /* the WAL thread's once started */
    struct wal_recovery rec;
    struct mvcc_store *store;
    struct lessor *lessor; /* until the applier owns it */
    struct node_applier *applier;
    struct node *node;
    struct transport *transport;
    struct node_member *members; /* SERVER__MEMBERS_MAX, for reconciling */
    size_t n_removed_marked;     /* removed ids handed to the transport */
    /* Each transport peer's URLs as last given to it (crc32c of them), so
     * that an applied member update redials at the new ones. */
    struct {
        uint64_t id;
        uint32_t crc;
    } peer_crcs[SERVER__MEMBERS_MAX];
    size_t n_peer_crcs;

    uv_timer_t tick;
    uv_timer_t stop_timer;
    uv_idle_t prop_idle;     /* runs node_flush_proposals once per turn */
    uv_timer_t commit_timer; /* runs node_send_commit (lazy commit) */
    uv_idle_t done_idle;     /* hands back batches applied on the loop */
    /* Apply and snapshot jobs on apply_q whose completion has not been
     * dispatched: while any is, the apply thread may be writing the store,
     * so no batch is applied on the loop. */
    unsigned apply_inflight;
    uv_timer_t compact_timer;
    struct server__compactor compactor;
    struct server__wake wake; /* the threads' completions, watch polls */
    pthread_t wal_thread;
    pthread_t apply_thread;
    struct cairn_queue wal_q;
    struct cairn_queue apply_q;
    pthread_mutex_t done_mu;
    struct server__job *done_head;
    struct server__job *done_tail;

    int64_t start_ms; /* loop time at start (the advance window) */
    void *stopped_arg;
    server_stopped_cb stopped_cb;
    void *applied_arg;
    server_applied_cb applied_cb;

    /* TLS contexts (tls.c); NULL when that side has no TLS. Closed by
     * server_close, after every connection using them. */
    struct net_tls *client_tls;
    struct net_tls *peer_tls;

    /* What the second half of start-up needs from the configuration (it
     * runs later when joining a running cluster). */
    struct server_config cfg;          /* its strings are not used */
    struct server_initial_cluster *ic; /* parsed --initial-cluster */
    struct server__join *join;         /* while joining; see join.c */
    /* The members whose handshakes told us our id: first peers. */
    uint64_t join_senders[SERVER__JOIN_SENDERS_MAX];
    size_t n_join_senders;

    struct server__metrics metrics;

    /* v2 watchers waiting for the next applied batch (v2.c) and the loop
     * time of the last SYNC check. */
    struct server_v2_waiter *v2_waiters;
    uint64_t v2_woken_index; /* the v2 index at the last wake */
    uint64_t v2_sync_ms;

    /* Watch hubs of the API's Watch streams (watch.c). */
    struct server_watch *watches;

    /* Publishing this member's name and client URLs (etcd's publish):
     * the loop time of the last attempt, retried until applied. */
    uint64_t publish_ms;

    /* Small fields last, packed. */
    unsigned max_txn_ops;
    uint32_t max_concurrent_streams;
    unsigned max_snapshots;
    unsigned heartbeat_ms;
    unsigned election_ms;
    int lock_fd; /* flock'ed <data-dir>/member/lock, or -1 */
    int stop_status;
    int closing_handles; /* uv handles being closed */
    int pending_work;    /* snapshot images being written, passwords hashed */
    bool enable_v2;
    bool threads_started;
    bool inline_work;     /* the threads are gone: env work runs on the loop */
    bool handles_ready;   /* wake-up and timers initialized */
    bool ready;           /* ready to serve (logged once) */
    bool published;       /* our attributes are in the applied members */
    bool publish_tried;   /* publish_ms is set */
    bool advance_pending; /* initial election tick advance still due */
    unsigned trim_ticks;  /* ticks since the heap was last trimmed */
    bool stopping;        /* server_stop called or the member stopped */
    bool shutting_down;   /* the stop's second half has begun */
    bool transfer_done;   /* the leadership transfer answered */
    bool state_freed;     /* threads joined, node and stores freed */
    bool stopped;         /* the stopped callback has been called */
};

/* Whether requests are still taken. */
bool server__serving(const struct server *s);
/* Stops the member with status (0: graceful). */
void server__shutdown(struct server *s, int status);
/* Work queued on libuv's thread pool (counted in pending_work) ended: the
 * stop waits for the last one before freeing the state. */
void server__work_done(struct server *s);
/* --bcrypt-cost as etcd uses it: outside bcrypt's 4..31, the default. */
unsigned server__bcrypt_cost(unsigned cost);

/* Joining a running cluster (join.c): listens on the peer URLs for the
 * leader's first handshake; server__join_learned continues the start. */
int server__join_start(struct server *s, struct cairn_errmsg *m);
void server__join_close(struct server *s);
void server__join_free(struct server *s);
void server__join_learned(struct server *s, uint64_t cluster_id,
                          uint64_t member_id, const uint64_t *senders,
                          size_t n_senders);

/* Auto compaction (compactor.c): the timer is initialized with the other
 * handles; start once the node runs. */
void server__compactor_init_timer(struct server *s);
void server__compactor_start(struct server *s);

/* Watch hubs (watch.c): poll every hub (after an applied batch, and when
 * woken after a create or resume); close the mvcc hubs before the store. */
void server__watch_poll(struct server *s);
void server__watch_close_hubs(struct server *s);

/* v2 (v2.c): wake the history waiters after an applied batch; the
 * leader's SYNC, checked on every tick; free the waiters at close. */
void server__v2_applied(struct server *s);
void server__v2_tick(struct server *s);
void server__v2_free(struct server *s);

/* Metrics (metrics.c): set up before the threads start; note a leader
 * change (on each tick and completion); count a proposal handed to the
 * node (wraps its callback) and its outcome. */
void server__metrics_init(struct server *s);
void server__metrics_note_leader(struct server *s);
int server__propose_begin(struct server *s, void **arg, node_done_cb *cb);
void server__propose_end(struct server *s, void *arg, int rv);

#endif
