/* v2: etcd 3.4's v2 HTTP API on the client port behind --enable-v2
 * (etcdserver/api/v2http): /v2/keys (GET with wait, PUT, POST, DELETE;
 * form-encoded bodies and query parameters parsed as Go's ParseForm),
 * /v2/members, /v2/machines and /v2/stats. Requests go to the member's
 * v2 store through the backend; answers carry etcd's headers. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "api/gateway.h"

#define KEYS_PREFIX "/v2/keys"
/* etcd 3.4 answers every v2 request with its default CORS headers. */
#define CORS                                                                \
    "Access-Control-Allow-Headers: accept, content-type, authorization\r\n" \
    "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"     \
    "Access-Control-Allow-Origin: *\r\n"

/* A v2 request waiting on the member (a write in Raft, or a watch). */
struct api__v2 {
    struct api__v2 *next;
    struct api *api;
    struct rpc_http1_request *req; /* NULL once answered or cancelled */
    bool pending;                  /* a backend completion is owed */
    bool head;                     /* HEAD: no body */
    bool no_value;                 /* noValueOnSuccess=true */
    void *waiter;                  /* a watch waiting for the next apply */
    /* a watch */
    char path[V2_PATH_MAX + 1];
    size_t path_len;
    bool recursive;
    bool live;      /* waiting: later events are notified as etcd's live ones */
    bool stream;    /* stream=true: every event, until the client leaves */
    bool streaming; /* the stream's headers are sent */
    uint64_t since, start_index;
    uint64_t raft_index; /* the applied index when the watch began */
    struct v2_req q;     /* a keys request's flags (its pointers cleared) */
};

static void count(struct api *a, const struct v2_req *q, int status);

/* ---- forms (Go's url.ParseQuery, as ParseForm uses it) ---- */

struct form_kv {
    char *k, *v;
    size_t kl, vl;
};
struct form {
    struct form_kv *kv;
    size_t n, cap;
    char err[64]; /* Go's error text when a value does not decode */
};

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s (plus as space when form) into a new string; NULL
 * with f->err set when an escape is bad, or on no memory. */
static char *unescape(const char *s, size_t n, bool form, size_t *out_len,
                      char *err, size_t err_size)
{
    char *o = cairn_malloc(n + 1);
    if (o == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
                o[k++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
                i += 2;
                continue;
            }
            size_t el = n - i < 3 ? n - i : 3;
            snprintf(err, err_size, "invalid URL escape \"%.*s\"", (int)el,
                     s + i);
            cairn_free(o);
            return NULL;
        }
        o[k++] = form && s[i] == '+' ? ' ' : s[i];
    }
    o[k] = 0;
    *out_len = k;
    return o;
}

static void form_free(struct form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        cairn_free(f->kv[i].k);
        cairn_free(f->kv[i].v);
    }
    cairn_free(f->kv);
}

/* Adds the pairs of a query string or form body; 0, CAIRN_EINVAL (f->err
 * says why), CAIRN_ENOMEM. */
static int form_parse(struct form *f, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        while (i < n && s[i] != '&' && s[i] != ';')
            i++;
        size_t end = i;
        if (i < n)
            i++;
        if (end == st)
            continue;
        const char *eq = memchr(s + st, '=', end - st);
        size_t kl = eq ? (size_t)(eq - (s + st)) : end - st;
        const char *vs = eq ? eq + 1 : s + end;
        size_t vl = (size_t)(s + end - vs);
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 8;
            struct form_kv *kv = cairn_realloc(f->kv, cap * sizeof(*kv));
            if (kv == NULL)
                return CAIRN_ENOMEM;
            f->kv = kv;
            f->cap = cap;
        }
        struct form_kv *p = &f->kv[f->n];
        p->k = unescape(s + st, kl, true, &p->kl, f->err, sizeof f->err);
        if (p->k == NULL)
            return f->err[0] ? CAIRN_EINVAL : CAIRN_ENOMEM;
        p->v = unescape(vs, vl, true, &p->vl, f->err, sizeof f->err);
        if (p->v == NULL) {
            cairn_free(p->k);
            return f->err[0] ? CAIRN_EINVAL : CAIRN_ENOMEM;
        }
        f->n++;
    }
    return 0;
}

static const struct form_kv *form_get(const struct form *f, const char *k)
{
    size_t kl = strlen(k);
    for (size_t i = 0; i < f->n; i++)
        if (f->kv[i].kl == kl && memcmp(f->kv[i].k, k, kl) == 0)
            return &f->kv[i];
    return NULL;
}

/* strconv.ParseBool on the first value; absent: false. -1: bad. */
static int form_bool(const struct form *f, const char *k, bool *out)
{
    *out = false;
    const struct form_kv *p = form_get(f, k);
    if (p == NULL)
        return 0;
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const fl[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(p->v, t[i]) == 0 && p->vl == strlen(t[i])) {
            *out = true;
            return 0;
        }
        if (strcmp(p->v, fl[i]) == 0 && p->vl == strlen(fl[i]))
            return 0;
    }
    return -1;
}

/* strconv.ParseUint(v, 10, 64) on the first value; absent: 0. */
static int form_u64(const struct form *f, const char *k, uint64_t *out)
{
    *out = 0;
    const struct form_kv *p = form_get(f, k);
    if (p == NULL)
        return 0;
    if (p->vl == 0 || p->vl > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < p->vl; i++) {
        if (p->v[i] < '0' || p->v[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(p->v[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- answers ---- */

static void v2_unlink(struct api *a, struct api__v2 *r)
{
    for (struct api__v2 **pp = &a->v2; *pp != NULL; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

/* Answered or gone: forget the request (freed once nothing is owed). */
static void v2_end(struct api__v2 *r)
{
    struct api *a = r->api;
    if (r->waiter != NULL) {
        a->be.v2_wait_cancel(a->be.arg, r->waiter);
        r->waiter = NULL;
    }
    if (r->req != NULL) {
        v2_unlink(a, r);
        r->req = NULL;
        api__unref(a);
    }
    if (!r->pending)
        cairn_free(r);
}

static void cluster_header(struct api *a, struct buf *h, uint64_t *term)
{
    struct api_header ah = {0};
    if (a->be.watch_header != NULL)
        a->be.watch_header(a->be.arg, &ah);
    char line[64];
    buf_append(h, CORS, strlen(CORS));
    int k = snprintf(line, sizeof line, "X-Etcd-Cluster-Id: %" PRIx64 "\r\n",
                     ah.cluster_id);
    buf_append(h, line, (size_t)k);
    if (term != NULL)
        *term = ah.raft_term;
}

/* Sends status and JSON body with etcd's index headers (raft_index 0:
 * left out). */
static void index_headers(struct api *a, struct buf *h, uint64_t etcd_index,
                          uint64_t raft_idx, uint64_t term)
{
    uint64_t t = 0;
    cluster_header(a, h, &t);
    if (term == 0)
        term = t;
    char line[160];
    int k = snprintf(line, sizeof line, "X-Etcd-Index: %" PRIu64 "\r\n",
                     etcd_index);
    buf_append(h, line, (size_t)k);
    if (raft_idx != 0) {
        k = snprintf(line, sizeof line, "X-Raft-Index: %" PRIu64 "\r\n",
                     raft_idx);
        buf_append(h, line, (size_t)k);
    }
    k = snprintf(line, sizeof line, "X-Raft-Term: %" PRIu64 "\r\n", term);
    buf_append(h, line, (size_t)k);
    buf_append_u8(h, 0);
}

static void v2_answer(struct api__v2 *r, int status, const char *body,
                      size_t len, uint64_t etcd_index, uint64_t raft_idx,
                      uint64_t term)
{
    struct buf h = BUF_INIT;
    index_headers(r->api, &h, etcd_index, raft_idx, term);
    rpc_http1_respond_hdrs(r->req, status, "application/json",
                           h.data != NULL ? (const char *)h.data : "", body,
                           r->head ? 0 : len);
    buf_free(&h);
    v2_end(r);
}

/* A request error (v2error with index 0, as etcd's request errors). */
static void v2_error_now(struct api *a, struct rpc_http1_request *req, int code,
                         const char *cause)
{
    struct buf b = BUF_INIT, h = BUF_INIT;
    int st = v2_error_json(&b, code, cause, strlen(cause), 0);
    cluster_header(a, &h, NULL);
    buf_append(&h, "X-Etcd-Index: 0\r\n", 17);
    buf_append_u8(&h, 0);
    if (st < 0)
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
    else
        rpc_http1_respond_hdrs(req, st, "application/json",
                               (const char *)h.data, b.data, b.len);
    buf_free(&b);
    buf_free(&h);
}

/* A member error (no leader, timeout...): etcd's writeKeyError wraps it
 * as "Raft Internal Error" with the error's text as cause, index 0. */
static void v2_fail(struct api__v2 *r, int err)
{
    struct api_status st = api_status_from_err(err);
    struct buf b = BUF_INIT;
    int s = v2_error_json(&b, V2_E_RAFT_INTERNAL, st.message,
                          strlen(st.message), 0);
    v2_answer(r, s < 0 ? 500 : s, (const char *)b.data, b.len, 0, 0, 0);
    buf_free(&b);
}

static bool v2_completed(struct api__v2 *r)
{
    CAIRN_ASSERT(r->pending);
    r->pending = false;
    if (r->req == NULL) {
        cairn_free(r);
        return false;
    }
    return true;
}

static void keys_done(void *ctx, const struct node_result *res)
{
    struct api__v2 *r = ctx;
    if (!v2_completed(r))
        return;
    if (res->err != 0) {
        v2_fail(r, res->err);
        return;
    }
    const struct v2_result *v = &res->u.v2;
    count(r->api, &r->q, v->status);
    if (r->no_value && v->status < 300) {
        /* etcd drops node and prevNode of a successful set, create,
         * update or compareAndSwap: {"action":"set"} */
        static const char *const acts[] = {"set", "create", "update",
                                           "compareAndSwap"};
        for (size_t i = 0; i < 4; i++) {
            char body[48];
            int k = snprintf(body, sizeof body, "{\"action\":\"%s\"", acts[i]);
            if (v->body_len > (size_t)k &&
                memcmp(v->body, body, (size_t)k) == 0 && v->body[k] == ',') {
                k += snprintf(body + k, sizeof body - (size_t)k, "}\n");
                v2_answer(r, v->status, body, (size_t)k, v->etcd_index,
                          v->raft_index, res->raft_term);
                return;
            }
        }
    }
    v2_answer(r, v->status, v->body, v->body_len, v->etcd_index, v->raft_index,
              res->raft_term);
}

/* ---- watches ---- */

static void watch_wake(void *ctx);

/* A watch that cannot go on: a stream is ended (etcd closes a watcher
 * it cannot keep up with), a single answer says why. */
static void watch_fail(struct api__v2 *r, int err)
{
    if (!r->streaming) {
        v2_fail(r, err);
        return;
    }
    rpc_http1_stream_end(r->req);
    v2_end(r);
}

/* stream=true: etcd's headers at once (its handleKeyWatch flushes them
 * before any event), then one chunk per event. false: ended. */
static bool stream_event(struct api__v2 *r, const struct buf *ev)
{
    int rc = 0;
    if (!r->streaming) {
        struct buf h = BUF_INIT;
        index_headers(r->api, &h, r->start_index, r->raft_index, 0);
        rc = h.data != NULL
                 ? rpc_http1_stream_begin_hdrs(r->req, 200, "application/json",
                                               (const char *)h.data)
                 : CAIRN_ENOMEM;
        r->streaming = true;
        buf_free(&h);
    }
    if (rc == 0 && ev != NULL && ev->len > 0)
        rc = rpc_http1_stream_write(r->req, ev->data, ev->len);
    if (rc != 0)
        watch_fail(r, rc);
    return rc == 0;
}

/* etcd's watch: the first matching event from the history, else a wait
 * for one notified live; a stream goes on with every live one. */
static void watch_scan(struct api__v2 *r)
{
    struct api *a = r->api;
    for (;;) {
        struct buf out = BUF_INIT;
        struct v2_scan_pos pos = {0};
        int rc = a->be.v2_scan(a->be.arg, r->path, r->path_len, r->recursive,
                               r->live, r->since, &out, &pos);
        if (r->start_index == 0) {
            /* etcd writes the watch's headers when it registers it */
            r->start_index = pos.index;
            r->raft_index = pos.raft_index;
        }
        if (rc == CAIRN_ECOMPACTED && !r->streaming) {
            v2_answer(r, 400, (const char *)out.data, out.len, pos.index, 0, 0);
        } else if (rc != 0 && rc != CAIRN_ENOTFOUND) {
            watch_fail(r, rc);
        } else if (rc == 0 && !r->stream) {
            v2_answer(r, 200, (const char *)out.data, out.len, r->start_index,
                      r->raft_index, 0);
        } else if (r->stream && !stream_event(r, rc == 0 ? &out : NULL)) {
            /* ended */
        } else if (rc == 0 && !r->live) {
            /* etcd's watcherHub.watch returns a history hit before it
             * registers the watcher: the stream stays open and silent */
        } else if (rc == 0) {
            r->since = pos.found + 1; /* the next live one, if any yet */
            buf_free(&out);
            continue;
        } else {
            /* etcd registers the watcher: what comes next is notified
             * live, from the next index (or the asked one, if later) */
            r->live = true;
            if (r->since <= pos.index)
                r->since = pos.index + 1;
            rc = a->be.v2_wait(a->be.arg, r, watch_wake, &r->waiter);
            if (rc != 0)
                watch_fail(r, rc);
        }
        buf_free(&out);
        return;
    }
}

static void watch_wake(void *ctx)
{
    struct api__v2 *r = ctx;
    r->waiter = NULL; /* the server freed it */
    if (r->req != NULL)
        watch_scan(r);
}

/* ---- /v2/keys ---- */

static struct api__v2 *v2_new(struct api *a, struct rpc_http1_request *req)
{
    struct api__v2 *r = cairn_calloc(1, sizeof(*r));
    if (r == NULL) {
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
        return NULL;
    }
    r->api = a;
    r->req = req;
    r->head = strcmp(req->method, "HEAD") == 0;
    r->next = a->v2;
    a->v2 = r;
    a->refs++;
    return r;
}

/* parseKeyRequest's checks, in its order; 0 or the error sent. */
static int parse_flags(struct api *a, struct rpc_http1_request *req,
                       const struct form *f, struct v2_req *q, bool *wait,
                       bool *stream, uint64_t *wait_index, bool *no_value)
{
    static const struct {
        const char *name;
        const char *msg;
    } bools[] = {
        {"recursive", "invalid value for \"recursive\""},
        {"sorted", "invalid value for \"sorted\""},
        {"wait", "invalid value for \"wait\""},
        {"dir", "invalid value for \"dir\""},
        {"quorum", "invalid value for \"quorum\""},
        {"stream", "invalid value for \"stream\""},
    };
    if (form_u64(f, "prevIndex", &q->prev_index) != 0) {
        v2_error_now(a, req, V2_E_INDEX_NAN, "invalid value for \"prevIndex\"");
        return -1;
    }
    if (form_u64(f, "waitIndex", wait_index) != 0) {
        v2_error_now(a, req, V2_E_INDEX_NAN, "invalid value for \"waitIndex\"");
        return -1;
    }
    bool v[6];
    for (size_t i = 0; i < 6; i++)
        if (form_bool(f, bools[i].name, &v[i]) != 0) {
            v2_error_now(a, req, V2_E_INVALID_FIELD, bools[i].msg);
            return -1;
        }
    q->recursive = v[0];
    q->sorted = v[1];
    *wait = v[2];
    q->dir = v[3];
    q->quorum = v[4];
    *stream = v[5];
    if (*wait && strcmp(req->method, "GET") != 0) {
        v2_error_now(a, req, V2_E_INVALID_FIELD,
                     "\"wait\" can only be used with GET requests");
        return -1;
    }
    const struct form_kv *pv = form_get(f, "prevValue");
    if (pv != NULL && pv->vl == 0) {
        v2_error_now(a, req, V2_E_PREV_VALUE_REQUIRED,
                     "\"prevValue\" cannot be empty");
        return -1;
    }
    if (pv != NULL) {
        q->prev_value = (const uint8_t *)pv->v;
        q->prev_value_len = pv->vl;
    }
    if (form_bool(f, "noValueOnSuccess", no_value) != 0) {
        v2_error_now(a, req, V2_E_INVALID_FIELD,
                     "invalid value for \"noValueOnSuccess\"");
        return -1;
    }
    return 0;
}

static int parse_ttl(struct api *a, struct rpc_http1_request *req,
                     const struct form *f, struct v2_req *q)
{
    const struct form_kv *ttl = form_get(f, "ttl");
    bool has_ttl = ttl != NULL && ttl->vl > 0;
    uint64_t secs = 0;
    if (has_ttl && form_u64(f, "ttl", &secs) != 0) {
        v2_error_now(a, req, V2_E_TTL_NAN, "invalid value for \"ttl\"");
        return -1;
    }
    if (form_get(f, "prevExist") != NULL) {
        bool pe;
        if (form_bool(f, "prevExist", &pe) != 0) {
            v2_error_now(a, req, V2_E_INVALID_FIELD,
                         "invalid value for prevExist");
            return -1;
        }
        q->prev_exist = pe ? V2_PREV_TRUE : V2_PREV_FALSE;
    }
    if (form_get(f, "refresh") != NULL) {
        if (form_bool(f, "refresh", &q->refresh) != 0) {
            v2_error_now(a, req, V2_E_INVALID_FIELD,
                         "invalid value for refresh");
            return -1;
        }
        const struct form_kv *val = form_get(f, "value");
        if (q->refresh && val != NULL && val->vl > 0) {
            v2_error_now(a, req, V2_E_REFRESH_VALUE,
                         "A value was provided on a refresh");
            return -1;
        }
        if (q->refresh && !has_ttl) {
            v2_error_now(a, req, V2_E_REFRESH_TTL_REQUIRED, "No TTL value set");
            return -1;
        }
    }
    if (has_ttl) {
        /* Go's time.Duration overflows past ~292 years: refuse those */
        if (secs > (uint64_t)INT64_MAX / 1000000000u / 2) {
            v2_error_now(a, req, V2_E_TTL_NAN, "invalid value for \"ttl\"");
            return -1;
        }
        q->expiration_ns = q->now_ns + (int64_t)secs * 1000000000;
    }
    return 0;
}

/* The request's form: the body first (PUT and POST, form-encoded), then
 * the query, as Go's ParseForm orders r.Form. */
static int read_form(struct rpc_http1_request *req, struct form *f)
{
    int rv = 0;
    bool body = strcmp(req->method, "PUT") == 0 ||
                strcmp(req->method, "POST") == 0 ||
                strcmp(req->method, "PATCH") == 0;
    const char *ct = rpc_http1_header(req, "content-type");
    if (body && ct != NULL &&
        strncasecmp(ct, "application/x-www-form-urlencoded", 33) == 0)
        rv = form_parse(f, (const char *)req->body, req->body_len);
    const char *qs = strchr(req->path, '?');
    if (rv == 0 && qs != NULL)
        rv = form_parse(f, qs + 1, strlen(qs + 1));
    return rv;
}

static void keys_request(struct api *a, struct rpc_http1_request *req)
{
    const char *m = req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    if (!get && strcmp(m, "PUT") != 0 && strcmp(m, "POST") != 0 &&
        strcmp(m, "DELETE") != 0) {
        rpc_http1_respond_hdrs(req, 405, "text/plain; charset=utf-8",
                               CORS "Allow: HEAD,GET,PUT,POST,DELETE\r\n"
                                    "X-Content-Type-Options: nosniff\r\n",
                               "Method Not Allowed\n", 19);
        return;
    }
    struct form f = {0};
    int rv = read_form(req, &f);
    if (rv != 0) {
        if (rv == CAIRN_EINVAL)
            v2_error_now(a, req, V2_E_INVALID_FORM, f.err);
        else
            rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                              "out of memory", 13);
        form_free(&f);
        return;
    }
    /* the key: the URL's path past /v2/keys, unescaped and cleaned */
    size_t plen = strcspn(req->path, "?");
    size_t klen;
    char err[64] = "";
    char *raw =
        unescape(req->path + strlen(KEYS_PREFIX), plen - strlen(KEYS_PREFIX),
                 false, &klen, err, sizeof err);
    char *key = raw != NULL ? cairn_malloc(klen + 2) : NULL;
    struct v2_req q = {0};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    q.now_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    bool wait = false, stream = false, no_value = false;
    uint64_t wait_index = 0;
    if (key == NULL) {
        rpc_http1_respond(req, 400, "text/plain; charset=utf-8",
                          "400 Bad Request", 15);
        goto out;
    }
    q.path_len = v2_path_clean(raw, klen, key);
    q.path = (const uint8_t *)key;
    if (parse_flags(a, req, &f, &q, &wait, &stream, &wait_index, &no_value) !=
            0 ||
        parse_ttl(a, req, &f, &q) != 0)
        goto out;
    if (q.path_len > V2_PATH_MAX || memchr(key, 0, q.path_len) != NULL) {
        /* LMDB's key limit: etcd has none, so say plainly what failed */
        v2_error_now(a, req, V2_E_INVALID_FIELD, "key too long or holds NUL");
        goto out;
    }
    const struct form_kv *val = form_get(&f, "value");
    if (val != NULL) {
        q.value = (const uint8_t *)val->v;
        q.value_len = val->vl;
    }
    struct api__v2 *r = v2_new(a, req);
    if (r == NULL)
        goto out;
    if (get && wait) {
        memcpy(r->path, key, q.path_len);
        r->path_len = q.path_len;
        r->recursive = q.recursive;
        r->stream = stream;
        r->since = wait_index;
        watch_scan(r);
        goto out;
    }
    q.op = get                      ? V2_OP_GET
           : strcmp(m, "PUT") == 0  ? V2_OP_PUT
           : strcmp(m, "POST") == 0 ? V2_OP_POST
                                    : V2_OP_DELETE;
    r->q = q;
    r->q.path = r->q.value = r->q.prev_value = NULL; /* freed below */
    r->no_value = no_value;
    r->pending = true;
    rv = a->be.v2(a->be.arg, &q, r, keys_done);
    if (rv != 0) {
        r->pending = false;
        v2_fail(r, rv);
    }
out:
    cairn_free(raw);
    cairn_free(key);
    form_free(&f);
}

/* ---- /v2/members, /v2/machines ---- */

enum mkind { MK_MEMBERS, MK_MACHINES, MK_LEADER, MK_SELF, MK_LSTATS };

/* A members, machines, leader or stats request: the member's status
 * first where the leader matters, then the member list. */
struct members_req {
    struct api__v2 base; /* first: freed as one */
    enum mkind kind;
    bool have_status;
    struct node_status st;
};

static int json_urls(struct buf *b, const char urls[][NODE_URL_MAX], uint32_t n)
{
    int rv = buf_append_u8(b, '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0)
            rv |= buf_append_u8(b, ',');
        rv |= v2_json_string(b, urls[i], strlen(urls[i]));
    }
    rv |= buf_append_u8(b, ']');
    return rv;
}

static int url_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* httptypes.Member */
static int json_member(struct buf *b, const struct node_member *m)
{
    char id[48];
    int k = snprintf(id, sizeof id, "{\"id\":\"%" PRIx64 "\",\"name\":", m->id);
    int rv = buf_append(b, id, (size_t)k);
    rv |= v2_json_string(b, m->name, strlen(m->name));
    rv |= buf_append(b, ",\"peerURLs\":", 12);
    rv |= json_urls(b, m->peer_urls, m->n_peer_urls);
    rv |= buf_append(b, ",\"clientURLs\":", 14);
    rv |= json_urls(b, m->client_urls, m->n_client_urls);
    rv |= buf_append_u8(b, '}');
    return rv;
}

static void machines_body(const struct node_member *l, size_t n, struct buf *b)
{
    /* etcd's machinesHandler: every client URL, sorted, ", " */
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += l[i].n_client_urls;
    const char **urls = cairn_calloc(total + 1, sizeof(*urls));
    if (urls == NULL)
        return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < l[i].n_client_urls; j++)
            urls[k++] = l[i].client_urls[j];
    qsort(urls, k, sizeof(*urls), url_cmp);
    for (size_t i = 0; i < k; i++) {
        if (i > 0)
            buf_append(b, ", ", 2);
        buf_append(b, urls[i], strlen(urls[i]));
    }
    cairn_free(urls);
}

static void time_now(struct buf *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char t[48];
    size_t k = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    k += (size_t)snprintf(t + k, sizeof t - k, ".%09ldZ", ts.tv_nsec);
    buf_append(b, t, k);
}

/* Go's time.Duration.String() at millisecond precision ("1.5s",
 * "2m3.004s", "1h0m0s", "250ms"). */
static void go_duration(uint64_t ms, char *out, size_t size)
{
    if (ms < 1000) {
        snprintf(out, size, "%" PRIu64 "ms", ms);
        return;
    }
    uint64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60,
             f = ms % 1000;
    char sec[32];
    int k = snprintf(sec, sizeof sec, "%" PRIu64 ".%03" PRIu64, s, f);
    while (k > 0 && sec[k - 1] == '0')
        sec[--k] = 0;
    if (k > 0 && sec[k - 1] == '.')
        sec[--k] = 0;
    if (h > 0)
        snprintf(out, size, "%" PRIu64 "h%" PRIu64 "m%ss", h, m, sec);
    else if (m > 0)
        snprintf(out, size, "%" PRIu64 "m%ss", m, sec);
    else
        snprintf(out, size, "%ss", sec);
}

/* etcd's ServerStats: this member, its raft state and its leader. The
 * start times are when this API opened (cairn keeps no leader start). */
static void self_body(struct api *a, const struct members_req *mr,
                      const struct node_member *l, size_t n, struct buf *b)
{
    const char *name = "";
    for (size_t i = 0; i < n; i++)
        if (l[i].id == mr->st.member_id)
            name = l[i].name;
    bool lead = mr->st.leader != 0 && mr->st.leader == mr->st.member_id;
    buf_append(b, "{\"name\":", 8);
    v2_json_string(b, name, strlen(name));
    char t[160];
    int k = snprintf(t, sizeof t,
                     ",\"id\":\"%" PRIx64 "\",\"state\":\"%s\","
                     "\"startTime\":\"",
                     mr->st.member_id,
                     lead                 ? "StateLeader"
                     : mr->st.leader != 0 ? "StateFollower"
                                          : "StateCandidate");
    buf_append(b, t, (size_t)k);
    buf_append(b, a->v2_start, strlen(a->v2_start));
    char up[96];
    go_duration(uv_now(a->loop) - a->v2_start_ms, up, sizeof up);
    k = snprintf(t, sizeof t,
                 "\",\"leaderInfo\":{\"leader\":\"%" PRIx64 "\",\"uptime\":"
                 "\"%s\",\"startTime\":\"",
                 mr->st.leader, up);
    buf_append(b, t, (size_t)k);
    buf_append(b, a->v2_start, strlen(a->v2_start));
    static const char tail[] =
        "\"},\"recvAppendRequestCnt\":0,\"sendAppendRequestCnt\":0}";
    buf_append(b, tail, sizeof tail - 1);
}

static void http_error(struct api *a, struct rpc_http1_request *req, int status,
                       const char *msg);

static void members_done(void *ctx, const struct node_result *res)
{
    struct members_req *mr = ctx;
    struct api__v2 *r = &mr->base;
    if (!v2_completed(r))
        return;
    if (res->err != 0) {
        v2_fail(r, res->err);
        return;
    }
    struct api *a = r->api;
    if (res->type == NODE_REQ_STATUS) {
        mr->have_status = true;
        mr->st = res->u.status;
        if (mr->kind == MK_LSTATS) {
            bool lead = mr->st.leader != 0 && mr->st.leader == mr->st.member_id;
            char body[96];
            int k =
                lead ? snprintf(body, sizeof body,
                                "{\"leader\":\"%" PRIx64 "\",\"followers\":{}}",
                                mr->st.member_id)
                     : snprintf(body, sizeof body,
                                "{\"message\":\"not current leader\"}");
            rpc_http1_respond_hdrs(r->req, lead ? 200 : 403, "application/json",
                                   CORS, body, r->head ? 0 : (size_t)k);
            v2_end(r);
            return;
        }
        r->pending = true;
        int rv = a->be.member_list(a->be.arg, mr, members_done);
        if (rv != 0) {
            r->pending = false;
            v2_fail(r, rv);
        }
        return;
    }
    size_t n = res->u.members.n;
    const struct node_member *l = res->u.members.list;
    struct buf b = BUF_INIT, h = BUF_INIT;
    int status = 200;
    const char *type = "application/json";
    if (mr->kind == MK_MACHINES) {
        machines_body(l, n, &b);
        type = "text/plain; charset=utf-8";
        buf_append(&h, CORS, strlen(CORS));
    } else if (mr->kind == MK_SELF) {
        self_body(a, mr, l, n, &b);
        buf_append(&h, CORS, strlen(CORS));
    } else if (mr->kind == MK_LEADER) {
        cluster_header(a, &h, NULL);
        const struct node_member *lm = NULL;
        for (size_t i = 0; i < n; i++)
            if (l[i].id == mr->st.leader)
                lm = &l[i];
        if (lm == NULL) {
            /* etcd: an HTTPError, {"message":"During election"} */
            buf_free(&h);
            http_error(a, r->req, 503, "During election");
            v2_end(r);
            return;
        }
        json_member(&b, lm);
        buf_append_u8(&b, '\n');
    } else {
        cluster_header(a, &h, NULL);
        buf_append(&b, "{\"members\":[", 12);
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                buf_append_u8(&b, ',');
            json_member(&b, &l[i]);
        }
        buf_append(&b, "]}\n", 3);
    }
    buf_append_u8(&h, 0);
    rpc_http1_respond_hdrs(r->req, status, type, (const char *)h.data, b.data,
                           r->head ? 0 : b.len);
    buf_free(&h);
    buf_free(&b);
    v2_end(r);
}

static void members_request(struct api *a, struct rpc_http1_request *req,
                            enum mkind kind)
{
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        rpc_http1_respond_hdrs(req, 405, "text/plain; charset=utf-8",
                               CORS "Allow: GET,HEAD\r\n"
                                    "X-Content-Type-Options: nosniff\r\n",
                               "Method Not Allowed\n", 19);
        return;
    }
    struct members_req *mr = cairn_calloc(1, sizeof(*mr));
    if (mr == NULL) {
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
        return;
    }
    struct api__v2 *r = &mr->base;
    mr->kind = kind;
    r->api = a;
    r->req = req;
    r->head = strcmp(req->method, "HEAD") == 0;
    r->next = a->v2;
    a->v2 = r;
    a->refs++;
    r->pending = true;
    bool status = kind == MK_LEADER || kind == MK_SELF || kind == MK_LSTATS;
    int rv = status ? a->be.status(a->be.arg, mr, members_done)
                    : a->be.member_list(a->be.arg, mr, members_done);
    if (rv != 0) {
        r->pending = false;
        v2_fail(r, rv);
    }
}

/* ---- member changes (etcd's membersHandler: POST, DELETE, PUT) ---- */

/* httptypes.HTTPError: {"message":...} (no newline) with status. */
static void http_error(struct api *a, struct rpc_http1_request *req, int status,
                       const char *msg)
{
    struct buf b = BUF_INIT, h = BUF_INIT;
    buf_append(&b, "{\"message\":", 11);
    v2_json_string(&b, msg, strlen(msg));
    buf_append_u8(&b, '}');
    cluster_header(a, &h, NULL);
    buf_append_u8(&h, 0);
    if (b.data != NULL && h.data != NULL)
        rpc_http1_respond_hdrs(req, status, "application/json",
                               (const char *)h.data, b.data, b.len);
    else
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
    buf_free(&b);
    buf_free(&h);
}

enum mchange { MC_ADD, MC_REMOVE, MC_UPDATE };

struct mchange_req {
    struct api__v2 base; /* first: freed as one */
    enum mchange op;
    struct node_member m; /* its id is the member's asked for */
};

/* etcd's answers to AddMember, RemoveMember and UpdateMember errors:
 * the membership ones by status, anything else 500. */
static void mchange_fail(struct mchange_req *mc, int err)
{
    struct api__v2 *r = &mc->base;
    char msg[64];
    int status = 500;
    snprintf(msg, sizeof msg, "Internal Server Error");
    if (err == CAIRN_EMEMBEREXISTS && mc->op == MC_ADD) {
        status = 409;
        snprintf(msg, sizeof msg, "membership: ID exists");
    } else if (err == CAIRN_EPEERURLEXISTS && mc->op != MC_REMOVE) {
        status = 409;
        snprintf(msg, sizeof msg, "membership: peerURL exists");
    } else if (err == CAIRN_EMEMBERNOTFOUND && mc->op != MC_ADD) {
        status = 404;
        snprintf(msg, sizeof msg, "No such member: %" PRIx64, mc->m.id);
    } else if (err == CAIRN_EREMOVED && mc->op == MC_REMOVE) {
        status = 410;
        snprintf(msg, sizeof msg, "Member permanently removed: %" PRIx64,
                 mc->m.id);
    }
    http_error(r->api, r->req, status, msg);
    v2_end(r);
}

static void mchange_done(void *ctx, const struct node_result *res)
{
    struct mchange_req *mc = ctx;
    struct api__v2 *r = &mc->base;
    if (!v2_completed(r))
        return;
    if (res->err != 0) {
        mchange_fail(mc, res->err);
        return;
    }
    struct buf h = BUF_INIT, b = BUF_INIT;
    cluster_header(r->api, &h, NULL);
    buf_append_u8(&h, 0);
    if (mc->op == MC_ADD) {
        /* 201 with the new member (no name nor client URLs yet) */
        json_member(&b, res->u.members.member != NULL ? res->u.members.member
                                                      : &mc->m);
        buf_append_u8(&b, '\n');
        rpc_http1_respond_hdrs(r->req, 201, "application/json",
                               (const char *)h.data, b.data, b.len);
    } else {
        rpc_http1_respond_hdrs(r->req, 204, NULL, (const char *)h.data, NULL,
                               0);
    }
    buf_free(&h);
    buf_free(&b);
    v2_end(r);
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* unmarshalRequest and MemberCreateRequest.UnmarshalJSON: a JSON body
 * {"peerURLs":[...]} checked as types.NewURLs, sorted as it sorts them.
 * false: the error was sent. */
static bool read_peer_urls(struct api *a, struct rpc_http1_request *req,
                           struct node_member *m)
{
    char ct[128] = "";
    const char *h = rpc_http1_header(req, "content-type");
    snprintf(ct, sizeof ct, "%s", h != NULL ? h : "");
    char *semi = strchr(ct, ';');
    if (semi != NULL) {
        /* only then lower-cased and trimmed, as etcd does */
        *semi = 0;
        char *s = ct;
        while (*s == ' ' || *s == '\t')
            s++;
        memmove(ct, s, strlen(s) + 1);
        for (size_t n = strlen(ct);
             n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t');)
            ct[--n] = 0;
        for (char *c = ct; *c; c++)
            *c = (char)tolower((unsigned char)*c);
    }
    char msg[CAIRN_ERRMSG_SIZE + 64];
    if (strcmp(ct, "application/json") != 0) {
        snprintf(msg, sizeof msg,
                 "Bad Content-Type %s, accept application/json", ct);
        http_error(a, req, 415, msg);
        return false;
    }
    struct api_arena arena;
    api_arena_init(&arena);
    ProtobufCMessage *pm = NULL;
    size_t used = 0;
    char err[128];
    int rv =
        api__json_read(&etcdserverpb__member_add_request__descriptor, req->body,
                       req->body_len, &used, &arena, &pm, err, sizeof err);
    size_t rest = used;
    while (rv == 0 && rest < req->body_len &&
           strchr(" \t\r\n", req->body[rest]) != NULL)
        rest++;
    bool ok = false;
    if (rv == CAIRN_EAGAIN) {
        http_error(a, req, 400, "unexpected end of JSON input");
    } else if (rv == CAIRN_ENOMEM) {
        http_error(a, req, 500, "Internal Server Error");
    } else if (rv != 0) {
        http_error(a, req, 400, err);
    } else if (rest < req->body_len) {
        http_error(a, req, 400, "invalid character after top-level value");
    } else {
        Etcdserverpb__MemberAddRequest *in =
            (Etcdserverpb__MemberAddRequest *)pm;
        ok = true;
        if (in->n_peerurls == 0) {
            http_error(a, req, 400, "no valid URLs given");
            ok = false;
        }
        for (size_t i = 0; ok && i < in->n_peerurls; i++) {
            struct net_url u;
            struct cairn_errmsg em = {{0}};
            const char *s = in->peerurls[i];
            while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
                s++;
            size_t len = strlen(s);
            while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
                len--;
            if (i >= NODE_MEMBER_URLS_MAX || len >= NODE_URL_MAX) {
                snprintf(msg, sizeof msg, "too many or too long URLs: %s", s);
                http_error(a, req, 400, msg);
                ok = false;
                break;
            }
            memcpy(m->peer_urls[i], s, len);
            m->peer_urls[i][len] = 0;
            if (net_url_parse(m->peer_urls[i], &u, &em) != 0) {
                http_error(a, req, 400, em.text);
                ok = false;
            }
        }
        if (ok) {
            m->n_peer_urls = (uint32_t)in->n_peerurls;
            qsort(m->peer_urls, m->n_peer_urls, sizeof m->peer_urls[0],
                  str_cmp);
        }
    }
    api_arena_free(&arena);
    return ok;
}

/* getID: the hex id past /v2/members/; false: the error was sent. */
static bool member_id(struct api *a, struct rpc_http1_request *req,
                      const char *sub, size_t n, uint64_t *id)
{
    if (n == 0) {
        rpc_http1_respond_hdrs(req, 405, "text/plain; charset=utf-8",
                               "X-Content-Type-Options: nosniff\r\n",
                               "Method Not Allowed\n", 19);
        return false;
    }
    uint64_t v = 0;
    bool ok = n <= 16;
    for (size_t i = 0; ok && i < n; i++) {
        int d = hexval((unsigned char)sub[i]);
        ok = d >= 0;
        v = v * 16 + (uint64_t)(d < 0 ? 0 : d);
    }
    if (!ok) {
        char msg[128];
        snprintf(msg, sizeof msg, "No such member: %.*s",
                 (int)(n < 64 ? n : 64), sub);
        http_error(a, req, 404, msg);
        return false;
    }
    *id = v;
    return true;
}

static void member_change(struct api *a, struct rpc_http1_request *req,
                          const char *sub, size_t n)
{
    struct mchange_req *mc = cairn_calloc(1, sizeof(*mc));
    if (mc == NULL) {
        rpc_http1_respond(req, 500, "text/plain; charset=utf-8",
                          "out of memory", 13);
        return;
    }
    const char *m = req->method;
    mc->op = strcmp(m, "POST") == 0     ? MC_ADD
             : strcmp(m, "DELETE") == 0 ? MC_REMOVE
                                        : MC_UPDATE;
    if ((mc->op != MC_ADD && !member_id(a, req, sub, n, &mc->m.id)) ||
        (mc->op != MC_REMOVE && !read_peer_urls(a, req, &mc->m))) {
        cairn_free(mc);
        return;
    }
    struct api__v2 *r = &mc->base;
    r->api = a;
    r->req = req;
    r->next = a->v2;
    a->v2 = r;
    a->refs++;
    r->pending = true;
    int rv = mc->op == MC_ADD
                 ? a->be.member_add(a->be.arg, &mc->m, mc, mchange_done)
             : mc->op == MC_REMOVE
                 ? a->be.member_remove(a->be.arg, mc->m.id, mc, mchange_done)
                 : a->be.member_update(a->be.arg, &mc->m, mc, mchange_done);
    if (rv != 0) {
        r->pending = false;
        mchange_fail(mc, rv);
    }
}

/* /v2/members and everything under it, as etcd's membersHandler. */
static void members_route(struct api *a, struct rpc_http1_request *req)
{
    const char *m = req->method;
    if (strcmp(m, "GET") != 0 && strcmp(m, "POST") != 0 &&
        strcmp(m, "DELETE") != 0 && strcmp(m, "PUT") != 0) {
        rpc_http1_respond_hdrs(req, 405, "text/plain; charset=utf-8",
                               CORS "Allow: GET,POST,DELETE,PUT\r\n"
                                    "X-Content-Type-Options: nosniff\r\n",
                               "Method Not Allowed\n", 19);
        return;
    }
    size_t plen = strcspn(req->path, "?");
    const char *sub = req->path + strlen("/v2/members");
    size_t n = plen - strlen("/v2/members");
    if (n > 0 && sub[0] == '/') {
        sub++;
        n--;
    }
    if (strcmp(m, "GET") != 0) {
        member_change(a, req, sub, n);
    } else if (n == 0) {
        members_request(a, req, MK_MEMBERS);
    } else if (n == 6 && memcmp(sub, "leader", 6) == 0) {
        members_request(a, req, MK_LEADER);
    } else {
        http_error(a, req, 404, "Not found");
    }
}

/* ---- /v2/stats/store ---- */

/* etcd's store Stats, counted by this member's API for the requests it
 * answers (etcd counts every write its store applies). */
static void count(struct api *a, const struct v2_req *q, int status)
{
    bool ok = status < 300;
    bool cmp = q->prev_index != 0 || q->prev_value_len != 0;
    int k;
    switch (q->op) {
    case V2_OP_GET:
        k = 0;
        break;
    case V2_OP_POST:
        k = 4;
        break;
    case V2_OP_DELETE:
        k = cmp ? 6 : 2;
        break;
    default:
        k = q->prev_exist == V2_PREV_FALSE  ? 4
            : cmp                           ? 5
            : q->prev_exist == V2_PREV_TRUE ? 3
                                            : 1;
        break;
    }
    a->v2_stats[2 * k + (ok ? 0 : 1)]++;
}

static void store_stats(struct api *a, struct rpc_http1_request *req)
{
    static const char *const names[14] = {"getsSuccess",
                                          "getsFail",
                                          "setsSuccess",
                                          "setsFail",
                                          "deleteSuccess",
                                          "deleteFail",
                                          "updateSuccess",
                                          "updateFail",
                                          "createSuccess",
                                          "createFail",
                                          "compareAndSwapSuccess",
                                          "compareAndSwapFail",
                                          "compareAndDeleteSuccess",
                                          "compareAndDeleteFail"};
    struct buf b = BUF_INIT;
    char t[64];
    for (int i = 0; i < 14; i++) {
        int k = snprintf(t, sizeof t, "%c\"%s\":%" PRIu64, i ? ',' : '{',
                         names[i], a->v2_stats[i]);
        buf_append(&b, t, (size_t)k);
    }
    uint64_t watchers = 0;
    for (struct api__v2 *r = a->v2; r != NULL; r = r->next)
        watchers += r->waiter != NULL;
    int k = snprintf(t, sizeof t,
                     ",\"expireCount\":0,\"watchers\":%" PRIu64 "}", watchers);
    buf_append(&b, t, (size_t)k);
    rpc_http1_respond_hdrs(req, 200, "application/json", CORS, b.data, b.len);
    buf_free(&b);
}

/* ---- routing ---- */

static bool path_eq(const struct rpc_http1_request *req, const char *p)
{
    size_t plen = strcspn(req->path, "?");
    return plen == strlen(p) && memcmp(req->path, p, plen) == 0;
}

void api__v2_init(struct api *a)
{
    struct buf b = BUF_INIT;
    time_now(&b);
    size_t n = b.len < sizeof a->v2_start - 1 ? b.len : sizeof a->v2_start - 1;
    if (n > 0)
        memcpy(a->v2_start, b.data, n);
    a->v2_start[n] = 0;
    a->v2_start_ms = uv_now(a->loop);
    buf_free(&b);
}

bool api__v2_request(struct api *a, struct rpc_http1_request *req)
{
    if (strncmp(req->path, "/v2/", 4) != 0 && !path_eq(req, "/v2"))
        return false;
    if (!a->enable_v2 || a->be.v2 == NULL) {
        /* etcd 3.4 with --enable-v2=false registers no v2 handler */
        rpc_http1_respond(req, 404, "text/plain; charset=utf-8",
                          "404 page not found\n", 19);
        return true;
    }
    size_t plen = strcspn(req->path, "?");
    size_t kp = strlen(KEYS_PREFIX);
    if (plen >= kp && memcmp(req->path, KEYS_PREFIX, kp) == 0 &&
        (plen == kp || req->path[kp] == '/'))
        keys_request(a, req);
    else if (path_eq(req, "/v2/members") ||
             strncmp(req->path, "/v2/members/", 12) == 0)
        members_route(a, req);
    else if (path_eq(req, "/v2/machines"))
        members_request(a, req, MK_MACHINES);
    else if (path_eq(req, "/v2/stats/self"))
        members_request(a, req, MK_SELF);
    else if (path_eq(req, "/v2/stats/leader"))
        members_request(a, req, MK_LSTATS);
    else if (path_eq(req, "/v2/stats/store"))
        store_stats(a, req);
    else
        rpc_http1_respond(req, 404, "text/plain; charset=utf-8",
                          "404 page not found\n", 19);
    return true;
}

bool api__v2_cancel(struct api *a, struct rpc_http1_request *req)
{
    for (struct api__v2 *r = a->v2; r != NULL; r = r->next)
        if (r->req == req) {
            v2_end(r);
            return true;
        }
    return false;
}

void api__v2_close(struct api *a)
{
    /* no backend call after its close: drop the watches' waiters now */
    for (struct api__v2 *r = a->v2; r != NULL; r = r->next)
        if (r->waiter != NULL) {
            a->be.v2_wait_cancel(a->be.arg, r->waiter);
            r->waiter = NULL;
        }
}
