/* Listeners (TCP and unix sockets, plaintext or TLS) and outgoing
 * connections. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"

struct net_listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uv_loop_t *loop;
    struct net_conn_config config;
    struct cairn_log *log;
    net_accept_cb cb;
    void *arg;
    bool is_unix;
    /* Out of memory while accepting: the pending connection stays in
     * libuv's hands (it stops watching the socket until uv_accept) and this
     * timer tries again, backing off from 5 ms to 1 s as Go's http.Server
     * does on a temporary accept error. */
    uv_timer_t retry;
    uint64_t retry_ms;
    int handles;         /* open libuv handles; the struct goes with the last */
    struct net_tls *tls; /* NULL: no TLS scheme served */
    bool plain;          /* a plaintext scheme is served */
    /* accepted, still in their TLS handshake or waiting for their first
     * byte (serving both) */
    struct net_conn *hs_head;
    struct net_url url; /* as opened: the address others may share */
    uint16_t port;
    char path[NET_UNIX_PATH_MAX + 1];
};

/* Resolves a literal address or "localhost" without blocking; with
 * may_block, other names go through getaddrinfo. */
static int resolve(const struct net_url *url, bool may_block,
                   struct sockaddr_storage *ss)
{
    const char *host = url->host;
    if (host[0] == '\0' || strcmp(host, "localhost") == 0)
        host = host[0] ? "127.0.0.1" : "0.0.0.0";
    if (uv_ip4_addr(host, url->port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, url->port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    if (!may_block)
        return CAIRN_EINVAL;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL)
        return CAIRN_EINVAL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(url->port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons(url->port);
    freeaddrinfo(res);
    return 0;
}

static void hs_unlink(struct net_conn *c);

static void on_listener_closed(uv_handle_t *h)
{
    struct net_listener *l = h->data;
    if (--l->handles == 0)
        cairn_free(l);
}

#define ACCEPT_RETRY_MS_MIN 5
#define ACCEPT_RETRY_MS_MAX 1000

static void accept_one(struct net_listener *l);

static void on_accept_retry(uv_timer_t *t)
{
    accept_one(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct net_listener *l = server->data;
    if (status < 0) {
        cairn_warnf(l->log, "net", "accept: %s", uv_strerror(status));
        return;
    }
    if (uv_is_active((uv_handle_t *)&l->retry))
        return; /* paused: the timer accepts */
    accept_one(l);
}

static void accept_one(struct net_listener *l)
{
    struct net_conn *c = net__conn_alloc(l->loop, &l->config);
    if (c == NULL) {
        /* Not accepting leaves the socket in libuv's hands, which stops
         * watching the listener until the next uv_accept: accepting pauses
         * rather than spinning, and the timer resumes it. */
        l->retry_ms = l->retry_ms ? l->retry_ms * 2 : ACCEPT_RETRY_MS_MIN;
        if (l->retry_ms > ACCEPT_RETRY_MS_MAX)
            l->retry_ms = ACCEPT_RETRY_MS_MAX;
        cairn_warnf(l->log, "net", "accept: out of memory; retrying in %llu ms",
                    (unsigned long long)l->retry_ms);
        uv_timer_start(&l->retry, on_accept_retry, l->retry_ms, 0);
        return;
    }
    l->retry_ms = 0;
    int rv = l->is_unix ? uv_pipe_init(l->loop, &c->u.pipe, 0)
                        : uv_tcp_init(l->loop, &c->u.tcp);
    CAIRN_ASSERT(rv == 0);
    c->u.handle.data = c;
    rv = uv_accept(&l->u.stream, &c->u.stream);
    if (rv != 0) {
        c->closing = true;
        c->type->close(c);
        return;
    }
    if (!l->is_unix)
        uv_tcp_nodelay(&c->u.tcp, 1);
    net__conn_name_peer(c, l->is_unix);
    if (l->tls) {
        /* handed to the accept callback once the handshake succeeds (and,
         * serving both, once the first byte says which) */
        c->hs_listener = l;
        c->hs_next = l->hs_head;
        if (l->hs_head)
            l->hs_head->hs_prev = c;
        l->hs_head = c;
        if (l->plain)
            rv = net__sniff_start(c, net__tls_hs_timeout_ms(l->tls), l->log);
        else
            rv = net__tls_start(c, l->tls, true, NULL, l->log, NULL, NULL);
        if (rv != 0) {
            cairn_warnf(l->log, "net", "accept %s: %s", c->peer,
                        cairn_strerror(rv));
            hs_unlink(c);
            net__conn_fail(c, rv);
        }
        return;
    }
    l->cb(l->arg, c);
    CAIRN_ASSERT(c->started || c->closing);
}

void net__listener_sniffed(struct net_conn *c, bool tls)
{
    struct net_listener *l = c->hs_listener;
    /* a closing listener fails its waiting connections first */
    CAIRN_ASSERT(l != NULL);
    if (!tls) {
        net__listener_hs_done(c, 0);
        return;
    }
    int rv = net__tls_start(c, l->tls, true, NULL, l->log, NULL, NULL);
    if (rv != 0) {
        cairn_warnf(l->log, "net", "accept %s: %s", c->peer,
                    cairn_strerror(rv));
        hs_unlink(c);
        net__conn_fail(c, rv);
    }
}

static void hs_unlink(struct net_conn *c)
{
    struct net_listener *l = c->hs_listener;
    if (l == NULL)
        return;
    if (c->hs_prev)
        c->hs_prev->hs_next = c->hs_next;
    else
        l->hs_head = c->hs_next;
    if (c->hs_next)
        c->hs_next->hs_prev = c->hs_prev;
    c->hs_prev = c->hs_next = NULL;
    c->hs_listener = NULL;
}

void net__listener_hs_done(struct net_conn *c, int status)
{
    struct net_listener *l = c->hs_listener;
    hs_unlink(c);
    if (status != 0 || l == NULL)
        return;
    l->cb(l->arg, c);
    CAIRN_ASSERT(c->started || c->closing);
}

/* Whether config can serve url's scheme. */
static int scheme_check(const struct net_url *url,
                        const struct net_conn_config *config, const char *text,
                        struct cairn_errmsg *msg)
{
    if (url->tls && (config == NULL || config->tls == NULL)) {
        if (msg)
            cairn_errmsg_setf(msg, "listen %s: no TLS configured", text);
        return CAIRN_EUNSUPPORTED;
    }
    if (url->tls && !net__tls_can_serve(config->tls)) {
        if (msg)
            cairn_errmsg_setf(msg, "listen %s: TLS has no certificate", text);
        return CAIRN_EINVAL;
    }
    return 0;
}

int net_listener_open(uv_loop_t *loop, const struct net_url *url,
                      const struct net_conn_config *config,
                      struct cairn_log *log, struct net_listener **out,
                      void *arg, net_accept_cb cb, struct cairn_errmsg *msg)
{
    char text[NET_HOST_MAX + 32];
    net_url_format(url, text, sizeof(text));
    int rv = scheme_check(url, config, text, msg);
    if (rv != 0)
        return rv;
    struct net_listener *l = cairn_calloc(1, sizeof(*l));
    if (l == NULL)
        return CAIRN_ENOMEM;
    l->loop = loop;
    if (config)
        l->config = *config;
    l->log = log;
    l->cb = cb;
    l->arg = arg;
    l->is_unix = url->is_unix;
    l->tls = url->tls ? config->tls : NULL;
    l->plain = !url->tls;
    l->url = *url;
    l->handles = 1;
    if (url->is_unix) {
        size_t plen = strnlen(url->host, sizeof(l->path) - 1);
        memcpy(l->path, url->host, plen);
        l->path[plen] = '\0';
        if (unlink(l->path) != 0 && errno != ENOENT) {
            rv = cairn_err_from_errno(errno);
            if (msg)
                cairn_errmsg_setf(msg, "listen %s: remove stale socket: %s",
                                  text, strerror(errno));
            cairn_free(l);
            return rv;
        }
        uv_pipe_init(loop, &l->u.pipe, 0);
        l->u.handle.data = l;
        rv = uv_pipe_bind(&l->u.pipe, l->path);
    } else {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        if (resolve(url, true, &ss) != 0) {
            if (msg)
                cairn_errmsg_setf(msg, "listen %s: cannot resolve host", text);
            cairn_free(l);
            return CAIRN_EINVAL;
        }
        uv_tcp_init(loop, &l->u.tcp);
        l->u.handle.data = l;
        rv = uv_tcp_bind(&l->u.tcp, (struct sockaddr *)&ss, 0);
    }
    if (rv == 0)
        rv = uv_listen(&l->u.stream, 511, on_connection);
    if (rv != 0) {
        if (msg)
            cairn_errmsg_setf(msg, "listen %s: %s", text, uv_strerror(rv));
        /* The handle was initialised: free only after its close. */
        l->path[0] = '\0';
        uv_close(&l->u.handle, on_listener_closed);
        return net__uv_err(rv);
    }
    uv_timer_init(loop, &l->retry);
    l->retry.data = l;
    l->handles = 2;
    if (!url->is_unix) {
        struct sockaddr_storage ss;
        int n = sizeof(ss);
        uv_tcp_getsockname(&l->u.tcp, (struct sockaddr *)&ss, &n);
        l->port = ntohs(ss.ss_family == AF_INET6
                            ? ((struct sockaddr_in6 *)&ss)->sin6_port
                            : ((struct sockaddr_in *)&ss)->sin_port);
    }
    *out = l;
    return 0;
}

bool net_listener_same_address(const struct net_listener *l,
                               const struct net_url *url)
{
    return l->url.is_unix == url->is_unix && l->url.port == url->port &&
           strcmp(l->url.host, url->host) == 0;
}

int net_listener_add_scheme(struct net_listener *l, const struct net_url *url,
                            const struct net_conn_config *config,
                            struct cairn_errmsg *msg)
{
    char text[NET_HOST_MAX + 32];
    net_url_format(url, text, sizeof(text));
    if (!net_listener_same_address(l, url)) {
        if (msg)
            cairn_errmsg_setf(msg, "listen %s: not the listener's address",
                              text);
        return CAIRN_EINVAL;
    }
    int rv = scheme_check(url, config, text, msg);
    if (rv != 0)
        return rv;
    if (url->tls && l->tls == NULL)
        l->tls = config->tls;
    if (!url->tls)
        l->plain = true;
    return 0;
}

uint16_t net_listener_port(const struct net_listener *l)
{
    return l->port;
}

void net_listener_close(struct net_listener *l)
{
    /* Handshakes in progress belong to no one yet: abort them. The list is
     * as long as the connections accepted, each removed once. */
    while (l->hs_head) {
        struct net_conn *c = l->hs_head;
        hs_unlink(c);
        net__conn_fail(c, CAIRN_ECANCELED);
    }
    if (l->is_unix && l->path[0])
        unlink(l->path);
    uv_close((uv_handle_t *)&l->retry, on_listener_closed);
    uv_close(&l->u.handle, on_listener_closed);
}

/* ---- outgoing connections ---- */

struct connect_req {
    uv_connect_t req;
    struct net_conn *conn;
    bool is_unix;
    net_connect_cb cb;
    void *arg;
    struct net_tls *tls; /* NULL: plaintext */
    char host[NET_HOST_MAX];
};

static void on_failed_conn_closed(uv_handle_t *h)
{
    net__conn_free(h->data);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct connect_req *r = req->data;
    struct net_conn *c = r->conn;
    net_connect_cb cb = r->cb;
    void *arg = r->arg;
    bool is_unix = r->is_unix;
    struct net_tls *tls = r->tls;
    char host[NET_HOST_MAX];
    memcpy(host, r->host, sizeof(host));
    cairn_free(r);
    if (status < 0) {
        c->closing = true;
        uv_close(&c->u.handle, on_failed_conn_closed);
        cb(arg, net__uv_err(status), NULL);
        return;
    }
    if (!is_unix)
        uv_tcp_nodelay(&c->u.tcp, 1);
    net__conn_name_peer(c, is_unix);
    if (tls) {
        /* the callback follows the handshake */
        int rv =
            net__tls_start(c, tls, false, is_unix ? NULL : host, NULL, cb, arg);
        if (rv != 0) {
            c->closing = true;
            uv_close(&c->u.handle, on_failed_conn_closed);
            cb(arg, rv, NULL);
        }
        return;
    }
    cb(arg, 0, c);
}

int net_connect(uv_loop_t *loop, const struct net_url *url,
                const struct net_conn_config *config, void *arg,
                net_connect_cb cb)
{
    if (url->tls && (config == NULL || config->tls == NULL))
        return CAIRN_EUNSUPPORTED;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (!url->is_unix && resolve(url, false, &ss) != 0)
        return CAIRN_EINVAL;
    struct connect_req *r = cairn_calloc(1, sizeof(*r));
    if (r == NULL)
        return CAIRN_ENOMEM;
    struct net_conn *c = net__conn_alloc(loop, config);
    if (c == NULL) {
        cairn_free(r);
        return CAIRN_ENOMEM;
    }
    r->conn = c;
    r->cb = cb;
    r->arg = arg;
    r->is_unix = url->is_unix;
    r->tls = url->tls ? config->tls : NULL;
    memcpy(r->host, url->host, sizeof(r->host));
    r->req.data = r;
    int rv;
    if (url->is_unix) {
        uv_pipe_init(loop, &c->u.pipe, 0);
        c->u.handle.data = c;
        uv_pipe_connect(&r->req, &c->u.pipe, url->host, on_connect);
        rv = 0;
    } else {
        uv_tcp_init(loop, &c->u.tcp);
        c->u.handle.data = c;
        rv = uv_tcp_connect(&r->req, &c->u.tcp, (struct sockaddr *)&ss,
                            on_connect);
    }
    if (rv != 0) {
        cairn_free(r);
        c->closing = true;
        uv_close(&c->u.handle, on_failed_conn_closed);
        return net__uv_err(rv);
    }
    return 0;
}
