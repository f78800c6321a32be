/* Plaintext and TLS on one listener (etcd's "http://h:p,https://h:p"): an
 * accepted connection waits for its first byte, which stays in the socket,
 * and is then handed to the TLS handshake or to the accept callback
 * (listener.c). Only listeners serving both come here; the others take no
 * extra step. */
#include <errno.h>
#include <sys/socket.h>

#include "net/net_int.h"

/* A TLS connection opens with a ClientHello in a record of content type
 * handshake. Plaintext clients start with ASCII: the HTTP/2 preface
 * ("PRI * HTTP/2.0") or an HTTP/1.1 request line. */
#define TLS_RECORD_HANDSHAKE 0x16

struct net__sniff {
    uv_timer_t timer; /* first: its close callback finds the struct */
    struct cairn_log *log;
    uint32_t timeout_ms;
    int open_handles; /* while closing the connection */
};

static void on_sniff_freed(uv_handle_t *h)
{
    cairn_free((struct net__sniff *)h);
}

/* The first byte said which: the sniffing state goes, the bytes stay in
 * the socket for TLS or for the caller. */
static void sniff_end(struct net_conn *c, bool tls)
{
    uv_read_stop(&c->u.stream);
    uv_close((uv_handle_t *)&c->sniff->timer, on_sniff_freed);
    c->sniff = NULL;
    c->type = &net__stream_type;
    net__listener_sniffed(c, tls);
}

static void on_sniff_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    /* No buffer: libuv calls on_sniff_read with UV_ENOBUFS instead of
     * reading, once the socket is readable, so that nothing is consumed. */
    buf->base = NULL;
    buf->len = 0;
}

static void on_sniff_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct net_conn *c = s->data;
    if (c->closing || n == 0)
        return;
    if (n != UV_ENOBUFS) {
        net__conn_fail(c, n == UV_EOF ? 0 : net__uv_err((int)n));
        return;
    }
    uv_os_fd_t fd;
    if (uv_fileno(&c->u.handle, &fd) != 0) {
        net__conn_fail(c, CAIRN_EIO);
        return;
    }
    uint8_t first;
    ssize_t r;
    do
        r = recv(fd, &first, 1, MSG_PEEK);
    while (r < 0 && errno == EINTR);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return; /* readable after all on the next poll */
    if (r <= 0) {
        /* closed before saying anything (a port probe): quietly */
        net__conn_fail(c, r == 0 ? 0 : cairn_err_from_errno(errno));
        return;
    }
    sniff_end(c, first == TLS_RECORD_HANDSHAKE);
}

static void on_sniff_timeout(uv_timer_t *t)
{
    struct net_conn *c = t->data;
    if (c->closing)
        return;
    cairn_warnf(c->sniff->log, "net",
                "connection from %s closed: nothing received within %u ms",
                c->peer, (unsigned)c->sniff->timeout_ms);
    net__conn_fail(c, CAIRN_ETIMEOUT);
}

int net__sniff_start(struct net_conn *c, uint32_t timeout_ms,
                     struct cairn_log *log)
{
    struct net__sniff *sn = cairn_calloc(1, sizeof(*sn));
    if (sn == NULL)
        return CAIRN_ENOMEM;
    sn->log = log;
    sn->timeout_ms = timeout_ms;
    uv_timer_init(c->loop, &sn->timer);
    sn->timer.data = c;
    c->sniff = sn;
    c->type = &net__sniff_type;
    c->u.handle.data = c;
    uv_timer_start(&sn->timer, on_sniff_timeout, timeout_ms, 0);
    int rv = uv_read_start(&c->u.stream, on_sniff_alloc, on_sniff_read);
    if (rv != 0)
        net__conn_fail(c, net__uv_err(rv)); /* the close path unlinks it */
    return 0;
}

/* ---- the sniffing row of the type table: only its close is used, as
 * the connection belongs to no caller yet ---- */

static void on_sniff_closed(uv_handle_t *h)
{
    struct net_conn *c = h->data;
    if (--c->sniff->open_handles > 0)
        return;
    cairn_free(c->sniff);
    c->sniff = NULL;
    /* a non-zero status only unlinks it from its listener */
    net__listener_hs_done(c, c->close_status < 0 ? c->close_status
                                                 : CAIRN_ECANCELED);
    net__conn_finish(c);
}

static void sniff_close(struct net_conn *c)
{
    c->sniff->open_handles = 2;
    uv_close((uv_handle_t *)&c->sniff->timer, on_sniff_closed);
    uv_close(&c->u.handle, on_sniff_closed);
}

static int sniff_read_start(struct net_conn *c)
{
    (void)c;
    return UV_ENOTCONN;
}

static void sniff_read_stop(struct net_conn *c)
{
    (void)c;
}

static int sniff_write(struct net_conn *c, struct net__wreq *w)
{
    (void)c;
    (void)w;
    return UV_ENOTCONN;
}

const struct net__conn_type net__sniff_type = {
    .name = "sniff",
    .read_start = sniff_read_start,
    .read_stop = sniff_read_stop,
    .write = sniff_write,
    .close = sniff_close,
};
