/* server: the public header of the member binding — the configuration a
 * member starts from (etcd's flags, already parsed), etcd's member and
 * cluster id derivation, the data directory layout, and the running server:
 * node/ bound to a libuv loop, the WAL thread, the apply thread and the peer
 * transport (DESIGN.md, "Threads").
 *
 * Threads: a struct server lives on the thread that runs its uv_loop_t (the
 * loop thread). Every function below that takes a struct server must be
 * called on that thread, and every callback it makes runs there. The WAL
 * and apply threads are private to the server.
 *
 * Ownership: server_open copies everything it needs from the config; the
 * strings returned by the fact getters are owned by the server and valid
 * until server_close.
 *
 * Data directory (as etcd's): <data-dir>/member/wal holds the WAL segments
 * (or --wal-dir when given), <data-dir>/member/snap the snapshot metadata
 * files, and <data-dir>/member/snap/db the mvcc (LMDB) store. */
#ifndef CAIRN_SERVER_SERVER_H
#define CAIRN_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node/node.h"
#include "util/util.h"

/* The etcd version whose API and behaviour a member offers; clients read it
 * from Status and /version, and etcd's e2e suite compares it with the etcd
 * it was built for (Debian's 3.4.23). */
#define SERVER_ETCD_VERSION "3.4.23"
/* The cluster version (major.minor) announced once a member serves. */
#define SERVER_CLUSTER_VERSION "3.4"

/* Bounds on the configuration: URLs per list and members of an initial
 * cluster, and the longest URL or name accepted. */
#define SERVER_URLS_MAX 16
#define SERVER_MEMBERS_MAX 32
#define SERVER_URL_LEN_MAX 320
#define SERVER_NAME_LEN_MAX 256
#define SERVER_TOKEN_LEN_MAX 1024

/* A list of URLs as given on the command line (comma-separated), each kept
 * in etcd's normalized text form ("http://127.0.0.1:2380"). */
struct server_urls {
    size_t n;
    char url[SERVER_URLS_MAX][SERVER_URL_LEN_MAX];
};

/* Parses "url1,url2,..." into out, normalizing each URL (net_url_parse then
 * net_url_format). 0, or CAIRN_EINVAL with the reason in m: an empty list,
 * an unparsable URL, more than SERVER_URLS_MAX. */
int server_urls_parse(const char *text, struct server_urls *out,
                      struct cairn_errmsg *m);

/* One member of an initial cluster: its name, peer URLs and the id etcd
 * derives for it. */
struct server_cluster_member {
    char name[SERVER_NAME_LEN_MAX];
    struct server_urls peer_urls;
    uint64_t id;
};

/* An initial cluster ("name1=url1,name1=url2,name2=url3"), members in the
 * order of first appearance, ids derived from the token as etcd's
 * NewClusterFromURLsMap does. */
struct server_initial_cluster {
    size_t n;
    struct server_cluster_member members[SERVER_MEMBERS_MAX];
    uint64_t cluster_id;
};

/* Parses --initial-cluster and derives every member id and the cluster id
 * from token. 0, or CAIRN_EINVAL with the reason in m (no '=', an empty
 * name, a bad URL, the same URL twice, too many members, a token of
 * SERVER_TOKEN_LEN_MAX bytes or more). */
int server_initial_cluster_parse(const char *text, const char *token,
                                 struct server_initial_cluster *out,
                                 struct cairn_errmsg *m);

/* etcd's member id (membership.NewMember): the first 8 bytes, big-endian, of
 * SHA-1 over the sorted peer URLs concatenated, then the cluster token, then
 * (for a member added at run time, now_s != NULL) the decimal Unix time in
 * seconds. The token must be shorter than SERVER_TOKEN_LEN_MAX. */
uint64_t server_member_id_derive(const struct server_urls *peer_urls,
                                 const char *token, const int64_t *now_s);
/* etcd's cluster id (RaftCluster.genID): the first 8 bytes, big-endian, of
 * SHA-1 over the member ids sorted ascending, each 8 bytes big-endian. ids
 * is not modified. */
uint64_t server_cluster_id_derive(const uint64_t *ids, size_t n);

/* etcd's TLS flags of one side (client or peer), as given: NULL or ""
 * means unset. docs/tls.md maps each onto net's struct net_tls_config. */
struct server_tls_flags {
    const char *cert_file;        /* --cert-file / --peer-cert-file */
    const char *key_file;         /* --key-file / --peer-key-file */
    const char *trusted_ca_file;  /* --trusted-ca-file / --peer-... */
    const char *crl_file;         /* --client-crl-file / --peer-crl-file */
    bool client_cert_auth;        /* --client-cert-auth / --peer-... */
    bool auto_tls;                /* --auto-tls / --peer-auto-tls */
    const char *allowed_cn;       /* --peer-cert-allowed-cn (peer only) */
    const char *allowed_hostname; /* --client-/--peer-cert-allowed-hostname */
    /* --experimental-peer-skip-client-san-verification (peer only) */
    bool skip_client_san_verify;
};

enum server_auto_compaction_mode {
    SERVER_AUTO_COMPACTION_PERIODIC = 0,
    SERVER_AUTO_COMPACTION_REVISION = 1,
};

/* etcd's --bcrypt-cost default (bcrypt.DefaultCost). */
#define SERVER_BCRYPT_COST_DEFAULT 10

/* Everything a member starts from: etcd's flags with etcd's defaults
 * (server_config_defaults). Strings are borrowed by server_open for the
 * duration of the call only. */
/* What --experimental-initial-corrupt-check compares (etcd's
 * CheckInitialHashKV): this member's HashKV at its store's current
 * revision, taken before the node, the peer transport and the API start, and
 * the other members as the store lists them. */
struct server_hash_check {
    uint64_t member_id;
    int64_t revision;
    int64_t compact_revision; /* -1 before the first compaction */
    uint32_t hash;
    const struct node_member *peers; /* borrowed for the call */
    size_t n_peers;
    uint64_t timeout_ms; /* per peer: etcd's 5 s + 2 election timeouts */
};
/* Called by server_open on a restart from an existing data dir when the
 * check is on: asks the peers for their HashKV at c->revision and returns
 * 0 to let the member start, or a negative code with the reason in msg
 * (server_open then fails with it). Runs on the loop thread before
 * anything else does, and may block. */
typedef int (*server_initial_check_fn)(void *arg,
                                       const struct server_hash_check *c,
                                       struct cairn_errmsg *msg);

struct server_config {
    const char *name;     /* --name, "default" */
    const char *data_dir; /* --data-dir, "<name>.etcd" */
    const char *wal_dir;  /* --wal-dir, NULL: <data-dir>/member/wal */
    struct server_urls listen_client_urls; /* http://localhost:2379 */
    /* etcd's --listen-metrics-urls: extra listeners serving only /metrics
     * and /health (the API layer opens them; the member does not). */
    struct server_urls listen_metrics_urls;         /* none */
    struct server_urls advertise_client_urls;       /* http://localhost:2379 */
    struct server_urls listen_peer_urls;            /* http://localhost:2380 */
    struct server_urls initial_advertise_peer_urls; /* http://localhost:2380 */
    const char *initial_cluster;       /* "default=http://localhost:2380" */
    bool initial_cluster_existing;     /* --initial-cluster-state existing */
    const char *initial_cluster_token; /* "etcd-cluster" */
    uint64_t snapshot_count;           /* 100000 */
    /* --experimental-snapshot-catchup-entries (etcd 3.5's flag): the raft
     * log tail kept after a snapshot for slow followers. 5000. */
    uint64_t snapshot_catchup_entries;
    unsigned heartbeat_interval_ms;  /* 100 */
    unsigned election_timeout_ms;    /* 1000 */
    int64_t quota_backend_bytes;     /* 0: 2 GiB */
    uint64_t max_request_bytes;      /* 1.5 MiB */
    uint32_t max_concurrent_streams; /* 2^32 - 1 */
    unsigned max_txn_ops;            /* 128 */
    unsigned bcrypt_cost;            /* --bcrypt-cost, 10 (4..31) */
    unsigned max_snapshots;          /* 5 (0: keep all) */
    bool strict_reconfig_check;      /* true */
    bool pre_vote;                   /* false in etcd 3.4 */
    /* --experimental-initial-corrupt-check (false): on a restart, compare
     * this member's HashKV with its peers' before starting (initial_check
     * below does the asking). */
    bool initial_corrupt_check;
    server_initial_check_fn initial_check; /* NULL: no check */
    void *initial_check_arg;
    /* --initial-election-tick-advance (true): once two peers are
     * connected within 5 s of start, skip all but two ticks of the first
     * election timeout, as etcd does. */
    bool initial_election_tick_advance;
    /* --force-new-cluster (false): on a restart from an existing data
     * dir, drop uncommitted entries and remove every other member (etcd's
     * restartAsStandaloneNode); ignored for a new member, as in etcd. */
    bool force_new_cluster;
    /* --enable-v2 (false): serve etcd's v2 HTTP API (/v2/keys...). */
    bool enable_v2;

    enum server_auto_compaction_mode auto_compaction_mode; /* periodic */
    /* --auto-compaction-retention in milliseconds (periodic) or revisions
     * (revision); 0 disables auto compaction. */
    int64_t auto_compaction_retention;
    enum cairn_log_level log_level; /* info */
    /* TLS (docs/tls.md): each side gets a context when it has a
     * certificate, auto-TLS or a TLS URL; --cipher-suites applies to both. */
    struct server_tls_flags client_tls;
    struct server_tls_flags peer_tls;
    const char *cipher_suites; /* --cipher-suites, etcd's names; NULL: Go's */
};

/* Fills c with etcd's defaults (as listed beside each field). */
void server_config_defaults(struct server_config *c);

/* The paths of a member's data directory. */
struct server_paths {
    char member[4096]; /* <data-dir>/member */
    char wal[4096];    /* --wal-dir or <data-dir>/member/wal */
    char snap[4096];   /* <data-dir>/member/snap */
    char db[4096];     /* <data-dir>/member/snap/db (the LMDB directory) */
};
/* Fills p from data_dir and wal_dir (NULL for the default). CAIRN_ETOOBIG
 * when a path does not fit. */
int server_paths_init(struct server_paths *p, const char *data_dir,
                      const char *wal_dir);

struct server;
struct net_tls;

/* Opens a member on loop: reads or creates the data directory (a restart
 * from an existing one recovers snapshot + WAL + LMDB and ignores the
 * initial-cluster settings, as etcd does), opens the listeners and starts
 * the WAL and apply threads and the tick timer. Returns 0 with *out set, or
 * an error with the reason in m. log is borrowed and outlives the server.
 * On an error *out may still be set (the failure came after handles were
 * opened on the loop): the caller then runs the loop until it has nothing
 * left of the server's and calls server_close(*out). */
int server_open(uv_loop_t *loop, const struct server_config *c,
                struct cairn_log *log, struct server **out,
                struct cairn_errmsg *m);

/* Called once the server has stopped: status 0 after a graceful stop, or the
 * error that stopped it (a failed fdatasync: CAIRN_ESYNC; removal from the
 * cluster: CAIRN_EREMOVED). The server may be closed from the callback. */
typedef void (*server_stopped_cb)(void *arg, int status);

/* Registers the callback called when the server stops, for whatever
 * reason. */
void server_on_stopped(struct server *s, void *arg, server_stopped_cb cb);

/* Starts a graceful stop (SIGTERM, SIGINT): a leader first hands leadership
 * to the most up-to-date follower (bounded by two election timeouts), then the
 * member stops taking requests, drains its WAL and apply queues and closes
 * its handles; the stopped callback follows. Calling it again is harmless. */
void server_stop(struct server *s);

/* Frees the server. It must have stopped (the stopped callback was called)
 * or never have started; the loop must have no other use for its handles. */
void server_close(struct server *s);

/* ---- facts (loop thread) ---- */
uint64_t server_member_id(const struct server *s);
uint64_t server_cluster_id(const struct server *s);
const char *server_name(const struct server *s);
const struct server_urls *server_client_urls(const struct server *s);
const struct server_urls *server_peer_urls(const struct server *s);
/* The TLS context of the client side (for https/unixs client URLs, and for
 * dialing another member's client URL), or NULL when the client side has
 * no TLS. Owned by the server, valid until server_close. */
struct net_tls *server_client_tls(const struct server *s);
/* Limits the API layer enforces (--max-txn-ops, --max-request-bytes,
 * --max-concurrent-streams). */
unsigned server_max_txn_ops(const struct server *s);
bool server_enable_v2(const struct server *s);
uint64_t server_max_request_bytes(const struct server *s);
uint32_t server_max_concurrent_streams(const struct server *s);
/* The leader's id (0: none known), and whether this member leads. */
uint64_t server_leader(const struct server *s);
bool server_is_leader(const struct server *s);
/* True once the member has joined and can serve (it has logged
 * "published" and "enabled capabilities for version"). */
bool server_ready(const struct server *s);
/* The loop the server runs on. */
uv_loop_t *server_loop(const struct server *s);
/* The member's mvcc store, for the API layer's watch hubs
 * (mvcc_watch_hub_init) and nothing else: writes go through the requests
 * below. NULL while a joining member has not started; valid until the
 * server stops. */
struct mvcc_store *server_store(const struct server *s);

/* ---- metrics (loop thread) ----
 *
 * What /metrics shows of the member, with etcd's meanings
 * (etcdserver/metrics.go, wal/metrics.go, mvcc/backend/metrics.go,
 * rafthttp/metrics.go). The histograms are counted on the threads that do
 * the work (WAL fsyncs on the WAL thread, LMDB commits and syncs on the
 * apply thread, probe round trips on the loop) with relaxed atomics. */
#define SERVER_METRICS_PEERS_MAX 64
/* etcd's buckets for the WAL fsync and backend commit histograms:
 * ExponentialBuckets(0.001, 2, 14). */
#define SERVER_DISK_HIST_START_NS 1000000u
#define SERVER_DISK_HIST_BUCKETS 14
struct server_metrics {
    uint64_t leader_changes_seen;     /* a new leader (not none) was seen */
    uint64_t proposals_committed;     /* the commit index, as etcd's gauge */
    uint64_t proposals_applied;       /* the applied index */
    uint64_t proposals_pending;       /* proposals waiting for their result */
    uint64_t proposals_failed;        /* refused or ended without a leader, by
                                       * a timeout, a drop or a stop */
    struct cairn_hist_snap wal_fsync; /* seconds of each WAL fdatasync */
    struct cairn_hist_snap backend_commit; /* LMDB commits and syncs */
    struct mvcc_op_counts mvcc;            /* zero until the store opens */
    size_t n_peers;
    struct {
        uint64_t id;
        struct cairn_hist_snap rtt; /* probe round trips to that peer */
    } peers[SERVER_METRICS_PEERS_MAX];
};
/* Fills *out (large: about 12 KiB). Any time between open and close. */
void server_metrics(struct server *s, struct server_metrics *out);

/* Called on the loop after every apply batch the node took back, so that
 * the API layer polls its watch hubs (mvcc_watch_hub_poll) as mvcc.h asks;
 * not called once the server stops. One callback; NULL removes it. */
typedef void (*server_applied_cb)(void *arg);
void server_on_applied(struct server *s, void *arg, server_applied_cb cb);

/* The first client URL member id published (its applied record), copied
 * into out (size bytes); false when unknown, not published yet, or too
 * long. Used to forward a follower's lease keep-alive to the leader. */
bool server_member_client_url(struct server *s, uint64_t id, char *out,
                              size_t size);

/* ---- watch hubs (loop thread) ----
 *
 * One hub of mvcc watchers per client Watch stream (mvcc.h's watch hub
 * over server_store), kept by the server so that it polls every hub after
 * each applied batch and soon after each create (a watch from a past
 * revision gets its history without waiting for a write). Responses go to
 * cb(ctx, ...) on the loop thread with mvcc_watch_cb's contract. When the
 * member stops, the server closes the mvcc hubs before the store: no
 * callback comes after that, and the other calls on the hub return
 * CAIRN_ESHUTDOWN; server_watch_close must still be called, before
 * server_close. */
struct server_watch;
int server_watch_open(struct server *s, void *ctx, mvcc_watch_cb cb,
                      struct server_watch **out);
void server_watch_close(struct server *s, struct server_watch *w);
/* mvcc_watch_create/cancel/progress/resume on w's hub. */
int server_watch_create(struct server *s, struct server_watch *w,
                        const struct mvcc_watch_req *req, int64_t *id);
int server_watch_cancel(struct server *s, struct server_watch *w, int64_t id);
int server_watch_progress(struct server *s, struct server_watch *w, int64_t id);
int server_watch_resume(struct server *s, struct server_watch *w, int64_t id);
/* The header of watch answers: ids, the store's current revision (0 once
 * stopped) and the current term. */
void server_watch_header(struct server *s, uint64_t *cluster_id,
                         uint64_t *member_id, int64_t *revision,
                         uint64_t *term);

/* ---- requests (loop thread) ----
 *
 * The request interface the API layer calls: a pass-through to node/'s
 * request functions (node/node.h documents each: arguments, results,
 * errors with etcd's meanings, and the callback contract: 0 means accepted
 * and cb runs exactly once, on the loop thread, possibly before the call
 * returns; a negative return means refused and cb never runs). The server
 * adds one refusal: CAIRN_ESHUTDOWN once server_stop was called or the
 * member stopped, and while a joining member has not yet heard from the
 * cluster (server_ready tells when it serves). Requests are borrowed for the
 * call only. Keep-alive on a follower is refused with CAIRN_ENOTLEADER by the
 * node; forwarding it to the leader is the API layer's business
 * (server_leader). */
int server_range(struct server *s, const struct mvcc_range_req *req,
                 bool serializable, void *arg, node_done_cb cb);
int server_put(struct server *s, const struct mvcc_put_req *req, void *arg,
               node_done_cb cb);
int server_delete_range(struct server *s, const struct mvcc_delete_req *req,
                        void *arg, node_done_cb cb);
int server_txn(struct server *s, const struct mvcc_txn_req *req, void *arg,
               node_done_cb cb);
int server_compact(struct server *s, mvcc_rev rev, bool physical, void *arg,
                   node_done_cb cb);
int server_lease_grant(struct server *s, int64_t id, int64_t ttl_s, void *arg,
                       node_done_cb cb);
int server_lease_revoke(struct server *s, int64_t id, void *arg,
                        node_done_cb cb);
int server_lease_keepalive(struct server *s, int64_t id, void *arg,
                           node_done_cb cb);
int server_lease_ttl(struct server *s, int64_t id, bool keys, void *arg,
                     node_done_cb cb);
int server_lease_list(struct server *s, void *arg, node_done_cb cb);
int server_member_add(struct server *s, const struct node_member *m, void *arg,
                      node_done_cb cb);
int server_member_remove(struct server *s, uint64_t id, void *arg,
                         node_done_cb cb);
int server_member_update(struct server *s, const struct node_member *m,
                         void *arg, node_done_cb cb);
int server_member_promote(struct server *s, uint64_t id, void *arg,
                          node_done_cb cb);
int server_member_list(struct server *s, void *arg, node_done_cb cb);
int server_status(struct server *s, void *arg, node_done_cb cb);
int server_hash(struct server *s, void *arg, node_done_cb cb);
int server_hash_kv(struct server *s, mvcc_rev rev, void *arg, node_done_cb cb);
int server_move_leader(struct server *s, uint64_t target, void *arg,
                       node_done_cb cb);
int server_defragment(struct server *s, void *arg, node_done_cb cb);
int server_alarm(struct server *s, uint8_t action, uint64_t member_id,
                 uint8_t type, void *arg, node_done_cb cb);
int server_snapshot_export(struct server *s, int fd, void *arg,
                           node_done_cb cb);
/* The user and role store (node_auth). For USER_ADD (unless no_password)
 * and USER_CHANGE_PASSWORD, req->password is the plaintext: it is hashed
 * with bcrypt (--bcrypt-cost) on libuv's thread pool, then proposed; the
 * plaintext is wiped and never proposed. Refusals after the hash (the
 * member stopped, no leader...) come through cb as the result's err. */
int server_auth(struct server *s, const struct auth_req *req, void *arg,
                node_done_cb cb);

/* The v2 key store (node_v2; src/server/v2.c). server_v2_scan reads the
 * committed history (v2_history_scan's contract, with the
 * applied Raft index in pos, for X-Raft-Index); server_v2_index is the
 * committed etcd index. server_v2_wait calls cb once, after the next
 * applied batch (the waiter is then freed): a v2 watcher rescans then;
 * cancel before that frees it without a call. Loop thread. */
int server_v2(struct server *s, const struct v2_req *req, void *arg,
              node_done_cb cb);
int server_v2_scan(struct server *s, const char *path, size_t len,
                   bool recursive, bool live, uint64_t since, struct buf *out,
                   struct v2_scan_pos *pos);
uint64_t server_v2_index(struct server *s);
struct server_v2_waiter;
typedef void (*server_v2_wake_cb)(void *arg);
int server_v2_wait(struct server *s, void *arg, server_v2_wake_cb cb,
                   struct server_v2_waiter **out);
void server_v2_wait_cancel(struct server *s, struct server_v2_waiter *w);

#endif
