/* api: the public header of the etcd v3 API layer: the services of etcd
 * 3.4 (KV, Maintenance.Status, Auth while disabled) on rpc/'s gRPC server,
 * HTTP/1.1 /health, /version and /metrics on the same port, and the one
 * table mapping cairn's error codes to gRPC codes and etcd's error texts.
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
#include "util/util.h"

/* The version we claim on /version, /metrics and in Status: etcd 3.4.23,
 * the version of Debian's etcd whose e2e suite checks it; cluster 3.4.0. */
#define API_ETCD_VERSION "3.4.23"
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

/* ---- the member behind the API (the server's request interface) ---- */

/* etcd's ResponseHeader. */
struct api_header {
    uint64_t cluster_id;
    uint64_t member_id;
    int64_t revision;
    uint64_t raft_term;
};

/* Figures for Maintenance.Status and /metrics, as the member knows them
 * now; the backend fills what it has and leaves the rest 0. */
struct api_member_status {
    uint64_t leader; /* member id of the leader, 0 when none */
    uint64_t raft_index;
    uint64_t raft_term;
    uint64_t raft_applied_index;
    int64_t db_size_bytes;
    int64_t db_size_in_use_bytes;
    bool is_learner;
    bool nospace_alarm; /* reported as etcd's "memberID:... alarm:NOSPACE" */
    /* metrics (counters since start) */
    uint64_t leader_changes_seen;
    uint64_t proposals_committed;
    uint64_t proposals_applied;
    uint64_t proposals_pending;
    uint64_t proposals_failed;
};

/* Completions: status 0 with the header and response, or a negative cairn
 * code (header and response NULL). Called once per request, on the loop
 * thread, possibly before the request function returns. */
typedef void (*api_range_cb)(void *ctx, int status, const struct api_header *h,
                             const struct mvcc_range_resp *resp);
typedef void (*api_put_cb)(void *ctx, int status, const struct api_header *h,
                           const struct mvcc_put_resp *resp);
typedef void (*api_delete_cb)(void *ctx, int status, const struct api_header *h,
                              const struct mvcc_delete_resp *resp);
typedef void (*api_txn_cb)(void *ctx, int status, const struct api_header *h,
                           const struct mvcc_txn_resp *resp);
typedef void (*api_compact_cb)(void *ctx, int status,
                               const struct api_header *h);

struct api_backend {
    void *arg;
    /* The current header (cluster and member id, applied revision, term). */
    void (*header)(void *arg, struct api_header *h);
    /* Status figures, at once. */
    void (*status)(void *arg, struct api_member_status *st);
    /* KV. A range is linearizable unless serializable. Writes complete once
     * committed and applied (DESIGN.md, durability contract). */
    void (*range)(void *arg, const struct mvcc_range_req *req,
                  bool serializable, void *ctx, api_range_cb cb);
    void (*put)(void *arg, const struct mvcc_put_req *req, void *ctx,
                api_put_cb cb);
    void (*delete_range)(void *arg, const struct mvcc_delete_req *req,
                         void *ctx, api_delete_cb cb);
    void (*txn)(void *arg, const struct mvcc_txn_req *req, void *ctx,
                api_txn_cb cb);
    /* physical: complete only once the compaction has been done, not just
     * scheduled (etcd's --physical). */
    void (*compact)(void *arg, int64_t revision, bool physical, void *ctx,
                    api_compact_cb cb);
};

/* ---- the service ---- */

struct api_config {
    /* etcd's --max-txn-ops: more operations in one branch of a txn are
     * refused with "too many operations in txn request". 0: 128. */
    unsigned max_txn_ops;
    /* etcd's --max-request-bytes: 0: 1.5 MiB. */
    size_t max_request_bytes;
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
/* Opens and listens on every URL of client_urls (n of them): how the
 * `cairn` binary serves its --listen-client-urls. On failure nothing is
 * left open and m says which URL failed. */
int api_serve(uv_loop_t *loop, const struct api_backend *backend,
              const struct api_config *config, struct cairn_log *log,
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
 * figures and the API's own counters, appended to out. */
struct api_grpc_counter {
    const char *service;  /* "etcdserverpb.KV" */
    const char *method;   /* "Range" */
    const char *type;     /* "unary", "bidi_stream", "server_stream" */
    uint64_t handled[17]; /* by gRPC code */
    uint64_t started;
};
int api_metrics_render(const struct api_member_status *st, bool has_leader,
                       const struct api_grpc_counter *counters, size_t n,
                       struct buf *out);
/* The body of GET /health as etcd 3.4 answers it: {"health":"true"} when the
 * member has a leader and no alarm, else {"health":"false"}. */
const char *api_health_body(const struct api_member_status *st);

#endif
