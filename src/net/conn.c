/* Connections over libuv streams (TCP and unix sockets): the plain row of
 * the connection-type table, the bounded write queue and the close path. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"

int net__uv_err(int uverr)
{
    switch (uverr) {
    case UV_ENOMEM:
        return CAIRN_ENOMEM;
    case UV_EADDRINUSE:
        return CAIRN_EBUSY;
    case UV_EINVAL:
        return CAIRN_EINVAL;
    case UV_ECANCELED:
        return CAIRN_ECANCELED;
    case UV_ETIMEDOUT:
        return CAIRN_ETIMEOUT;
    default:
        return CAIRN_EIO;
    }
}

struct net_conn *net__conn_alloc(uv_loop_t *loop,
                                 const struct net_conn_config *config)
{
    struct net_conn *c = cairn_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->type = &net__stream_type;
    c->queue_max_bytes = config && config->write_queue_max_bytes
                             ? config->write_queue_max_bytes
                             : NET_WRITE_QUEUE_DEFAULT;
    c->rbuf_size = config && config->read_buf_bytes ? config->read_buf_bytes
                                                    : NET_READ_BUF_DEFAULT;
    c->rbuf = cairn_malloc(c->rbuf_size);
    if (c->rbuf == NULL) {
        cairn_free(c);
        return NULL;
    }
    snprintf(c->peer, sizeof(c->peer), "?");
    return c;
}

void net__conn_free(struct net_conn *c)
{
    cairn_free(c->rbuf);
    cairn_free(c);
}

void net__conn_name_peer(struct net_conn *c, bool is_unix)
{
    if (is_unix) {
        snprintf(c->peer, sizeof(c->peer), "unix");
        return;
    }
    struct sockaddr_storage ss;
    int n = sizeof(ss);
    if (uv_tcp_getpeername(&c->u.tcp, (struct sockaddr *)&ss, &n) != 0)
        return;
    char ip[48] = "?";
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "[%s]:%u", ip,
                 (unsigned)ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(c->peer, sizeof(c->peer), "%s:%u", ip,
                 (unsigned)ntohs(a->sin_port));
    }
}

/* ---- the plain stream row of the type table ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct net_conn *c = h->data;
    /* One buffer per connection: the read callback consumes it at once. */
    buf->base = (char *)c->rbuf;
    buf->len = c->rbuf_size;
}

void net__conn_fail(struct net_conn *c, int status)
{
    if (c->closing)
        return;
    c->close_status = status;
    c->closing = true;
    c->type->close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct net_conn *c = s->data;
    if (n > 0) {
        if (!c->closing)
            c->cbs->read(c->arg, c, c->rbuf, (size_t)n);
        return;
    }
    if (n == 0)
        return;
    net__conn_fail(c, n == UV_EOF ? 0 : net__uv_err((int)n));
}

static int stream_read_start(struct net_conn *c)
{
    return uv_read_start(&c->u.stream, on_alloc, on_read);
}

static void stream_read_stop(struct net_conn *c)
{
    uv_read_stop(&c->u.stream);
}

void net__on_write(uv_write_t *req, int status)
{
    struct net__wreq *w = req->data;
    struct net_conn *c = w->conn;
    size_t acct = w->acct;
    CAIRN_ASSERT(c->queued_bytes >= acct);
    c->queued_bytes -= acct;
    cairn_free(w);
    if (status < 0) {
        net__conn_fail(c, status == UV_ECANCELED ? c->close_status
                                                 : net__uv_err(status));
        return;
    }
    /* A TLS protocol write (acct 0) empties nothing the caller queued. */
    if (c->queued_bytes == 0 && (acct > 0 || c->close_after_flush)) {
        if (c->close_after_flush) {
            c->closing = true;
            c->type->close(c);
        } else if (!c->closing && c->cbs && c->cbs->drain) {
            c->cbs->drain(c->arg, c);
        }
    }
}

static int stream_write(struct net_conn *c, struct net__wreq *w)
{
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    w->req.data = w;
    return uv_write(&w->req, &c->u.stream, &b, 1, net__on_write);
}

void net__conn_finish(struct net_conn *c)
{
    /* Pending writes were completed with ECANCELED before this runs. */
    if (c->cbs && c->cbs->closed)
        c->cbs->closed(c->arg, c, c->close_status);
    net__conn_free(c);
}

static void on_closed(uv_handle_t *h)
{
    net__conn_finish(h->data);
}

static void stream_close(struct net_conn *c)
{
    uv_close(&c->u.handle, on_closed);
}

const struct net__conn_type net__stream_type = {
    .name = "stream",
    .read_start = stream_read_start,
    .read_stop = stream_read_stop,
    .write = stream_write,
    .close = stream_close,
};

/* ---- the public connection calls ---- */

void net_conn_start(struct net_conn *c, const struct net_conn_cbs *cbs,
                    void *arg)
{
    CAIRN_ASSERT(!c->started);
    c->cbs = cbs;
    c->arg = arg;
    c->started = true;
    c->u.handle.data = c;
    if (c->type->read_start(c) != 0) {
        net__conn_fail(c, CAIRN_EIO);
        return;
    }
    c->reading = true;
}

int net_conn_write(struct net_conn *c, const void *data, size_t len)
{
    if (c->closing || c->close_after_flush)
        return CAIRN_ESHUTDOWN;
    if (len == 0)
        return 0;
    if (len > c->queue_max_bytes - c->queued_bytes)
        return CAIRN_EFULL;
    /* Nothing queued on a plain stream: hand the bytes to the socket at
     * once. A queued uv_write costs a copy, a request, and, once done, an
     * epoll_ctl and an extra loop turn to run its callback (libuv feeds
     * the completion through its pending queue, which makes the next poll
     * return at once): per put about one of each on every member. What
     * the socket does not take is queued as before. */
    if (c->queued_bytes == 0 && c->type == &net__stream_type) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(&c->u.stream, &b, 1);
        if (n > 0) {
            c->direct_writes++;
            if ((size_t)n == len)
                return 0;
            data = (const uint8_t *)data + n;
            len -= (size_t)n;
        }
        /* EAGAIN, or an error uv_write reports the usual way */
    }
    struct net__wreq *w = cairn_malloc(sizeof(*w) + len);
    if (w == NULL)
        return CAIRN_ENOMEM;
    w->conn = c;
    w->len = len;
    w->acct = len;
    memcpy(w->data, data, len);
    int rv = c->type->write(c, w);
    if (rv != 0) {
        cairn_free(w);
        net__conn_fail(c, net__uv_err(rv));
        return CAIRN_EIO;
    }
    c->queued_bytes += len;
    return 0;
}

uint64_t net_conn_direct_writes(const struct net_conn *c)
{
    return c->direct_writes;
}

size_t net_conn_queued_bytes(const struct net_conn *c)
{
    return c->queued_bytes;
}

size_t net_conn_write_room(const struct net_conn *c)
{
    return c->queue_max_bytes - c->queued_bytes;
}

void net_conn_read_pause(struct net_conn *c, bool paused)
{
    c->paused = paused;
    if (c->closing || !c->started)
        return;
    if (paused && c->reading) {
        c->type->read_stop(c);
        c->reading = false;
    } else if (!paused && !c->reading && !c->close_after_flush) {
        if (c->type->read_start(c) == 0)
            c->reading = true;
    }
}

void net_conn_close(struct net_conn *c, bool flush)
{
    if (c->closing)
        return;
    if (c->reading) {
        c->type->read_stop(c);
        c->reading = false;
    }
    c->close_status = CAIRN_ECANCELED;
    if (flush && c->queued_bytes > 0) {
        c->close_after_flush = true;
        return;
    }
    c->closing = true;
    c->type->close(c);
}

const char *net_conn_peer(const struct net_conn *c)
{
    return c->peer;
}

const char *net_conn_type_name(const struct net_conn *c)
{
    bool is_unix = c->u.handle.type == UV_NAMED_PIPE;
    if (c->tls)
        return is_unix ? "tls+unix" : "tls+tcp";
    return is_unix ? "unix" : "tcp";
}
