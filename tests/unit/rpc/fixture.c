/* The rpc tests' fixture: the test server's methods, client helpers and raw
 * HTTP/2 bytes. */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

/* ---- server methods ---- */

struct srv_state {
    struct fx *f;
    struct buf last;
    uint32_t count, size, sent;
    uint64_t bytes;
    int n;
};

static void st_start(void *arg, struct rpc_call *call)
{
    struct fx *f = arg;
    struct srv_state *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    st->f = f;
    f->srv_started++;
    rpc_call_set_user(call, st);
}

static void st_done(void *arg, struct rpc_call *call, int code, const char *msg)
{
    (void)msg;
    struct fx *f = arg;
    struct srv_state *st = rpc_call_user(call);
    f->srv_done++;
    f->srv_last_code = code;
    if (code >= 0 && code < 8)
        f->srv_done_code[code]++;
    for (size_t i = 0; i < f->n_held; i++)
        if (f->held[i] == call)
            f->held[i] = NULL;
    buf_free(&st->last);
    free(st);
}

/* Unary echo: answers the last message on half-close. */
static void echo_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                     size_t n)
{
    (void)arg;
    struct srv_state *st = rpc_call_user(call);
    buf_reset(&st->last);
    /* allocation faults (test_faults.c) reach the handlers too */
    if (buf_append(&st->last, d, n) != 0) {
        rpc_call_finish(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    st->n++;
}
static void echo_half(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct srv_state *st = rpc_call_user(call);
    if (st->n > 0 && rpc_call_send(call, st->last.data, st->last.len) != 0)
        rpc_call_finish(call, RPC_INTERNAL, "send failed");
    rpc_call_finish(call, RPC_OK, NULL);
}
static const struct rpc_call_cbs echo_cbs = {st_start, echo_msg, echo_half,
                                             NULL, st_done};

/* Server streaming: the request is {u32 count, u32 size}; messages carry
 * their index in their first 4 bytes. Sends until the queue is full, then
 * waits for writable. */
static void stream_pump(struct rpc_call *call)
{
    struct srv_state *st = rpc_call_user(call);
    uint8_t msg[65536];
    memset(msg, 0x5a, sizeof(msg));
    while (st->sent < st->count) {
        codec_put_u32(msg, st->sent);
        int rv = rpc_call_send(call, msg, st->size);
        if (rv == CAIRN_EFULL) {
            st->f->srv_efull++;
            return;
        }
        if (rv != 0) {
            rpc_call_finish(call, RPC_INTERNAL, "send failed");
            return;
        }
        st->sent++;
    }
    rpc_call_finish(call, RPC_OK, NULL);
}
static void stream_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                       size_t n)
{
    (void)arg;
    struct srv_state *st = rpc_call_user(call);
    assert_int_equal(n, 8);
    st->count = codec_get_u32(d);
    st->size = codec_get_u32(d + 4);
    assert_true(st->size >= 4 && st->size <= 65536);
    stream_pump(call);
}
static void stream_writable(void *arg, struct rpc_call *call)
{
    (void)arg;
    stream_pump(call);
}
static void stream_half(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct srv_state *st = rpc_call_user(call);
    if (st->count == 0 && st->sent == 0)
        rpc_call_finish(call, RPC_INVALID_ARGUMENT, "no request");
}
static const struct rpc_call_cbs stream_cbs = {
    st_start, stream_msg, stream_half, stream_writable, st_done};

/* Bidi: every message straight back; finish on half-close. */
static void bidi_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                     size_t n)
{
    (void)arg;
    if (rpc_call_send(call, d, n) != 0)
        rpc_call_finish(call, RPC_INTERNAL, "send failed");
}
static void finish_ok(void *arg, struct rpc_call *call)
{
    (void)arg;
    rpc_call_finish(call, RPC_OK, NULL);
}
static const struct rpc_call_cbs bidi_cbs = {st_start, bidi_msg, finish_ok,
                                             NULL, st_done};

/* Client streaming: counts, then answers {u32 count, u64 bytes}. */
static void count_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                      size_t n)
{
    (void)arg;
    (void)d;
    struct srv_state *st = rpc_call_user(call);
    st->n++;
    st->bytes += n;
}
static void count_half(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct srv_state *st = rpc_call_user(call);
    uint8_t out[12];
    codec_put_u32(out, (uint32_t)st->n);
    codec_put_u64(out + 4, st->bytes);
    if (rpc_call_send(call, out, sizeof(out)) != 0)
        rpc_call_finish(call, RPC_INTERNAL, "send failed");
    rpc_call_finish(call, RPC_OK, NULL);
}
static const struct rpc_call_cbs count_cbs = {st_start, count_msg, count_half,
                                              NULL, st_done};

/* Hold: keeps every call until the test lets go. */
static void hold_start(void *arg, struct rpc_call *call)
{
    struct fx *f = arg;
    st_start(arg, call);
    assert_true(f->n_held < FX_HELD_MAX);
    f->held[f->n_held++] = call;
    size_t live = rpc_server_call_count(f->srv);
    if (live > f->held_max)
        f->held_max = live;
}
static const struct rpc_call_cbs hold_cbs = {hold_start, NULL, NULL, NULL,
                                             st_done};

/* Fail: a status with a message that needs percent-encoding. */
static void fail_half(void *arg, struct rpc_call *call)
{
    (void)arg;
    rpc_call_finish(call, RPC_FAILED_PRECONDITION,
                    "etcdserver: 100% sure\nnot \xc3\xa9");
}
static const struct rpc_call_cbs fail_cbs = {st_start, NULL, fail_half, NULL,
                                             st_done};

/* Meta: answers with the request's "token" metadata value and the method
 * name. */
static void meta_half(void *arg, struct rpc_call *call)
{
    (void)arg;
    char out[256];
    const char *tok = rpc_call_metadata(call, "token");
    /* the peer is this test's own client, on loopback */
    assert_true(strncmp(rpc_call_peer(call), "127.0.0.1:", 10) == 0);
    int n = snprintf(out, sizeof(out), "%s %s", tok ? tok : "(none)",
                     rpc_call_method(call));
    if (rpc_call_send(call, out, (size_t)n) != 0)
        rpc_call_finish(call, RPC_INTERNAL, "send failed");
    rpc_call_finish(call, RPC_OK, NULL);
}
static const struct rpc_call_cbs meta_cbs = {st_start, NULL, meta_half, NULL,
                                             st_done};

/* First: finishes on the first message; counts any that still reach it. */
static void first_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                      size_t n)
{
    (void)d;
    (void)n;
    struct fx *f = arg;
    f->first_msgs++;
    rpc_call_finish(call, RPC_OK, NULL);
}
static void first_half(void *arg, struct rpc_call *call)
{
    (void)call;
    ((struct fx *)arg)->first_halves++;
}
static const struct rpc_call_cbs first_cbs = {st_start, first_msg, first_half,
                                              NULL, st_done};

#define FLOOD_TOTAL (20u << 20)

/* "/flood": 20 MiB in 64 KiB chunks ("/bigflood": 1 MiB ones), as fast
 * as the client reads. */
static void flood_pump(struct fx *f)
{
    static uint8_t chunk[1 << 20];
    while (f->flood && f->flood_sent < FLOOD_TOTAL) {
        memset(chunk, 'a' + (int)(f->flood_sent / f->flood_chunk) % 26,
               f->flood_chunk);
        int rv = rpc_http1_stream_write(f->flood, chunk, f->flood_chunk);
        if (rv == CAIRN_EFULL) {
            f->flood_efull++;
            return;
        }
        assert_int_equal(rv, 0);
        f->flood_sent += f->flood_chunk;
    }
    if (f->flood) {
        rpc_http1_stream_end(f->flood);
        f->flood = NULL;
    }
}

static void http1_writable(void *arg, struct rpc_http1_request *req)
{
    struct fx *f = arg;
    assert_ptr_equal(req, f->flood);
    flood_pump(f);
}

static void http1_request(void *arg, struct rpc_http1_request *req)
{
    struct fx *f = arg;
    f->http1_requests++;
    if (strcmp(req->path, "/stream") == 0) {
        assert_int_equal(rpc_http1_stream_begin(req, 200, "application/json"),
                         0);
        for (int i = 0; i < 3; i++) {
            char line[32];
            int n = snprintf(line, sizeof(line), "{\"n\":%d}\n", i);
            assert_int_equal(rpc_http1_stream_write(req, line, (size_t)n), 0);
        }
        f->http1_slow = req; /* the test ends it */
        return;
    }
    if (strcmp(req->path, "/flood") == 0 ||
        strcmp(req->path, "/bigflood") == 0) {
        f->flood_chunk = req->path[1] == 'b' ? 1u << 20 : 64u << 10;
        assert_int_equal(
            rpc_http1_stream_begin(req, 200, "application/octet-stream"), 0);
        f->flood = req;
        flood_pump(f);
        return;
    }
    if (strcmp(req->path, "/big") == 0) {
        /* larger than the connection's write queue */
        size_t n = 10u << 20;
        uint8_t *big = malloc(n);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
            big[i] = (uint8_t)('a' + i % 26);
        rpc_http1_respond(req, 200, "application/octet-stream", big, n);
        free(big);
        return;
    }
    if (strcmp(req->path, "/slow") == 0) {
        f->http1_slow = req; /* answered later by the test, or cancelled */
        return;
    }
    char body[256];
    const char *host = rpc_http1_header(req, "host");
    int n = snprintf(body, sizeof(body), "%s %s %zu:%.*s host=%s", req->method,
                     req->path, req->body_len, (int)req->body_len,
                     (const char *)req->body, host ? host : "(none)");
    rpc_http1_respond(req, strcmp(req->path, "/health") == 0 ? 200 : 404,
                      "text/plain", body, (size_t)n);
}
static void http1_cancel(void *arg, struct rpc_http1_request *req)
{
    struct fx *f = arg;
    if (f->http1_slow == req)
        f->http1_slow = NULL;
    if (f->flood == req)
        f->flood = NULL;
    f->http1_cancels++;
}

void fx_open(struct fx *f, const struct rpc_server_config *cfg, bool http1)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    const struct rpc_method methods[] = {
        {"/test.Echo/Unary", &echo_cbs, f},
        {"/test.Echo/ServerStream", &stream_cbs, f},
        {"/test.Echo/Bidi", &bidi_cbs, f},
        {"/test.Echo/ClientStream", &count_cbs, f},
        {"/test.Echo/Hold", &hold_cbs, f},
        {"/test.Echo/Fail", &fail_cbs, f},
        {"/test.Echo/Meta", &meta_cbs, f},
        {"/test.Echo/First", &first_cbs, f},
    };
    struct rpc_http1_handler h = {http1_request, http1_cancel, http1_writable,
                                  f};
    assert_int_equal(rpc_server_init(&f->srv, &f->loop, cfg, methods,
                                     sizeof(methods) / sizeof(methods[0]),
                                     http1 ? &h : NULL, NULL),
                     0);
    struct cairn_errmsg m;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &f->url, &m), 0);
    assert_int_equal(rpc_server_listen(f->srv, &f->url, &f->port, &m), 0);
    assert_true(f->port != 0);
    f->url.port = f->port;
}

/* ---- waiting ---- */

void fx_loop_close(struct fx *f)
{
    LOOP_DRAIN(&f->loop);
    assert_int_equal(ru_loop_close(&f->loop), 0);
}

static void handle_closed(uv_handle_t *h)
{
    *(int *)h->data = 1;
}

void fx_close_handle(struct fx *f, uv_handle_t *h)
{
    int closed = 0;
    h->data = &closed;
    uv_close(h, handle_closed);
    RUN_UNTIL(f, closed);
}

void fx_close(struct fx *f)
{
    rpc_server_close(f->srv);
    fx_loop_close(f);
}

struct connect_wait {
    int done;
    int status;
    struct rpc_client *cl;
};
static void on_connect(void *arg, int status, struct rpc_client *cl)
{
    struct connect_wait *w = arg;
    w->done = 1;
    w->status = status;
    w->cl = cl;
}

struct rpc_client *fx_connect(struct fx *f, const struct rpc_client_config *cfg)
{
    struct connect_wait w = {0, 0, NULL};
    assert_int_equal(
        rpc_client_connect(&f->loop, &f->url, cfg, NULL, &w, on_connect), 0);
    RUN_UNTIL(f, w.done);
    assert_int_equal(w.status, 0);
    return w.cl;
}

/* ---- client results ---- */

void result_init(struct result *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->last);
    r->in_order = true;
    r->code = -1;
}

void result_free(struct result *r)
{
    buf_free(&r->last);
}

static void res_msg(void *arg, struct rpc_call *call, const uint8_t *d,
                    size_t n)
{
    (void)call;
    struct result *r = arg;
    if (n >= 4 && codec_get_u32(d) != (uint32_t)r->n_msgs)
        r->in_order = false;
    r->n_msgs++;
    r->bytes += n;
    buf_reset(&r->last);
    if (buf_append(&r->last, d, n) != 0)
        r->in_order = false; /* an injected fault: the copy is lost */
}
static void res_done(void *arg, struct rpc_call *call, int code,
                     const char *msg)
{
    (void)call;
    struct result *r = arg;
    r->done++;
    r->code = code;
    snprintf(r->msg, sizeof(r->msg), "%s", msg);
}
const struct rpc_call_cbs result_cbs = {NULL, res_msg, NULL, NULL, res_done};

void fx_call(struct rpc_client *cl, const char *path, int64_t timeout_ms,
             struct result *r, const void *msg, size_t len, int n,
             bool close_send)
{
    assert_int_equal(
        rpc_client_call(cl, path, timeout_ms, NULL, &result_cbs, r, &r->call),
        0);
    for (int i = 0; i < n; i++)
        assert_int_equal(rpc_call_send(r->call, msg, len), 0);
    if (close_send)
        rpc_call_close_send(r->call);
}

/* ---- raw connections ---- */

static void raw_read(void *arg, struct net_conn *c, const uint8_t *d, size_t n)
{
    (void)c;
    struct raw *r = arg;
    assert_int_equal(buf_append(&r->got, d, n), 0);
}
static void raw_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    (void)status;
    struct raw *r = arg;
    r->closed++;
    r->conn = NULL;
}
static const struct net_conn_cbs raw_cbs = {raw_read, NULL, raw_closed};

static void raw_on_connect(void *arg, int status, struct net_conn *c)
{
    struct raw *r = arg;
    assert_int_equal(status, 0);
    r->connects++;
    r->conn = c;
    net_conn_start(c, &raw_cbs, r);
}

void raw_connect(struct fx *f, struct raw *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->got);
    assert_int_equal(net_connect(&f->loop, &f->url, NULL, r, raw_on_connect),
                     0);
    RUN_UNTIL(f, r->connects == 1);
}

void raw_send(struct raw *r, const void *p, size_t n)
{
    assert_non_null(r->conn);
    assert_int_equal(net_conn_write(r->conn, p, n), 0);
}

void h2_frame(struct buf *b, uint8_t type, uint8_t flags, uint32_t stream,
              const void *payload, size_t len)
{
    uint8_t h[9] = {(uint8_t)(len >> 16),
                    (uint8_t)(len >> 8),
                    (uint8_t)len,
                    type,
                    flags,
                    (uint8_t)(stream >> 24),
                    (uint8_t)(stream >> 16),
                    (uint8_t)(stream >> 8),
                    (uint8_t)stream};
    assert_int_equal(buf_append(b, h, 9), 0);
    if (len)
        assert_int_equal(buf_append(b, payload, len), 0);
}

/* HPACK "literal header field without indexing, new name" (RFC 7541 6.2.2),
 * lengths below 127 and no Huffman coding. */
static void hpack_lit(struct buf *b, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);
    assert_true(nl < 127 && vl < 127);
    buf_append_u8(b, 0x00);
    buf_append_u8(b, (uint8_t)nl);
    buf_append(b, name, nl);
    buf_append_u8(b, (uint8_t)vl);
    buf_append(b, value, vl);
}

void h2_request_headers(struct buf *b, uint32_t stream, const char *path,
                        const char *timeout, bool end_stream)
{
    struct buf blk = BUF_INIT;
    hpack_lit(&blk, ":method", "POST");
    hpack_lit(&blk, ":scheme", "http");
    hpack_lit(&blk, ":path", path);
    hpack_lit(&blk, ":authority", "test");
    hpack_lit(&blk, "content-type", "application/grpc");
    hpack_lit(&blk, "te", "trailers");
    if (timeout)
        hpack_lit(&blk, "grpc-timeout", timeout);
    h2_frame(b, NGHTTP2_HEADERS,
             NGHTTP2_FLAG_END_HEADERS |
                 (end_stream ? NGHTTP2_FLAG_END_STREAM : 0),
             stream, blk.data, blk.len);
    buf_free(&blk);
}

int h2_scan(const struct buf *got, uint32_t stream, bool *goaway,
            bool *ping_ack, uint32_t *data_bytes)
{
    nghttp2_hd_inflater *inf;
    assert_int_equal(nghttp2_hd_inflate_new(&inf), 0);
    int status = -1;
    *goaway = false;
    *ping_ack = false;
    *data_bytes = 0;
    size_t off = 0;
    while (off + 9 <= got->len) {
        const uint8_t *h = got->data + off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        uint8_t type = h[3], flags = h[4];
        uint32_t id = (uint32_t)(h[5] & 0x7f) << 24 | (uint32_t)h[6] << 16 |
                      (uint32_t)h[7] << 8 | h[8];
        if (off + 9 + len > got->len)
            break;
        const uint8_t *p = h + 9;
        if (type == NGHTTP2_GOAWAY)
            *goaway = true;
        if (type == NGHTTP2_PING && (flags & NGHTTP2_FLAG_ACK))
            *ping_ack = true;
        if (type == NGHTTP2_DATA && id == stream)
            *data_bytes += (uint32_t)len;
        if (type == NGHTTP2_HEADERS) {
            /* Every header block must go through the decoder, in order. */
            size_t left = len;
            for (int guard = 0; guard < 1000; guard++) {
                nghttp2_nv nv;
                int fl = 0;
                ssize_t k = nghttp2_hd_inflate_hd2(inf, &nv, &fl, p, left, 1);
                assert_true(k >= 0);
                p += k;
                left -= (size_t)k;
                if (fl & NGHTTP2_HD_INFLATE_EMIT) {
                    if (id == stream && nv.namelen == 11 &&
                        memcmp(nv.name, "grpc-status", 11) == 0) {
                        status = 0;
                        for (size_t i = 0; i < nv.valuelen; i++)
                            status = status * 10 + (nv.value[i] - '0');
                    }
                }
                if (fl & NGHTTP2_HD_INFLATE_FINAL) {
                    nghttp2_hd_inflate_end_headers(inf);
                    break;
                }
                if ((fl & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0)
                    break;
            }
        }
        off += 9 + len;
    }
    nghttp2_hd_inflate_del(inf);
    return status;
}
