/* lease: etcd's Lease service: Grant, Revoke, TimeToLive and Leases as
 * unary calls, and the KeepAlive stream (etcdserver/api/v3rpc/lease.go):
 * one answer per request in order of completion, an unknown lease answered
 * with TTL 0 rather than an error, and back-pressure by pausing a stream's
 * requests while its answers wait. */
#include "api/api_int.h"

/* ---- unary ---- */

static void grant_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__LeaseGrantResponse out;
    etcdserverpb__lease_grant_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    out.id = res->u.lease_grant.id;
    out.ttl = res->u.lease_grant.ttl_s;
    api__req_reply(r, &out.base);
}

API__HANDLER(api__lease_grant)
{
    Etcdserverpb__LeaseGrantRequest *in;
    UNPACK(r, etcdserverpb__lease_grant_request, data, len, in);
    int64_t id = in->id, ttl = in->ttl;
    etcdserverpb__lease_grant_request__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(
        r, r->api->be.lease_grant(r->api->be.arg, id, ttl, r, grant_done));
}

static void revoke_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__LeaseRevokeResponse out;
    etcdserverpb__lease_revoke_response__init(&out);
    out.header = api__header_pb(r, &h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    api__req_reply(r, &out.base);
}

API__HANDLER(api__lease_revoke)
{
    Etcdserverpb__LeaseRevokeRequest *in;
    UNPACK(r, etcdserverpb__lease_revoke_request, data, len, in);
    int64_t id = in->id;
    etcdserverpb__lease_revoke_request__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(
        r, r->api->be.lease_revoke(r->api->be.arg, id, r, revoke_done));
}

/* etcd answers an unknown lease with TTL -1 (and its id), not an error. */
static void ttl_missing_reply(struct api_req *r, const struct api_header *h)
{
    Etcdserverpb__LeaseTimeToLiveResponse out;
    etcdserverpb__lease_time_to_live_response__init(&out);
    out.header = api__header_pb(r, h);
    if (out.header == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    out.id = r->lease_id;
    out.ttl = -1;
    api__req_reply(r, &out.base);
}

static void ttl_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (res->err == CAIRN_ELEASENOTFOUND) {
        struct node_result ok = *res;
        ok.err = 0;
        if (api__req_completed(r, &ok))
            api__req_with_header(r, ttl_missing_reply);
        return;
    }
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__LeaseTimeToLiveResponse out;
    etcdserverpb__lease_time_to_live_response__init(&out);
    out.header = api__header_pb(r, &h);
    size_t n = res->u.lease_ttl.n_keys;
    ProtobufCBinaryData *keys =
        n > 0 ? api_arena_alloc(&r->arena, n * sizeof(*keys)) : NULL;
    if (out.header == NULL || (n > 0 && keys == NULL)) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    out.id = res->u.lease_ttl.info.id;
    out.ttl = res->u.lease_ttl.info.ttl_s;
    out.grantedttl = res->u.lease_ttl.info.granted_ttl_s;
    for (size_t i = 0; i < n; i++)
        keys[i] = (ProtobufCBinaryData){res->u.lease_ttl.key_lens[i],
                                        (uint8_t *)res->u.lease_ttl.keys[i]};
    out.n_keys = n;
    out.keys = keys;
    api__req_reply(r, &out.base);
}

API__HANDLER(api__lease_ttl)
{
    Etcdserverpb__LeaseTimeToLiveRequest *in;
    UNPACK(r, etcdserverpb__lease_time_to_live_request, data, len, in);
    r->lease_id = in->id;
    bool keys = in->keys;
    etcdserverpb__lease_time_to_live_request__free_unpacked(in, NULL);
    r->pending = true;
    api__req_submitted(r, r->api->be.lease_ttl(r->api->be.arg, r->lease_id,
                                               keys, r, ttl_done));
}

static void list_done(void *ctx, const struct node_result *res)
{
    struct api_req *r = ctx;
    if (!api__req_completed(r, res))
        return;
    struct api_header h = api_header_of(res);
    Etcdserverpb__LeaseLeasesResponse out;
    etcdserverpb__lease_leases_response__init(&out);
    out.header = api__header_pb(r, &h);
    size_t n = res->u.lease_list.n;
    Etcdserverpb__LeaseStatus **v =
        n > 0 ? api_arena_alloc(&r->arena, n * sizeof(*v)) : NULL;
    Etcdserverpb__LeaseStatus *st =
        n > 0 ? api_arena_alloc(&r->arena, n * sizeof(*st)) : NULL;
    if (out.header == NULL || (n > 0 && (v == NULL || st == NULL))) {
        api__req_fail(r, CAIRN_ENOMEM);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        etcdserverpb__lease_status__init(&st[i]);
        st[i].id = res->u.lease_list.ids[i];
        v[i] = &st[i];
    }
    out.n_leases = n;
    out.leases = v;
    api__req_reply(r, &out.base);
}

API__HANDLER(api__lease_list)
{
    if (!api__unpacks(r, &etcdserverpb__lease_leases_request__descriptor, data,
                      len))
        return;
    r->pending = true;
    api__req_submitted(r, r->api->be.lease_list(r->api->be.arg, r, list_done));
}

/* ---- the KeepAlive stream ---- */

/* Requests of one stream waiting on the member at once; more pause the
 * stream's receiving. */
#define KA_INFLIGHT_MAX 16
/* Answers queued for sending beyond which receiving pauses too. */
#define KA_QUEUED_MAX ((size_t)64 << 10)

struct ka_stream {
    struct api__slot *slot;
    struct rpc_call *call; /* NULL once done */
    size_t inflight;
    bool half_closed;
    bool paused;
    bool finished;
};

struct ka_op {
    struct ka_stream *st;
    int64_t id;
};

static void ka_maybe_free(struct ka_stream *st)
{
    if (st->call == NULL && st->inflight == 0)
        cairn_free(st);
}

static void ka_finish(struct ka_stream *st, int code, const char *msg)
{
    if (st->finished)
        return;
    st->finished = true;
    rpc_call_finish(st->call, code, msg);
}

/* Pauses receiving while answers pile up, resumes when they drain. */
static void ka_flow(struct ka_stream *st)
{
    if (st->call == NULL || st->finished)
        return;
    bool want = st->inflight >= KA_INFLIGHT_MAX ||
                rpc_call_send_queued_bytes(st->call) > KA_QUEUED_MAX;
    if (want != st->paused) {
        st->paused = want;
        rpc_call_recv_pause(st->call, want);
    }
}

/* Sends the answer to one keep-alive (st is kept alive by the caller). */
static void ka_answer(struct ka_stream *st, int64_t id,
                      const struct node_result *res)
{
    if (st->call == NULL || st->finished)
        return;
    int64_t ttl = 0;
    if (res->err == 0) {
        ttl = res->u.lease_keepalive.ttl_s;
    } else if (res->err != CAIRN_ELEASENOTFOUND) {
        struct api_status s = api_status_from_err(res->err);
        ka_finish(st, s.code, s.message);
        return;
    }
    Etcdserverpb__ResponseHeader h;
    etcdserverpb__response_header__init(&h);
    h.cluster_id = res->cluster_id;
    h.member_id = res->member_id;
    h.revision = res->revision;
    h.raft_term = res->raft_term;
    Etcdserverpb__LeaseKeepAliveResponse out;
    etcdserverpb__lease_keep_alive_response__init(&out);
    out.header = &h;
    out.id = id;
    out.ttl = ttl;
    uint8_t buf[128];
    size_t n = etcdserverpb__lease_keep_alive_response__get_packed_size(&out);
    CAIRN_ASSERT(n <= sizeof(buf));
    etcdserverpb__lease_keep_alive_response__pack(&out, buf);
    int rv = rpc_call_send(st->call, buf, n);
    /* A failed send may have ended the call, clearing st->call. */
    if (rv != 0 && st->call != NULL) {
        /* the queue bound is far above what ka_flow lets pile up */
        struct api_status s = api_status_from_err(
            rv == CAIRN_EFULL ? CAIRN_ETOOMANYREQUESTS : rv);
        ka_finish(st, s.code, s.message);
    }
}

/* Drops one hold on st (an op in flight, or a caller's own); frees or
 * moves the stream on as that allows. */
static void ka_release(struct ka_stream *st)
{
    CAIRN_ASSERT(st->inflight > 0);
    st->inflight--;
    if (st->call == NULL) {
        ka_maybe_free(st);
        return;
    }
    if (st->finished)
        return;
    if (st->half_closed && st->inflight == 0) {
        ka_finish(st, RPC_OK, NULL);
        return;
    }
    ka_flow(st);
}

static void ka_done_op(void *ctx, const struct node_result *res)
{
    struct ka_op *op = ctx;
    struct ka_stream *st = op->st;
    int64_t id = op->id;
    cairn_free(op);
    ka_answer(st, id, res);
    ka_release(st);
}

static void ka_start(void *arg, struct rpc_call *call)
{
    struct api__slot *slot = arg;
    api__count_start(slot);
    struct ka_stream *st = cairn_calloc(1, sizeof(*st));
    if (st == NULL) {
        struct api_status s = api_status_from_err(CAIRN_ENOMEM);
        rpc_call_finish(call, s.code, s.message);
        return;
    }
    st->slot = slot;
    st->call = call;
    rpc_call_set_user(call, st);
}

static void ka_message(void *arg, struct rpc_call *call, const uint8_t *data,
                       size_t len)
{
    (void)arg;
    struct ka_stream *st = rpc_call_user(call);
    if (st == NULL || st->finished)
        return;
    Etcdserverpb__LeaseKeepAliveRequest *in =
        etcdserverpb__lease_keep_alive_request__unpack(NULL, len, data);
    if (in == NULL) {
        struct api_status s = api_status_from_err(CAIRN_EMALFORMED);
        ka_finish(st, s.code, s.message);
        return;
    }
    int64_t id = in->id;
    etcdserverpb__lease_keep_alive_request__free_unpacked(in, NULL);
    struct ka_op *op = cairn_malloc(sizeof(*op));
    if (op == NULL) {
        struct api_status s = api_status_from_err(CAIRN_ENOMEM);
        ka_finish(st, s.code, s.message);
        return;
    }
    op->st = st;
    op->id = id;
    /* one hold for the op, one for this function: the completion may run
     * inside the backend call and end the stream */
    st->inflight += 2;
    struct api *a = st->slot->api;
    int rv = a->be.lease_keepalive(a->be.arg, id, op, ka_done_op);
    if (rv != 0) {
        st->inflight--;
        cairn_free(op);
        struct api_status s = api_status_from_err(rv);
        ka_finish(st, s.code, s.message);
    }
    ka_release(st);
}

static void ka_half_close(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct ka_stream *st = rpc_call_user(call);
    if (st == NULL)
        return;
    /* grpc-go's handler returns once Recv says EOF: status OK after the
     * answers still owed */
    st->half_closed = true;
    if (st->inflight == 0)
        ka_finish(st, RPC_OK, NULL);
}

static void ka_writable(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct ka_stream *st = rpc_call_user(call);
    if (st != NULL)
        ka_flow(st);
}

static void ka_done(void *arg, struct rpc_call *call, int code,
                    const char *message)
{
    (void)message;
    struct api__slot *slot = arg;
    api__count_done(slot, code);
    struct ka_stream *st = rpc_call_user(call);
    if (st != NULL) {
        st->call = NULL;
        ka_maybe_free(st);
    }
    api__unref(slot->api);
}

const struct rpc_call_cbs api__lease_keepalive_cbs = {
    .start = ka_start,
    .message = ka_message,
    .half_close = ka_half_close,
    .writable = ka_writable,
    .done = ka_done,
};
