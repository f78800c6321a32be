/* The gRPC server: listeners, connection sniffing (HTTP/2 preface,
 * HTTP/1.1 or garbage), method dispatch and the HTTP/1.1 hook. */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rpc/rpc_int.h"

#define RPC__LISTENERS_MAX 16

struct rpc_server {
    uv_loop_t *loop;
    struct rpc_server_config cfg;
    struct rpc_method *methods; /* sorted by path */
    size_t n_methods;
    struct rpc_http1_handler http1;
    bool has_http1;
    struct cairn_log *log;
    struct net_listener *listeners[RPC__LISTENERS_MAX];
    size_t n_listeners;
    struct rpc__conn *conns;
    size_t n_conns;
    /* Connections whose calls sent something this loop turn, flushed by
     * `prep` before the loop next polls: one socket write per connection
     * per turn instead of one per message (and per trailer). */
    struct rpc__conn *flush_head, *flush_tail;
    uv_prepare_t prep;
    bool has_prep;
    uint64_t writes_gone; /* socket writes of connections that are gone */
    bool draining;
    bool closing;
};

static int method_cmp(const void *a, const void *b)
{
    return strcmp(((const struct rpc_method *)a)->path,
                  ((const struct rpc_method *)b)->path);
}

int rpc_server_init(struct rpc_server **out, uv_loop_t *loop,
                    const struct rpc_server_config *config,
                    const struct rpc_method *methods, size_t n,
                    const struct rpc_http1_handler *http1,
                    struct cairn_log *log)
{
    struct rpc_server *srv = cairn_calloc(1, sizeof(*srv));
    if (srv == NULL)
        return CAIRN_ENOMEM;
    srv->loop = loop;
    if (config)
        srv->cfg = *config;
    if (srv->cfg.max_recv_msg_bytes == 0)
        srv->cfg.max_recv_msg_bytes = RPC_MAX_RECV_DEFAULT;
    if (srv->cfg.max_concurrent_streams == 0)
        srv->cfg.max_concurrent_streams = 1000000;
    if (srv->cfg.send_queue_max_bytes == 0)
        srv->cfg.send_queue_max_bytes = RPC_SEND_QUEUE_DEFAULT;
    if (srv->cfg.stream_window_bytes == 0)
        srv->cfg.stream_window_bytes = 1u << 20;
    if (srv->cfg.max_connections == 0)
        srv->cfg.max_connections = 10000;
    if (srv->cfg.handshake_timeout_ms == 0)
        srv->cfg.handshake_timeout_ms = 10000;
    if (srv->cfg.keepalive_interval_ms == 0)
        srv->cfg.keepalive_interval_ms = 2 * 3600 * 1000;
    if (srv->cfg.keepalive_timeout_ms == 0)
        srv->cfg.keepalive_timeout_ms = 20000;
    if (srv->cfg.net.write_queue_max_bytes != 0 &&
        srv->cfg.net.write_queue_max_bytes < RPC__NET_QUEUE_MIN)
        srv->cfg.net.write_queue_max_bytes = RPC__NET_QUEUE_MIN;
    if (srv->cfg.http1_body_max_bytes == 0)
        srv->cfg.http1_body_max_bytes = 2u << 20;
    srv->methods = cairn_calloc(n ? n : 1, sizeof(*methods));
    if (srv->methods == NULL) {
        cairn_free(srv);
        return CAIRN_ENOMEM;
    }
    if (n > 0)
        memcpy(srv->methods, methods, n * sizeof(*methods));
    srv->n_methods = n;
    qsort(srv->methods, n, sizeof(*methods), method_cmp);
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(srv->methods[i].path, srv->methods[i + 1].path) == 0) {
            cairn_free(srv->methods);
            cairn_free(srv);
            return CAIRN_EINVAL;
        }
    if (http1) {
        srv->http1 = *http1;
        srv->has_http1 = true;
    }
    srv->log = log;
    *out = srv;
    return 0;
}

static void server_free_mem(uv_handle_t *h)
{
    struct rpc_server *srv = h->data;
    cairn_free(srv->methods);
    cairn_free(srv);
}

static void server_free(struct rpc_server *srv)
{
    if (srv->has_prep) {
        uv_close((uv_handle_t *)&srv->prep, server_free_mem);
        return;
    }
    srv->prep.data = srv;
    server_free_mem((uv_handle_t *)&srv->prep);
}

static void flush_unlink(struct rpc_server *srv, struct rpc__conn *c)
{
    if (c->fprev)
        c->fprev->fnext = c->fnext;
    else
        srv->flush_head = c->fnext;
    if (c->fnext)
        c->fnext->fprev = c->fprev;
    else
        srv->flush_tail = c->fprev;
    c->fprev = c->fnext = NULL;
    c->flush_queued = false;
}

/* Flushes the queued connections in order; those a flush queues again
 * (a writable callback sending on another connection) go to the tail.
 * Bounded so that a loop turn ends (each connection's flush is bounded
 * too); what is left would wait for the loop's next turn. */
static void on_flush_prepare(uv_prepare_t *h)
{
    struct rpc_server *srv = h->data;
    size_t budget = 64 * (srv->n_conns + 1);
    struct rpc__conn *c;
    while ((c = srv->flush_head) != NULL && budget-- > 0) {
        flush_unlink(srv, c);
        rpc__call_reap(c);
        rpc__conn_flush_now(c);
    }
    if (srv->flush_head == NULL)
        uv_prepare_stop(h);
}

void rpc__server_queue_flush(struct rpc__conn *c)
{
    struct rpc_server *srv = c->srv;
    if (c->flush_queued)
        return;
    if (!srv->has_prep) {
        uv_prepare_init(srv->loop, &srv->prep);
        srv->prep.data = srv;
        srv->has_prep = true;
    }
    c->flush_queued = true;
    c->fnext = NULL;
    c->fprev = srv->flush_tail;
    if (srv->flush_tail)
        srv->flush_tail->fnext = c;
    else
        srv->flush_head = c;
    srv->flush_tail = c;
    if (!uv_is_active((uv_handle_t *)&srv->prep))
        uv_prepare_start(&srv->prep, on_flush_prepare);
}

static void conn_free(uv_handle_t *h)
{
    cairn_free(h->data);
}

static void server_conn_destroyed(struct rpc__conn *c)
{
    struct rpc_server *srv = c->srv;
    if (c->http1_pending) {
        c->http1_pending = false;
        if (srv->http1.cancel)
            srv->http1.cancel(srv->http1.arg, &c->http1_req);
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->n_conns--;
    if (c->flush_queued)
        flush_unlink(srv, c);
    rpc__call_reap(c); /* in a close callback: no handler holds one */
    srv->writes_gone += c->writes;
    buf_free(&c->http1_in);
    buf_free(&c->http1_out);
    /* The conn's memory goes with its timer's close; it no longer refers
     * to the server. */
    c->srv = NULL;
    uv_close((uv_handle_t *)&c->timer, conn_free);
    if (srv->closing && srv->n_conns == 0)
        server_free(srv);
}

static const struct rpc__conn_ops server_conn_ops = {
    .destroyed = server_conn_destroyed,
};

/* One timer per connection: first the handshake deadline, then, once
 * HTTP/2 is up, the keepalive PINGs. */
static void on_conn_timer(uv_timer_t *t)
{
    struct rpc__conn *c = t->data;
    struct rpc_server *srv = c->srv;
    if (c->dead || c->closing)
        return;
    if (c->mode != RPC__H2) {
        if (c->http1_pending || c->http1_answered)
            return; /* the request is in; its handler decides */
        cairn_warnf(c->log, "rpc", "%s: no request within %u ms; closing",
                    net_conn_peer(c->net), srv->cfg.handshake_timeout_ms);
        rpc__conn_close(c, RPC_CANCELLED, true);
        return;
    }
    rpc__keepalive_tick(c, srv->cfg.keepalive_interval_ms,
                        srv->cfg.keepalive_timeout_ms);
}

static void on_accept(void *arg, struct net_conn *nc)
{
    struct rpc_server *srv = arg;
    if (srv->closing || srv->n_conns >= srv->cfg.max_connections) {
        cairn_warnf(srv->log, "rpc", "%s: refused: %zu connections open",
                    net_conn_peer(nc), srv->n_conns);
        net_conn_close(nc, false);
        return;
    }
    struct rpc__conn *c = cairn_calloc(1, sizeof(*c));
    if (c == NULL) {
        net_conn_close(nc, false);
        return;
    }
    c->ops = &server_conn_ops;
    c->mode = RPC__SNIFF;
    c->loop = srv->loop;
    c->log = srv->log;
    c->net = nc;
    c->srv = srv;
    c->max_recv = srv->cfg.max_recv_msg_bytes;
    c->send_queue_max = srv->cfg.send_queue_max_bytes;
    buf_init(&c->stage);
    buf_init(&c->http1_in);
    buf_init(&c->http1_out);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->has_timer = true;
    uv_timer_start(&c->timer, on_conn_timer, srv->cfg.handshake_timeout_ms, 0);
    net_conn_start(nc, &rpc__conn_net_cbs, c);
}

int rpc_server_listen(struct rpc_server *srv, const struct net_url *url,
                      uint16_t *port, struct cairn_errmsg *msg)
{
    /* etcd's "http://h:p,https://h:p": one listener, both schemes */
    for (size_t i = 0; i < srv->n_listeners; i++) {
        struct net_listener *l = srv->listeners[i];
        if (!net_listener_same_address(l, url))
            continue;
        int rv = net_listener_add_scheme(l, url, &srv->cfg.net, msg);
        if (rv == 0 && port)
            *port = net_listener_port(l);
        return rv;
    }
    if (srv->n_listeners == RPC__LISTENERS_MAX) {
        if (msg)
            cairn_errmsg_setf(msg, "too many listen URLs");
        return CAIRN_EFULL;
    }
    struct net_listener *l;
    int rv = net_listener_open(srv->loop, url, &srv->cfg.net, srv->log, &l, srv,
                               on_accept, msg);
    if (rv != 0)
        return rv;
    srv->listeners[srv->n_listeners++] = l;
    if (port)
        *port = net_listener_port(l);
    return 0;
}

uint64_t rpc_server_write_count(const struct rpc_server *srv)
{
    uint64_t n = srv->writes_gone;
    for (const struct rpc__conn *c = srv->conns; c; c = c->next)
        n += c->writes;
    return n;
}

size_t rpc_server_conn_count(const struct rpc_server *srv)
{
    return srv->n_conns;
}

size_t rpc_server_call_count(const struct rpc_server *srv)
{
    size_t n = 0;
    for (const struct rpc__conn *c = srv->conns; c; c = c->next)
        n += c->n_calls;
    return n;
}

size_t rpc_server_stream_count(const struct rpc_server *srv)
{
    size_t n = 0;
    for (const struct rpc__conn *c = srv->conns; c; c = c->next) {
        if (c->session == NULL)
            continue;
        int32_t last = nghttp2_session_get_last_proc_stream_id(c->session);
        /* Bounded by the ids the client used; client streams are odd. */
        for (int32_t id = 1; id > 0 && id <= last; id += 2)
            if (nghttp2_session_find_stream(c->session, id) != NULL)
                n++;
    }
    return n;
}

size_t rpc_server_queued_bytes(const struct rpc_server *srv)
{
    size_t n = 0;
    for (const struct rpc__conn *c = srv->conns; c; c = c->next) {
        if (c->net)
            n += net_conn_queued_bytes(c->net);
        n += c->stage.len + c->http1_in.len;
        for (const struct rpc_call *call = c->calls; call; call = call->next)
            n += call->out.len + call->in.len;
    }
    return n;
}

static void close_listeners(struct rpc_server *srv)
{
    for (size_t i = 0; i < srv->n_listeners; i++)
        net_listener_close(srv->listeners[i]);
    srv->n_listeners = 0;
}

void rpc_server_drain(struct rpc_server *srv)
{
    CAIRN_ASSERT(!srv->closing);
    srv->draining = true;
    close_listeners(srv);
    for (struct rpc__conn *c = srv->conns; c; c = c->next) {
        if (c->closing || c->dead)
            continue;
        if (c->mode == RPC__H2) {
            /* Streams up to the last one seen go on; the session wants
             * neither read nor write once they end, and flush then closes
             * the connection. */
            nghttp2_submit_goaway(
                c->session, NGHTTP2_FLAG_NONE,
                nghttp2_session_get_last_proc_stream_id(c->session),
                NGHTTP2_NO_ERROR, NULL, 0);
            rpc__conn_flush(c);
        } else if (!c->http1_pending && !c->http1_answered) {
            rpc__conn_close(c, RPC_CANCELLED, true);
        }
    }
}

void rpc_server_close(struct rpc_server *srv)
{
    CAIRN_ASSERT(!srv->closing);
    srv->closing = true;
    close_listeners(srv);
    for (struct rpc__conn *c = srv->conns; c; c = c->next)
        if (!c->closing && !c->dead)
            rpc__conn_close(c, RPC_CANCELLED, true);
    if (srv->n_conns == 0)
        server_free(srv);
}

/* ---- dispatch ---- */

static void reject_http(struct rpc_call *call, const char *status)
{
    struct rpc__conn *c = call->conn;
    nghttp2_nv nv = {(uint8_t *)":status", (uint8_t *)status, 7, strlen(status),
                     NGHTTP2_NV_FLAG_NONE};
    call->send_ended = true;
    if (nghttp2_submit_response(c->session, call->stream_id, &nv, 1, NULL) != 0)
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                  call->stream_id, NGHTTP2_INTERNAL_ERROR);
    rpc__call_end(call, RPC_INTERNAL, NULL);
}

static void reject(struct rpc_call *call, int code, const char *msg)
{
    rpc__call_reject(call, code, msg);
    rpc__call_end(call, code, msg);
}

void rpc__server_dispatch(struct rpc_call *call)
{
    struct rpc_server *srv = call->conn->srv;
    char text[512];
    if (!call->saw_post) {
        reject_http(call, "405");
        return;
    }
    if (!call->saw_grpc_type) {
        reject_http(call, "415");
        return;
    }
    if (call->path == NULL || call->path[0] != '/') {
        reject(call, RPC_UNIMPLEMENTED, "malformed method name");
        return;
    }
    if (call->bad_timeout) {
        reject(call, RPC_INTERNAL, "transport: malformed grpc-timeout");
        return;
    }
    if (srv->closing || srv->draining) {
        reject(call, RPC_UNAVAILABLE, "server is shutting down");
        return;
    }
    struct rpc_method key = {.path = call->path};
    const struct rpc_method *m =
        bsearch(&key, srv->methods, srv->n_methods, sizeof(key), method_cmp);
    if (m == NULL) {
        const char *svc = call->path + 1;
        const char *slash = strchr(svc, '/');
        int svclen = slash ? (int)(slash - svc) : (int)strlen(svc);
        bool known = false;
        for (size_t i = 0; i < srv->n_methods && !known; i++)
            known = strncmp(srv->methods[i].path, call->path,
                            (size_t)svclen + 2) == 0;
        if (known)
            snprintf(text, sizeof(text), "unknown method %s for service %.*s",
                     slash ? slash + 1 : "", svclen, svc);
        else
            snprintf(text, sizeof(text), "unknown service %.*s", svclen, svc);
        reject(call, RPC_UNIMPLEMENTED, text);
        return;
    }
    if (rpc__call_alloc_timer(call) != 0) {
        reject(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    call->cbs = m->cbs;
    call->arg = m->arg;
    call->dispatched = true;
    rpc__call_arm_deadline(call);
    if (call->cbs->start)
        call->cbs->start(call->arg, call);
}

/* ---- first bytes: HTTP/2, HTTP/1.1 or garbage ---- */

static void http1_input(struct rpc__conn *c, const uint8_t *d, size_t n);

/* An HTTP/1.1 request line starts with an upper-case method and a space.
 * When only letters have come so far, it is taken for HTTP/1.1 and the
 * request parser (bounded, and the handshake deadline) decides the rest. */
static bool looks_like_http1(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
        i++;
    if (i == n)
        return i > 0 && i < 16;
    return i > 0 && p[i] == ' ';
}

void rpc__server_read(struct rpc__conn *c, const uint8_t *d, size_t n)
{
    if (c->mode == RPC__H2) {
        rpc__conn_input(c, d, n);
        return;
    }
    if (c->mode == RPC__HTTP1) {
        http1_input(c, d, n);
        return;
    }
    size_t i = 0;
    while (c->sniff_len < RPC__PREFACE_LEN && i < n)
        c->sniff[c->sniff_len++] = d[i++];
    if (memcmp(c->sniff, RPC__PREFACE, c->sniff_len) == 0) {
        if (c->sniff_len < RPC__PREFACE_LEN)
            return;
        struct rpc_server *srv = c->srv;
        if (rpc__session_new(c, srv->cfg.stream_window_bytes,
                             srv->cfg.max_concurrent_streams) != 0) {
            rpc__conn_close(c, RPC_CANCELLED, true);
            return;
        }
        c->mode = RPC__H2;
        c->last_ack = uv_now(c->loop);
        uv_timer_start(&c->timer, on_conn_timer, srv->cfg.keepalive_interval_ms,
                       0);
        rpc__conn_input(c, c->sniff, c->sniff_len);
        if (i < n)
            rpc__conn_input(c, d + i, n - i);
        return;
    }
    if (looks_like_http1(c->sniff, c->sniff_len)) {
        c->mode = RPC__HTTP1;
        uint8_t first[RPC__PREFACE_LEN];
        size_t k = c->sniff_len;
        memcpy(first, c->sniff, k);
        http1_input(c, first, k);
        if (i < n)
            http1_input(c, d + i, n - i);
        return;
    }
    cairn_warnf(c->log, "rpc", "%s: neither HTTP/2 nor HTTP/1.1; closing",
                net_conn_peer(c->net));
    rpc__conn_close(c, RPC_CANCELLED, true);
}

/* ---- HTTP/1.1 ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 307:
        return "Temporary Redirect";
    case 403:
        return "Forbidden";
    case 412:
        return "Precondition Failed";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Status";
    }
}

/* Writes what the connection's queue takes of http1_out: 0 once all of
 * it is out, 1 while some waits for the drain callback, -1 when the
 * connection failed (and is closing). The drain comes only once bytes were
 * queued: a piece the socket takes whole leaves the queue empty (net
 * writes at once when nothing is queued), so the pump goes on until the
 * queue holds something or all is out. Bounded by http1_out: every round
 * writes at least one byte, or stops. */
static int http1_pump_out(struct rpc__conn *c)
{
    while (c->http1_out_off < c->http1_out.len) {
        size_t left = c->http1_out.len - c->http1_out_off;
        size_t room = net_conn_write_room(c->net);
        size_t k = left < room ? left : room;
        if (k == 0)
            return 1; /* the queue is full: its drain resumes */
        if (net_conn_write(c->net, c->http1_out.data + c->http1_out_off, k) !=
            0) {
            rpc__conn_close(c, RPC_CANCELLED, true);
            return -1;
        }
        c->http1_out_off += k;
        if (net_conn_queued_bytes(c->net) > 0 &&
            c->http1_out_off < c->http1_out.len)
            return 1; /* its drain resumes */
    }
    return 0;
}

/* The whole answer (or the last chunk) goes out as the client reads it;
 * the connection closes after the last byte. */
static void http1_pump(struct rpc__conn *c)
{
    if (http1_pump_out(c) != 0)
        return;
    c->closing = true;
    net_conn_close(c->net, true);
}

void rpc__server_http1_drain(struct rpc__conn *c)
{
    if (c->http1_answered) {
        http1_pump(c);
        return;
    }
    struct rpc_server *srv = c->srv;
    if (!c->http1_streaming || http1_pump_out(c) != 0)
        return; /* a chunk larger than the queue is still going out */
    if (c->http1_wants_writable) {
        c->http1_wants_writable = false;
        if (srv->http1.writable)
            srv->http1.writable(srv->http1.arg, &c->http1_req);
    }
}

static void http1_send_hdrs(struct rpc__conn *c, int status, const char *ctype,
                            const char *extra, const void *body, size_t len)
{
    char head[1024];
    int k = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     status, reason(status), ctype, extra, len);
    if (k < 0 || (size_t)k >= sizeof head) {
        rpc__conn_close(c, RPC_CANCELLED, true);
        return;
    }
    c->http1_answered = true;
    buf_reset(&c->http1_out);
    if (buf_append(&c->http1_out, head, (size_t)k) != 0 ||
        buf_append(&c->http1_out, body, len) != 0) {
        rpc__conn_close(c, RPC_CANCELLED, true);
        return;
    }
    http1_pump(c);
}

static void http1_send(struct rpc__conn *c, int status, const char *ctype,
                       const void *body, size_t len)
{
    http1_send_hdrs(c, status, ctype, "", body, len);
}

static struct rpc__conn *req_conn(struct rpc_http1_request *req)
{
    return (struct rpc__conn *)((char *)req -
                                offsetof(struct rpc__conn, http1_req));
}

const char *rpc_http1_header(const struct rpc_http1_request *req,
                             const char *name)
{
    const struct rpc__conn *c =
        (const struct rpc__conn *)((const char *)req -
                                   offsetof(struct rpc__conn, http1_req));
    size_t n = strlen(name);
    const char *p = c->http1_hdrs;
    /* Bounded by the header block: each round moves past one line. */
    while (p && p < c->http1_hdrs_end) {
        size_t len = strlen(p);
        if (len > n && p[n] == ':' && strncasecmp(p, name, n) == 0) {
            const char *v = p + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        p += len + 2;
    }
    return NULL;
}

void rpc_http1_respond(struct rpc_http1_request *req, int http_status,
                       const char *content_type, const void *body, size_t len)
{
    struct rpc__conn *c = req_conn(req);
    CAIRN_ASSERT(c->http1_pending && !c->http1_streaming);
    c->http1_pending = false;
    http1_send(c, http_status, content_type ? content_type : "text/plain", body,
               len);
}

void rpc_http1_respond_hdrs(struct rpc_http1_request *req, int http_status,
                            const char *content_type, const char *headers,
                            const void *body, size_t len)
{
    struct rpc__conn *c = req_conn(req);
    CAIRN_ASSERT(c->http1_pending && !c->http1_streaming);
    c->http1_pending = false;
    http1_send_hdrs(c, http_status, content_type ? content_type : "text/plain",
                    headers ? headers : "", body, len);
}

int rpc_http1_stream_begin(struct rpc_http1_request *req, int http_status,
                           const char *content_type)
{
    return rpc_http1_stream_begin_hdrs(req, http_status, content_type, "");
}

int rpc_http1_stream_begin_hdrs(struct rpc_http1_request *req, int http_status,
                                const char *content_type, const char *headers)
{
    struct rpc__conn *c = req_conn(req);
    CAIRN_ASSERT(c->http1_pending && !c->http1_streaming);
    char head[1024];
    int k = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s"
                     "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                     http_status, reason(http_status),
                     content_type ? content_type : "text/plain",
                     headers ? headers : "");
    c->http1_streaming = true;
    if (k < 0 || (size_t)k >= sizeof head)
        return CAIRN_ETOOBIG;
    if (c->closing || c->dead)
        return CAIRN_ESHUTDOWN;
    return net_conn_write(c->net, head, (size_t)k);
}

int rpc_http1_stream_write(struct rpc_http1_request *req, const void *data,
                           size_t len)
{
    struct rpc__conn *c = req_conn(req);
    CAIRN_ASSERT(c->http1_pending && c->http1_streaming);
    if (c->closing || c->dead)
        return CAIRN_ESHUTDOWN;
    if (len == 0)
        return 0; /* an empty chunk would end the body */
    char size[24];
    int k = snprintf(size, sizeof(size), "%zx\r\n", len);
    /* A chunk larger than the whole queue could never wait for room (no
     * drain, so no writable, would come): it is taken when nothing is
     * queued and goes out in pieces as a whole answer does; writes wait
     * behind it. */
    bool fits = net_conn_write_room(c->net) >= (size_t)k + len + 2;
    if (c->http1_out_off < c->http1_out.len ||
        (!fits && net_conn_queued_bytes(c->net) > 0)) {
        c->http1_wants_writable = true;
        return CAIRN_EFULL;
    }
    buf_reset(&c->http1_out);
    c->http1_out_off = 0;
    if (buf_reserve(&c->http1_out, (size_t)k + len + 2) != 0)
        return CAIRN_ENOMEM;
    buf_append(&c->http1_out, size, (size_t)k);
    buf_append(&c->http1_out, data, len);
    buf_append(&c->http1_out, "\r\n", 2);
    if (!fits)
        return http1_pump_out(c) < 0 ? CAIRN_ESHUTDOWN : 0;
    int rv = net_conn_write(c->net, c->http1_out.data, c->http1_out.len);
    buf_reset(&c->http1_out);
    return rv;
}

void rpc_http1_stream_end(struct rpc_http1_request *req)
{
    struct rpc__conn *c = req_conn(req);
    CAIRN_ASSERT(c->http1_pending && c->http1_streaming);
    c->http1_pending = false;
    c->http1_answered = true;
    if (c->closing || c->dead)
        return;
    /* The last chunk goes out like a whole answer: as the queue allows,
     * then the connection closes; behind a chunk still going out. */
    if (c->http1_out_off >= c->http1_out.len) {
        buf_reset(&c->http1_out);
        c->http1_out_off = 0;
    }
    if (buf_append(&c->http1_out, "0\r\n\r\n", 5) != 0) {
        rpc__conn_close(c, RPC_CANCELLED, true);
        return;
    }
    http1_pump(c);
}

static void http1_error(struct rpc__conn *c, int status)
{
    char body[64];
    /* Go's net/http says "404 page not found", which etcd clients see. */
    int k = status == 404 ? snprintf(body, sizeof(body), "404 page not found\n")
                          : snprintf(body, sizeof(body), "%d %s\n", status,
                                     reason(status));
    http1_send(c, status, "text/plain; charset=utf-8", body, (size_t)k);
}

static void http1_input(struct rpc__conn *c, const uint8_t *d, size_t n)
{
    if (c->http1_pending || c->http1_answered || c->closing)
        return; /* one request per connection; the rest is ignored */
    size_t body_max = c->srv->cfg.http1_body_max_bytes;
    if (c->http1_in.len + n > RPC__HTTP1_HEAD_MAX + body_max + 1) {
        http1_error(c, 413);
        return;
    }
    if (buf_append(&c->http1_in, d, n) != 0) {
        http1_error(c, 500);
        return;
    }
    char *p = (char *)c->http1_in.data;
    size_t len = c->http1_in.len;
    char *end = memmem(p, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len > RPC__HTTP1_HEAD_MAX)
            http1_error(c, 431);
        return;
    }
    size_t head_len = (size_t)(end - p) + 4;
    /* The header block is text: terminate it to parse with string calls. */
    *end = '\0';
    size_t body_len = 0;
    for (char *line = strstr(p, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "content-length:", 15) == 0) {
            char *q = line + 15, *e;
            unsigned long v = strtoul(q, &e, 10);
            if (e == q || v > body_max) {
                http1_error(c, v > body_max ? 413 : 400);
                return;
            }
            body_len = v;
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            http1_error(c, 501);
            return;
        }
    }
    if (len < head_len + body_len) {
        *end = '\r'; /* not yet: restore and wait for the body */
        return;
    }
    char *sp1 = strchr(p, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    char *eol = strstr(p, "\r\n");
    if (sp1 == NULL || sp2 == NULL || (eol && sp2 > eol) ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        http1_error(c, 400);
        return;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    /* Header lines become strings "Name: value" followed by "\0\n", for
     * rpc_http1_header. */
    c->http1_hdrs = eol ? eol + 2 : end;
    c->http1_hdrs_end = end;
    for (char *q = c->http1_hdrs; q < end; q++)
        if (q[0] == '\r' && q[1] == '\n')
            *q = '\0';
    if (eol)
        *eol = '\0';
    c->http1_req.method = p;
    c->http1_req.path = sp1 + 1;
    c->http1_req.body = c->http1_in.data + head_len;
    c->http1_req.body_len = body_len;
    /* Reading goes on (further bytes are dropped) so that a client that
     * leaves before the answer is noticed and the hook told. */
    c->http1_pending = true;
    struct rpc_server *srv = c->srv;
    if (!srv->has_http1) {
        c->http1_pending = false;
        http1_error(c, 404);
        return;
    }
    srv->http1.request(srv->http1.arg, &c->http1_req);
}
