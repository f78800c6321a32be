/* The HTTP/2 side shared by server and client: nghttp2 session callbacks,
 * message framing in and out, flow control, flushing to the net
 * connection, calls' lifecycle and the public rpc_call_* functions. */
#include <stdio.h>
#include <string.h>

#include "rpc/rpc_int.h"

/* ---- nghttp2 memory through cairn's allocator (fault injection) ---- */

static void *mem_malloc(size_t size, void *ud)
{
    (void)ud;
    return cairn_malloc(size);
}
static void mem_free(void *p, void *ud)
{
    (void)ud;
    cairn_free(p);
}
static void *mem_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return cairn_calloc(n, size);
}
static void *mem_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return cairn_realloc(p, size);
}
const nghttp2_mem rpc__mem = {NULL, mem_malloc, mem_free, mem_calloc,
                              mem_realloc};

/* ---- calls ---- */

static void call_free(struct rpc_call *call)
{
    cairn_free(call->timer);
    buf_free(&call->meta);
    buf_free(&call->in);
    buf_free(&call->out);
    cairn_free(call->path);
    cairn_free(call->finish_msg);
    cairn_free(call->grpc_message);
    cairn_free(call->end_msg);
    cairn_free(call);
}

struct rpc_call *rpc__call_new(struct rpc__conn *c, int32_t stream_id)
{
    struct rpc_call *call = cairn_calloc(1, sizeof(*call));
    if (call == NULL)
        return NULL;
    call->conn = c;
    call->stream_id = stream_id;
    call->is_client = c->is_client;
    call->timeout_ms = -1;
    call->grpc_status = -1;
    call->content_length = -1;
    buf_init(&call->meta);
    buf_init(&call->in);
    buf_init(&call->out);
    call->next = c->calls;
    if (c->calls)
        c->calls->prev = call;
    c->calls = call;
    c->n_calls++;
    return call;
}

static void writable_unlink(struct rpc__conn *c, struct rpc_call *call)
{
    if (!call->writable_queued)
        return;
    for (struct rpc_call **p = &c->writable_head; *p; p = &(*p)->wnext)
        if (*p == call) {
            *p = call->wnext;
            break;
        }
    call->writable_queued = false;
}

static void timer_closed(uv_handle_t *h)
{
    call_free(h->data);
}

/* Has the connection's flush run in a later phase of the loop turn, where
 * rpc__call_reap frees what ended. A dead connection reaps at teardown. */
static void queue_reap(struct rpc__conn *c)
{
    if (c->dead)
        return;
    if (!c->is_client && c->srv != NULL)
        rpc__server_queue_flush(c);
    else if (c->ops->queue_flush != NULL)
        c->ops->queue_flush(c);
}

void rpc__call_end(struct rpc_call *call, int code, const char *msg)
{
    if (call->done)
        return;
    call->done = true;
    struct rpc__conn *c = call->conn;
    if (call->timer_started)
        uv_timer_stop(call->timer);
    if (c) {
        writable_unlink(c, call);
        if (c->session && call->stream_id > 0 && !c->dead)
            nghttp2_session_set_stream_user_data(c->session, call->stream_id,
                                                 NULL);
        if (call->prev)
            call->prev->next = call->next;
        else
            c->calls = call->next;
        if (call->next)
            call->next->prev = call->prev;
        c->n_calls--;
        /* Give back the window the call still held, so the connection's
         * window is not lost with it. */
        if (call->unconsumed && c->session && !c->dead && call->stream_id > 0)
            nghttp2_session_consume_stream(c->session, call->stream_id,
                                           call->unconsumed);
        call->conn = NULL;
    }
    if ((call->dispatched || call->is_client) && call->cbs && call->cbs->done)
        call->cbs->done(call->arg, call, code, msg ? msg : "");
    /* The memory outlives this turn's callbacks, which may still hold the
     * call: freed by the timer's close, or else by the connection's next
     * flush or teardown (rpc__call_reap). */
    if (call->timer != NULL) {
        uv_close((uv_handle_t *)call->timer, timer_closed);
    } else if (c != NULL) {
        call->next = c->ended;
        c->ended = call;
        queue_reap(c);
    } else {
        call_free(call); /* not reached: a live call has its conn */
    }
}

void rpc__call_reap(struct rpc__conn *c)
{
    /* Bounded by the calls that ended since the last reap. */
    while (c->ended != NULL) {
        struct rpc_call *call = c->ended;
        c->ended = call->next;
        call_free(call);
    }
}

static void on_deadline(uv_timer_t *t)
{
    struct rpc_call *call = t->data;
    struct rpc__conn *c = call->conn;
    if (call->done || c == NULL)
        return;
    if (!call->is_client && !call->prd_submitted && !call->send_ended) {
        /* Nothing sent yet: a trailers-only status tells the client why. */
        rpc__call_reject(call, RPC_DEADLINE_EXCEEDED,
                         "context deadline exceeded");
    } else if (c->session && !c->dead) {
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                  call->stream_id, NGHTTP2_CANCEL);
    }
    rpc__call_end(call, RPC_DEADLINE_EXCEEDED, "context deadline exceeded");
    rpc__conn_flush(c);
}

int rpc__call_alloc_timer(struct rpc_call *call)
{
    if (call->timeout_ms < 0 || call->timer != NULL)
        return 0;
    call->timer = cairn_malloc(sizeof(*call->timer));
    if (call->timer == NULL)
        return CAIRN_ENOMEM;
    uv_timer_init(call->conn->loop, call->timer);
    call->timer->data = call;
    return 0;
}

void rpc__call_arm_deadline(struct rpc_call *call)
{
    if (call->timeout_ms < 0)
        return;
    CAIRN_ASSERT(call->timer != NULL);
    call->deadline = uv_now(call->conn->loop) + (uint64_t)call->timeout_ms;
    uv_timer_start(call->timer, on_deadline, (uint64_t)call->timeout_ms, 0);
    call->timer_started = true;
}

void rpc__nv(nghttp2_nv *nv, const char *name, const char *value)
{
    nv->name = (uint8_t *)name;
    nv->namelen = strlen(name);
    nv->value = (uint8_t *)value;
    nv->valuelen = strlen(value);
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Status headers: grpc-status and, when there is one, grpc-message. */
static size_t status_nv(nghttp2_nv *nv, char *codebuf, char *msgbuf,
                        size_t msgsize, int code, const char *msg)
{
    size_t n = 0;
    snprintf(codebuf, 12, "%d", code);
    rpc__nv(&nv[n++], "grpc-status", codebuf);
    if (msg && *msg) {
        rpc_percent_encode(msg, msgbuf, msgsize);
        rpc__nv(&nv[n++], "grpc-message", msgbuf);
    }
    return n;
}

void rpc__call_reject(struct rpc_call *call, int code, const char *msg)
{
    struct rpc__conn *c = call->conn;
    char codebuf[12], msgbuf[1024];
    nghttp2_nv nv[4];
    size_t n = 0;
    rpc__nv(&nv[n++], ":status", "200");
    rpc__nv(&nv[n++], "content-type", "application/grpc");
    n += status_nv(&nv[n], codebuf, msgbuf, sizeof(msgbuf), code, msg);
    call->send_ended = true;
    if (nghttp2_submit_response(c->session, call->stream_id, nv, n, NULL) != 0)
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                  call->stream_id, NGHTTP2_INTERNAL_ERROR);
}

/* ---- sending: the data provider reads from the call's queue ---- */

ssize_t rpc__data_read(nghttp2_session *s, int32_t id, uint8_t *dst,
                       size_t length, uint32_t *flags, nghttp2_data_source *src,
                       void *ud)
{
    (void)src;
    struct rpc__conn *c = ud;
    struct rpc_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (call == NULL) {
        /* The call ended without its stream: it was reset as it ended. */
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t avail = call->out.len - call->out_off;
    size_t n = avail < length ? avail : length;
    if (n > 0)
        memcpy(dst, call->out.data + call->out_off, n);
    call->out_off += n;
    if (call->out_off == call->out.len) {
        /* Freed, not kept: a long-lived stream (10,000 LeaseKeepAlive
         * streams) would otherwise hold its largest answer between
         * messages. */
        buf_free(&call->out);
        call->out_off = 0;
    } else if (call->out_off >= (64u << 10) &&
               call->out_off * 2 >= call->out.len) {
        buf_consume(&call->out, call->out_off);
        call->out_off = 0;
    }
    if (call->wants_writable && !call->writable_queued &&
        call->out.len - call->out_off <= c->send_queue_max / 2) {
        call->writable_queued = true;
        call->wnext = c->writable_head;
        c->writable_head = call;
    }
    if (n == avail) {
        if (call->send_ended && !call->is_client) {
            char codebuf[12], msgbuf[1024];
            nghttp2_nv nv[2];
            size_t k = status_nv(nv, codebuf, msgbuf, sizeof(msgbuf),
                                 call->finish_code, call->finish_msg);
            *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (nghttp2_submit_trailer(s, id, nv, k) != 0)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        } else if (call->send_ended) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static int submit_headers(struct rpc_call *call);

int rpc_call_send(struct rpc_call *call, const void *data, size_t len)
{
    if (call == NULL) /* a handler's call pointer, cleared when it ended */
        return CAIRN_ESHUTDOWN;
    struct rpc__conn *c = call->conn;
    if (call->done || c == NULL || c->dead || call->send_ended)
        return CAIRN_ESHUTDOWN;
    if (len > UINT32_MAX)
        return CAIRN_ETOOBIG;
    size_t queued = call->out.len - call->out_off;
    if (queued > 0 && queued + len + 5 > c->send_queue_max) {
        call->wants_writable = true;
        return CAIRN_EFULL;
    }
    if (buf_reserve(&call->out, len + 5) != 0)
        return CAIRN_ENOMEM;
    uint8_t hdr[5] = {0, (uint8_t)(len >> 24), (uint8_t)(len >> 16),
                      (uint8_t)(len >> 8), (uint8_t)len};
    buf_append(&call->out, hdr, 5);
    buf_append(&call->out, data, len);
    if (!call->prd_submitted) {
        int rv = submit_headers(call);
        if (rv != 0)
            return rv;
    } else {
        nghttp2_session_resume_data(c->session, call->stream_id);
    }
    rpc__conn_flush(c);
    return 0;
}

/* Server: the response HEADERS with a data provider. Client: the request
 * was submitted with its provider in rpc_client_call already. */
static int submit_headers(struct rpc_call *call)
{
    struct rpc__conn *c = call->conn;
    CAIRN_ASSERT(!call->is_client);
    nghttp2_nv nv[2];
    rpc__nv(&nv[0], ":status", "200");
    rpc__nv(&nv[1], "content-type", "application/grpc");
    nghttp2_data_provider prd = {.source = {.ptr = NULL},
                                 .read_callback = rpc__data_read};
    if (nghttp2_submit_response(c->session, call->stream_id, nv, 2, &prd) != 0)
        return CAIRN_ENOMEM;
    call->prd_submitted = true;
    return 0;
}

void rpc_call_finish(struct rpc_call *call, int code, const char *message)
{
    CAIRN_ASSERT(!call->is_client);
    struct rpc__conn *c = call->conn;
    if (call->send_ended)
        return; /* already ended, e.g. by an oversized message */
    if (call->done || c == NULL || c->dead) {
        call->send_ended = true;
        return;
    }
    call->finish_code = code;
    if (message && *message) {
        call->finish_msg = cairn_strdup(message);
    }
    if (!call->prd_submitted) {
        rpc__call_reject(call, code, message);
    } else {
        call->send_ended = true;
        nghttp2_session_resume_data(c->session, call->stream_id);
    }
    rpc__conn_flush(c);
}

void rpc_call_close_send(struct rpc_call *call)
{
    CAIRN_ASSERT(call->is_client);
    struct rpc__conn *c = call->conn;
    if (call->done || c == NULL || c->dead || call->send_ended)
        return;
    call->send_ended = true;
    nghttp2_session_resume_data(c->session, call->stream_id);
    rpc__conn_flush(c);
}

void rpc_call_cancel(struct rpc_call *call)
{
    struct rpc__conn *c = call->conn;
    if (call->done)
        return;
    if (c && c->session && !c->dead)
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                  call->stream_id, NGHTTP2_CANCEL);
    rpc__call_end(call, RPC_CANCELLED, "context canceled");
    if (c)
        rpc__conn_flush(c);
}

void rpc_call_set_user(struct rpc_call *call, void *user)
{
    call->user = user;
}

void *rpc_call_user(const struct rpc_call *call)
{
    return call->user;
}

const char *rpc_call_method(const struct rpc_call *call)
{
    return call->path ? call->path : "";
}

const char *rpc_call_metadata(const struct rpc_call *call, const char *name)
{
    const char *p = (const char *)call->meta.data;
    const char *end = p + call->meta.len;
    while (p && p < end) {
        const char *v = p + strlen(p) + 1;
        if (strcmp(p, name) == 0)
            return v;
        p = v + strlen(v) + 1;
    }
    return NULL;
}

const char *rpc_call_peer(const struct rpc_call *call)
{
    if (call->conn == NULL || call->conn->net == NULL)
        return "";
    return net_conn_peer(call->conn->net);
}

int64_t rpc_call_deadline_left_ms(const struct rpc_call *call)
{
    if (call->timeout_ms < 0 || call->conn == NULL)
        return -1;
    uint64_t now = uv_now(call->conn->loop);
    return now >= call->deadline ? 0 : (int64_t)(call->deadline - now);
}

size_t rpc_call_send_queued_bytes(const struct rpc_call *call)
{
    return call->out.len - call->out_off;
}

/* ---- receiving ---- */

static void call_fail_recv(struct rpc_call *call, int code, const char *msg)
{
    struct rpc__conn *c = call->conn;
    call->recv_failed = true;
    if (call->is_client) {
        nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE,
                                  call->stream_id, NGHTTP2_CANCEL);
        rpc__call_end(call, code, msg);
        return;
    }
    if (!call->dispatched) {
        rpc__call_reject(call, code, msg);
        rpc__call_end(call, code, msg);
        return;
    }
    if (!call->send_ended) {
        /* Drop what the handler queued: the status is what matters. */
        buf_reset(&call->out);
        call->out_off = 0;
        rpc_call_finish(call, code, msg);
    }
}

/* Hands complete messages to the callback, then the half-close. */
static void call_deliver(struct rpc_call *call)
{
    struct rpc__conn *c = call->conn;
    char text[128];
    /* A server call that has finished takes no more messages: its status
     * is out, the call is over for the handler. */
    if (!call->is_client && call->send_ended) {
        buf_reset(&call->in);
        call->in_off = 0;
        return;
    }
    /* Bounded: each round consumes a message or stops. */
    while (!call->done && !call->recv_paused && !call->recv_failed &&
           !(!call->is_client && call->send_ended)) {
        size_t avail = call->in.len - call->in_off;
        if (avail < 5)
            break;
        const uint8_t *p = call->in.data + call->in_off;
        uint32_t len = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
                       (uint32_t)p[3] << 8 | p[4];
        if (p[0] != 0) {
            if (p[0] == 1)
                call_fail_recv(call, RPC_UNIMPLEMENTED,
                               "grpc: compressed messages are not supported "
                               "(only identity encoding)");
            else
                call_fail_recv(call, RPC_INTERNAL,
                               "grpc: invalid message compression flag");
            break;
        }
        if (len > c->max_recv) {
            snprintf(text, sizeof(text),
                     "grpc: received message larger than max (%u vs. %zu)", len,
                     c->max_recv);
            call_fail_recv(call, RPC_RESOURCE_EXHAUSTED, text);
            break;
        }
        if (avail < 5 + (size_t)len)
            break;
        call->in_off += 5 + (size_t)len;
        if (call->cbs && call->cbs->message)
            call->cbs->message(call->arg, call, p + 5, len);
    }
    if (call->done || call->recv_failed ||
        (!call->is_client && call->send_ended))
        return;
    if (call->in_off == call->in.len) {
        buf_free(&call->in); /* as the out buffer, see rpc__data_read */
        call->in_off = 0;
    } else if (call->in_off > 0) {
        buf_consume(&call->in, call->in_off);
        call->in_off = 0;
    }
    if (call->stream_gone && !call->recv_paused && call->in.len == 0) {
        rpc__call_end(call, call->end_code, call->end_msg);
        return;
    }
    if (call->peer_ended && !call->recv_paused && !call->half_close_told) {
        if (call->in.len > 0) {
            call_fail_recv(call, RPC_INTERNAL,
                           "grpc: stream ended inside a message");
            return;
        }
        call->half_close_told = true;
        if (!call->is_client && call->cbs && call->cbs->half_close)
            call->cbs->half_close(call->arg, call);
    }
}

void rpc_call_recv_pause(struct rpc_call *call, bool paused)
{
    struct rpc__conn *c = call->conn;
    if (call->recv_paused == paused || call->done || c == NULL)
        return;
    call->recv_paused = paused;
    if (paused)
        return;
    if (call->unconsumed && !c->dead && call->stream_id > 0) {
        nghttp2_session_consume_stream(c->session, call->stream_id,
                                       call->unconsumed);
        call->unconsumed = 0;
    }
    call_deliver(call);
    rpc__conn_flush(c);
}

static int reset_protocol_error(nghttp2_session *s, int32_t id);

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud)
{
    (void)flags;
    struct rpc__conn *c = ud;
    /* The connection window is always given back at once; the stream's
     * only as the call takes the bytes, so one paused call blocks only its
     * own stream. */
    nghttp2_session_consume_connection(s, len);
    struct rpc_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (call != NULL && !call->is_client && !call->done && !call->recv_failed) {
        /* more body than content-length said (see request_field_ok) */
        call->body_bytes += len;
        if (call->content_length >= 0 &&
            call->body_bytes > (uint64_t)call->content_length) {
            call->recv_failed = true;
            reset_protocol_error(s, id);
        }
    }
    if (call == NULL || call->recv_failed || call->done) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    if (!call->is_client && (!call->dispatched || call->send_ended)) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    /* call_deliver checks a message's length as soon as its prefix is
     * here, so at most one frame past the limit is ever buffered. */
    if (buf_append(&call->in, data, len) != 0) {
        call_fail_recv(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    if (call->recv_paused)
        call->unconsumed += len;
    else
        nghttp2_session_consume_stream(s, id, len);
    call_deliver(call);
    (void)c;
    return 0;
}

/* ---- headers, frames, stream close ---- */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame,
                            void *ud)
{
    struct rpc__conn *c = ud;
    if (c->is_client || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    struct rpc_call *call = rpc__call_new(c, frame->hd.stream_id);
    if (call == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, call);
    return 0;
}

static bool name_is(const uint8_t *name, size_t namelen, const char *want)
{
    return namelen == strlen(want) && memcmp(name, want, namelen) == 0;
}

/* ---- request checks (server) ----
 *
 * nghttp2's HTTP messaging checks are off on server sessions because they
 * hold :authority to RFC 3986's authority syntax, and grpc-go (so
 * etcdctl) sends the whole dial target there when given a URL endpoint:
 * `--endpoints=http://127.0.0.1:2379` gives `:authority
 * http://127.0.0.1:2379`, which nghttp2 answers with RST_STREAM
 * PROTOCOL_ERROR. grpc-go's own server, so etcd, takes any :authority that
 * is a valid field value. The rest of what nghttp2 checked is done here,
 * the same way, and a bad request is reset with PROTOCOL_ERROR as before. */

enum {
    RPC__PSEUDO_METHOD = 1,
    RPC__PSEUDO_PATH = 2,
    RPC__PSEUDO_SCHEME = 4,
    RPC__PSEUDO_AUTHORITY = 8,
};

static int reset_protocol_error(nghttp2_session *s, int32_t id)
{
    /* with TEMPORAL_CALLBACK_FAILURE, nghttp2 sends this code instead of
     * INTERNAL_ERROR */
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_PROTOCOL_ERROR);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static bool value_is_nocase(const uint8_t *v, size_t n, const char *want)
{
    if (n != strlen(want))
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t ch = v[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (uint8_t)(ch - 'A' + 'a');
        if (ch != (uint8_t)want[i])
            return false;
    }
    return true;
}

/* Whether one field of a request's headers (trailer: of its trailers) is
 * acceptable: RFC 9113 section 8.2 and 8.3, as nghttp2 checks them, but
 * :authority only as a field value. */
static bool request_field_ok(struct rpc_call *call, bool trailer,
                             const uint8_t *name, size_t namelen,
                             const uint8_t *value, size_t valuelen)
{
    if (!nghttp2_check_header_name(name, namelen) ||
        !nghttp2_check_header_value_rfc9113(value, valuelen))
        return false;
    if (name[0] == ':') {
        if (trailer || call->regular_seen)
            return false;
        uint8_t bit;
        if (name_is(name, namelen, ":method"))
            bit = RPC__PSEUDO_METHOD;
        else if (name_is(name, namelen, ":path"))
            bit = RPC__PSEUDO_PATH;
        else if (name_is(name, namelen, ":scheme"))
            bit = RPC__PSEUDO_SCHEME;
        else if (name_is(name, namelen, ":authority"))
            bit = RPC__PSEUDO_AUTHORITY;
        else
            return false; /* :status, :protocol or unknown */
        if (call->pseudo_seen & bit)
            return false;
        call->pseudo_seen |= bit;
        if (bit == RPC__PSEUDO_METHOD)
            return nghttp2_check_method(value, valuelen);
        if (bit == RPC__PSEUDO_PATH)
            return valuelen > 0 && nghttp2_check_path(value, valuelen);
        if (bit == RPC__PSEUDO_SCHEME)
            return valuelen > 0;
        return true;
    }
    call->regular_seen = true;
    /* connection-specific fields have no place in HTTP/2 */
    if (name_is(name, namelen, "connection") ||
        name_is(name, namelen, "keep-alive") ||
        name_is(name, namelen, "proxy-connection") ||
        name_is(name, namelen, "transfer-encoding") ||
        name_is(name, namelen, "upgrade"))
        return false;
    if (name_is(name, namelen, "te"))
        return value_is_nocase(value, valuelen, "trailers");
    if (name_is(name, namelen, "content-length") && !trailer) {
        /* digits only, once, and small enough to count */
        if (valuelen == 0 || valuelen > 18 || call->content_length >= 0)
            return false;
        int64_t v = 0;
        for (size_t i = 0; i < valuelen; i++) {
            if (value[i] < '0' || value[i] > '9')
                return false;
            v = v * 10 + (value[i] - '0');
        }
        call->content_length = v;
    }
    return true;
}

/* A request's header block is complete: the pseudo-fields every request
 * must have (RFC 9113 8.3.1) are there. */
static bool request_complete_ok(const struct rpc_call *call)
{
    const uint8_t need =
        RPC__PSEUDO_METHOD | RPC__PSEUDO_PATH | RPC__PSEUDO_SCHEME;
    return (call->pseudo_seen & need) == need;
}

static char *dup_value(const uint8_t *v, size_t n)
{
    char *p = cairn_malloc(n + 1);
    if (p) {
        if (n > 0)
            memcpy(p, v, n);
        p[n] = '\0';
    }
    return p;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    struct rpc_call *call =
        nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (call == NULL || call->done)
        return 0;
    if (call->is_client) {
        if (name_is(name, namelen, ":status")) {
            call->http_status = 0;
            for (size_t i = 0; i < valuelen && i < 3; i++)
                call->http_status = call->http_status * 10 + (value[i] - '0');
        } else if (name_is(name, namelen, "grpc-status")) {
            int v = 0;
            for (size_t i = 0; i < valuelen && i < 4; i++)
                if (value[i] >= '0' && value[i] <= '9')
                    v = v * 10 + (value[i] - '0');
            call->grpc_status = v;
        } else if (name_is(name, namelen, "grpc-message")) {
            cairn_free(call->grpc_message);
            call->grpc_message = dup_value(value, valuelen);
            if (call->grpc_message)
                rpc_percent_decode(call->grpc_message);
        }
        return 0;
    }
    bool trailer = frame->headers.cat != NGHTTP2_HCAT_REQUEST;
    if (!request_field_ok(call, trailer, name, namelen, value, valuelen))
        return reset_protocol_error(s, frame->hd.stream_id);
    if (trailer)
        return 0; /* trailers from a client carry nothing we use */
    if (name_is(name, namelen, ":path")) {
        cairn_free(call->path);
        call->path = dup_value(value, valuelen);
        if (call->path == NULL)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    } else if (name_is(name, namelen, ":method")) {
        call->saw_post = valuelen == 4 && memcmp(value, "POST", 4) == 0;
    } else if (name_is(name, namelen, "content-type")) {
        /* "application/grpc", "application/grpc+proto", ...; */
        call->saw_grpc_type =
            valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
            (valuelen == 16 || value[16] == '+' || value[16] == ';');
    } else if (name_is(name, namelen, "grpc-timeout")) {
        char tmp[16];
        int64_t ms;
        if (valuelen >= sizeof(tmp)) {
            call->bad_timeout = true;
        } else {
            memcpy(tmp, value, valuelen);
            tmp[valuelen] = '\0';
            if (rpc_timeout_parse(tmp, &ms) == 0)
                call->timeout_ms = ms;
            else
                call->bad_timeout = true;
        }
    } else if (namelen > 0 && name[0] != ':' && !name_is(name, namelen, "te") &&
               call->meta.len + namelen + valuelen + 2 <= RPC__META_MAX) {
        buf_append(&call->meta, name, namelen);
        buf_append_u8(&call->meta, 0);
        buf_append(&call->meta, value, valuelen);
        buf_append_u8(&call->meta, 0);
    }
    return 0;
}

static void call_peer_ended(struct rpc_call *call)
{
    call->peer_ended = true;
    call_deliver(call);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame,
                         void *ud)
{
    struct rpc__conn *c = ud;
    if (frame->hd.type == NGHTTP2_PING &&
        (frame->hd.flags & NGHTTP2_FLAG_ACK)) {
        c->ping_outstanding = false;
        c->last_ack = uv_now(c->loop);
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    struct rpc_call *call =
        nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (call == NULL || call->done)
        return 0;
    if (!c->is_client) {
        /* what nghttp2's HTTP messaging would have checked (see
         * request_field_ok): a request's pseudo-fields, trailers that end
         * the stream, and the body against content-length */
        bool ends = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
        bool bad = frame->hd.type == NGHTTP2_HEADERS &&
                   (frame->headers.cat == NGHTTP2_HCAT_REQUEST
                        ? !request_complete_ok(call)
                        : !ends);
        if (ends && !call->recv_failed && call->content_length >= 0 &&
            call->body_bytes != (uint64_t)call->content_length)
            bad = true;
        if (bad) {
            reset_protocol_error(s, frame->hd.stream_id);
            return 0;
        }
    }
    if (frame->hd.type == NGHTTP2_HEADERS && !c->is_client &&
        frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        rpc__server_dispatch(call);
        if (call->done || !call->dispatched)
            return 0;
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        call_peer_ended(call);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame,
                         void *ud)
{
    struct rpc__conn *c = ud;
    /* A server that has sent its trailers while the client still sends
     * resets the stream with NO_ERROR, as gRPC servers do, so the client
     * stops and the stream slot is freed. */
    if (!c->is_client && frame->hd.type == NGHTTP2_HEADERS &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(s, frame->hd.stream_id) == 0)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error,
                           void *ud)
{
    (void)ud;
    struct rpc_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (call == NULL || call->done)
        return 0;
    int code;
    const char *msg;
    char text[96];
    if (call->is_client) {
        if (call->grpc_status >= 0) {
            code = call->grpc_status;
            msg = call->grpc_message;
        } else if (error != NGHTTP2_NO_ERROR) {
            code = error == NGHTTP2_REFUSED_STREAM ? RPC_UNAVAILABLE
                   : error == NGHTTP2_CANCEL       ? RPC_CANCELLED
                                                   : RPC_INTERNAL;
            snprintf(text, sizeof(text), "stream reset by the server: %s",
                     nghttp2_http2_strerror(error));
            msg = text;
        } else if (call->http_status != 200) {
            code = rpc__code_from_http(call->http_status);
            snprintf(text, sizeof(text),
                     "unexpected HTTP status code from server: %d",
                     call->http_status);
            msg = text;
        } else {
            code = RPC_INTERNAL;
            msg = "server closed the stream without sending trailers";
        }
    } else if (call->send_ended && error == NGHTTP2_NO_ERROR) {
        code = call->finish_code;
        msg = call->finish_msg;
    } else {
        code = RPC_CANCELLED;
        msg = "stream reset by the client";
    }
    /* A paused client still gets what the server sent before its status. */
    bool held = call->is_client && call->recv_paused &&
                call->in.len > call->in_off && code == RPC_OK;
    if (!held) {
        rpc__call_end(call, code, msg);
        return 0;
    }
    /* Messages are still held by a paused receiver: end after them. */
    nghttp2_session_set_stream_user_data(s, id, NULL);
    call->stream_gone = true;
    call->stream_id = 0;
    call->end_code = code;
    call->end_msg = msg ? cairn_strdup(msg) : NULL;
    return 0;
}

int rpc__session_new(struct rpc__conn *c, uint32_t stream_window,
                     uint32_t max_streams)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return CAIRN_ENOMEM;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cbs);
        return CAIRN_ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                            on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                           on_stream_close);
    /* We give windows back as calls take their bytes (see on_data_chunk). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* A server checks requests itself: nghttp2 would refuse the :authority
     * grpc-go sends for URL endpoints (see request_field_ok). */
    if (!c->is_client)
        nghttp2_option_set_no_http_messaging(opt, 1);
    /* nghttp2 keeps a server's closed streams for the priority tree (we
     * ignore priorities) until their number passes the advertised
     * SETTINGS_MAX_CONCURRENT_STREAMS: with etcd's default of 2^32-1, every
     * stream a long-lived client ever opened, about 150 bytes each (8.7 MB
     * of a member's heap after 20,000 puts on 10 connections). */
    nghttp2_option_set_no_closed_streams(opt, 1);
    int rv = c->is_client
                 ? nghttp2_session_client_new3(&c->session, cbs, c, opt,
                                               (nghttp2_mem *)&rpc__mem)
                 : nghttp2_session_server_new3(&c->session, cbs, c, opt,
                                               (nghttp2_mem *)&rpc__mem);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_option_del(opt);
    if (rv != 0)
        return CAIRN_ENOMEM;
    nghttp2_settings_entry iv[3];
    size_t n = 0;
    iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                       stream_window};
    if (c->is_client)
        iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
    else
        iv[n++] = (nghttp2_settings_entry){
            NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams};
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, n) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                              16 << 20) != 0) {
        nghttp2_session_del(c->session);
        c->session = NULL;
        return CAIRN_ENOMEM;
    }
    return 0;
}

/* ---- moving bytes between nghttp2 and the net connection ---- */

static void stage_write(struct rpc__conn *c)
{
    if (c->stage.len == 0)
        return;
    c->writes++;
    int rv = net_conn_write(c->net, c->stage.data, c->stage.len);
    buf_reset(&c->stage);
    if (rv != 0 && rv != CAIRN_ESHUTDOWN)
        rpc__conn_close(c, c->is_client ? RPC_UNAVAILABLE : RPC_CANCELLED,
                        true);
}

/* Returns false when the connection must close. */
static bool generate(struct rpc__conn *c)
{
    /* Bounded by the write room: each round adds at least one byte. */
    for (;;) {
        if (net_conn_write_room(c->net) < c->stage.len + RPC__WRITE_ROOM_MIN) {
            /* The peer is not reading: stop reading it too, until the
             * queue drains (drain callback). */
            net_conn_read_pause(c->net, true);
            break;
        }
        const uint8_t *data;
        ssize_t n = nghttp2_session_mem_send(c->session, &data);
        if (n < 0) {
            cairn_warnf(c->log, "rpc", "%s: send: %s", net_conn_peer(c->net),
                        nghttp2_strerror((int)n));
            return false;
        }
        if (n == 0)
            break;
        if (buf_append(&c->stage, data, (size_t)n) != 0)
            return false;
        if (c->stage.len >= RPC__STAGE_BYTES)
            stage_write(c);
        if (c->closing || c->dead)
            return true;
    }
    stage_write(c);
    return true;
}

void rpc__conn_flush(struct rpc__conn *c)
{
    if (c->dead || c->mode != RPC__H2 || c->session == NULL)
        return;
    if (c->in_session) {
        c->dirty = true;
        return;
    }
    if (!c->is_client && c->srv != NULL) {
        rpc__server_queue_flush(c);
        return;
    }
    if (c->ops->queue_flush != NULL) {
        c->ops->queue_flush(c);
        return;
    }
    rpc__conn_flush_now(c);
}

void rpc__conn_flush_now(struct rpc__conn *c)
{
    if (c->dead || c->mode != RPC__H2 || c->session == NULL)
        return;
    if (c->in_session) {
        c->dirty = true;
        return;
    }
    c->in_session = true;
    bool ok = true;
    /* Rounds repeat while callbacks (writable, done) queued more; bounded
     * so one connection cannot hold the loop. */
    for (int round = 0; round < 64 && ok && !c->dead; round++) {
        c->dirty = false;
        ok = generate(c);
        int told = 0;
        while (ok && c->writable_head && !c->dead && told++ < 4096) {
            struct rpc_call *call = c->writable_head;
            c->writable_head = call->wnext;
            call->writable_queued = false;
            call->wants_writable = false;
            if (!call->done && call->cbs && call->cbs->writable)
                call->cbs->writable(call->arg, call);
        }
        if (!c->dirty && c->writable_head == NULL)
            break;
    }
    c->in_session = false;
    if (c->dead || c->closing)
        return;
    if (!ok) {
        rpc__conn_close(c, c->is_client ? RPC_UNAVAILABLE : RPC_CANCELLED,
                        true);
        return;
    }
    if (!nghttp2_session_want_read(c->session) &&
        !nghttp2_session_want_write(c->session))
        rpc__conn_close(c, c->is_client ? RPC_UNAVAILABLE : RPC_CANCELLED,
                        false);
}

void rpc__keepalive_tick(struct rpc__conn *c, uint32_t interval_ms,
                         uint32_t timeout_ms)
{
    if (c->dead || c->closing || c->session == NULL)
        return;
    int code = c->is_client ? RPC_UNAVAILABLE : RPC_CANCELLED;
    if (c->ping_outstanding) {
        cairn_warnf(c->log, "rpc",
                    "%s: keepalive PING not answered within %u ms; closing",
                    net_conn_peer(c->net), timeout_ms);
        rpc__conn_close(c, code, true);
        return;
    }
    uint64_t since = uv_now(c->loop) - c->last_ack;
    if (since < interval_ms) {
        uv_timer_start(&c->timer, c->timer.timer_cb, interval_ms - since, 0);
        return;
    }
    if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0) {
        rpc__conn_close(c, code, true);
        return;
    }
    c->ping_outstanding = true;
    uv_timer_start(&c->timer, c->timer.timer_cb, timeout_ms, 0);
    rpc__conn_flush(c);
}

void rpc__conn_input(struct rpc__conn *c, const uint8_t *data, size_t len)
{
    if (c->dead || c->closing)
        return;
    c->in_session = true;
    ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
    c->in_session = false;
    if (rv < 0) {
        cairn_warnf(c->log, "rpc", "%s: %s; closing", net_conn_peer(c->net),
                    nghttp2_strerror((int)rv));
        nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR);
        rpc__conn_flush(c);
        rpc__conn_close(c, c->is_client ? RPC_UNAVAILABLE : RPC_CANCELLED,
                        false);
        return;
    }
    rpc__conn_flush(c);
}

void rpc__conn_close(struct rpc__conn *c, int end_code, bool hard)
{
    if (c->closing || c->dead)
        return;
    if (c->session && !c->in_session) {
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        c->in_session = true;
        generate(c);
        c->in_session = false;
    }
    c->closing = true;
    c->end_code = end_code;
    net_conn_close(c->net, !hard);
}

static void conn_net_read(void *arg, struct net_conn *nc, const uint8_t *d,
                          size_t n);

static void conn_net_drain(void *arg, struct net_conn *nc)
{
    struct rpc__conn *c = arg;
    if (c->dead || c->closing)
        return;
    if (c->mode == RPC__HTTP1) {
        rpc__server_http1_drain(c);
        return;
    }
    net_conn_read_pause(nc, false);
    rpc__conn_flush(c);
}

static void conn_net_closed(void *arg, struct net_conn *nc, int status)
{
    (void)nc;
    (void)status;
    struct rpc__conn *c = arg;
    c->dead = true;
    if (c->end_code == 0)
        c->end_code = c->is_client ? RPC_UNAVAILABLE : RPC_CANCELLED;
    /* Bounded by the number of calls; each ends and leaves the list. */
    while (c->calls)
        rpc__call_end(c->calls, c->end_code,
                      c->is_client ? "connection closed"
                                   : "client connection closed");
    if (c->session) {
        nghttp2_session_del(c->session);
        c->session = NULL;
    }
    buf_free(&c->stage);
    c->net = NULL;
    c->ops->destroyed(c);
}

const struct net_conn_cbs rpc__conn_net_cbs = {
    .read = conn_net_read,
    .drain = conn_net_drain,
    .closed = conn_net_closed,
};

static void conn_net_read(void *arg, struct net_conn *nc, const uint8_t *d,
                          size_t n)
{
    (void)nc;
    struct rpc__conn *c = arg;
    if (c->is_client)
        rpc__conn_input(c, d, n);
    else
        rpc__server_read(c, d, n);
}
