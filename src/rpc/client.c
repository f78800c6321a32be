/* The gRPC client: one HTTP/2 connection with prior knowledge, calls as
 * streams on it. */
#include <stdio.h>
#include <string.h>

#include "rpc/rpc_int.h"

struct rpc_client {
    struct rpc__conn conn; /* first: the conn's ops recover the client */
    struct rpc_client_config cfg;
    char authority[NET_HOST_MAX + 8];
    rpc_client_connect_cb cb;
    void *arg;
    bool closed_by_user;
    bool gone; /* the connection is torn down; only the memory is left */
    bool timer_closed;
    /* The turn's flush: an idle handle, not a prepare one, because a flush
     * queued while prepare callbacks run would wait in poll for the next
     * event; an active idle handle makes that poll return at once. */
    uv_idle_t flush_idle;
    bool has_idle;
    bool idle_closed;
};

/* The memory goes when the user has closed the client, the connection is
 * torn down and the keepalive timer (if any) has closed. */
static void client_maybe_free(struct rpc_client *cl)
{
    if (cl->closed_by_user && cl->gone &&
        (!cl->conn.has_timer || cl->timer_closed) &&
        (!cl->has_idle || cl->idle_closed))
        cairn_free(cl);
}

static void client_timer_closed(uv_handle_t *h)
{
    struct rpc_client *cl = h->data;
    cl->timer_closed = true;
    client_maybe_free(cl);
}

static void client_idle_closed(uv_handle_t *h)
{
    struct rpc_client *cl = h->data;
    cl->idle_closed = true;
    client_maybe_free(cl);
}

static void client_conn_destroyed(struct rpc__conn *c)
{
    struct rpc_client *cl = (struct rpc_client *)c;
    cl->gone = true;
    rpc__call_reap(c); /* in a close callback: no handler holds one */
    if (cl->has_idle)
        uv_close((uv_handle_t *)&cl->flush_idle, client_idle_closed);
    if (c->has_timer) {
        c->timer.data = cl;
        uv_close((uv_handle_t *)&c->timer, client_timer_closed);
    }
    /* The user's pointer stays valid until rpc_client_close. */
    client_maybe_free(cl);
}

static void client_flush_idle(uv_idle_t *h)
{
    struct rpc_client *cl = h->data;
    uv_idle_stop(h);
    rpc__call_reap(&cl->conn);
    rpc__conn_flush_now(&cl->conn);
}

/* Calls made and messages sent in one loop turn (the answers of a turn
 * start the next requests of a benchmark's workers) leave in one socket
 * write: the flush runs in the idle phase, after the turn's timers and
 * before it polls. */
static void client_queue_flush(struct rpc__conn *c)
{
    struct rpc_client *cl = (struct rpc_client *)c;
    if (!cl->has_idle) {
        uv_idle_init(c->loop, &cl->flush_idle);
        cl->flush_idle.data = cl;
        cl->has_idle = true;
    }
    if (!uv_is_active((uv_handle_t *)&cl->flush_idle))
        uv_idle_start(&cl->flush_idle, client_flush_idle);
}

static void client_keepalive(uv_timer_t *t)
{
    struct rpc_client *cl = t->data;
    rpc__keepalive_tick(&cl->conn, cl->cfg.keepalive_interval_ms,
                        cl->cfg.keepalive_timeout_ms);
}

static const struct rpc__conn_ops client_conn_ops = {
    .destroyed = client_conn_destroyed,
    .queue_flush = client_queue_flush,
};

static void on_connected(void *arg, int status, struct net_conn *nc)
{
    struct rpc_client *cl = arg;
    rpc_client_connect_cb cb = cl->cb;
    void *cbarg = cl->arg;
    if (status != 0) {
        cairn_free(cl);
        cb(cbarg, status, NULL);
        return;
    }
    struct rpc__conn *c = &cl->conn;
    c->net = nc;
    if (rpc__session_new(c, cl->cfg.stream_window_bytes, 0) != 0) {
        /* The conn must be started before it can report its close. */
        c->closing = true;
        cl->closed_by_user = true; /* never handed out */
        net_conn_start(nc, &rpc__conn_net_cbs, c);
        net_conn_close(nc, false);
        cb(cbarg, CAIRN_ENOMEM, NULL);
        return;
    }
    net_conn_start(nc, &rpc__conn_net_cbs, c);
    if (cl->cfg.keepalive_interval_ms > 0) {
        uv_timer_init(c->loop, &c->timer);
        c->timer.data = cl;
        c->has_timer = true;
        c->last_ack = uv_now(c->loop);
        uv_timer_start(&c->timer, client_keepalive,
                       cl->cfg.keepalive_interval_ms, 0);
    }
    rpc__conn_flush(c); /* preface and SETTINGS */
    cb(cbarg, 0, cl);
}

int rpc_client_connect(uv_loop_t *loop, const struct net_url *url,
                       const struct rpc_client_config *config,
                       struct cairn_log *log, void *arg,
                       rpc_client_connect_cb cb)
{
    struct rpc_client *cl = cairn_calloc(1, sizeof(*cl));
    if (cl == NULL)
        return CAIRN_ENOMEM;
    if (config)
        cl->cfg = *config;
    if (cl->cfg.max_recv_msg_bytes == 0)
        cl->cfg.max_recv_msg_bytes = 4u << 20;
    if (cl->cfg.send_queue_max_bytes == 0)
        cl->cfg.send_queue_max_bytes = RPC_SEND_QUEUE_DEFAULT;
    if (cl->cfg.stream_window_bytes == 0)
        cl->cfg.stream_window_bytes = 1u << 20;
    if (cl->cfg.net.write_queue_max_bytes != 0 &&
        cl->cfg.net.write_queue_max_bytes < RPC__NET_QUEUE_MIN)
        cl->cfg.net.write_queue_max_bytes = RPC__NET_QUEUE_MIN;
    if (cl->cfg.keepalive_timeout_ms == 0)
        cl->cfg.keepalive_timeout_ms = 20000;
    struct rpc__conn *c = &cl->conn;
    c->ops = &client_conn_ops;
    c->is_client = true;
    c->mode = RPC__H2;
    c->loop = loop;
    c->log = log;
    c->max_recv = cl->cfg.max_recv_msg_bytes;
    c->send_queue_max = cl->cfg.send_queue_max_bytes;
    buf_init(&c->stage);
    if (url->is_unix)
        snprintf(cl->authority, sizeof(cl->authority), "localhost");
    else if (strchr(url->host, ':'))
        snprintf(cl->authority, sizeof(cl->authority), "[%.*s]:%u", 200,
                 url->host, (unsigned)url->port);
    else
        snprintf(cl->authority, sizeof(cl->authority), "%.*s:%u", 200,
                 url->host, (unsigned)url->port);
    cl->cb = cb;
    cl->arg = arg;
    int rv = net_connect(loop, url, &cl->cfg.net, cl, on_connected);
    if (rv != 0)
        cairn_free(cl);
    return rv;
}

int rpc_client_call(struct rpc_client *cl, const char *path, int64_t timeout_ms,
                    const char *const *metadata, const struct rpc_call_cbs *cbs,
                    void *arg, struct rpc_call **out)
{
    size_t n_md = 0;
    while (metadata && metadata[2 * n_md] && n_md <= RPC_METADATA_MAX) {
        if (metadata[2 * n_md + 1] == NULL)
            return CAIRN_EINVAL;
        n_md++;
    }
    if (n_md > RPC_METADATA_MAX)
        return CAIRN_EINVAL;
    struct rpc__conn *c = &cl->conn;
    CAIRN_ASSERT(cbs != NULL && cbs->done != NULL);
    if (!rpc_client_alive(cl))
        return CAIRN_ESHUTDOWN;
    struct rpc_call *call = rpc__call_new(c, -1);
    if (call == NULL)
        return CAIRN_ENOMEM;
    call->path = cairn_strdup(path);
    if (call->path == NULL)
        goto err_after_call;
    call->cbs = cbs;
    call->arg = arg;
    call->timeout_ms = timeout_ms;
    if (rpc__call_alloc_timer(call) != 0)
        goto err_after_call;
    char tbuf[24];
    nghttp2_nv nv[8 + RPC_METADATA_MAX];
    size_t n = 0;
    rpc__nv(&nv[n++], ":method", "POST");
    rpc__nv(&nv[n++], ":scheme", "http");
    rpc__nv(&nv[n++], ":path", call->path);
    rpc__nv(&nv[n++], ":authority", cl->authority);
    rpc__nv(&nv[n++], "te", "trailers");
    rpc__nv(&nv[n++], "content-type", "application/grpc");
    rpc__nv(&nv[n++], "user-agent", "cairn-rpc/0.1");
    if (timeout_ms >= 0) {
        rpc_timeout_format(timeout_ms, tbuf, sizeof(tbuf));
        rpc__nv(&nv[n++], "grpc-timeout", tbuf);
    }
    for (size_t i = 0; i < n_md; i++)
        rpc__nv(&nv[n++], metadata[2 * i], metadata[2 * i + 1]);
    nghttp2_data_provider prd = {.source = {.ptr = NULL},
                                 .read_callback = rpc__data_read};
    int32_t id = nghttp2_submit_request(c->session, NULL, nv, n, &prd, call);
    if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
        /* All 2^30 client stream ids are used: this connection is done. */
        call->is_client = false;
        rpc__call_end(call, RPC_INTERNAL, NULL);
        return CAIRN_ESHUTDOWN;
    }
    if (id < 0)
        goto err_after_call;
    call->stream_id = id;
    call->prd_submitted = true;
    rpc__call_arm_deadline(call);
    *out = call;
    rpc__conn_flush(c);
    return 0;

err_after_call:
    /* Not yet a stream: end it without telling the user. */
    call->is_client = false;
    rpc__call_end(call, RPC_INTERNAL, NULL);
    return CAIRN_ENOMEM;
}

uint64_t rpc_client_write_count(const struct rpc_client *cl)
{
    return cl->conn.writes;
}

bool rpc_client_alive(const struct rpc_client *cl)
{
    /* GOAWAY from the server (it is draining) or used-up stream ids end
     * new calls while calls already begun go on. */
    return !cl->conn.dead && !cl->conn.closing && cl->conn.session &&
           nghttp2_session_check_request_allowed(cl->conn.session);
}

void rpc_client_close(struct rpc_client *cl)
{
    CAIRN_ASSERT(!cl->closed_by_user);
    cl->closed_by_user = true;
    if (cl->gone) {
        client_maybe_free(cl);
        return;
    }
    if (cl->conn.dead)
        return; /* called from a done callback during teardown, which frees */
    rpc__conn_close(&cl->conn, RPC_UNAVAILABLE, true);
}
