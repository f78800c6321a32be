/* store: etcd 3.4's v2store operations (Get, Set, Create, Update,
 * CompareAndSwap, Delete, CompareAndDelete, DeleteExpiredKeys) over
 * records in mvcc's ext table, applied inside the apply batch, and the
 * event history watchers read (docs/v2.md has the record formats). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/codec.h"
#include "v2/v2_int.h"

#define REC_V1 1
#define REC_DIR 1
#define HIST_DELETED_DIR 1 /* delete/expire of a directory */
#define HIST_REFRESH 2     /* a TTL refresh: not shown to watchers */

static const uint8_t META_INDEX[] = "i";
static const uint8_t META_HISTORY[] = "h";
static const uint8_t META_CLEARED[] = "c"; /* last index dropped */
static const uint8_t META_VERSION[] = "v"; /* the cluster version counted */

/* A node record, decoded; val points into the map (valid until the next
 * write of the batch) or into a copy. */
struct rec {
    bool dir;
    uint64_t created, modified;
    int64_t exp_ns; /* 0: permanent */
    const uint8_t *val;
    size_t val_len;
};

static int rec_decode(const uint8_t *p, size_t n, struct rec *r)
{
    memset(r, 0, sizeof(*r));
    struct codec_reader rd;
    codec_reader_init(&rd, p, n);
    uint8_t v = codec_read_u8(&rd);
    uint8_t flags = codec_read_u8(&rd);
    r->dir = (flags & REC_DIR) != 0;
    r->created = codec_read_varint(&rd);
    r->modified = codec_read_varint(&rd);
    r->exp_ns = (int64_t)codec_read_u64(&rd);
    if (rd.bad || v != REC_V1)
        return CAIRN_ECORRUPT;
    r->val_len = codec_reader_left(&rd);
    r->val = codec_read_bytes(&rd, r->val_len);
    return 0;
}

static int rec_encode(const struct rec *r, struct buf *b)
{
    int rv = buf_append_u8(b, REC_V1);
    rv |= buf_append_u8(b, r->dir ? REC_DIR : 0);
    rv |= buf_append_varint(b, r->created);
    rv |= buf_append_varint(b, r->modified);
    rv |= buf_append_u64(b, (uint64_t)r->exp_ns);
    if (r->val_len > 0)
        rv |= buf_append(b, r->val, r->val_len);
    return rv != 0 ? CAIRN_ENOMEM : 0;
}

/* ---- one apply ---- */

struct ctx {
    struct mvcc_store *s;
    struct mvcc_reader *rd; /* a local read (v2_read); NULL in a batch */
    const struct v2_req *q;
    uint64_t cur; /* CurrentIndex */
    int64_t now_ns;
    struct buf body;
    int status;
    uint64_t etcd_index;
    int fatal;
};

static int meta_get(struct mvcc_store *s, const uint8_t *k, uint64_t *v)
{
    const uint8_t *p;
    size_t n;
    *v = 0;
    int rc = mvcc_ext_get_batch(s, V2_TABLE_META, k, 1, &p, &n);
    if (rc == CAIRN_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    if (n != 8)
        return CAIRN_ECORRUPT;
    *v = codec_get_u64(p);
    return 0;
}

static int meta_put(struct mvcc_store *s, const uint8_t *k, uint64_t v)
{
    uint8_t p[8];
    codec_put_u64(p, v);
    return mvcc_ext_put(s, V2_TABLE_META, k, 1, p, 8);
}

/* Reads go to the batch, or to the reader's snapshot in v2_read. */
static int ext_get(struct ctx *c, uint8_t table, const void *key, size_t len,
                   const uint8_t **val, size_t *val_len)
{
    if (c->rd != NULL)
        return mvcc_reader_ext_get(c->rd, table, key, len, val, val_len);
    return mvcc_ext_get_batch(c->s, table, key, len, val, val_len);
}

static int ext_scan(struct ctx *c, uint8_t table, const void *prefix, size_t n,
                    void *arg, mvcc_ext_scan_cb cb)
{
    if (c->rd != NULL)
        return mvcc_reader_ext_scan_prefix(c->rd, table, prefix, n, arg, cb);
    return mvcc_ext_scan_prefix_batch(c->s, table, prefix, n, arg, cb);
}

static int get_rec(struct ctx *c, const char *path, size_t len, struct rec *r)
{
    if (len == 1 && path[0] == '/') {
        /* the root: a directory that always exists, indexes 0 */
        memset(r, 0, sizeof(*r));
        r->dir = true;
        return 0;
    }
    const uint8_t *p;
    size_t n;
    int rc = ext_get(c, V2_TABLE_NODE, path, len, &p, &n);
    if (rc != 0)
        return rc;
    return rec_decode(p, n, r);
}

static void ttl_key(int64_t exp_ns, const char *path, size_t len, uint8_t *k)
{
    /* big-endian, so the table is ordered by expiration */
    uint64_t v = (uint64_t)exp_ns;
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(v >> (56 - 8 * i));
    memcpy(k + 8, path, len);
}

static int put_rec(struct ctx *c, const char *path, size_t len,
                   const struct rec *r)
{
    struct buf b = BUF_INIT;
    int rc = rec_encode(r, &b);
    if (rc == 0)
        rc = mvcc_ext_put(c->s, V2_TABLE_NODE, path, len, b.data, b.len);
    buf_free(&b);
    if (rc == 0 && r->exp_ns != 0) {
        uint8_t k[8 + V2_PATH_MAX];
        ttl_key(r->exp_ns, path, len, k);
        rc = mvcc_ext_put(c->s, V2_TABLE_TTL, k, 8 + len, "", 0);
    }
    return rc;
}

/* Deletes one record and its TTL entry (exp_ns as stored). */
static int del_rec(struct ctx *c, const char *path, size_t len, int64_t exp_ns)
{
    int rc = mvcc_ext_del(c->s, V2_TABLE_NODE, path, len);
    if (rc == 0 && exp_ns != 0) {
        uint8_t k[8 + V2_PATH_MAX];
        ttl_key(exp_ns, path, len, k);
        rc = mvcc_ext_del(c->s, V2_TABLE_TTL, k, 8 + len);
        if (rc == CAIRN_ENOTFOUND)
            rc = 0;
    }
    return rc;
}

/* ---- errors ---- */

static void fail(struct ctx *c, int code, const char *cause, size_t len)
{
    buf_reset(&c->body);
    int st = v2_error_json(&c->body, code, cause, len, c->cur);
    if (st < 0)
        c->fatal = st;
    c->status = st;
    c->etcd_index = c->cur;
}

/* ---- rendering (NodeExtern) ---- */

struct view {
    const char *key;
    size_t key_len;
    const struct rec *r;
    bool value; /* print "value" (files) */
};

static int render_head(struct ctx *c, struct buf *b, const struct view *v)
{
    int rv = buf_append_u8(b, '{');
    bool first = true;
    /* the root's key is "" once etcd strips its "/1" prefix: omitted */
    if (!(v->key_len == 1 && v->key[0] == '/')) {
        rv |= buf_append(b, "\"key\":", 6);
        rv |= v2_json_string(b, v->key, v->key_len);
        first = false;
    }
    if (v->value && !v->r->dir) {
        rv |=
            buf_append(b, first ? "\"value\":" : ",\"value\":", first ? 8 : 9);
        rv |= v2_json_string(b, v->r->val, v->r->val_len);
        first = false;
    }
    if (v->r->dir) {
        rv |= buf_append(b, first ? "\"dir\":true" : ",\"dir\":true",
                         first ? 10 : 11);
        first = false;
    }
    if (v->r->exp_ns != 0) {
        int64_t left = v->r->exp_ns - c->now_ns;
        int64_t ttl = left / 1000000000;
        if (left % 1000000000 > 0)
            ttl++;
        rv |= buf_append(b, first ? "\"expiration\":\"" : ",\"expiration\":\"",
                         first ? 14 : 15);
        rv |= v2__time_rfc3339(b, v->r->exp_ns);
        rv |= buf_append_u8(b, '"');
        if (ttl != 0)
            rv |= v2__appendf(b, ",\"ttl\":%" PRId64, ttl);
    }
    return rv != 0 ? CAIRN_ENOMEM : 0;
}

static int render_tail(struct buf *b, const struct rec *r)
{
    int rv = 0;
    /* the root has no key and no indexes: never an empty object here */
    if (r->modified != 0)
        rv |= v2__appendf(b, ",\"modifiedIndex\":%" PRIu64, r->modified);
    if (r->created != 0)
        rv |= v2__appendf(b, ",\"createdIndex\":%" PRIu64, r->created);
    rv |= buf_append_u8(b, '}');
    return rv != 0 ? CAIRN_ENOMEM : 0;
}

static int render_node(struct ctx *c, struct buf *b, const char *key,
                       size_t len, const struct rec *r, bool list,
                       bool recursive);

struct list_ctx {
    struct ctx *c;
    struct buf *b;
    size_t prefix_len;
    bool recursive;
    size_t n;
    int rc;
};

static int list_cb(void *arg, const uint8_t *key, size_t key_len,
                   const uint8_t *val, size_t val_len)
{
    struct list_ctx *l = arg;
    const uint8_t *name = key + l->prefix_len;
    size_t name_len = key_len - l->prefix_len;
    if (name_len == 0 || memchr(name, '/', name_len) != NULL)
        return 0; /* deeper than a child */
    if (name[0] == '_')
        return 0; /* hidden, as etcd lists */
    struct rec r = {0};
    int rc = rec_decode(val, val_len, &r);
    if (rc == 0 && l->n++ > 0)
        rc = buf_append_u8(l->b, ',');
    if (rc == 0)
        rc = render_node(l->c, l->b, (const char *)key, key_len, &r,
                         l->recursive, l->recursive);
    return rc;
}

/* A node as etcd's Repr / loadInternalNode print it: a directory lists
 * its children when list is set (each child itself listed when
 * recursive), sorted by key (LMDB's order is Go's string order). */
static int render_node(struct ctx *c, struct buf *b, const char *key,
                       size_t len, const struct rec *r, bool list,
                       bool recursive)
{
    struct view v = {key, len, r, true};
    int rc = render_head(c, b, &v);
    if (rc == 0 && r->dir && list) {
        char prefix[V2_PATH_MAX + 2];
        size_t plen = len;
        memcpy(prefix, key, len);
        if (!(len == 1 && key[0] == '/'))
            prefix[plen++] = '/';
        size_t mark = b->len;
        rc = buf_append(b, ",\"nodes\":[", 10);
        struct list_ctx l = {c, b, plen, recursive, 0, 0};
        if (rc == 0)
            rc = ext_scan(c, V2_TABLE_NODE, prefix, plen, &l, list_cb);
        if (rc == 0 && l.n == 0)
            b->len = mark; /* an empty list is omitted */
        else if (rc == 0)
            rc = buf_append_u8(b, ']');
    }
    if (rc == 0)
        rc = render_tail(b, r);
    return rc;
}

/* ---- walking ---- */

/* etcd's internalGet: every ancestor must be a directory. 0 with *r, or
 * the request failed (c->status set) and 1 is returned. */
static int walk_get(struct ctx *c, const char *path, size_t len, struct rec *r)
{
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        size_t plen = i;
        int rc = get_rec(c, path, plen, r);
        if (rc == CAIRN_ENOTFOUND) {
            fail(c, V2_E_KEY_NOT_FOUND, path, plen);
            return 1;
        }
        if (rc != 0) {
            c->fatal = rc;
            return 1;
        }
        if (i < len && !r->dir) {
            fail(c, V2_E_NOT_DIR, path, plen);
            return 1;
        }
    }
    return 0;
}

/* etcd's walk with checkDir: the ancestors of path, made where missing
 * (permanent directories created at index next). 1: failed. */
static int make_parents(struct ctx *c, const char *path, size_t len,
                        uint64_t next)
{
    for (size_t i = 1; i < len; i++) {
        if (path[i] != '/')
            continue;
        struct rec r = {0};
        int rc = get_rec(c, path, i, &r);
        if (rc == CAIRN_ENOTFOUND) {
            struct rec d = {.dir = true, .created = next, .modified = next};
            rc = put_rec(c, path, i, &d);
        } else if (rc == 0 && !r.dir) {
            fail(c, V2_E_NOT_DIR, path, i);
            return 1;
        }
        if (rc != 0) {
            c->fatal = rc;
            return 1;
        }
    }
    return 0;
}

/* Removes path and, for a directory, everything under it. */
struct sub {
    char **paths;
    size_t *lens;
    int64_t *exps;
    size_t n, cap;
};

static int sub_cb(void *arg, const uint8_t *key, size_t key_len,
                  const uint8_t *val, size_t val_len)
{
    struct sub *s = arg;
    struct rec r = {0};
    if (rec_decode(val, val_len, &r) != 0)
        return CAIRN_ECORRUPT;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **p = cairn_realloc(s->paths, cap * sizeof(*p));
        if (p != NULL)
            s->paths = p;
        size_t *l = cairn_realloc(s->lens, cap * sizeof(*l));
        if (l != NULL)
            s->lens = l;
        int64_t *e = cairn_realloc(s->exps, cap * sizeof(*e));
        if (e != NULL)
            s->exps = e;
        if (p == NULL || l == NULL || e == NULL)
            return CAIRN_ENOMEM;
        s->cap = cap;
    }
    char *k = cairn_malloc(key_len);
    if (k == NULL)
        return CAIRN_ENOMEM;
    memcpy(k, key, key_len);
    s->paths[s->n] = k;
    s->lens[s->n] = key_len;
    s->exps[s->n] = r.exp_ns;
    s->n++;
    return 0;
}

static int remove_tree(struct ctx *c, const char *path, size_t len,
                       const struct rec *r)
{
    int rc = 0;
    if (r->dir) {
        char prefix[V2_PATH_MAX + 2];
        memcpy(prefix, path, len);
        prefix[len] = '/';
        struct sub s = {0};
        rc = mvcc_ext_scan_prefix_batch(c->s, V2_TABLE_NODE, prefix, len + 1,
                                        &s, sub_cb);
        /* collected first: the scan's pointers end at the first write */
        for (size_t i = 0; i < s.n; i++) {
            if (rc == 0)
                rc = del_rec(c, s.paths[i], s.lens[i], s.exps[i]);
            cairn_free(s.paths[i]);
        }
        cairn_free(s.paths);
        cairn_free(s.lens);
        cairn_free(s.exps);
    }
    if (rc == 0)
        rc = del_rec(c, path, len, r->exp_ns);
    return rc;
}

static int first_cb(void *arg, const uint8_t *key, size_t key_len,
                    const uint8_t *val, size_t val_len)
{
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    *(bool *)arg = true;
    return 1;
}

static bool has_children(struct ctx *c, const char *path, size_t len)
{
    char prefix[V2_PATH_MAX + 2];
    memcpy(prefix, path, len);
    prefix[len] = '/';
    bool any = false;
    int rc = mvcc_ext_scan_prefix_batch(c->s, V2_TABLE_NODE, prefix, len + 1,
                                        &any, first_cb);
    if (rc < 0)
        c->fatal = rc;
    return any;
}

/* ---- events ---- */

struct event {
    const char *action;
    const char *key;
    size_t key_len;
    struct rec node; /* what "node" prints */
    bool node_value;
    bool has_prev;
    struct rec prev;
    bool refresh;
};

static void be64(uint64_t v, uint8_t *k)
{
    for (int i = 0; i < 8; i++)
        k[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t from_be64(const uint8_t *k)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | k[i];
    return v;
}

static int oldest_cb(void *arg, const uint8_t *key, size_t key_len,
                     const uint8_t *val, size_t val_len)
{
    (void)val;
    (void)val_len;
    if (key_len == 8)
        *(uint64_t *)arg = from_be64(key);
    return 1;
}

/* Adds the event at index idx to the history, dropping the oldest past
 * V2_HISTORY_MAX. */
static int hist_add(struct ctx *c, const struct event *e, uint64_t idx,
                    const uint8_t *json, size_t json_len)
{
    struct buf b = BUF_INIT;
    uint8_t flags = e->refresh ? HIST_REFRESH : 0;
    if (e->has_prev && e->prev.dir &&
        (strcmp(e->action, "delete") == 0 || strcmp(e->action, "expire") == 0))
        flags |= HIST_DELETED_DIR;
    int rc = buf_append_u8(&b, flags);
    rc |= buf_append_varint(&b, e->key_len);
    rc |= buf_append(&b, e->key, e->key_len);
    rc |= buf_append(&b, json, json_len);
    uint8_t k[8];
    be64(idx, k);
    rc = rc != 0 ? CAIRN_ENOMEM
                 : mvcc_ext_put(c->s, V2_TABLE_HISTORY, k, 8, b.data, b.len);
    buf_free(&b);
    uint64_t n = 0;
    if (rc == 0)
        rc = meta_get(c->s, META_HISTORY, &n);
    if (rc == 0 && ++n > V2_HISTORY_MAX) {
        uint64_t old = 0;
        rc = mvcc_ext_scan_prefix_batch(c->s, V2_TABLE_HISTORY, NULL, 0, &old,
                                        oldest_cb);
        if (rc == 1)
            rc = 0;
        be64(old, k);
        if (rc == 0)
            rc = mvcc_ext_del(c->s, V2_TABLE_HISTORY, k, 8);
        if (rc == 0)
            rc = meta_put(c->s, META_CLEARED, old);
        n--;
    }
    if (rc == 0)
        rc = meta_put(c->s, META_HISTORY, n);
    return rc;
}

/* Renders e as the answer (and, for a write, records it at index idx). */
static void emit(struct ctx *c, const struct event *e, uint64_t idx, bool write)
{
    struct buf *b = &c->body;
    buf_reset(b);
    int rc = v2__appendf(b, "{\"action\":\"%s\",\"node\":", e->action);
    struct view v = {e->key, e->key_len, &e->node, e->node_value};
    if (rc == 0)
        rc = render_head(c, b, &v);
    if (rc == 0)
        rc = render_tail(b, &e->node);
    if (rc == 0 && e->has_prev) {
        rc = buf_append(b, ",\"prevNode\":", 12);
        if (rc == 0)
            rc = render_node(c, b, e->key, e->key_len, &e->prev, false, false);
    }
    if (rc == 0)
        rc = buf_append_u8(b, '}');
    if (rc == 0 && write)
        rc = hist_add(c, e, idx, b->data, b->len);
    if (rc == 0)
        rc = buf_append_u8(b, '\n');
    if (rc != 0) {
        c->fatal = rc;
        return;
    }
    bool created = strcmp(e->action, "create") == 0 ||
                   (strcmp(e->action, "set") == 0 && !e->has_prev);
    c->status = created ? 201 : 200;
    c->etcd_index = idx;
}

/* ---- operations ---- */

static bool is_root(const struct v2_req *q)
{
    return q->path_len == 1;
}

static void op_get(struct ctx *c)
{
    const struct v2_req *q = c->q;
    struct rec r = {0};
    if (walk_get(c, (const char *)q->path, q->path_len, &r) != 0)
        return;
    struct buf *b = &c->body;
    buf_reset(b);
    int rc = buf_append(b, "{\"action\":\"get\",\"node\":", 23);
    if (rc == 0)
        rc = render_node(c, b, (const char *)q->path, q->path_len, &r, true,
                         q->recursive);
    if (rc == 0)
        rc = buf_append(b, "}\n", 2);
    if (rc != 0) {
        c->fatal = rc;
        return;
    }
    c->status = 200;
    c->etcd_index = c->cur;
}

/* The node's value copied (the record's bytes end at the next write). */
static int keep_value(struct rec *r, struct buf *store)
{
    buf_reset(store);
    if (r->val_len > 0 && buf_append(store, r->val, r->val_len) != 0)
        return CAIRN_ENOMEM;
    r->val = store->data;
    return 0;
}

/* internalCreate: Create (unique: POST), Set (replace). */
static void op_create(struct ctx *c, bool unique, bool replace,
                      const char *action)
{
    const struct v2_req *q = c->q;
    uint64_t next = c->cur + 1;
    char path[V2_PATH_MAX + 32];
    size_t len = q->path_len;
    memcpy(path, q->path, len);
    if (unique) {
        /* the root's child is "/000..N", any other's "P/000..N" */
        if (len == 1)
            len = 0;
        len += (size_t)snprintf(path + len, sizeof path - len, "/%020" PRIu64,
                                next);
    }
    if (len == 1) {
        fail(c, V2_E_ROOT_RONLY, "/", 1);
        return;
    }
    if (len > V2_PATH_MAX) {
        fail(c, V2_E_INVALID_FIELD, "key too long", 12);
        return;
    }
    if (make_parents(c, path, len, next) != 0)
        return;
    /* a refresh through Set comes here too (op_set) */
    struct event e = {
        .action = action, .key = path, .key_len = len, .refresh = q->refresh};
    struct buf keep = BUF_INIT;
    struct rec old = {0};
    int rc = get_rec(c, path, len, &old);
    if (rc == 0) {
        if (!replace) {
            fail(c, V2_E_NODE_EXIST, path, len);
            goto out;
        }
        if (old.dir) {
            fail(c, V2_E_NOT_FILE, path, len);
            goto out;
        }
        if ((rc = keep_value(&old, &keep)) == 0)
            rc = del_rec(c, path, len, old.exp_ns);
        e.has_prev = true;
        e.prev = old;
    } else if (rc == CAIRN_ENOTFOUND) {
        rc = 0;
    }
    struct rec n = {.dir = q->dir,
                    .created = next,
                    .modified = next,
                    .exp_ns = q->expiration_ns};
    if (!q->dir) {
        n.val = q->value;
        n.val_len = q->value_len;
    }
    if (rc == 0)
        rc = put_rec(c, path, len, &n);
    if (rc != 0) {
        c->fatal = rc;
        goto out;
    }
    c->cur = next;
    e.node = n;
    e.node_value = !q->dir;
    emit(c, &e, next, true);
out:
    buf_free(&keep);
}

static void op_set(struct ctx *c)
{
    const struct v2_req *q = c->q;
    struct rec r = {0};
    if (is_root(q)) {
        fail(c, V2_E_ROOT_RONLY, "/", 1);
        return;
    }
    if (walk_get(c, (const char *)q->path, q->path_len, &r) != 0) {
        bool missing = c->fatal == 0 && c->status == 404;
        if (!missing || q->refresh)
            return;
        buf_reset(&c->body);
    } else if (q->refresh) {
        /* a refresh keeps the value: set it from the node */
        struct v2_req rq = *q;
        struct buf keep = BUF_INIT;
        if (keep_value(&r, &keep) != 0) {
            c->fatal = CAIRN_ENOMEM;
            return;
        }
        rq.value = r.val;
        rq.value_len = r.val_len;
        c->q = &rq;
        op_create(c, false, true, "set");
        c->q = q;
        buf_free(&keep);
        return;
    }
    op_create(c, false, true, "set");
}

/* The prevValue / prevIndex conditions of a compareAndSwap or
 * compareAndDelete against r; false: the failure (etcd's 101 with both
 * mismatches in its cause) is recorded in c. */
static bool prev_matches(struct ctx *c, const struct rec *r)
{
    const struct v2_req *q = c->q;
    bool vok = q->prev_value_len == 0 ||
               (r->val_len == q->prev_value_len &&
                memcmp(r->val, q->prev_value, r->val_len) == 0);
    bool iok = q->prev_index == 0 || r->modified == q->prev_index;
    if (vok && iok)
        return true;
    struct buf cause = BUF_INIT;
    int rv = 0;
    if (!vok)
        rv |= v2__appendf(&cause, "[%.*s != %.*s]", (int)q->prev_value_len,
                          q->prev_value, (int)r->val_len, r->val);
    if (!iok)
        rv |= v2__appendf(&cause, "%s[%" PRIu64 " != %" PRIu64 "]",
                          vok ? "" : " ", q->prev_index, r->modified);
    if (rv != 0)
        c->fatal = CAIRN_ENOMEM;
    else
        fail(c, V2_E_TEST_FAILED, (const char *)cause.data, cause.len);
    buf_free(&cause);
    return false;
}

/* Update and CompareAndSwap share the write; cas says which. */
static void op_update(struct ctx *c, bool cas)
{
    const struct v2_req *q = c->q;
    const char *path = (const char *)q->path;
    size_t len = q->path_len;
    if (is_root(q)) {
        fail(c, V2_E_ROOT_RONLY, "/", 1);
        return;
    }
    struct rec r = {0};
    if (walk_get(c, path, len, &r) != 0)
        return;
    if (r.dir && (cas || q->value_len > 0)) {
        fail(c, V2_E_NOT_FILE, path, len);
        return;
    }
    if (cas) {
        if (!prev_matches(c, &r))
            return;
    }
    uint64_t next = c->cur + 1;
    struct buf keep = BUF_INIT;
    struct event e = {.action = cas ? "compareAndSwap" : "update",
                      .key = path,
                      .key_len = len,
                      .has_prev = true,
                      .refresh = q->refresh};
    int rc = keep_value(&r, &keep);
    e.prev = r;
    struct rec n = r;
    n.modified = next;
    n.exp_ns = q->expiration_ns;
    if (!r.dir && !q->refresh) {
        n.val = q->value;
        n.val_len = q->value_len;
    }
    if (rc == 0)
        rc = del_rec(c, path, len, r.exp_ns);
    if (rc == 0)
        rc = put_rec(c, path, len, &n);
    if (rc != 0) {
        c->fatal = rc;
        buf_free(&keep);
        return;
    }
    c->cur = next;
    e.node = n;
    e.node_value = !r.dir;
    emit(c, &e, next, true);
    buf_free(&keep);
}

/* Delete and CompareAndDelete (cad), and expiry (action "expire"). */
static void remove_node(struct ctx *c, const char *path, size_t len,
                        struct rec *r, const char *action)
{
    uint64_t next = c->cur + 1;
    struct buf keep = BUF_INIT;
    struct event e = {
        .action = action, .key = path, .key_len = len, .has_prev = true};
    int rc = keep_value(r, &keep);
    e.prev = *r;
    e.node =
        (struct rec){.dir = r->dir, .created = r->created, .modified = next};
    if (rc == 0)
        rc = remove_tree(c, path, len, r);
    if (rc != 0) {
        c->fatal = rc;
        buf_free(&keep);
        return;
    }
    c->cur = next;
    emit(c, &e, next, true);
    buf_free(&keep);
}

static void op_delete(struct ctx *c)
{
    const struct v2_req *q = c->q;
    const char *path = (const char *)q->path;
    size_t len = q->path_len;
    bool cad = q->prev_index > 0 || q->prev_value_len > 0;
    if (is_root(q) && !cad) {
        fail(c, V2_E_ROOT_RONLY, "/", 1);
        return;
    }
    struct rec r = {0};
    if (walk_get(c, path, len, &r) != 0)
        return;
    if (cad) {
        if (r.dir) {
            fail(c, V2_E_NOT_FILE, path, len);
            return;
        }
        if (!prev_matches(c, &r))
            return;
        remove_node(c, path, len, &r, "compareAndDelete");
        return;
    }
    bool dir = q->dir || q->recursive;
    if (r.dir && !dir) {
        fail(c, V2_E_NOT_FILE, path, len);
        return;
    }
    if (r.dir && !q->recursive && has_children(c, path, len)) {
        fail(c, V2_E_DIR_NOT_EMPTY, path, len);
        return;
    }
    if (c->fatal == 0)
        remove_node(c, path, len, &r, "delete");
}

struct due {
    int64_t cutoff;
    bool found;
    char path[V2_PATH_MAX];
    size_t len;
};

static int due_cb(void *arg, const uint8_t *key, size_t key_len,
                  const uint8_t *val, size_t val_len)
{
    (void)val;
    (void)val_len;
    struct due *d = arg;
    if (key_len < 9 || key_len - 8 > V2_PATH_MAX)
        return CAIRN_ECORRUPT;
    if ((int64_t)from_be64(key) > d->cutoff)
        return 1;
    d->found = true;
    d->len = key_len - 8;
    memcpy(d->path, key + 8, d->len);
    return 1;
}

/* DeleteExpiredKeys: one "expire" event per node due, earliest first; a
 * directory takes its children with it. */
static void op_sync(struct ctx *c)
{
    for (;;) {
        struct due d = {.cutoff = c->q->now_ns};
        int rc =
            mvcc_ext_scan_prefix_batch(c->s, V2_TABLE_TTL, NULL, 0, &d, due_cb);
        if (rc < 0) {
            c->fatal = rc;
            return;
        }
        if (!d.found)
            break;
        struct rec r = {0};
        rc = get_rec(c, d.path, d.len, &r);
        if (rc != 0) {
            c->fatal = rc == CAIRN_ENOTFOUND ? CAIRN_ECORRUPT : rc;
            return;
        }
        remove_node(c, d.path, d.len, &r, "expire");
        if (c->fatal != 0)
            return;
    }
    c->status = 200;
    c->etcd_index = c->cur;
    buf_reset(&c->body);
}

static int finish(struct ctx *c_, int rc, struct mvcc_arena *a,
                  struct v2_result *out);

int v2_apply(struct mvcc_store *s, const struct v2_req *q, struct mvcc_arena *a,
             struct v2_result *out)
{
    struct ctx c = {.s = s, .q = q, .now_ns = q->now_ns};
    memset(out, 0, sizeof(*out));
    int rc = meta_get(s, META_INDEX, &c.cur);
    if (rc != 0)
        return rc;
    uint64_t start = c.cur;
    switch (q->op) {
    case V2_OP_GET:
        op_get(&c);
        break;
    case V2_OP_POST:
        op_create(&c, true, false, "create");
        break;
    case V2_OP_PUT:
        if (q->prev_exist == V2_PREV_TRUE)
            op_update(&c, q->prev_index != 0 || q->prev_value_len != 0);
        else if (q->prev_exist == V2_PREV_FALSE)
            op_create(&c, false, false, "create");
        else if (q->prev_index != 0 || q->prev_value_len != 0)
            op_update(&c, true);
        else
            op_set(&c);
        break;
    case V2_OP_DELETE:
        op_delete(&c);
        break;
    case V2_OP_SYNC:
        op_sync(&c);
        break;
    default:
        fail(&c, V2_E_INVALID_FIELD, "unknown request", 15);
        break;
    }
    rc = c.fatal;
    if (rc == 0 && c.cur != start)
        rc = meta_put(s, META_INDEX, c.cur);
    return finish(&c, rc, a, out);
}

/* The answer copied into the arena (rc: the operation's outcome). */
static int finish(struct ctx *c_, int rc, struct mvcc_arena *a,
                  struct v2_result *out)
{
    struct ctx c = *c_;
    if (rc == 0) {
        out->status = c.status;
        out->etcd_index = c.etcd_index;
        out->body_len = c.body.len;
        char *body = mvcc_arena_alloc(a, c.body.len + 1);
        if (body == NULL) {
            rc = CAIRN_ENOMEM;
        } else {
            if (c.body.len > 0)
                memcpy(body, c.body.data, c.body.len);
            body[c.body.len] = 0;
            out->body = body;
        }
    }
    buf_free(&c_->body);
    return rc;
}

int v2_read(struct mvcc_store *s, const struct v2_req *q, struct mvcc_arena *a,
            struct v2_result *out)
{
    CAIRN_ASSERT(q->op == V2_OP_GET);
    struct ctx c = {.s = s, .q = q, .now_ns = q->now_ns};
    memset(out, 0, sizeof(*out));
    int rc = mvcc_reader_begin(s, &c.rd);
    if (rc != 0)
        return rc;
    const uint8_t *p;
    size_t n;
    rc = ext_get(&c, V2_TABLE_META, META_INDEX, 1, &p, &n);
    if (rc == 0 && n == 8)
        c.cur = codec_get_u64(p);
    else if (rc == 0)
        rc = CAIRN_ECORRUPT;
    else if (rc == CAIRN_ENOTFOUND)
        rc = 0;
    if (rc == 0) {
        op_get(&c);
        rc = c.fatal;
    }
    rc = finish(&c, rc, a, out);
    mvcc_reader_end(c.rd);
    return rc;
}

int v2_bump_index(struct mvcc_store *s)
{
    uint64_t cur;
    int rc = meta_get(s, META_INDEX, &cur);
    if (rc == 0)
        rc = meta_put(s, META_INDEX, cur + 1);
    return rc;
}

int v2_cluster_version_set(struct mvcc_store *s)
{
    uint64_t done;
    int rc = meta_get(s, META_VERSION, &done);
    if (rc != 0 || done != 0)
        return rc;
    rc = meta_put(s, META_VERSION, 1);
    return rc == 0 ? v2_bump_index(s) : rc;
}

bool v2_has_ttl_keys(struct mvcc_store *s)
{
    bool any = false;
    mvcc_ext_scan_prefix(s, V2_TABLE_TTL, NULL, 0, &any, first_cb);
    return any;
}

static int index_cb(void *arg, const uint8_t *key, size_t key_len,
                    const uint8_t *val, size_t val_len)
{
    (void)key;
    (void)key_len;
    if (val_len == 8)
        *(uint64_t *)arg = codec_get_u64(val);
    return 1;
}

uint64_t v2_current_index(struct mvcc_store *s)
{
    uint64_t v = 0;
    mvcc_ext_scan_prefix(s, V2_TABLE_META, META_INDEX, 1, &v, index_cb);
    return v;
}

/* ---- history ---- */

struct scan {
    const char *path;
    size_t len;
    bool recursive;
    bool live;
    uint64_t since;
    uint64_t oldest, cleared;
    bool seen;
    struct buf *out;
    uint64_t found;
};

static bool under(const uint8_t *key, size_t klen, const char *dir, size_t dlen)
{
    /* path.Clean(dir) + "/" is a prefix of key */
    if (dlen == 1)
        return klen > 1;
    return klen > dlen && memcmp(key, dir, dlen) == 0 && key[dlen] == '/';
}

/* etcd's isHidden(watchPath, keyPath): some element of the key past the
 * watched path starts with '_' (keys are clean paths). */
static bool hidden_below(size_t wlen, const uint8_t *key, size_t klen)
{
    if (wlen > klen)
        return false; /* a deleted directory above the watched path */
    const uint8_t *p = key + wlen;
    size_t n = klen - wlen;
    if (n > 0 && p[0] == '_')
        return true; /* watch "/": the element right past it */
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '/' && p[i + 1] == '_')
            return true;
    return false;
}

static int scan_cb(void *arg, const uint8_t *key, size_t key_len,
                   const uint8_t *val, size_t val_len)
{
    struct scan *sc = arg;
    if (key_len != 8)
        return CAIRN_ECORRUPT;
    uint64_t idx = from_be64(key);
    if (idx < sc->since)
        return 0; /* not reached when the walk starts at since */
    struct codec_reader rd;
    codec_reader_init(&rd, val, val_len);
    uint8_t flags = codec_read_u8(&rd);
    uint64_t klen = codec_read_varint(&rd);
    const uint8_t *k = codec_read_bytes(&rd, (size_t)klen);
    if (rd.bad)
        return CAIRN_ECORRUPT;
    if (flags & HIST_REFRESH)
        return 0;
    bool ok = klen == sc->len && memcmp(k, sc->path, sc->len) == 0;
    if (sc->recursive)
        ok = ok || under(k, (size_t)klen, sc->path, sc->len);
    /* a watcher under a deleted directory hears of its deletion */
    if (flags & HIST_DELETED_DIR)
        ok = ok || under((const uint8_t *)sc->path, sc->len, (const char *)k,
                         (size_t)klen);
    if (!ok)
        return 0;
    /* a watcher notified live (etcd's notifyWatchers) does not hear of
     * hidden keys under it; one served from the history does */
    bool exact = klen == sc->len && memcmp(k, sc->path, sc->len) == 0;
    if (sc->live && !exact && hidden_below(sc->len, k, (size_t)klen))
        return 0;
    size_t left = codec_reader_left(&rd);
    if (buf_append(sc->out, codec_read_bytes(&rd, left), left) != 0 ||
        buf_append_u8(sc->out, '\n') != 0)
        return CAIRN_ENOMEM;
    sc->found = idx;
    return 1;
}

int v2_history_scan(struct mvcc_store *s, const char *path, size_t path_len,
                    bool recursive, bool live, uint64_t since, struct buf *out,
                    struct v2_scan_pos *pos)
{
    uint64_t cur = v2_current_index(s);
    if (since == 0)
        since = cur + 1;
    struct scan sc = {path, path_len, recursive, live, since,
                      0,    0,        false,     out,  0};
    mvcc_ext_scan_prefix(s, V2_TABLE_META, META_CLEARED, 1, &sc.cleared,
                         index_cb);
    if (since <= sc.cleared) {
        /* cleared: only the oldest index is needed, for the cause */
        sc.seen = true;
        mvcc_ext_scan_prefix(s, V2_TABLE_HISTORY, NULL, 0, &sc.oldest,
                             oldest_cb);
    } else {
        /* one seek to the first event at or after since */
        uint8_t k[8];
        be64(since, k);
        int rc = mvcc_ext_scan_from(s, V2_TABLE_HISTORY, k, 8, &sc, scan_cb);
        if (rc < 0)
            return rc;
    }
    pos->index = cur;
    pos->found = sc.found;
    if (sc.found != 0)
        return 0;
    if (sc.seen && since <= sc.cleared) {
        char cause[96];
        int k = snprintf(cause, sizeof cause,
                         "the requested history has been cleared [%" PRIu64
                         "/%" PRIu64 "]",
                         sc.oldest, since);
        int st =
            v2_error_json(out, V2_E_EVENT_INDEX_CLEARED, cause, (size_t)k, cur);
        return st < 0 ? st : CAIRN_ECOMPACTED;
    }
    return CAIRN_ENOTFOUND;
}

/* ---- paths and checks ---- */

size_t v2_path_clean(const char *p, size_t len, char *out)
{
    /* Go's path.Clean("/" + p): collapse "//", drop ".", resolve ".." */
    size_t n = 0;
    out[n++] = '/';
    size_t i = 0;
    while (i < len) {
        while (i < len && p[i] == '/')
            i++;
        size_t st = i;
        while (i < len && p[i] != '/')
            i++;
        size_t el = i - st;
        if (el == 0 || (el == 1 && p[st] == '.'))
            continue;
        if (el == 2 && p[st] == '.' && p[st + 1] == '.') {
            while (n > 1 && out[n - 1] != '/')
                n--;
            if (n > 1)
                n--; /* the slash before the dropped element */
            continue;
        }
        if (n > 1)
            out[n++] = '/';
        memcpy(out + n, p + st, el);
        n += el;
    }
    return n;
}

int v2_req_check(const struct v2_req *q)
{
    if (q->op < V2_OP_GET || q->op > V2_OP_MAX || q->prev_exist > 2)
        return CAIRN_EINVAL;
    if (q->op == V2_OP_SYNC)
        return 0;
    if (q->path_len == 0 || q->path_len > V2_PATH_MAX || q->path[0] != '/')
        return CAIRN_EINVAL;
    if (q->path_len > 1 && q->path[q->path_len - 1] == '/')
        return CAIRN_EINVAL;
    if (memchr(q->path, 0, q->path_len) != NULL)
        return CAIRN_EINVAL;
    return 0;
}
