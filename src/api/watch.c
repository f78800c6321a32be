/* watch: etcd's Watch service (etcdserver/api/v3rpc/watch.go): one
 * bidirectional stream carries many watchers, created, cancelled and asked
 * for progress by the client; their events come from the member's watch
 * hub for the stream. A stream whose client does not read pauses its
 * watchers (they catch up from the store later) instead of buffering. */
#include <string.h>

#include "api/api_int.h"

/* Answers queued for sending beyond which watchers are paused. */
#define W_QUEUED_MAX ((size_t)512 << 10)
/* Watchers of one stream (etcd has no limit; the hub's is 100,000). */
#define W_WATCHERS_MAX 4096

struct w_stream {
    struct api__slot *slot;
    struct rpc_call *call; /* NULL once done */
    void *hub;
    bool finished;
    /* the stream's watcher ids, and those paused by back-pressure */
    int64_t *ids;
    size_t n_ids, cap_ids;
    int64_t *paused;
    size_t n_paused, cap_paused;
    struct api__wenc enc;
};

static struct api_backend *w_be(struct w_stream *w)
{
    return &w->slot->api->be;
}

static void w_finish(struct w_stream *w, int err)
{
    if (w->finished || w->call == NULL)
        return;
    w->finished = true;
    struct api_status s = api_status_from_err(err);
    rpc_call_finish(w->call, s.code, s.message);
}

static int ids_push(int64_t **v, size_t *n, size_t *cap, int64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if ((*v)[i] == id)
            return 0;
    if (*n == *cap) {
        size_t c = *cap == 0 ? 8 : *cap * 2;
        int64_t *nv = cairn_realloc(*v, c * sizeof(*nv));
        if (nv == NULL)
            return CAIRN_ENOMEM;
        *v = nv;
        *cap = c;
    }
    (*v)[(*n)++] = id;
    return 0;
}

static void ids_remove(int64_t *v, size_t *n, int64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == id) {
            v[i] = v[--*n];
            return;
        }
}

/* A created, canceled or progress answer (no events). */
static void w_control(struct w_stream *w, int64_t id, bool created,
                      bool canceled, const char *reason)
{
    struct api_header h = {0};
    w_be(w)->watch_header(w_be(w)->arg, &h);
    Etcdserverpb__ResponseHeader ph;
    etcdserverpb__response_header__init(&ph);
    ph.cluster_id = h.cluster_id;
    ph.member_id = h.member_id;
    ph.revision = h.revision;
    ph.raft_term = h.raft_term;
    Etcdserverpb__WatchResponse out;
    etcdserverpb__watch_response__init(&out);
    out.header = &ph;
    out.watch_id = id;
    out.created = created;
    out.canceled = canceled;
    out.cancel_reason = (char *)(reason != NULL ? reason : "");
    /* control answers are few and small: they go even past the bound */
    size_t n = etcdserverpb__watch_response__get_packed_size(&out);
    uint8_t buf[512];
    CAIRN_ASSERT(n <= sizeof(buf));
    etcdserverpb__watch_response__pack(&out, buf);
    int rv = rpc_call_send(w->call, buf, n);
    if (rv != 0 && w->call != NULL)
        w_finish(w, rv == CAIRN_EFULL ? CAIRN_ETOOMANYREQUESTS : rv);
}

/* The hub's callback: one response for one watcher. */
static int w_hub_cb(void *ctx, const struct mvcc_watch_resp *resp)
{
    struct w_stream *w = ctx;
    if (w->call == NULL || w->finished)
        return 0; /* nobody to tell: dropped */
    int rv = CAIRN_EAGAIN;
    if (rpc_call_send_queued_bytes(w->call) <= W_QUEUED_MAX) {
        struct api_header h = {0};
        w_be(w)->watch_header(w_be(w)->arg, &h);
        h.revision = resp->header_rev;
        const uint8_t *p;
        size_t n;
        rv = api__wenc_response(&w->enc, &h, resp, &p, &n);
        if (rv == 0)
            rv = rpc_call_send(w->call, p, n);
        if (rv == CAIRN_EFULL)
            rv = CAIRN_EAGAIN;
    }
    if (rv == CAIRN_EAGAIN) {
        /* remembered for writable; a failure to remember ends the stream */
        if (ids_push(&w->paused, &w->n_paused, &w->cap_paused,
                     resp->watch_id) != 0) {
            w_finish(w, CAIRN_ENOMEM);
            return 0;
        }
        return CAIRN_EAGAIN;
    }
    if (rv != 0)
        w_finish(w, rv);
    if (resp->canceled && w->call != NULL)
        ids_remove(w->ids, &w->n_ids, resp->watch_id);
    return 0;
}

static void w_create(struct w_stream *w,
                     const Etcdserverpb__WatchCreateRequest *c)
{
    static const uint8_t zero = 0;
    struct mvcc_watch_req req = {
        .key = c->key.len > 0 ? c->key.data : &zero,
        .key_len = c->key.len > 0 ? c->key.len : 1,
        .end = c->range_end.data,
        .end_len = c->range_end.len,
        .start_rev = c->start_revision,
        .prev_kv = c->prev_kv,
        .fragment = c->fragment,
    };
    for (size_t i = 0; i < c->n_filters; i++) {
        if (c->filters[i] ==
            ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
            req.no_put = true;
        else if (c->filters[i] ==
                 ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
            req.no_delete = true;
    }
    /* etcd's AutoWatchID is 0: any other id is the client's choice */
    int64_t id = c->watch_id != 0 ? c->watch_id : -1;
    int rv = w->n_ids >= W_WATCHERS_MAX
                 ? CAIRN_EFULL
                 : w_be(w)->watch_create(w_be(w)->arg, w->hub, &req, &id);
    if (rv == 0 && ids_push(&w->ids, &w->n_ids, &w->cap_ids, id) != 0) {
        w_be(w)->watch_cancel(w_be(w)->arg, w->hub, id);
        rv = CAIRN_ENOMEM;
    }
    if (rv == 0) {
        w_control(w, id, true, false, NULL);
        return;
    }
    /* as etcd: created and canceled at once, id -1, the reason in text */
    const char *reason =
        rv == CAIRN_EEXISTS
            ? "mvcc: duplicate watch ID provided on the WatchStream"
            : cairn_strerror(rv);
    w_control(w, -1, true, true, reason);
}

static void w_message(void *arg, struct rpc_call *call, const uint8_t *data,
                      size_t len)
{
    (void)arg;
    struct w_stream *w = rpc_call_user(call);
    if (w == NULL || w->finished)
        return;
    Etcdserverpb__WatchRequest *in =
        etcdserverpb__watch_request__unpack(NULL, len, data);
    if (in == NULL) {
        w_finish(w, CAIRN_EMALFORMED);
        return;
    }
    switch (in->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
        w_create(w, in->create_request);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST: {
        int64_t id = in->cancel_request->watch_id;
        /* an unknown id gets no answer, as in etcd */
        if (w_be(w)->watch_cancel(w_be(w)->arg, w->hub, id) == 0) {
            ids_remove(w->ids, &w->n_ids, id);
            ids_remove(w->paused, &w->n_paused, id);
            w_control(w, id, false, true, NULL);
        }
        break;
    }
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
        /* etcd 3.4 answers once for the stream (watch id -1) with the
         * current revision. That is a bookmark only if every watcher has
         * caught up, so each watcher that has gets its own notification
         * from the hub and one that is behind gets none (as etcd 3.5);
         * a stream without watchers gets etcd's answer. */
        if (w->n_ids == 0)
            w_control(w, -1, false, false, NULL);
        for (size_t i = 0; i < w->n_ids && w->call != NULL; i++)
            w_be(w)->watch_progress(w_be(w)->arg, w->hub, w->ids[i]);
        break;
    default:
        break;
    }
    etcdserverpb__watch_request__free_unpacked(in, NULL);
}

static void w_writable(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct w_stream *w = rpc_call_user(call);
    if (w == NULL || w->finished)
        return;
    /* resume takes effect at the hub's next poll; each id once */
    size_t n = w->n_paused;
    w->n_paused = 0;
    for (size_t i = 0; i < n; i++)
        w_be(w)->watch_resume(w_be(w)->arg, w->hub, w->paused[i]);
}

static void w_start(void *arg, struct rpc_call *call)
{
    struct api__slot *slot = arg;
    api__count_start(slot);
    struct w_stream *w = cairn_calloc(1, sizeof(*w));
    if (w == NULL) {
        struct api_status s = api_status_from_err(CAIRN_ENOMEM);
        rpc_call_finish(call, s.code, s.message);
        return;
    }
    w->slot = slot;
    w->call = call;
    api__wenc_init(&w->enc);
    int rv = slot->api->be.watch_open(slot->api->be.arg, w, w_hub_cb, &w->hub);
    if (rv != 0) {
        cairn_free(w);
        struct api_status s = api_status_from_err(rv);
        rpc_call_finish(call, s.code, s.message);
        return;
    }
    rpc_call_set_user(call, w);
}

static void w_done(void *arg, struct rpc_call *call, int code,
                   const char *message)
{
    (void)message;
    struct api__slot *slot = arg;
    api__count_done(slot, code);
    struct w_stream *w = rpc_call_user(call);
    if (w != NULL) {
        w->call = NULL;
        slot->api->be.watch_close(slot->api->be.arg, w->hub);
        cairn_free(w->ids);
        cairn_free(w->paused);
        api__wenc_free(&w->enc);
        cairn_free(w);
    }
    api__unref(slot->api);
}

/* A client's half-close does not end a Watch: etcd keeps sending events
 * until the client cancels the stream. */
const struct rpc_call_cbs api__watch_cbs = {
    .start = w_start,
    .message = w_message,
    .writable = w_writable,
    .done = w_done,
};
