/* gateway: etcd 3.4's grpc-gateway (embed/serve.go registers it on the
 * client port): POST /v3/<service path> with a JSON body becomes a gRPC
 * call on a loopback connection to this same server, and its answer comes
 * back as JSON (gateway_json.c). Streams answer with chunked JSON lines
 * {"result":...}; client streams (Watch, LeaseKeepAlive) take every JSON
 * object of the body as one request. Errors as grpc-gateway writes them:
 * {"error":text,"message":text,"code":N} with the HTTP status of the gRPC
 * code. /v3beta/ is rewritten to /v3/ as etcd does; /v3alpha/ is not
 * served by etcd 3.4 and is not here. */
#include <stdio.h>
#include <string.h>

#include "api/gateway.h"

enum gw_kind { GW_UNARY, GW_SERVER_STREAM, GW_BIDI };

struct gw_route {
    const char *suffix; /* after "/v3" */
    const char *path;   /* the gRPC method */
    const ProtobufCMessageDescriptor *req, *resp;
    enum gw_kind kind;
};

#define P(x) (&etcdserverpb__##x##__descriptor)
#define R(sfx, svc, m, q, a, k)                        \
    {                                                  \
        sfx, "/etcdserverpb." svc "/" m, P(q), P(a), k \
    }
#define LK(x) (&v3lockpb__##x##__descriptor)
#define EL(x) (&v3electionpb__##x##__descriptor)
/* etcd's rpc.proto, v3lock.proto and v3election.proto google.api.http
 * options; /maintenance/hash is bound twice in etcd and Hash wins */
static const struct gw_route routes[] = {
    R("/kv/range", "KV", "Range", range_request, range_response, GW_UNARY),
    R("/kv/put", "KV", "Put", put_request, put_response, GW_UNARY),
    R("/kv/deleterange", "KV", "DeleteRange", delete_range_request,
      delete_range_response, GW_UNARY),
    R("/kv/txn", "KV", "Txn", txn_request, txn_response, GW_UNARY),
    R("/kv/compaction", "KV", "Compact", compaction_request,
      compaction_response, GW_UNARY),
    R("/watch", "Watch", "Watch", watch_request, watch_response, GW_BIDI),
    R("/lease/grant", "Lease", "LeaseGrant", lease_grant_request,
      lease_grant_response, GW_UNARY),
    R("/lease/revoke", "Lease", "LeaseRevoke", lease_revoke_request,
      lease_revoke_response, GW_UNARY),
    R("/kv/lease/revoke", "Lease", "LeaseRevoke", lease_revoke_request,
      lease_revoke_response, GW_UNARY),
    R("/lease/keepalive", "Lease", "LeaseKeepAlive", lease_keep_alive_request,
      lease_keep_alive_response, GW_BIDI),
    R("/lease/timetolive", "Lease", "LeaseTimeToLive",
      lease_time_to_live_request, lease_time_to_live_response, GW_UNARY),
    R("/kv/lease/timetolive", "Lease", "LeaseTimeToLive",
      lease_time_to_live_request, lease_time_to_live_response, GW_UNARY),
    R("/lease/leases", "Lease", "LeaseLeases", lease_leases_request,
      lease_leases_response, GW_UNARY),
    R("/kv/lease/leases", "Lease", "LeaseLeases", lease_leases_request,
      lease_leases_response, GW_UNARY),
    R("/cluster/member/add", "Cluster", "MemberAdd", member_add_request,
      member_add_response, GW_UNARY),
    R("/cluster/member/remove", "Cluster", "MemberRemove",
      member_remove_request, member_remove_response, GW_UNARY),
    R("/cluster/member/update", "Cluster", "MemberUpdate",
      member_update_request, member_update_response, GW_UNARY),
    R("/cluster/member/list", "Cluster", "MemberList", member_list_request,
      member_list_response, GW_UNARY),
    R("/cluster/member/promote", "Cluster", "MemberPromote",
      member_promote_request, member_promote_response, GW_UNARY),
    R("/maintenance/alarm", "Maintenance", "Alarm", alarm_request,
      alarm_response, GW_UNARY),
    R("/maintenance/status", "Maintenance", "Status", status_request,
      status_response, GW_UNARY),
    R("/maintenance/defragment", "Maintenance", "Defragment",
      defragment_request, defragment_response, GW_UNARY),
    R("/maintenance/hash", "Maintenance", "Hash", hash_request, hash_response,
      GW_UNARY),
    R("/maintenance/snapshot", "Maintenance", "Snapshot", snapshot_request,
      snapshot_response, GW_SERVER_STREAM),
    R("/maintenance/transfer-leadership", "Maintenance", "MoveLeader",
      move_leader_request, move_leader_response, GW_UNARY),
    R("/auth/enable", "Auth", "AuthEnable", auth_enable_request,
      auth_enable_response, GW_UNARY),
    R("/auth/disable", "Auth", "AuthDisable", auth_disable_request,
      auth_disable_response, GW_UNARY),
    R("/auth/authenticate", "Auth", "Authenticate", authenticate_request,
      authenticate_response, GW_UNARY),
    R("/auth/user/add", "Auth", "UserAdd", auth_user_add_request,
      auth_user_add_response, GW_UNARY),
    R("/auth/user/get", "Auth", "UserGet", auth_user_get_request,
      auth_user_get_response, GW_UNARY),
    R("/auth/user/list", "Auth", "UserList", auth_user_list_request,
      auth_user_list_response, GW_UNARY),
    R("/auth/user/delete", "Auth", "UserDelete", auth_user_delete_request,
      auth_user_delete_response, GW_UNARY),
    R("/auth/user/changepw", "Auth", "UserChangePassword",
      auth_user_change_password_request, auth_user_change_password_response,
      GW_UNARY),
    R("/auth/user/grant", "Auth", "UserGrantRole", auth_user_grant_role_request,
      auth_user_grant_role_response, GW_UNARY),
    R("/auth/user/revoke", "Auth", "UserRevokeRole",
      auth_user_revoke_role_request, auth_user_revoke_role_response, GW_UNARY),
    R("/auth/role/add", "Auth", "RoleAdd", auth_role_add_request,
      auth_role_add_response, GW_UNARY),
    R("/auth/role/get", "Auth", "RoleGet", auth_role_get_request,
      auth_role_get_response, GW_UNARY),
    R("/auth/role/list", "Auth", "RoleList", auth_role_list_request,
      auth_role_list_response, GW_UNARY),
    R("/auth/role/delete", "Auth", "RoleDelete", auth_role_delete_request,
      auth_role_delete_response, GW_UNARY),
    R("/auth/role/grant", "Auth", "RoleGrantPermission",
      auth_role_grant_permission_request, auth_role_grant_permission_response,
      GW_UNARY),
    R("/auth/role/revoke", "Auth", "RoleRevokePermission",
      auth_role_revoke_permission_request, auth_role_revoke_permission_response,
      GW_UNARY),
    {"/lock/lock", "/v3lockpb.Lock/Lock", LK(lock_request), LK(lock_response),
     GW_UNARY},
    {"/lock/unlock", "/v3lockpb.Lock/Unlock", LK(unlock_request),
     LK(unlock_response), GW_UNARY},
    {"/election/campaign", "/v3electionpb.Election/Campaign",
     EL(campaign_request), EL(campaign_response), GW_UNARY},
    {"/election/proclaim", "/v3electionpb.Election/Proclaim",
     EL(proclaim_request), EL(proclaim_response), GW_UNARY},
    {"/election/leader", "/v3electionpb.Election/Leader", EL(leader_request),
     EL(leader_response), GW_UNARY},
    {"/election/observe", "/v3electionpb.Election/Observe", EL(leader_request),
     EL(leader_response), GW_SERVER_STREAM},
    {"/election/resign", "/v3electionpb.Election/Resign", EL(resign_request),
     EL(resign_response), GW_UNARY},
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Client-stream bodies: at most this many JSON requests per HTTP request. */
#define GW_MSGS_MAX 1024

/* One HTTP request through the gateway. */
struct gw_req {
    struct gw_req *next;
    struct api__gw *gw;
    struct rpc_http1_request *req; /* NULL once answered or cancelled */
    struct rpc_call *call;         /* NULL before start and once done */
    const struct gw_route *route;
    struct api_arena arena;
    ProtobufCMessage *msgs[GW_MSGS_MAX]; /* the requests, in arena */
    size_t n_msgs;
    char *token; /* the Authorization header, in arena; NULL: none */
    bool started, begun, ending;
    bool busy;       /* inside req_start: rpc may end the call meanwhile */
    struct buf resp; /* a unary answer */
    bool got_resp;
    struct buf pending; /* a stream chunk waiting for room */
};

struct api__gw {
    struct api *api;
    struct net_url url;
    bool have_url;
    struct rpc_client *cl;
    bool connecting;
    bool closed;
    struct gw_req *reqs;
};

struct api__gw *api__gw_new(struct api *a)
{
    struct api__gw *g = cairn_calloc(1, sizeof(*g));
    if (g != NULL)
        g->api = a;
    return g;
}

void api__gw_listened(struct api__gw *g, const struct net_url *url,
                      uint16_t port)
{
    /* A plaintext URL is preferred; a TLS one is dialed with the client
     * port's own context, whose certificate passes --client-cert-auth as
     * etcd's gateway dials with its ClientTLSInfo. */
    if ((g->have_url && !g->url.tls) || (url->tls && g->api->tls == NULL))
        return;
    g->url = *url;
    if (!url->is_unix) {
        g->url.port = port;
        if (strcmp(url->host, "0.0.0.0") == 0 || url->host[0] == 0)
            snprintf(g->url.host, sizeof(g->url.host), "127.0.0.1");
        else if (strcmp(url->host, "::") == 0)
            snprintf(g->url.host, sizeof(g->url.host), "::1");
    }
    g->have_url = true;
}

static void gw_maybe_free(struct api__gw *g)
{
    if (g->closed && !g->connecting && g->reqs == NULL)
        cairn_free(g);
}

static void req_unlink(struct gw_req *r)
{
    for (struct gw_req **pp = &r->gw->reqs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

/* Frees r once neither the HTTP request nor the call is open. */
static void req_maybe_free(struct gw_req *r)
{
    if (r->req != NULL || r->call != NULL || r->busy)
        return;
    struct api__gw *g = r->gw;
    struct api *a = g->api;
    req_unlink(r);
    api_arena_free(&r->arena);
    buf_free(&r->resp);
    buf_free(&r->pending);
    cairn_free(r);
    api__unref(a);
    gw_maybe_free(g);
}

/* ---- answers ---- */

static int http_status_of(int code)
{
    /* grpc-gateway's HTTPStatusFromCode */
    static const int map[17] = {200, 408, 500, 400, 504, 404, 409, 403, 429,
                                412, 409, 400, 501, 500, 503, 500, 401};
    return code >= 0 && code < 17 ? map[code] : 500;
}

static const char *http_text_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 429:
        return "Too Many Requests";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Internal Server Error";
    }
}

static void respond(struct gw_req *r, int status, const char *type,
                    const void *body, size_t len)
{
    if (r->req == NULL)
        return;
    rpc_http1_respond(r->req, status, type, body, len);
    r->req = NULL;
}

/* grpc-gateway's errorBody: error, message, code. */
static void respond_error(struct gw_req *r, int code, const char *text)
{
    struct buf b = BUF_INIT;
    char n[32];
    snprintf(n, sizeof(n), ",\"code\":%d}", code);
    if (buf_append(&b, "{\"error\":", 9) != 0 || api__json_quote(&b, text) ||
        buf_append(&b, ",\"message\":", 11) != 0 ||
        api__json_quote(&b, text) != 0 || buf_append(&b, n, strlen(n)) != 0) {
        buf_free(&b);
        respond(r, 500, "text/plain; charset=utf-8", "out of memory", 13);
        return;
    }
    respond(r, http_status_of(code), "application/json", b.data, b.len);
    buf_free(&b);
}

/* A stream's chunk: {"result":...} or {"error":{...}} and a newline. */
static int chunk_write(struct gw_req *r, const struct buf *chunk)
{
    int rv = rpc_http1_stream_write(r->req, chunk->data, chunk->len);
    if (rv == CAIRN_EFULL) {
        /* held until writable; the call's messages wait meanwhile */
        buf_reset(&r->pending);
        if (buf_append(&r->pending, chunk->data, chunk->len) != 0)
            return CAIRN_ENOMEM;
        if (r->call != NULL)
            rpc_call_recv_pause(r->call, true);
        return 0;
    }
    return rv;
}

static void stream_end(struct gw_req *r)
{
    if (r->req == NULL)
        return;
    if (r->pending.len > 0) {
        r->ending = true; /* after the held chunk */
        return;
    }
    rpc_http1_stream_end(r->req);
    r->req = NULL;
}

/* grpc-gateway's stream error: {"error":{grpc_code, http_code, message,
 * http_status}}, the HTTP status too when nothing was sent yet. */
static void stream_error(struct gw_req *r, int code, const char *text)
{
    int hs = http_status_of(code);
    if (!r->begun) {
        if (rpc_http1_stream_begin(r->req, hs, "application/json") != 0) {
            respond(r, 500, "text/plain; charset=utf-8", "error", 5);
            return;
        }
        r->begun = true;
    }
    struct buf b = BUF_INIT;
    char n[96];
    snprintf(n, sizeof(n), "{\"error\":{\"grpc_code\":%d,\"http_code\":%d,",
             code, hs);
    int rv = buf_append(&b, n, strlen(n));
    if (rv == 0 && text[0] != 0)
        rv = buf_append(&b, "\"message\":", 10) || api__json_quote(&b, text) ||
             buf_append(&b, ",", 1);
    snprintf(n, sizeof(n), "\"http_status\":\"%s\"}}\n", http_text_of(hs));
    if (rv == 0)
        rv = buf_append(&b, n, strlen(n));
    if (rv == 0)
        (void)chunk_write(r, &b);
    buf_free(&b);
    stream_end(r);
}

/* ---- the call ---- */

static void call_message(void *arg, struct rpc_call *call, const uint8_t *data,
                         size_t len)
{
    (void)call;
    struct gw_req *r = arg;
    if (r->req == NULL)
        return;
    if (r->route->kind == GW_UNARY) {
        buf_reset(&r->resp);
        r->got_resp = buf_append(&r->resp, data, len) == 0;
        return;
    }
    ProtobufCMessage *m =
        protobuf_c_message_unpack(r->route->resp, NULL, len, data);
    struct buf b = BUF_INIT;
    int rv = m == NULL ? CAIRN_EPROTOCOL : 0;
    if (rv == 0)
        rv = buf_append(&b, "{\"result\":", 10) != 0 ? CAIRN_ENOMEM
                                                     : api__json_write(m, &b);
    if (rv == 0)
        rv = buf_append(&b, "}\n", 2) != 0 ? CAIRN_ENOMEM : 0;
    if (m != NULL)
        protobuf_c_message_free_unpacked(m, NULL);
    if (rv == 0 && !r->begun) {
        rv = rpc_http1_stream_begin(r->req, 200, "application/json");
        r->begun = rv == 0;
    }
    if (rv == 0)
        rv = chunk_write(r, &b);
    buf_free(&b);
    if (rv != 0 && r->call != NULL)
        rpc_call_cancel(r->call); /* done answers */
}

static void call_done(void *arg, struct rpc_call *call, int code,
                      const char *message)
{
    (void)call;
    struct gw_req *r = arg;
    r->call = NULL;
    if (r->req != NULL) {
        if (r->route->kind != GW_UNARY) {
            if (code != RPC_OK)
                stream_error(r, code, message);
            else if (!r->begun && rpc_http1_stream_begin(
                                      r->req, 200, "application/json") != 0)
                respond(r, 500, "text/plain; charset=utf-8", "error", 5);
            else {
                r->begun = true;
                stream_end(r);
            }
        } else if (code != RPC_OK || !r->got_resp) {
            respond_error(r, code != RPC_OK ? code : RPC_INTERNAL,
                          code != RPC_OK ? message : "empty response");
        } else {
            ProtobufCMessage *m = protobuf_c_message_unpack(
                r->route->resp, NULL, r->resp.len, r->resp.data);
            struct buf b = BUF_INIT;
            if (m == NULL || api__json_write(m, &b) != 0)
                respond_error(r, RPC_INTERNAL, "cannot convert the answer");
            else
                respond(r, 200, "application/json", b.data, b.len);
            if (m != NULL)
                protobuf_c_message_free_unpacked(m, NULL);
            buf_free(&b);
        }
    }
    req_maybe_free(r);
}

static const struct rpc_call_cbs call_cbs = {
    .message = call_message,
    .done = call_done,
};

static void req_send_all(struct gw_req *r)
{
    for (size_t i = 0; i < r->n_msgs && r->call != NULL; i++) {
        size_t n = protobuf_c_message_get_packed_size(r->msgs[i]);
        uint8_t *p = api_arena_alloc(&r->arena, n + 1);
        if (p == NULL) {
            rpc_call_cancel(r->call);
            return;
        }
        protobuf_c_message_pack(r->msgs[i], p);
        if (rpc_call_send(r->call, p, n) != 0) {
            if (r->call != NULL)
                rpc_call_cancel(r->call);
            return;
        }
    }
    if (r->call != NULL)
        rpc_call_close_send(r->call);
}

static void req_start(struct gw_req *r)
{
    struct api__gw *g = r->gw;
    r->started = true;
    r->busy = true;
    const char *md[] = {"authorization", r->token, NULL};
    /* etcd's gateway call has no deadline: the HTTP client's is the one */
    int rv =
        rpc_client_call(g->cl, r->route->path, -1, r->token != NULL ? md : NULL,
                        &call_cbs, r, &r->call);
    if (rv != 0) {
        r->call = NULL;
        respond_error(r, RPC_UNAVAILABLE, cairn_strerror(rv));
    } else {
        req_send_all(r);
    }
    r->busy = false;
    req_maybe_free(r);
}

/* ---- the loopback connection ---- */

static void gw_connect(struct api__gw *g);

static void start_waiting(struct api__gw *g)
{
    /* bounded by the requests open; starting may free the current one */
    struct gw_req *next;
    for (struct gw_req *r = g->reqs; r != NULL; r = next) {
        next = r->next;
        if (!r->started)
            req_start(r);
    }
}

static void on_connect(void *arg, int status, struct rpc_client *cl)
{
    struct api__gw *g = arg;
    g->connecting = false;
    if (g->closed) {
        if (cl != NULL)
            rpc_client_close(cl);
        gw_maybe_free(g);
        return;
    }
    if (status != 0) {
        struct gw_req *next;
        for (struct gw_req *r = g->reqs; r != NULL; r = next) {
            next = r->next;
            if (!r->started) {
                r->started = true;
                respond_error(r, RPC_UNAVAILABLE, cairn_strerror(status));
                req_maybe_free(r);
            }
        }
        return;
    }
    g->cl = cl;
    start_waiting(g);
}

static void gw_connect(struct api__gw *g)
{
    if (g->connecting)
        return;
    if (g->cl != NULL) {
        /* dead (or going away): its calls end as it closes */
        rpc_client_close(g->cl);
        g->cl = NULL;
    }
    g->connecting = true;
    struct rpc_client_config cc = {.net = {.tls = g->api->tls}};
    int rv = rpc_client_connect(g->api->loop, &g->url, &cc, g->api->log, g,
                                on_connect);
    if (rv != 0)
        on_connect(g, rv, NULL);
}

/* ---- HTTP side ---- */

static const struct gw_route *route_of(const char *p, size_t n)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (strlen(routes[i].suffix) == n &&
            memcmp(routes[i].suffix, p, n) == 0)
            return &routes[i];
    return NULL;
}

/* The JSON body as the route's requests: one (an empty body is an empty
 * request), or each object of a client stream's body. */
static int parse_body(struct gw_req *r, const struct rpc_http1_request *req,
                      char *err, size_t err_len)
{
    size_t off = 0;
    while (r->n_msgs < GW_MSGS_MAX) {
        size_t used = 0;
        ProtobufCMessage *m = NULL;
        int rv =
            api__json_read(r->route->req, req->body + off, req->body_len - off,
                           &used, &r->arena, &m, err, err_len);
        off += used;
        if (rv == CAIRN_EAGAIN)
            break;
        if (rv != 0)
            return rv;
        r->msgs[r->n_msgs++] = m;
        if (r->route->kind != GW_BIDI)
            return 0; /* what follows the first value is not read */
    }
    if (r->n_msgs == 0 && r->route->kind != GW_BIDI) {
        ProtobufCMessage *m =
            api_arena_alloc(&r->arena, r->route->req->sizeof_message);
        if (m == NULL)
            return CAIRN_ENOMEM;
        r->route->req->message_init(m);
        r->msgs[r->n_msgs++] = m;
    }
    return 0;
}

bool api__gw_request(struct api__gw *g, struct rpc_http1_request *req)
{
    const char *path = req->path;
    size_t plen = strcspn(path, "?");
    size_t skip;
    if (plen >= 4 && memcmp(path, "/v3/", 4) == 0)
        skip = 3;
    else if (plen >= 8 && memcmp(path, "/v3beta/", 8) == 0)
        skip = 7; /* etcd rewrites /v3beta/ to /v3/ */
    else
        return false;
    const struct gw_route *route = route_of(path + skip, plen - skip);
    if (route == NULL) {
        rpc_http1_respond(req, 404, "text/plain; charset=utf-8", "Not Found\n",
                          10);
        return true;
    }
    if (strcmp(req->method, "POST") != 0) {
        rpc_http1_respond(req, 405, "text/plain; charset=utf-8",
                          "Method Not Allowed\n", 19);
        return true;
    }
    struct gw_req *r = cairn_calloc(1, sizeof(*r));
    if (r == NULL) {
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
        return true;
    }
    r->gw = g;
    r->req = req;
    r->route = route;
    api_arena_init(&r->arena);
    buf_init(&r->resp);
    buf_init(&r->pending);
    r->next = g->reqs;
    g->reqs = r;
    api__ref(g->api);
    char err[160];
    int rv = parse_body(r, req, err, sizeof(err));
    const char *auth = rpc_http1_header(req, "authorization");
    if (rv == 0 && auth != NULL) {
        size_t n = strlen(auth);
        r->token = api_arena_alloc(&r->arena, n + 1);
        if (r->token == NULL)
            rv = CAIRN_ENOMEM;
        else
            memcpy(r->token, auth, n + 1);
    }
    if (rv != 0 || !g->have_url) {
        /* as grpc-gateway: a body that does not decode is INVALID_ARGUMENT */
        r->started = true;
        if (!g->have_url)
            respond_error(r, RPC_UNAVAILABLE, "no plain client URL to reach");
        else
            respond_error(
                r, rv == CAIRN_EMALFORMED ? RPC_INVALID_ARGUMENT : RPC_INTERNAL,
                rv == CAIRN_EMALFORMED ? err : cairn_strerror(rv));
        req_maybe_free(r);
        return true;
    }
    if (g->cl != NULL && rpc_client_alive(g->cl))
        req_start(r);
    else
        gw_connect(g);
    return true;
}

static struct gw_req *req_find(struct api__gw *g,
                               const struct rpc_http1_request *req)
{
    for (struct gw_req *r = g->reqs; r != NULL; r = r->next)
        if (r->req == req)
            return r;
    return NULL;
}

bool api__gw_cancel(struct api__gw *g, struct rpc_http1_request *req)
{
    struct gw_req *r = req_find(g, req);
    if (r == NULL)
        return false;
    r->req = NULL;
    r->started = true; /* a request waiting for the connection is dropped */
    if (r->call != NULL)
        rpc_call_cancel(r->call); /* done frees */
    else
        req_maybe_free(r);
    return true;
}

bool api__gw_writable(struct api__gw *g, struct rpc_http1_request *req)
{
    struct gw_req *r = req_find(g, req);
    if (r == NULL)
        return false;
    if (r->pending.len > 0) {
        int rv =
            rpc_http1_stream_write(r->req, r->pending.data, r->pending.len);
        if (rv == CAIRN_EFULL)
            return true;
        buf_reset(&r->pending);
        if (r->call != NULL)
            rpc_call_recv_pause(r->call, false);
    }
    if (r->ending) {
        r->ending = false;
        stream_end(r);
        req_maybe_free(r);
    }
    return true;
}

void api__gw_close(struct api__gw *g)
{
    g->closed = true;
    if (g->cl != NULL) {
        rpc_client_close(g->cl); /* the calls still open end */
        g->cl = NULL;
    }
    gw_maybe_free(g);
}
