/* conc: the machinery of Lock and Election (see conc.h): a long request as
 * a chain of backend steps and watcher waits, and what happens when its
 * client goes away in the middle (etcd's recipes then remove their key). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api/conc.h"

/* etcd's concurrency.defaultSessionTTL */
#define CONC_SESSION_TTL_S 60

static void conc_maybe_free(struct api__conc *c)
{
    if (!c->ended || !c->timer_closed || c->pending)
        return;
    struct api *a = c->api;
    api_arena_free(&c->arena);
    cairn_free(c);
    api__unref(a);
}

static void timer_closed(uv_handle_t *h)
{
    struct api__conc *c = h->data;
    c->timer_closed = true;
    conc_maybe_free(c);
}

static void stop_watching(struct api__conc *c)
{
    struct api_backend *be = &c->api->be;
    if (c->watching)
        be->watch_cancel(be->arg, c->hub, c->watch_id);
    c->watching = false;
    c->paused = false;
}

void api__conc_end(struct api__conc *c)
{
    if (c->ended)
        return;
    c->ended = true;
    stop_watching(c);
    if (c->hub != NULL) {
        c->api->be.watch_close(c->api->be.arg, c->hub);
        c->hub = NULL;
    }
    uv_close((uv_handle_t *)&c->timer, timer_closed);
}

/* The client went away: remove what we made (unless the server is
 * closing: the session lease then removes it), then end. */
static void conc_abandon(struct api__conc *c)
{
    stop_watching(c);
    api__conc_fn cleanup = c->cleanup;
    c->cleanup = NULL;
    if (cleanup != NULL && !c->api->closed) {
        c->in_cleanup = true;
        cleanup(c, NULL);
    } else {
        api__conc_end(c);
    }
}

static void conc_call_done(struct api_req *r)
{
    struct api__conc *c = r->owner;
    /* the call is over: r is ours to free, nothing answers it any more */
    api__req_free(r);
    c->r = NULL;
    c->cancelled = true;
    if (!c->pending && c->deferred == NULL)
        conc_abandon(c);
}

static struct api__conc *conc_alloc(struct api *a)
{
    struct api__conc *c = cairn_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->api = a;
    api_arena_init(&c->arena);
    uv_timer_init(a->loop, &c->timer);
    c->timer.data = c;
    api__ref(a);
    return c;
}

struct api__conc *api__conc_new(struct api_req *r)
{
    struct api__conc *c = conc_alloc(r->api);
    if (c == NULL) {
        api__req_fail(r, CAIRN_ENOMEM);
        return NULL;
    }
    c->r = r;
    r->owner = c;
    r->on_call_done = conc_call_done;
    r->pending = true; /* the call's end leaves r to us */
    return c;
}

struct api__conc *api__conc_new_stream(struct api__slot *slot,
                                       struct rpc_call *call)
{
    struct api__conc *c = conc_alloc(slot->api);
    if (c == NULL)
        return NULL;
    c->slot = slot;
    c->call = call;
    return c;
}

bool api__conc_copy(struct api__conc *c, uint8_t **out, size_t *out_len,
                    const void *data, size_t len)
{
    uint8_t *p = api_arena_alloc(&c->arena, len + 1);
    if (p == NULL)
        return false;
    if (len > 0)
        memcpy(p, data, len);
    p[len] = 0;
    *out = p;
    *out_len = len;
    return true;
}

bool api__conc_set_name(struct api__conc *c, const ProtobufCBinaryData *name)
{
    if (!api__conc_copy(c, &c->name, &c->name_len, name->data, name->len))
        return false;
    uint8_t *p = api_arena_alloc(&c->arena, name->len + 2);
    if (p == NULL)
        return false;
    if (name->len > 0)
        memcpy(p, name->data, name->len);
    p[name->len] = '/';
    p[name->len + 1] = 0;
    c->pfx = p;
    c->pfx_len = name->len + 1;
    /* clientv3's GetPrefixRangeEnd: the last byte below 0xff plus one
     * (pfx ends in '/', so there is one) */
    if (!api__conc_copy(c, &c->end, &c->end_len, c->pfx, c->pfx_len))
        return false;
    c->end[c->end_len - 1]++;
    return true;
}

bool api__conc_set_key(struct api__conc *c)
{
    char hex[24];
    /* Go's %x of an int64: a sign, then the magnitude */
    uint64_t mag =
        c->lease < 0 ? (uint64_t)0 - (uint64_t)c->lease : (uint64_t)c->lease;
    int n =
        snprintf(hex, sizeof(hex), "%s%" PRIx64, c->lease < 0 ? "-" : "", mag);
    uint8_t *p = api_arena_alloc(&c->arena, c->pfx_len + (size_t)n + 1);
    if (p == NULL)
        return false;
    memcpy(p, c->pfx, c->pfx_len);
    memcpy(p + c->pfx_len, hex, (size_t)n + 1);
    c->key = p;
    c->key_len = c->pfx_len + (size_t)n;
    return true;
}

/* ---- steps ---- */

void api__conc_done(void *ctx, const struct node_result *res)
{
    struct api__conc *c = ctx;
    CAIRN_ASSERT(c->pending);
    c->pending = false;
    if (c->ended) {
        conc_maybe_free(c);
        return;
    }
    api__conc_fn next = c->next;
    c->next = NULL;
    if (c->cancelled && !c->in_cleanup) {
        conc_abandon(c);
        return;
    }
    next(c, res);
}

void api__conc_submitted(struct api__conc *c, int rv)
{
    if (rv == 0)
        return; /* c may be gone already: the completion ran */
    c->pending = false;
    c->next = NULL;
    if (c->in_cleanup)
        api__conc_end(c);
    else if (c->cancelled)
        conc_abandon(c);
    else
        api__conc_fail(c, rv);
}

static void granted(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    c->lease = res->u.lease_grant.id;
    api__conc_fn next = c->wait_done;
    c->wait_done = NULL;
    next(c, NULL);
}

void api__conc_grant(struct api__conc *c, api__conc_fn next)
{
    struct api_backend *be = &c->api->be;
    c->wait_done = next;
    c->pending = true;
    c->next = granted;
    api__conc_submitted(
        c, be->lease_grant(be->arg, 0, CONC_SESSION_TTL_S, c, api__conc_done));
}

static void timer_fired(uv_timer_t *t)
{
    struct api__conc *c = t->data;
    api__conc_fn fn = c->deferred;
    c->deferred = NULL;
    if (c->ended || fn == NULL)
        return;
    if (c->cancelled && !c->in_cleanup) {
        conc_abandon(c);
        return;
    }
    fn(c, NULL);
}

void api__conc_defer(struct api__conc *c, api__conc_fn fn)
{
    if (c->deferred != NULL || c->ended)
        return;
    c->deferred = fn;
    uv_timer_start(&c->timer, timer_fired, 0, 0);
}

/* ---- watching ---- */

static int conc_watch_cb(void *arg, const struct mvcc_watch_resp *resp)
{
    struct api__conc *c = arg;
    if (c->ended || !c->watching || resp->watch_id != c->watch_id)
        return 0;
    return c->on_watch(c, resp);
}

int api__conc_watch(struct api__conc *c, const uint8_t *key, size_t key_len,
                    const uint8_t *end, size_t end_len, int64_t start_rev,
                    api__conc_watch_fn on_watch)
{
    struct api_backend *be = &c->api->be;
    stop_watching(c);
    if (c->hub == NULL) {
        int rv = be->watch_open(be->arg, c, conc_watch_cb, &c->hub);
        if (rv != 0) {
            c->hub = NULL;
            return rv;
        }
    }
    struct mvcc_watch_req req = {.key = key,
                                 .key_len = key_len,
                                 .end = end,
                                 .end_len = end_len,
                                 .start_rev = start_rev};
    int64_t id = -1;
    int rv = be->watch_create(be->arg, c->hub, &req, &id);
    if (rv != 0)
        return rv;
    c->watch_id = id;
    c->watching = true;
    c->on_watch = on_watch;
    return 0;
}

/* ---- etcd's waitDeletes (clientv3/concurrency/key.go) ---- */

static void wait_range(struct api__conc *c, const struct node_result *res);

static void wait_again(struct api__conc *c, const struct node_result *res)
{
    (void)res;
    stop_watching(c);
    if (c->wait_err != 0) {
        api__conc_fail(c, c->wait_err);
        return;
    }
    struct api_backend *be = &c->api->be;
    struct mvcc_range_req q = api__conc_prefix_top(c, MVCC_SORT_DESCEND);
    q.max_create_rev = c->wait_max_rev;
    c->pending = true;
    c->next = wait_range;
    api__conc_submitted(c, be->range(be->arg, &q, false, c, api__conc_done));
}

/* waitDelete: the first DELETE event of the key ends the wait. */
static int wait_on_watch(struct api__conc *c,
                         const struct mvcc_watch_resp *resp)
{
    if (resp->canceled) {
        /* a watch from a compacted revision: etcd's client gets the
         * compaction error and the recipe fails with it */
        c->wait_err =
            resp->compact_rev != 0 ? CAIRN_EREVCOMPACTED : CAIRN_ECANCELED;
        api__conc_defer(c, wait_again);
        return 0;
    }
    for (size_t i = 0; i < resp->n_events; i++)
        if (resp->events[i].is_delete) {
            api__conc_defer(c, wait_again);
            break;
        }
    return 0;
}

static void wait_range(struct api__conc *c, const struct node_result *res)
{
    if (res->err != 0) {
        api__conc_fail(c, res->err);
        return;
    }
    const struct mvcc_range_resp *rr = &res->u.range;
    if (rr->n_kvs == 0) {
        c->wait_hdr = api_header_of(res);
        api__conc_fn done = c->wait_done;
        c->wait_done = NULL;
        done(c, NULL);
        return;
    }
    if (!api__conc_copy(c, &c->wkey, &c->wkey_len, rr->kvs[0].key,
                        rr->kvs[0].key_len)) {
        api__conc_fail(c, CAIRN_ENOMEM);
        return;
    }
    /* from the range's revision: a delete after it cannot be missed */
    int rv = api__conc_watch(c, c->wkey, c->wkey_len, NULL, 0, res->revision,
                             wait_on_watch);
    if (rv != 0)
        api__conc_fail(c, rv);
}

void api__conc_wait_deletes(struct api__conc *c, int64_t max_rev,
                            api__conc_fn done)
{
    c->wait_max_rev = max_rev;
    c->wait_done = done;
    c->wait_err = 0;
    wait_again(c, NULL);
}

/* ---- answers ---- */

void api__conc_reply(struct api__conc *c, const ProtobufCMessage *msg)
{
    struct api_req *r = c->r;
    c->r = NULL;
    if (r != NULL) {
        r->pending = false;
        r->on_call_done = NULL;
        api__req_reply(r, msg);
    }
    api__conc_end(c);
}

void api__conc_fail_status(struct api__conc *c, struct api_status st)
{
    struct api_req *r = c->r;
    c->r = NULL;
    if (r != NULL) {
        r->pending = false;
        r->on_call_done = NULL;
        api__req_fail_status(r, st);
    }
    if (c->call != NULL)
        rpc_call_finish(c->call, st.code, st.message);
    if (c->cleanup_on_fail && !c->in_cleanup) {
        conc_abandon(c);
        return;
    }
    api__conc_end(c);
}

void api__conc_fail(struct api__conc *c, int err)
{
    if (c->in_cleanup) {
        api__conc_end(c);
        return;
    }
    api__conc_fail_status(c, api_status_from_err(err));
}

/* ---- wire messages ---- */

Etcdserverpb__ResponseHeader *api__conc_header_pb(struct api__conc *c,
                                                  const struct api_header *h)
{
    Etcdserverpb__ResponseHeader *ph = api_arena_alloc(&c->arena, sizeof(*ph));
    if (ph == NULL)
        return NULL;
    etcdserverpb__response_header__init(ph);
    ph->cluster_id = h->cluster_id;
    ph->member_id = h->member_id;
    ph->revision = h->revision;
    ph->raft_term = h->raft_term;
    return ph;
}

Mvccpb__KeyValue *api__conc_kv_pb(struct api__conc *c, const struct mvcc_kv *kv)
{
    Mvccpb__KeyValue *p = api_arena_alloc(&c->arena, sizeof(*p));
    uint8_t *key = NULL, *value = NULL;
    size_t kl = 0, vl = 0;
    /* copied: the member's result is borrowed for its callback only */
    if (p == NULL || !api__conc_copy(c, &key, &kl, kv->key, kv->key_len) ||
        !api__conc_copy(c, &value, &vl, kv->value, kv->value_len))
        return NULL;
    mvccpb__key_value__init(p);
    p->key = (ProtobufCBinaryData){kl, key};
    p->value = (ProtobufCBinaryData){vl, value};
    p->create_revision = kv->create_rev;
    p->mod_revision = kv->mod_rev;
    p->version = kv->version;
    p->lease = kv->lease;
    return p;
}

struct mvcc_range_req api__conc_prefix_top(const struct api__conc *c,
                                           enum mvcc_sort_order order)
{
    return (struct mvcc_range_req){.key = c->pfx,
                                   .key_len = c->pfx_len,
                                   .end = c->end,
                                   .end_len = c->end_len,
                                   .limit = 1,
                                   .sort_order = order,
                                   .sort_target = MVCC_SORT_CREATE};
}
