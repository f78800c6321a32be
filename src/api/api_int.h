/* api_int: what api/'s files share privately: the api handle, one unary
 * call's state and the helpers that answer it, each service's handlers,
 * and etcd errors that no cairn code stands for. */
#ifndef CAIRN_API_API_INT_H
#define CAIRN_API_API_INT_H

#include "api/api.h"

/* X(name, gRPC code, etcd's text): rows of the same table as errors.c's,
 * for errors that come from no cairn code. */
#define API__ETCD_ONLY_ERRORS(X)                                          \
    X(MEMBER_BAD_URLS, RPC_INVALID_ARGUMENT,                              \
      "etcdserver: given member URLs are invalid")                        \
    /* AuthEnable once root is ready: etcd would enable authentication,   \
     * which cairn does not enforce (docs/api.md) */                      \
    X(AUTH_UNSUPPORTED, RPC_UNIMPLEMENTED,                                \
      "etcdserver: authentication cannot be enabled: cairn does not "     \
      "enforce it yet")                                                   \
    X(NO_REQUEST, RPC_INTERNAL, "grpc: error unmarshalling request: EOF") \
    X(ELECTION_NOT_LEADER, RPC_UNKNOWN, "election: not leader")           \
    X(ELECTION_NO_LEADER, RPC_UNKNOWN, "election: no leader")             \
    X(LEADER_KEY_MISSING, RPC_UNKNOWN, "\"leader\" field must be provided")

enum api__etcd_err {
#define API__ENUM(name, code, text) API__E_##name,
    API__ETCD_ONLY_ERRORS(API__ENUM)
#undef API__ENUM
};

struct api_status api__status_etcd(enum api__etcd_err e);

struct api_req;
/* A unary method: the request's bytes (borrowed for the call). */
typedef void (*api__handler)(struct api_req *r, const uint8_t *data,
                             size_t len);

/* One row of the dispatch table: a unary method (fn) or a streaming one
 * (its own cbs, whose arg is the method's struct api__slot). */
struct api__method_def {
    const char *path;
    const char *service;
    const char *method;
    api__handler fn;
    const struct rpc_call_cbs *cbs; /* NULL: unary through fn */
    const char *type;               /* go-grpc-prometheus' grpc_type */
};

/* One per method: the rpc dispatch table's arg. */
struct api__slot {
    struct api *api;
    size_t idx;     /* in the method table */
    size_t counter; /* in api->counters (offered methods only) */
};

struct api__http;
struct api__gw;
struct api {
    uv_loop_t *loop;
    struct api_backend be;
    unsigned max_txn_ops;
    size_t max_request_bytes;
    struct cairn_log *log;
    struct rpc_server *srv;
    struct rpc_server *msrv; /* --listen-metrics-urls; NULL until one */
    struct rpc_server_config rpc_config; /* srv's, for msrv */
    struct api__slot *slots;
    struct api_grpc_counter *counters;
    size_t n_methods;
    struct api__http *http; /* HTTP/1.1 requests waiting on the member */
    struct api__gw *gw;     /* the JSON gateway (gateway.c) */
    struct api__v2 *v2;     /* v2 requests waiting (v2.c) */
    uint64_t v2_stats[14];  /* /v2/stats/store's counters */
    char v2_start[48];      /* /v2/stats/self's startTime */
    uint64_t v2_start_ms;
    bool enable_v2;
    struct net_tls *tls; /* the client port's TLS context, or NULL */
    /* calls between start and done and HTTP/1.1 requests not yet answered
     * or cancelled: rpc ends them after rpc_server_close returns (as their
     * connections close), so a closed api is freed by the last one */
    size_t refs;
    bool closed;
};

/* The v2 HTTP API (v2.c): true when the path is under /v2 (answered
 * here); cancel: true when req was one of its waiting requests; close:
 * drops the watches' backend waiters before the backend closes. */
struct api__v2;
void api__v2_init(struct api *a);
bool api__v2_request(struct api *a, struct rpc_http1_request *req);
bool api__v2_cancel(struct api *a, struct rpc_http1_request *req);
void api__v2_close(struct api *a);

/* Streams hold a reference from start to done (api__ref/api__unref), and
 * count themselves in the method's counters. */
void api__ref(struct api *a);
void api__unref(struct api *a);
void api__count_start(struct api__slot *slot);
void api__count_done(struct api__slot *slot, int code);

/* One unary call. It lives until both the rpc call has ended and the
 * backend has completed (a client may go away while its request is in
 * Raft; the completion then finds call_done and only frees). */
typedef void (*api__with_header_fn)(struct api_req *r,
                                    const struct api_header *h);
struct api_req {
    struct api *api;
    struct rpc_call *call;
    size_t idx;
    bool got_msg;
    bool call_done;
    bool pending; /* a backend completion is owed */
    struct api_arena arena;
    uint8_t *msg; /* the request, in arena, until the half-close */
    size_t msg_len;
    /* Maintenance.Status: the status while the alarms are asked */
    struct node_status status;
    struct api_header header;
    /* answers built around a header only */
    api__with_header_fn with_header;
    int64_t lease_id; /* LeaseTimeToLive: for a missing lease's answer */
    /* A long request (Lock, Campaign: conc.h) that owns r: told when the
     * call ends, r is then its to free. */
    void (*on_call_done)(struct api_req *r);
    void *owner;
    uint8_t auth_op; /* Auth: enum auth_op of the call */
};

void api__req_free(struct api_req *r);
/* End the call with a status (etcd's for a cairn code). */
void api__req_fail_status(struct api_req *r, struct api_status st);
void api__req_fail(struct api_req *r, int err);
/* Packs msg and ends the call OK. r may be freed on return. */
void api__req_reply(struct api_req *r, const ProtobufCMessage *msg);
/* Set r->pending, call the backend, then pass what it returned: a
 * refusal is answered at once. */
void api__req_submitted(struct api_req *r, int rv);
/* In a completion: false when the call is gone (r freed) or the result is
 * an error (answered); true to go on answering. */
bool api__req_completed(struct api_req *r, const struct node_result *res);
/* A wire header in r's arena; NULL when out of memory. */
Etcdserverpb__ResponseHeader *api__header_pb(struct api_req *r,
                                             const struct api_header *h);
/* Answers built around a header only take it from a Status round, so that
 * it carries the member's revision and term like every other. */
void api__req_with_header(struct api_req *r, api__with_header_fn fn);
/* Unpacks a message of desc only to check it is well formed (answers the
 * call when not). */
bool api__unpacks(struct api_req *r, const ProtobufCMessageDescriptor *desc,
                  const uint8_t *data, size_t len);

/* Unpacks with protobuf-c's default allocator; the caller frees. */
#define UNPACK(r, type, data, len, out)         \
    do {                                        \
        out = type##__unpack(NULL, len, data);  \
        if (out == NULL) {                      \
            api__req_fail(r, CAIRN_EMALFORMED); \
            return;                             \
        }                                       \
    } while (0)

/* The handlers of each service (kv.c, maint.c, auth.c, lease.c). */
#define API__HANDLER(name) \
    void name(struct api_req *r, const uint8_t *data, size_t len)
API__HANDLER(api__kv_range);
API__HANDLER(api__kv_put);
API__HANDLER(api__kv_delete);
API__HANDLER(api__kv_txn);
API__HANDLER(api__kv_compact);
API__HANDLER(api__maint_status);
API__HANDLER(api__auth_enable);
API__HANDLER(api__auth_disable);
API__HANDLER(api__auth_authenticate);
API__HANDLER(api__auth_user_add);
API__HANDLER(api__auth_user_list);
API__HANDLER(api__auth_role_add);
API__HANDLER(api__auth_role_get);
API__HANDLER(api__auth_role_list);
API__HANDLER(api__auth_user_get);
API__HANDLER(api__auth_user_delete);
API__HANDLER(api__auth_user_change_password);
API__HANDLER(api__auth_user_grant_role);
API__HANDLER(api__auth_user_revoke_role);
API__HANDLER(api__auth_role_delete);
API__HANDLER(api__auth_role_grant_permission);
API__HANDLER(api__auth_role_revoke_permission);
API__HANDLER(api__lease_grant);
API__HANDLER(api__lease_revoke);
API__HANDLER(api__lease_ttl);
API__HANDLER(api__lease_list);
extern const struct rpc_call_cbs api__lease_keepalive_cbs;
extern const struct rpc_call_cbs api__watch_cbs;

/* A Watch stream's response encoder (watch_enc.c): the events of the last
 * response stay encoded while the next watcher's response carries the
 * same ones, so a poll's fan-out encodes each event once per stream. */
struct api__wenc_id {
    mvcc_rev mod_rev, prev_mod_rev;
    size_t key_len, value_len;
    bool is_delete, has_prev;
};
struct api__wenc {
    struct buf msg;           /* the response last built */
    struct buf evs;           /* its events, as WatchResponse field 11 */
    struct buf keys;          /* their keys, one after the other */
    struct api__wenc_id *ids; /* and what else tells them apart */
    size_t n_ids, cap_ids;
    bool valid; /* evs, keys and ids describe a response */
};
void api__wenc_init(struct api__wenc *e);
void api__wenc_free(struct api__wenc *e);
/* The WatchResponse of r with header h (its revision r's header_rev),
 * packed as protobuf-c packs it; *out is valid until the next call. */
int api__wenc_response(struct api__wenc *e, const struct api_header *h,
                       const struct mvcc_watch_resp *r, const uint8_t **out,
                       size_t *out_len);
extern const struct rpc_call_cbs api__snapshot_cbs;
/* v3lockpb.Lock and v3electionpb.Election (lock.c, election.c) */
API__HANDLER(api__lock_lock);
API__HANDLER(api__lock_unlock);
API__HANDLER(api__election_campaign);
API__HANDLER(api__election_proclaim);
API__HANDLER(api__election_leader);
API__HANDLER(api__election_resign);
extern const struct rpc_call_cbs api__election_observe_cbs;
API__HANDLER(api__member_add);
API__HANDLER(api__member_remove);
API__HANDLER(api__member_update);
API__HANDLER(api__member_list);
API__HANDLER(api__member_promote);
API__HANDLER(api__maint_alarm);
API__HANDLER(api__maint_hash);
API__HANDLER(api__maint_hash_kv);
API__HANDLER(api__maint_defragment);
API__HANDLER(api__maint_move_leader);

#endif
