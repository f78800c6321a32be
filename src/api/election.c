/* election: etcd's v3electionpb.Election service
 * (etcdserver/api/v3election), which runs clientv3/concurrency's Election
 * inside the server. A candidate's key is name/<lease in hex> under its
 * lease; the leader is the key of name/ with the lowest create revision.
 * Campaign answers once every older candidate's key is gone; Proclaim and
 * Resign act only while the key still has the create revision the leader
 * key names; Leader reads the oldest key; Observe streams the leader's
 * values as they change. etcd's errors from the recipe are plain Go
 * errors: UNKNOWN with their text. */
#include <string.h>

#include "api/conc.h"

static bool set_value(struct api__conc *c, const ProtobufCBinaryData *v)
{
    return api__conc_copy(c, &c->value, &c->value_len, v->data, v->len);
}

/* The txn "if the key still has create revision rev" (Proclaim, Resign). */
static void leader_txn(struct api__conc *c, const struct mvcc_op *op,
                       api__conc_fn next)
{
    struct mvcc_compare cmp = {.result = MVCC_CMP_EQUAL,
                               .target = MVCC_CMP_CREATE,
                               .key = c->key,
                               .key_len = c->key_len,
                               .number = c->rev};
    struct mvcc_txn_req txn = {
        .compares = &cmp, .n_compares = 1, .success = op, .n_success = 1};
    struct api_backend *be = &c->api->be;
    c->pending = true;
    c->next = next;
    api__conc_submitted(c, be->txn(be->arg, &txn, c, api__conc_done));
}

static void put_leader(struct api__conc *c, api__conc_fn next)
{
    struct mvcc_op put = {.type = MVCC_OP_PUT,
                          .u.put = {.key = c->key,
                                    .key_len = c->key_len,
                                    .value = c->value,
                                    .value_len = c->value_len,
                                    .lease = c->lease}};
    leader_txn(c, &put, next);
}

static void delete_leader(struct api__conc *c, api__conc_fn next)
{
    struct mvcc_op del = {.type = MVCC_OP_DELETE,
                          .u.del = {.key = c->key, .key_len = c->key_len}};
    leader_txn(c, &del, next);
}

/* A header-only answer of type desc from a txn's result. */
static void reply_header(struct api__conc *c, const struct node_result *res,
                         ProtobufCMessage *msg,
                         Etcdserverpb__ResponseHeader **field)
{
    struct api_header h = api_header_of(res);
    *field = api__conc_header_pb(c, &h);
    if (*field == NULL) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    api__conc_reply(c, msg);
}

/* Proclaim and Resign take a LeaderKey; etcd's session over its lease
 * grants a fresh one when it is 0 (and Proclaim then puts under that). */
static bool take_leader(struct api__conc *c, const V3electionpb__LeaderKey *l)
{
    c->rev = l->rev;
    c->lease = l->lease;
    return api__conc_set_name(c, &l->name) &&
           api__conc_copy(c, &c->key, &c->key_len, l->key.data, l->key.len);
}

/* ---- Campaign ---- */

static void campaign_cleanup_done(struct api__conc *c,
                                  const struct node_result *res)
{
    (void)res;
    api__conc_end(c);
}

/* The client went away while campaigning: etcd resigns. Gone before the
 * txn's answer came, the create revision is unknown: the key is ours
 * (name/<our lease>), so it goes by name. */
static void campaign_cleanup(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    if (c->rev != 0) {
        delete_leader(c, campaign_cleanup_done);
        return;
    }
    struct api_backend *be = &c->api->be;
    struct mvcc_delete_req q = {.key = c->key, .key_len = c->key_len};
    c->pending = true;
    c->next = campaign_cleanup_done;
    api__conc_submitted(c, be->delete_range(be->arg, &q, c, api__conc_done));
}

static void campaign_won(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    V3electionpb__CampaignResponse out;
    v3electionpb__campaign_response__init(&out);
    V3electionpb__LeaderKey *l = api_arena_alloc(&c->arena, sizeof(*l));
    out.header = api__conc_header_pb(c, &c->hdr);
    if (l == NULL || out.header == NULL) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    v3electionpb__leader_key__init(l);
    l->name = (ProtobufCBinaryData){c->name_len, c->name};
    l->key = (ProtobufCBinaryData){c->key_len, c->key};
    l->rev = c->rev;
    l->lease = c->lease;
    out.leader = l;
    c->cleanup = NULL; /* the leadership is the client's now */
    api__conc_reply(c, &out.base);
}

static void campaign_wait(struct api__conc *c)
{
    api__conc_wait_deletes(c, c->rev - 1, campaign_won);
}

static void campaign_proclaimed(struct api__conc *c,
                                const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
    } else if (!res->u.txn.succeeded) {
        c->cleanup = NULL;
        api__conc_fail_status(c, api__status_etcd(API__E_ELECTION_NOT_LEADER));
    } else {
        campaign_wait(c);
    }
}

static void campaign_txn_done(struct api__conc *c,
                              const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    const struct mvcc_txn_resp *t = &res->u.txn;
    c->hdr = api_header_of(res);
    c->rev = c->hdr.revision;
    if (!t->succeeded) {
        /* campaigning again with the same lease: the key is ours already */
        const struct mvcc_range_resp *own = &t->responses[0].u.range;
        if (own->n_kvs == 0) {
            api__conc_fail(c, CAIRN_ECORRUPT);
            return;
        }
        const struct mvcc_kv *kv = &own->kvs[0];
        c->rev = kv->create_rev;
        if (kv->value_len != c->value_len ||
            (c->value_len > 0 &&
             memcmp(kv->value, c->value, c->value_len) != 0)) {
            put_leader(c, campaign_proclaimed);
            return;
        }
    }
    campaign_wait(c);
}

static void campaign_txn(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    if (!api__conc_set_key(c)) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    struct mvcc_compare cmp = {.result = MVCC_CMP_EQUAL,
                               .target = MVCC_CMP_CREATE,
                               .key = c->key,
                               .key_len = c->key_len};
    struct mvcc_op put = {.type = MVCC_OP_PUT,
                          .u.put = {.key = c->key,
                                    .key_len = c->key_len,
                                    .value = c->value,
                                    .value_len = c->value_len,
                                    .lease = c->lease}};
    struct mvcc_op get = {.type = MVCC_OP_RANGE,
                          .u.range = {.key = c->key, .key_len = c->key_len}};
    struct mvcc_txn_req txn = {.compares = &cmp,
                               .n_compares = 1,
                               .success = &put,
                               .n_success = 1,
                               .failure = &get,
                               .n_failure = 1};
    struct api_backend *be = &c->api->be;
    c->cleanup = campaign_cleanup;
    c->pending = true;
    c->next = campaign_txn_done;
    api__conc_submitted(c, be->txn(be->arg, &txn, c, api__conc_done));
}

void api__election_campaign(struct api_req *r, const uint8_t *data, size_t len)
{
    V3electionpb__CampaignRequest *in;
    UNPACK(r, v3electionpb__campaign_request, data, len, in);
    struct api__conc *c = api__conc_new(r);
    if (c == NULL) {
        v3electionpb__campaign_request__free_unpacked(in, NULL);
        return;
    }
    bool ok = api__conc_set_name(c, &in->name) && set_value(c, &in->value);
    c->lease = in->lease;
    v3electionpb__campaign_request__free_unpacked(in, NULL);
    if (!ok)
        api__conc_fail(c, CAIRN_ENOMEM);
    else if (c->lease == 0)
        api__conc_grant(c, campaign_txn);
    else
        campaign_txn(c, NULL);
}

/* ---- Proclaim ---- */

static void proclaim_done(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    if (!res->u.txn.succeeded) {
        api__conc_fail_status(c, api__status_etcd(API__E_ELECTION_NOT_LEADER));
        return;
    }
    V3electionpb__ProclaimResponse out;
    v3electionpb__proclaim_response__init(&out);
    reply_header(c, res, &out.base, &out.header);
}

static void proclaim_txn(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    put_leader(c, proclaim_done);
}

void api__election_proclaim(struct api_req *r, const uint8_t *data, size_t len)
{
    V3electionpb__ProclaimRequest *in;
    UNPACK(r, v3electionpb__proclaim_request, data, len, in);
    if (in->leader == NULL) {
        v3electionpb__proclaim_request__free_unpacked(in, NULL);
        api__req_fail_status(r, api__status_etcd(API__E_LEADER_KEY_MISSING));
        return;
    }
    struct api__conc *c = api__conc_new(r);
    if (c == NULL) {
        v3electionpb__proclaim_request__free_unpacked(in, NULL);
        return;
    }
    bool ok = take_leader(c, in->leader) && set_value(c, &in->value);
    v3electionpb__proclaim_request__free_unpacked(in, NULL);
    if (!ok)
        api__conc_fail(c, CAIRN_ENOMEM);
    else if (c->lease == 0)
        api__conc_grant(c, proclaim_txn);
    else
        proclaim_txn(c, NULL);
}

/* ---- Resign ---- */

static void resign_done(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    /* not the leader (any more): etcd answers OK all the same */
    V3electionpb__ResignResponse out;
    v3electionpb__resign_response__init(&out);
    reply_header(c, res, &out.base, &out.header);
}

static void resign_txn(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    delete_leader(c, resign_done);
}

void api__election_resign(struct api_req *r, const uint8_t *data, size_t len)
{
    V3electionpb__ResignRequest *in;
    UNPACK(r, v3electionpb__resign_request, data, len, in);
    if (in->leader == NULL) {
        v3electionpb__resign_request__free_unpacked(in, NULL);
        api__req_fail_status(r, api__status_etcd(API__E_LEADER_KEY_MISSING));
        return;
    }
    struct api__conc *c = api__conc_new(r);
    if (c == NULL) {
        v3electionpb__resign_request__free_unpacked(in, NULL);
        return;
    }
    bool ok = take_leader(c, in->leader);
    v3electionpb__resign_request__free_unpacked(in, NULL);
    if (!ok)
        api__conc_fail(c, CAIRN_ENOMEM);
    else if (c->lease == 0)
        api__conc_grant(c, resign_txn);
    else
        resign_txn(c, NULL);
}

/* ---- Leader ---- */

static void leader_read(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    if (res->u.range.n_kvs == 0) {
        api__conc_fail_status(c, api__status_etcd(API__E_ELECTION_NO_LEADER));
        return;
    }
    V3electionpb__LeaderResponse out;
    v3electionpb__leader_response__init(&out);
    struct api_header h = api_header_of(res);
    out.header = api__conc_header_pb(c, &h);
    out.kv = api__conc_kv_pb(c, &res->u.range.kvs[0]);
    if (out.header == NULL || out.kv == NULL) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    api__conc_reply(c, &out.base);
}

/* The oldest key of name/ (etcd's WithFirstCreate). */
static void read_leader(struct api__conc *c, api__conc_fn next)
{
    struct api_backend *be = &c->api->be;
    struct mvcc_range_req q = api__conc_prefix_top(c, MVCC_SORT_ASCEND);
    c->pending = true;
    c->next = next;
    api__conc_submitted(c, be->range(be->arg, &q, false, c, api__conc_done));
}

void api__election_leader(struct api_req *r, const uint8_t *data, size_t len)
{
    V3electionpb__LeaderRequest *in;
    UNPACK(r, v3electionpb__leader_request, data, len, in);
    struct api__conc *c = api__conc_new(r);
    if (c == NULL) {
        v3electionpb__leader_request__free_unpacked(in, NULL);
        return;
    }
    bool ok = api__conc_set_name(c, &in->name);
    v3electionpb__leader_request__free_unpacked(in, NULL);
    if (!ok)
        api__conc_fail(c, CAIRN_ENOMEM);
    else
        read_leader(c, leader_read);
}

/* ---- Observe: etcd's Election.observe loop ----
 * Read the leader (or watch name/ for the first put when there is none),
 * send it, then send every put of its key until the key is deleted, and
 * start over. Like etcd, the stream ends OK when a read or watch fails. */

#define OBSERVE_QUEUE_BYTES_MAX ((size_t)64 << 10)

static void observe_range(struct api__conc *c, const struct node_result *res);

/* Sends one LeaderResponse (kv borrowed for the call). */
static int observe_send(struct api__conc *c, const struct api_header *h,
                        const struct mvcc_kv *kv)
{
    Etcdserverpb__ResponseHeader ph;
    etcdserverpb__response_header__init(&ph);
    ph.cluster_id = h->cluster_id;
    ph.member_id = h->member_id;
    ph.revision = h->revision;
    ph.raft_term = h->raft_term;
    Mvccpb__KeyValue pkv;
    mvccpb__key_value__init(&pkv);
    pkv.key = (ProtobufCBinaryData){kv->key_len, (uint8_t *)kv->key};
    pkv.value = (ProtobufCBinaryData){kv->value_len, (uint8_t *)kv->value};
    pkv.create_revision = kv->create_rev;
    pkv.mod_revision = kv->mod_rev;
    pkv.version = kv->version;
    pkv.lease = kv->lease;
    V3electionpb__LeaderResponse out;
    v3electionpb__leader_response__init(&out);
    out.header = &ph;
    out.kv = &pkv;
    size_t n = v3electionpb__leader_response__get_packed_size(&out);
    uint8_t *p = cairn_malloc(n);
    if (p == NULL)
        return CAIRN_ENOMEM;
    v3electionpb__leader_response__pack(&out, p);
    int rv = rpc_call_send(c->call, p, n);
    cairn_free(p);
    return rv;
}

/* A watch response's header: the member's ids and term, its revision. */
static struct api_header watch_header(struct api__conc *c, int64_t rev)
{
    struct api_header h = {0};
    c->api->be.watch_header(c->api->be.arg, &h);
    h.revision = rev;
    return h;
}

static void observe_stop(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    if (c->call != NULL)
        rpc_call_finish(c->call, RPC_OK, NULL);
    api__conc_end(c);
}

static void observe_restart(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    read_leader(c, observe_range);
}

static bool observe_full(struct api__conc *c)
{
    return c->call == NULL ||
           rpc_call_send_queued_bytes(c->call) >= OBSERVE_QUEUE_BYTES_MAX;
}

/* Watching the leader's key: each put is sent, a delete starts over. */
static int observe_on_key(struct api__conc *c, const struct mvcc_watch_resp *r)
{
    if (r->canceled) {
        api__conc_defer(c, observe_stop);
        return 0;
    }
    if (observe_full(c)) {
        c->paused = true; /* resumed on writable */
        return CAIRN_EAGAIN;
    }
    struct api_header h = watch_header(c, r->header_rev);
    for (size_t i = 0; i < r->n_events; i++) {
        if (r->events[i].is_delete) {
            api__conc_defer(c, observe_restart);
            break;
        }
        if (observe_send(c, &h, &r->events[i].kv) != 0) {
            api__conc_defer(c, observe_stop);
            break;
        }
    }
    return 0;
}

/* Sends the leader (h, kv) and watches its key after h's revision. */
static void observe_leader(struct api__conc *c, const struct api_header *h,
                           const struct mvcc_kv *kv)
{
    if (observe_send(c, h, kv) != 0 ||
        !api__conc_copy(c, &c->wkey, &c->wkey_len, kv->key, kv->key_len) ||
        api__conc_watch(c, c->wkey, c->wkey_len, NULL, 0, h->revision + 1,
                        observe_on_key) != 0)
        observe_stop(c, NULL);
}

/* Watches the leader's key (wkey) from rev. */
static void observe_follow(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    if (api__conc_watch(c, c->wkey, c->wkey_len, NULL, 0, c->rev,
                        observe_on_key) != 0)
        observe_stop(c, NULL);
}

/* No leader yet: the first put under name/ is the leader. */
static int observe_on_prefix(struct api__conc *c,
                             const struct mvcc_watch_resp *r)
{
    if (r->canceled) {
        api__conc_defer(c, observe_stop);
        return 0;
    }
    if (observe_full(c)) {
        c->paused = true;
        return CAIRN_EAGAIN;
    }
    for (size_t i = 0; i < r->n_events; i++) {
        const struct mvcc_kv *kv = &r->events[i].kv;
        if (r->events[i].is_delete)
            continue;
        /* etcd: the watch response's header with the put's revision */
        struct api_header h = watch_header(c, kv->mod_rev);
        if (observe_send(c, &h, kv) != 0 ||
            !api__conc_copy(c, &c->wkey, &c->wkey_len, kv->key, kv->key_len)) {
            api__conc_defer(c, observe_stop);
            return 0;
        }
        c->rev = kv->mod_rev + 1;
        api__conc_defer(c, observe_follow);
        break;
    }
    return 0;
}

static void observe_range(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        observe_stop(c, NULL);
        return;
    }
    if (res->u.range.n_kvs > 0) {
        struct api_header h = api_header_of(res);
        observe_leader(c, &h, &res->u.range.kvs[0]);
        return;
    }
    if (api__conc_watch(c, c->pfx, c->pfx_len, c->end, c->end_len,
                        res->revision, observe_on_prefix) != 0)
        observe_stop(c, NULL);
}

/* ---- Observe's rpc callbacks ---- */

static void observe_start(void *arg, struct rpc_call *call)
{
    struct api__slot *slot = arg;
    api__count_start(slot);
    struct api__conc *c = api__conc_new_stream(slot, call);
    if (c == NULL) {
        struct api_status st = api_status_from_err(CAIRN_ENOMEM);
        rpc_call_finish(call, st.code, st.message);
        return;
    }
    rpc_call_set_user(call, c);
}

static void observe_message(void *arg, struct rpc_call *call,
                            const uint8_t *data, size_t len)
{
    (void)arg;
    struct api__conc *c = rpc_call_user(call);
    if (c == NULL || c->got_msg)
        return; /* a server stream reads one message */
    c->got_msg = true;
    V3electionpb__LeaderRequest *in =
        v3electionpb__leader_request__unpack(NULL, len, data);
    if (in == NULL) {
        api__conc_fail(c, CAIRN_EMALFORMED);
        return;
    }
    bool ok = api__conc_set_name(c, &in->name);
    v3electionpb__leader_request__free_unpacked(in, NULL);
    if (!ok)
        api__conc_fail(c, CAIRN_ENOMEM);
    else
        read_leader(c, observe_range);
}

static void observe_half_close(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct api__conc *c = rpc_call_user(call);
    if (c != NULL && !c->got_msg && !c->ended)
        api__conc_fail_status(c, api__status_etcd(API__E_NO_REQUEST));
}

static void observe_writable(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct api__conc *c = rpc_call_user(call);
    if (c == NULL || !c->paused || !c->watching || c->ended)
        return;
    c->paused = false;
    c->api->be.watch_resume(c->api->be.arg, c->hub, c->watch_id);
}

static void observe_done(void *arg, struct rpc_call *call, int code,
                         const char *message)
{
    (void)message;
    struct api__slot *slot = arg;
    struct api *a = slot->api;
    api__count_done(slot, code);
    struct api__conc *c = rpc_call_user(call);
    if (c != NULL) {
        c->call = NULL;
        c->cancelled = true;
        /* a pending completion or deferred step ends c when it comes */
        if (!c->pending && c->deferred == NULL)
            api__conc_end(c);
    }
    api__unref(a);
}

const struct rpc_call_cbs api__election_observe_cbs = {
    .start = observe_start,
    .message = observe_message,
    .half_close = observe_half_close,
    .writable = observe_writable,
    .done = observe_done,
};
