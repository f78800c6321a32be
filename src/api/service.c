/* service: the api handle: the rpc server with etcd's KV, Maintenance and
 * Auth methods, each unary call unpacked, checked, handed to the backend
 * and answered from its completion, plus the HTTP/1.1 hook and the gRPC
 * counters behind /metrics. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/gateway.h"

static void api_free(struct api *a)
{
    cairn_free(a->counters);
    cairn_free(a->slots);
    cairn_free(a);
}

void api__ref(struct api *a)
{
    a->refs++;
}

void api__unref(struct api *a)
{
    CAIRN_ASSERT(a->refs > 0);
    a->refs--;
    if (a->closed && a->refs == 0)
        api_free(a);
}

void api__req_free(struct api_req *r)
{
    api_arena_free(&r->arena);
    cairn_free(r);
}

void api__req_fail_status(struct api_req *r, struct api_status st)
{
    rpc_call_finish(r->call, st.code, st.message);
}

void api__req_fail(struct api_req *r, int err)
{
    api__req_fail_status(r, api_status_from_err(err));
}

/* Packs msg and ends the call OK. */
void api__req_reply(struct api_req *r, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *p = api_arena_alloc(&r->arena, n);
    if (p == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    protobuf_c_message_pack(msg, p);
    /* done may run inside send and free r; the call itself stays valid
     * until control returns to the loop */
    struct rpc_call *call = r->call;
    int rv = rpc_call_send(call, p, n);
    if (rv != 0) {
        /* a call already ended ignores this */
        struct api_status st = api_status_from_err(rv);
        rpc_call_finish(call, st.code, st.message);
        return;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}

/* Hands a request to the backend: rv is what the backend function said.
 * A refusal is answered at once. */
void api__req_submitted(struct api_req *r, int rv)
{
    if (rv != 0) {
        /* refused: no completion will come */
        r->pending = false;
        api__req_fail(r, rv);
    }
}

/* A backend completion arrived: false when the call is gone (r freed) or
 * the result is an error (answered). */
bool api__req_completed(struct api_req *r, const struct node_result *res)
{
    CAIRN_ASSERT(r->pending);
    r->pending = false;
    if (r->call_done) {
        api__req_free(r);
        return false;
    }
    if (res->err != 0) {
        api__req_fail(r, res->err);
        return false;
    }
    return true;
}

struct api_header api_header_of(const struct node_result *res)
{
    return (struct api_header){res->cluster_id, res->member_id, res->revision,
                               res->raft_term};
}

Etcdserverpb__ResponseHeader *api__header_pb(struct api_req *r,
                                             const struct api_header *h)
{
    Etcdserverpb__ResponseHeader *ph = api_arena_alloc(&r->arena, sizeof(*ph));
    if (ph == NULL)
        return NULL;
    etcdserverpb__response_header__init(ph);
    ph->cluster_id = h->cluster_id;
    ph->member_id = h->member_id;
    ph->revision = h->revision;
    ph->raft_term = h->raft_term;
    return ph;
}

/* Answers that are a header and nothing the member holds (a missing
 * lease's TTL, an empty alarm list) take the header from a Status round, so
 * that it carries the member's revision and term like every other. */
static void header_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    r->with_header(r, &h);
}

void api__req_with_header(struct api_req *r, api__with_header_fn fn)
{
    r->with_header = fn;
    r->pending = true;
    api__req_submitted(r, r->api->be.status(r->api->be.arg, r, header_done));
}

/* Unpacks a message of desc only to check it is well formed. */
bool api__unpacks(struct api_req *r, const ProtobufCMessageDescriptor *desc,
                  const uint8_t *data, size_t len)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, data);
    if (m == NULL) {
        api__req_fail(r, CAIRN_EMALFORMED);
        return false;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return true;
}

/* ---- the dispatch table ---- */

#define KV "etcdserverpb.KV"
#define MAINT "etcdserverpb.Maintenance"
#define LEASE "etcdserverpb.Lease"
#define WATCH "etcdserverpb.Watch"
#define CLUSTER "etcdserverpb.Cluster"
#define AUTH "etcdserverpb.Auth"
#define LOCK "v3lockpb.Lock"
#define ELECTION "v3electionpb.Election"
#define UNARY(svc, name, fn)                           \
    {                                                  \
        "/" svc "/" name, svc, name, fn, NULL, "unary" \
    }
#define STREAM(svc, name, cbs, type)                 \
    {                                                \
        "/" svc "/" name, svc, name, NULL, cbs, type \
    }
static const struct api__method_def methods[] = {
    UNARY(KV, "Range", api__kv_range),
    UNARY(KV, "Put", api__kv_put),
    UNARY(KV, "DeleteRange", api__kv_delete),
    UNARY(KV, "Txn", api__kv_txn),
    UNARY(KV, "Compact", api__kv_compact),
    STREAM(WATCH, "Watch", &api__watch_cbs, "bidi_stream"),
    UNARY(LEASE, "LeaseGrant", api__lease_grant),
    UNARY(LEASE, "LeaseRevoke", api__lease_revoke),
    STREAM(LEASE, "LeaseKeepAlive", &api__lease_keepalive_cbs, "bidi_stream"),
    UNARY(LEASE, "LeaseTimeToLive", api__lease_ttl),
    UNARY(LEASE, "LeaseLeases", api__lease_list),
    UNARY(CLUSTER, "MemberAdd", api__member_add),
    UNARY(CLUSTER, "MemberRemove", api__member_remove),
    UNARY(CLUSTER, "MemberUpdate", api__member_update),
    UNARY(CLUSTER, "MemberList", api__member_list),
    UNARY(CLUSTER, "MemberPromote", api__member_promote),
    UNARY(MAINT, "Alarm", api__maint_alarm),
    UNARY(MAINT, "Status", api__maint_status),
    UNARY(MAINT, "Defragment", api__maint_defragment),
    UNARY(MAINT, "Hash", api__maint_hash),
    STREAM(MAINT, "Snapshot", &api__snapshot_cbs, "server_stream"),
    UNARY(MAINT, "HashKV", api__maint_hash_kv),
    UNARY(MAINT, "MoveLeader", api__maint_move_leader),
    UNARY(AUTH, "AuthEnable", api__auth_enable),
    UNARY(AUTH, "AuthDisable", api__auth_disable),
    UNARY(AUTH, "Authenticate", api__auth_authenticate),
    UNARY(AUTH, "UserAdd", api__auth_user_add),
    UNARY(AUTH, "UserGet", api__auth_user_get),
    UNARY(AUTH, "UserList", api__auth_user_list),
    UNARY(AUTH, "UserDelete", api__auth_user_delete),
    UNARY(AUTH, "UserChangePassword", api__auth_user_change_password),
    UNARY(AUTH, "UserGrantRole", api__auth_user_grant_role),
    UNARY(AUTH, "UserRevokeRole", api__auth_user_revoke_role),
    UNARY(AUTH, "RoleAdd", api__auth_role_add),
    UNARY(AUTH, "RoleGet", api__auth_role_get),
    UNARY(AUTH, "RoleList", api__auth_role_list),
    UNARY(AUTH, "RoleDelete", api__auth_role_delete),
    UNARY(AUTH, "RoleGrantPermission", api__auth_role_grant_permission),
    UNARY(AUTH, "RoleRevokePermission", api__auth_role_revoke_permission),
    UNARY(LOCK, "Lock", api__lock_lock),
    UNARY(LOCK, "Unlock", api__lock_unlock),
    UNARY(ELECTION, "Campaign", api__election_campaign),
    UNARY(ELECTION, "Proclaim", api__election_proclaim),
    UNARY(ELECTION, "Leader", api__election_leader),
    STREAM(ELECTION, "Observe", &api__election_observe_cbs, "server_stream"),
    UNARY(ELECTION, "Resign", api__election_resign),
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

/* ---- rpc callbacks of every unary method ---- */

void api__count_start(struct api__slot *slot)
{
    slot->api->counters[slot->counter].started++;
    slot->api->refs++;
}

void api__count_done(struct api__slot *slot, int code)
{
    if (code >= 0 && code < 17)
        slot->api->counters[slot->counter].handled[code]++;
}

static void unary_start(void *arg, struct rpc_call *call)
{
    struct api__slot *slot = arg;
    api__count_start(slot);
    struct api_req *r = cairn_calloc(1, sizeof(*r));
    if (r == NULL) {
        struct api_status st = api_status_from_err(CAIRN_ENOMEM);
        rpc_call_finish(call, st.code, st.message);
        return;
    }
    r->api = slot->api;
    r->call = call;
    r->idx = slot->idx;
    api_arena_init(&r->arena);
    rpc_call_set_user(call, r);
}

/* The request is kept until the client half-closes and handled then:
 * grpc-go clients send the message and END_STREAM in separate frames, and
 * an answer finished before the second arrives makes the stream end in a
 * PROTOCOL_ERROR reset on their side (seen with etcdctl's Status). */
static void unary_message(void *arg, struct rpc_call *call, const uint8_t *data,
                          size_t len)
{
    (void)arg;
    struct api_req *r = rpc_call_user(call);
    if (r == NULL || r->got_msg)
        return; /* a unary method reads one message */
    r->got_msg = true;
    r->msg_len = len;
    r->msg = api_arena_alloc(&r->arena, len);
    if (r->msg == NULL)
        api__req_fail(r, CAIRN_ENOMEM);
    else if (len > 0)
        memcpy(r->msg, data, len);
}

static void unary_half_close(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct api_req *r = rpc_call_user(call);
    if (r == NULL)
        return;
    if (!r->got_msg)
        api__req_fail_status(r, api__status_etcd(API__E_NO_REQUEST));
    else if (r->msg != NULL)
        methods[r->idx].fn(r, r->msg, r->msg_len);
}

static void unary_done(void *arg, struct rpc_call *call, int code,
                       const char *message)
{
    (void)message;
    struct api__slot *slot = arg;
    struct api *a = slot->api;
    api__count_done(slot, code);
    struct api_req *r = rpc_call_user(call);
    if (r != NULL) {
        r->call_done = true;
        r->call = NULL;
        if (r->on_call_done != NULL)
            r->on_call_done(r);
        else if (!r->pending)
            api__req_free(r);
    }
    api__unref(a);
}

static const struct rpc_call_cbs unary_cbs = {
    .start = unary_start,
    .message = unary_message,
    .half_close = unary_half_close,
    .done = unary_done,
};

/* ---- HTTP/1.1 ---- */

enum api__http_kind { API__HTTP_HEALTH, API__HTTP_METRICS };

/* One /health or /metrics request waiting on the member. Listed in the
 * api so that rpc's cancel (which names the rpc request) finds it. */
struct api__http {
    struct api__http *next;
    struct api *api;
    struct rpc_http1_request *req; /* NULL once cancelled */
    enum api__http_kind kind;
    struct node_status status;
    bool pending;
};

static void http_unlink(struct api *a, struct api__http *h)
{
    for (struct api__http **pp = &a->http; *pp != NULL; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            return;
        }
}

/* The request is answered or gone: forget it (the memory goes once no
 * completion is owed). */
static void http_end(struct api__http *h)
{
    if (h->req != NULL) {
        http_unlink(h->api, h);
        h->req = NULL;
        api__unref(h->api);
    }
    if (!h->pending)
        cairn_free(h);
}

static void http_text(struct api__http *h, int status, const char *type,
                      const void *body, size_t len)
{
    rpc_http1_respond(h->req, status, type, body, len);
    http_end(h);
}

static void http_health_answer(struct api__http *h, bool healthy)
{
    /* etcdhttp's checkHealth: 200 or 503 with the JSON either way */
    const char *body =
        healthy ? "{\"health\":\"true\"}" : "{\"health\":\"false\"}";
    http_text(h, healthy ? 200 : 503, "text/plain; charset=utf-8", body,
              strlen(body));
}

/* A completion for an HTTP request: false when it was cancelled (and h
 * freed). */
static bool http_completed(struct api__http *h)
{
    CAIRN_ASSERT(h->pending);
    h->pending = false;
    if (h->req == NULL) {
        cairn_free(h);
        return false;
    }
    return true;
}

static void health_read_done(void *ctx, const struct node_result *res)
{
    struct api__http *h = ctx;
    if (http_completed(h))
        http_health_answer(h, res->err == 0);
}

static void health_alarms_done(void *ctx, const struct node_result *res)
{
    struct api__http *h = ctx;
    if (!http_completed(h))
        return;
    if (res->err != 0 || res->u.alarms.n > 0) {
        http_health_answer(h, false);
        return;
    }
    /* etcd 3.4 also runs a quorum read (its v2 QGET); ours is a
     * linearizable range of one key, which needs the same round */
    static const uint8_t key[] = "health";
    struct mvcc_range_req q = {.key = key, .key_len = 6, .count_only = true};
    struct api *a = h->api;
    h->pending = true;
    int rv = a->be.range(a->be.arg, &q, false, h, health_read_done);
    if (rv != 0) {
        h->pending = false;
        http_health_answer(h, false);
    }
}

static void http_status_done(void *ctx, const struct node_result *res)
{
    struct api__http *h = ctx;
    if (!http_completed(h))
        return;
    struct api *a = h->api;
    if (h->kind == API__HTTP_HEALTH) {
        if (res->err != 0 || res->u.status.leader == 0) {
            http_health_answer(h, false);
            return;
        }
        h->pending = true;
        int rv = a->be.alarm(a->be.arg, NODE_ALARM_GET, 0, NODE_ALARM_NONE, h,
                             health_alarms_done);
        if (rv != 0) {
            h->pending = false;
            http_health_answer(h, false);
        }
        return;
    }
    /* metrics: what the status says, even when it failed (no leader...) */
    struct node_status st = {0};
    if (res->err == 0)
        st = res->u.status;
    struct api_metrics m;
    if (a->be.metrics != NULL)
        a->be.metrics(a->be.arg, &m);
    struct buf b = BUF_INIT;
    if (api_metrics_render(&st, a->be.metrics != NULL ? &m : NULL, a->counters,
                           a->n_methods, &b) != 0) {
        buf_free(&b);
        http_text(h, 500, "text/plain; charset=utf-8", "out of memory", 13);
        return;
    }
    http_text(h, 200, "text/plain; version=0.0.4; charset=utf-8", b.data,
              b.len);
    buf_free(&b);
}

/* GET /health (405 for other methods) or /metrics, answered from the
 * member's status (and counters, for /metrics). */
static void http_member_request(struct api *a, struct rpc_http1_request *req,
                                enum api__http_kind kind)
{
    if (kind == API__HTTP_HEALTH && strcmp(req->method, "GET") != 0) {
        rpc_http1_respond(req, 405, "text/plain; charset=utf-8",
                          "Method Not Allowed", 18);
        return;
    }
    struct api__http *h = cairn_calloc(1, sizeof(*h));
    if (h == NULL) {
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
        return;
    }
    h->api = a;
    h->req = req;
    h->kind = kind;
    h->next = a->http;
    a->http = h;
    a->refs++;
    h->pending = true;
    int rv = a->be.status(a->be.arg, h, http_status_done);
    if (rv != 0) {
        h->pending = false;
        if (kind == API__HTTP_HEALTH) {
            http_health_answer(h, false);
        } else {
            struct node_result none = {.type = NODE_REQ_STATUS, .err = rv};
            h->pending = true;
            http_status_done(h, &none);
        }
    }
}

static void http1_writable(void *arg, struct rpc_http1_request *req)
{
    struct api *a = arg;
    if (a->gw != NULL)
        api__gw_writable(a->gw, req);
}

static bool path_is(const struct rpc_http1_request *req, const char *p)
{
    size_t plen = strcspn(req->path, "?");
    return plen == strlen(p) && memcmp(req->path, p, plen) == 0;
}

static void http_not_found(struct rpc_http1_request *req)
{
    /* Go's http.NotFound */
    rpc_http1_respond(req, 404, "text/plain; charset=utf-8",
                      "404 page not found\n", 19);
}

static void http1_request(void *arg, struct rpc_http1_request *req)
{
    struct api *a = arg;
    if (a->gw != NULL && api__gw_request(a->gw, req))
        return;
    if (path_is(req, "/version")) {
        if (strcmp(req->method, "GET") != 0) {
            rpc_http1_respond(req, 405, "text/plain; charset=utf-8",
                              "Method Not Allowed", 18);
            return;
        }
        static const char body[] =
            "{\"etcdserver\":\"" API_ETCD_VERSION
            "\",\"etcdcluster\":\"" API_CLUSTER_VERSION "\"}";
        rpc_http1_respond(req, 200, "application/json", body, sizeof(body) - 1);
    } else if (path_is(req, "/health")) {
        http_member_request(a, req, API__HTTP_HEALTH);
    } else if (path_is(req, "/metrics")) {
        http_member_request(a, req, API__HTTP_METRICS);
    } else if (!api__v2_request(a, req)) {
        http_not_found(req);
    }
}

/* A --listen-metrics-urls listener: etcd serves only /metrics and /health
 * there (etcdhttp.HandleMetricsHealth). */
static void http1_metrics_request(void *arg, struct rpc_http1_request *req)
{
    struct api *a = arg;
    if (path_is(req, "/health"))
        http_member_request(a, req, API__HTTP_HEALTH);
    else if (path_is(req, "/metrics"))
        http_member_request(a, req, API__HTTP_METRICS);
    else
        http_not_found(req);
}

static void http1_cancel(void *arg, struct rpc_http1_request *req)
{
    struct api *a = arg;
    if (a->gw != NULL && api__gw_cancel(a->gw, req))
        return;
    if (api__v2_cancel(a, req))
        return;
    for (struct api__http *h = a->http; h != NULL; h = h->next)
        if (h->req == req) {
            http_end(h);
            return;
        }
}

/* ---- the handle ---- */

int api_open(uv_loop_t *loop, const struct api_backend *backend,
             const struct api_config *config, struct cairn_log *log,
             struct api **out)
{
    struct api *a = cairn_calloc(1, sizeof(*a));
    if (a == NULL)
        return CAIRN_ENOMEM;
    a->loop = loop;
    a->be = *backend;
    a->log = log;
    a->tls = config != NULL ? config->rpc.net.tls : NULL;
    a->enable_v2 = config != NULL && config->enable_v2;
    api__v2_init(a);
    a->n_methods = N_METHODS;
    a->max_txn_ops =
        config != NULL && config->max_txn_ops != 0 ? config->max_txn_ops : 128;
    a->max_request_bytes = config != NULL && config->max_request_bytes != 0
                               ? config->max_request_bytes
                               : (size_t)3 << 19;
    a->slots = cairn_calloc(N_METHODS, sizeof(*a->slots));
    a->counters = cairn_calloc(N_METHODS, sizeof(*a->counters));
    struct rpc_method *table = cairn_calloc(N_METHODS, sizeof(*table));
    int rv = CAIRN_ENOMEM;
    if (a->slots == NULL || a->counters == NULL || table == NULL)
        goto err_after_alloc;
    size_t n = 0;
    for (size_t i = 0; i < N_METHODS; i++) {
        /* Watch, Lock and Election only when the member offers watch
         * hubs (the recipes wait on watchers) */
        bool watches = methods[i].cbs == &api__watch_cbs ||
                       strcmp(methods[i].service, LOCK) == 0 ||
                       strcmp(methods[i].service, ELECTION) == 0;
        if (watches && backend->watch_open == NULL)
            continue;
        a->slots[n] = (struct api__slot){a, i, n};
        a->counters[n].service = methods[i].service;
        a->counters[n].method = methods[i].method;
        a->counters[n].type = methods[i].type;
        table[n] = (struct rpc_method){
            methods[i].path,
            methods[i].cbs != NULL ? methods[i].cbs : &unary_cbs, &a->slots[n]};
        n++;
    }
    a->n_methods = n;
    struct rpc_server_config rc = {0};
    if (config != NULL)
        rc = config->rpc;
    if (rc.max_recv_msg_bytes == 0)
        /* grpc's limit is etcd's request limit plus its 512 KiB margin */
        rc.max_recv_msg_bytes = a->max_request_bytes + (512u << 10);
    struct rpc_http1_handler h1 = {.request = http1_request,
                                   .cancel = http1_cancel,
                                   .writable = http1_writable,
                                   .arg = a};
    a->gw = api__gw_new(a);
    rv = CAIRN_ENOMEM;
    if (a->gw == NULL)
        goto err_after_alloc;
    rv = rpc_server_init(&a->srv, loop, &rc, table, n, &h1, log);
    if (rv != 0)
        goto err_after_gw;
    a->rpc_config = rc;
    cairn_free(table);
    *out = a;
    return 0;

err_after_gw:
    api__gw_close(a->gw);
err_after_alloc:
    cairn_free(table);
    api_free(a);
    return rv;
}

int api_listen(struct api *a, const char *url, uint16_t *port,
               struct cairn_errmsg *m)
{
    struct net_url u;
    int rv = net_url_parse(url, &u, m);
    if (rv != 0)
        return rv;
    uint16_t bound = 0;
    rv = rpc_server_listen(a->srv, &u, &bound, m);
    if (rv == 0)
        api__gw_listened(a->gw, &u, bound);
    if (port != NULL)
        *port = bound;
    return rv;
}

int api_listen_metrics(struct api *a, const char *url, uint16_t *port,
                       struct cairn_errmsg *m)
{
    struct net_url u;
    int rv = net_url_parse(url, &u, m);
    if (rv != 0)
        return rv;
    if (a->msrv == NULL) {
        /* No gRPC methods: a gRPC call there gets UNIMPLEMENTED. The
         * client URLs' settings, TLS included: etcd serves an https
         * metrics URL with the client certificate. */
        struct rpc_http1_handler h1 = {
            .request = http1_metrics_request, .cancel = http1_cancel, .arg = a};
        rv = rpc_server_init(&a->msrv, a->loop, &a->rpc_config, NULL, 0, &h1,
                             a->log);
        if (rv != 0)
            return cairn_errmsg_code(m, rv, "metrics listener");
    }
    return rpc_server_listen(a->msrv, &u, port, m);
}

void api_drain(struct api *a)
{
    rpc_server_drain(a->srv);
    if (a->msrv != NULL)
        rpc_server_drain(a->msrv);
}

void api_close(struct api *a)
{
    CAIRN_ASSERT(!a->closed);
    a->closed = true;
    a->refs++; /* held while rpc ends what is open */
    rpc_server_close(a->srv);
    api__gw_close(a->gw);
    a->gw = NULL;
    if (a->msrv != NULL)
        rpc_server_close(a->msrv);
    api__v2_close(a);
    if (a->be.close != NULL)
        a->be.close(a->be.arg);
    api__unref(a);
}

struct rpc_server *api_rpc_server(struct api *a)
{
    return a->srv;
}
