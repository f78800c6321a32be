/* client: connections, failover between endpoints, and the life of unary
 * calls and streams on the loop (see client.h for the rules). */
#include <string.h>

#include "client/client_int.h"

enum { L_NONE, L_PENDING, L_ACTIVE, L_DONE };

static struct client__list *list_of(struct client *cl, int which)
{
    switch (which) {
    case L_PENDING:
        return &cl->pending;
    case L_ACTIVE:
        return &cl->active;
    default:
        return &cl->done;
    }
}

static void list_remove(struct client *cl, struct client_stream *s)
{
    if (s->list == L_NONE)
        return;
    struct client__list *l = list_of(cl, s->list);
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
    s->list = L_NONE;
}

static void list_push(struct client *cl, struct client_stream *s, int which,
                      bool front)
{
    CAIRN_ASSERT(s->list == L_NONE);
    struct client__list *l = list_of(cl, which);
    if (front) {
        s->next = l->head;
        if (l->head)
            l->head->prev = s;
        else
            l->tail = s;
        l->head = s;
    } else {
        s->prev = l->tail;
        if (l->tail)
            l->tail->next = s;
        else
            l->head = s;
        l->tail = s;
    }
    l->n++;
    s->list = which;
}

static void op_free(struct client_stream *s)
{
    cairn_free(s->body);
    for (size_t i = 0; i < s->n_held; i++)
        cairn_free(s->held[i]);
    cairn_free(s->held);
    cairn_free(s->held_len);
    if (s->resp)
        protobuf_c_message_free_unpacked(s->resp, NULL);
    cairn_free(s);
}

static void defer_cb(uv_timer_t *t);
static void pump(struct client *cl);

static void defer(struct client *cl)
{
    if (!uv_is_active((uv_handle_t *)&cl->defer))
        uv_timer_start(&cl->defer, defer_cb, 0, 0);
}

/* Ends an op with a status; its callback runs from the defer timer. */
static void finish(struct client_stream *s, int status, int grpc_code,
                   const char *message)
{
    struct client *cl = s->cl;
    list_remove(cl, s);
    s->st.status = status;
    s->st.grpc_code = grpc_code;
    snprintf(s->msg, sizeof(s->msg), "%s", message ? message : "");
    s->st.message = s->msg;
    list_push(cl, s, L_DONE, false);
    defer(cl);
}

static void conn_release(struct client__conn *c)
{
    struct client *cl = c->cl;
    if (c->rc)
        rpc_client_close(c->rc);
    c->rc = NULL;
    for (struct client__conn **p = &cl->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    if (cl->up == c)
        cl->up = NULL;
    cairn_free(c);
}

/* Stops using a connection for new calls; it closes once its calls end. */
static void conn_retire(struct client__conn *c)
{
    struct client *cl = c->cl;
    if (cl->up == c)
        cl->up = NULL;
    c->retired = true;
    if (c->n_active == 0 && c->rc)
        conn_release(c);
}

/* Moves on from endpoint `from` (unless someone already did). */
static void next_endpoint(struct client *cl, size_t from)
{
    if (cl->cur != from)
        return;
    cl->cur = (cl->cur + 1) % cl->n_eps;
    if (cl->up)
        conn_retire(cl->up);
}

static void fail_pending(struct client *cl, int status, const char *text)
{
    for (size_t i = 0, n = cl->pending.n; i < n && cl->pending.head; i++)
        finish(cl->pending.head, status, RPC_UNAVAILABLE, text);
}

static void maybe_drained(struct client *cl);

static void on_connect(void *arg, int status, struct rpc_client *rc)
{
    struct client__conn *c = arg;
    struct client *cl = c->cl;
    cl->connecting = false;
    c->rc = rc;
    if (cl->closing) {
        conn_release(c);
        maybe_drained(cl);
        return;
    }
    if (status != 0) {
        if (cl->log)
            cairn_log_write(cl->log, CAIRN_LOG_WARN, "client: connect %s: %s",
                            cl->ep_text[c->ep], cairn_strerror(status));
        snprintf(cl->last_msg, sizeof(cl->last_msg), "connect %s: %s",
                 cl->ep_text[c->ep], cairn_strerror(status));
        size_t ep = c->ep;
        conn_release(c);
        cl->connect_fails++;
        next_endpoint(cl, ep);
        if (cl->connect_fails >=
            (int)(cl->n_eps * CLIENT_RETRIES_PER_ENDPOINT)) {
            cl->connect_fails = 0;
            fail_pending(cl, CAIRN_ENOENDPOINT, cl->last_msg);
            return;
        }
        defer(cl);
        return;
    }
    cl->connect_fails = 0;
    if (c->ep != cl->cur) {
        /* the caller chose another endpoint meanwhile */
        conn_retire(c);
    } else {
        cl->up = c;
    }
    defer(cl);
}

static void start_connect(struct client *cl)
{
    struct client__conn *c = cairn_calloc(1, sizeof(*c));
    if (!c) {
        fail_pending(cl, CAIRN_ENOMEM, "out of memory");
        return;
    }
    c->cl = cl;
    c->ep = cl->cur;
    c->next = cl->conns;
    cl->conns = c;
    cl->connecting = true;
    struct rpc_client_config rcfg;
    memset(&rcfg, 0, sizeof(rcfg));
    rcfg.net.tls = cl->tls;
    int rv = rpc_client_connect(cl->loop, &cl->eps[c->ep], &rcfg, cl->log, c,
                                on_connect);
    if (rv != 0) {
        cl->connecting = false;
        conn_release(c);
        snprintf(cl->last_msg, sizeof(cl->last_msg), "connect %s: %s",
                 cl->ep_text[cl->cur], cairn_strerror(rv));
        fail_pending(cl, rv == CAIRN_ENOMEM ? rv : CAIRN_ENOENDPOINT,
                     cl->last_msg);
    }
}

static void call_message(void *arg, struct rpc_call *call, const uint8_t *data,
                         size_t len);
static void call_writable(void *arg, struct rpc_call *call);
static void call_done(void *arg, struct rpc_call *call, int code,
                      const char *message);
static const struct rpc_call_cbs call_cbs = {
    .message = call_message,
    .writable = call_writable,
    .done = call_done,
};

/* Sends what a stream held back, in order, as far as the queue takes it. */
static void flush_held(struct client_stream *s)
{
    size_t i = 0;
    for (; i < s->n_held && s->call; i++) {
        int rv = rpc_call_send(s->call, s->held[i], s->held_len[i]);
        if (rv == CAIRN_EFULL)
            break;
        cairn_free(s->held[i]);
        s->held[i] = NULL;
        if (rv != 0) {
            i++;
            break;
        }
    }
    memmove(s->held, s->held + i, (s->n_held - i) * sizeof(*s->held));
    memmove(s->held_len, s->held_len + i,
            (s->n_held - i) * sizeof(*s->held_len));
    s->n_held -= i;
    if (s->n_held == 0 && s->close_send_wanted && s->call)
        rpc_call_close_send(s->call);
}

/* Starts one pending op on connection c. Returns false when the
 * connection refused (it is then retired). */
static bool start_op(struct client *cl, struct client__conn *c,
                     struct client_stream *s)
{
    const struct client__method *m = client__method(s->m);
    list_remove(cl, s);
    int64_t timeout = m->stream || m->waits ? -1 : cl->timeout_ms;
    const char *token_md[] = {"token", cl->token, NULL};
    /* the op is active before the call starts: rpc may end the call (and
     * run call_done) inside rpc_client_call or rpc_call_send */
    s->conn = c;
    c->n_active++;
    list_push(cl, s, L_ACTIVE, false);
    int rv = rpc_client_call(c->rc, m->path, timeout,
                             cl->token[0] != 0 ? token_md : NULL, &call_cbs, s,
                             &s->call);
    if (rv != 0 && s->list != L_ACTIVE)
        return true; /* call_done has dealt with it */
    if (rv != 0) {
        s->call = NULL;
        s->conn = NULL;
        c->n_active--;
        list_remove(cl, s);
    }
    if (rv == CAIRN_ESHUTDOWN) {
        /* the connection is going (GOAWAY); a member that keeps refusing
         * must not keep the call forever */
        size_t ep = c->ep;
        conn_retire(c);
        next_endpoint(cl, ep);
        if (++s->tries >= (int)(cl->n_eps * CLIENT_RETRIES_PER_ENDPOINT))
            finish(s, CAIRN_ENOENDPOINT, RPC_UNAVAILABLE,
                   "connection refused new calls");
        else
            list_push(cl, s, L_PENDING, true);
        return false;
    }
    if (rv != 0) {
        finish(s, rv, RPC_INTERNAL, cairn_strerror(rv));
        return true;
    }
    if (s->list != L_ACTIVE) {
        /* already ended inside rpc_client_call */
        s->call = NULL;
        return true;
    }
    if (!m->stream) {
        /* an empty queue always takes one message */
        rv = rpc_call_send(s->call, s->body, s->len);
        /* done may already have run inside the send (and cleared call) */
        if (rv == 0 && s->call)
            rpc_call_close_send(s->call);
    } else {
        flush_held(s);
    }
    return true;
}

static void pump(struct client *cl)
{
    if (cl->closing)
        return;
    if (cl->up && !rpc_client_alive(cl->up->rc)) {
        size_t ep = cl->up->ep;
        conn_retire(cl->up);
        next_endpoint(cl, ep);
    }
    if (!cl->pending.head)
        return;
    if (!cl->up) {
        if (!cl->connecting)
            start_connect(cl);
        return;
    }
    /* bounded: each pass either starts an op or retires the connection */
    for (size_t n = cl->pending.n; n > 0 && cl->pending.head && cl->up; n--) {
        if (!start_op(cl, cl->up, cl->pending.head))
            break;
    }
    if (cl->pending.head && !cl->up && !cl->connecting)
        defer(cl);
}

/* A stream callback is about to run: client_poll waits for these, and on
 * a blocking client the stop flag keeps uv_run from blocking in poll after
 * a callback run from the timer phase. */
static void stream_event(struct client *cl)
{
    cl->stream_events++;
    if (cl->blocking)
        uv_stop(cl->loop);
}

static void run_done(struct client *cl, struct client_stream *s)
{
    list_remove(cl, s);
    if (client__method(s->m)->stream) {
        stream_event(cl);
        s->scbs->done(s->arg, s, &s->st);
    } else {
        ProtobufCMessage *resp = s->resp;
        s->resp = NULL;
        s->cb(s->arg, &s->st, s->st.status == 0 ? resp : NULL);
        if (s->st.status != 0 && resp)
            protobuf_c_message_free_unpacked(resp, NULL);
    }
    op_free(s);
}

static void defer_cb(uv_timer_t *t)
{
    struct client *cl = t->data;
    /* bounded by what is done now; callbacks may add more, next turn */
    for (size_t n = cl->done.n; n > 0 && cl->done.head; n--)
        run_done(cl, cl->done.head);
    pump(cl);
    if (cl->done.head)
        defer(cl);
    maybe_drained(cl);
}

static void call_message(void *arg, struct rpc_call *call, const uint8_t *data,
                         size_t len)
{
    (void)call;
    struct client_stream *s = arg;
    const struct client__method *m = client__method(s->m);
    ProtobufCMessage *msg = protobuf_c_message_unpack(m->resp, NULL, len, data);
    if (!msg) {
        snprintf(s->msg, sizeof(s->msg), "response does not unpack");
        s->st.status = CAIRN_EPROTOCOL;
        rpc_call_cancel(s->call);
        return;
    }
    if (!m->stream) {
        if (s->resp)
            protobuf_c_message_free_unpacked(s->resp, NULL);
        s->resp = msg;
        return;
    }
    if (s->scbs->message && !s->canceled && !s->cl->closing) {
        stream_event(s->cl);
        s->scbs->message(s->arg, s, msg);
    }
    protobuf_c_message_free_unpacked(msg, NULL);
}

static void call_writable(void *arg, struct rpc_call *call)
{
    (void)call;
    struct client_stream *s = arg;
    if (s->call && s->n_held)
        flush_held(s);
}

static void call_done(void *arg, struct rpc_call *call, int code,
                      const char *message)
{
    (void)call;
    struct client_stream *s = arg;
    struct client *cl = s->cl;
    struct client__conn *c = s->conn;
    const struct client__method *m = client__method(s->m);
    size_t ep = c->ep;
    s->call = NULL;
    s->conn = NULL;
    c->n_active--;
    if (c->retired && c->n_active == 0)
        conn_release(c);
    int max_tries = (int)(cl->n_eps * CLIENT_RETRIES_PER_ENDPOINT);
    if (s->st.status == CAIRN_EPROTOCOL) {
        finish(s, CAIRN_EPROTOCOL, code, s->msg);
    } else if (code == RPC_OK) {
        if (!m->stream && !s->resp)
            finish(s, CAIRN_EPROTOCOL, code, "no response message");
        else
            finish(s, 0, code, message);
    } else if (cl->closing || s->canceled) {
        finish(s, CAIRN_ECANCELED, code, message);
    } else if (!m->stream && s->tries + 1 < max_tries &&
               (client__is_leader_error(code, message) ||
                (code == RPC_UNAVAILABLE && m->idempotent))) {
        /* another member may serve it: move on and try there */
        s->tries++;
        list_remove(cl, s);
        next_endpoint(cl, ep);
        list_push(cl, s, L_PENDING, false);
        defer(cl);
    } else {
        int st = client__err_from_text(message);
        if (st == 0) {
            if (code == RPC_DEADLINE_EXCEEDED)
                st = CAIRN_EDEADLINE;
            else if (code == RPC_CANCELLED)
                st = CAIRN_ECANCELED;
            else if (code == RPC_UNAVAILABLE)
                st = CAIRN_ENOENDPOINT;
            else if (code == RPC_UNIMPLEMENTED)
                st = CAIRN_EUNIMPLEMENTED;
            else
                st = CAIRN_ERPCSTATUS;
        }
        if (code == RPC_UNAVAILABLE)
            next_endpoint(cl, ep);
        finish(s, st, code, message);
    }
}

int client_init(struct client **out, uv_loop_t *loop,
                const struct client_config *config, struct cairn_errmsg *msg)
{
    if (config->n_endpoints == 0 ||
        config->n_endpoints > CLIENT_ENDPOINTS_MAX) {
        if (msg)
            cairn_errmsg_setf(msg, "client: %zu endpoints (1 to %d)",
                              config->n_endpoints, CLIENT_ENDPOINTS_MAX);
        return CAIRN_EINVAL;
    }
    struct client *cl = cairn_calloc(1, sizeof(*cl));
    if (!cl)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < config->n_endpoints; i++) {
        int rv = net_url_parse(config->endpoints[i], &cl->eps[i], msg);
        if (rv != 0) {
            if (msg)
                cairn_errmsg_prefixf(msg, "client: endpoint %s",
                                     config->endpoints[i]);
            cairn_free(cl);
            return rv;
        }
        snprintf(cl->ep_text[i], sizeof(cl->ep_text[i]), "%s",
                 config->endpoints[i]);
    }
    cl->n_eps = config->n_endpoints;
    cl->cur = config->first_endpoint % cl->n_eps;
    cl->timeout_ms = config->timeout_ms == 0 ? 10000 : config->timeout_ms;
    cl->max_pending = config->max_pending ? config->max_pending : 65536;
    cl->log = config->log;
    cl->tls = config->tls;
    if (loop) {
        cl->loop = loop;
    } else {
        if (uv_loop_init(&cl->private_loop) != 0) {
            cairn_free(cl);
            return CAIRN_ENOMEM;
        }
        cl->loop = &cl->private_loop;
        cl->blocking = true;
    }
    uv_timer_init(cl->loop, &cl->defer);
    cl->defer.data = cl;
    *out = cl;
    return 0;
}

static void free_client(uv_handle_t *h)
{
    cairn_free(h->data);
}

static void maybe_drained(struct client *cl)
{
    if (!cl->closing || cl->drained || cl->connecting || cl->conns ||
        cl->pending.n || cl->active.n || cl->done.n)
        return;
    cl->drained = true;
    uv_timer_stop(&cl->defer);
    if (cl->blocking)
        uv_stop(cl->loop); /* client_close's uv_run must not wait in poll */
    if (!cl->blocking)
        uv_close((uv_handle_t *)&cl->defer, free_client);
}

void client_close(struct client *cl)
{
    CAIRN_ASSERT(!cl->closing);
    cl->closing = true;
    fail_pending(cl, CAIRN_ECANCELED, "client closed");
    for (struct client_stream *s = cl->active.head, *next; s; s = next) {
        next = s->next;
        s->canceled = true;
        rpc_call_cancel(s->call);
    }
    /* bounded by the connections open now */
    for (struct client__conn *c = cl->conns, *next; c; c = next) {
        next = c->next;
        if (c->rc)
            conn_retire(c);
    }
    if (cl->done.n)
        defer(cl);
    maybe_drained(cl);
    if (!cl->blocking)
        return;
    /* the private loop ends every call, then releases its handles */
    for (long i = 0; i < 10000000 && !cl->drained; i++)
        uv_run(cl->loop, UV_RUN_ONCE);
    CAIRN_ASSERT(cl->drained);
    uv_close((uv_handle_t *)&cl->defer, NULL);
    /* again while a stop flag (set outside a run) cut a run short */
    for (int i = 0; i < 1000 && uv_run(cl->loop, UV_RUN_DEFAULT) != 0; i++)
        ;
    int rv = uv_loop_close(cl->loop);
    CAIRN_ASSERT(rv == 0);
    cairn_free(cl);
}

int client_token_set(struct client *cl, const char *token)
{
    if (token == NULL)
        token = "";
    size_t n = strlen(token);
    if (n > CLIENT_TOKEN_MAX)
        return CAIRN_EINVAL;
    memcpy(cl->token, token, n + 1);
    return 0;
}

size_t client_endpoint_current(const struct client *cl)
{
    return cl->cur;
}

const char *client_endpoint_text(const struct client *cl, size_t i)
{
    CAIRN_ASSERT(i < cl->n_eps);
    return cl->ep_text[i];
}

size_t client_endpoint_count(const struct client *cl)
{
    return cl->n_eps;
}

void client_endpoint_use(struct client *cl, size_t i)
{
    CAIRN_ASSERT(i < cl->n_eps);
    if (cl->cur == i)
        return;
    cl->cur = i;
    if (cl->up)
        conn_retire(cl->up);
}

static struct client_stream *op_new(struct client *cl, enum client_method m,
                                    const ProtobufCMessage *req)
{
    struct client_stream *s = cairn_calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cl = cl;
    s->m = m;
    if (req) {
        s->len = protobuf_c_message_get_packed_size(req);
        s->body = cairn_malloc(s->len ? s->len : 1);
        if (!s->body) {
            cairn_free(s);
            return NULL;
        }
        protobuf_c_message_pack(req, s->body);
    }
    return s;
}

int client_call(struct client *cl, enum client_method m,
                const ProtobufCMessage *req, void *arg, client_call_cb cb)
{
    const struct client__method *me = client__method(m);
    if (me->stream || req->descriptor != me->req)
        return CAIRN_EINVAL;
    if (cl->closing)
        return CAIRN_ESHUTDOWN;
    if (cl->pending.n >= cl->max_pending)
        return CAIRN_EFULL;
    struct client_stream *s = op_new(cl, m, req);
    if (!s)
        return CAIRN_ENOMEM;
    s->arg = arg;
    s->cb = cb;
    list_push(cl, s, L_PENDING, false);
    defer(cl);
    return 0;
}

void client_msg_free(ProtobufCMessage *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
}

int client_stream_open(struct client *cl, enum client_method m,
                       const struct client_stream_cbs *cbs, void *arg,
                       struct client_stream **out)
{
    if (!client__method(m)->stream)
        return CAIRN_EINVAL;
    if (cl->closing)
        return CAIRN_ESHUTDOWN;
    if (cl->pending.n >= cl->max_pending)
        return CAIRN_EFULL;
    struct client_stream *s = op_new(cl, m, NULL);
    if (!s)
        return CAIRN_ENOMEM;
    s->scbs = cbs;
    s->arg = arg;
    list_push(cl, s, L_PENDING, false);
    defer(cl);
    *out = s;
    return 0;
}

static int hold(struct client_stream *s, uint8_t *body, size_t len)
{
    if (s->n_held == CLIENT__HELD_MAX)
        return CAIRN_EFULL;
    if (s->n_held == s->held_cap) {
        size_t cap = s->held_cap ? s->held_cap * 2 : 8;
        uint8_t **h = cairn_realloc(s->held, cap * sizeof(*h));
        if (!h)
            return CAIRN_ENOMEM;
        s->held = h;
        size_t *hl = cairn_realloc(s->held_len, cap * sizeof(*hl));
        if (!hl)
            return CAIRN_ENOMEM;
        s->held_len = hl;
        s->held_cap = cap;
    }
    s->held[s->n_held] = body;
    s->held_len[s->n_held] = len;
    s->n_held++;
    return 0;
}

int client_stream_send(struct client_stream *s, const ProtobufCMessage *req)
{
    if (req->descriptor != client__method(s->m)->req)
        return CAIRN_EINVAL;
    if (s->list == L_DONE || s->canceled || s->close_send_wanted)
        return CAIRN_ESHUTDOWN;
    size_t len = protobuf_c_message_get_packed_size(req);
    uint8_t *body = cairn_malloc(len ? len : 1);
    if (!body)
        return CAIRN_ENOMEM;
    protobuf_c_message_pack(req, body);
    int rv;
    if (s->call && s->n_held == 0) {
        rv = rpc_call_send(s->call, body, len);
        cairn_free(body);
        return rv;
    }
    rv = hold(s, body, len);
    if (rv != 0)
        cairn_free(body);
    return rv;
}

void client_stream_close_send(struct client_stream *s)
{
    if (s->close_send_wanted)
        return;
    s->close_send_wanted = true;
    if (s->call && s->n_held == 0)
        rpc_call_close_send(s->call);
}

void client_stream_cancel(struct client_stream *s)
{
    if (s->canceled || s->list == L_DONE)
        return;
    s->canceled = true;
    if (s->call)
        rpc_call_cancel(s->call);
    else
        finish(s, CAIRN_ECANCELED, RPC_CANCELLED, "canceled");
}
