/* api: the public header of the etcd v3 API layer: the services of etcd
 * 3.4 (KV, Lease, Cluster, Maintenance, Auth with authentication disabled)
 * on rpc/'s gRPC server, HTTP/1.1 /health, /version and /metrics on the same
 * port, and the one table mapping cairn's error codes to gRPC codes and etcd's
 * error texts.
 *
 * The member behind the API is reached through a table of functions, struct
 * api_backend, that the server fills (its request interface): api/ never
 * touches mvcc, lease or raft state, it only converts between the wire
 * types (proto/) and the request and response types of mvcc/mvcc.h, which
 * are what the member proposes and applies.
 *
 * Threads: everything here runs on the one loop thread that owns the
 * struct api; every backend function is called there and every backend
 * completion callback must be called there.
 *
 * Ownership: api_open copies the backend table; its arg is borrowed and
 * must outlive the api. Requests handed to the backend are borrowed for the
 * duration of the backend call only (the backend copies what it keeps, as
 * it must to propose them). Responses handed back to a completion callback
 * are borrowed for the duration of that callback. */
#ifndef CAIRN_API_API_H
#define CAIRN_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "mvcc/mvcc.h"
#include "proto/proto.h"
#include "rpc/rpc.h"
#include "server/server.h"
#include "util/util.h"

/* The version we claim on /version, /metrics and in Status: the member's
 * (etcd 3.4.23, the version of Debian's etcd whose e2e suite checks it);
 * cluster 3.4.0. */
#define API_ETCD_VERSION SERVER_ETCD_VERSION
#define API_CLUSTER_VERSION "3.4.0"

/* ---- errors: the one table ---- */

/* A gRPC status as etcd answers it. message is static. */
struct api_status {
    int code;            /* enum rpc_code */
    const char *message; /* etcd's text, e.g. "etcdserver: key not found" */
};
/* The status for a cairn code (0 gives OK and ""). Codes with no etcd
 * equivalent answer as etcd answers an error it does not know: UNKNOWN
 * with the error's own text. */
struct api_status api_status_from_err(int err);
/* The reverse, for an answer forwarded from the leader: the cairn code
 * whose row is (code, message); CAIRN_ENOTLEADER (the client may retry)
 * for any other. */
int api_err_from_status(int code, const char *message);

/* ---- the member behind the API (the server's request interface) ---- */

/* etcd's ResponseHeader, as a struct node_result carries it. */
struct api_header {
    uint64_t cluster_id;
    uint64_t member_id;
    int64_t revision;
    uint64_t raft_term;
};
/* The header of a request's result. */
struct api_header api_header_of(const struct node_result *res);

/* Counters for /metrics the member may keep (etcd's names beside each). */
#define API_METRICS_PEERS_MAX 64
struct api_metrics {
    uint64_t leader_changes_seen; /* etcd_server_leader_changes_seen_total */
    uint64_t proposals_committed; /* etcd_server_proposals_committed_total */
    uint64_t proposals_applied;   /* etcd_server_proposals_applied_total */
    uint64_t proposals_pending;   /* etcd_server_proposals_pending */
    uint64_t proposals_failed;    /* etcd_server_proposals_failed_total */
    /* mvcc's operation counters (has_mvcc false: left out):
     * etcd_mvcc_{put,delete,range,txn}_total (and their etcd_debugging_
     * twins), etcd_debugging_mvcc_keys_total. */
    bool has_mvcc;
    struct mvcc_op_counts mvcc;
    /* Histograms in nanoseconds, rendered in seconds; one with n_buckets 0
     * is left out. etcd_disk_wal_fsync_duration_seconds: */
    struct cairn_hist_snap wal_fsync;
    /* etcd_disk_backend_commit_duration_seconds: */
    struct cairn_hist_snap backend_commit;
    /* etcd_network_peer_round_trip_time_seconds{To="<peer id, hex>"}: */
    size_t n_peers;
    struct api_peer_rtt {
        uint64_t id;
        struct cairn_hist_snap rtt;
    } peers[API_METRICS_PEERS_MAX];
};

/* The requests the API makes, with the signatures and the contract of
 * server.h's request interface (arg instead of the struct server): 0 means
 * accepted and cb runs exactly once on the loop thread, possibly before the
 * function returns; a negative code means refused and cb never runs.
 * api_backend_server() fills it from a running server; tests fill it with
 * a fake member. */
struct api_backend {
    void *arg;
    int (*range)(void *arg, const struct mvcc_range_req *req, bool serializable,
                 void *ctx, node_done_cb cb);
    int (*put)(void *arg, const struct mvcc_put_req *req, void *ctx,
               node_done_cb cb);
    int (*delete_range)(void *arg, const struct mvcc_delete_req *req, void *ctx,
                        node_done_cb cb);
    int (*txn)(void *arg, const struct mvcc_txn_req *req, void *ctx,
               node_done_cb cb);
    int (*compact)(void *arg, mvcc_rev rev, bool physical, void *ctx,
                   node_done_cb cb);
    int (*status)(void *arg, void *ctx, node_done_cb cb);
    int (*alarm)(void *arg, uint8_t action, uint64_t member_id, uint8_t type,
                 void *ctx, node_done_cb cb);
    int (*hash)(void *arg, void *ctx, node_done_cb cb);
    int (*hash_kv)(void *arg, mvcc_rev rev, void *ctx, node_done_cb cb);
    int (*move_leader)(void *arg, uint64_t target, void *ctx, node_done_cb cb);
    int (*defragment)(void *arg, void *ctx, node_done_cb cb);
    /* Writes the store's image to fd (borrowed until cb). */
    int (*snapshot_export)(void *arg, int fd, void *ctx, node_done_cb cb);
    int (*lease_grant)(void *arg, int64_t id, int64_t ttl_s, void *ctx,
                       node_done_cb cb);
    int (*lease_revoke)(void *arg, int64_t id, void *ctx, node_done_cb cb);
    int (*lease_keepalive)(void *arg, int64_t id, void *ctx, node_done_cb cb);
    int (*lease_ttl)(void *arg, int64_t id, bool keys, void *ctx,
                     node_done_cb cb);
    int (*lease_list)(void *arg, void *ctx, node_done_cb cb);
    int (*member_add)(void *arg, const struct node_member *m, void *ctx,
                      node_done_cb cb);
    int (*member_remove)(void *arg, uint64_t id, void *ctx, node_done_cb cb);
    int (*member_update)(void *arg, const struct node_member *m, void *ctx,
                         node_done_cb cb);
    int (*member_promote)(void *arg, uint64_t id, void *ctx, node_done_cb cb);
    int (*member_list)(void *arg, void *ctx, node_done_cb cb);
    /* Watch, one hub per Watch stream (watch ids are per stream, as
     * etcd's). May all be NULL: the Watch service is then not offered.
     * watch_open makes a hub whose responses go to cb(ctx, ...) on the loop
     * thread (mvcc_watch_cb's contract: CAIRN_EAGAIN pauses that watcher
     * until watch_resume); the member polls it after each commit and soon
     * after each create, so that a watch from a past revision gets its
     * history without waiting for a write. No callback comes after
     * watch_close. The others are mvcc_watch_create/cancel/progress/resume
     * on that hub. watch_header fills the header of created, canceled and
     * progress answers: ids, the store's current revision, the term. */
    int (*watch_open)(void *arg, void *ctx, mvcc_watch_cb cb, void **hub);
    void (*watch_close)(void *arg, void *hub);
    int (*watch_create)(void *arg, void *hub, const struct mvcc_watch_req *req,
                        int64_t *id);
    int (*watch_cancel)(void *arg, void *hub, int64_t id);
    int (*watch_progress)(void *arg, void *hub, int64_t id);
    int (*watch_resume)(void *arg, void *hub, int64_t id);
    void (*watch_header)(void *arg, struct api_header *h);
    /* The user and role store (server_auth's contract: a password is
     * plaintext, hashed by the member before it proposes). */
    int (*auth)(void *arg, const struct auth_req *req, void *ctx,
                node_done_cb cb);
    /* The v2 key store (server_v2*'s contracts; may all be NULL: /v2/keys
     * then answers 404 as with --enable-v2=false). v2_scan is
     * v2_history_scan's, with the applied Raft index. v2_wait calls cb(ctx)
     * once, after the next applied batch, unless cancelled first. */
    int (*v2)(void *arg, const struct v2_req *req, void *ctx, node_done_cb cb);
    int (*v2_scan)(void *arg, const char *path, size_t len, bool recursive,
                   bool live, uint64_t since, struct buf *out,
                   struct v2_scan_pos *pos);
    int (*v2_wait)(void *arg, void *ctx, void (*cb)(void *ctx), void **handle);
    void (*v2_wait_cancel)(void *arg, void *handle);
    /* May be NULL: /metrics then leaves the counters out. */
    void (*metrics)(void *arg, struct api_metrics *m);
    /* May be NULL: called once by api_close, after which the api calls no
     * entry of the table (completions still owed may yet come). */
    void (*close)(void *arg);
};

/* The table over a running server: each entry calls the server_* function
 * of the same name, but a follower's keep-alive goes to the leader over
 * one shared client connection. The table's arg is allocated here and
 * freed by its close entry (api_close). s is borrowed and must outlive
 * the api. 0, CAIRN_ENOMEM. */
int api_backend_server(struct server *s, struct api_backend *out);

/* ---- the service ---- */

struct api_config {
    /* etcd's --max-txn-ops: more operations in one branch of a txn are
     * refused with "too many operations in txn request". 0: 128. */
    unsigned max_txn_ops;
    /* etcd's --max-request-bytes: 0: 1.5 MiB. */
    size_t max_request_bytes;
    /* etcd's --enable-v2: serve /v2/keys, /v2/members, /v2/machines and
     * /v2/stats (docs/v2.md); false: they answer 404, as etcd's. */
    bool enable_v2;
    /* rpc server settings (NULL fields as rpc's defaults). */
    struct rpc_server_config rpc;
};

struct api;

/* Creates the API over backend (copied) on loop: an rpc server with every
 * method of the services above and the HTTP/1.1 hook. config may be NULL;
 * log may be NULL (borrowed). 0, CAIRN_ENOMEM. */
int api_open(uv_loop_t *loop, const struct api_backend *backend,
             const struct api_config *config, struct cairn_log *log,
             struct api **out);
/* Listens on one client URL ("http://127.0.0.1:2379", "unix:///path");
 * *port (may be NULL) receives the bound port. */
int api_listen(struct api *a, const char *url, uint16_t *port,
               struct cairn_errmsg *m);
/* Listens on one more URL serving only GET /metrics and /health over
 * HTTP/1.1, as etcd's --listen-metrics-urls (anything else: 404). */
int api_listen_metrics(struct api *a, const char *url, uint16_t *port,
                       struct cairn_errmsg *m);
/* How the `cairn` binary serves its --listen-client-urls: opens the API
 * over s (api_backend_server) with s's limits (--max-txn-ops,
 * --max-request-bytes, --max-concurrent-streams) and listens on every URL
 * of client_urls (n of them). On failure nothing is left open and m says
 * which URL failed. Close it (api_drain, api_close) before server_close. */
int api_serve(uv_loop_t *loop, struct server *s, struct cairn_log *log,
              const char *const *client_urls, size_t n, struct api **out,
              struct cairn_errmsg *m);
/* grpc's GracefulStop, then close: see rpc_server_drain/rpc_server_close;
 * the memory is released once the loop has ended every open call.
 * Requests still waiting on the backend are answered CANCELLED to their
 * clients; their backend completions may still come and are ignored until
 * the last one, after which the memory is freed. */
void api_drain(struct api *a);
void api_close(struct api *a);

/* The rpc server (for tests and counters). */
struct rpc_server *api_rpc_server(struct api *a);

/* ---- exposed for tests: conversions and rendering ---- */

/* A bump allocator for conversions (chunks from cairn_malloc). */
struct api_arena {
    struct api__chunk *head;
};
void api_arena_init(struct api_arena *a);
void api_arena_free(struct api_arena *a);
void *api_arena_alloc(struct api_arena *a, size_t n);

/* Wire request → mvcc request. Pointers in out point into the wire message
 * (borrowed: valid as long as it) or into arena. Checks etcd's v3rpc
 * request validation (empty keys, max_txn_ops, a txn's duplicate keys are
 * mvcc's: mvcc_txn_validate) and returns its error code. */
int api_range_from_pb(const Etcdserverpb__RangeRequest *in,
                      struct mvcc_range_req *out);
int api_put_from_pb(const Etcdserverpb__PutRequest *in,
                    struct mvcc_put_req *out);
int api_delete_from_pb(const Etcdserverpb__DeleteRangeRequest *in,
                       struct mvcc_delete_req *out);
int api_txn_from_pb(const Etcdserverpb__TxnRequest *in, unsigned max_txn_ops,
                    struct api_arena *arena, struct mvcc_txn_req *out);

/* mvcc response → wire response, built in arena (pointing into the mvcc
 * response: pack before either goes away). */
int api_range_to_pb(const struct api_header *h,
                    const struct mvcc_range_resp *in, struct api_arena *arena,
                    Etcdserverpb__RangeResponse *out);
int api_put_to_pb(const struct api_header *h, const struct mvcc_put_resp *in,
                  struct api_arena *arena, Etcdserverpb__PutResponse *out);
int api_delete_to_pb(const struct api_header *h,
                     const struct mvcc_delete_resp *in, struct api_arena *arena,
                     Etcdserverpb__DeleteRangeResponse *out);
int api_txn_to_pb(const struct api_header *h, const struct mvcc_txn_resp *in,
                  struct api_arena *arena, Etcdserverpb__TxnResponse *out);

/* The body of GET /metrics (Prometheus text format 0.0.4) from the member's
 * status, its counters (NULL: left out) and the API's own counters,
 * appended to out. */
struct api_grpc_counter {
    const char *service;  /* "etcdserverpb.KV" */
    const char *method;   /* "Range" */
    const char *type;     /* "unary", "bidi_stream", "server_stream" */
    uint64_t handled[17]; /* by gRPC code */
    uint64_t started;
};
int api_metrics_render(const struct node_status *st,
                       const struct api_metrics *m,
                       const struct api_grpc_counter *counters, size_t n,
                       struct buf *out);

#endif
