/* The compact binary encoding of node's internal requests in log entries
 * and of member records in configuration change contexts (docs/node.md). */
#include "node/node_int.h"

#include <stdio.h>
#include <string.h>

/* ---- encoding ---- */

static int put_bytes(struct buf *b, const uint8_t *p, size_t n)
{
    int rc = buf_append_varint(b, n);
    if (rc == 0 && n > 0)
        rc = buf_append(b, p, n);
    return rc;
}

static int put_i64(struct buf *b, int64_t v)
{
    return buf_append_varint(b, zigzag_encode(v));
}

static int enc_put(struct buf *b, const struct mvcc_put_req *p)
{
    uint8_t flags = (uint8_t)((p->prev_kv ? 1 : 0) | (p->ignore_value ? 2 : 0) |
                              (p->ignore_lease ? 4 : 0));
    int rc = put_bytes(b, p->key, p->key_len);
    if (rc == 0)
        rc = put_bytes(b, p->value, p->value_len);
    if (rc == 0)
        rc = put_i64(b, p->lease);
    if (rc == 0)
        rc = buf_append_u8(b, flags);
    return rc;
}

static int enc_del(struct buf *b, const struct mvcc_delete_req *d)
{
    int rc = put_bytes(b, d->key, d->key_len);
    if (rc == 0)
        rc = put_bytes(b, d->end, d->end_len);
    if (rc == 0)
        rc = buf_append_u8(b, d->prev_kv ? 1 : 0);
    return rc;
}

static int enc_range(struct buf *b, const struct mvcc_range_req *r)
{
    uint8_t flags = (uint8_t)((r->keys_only ? 1 : 0) | (r->count_only ? 2 : 0));
    int rc = put_bytes(b, r->key, r->key_len);
    if (rc == 0)
        rc = put_bytes(b, r->end, r->end_len);
    if (rc == 0)
        rc = put_i64(b, r->limit);
    if (rc == 0)
        rc = put_i64(b, r->revision);
    if (rc == 0)
        rc = buf_append_u8(b, (uint8_t)r->sort_order);
    if (rc == 0)
        rc = buf_append_u8(b, (uint8_t)r->sort_target);
    if (rc == 0)
        rc = buf_append_u8(b, flags);
    if (rc == 0)
        rc = put_i64(b, r->min_mod_rev);
    if (rc == 0)
        rc = put_i64(b, r->max_mod_rev);
    if (rc == 0)
        rc = put_i64(b, r->min_create_rev);
    if (rc == 0)
        rc = put_i64(b, r->max_create_rev);
    return rc;
}

static int enc_txn(struct buf *b, const struct mvcc_txn_req *t, int depth);

static int enc_auth(struct buf *b, const struct auth_req *q)
{
    int rc = buf_append_u8(b, q->op);
    if (rc == 0)
        rc = put_bytes(b, q->name, q->name_len);
    if (rc == 0)
        rc = put_bytes(b, q->role, q->role_len);
    if (rc == 0)
        rc = put_bytes(b, q->password, q->password_len);
    if (rc == 0)
        rc = buf_append_u8(b, q->no_password ? 1 : 0);
    if (rc == 0)
        rc = buf_append_u8(b, q->perm.type);
    if (rc == 0)
        rc = put_bytes(b, q->perm.key, q->perm.key_len);
    if (rc == 0)
        rc = put_bytes(b, q->perm.end, q->perm.end_len);
    return rc;
}

static int enc_v2(struct buf *b, const struct v2_req *q)
{
    uint8_t flags = (uint8_t)((q->dir ? 1 : 0) | (q->recursive ? 2 : 0) |
                              (q->sorted ? 4 : 0) | (q->refresh ? 8 : 0));
    int rc = buf_append_u8(b, q->op);
    if (rc == 0)
        rc = buf_append_u8(b, q->prev_exist);
    if (rc == 0)
        rc = buf_append_u8(b, flags);
    if (rc == 0)
        rc = put_bytes(b, q->path, q->path_len);
    if (rc == 0)
        rc = put_bytes(b, q->value, q->value_len);
    if (rc == 0)
        rc = put_bytes(b, q->prev_value, q->prev_value_len);
    if (rc == 0)
        rc = buf_append_varint(b, q->prev_index);
    if (rc == 0)
        rc = put_i64(b, q->expiration_ns);
    if (rc == 0)
        rc = put_i64(b, q->now_ns);
    return rc;
}

static int enc_ops(struct buf *b, const struct mvcc_op *ops, size_t n,
                   int depth)
{
    int rc = buf_append_varint(b, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = buf_append_u8(b, (uint8_t)ops[i].type);
        if (rc != 0)
            break;
        switch (ops[i].type) {
        case MVCC_OP_RANGE:
            rc = enc_range(b, &ops[i].u.range);
            break;
        case MVCC_OP_PUT:
            rc = enc_put(b, &ops[i].u.put);
            break;
        case MVCC_OP_DELETE:
            rc = enc_del(b, &ops[i].u.del);
            break;
        case MVCC_OP_TXN:
            rc = enc_txn(b, ops[i].u.txn, depth + 1);
            break;
        default:
            CAIRN_UNREACHABLE();
        }
    }
    return rc;
}

static int enc_txn(struct buf *b, const struct mvcc_txn_req *t, int depth)
{
    CAIRN_ASSERT(depth <= NODE__TXN_DEPTH_MAX); /* checked by the caller */
    int rc = buf_append_varint(b, t->n_compares);
    for (size_t i = 0; rc == 0 && i < t->n_compares; i++) {
        const struct mvcc_compare *c = &t->compares[i];
        rc = buf_append_u8(b, (uint8_t)c->result);
        if (rc == 0)
            rc = buf_append_u8(b, (uint8_t)c->target);
        if (rc == 0)
            rc = put_bytes(b, c->key, c->key_len);
        if (rc == 0)
            rc = put_bytes(b, c->end, c->end_len);
        if (rc == 0)
            rc = put_i64(b, c->number);
        if (rc == 0)
            rc = put_bytes(b, c->value, c->value_len);
    }
    if (rc == 0)
        rc = enc_ops(b, t->success, t->n_success, depth);
    if (rc == 0)
        rc = enc_ops(b, t->failure, t->n_failure, depth);
    return rc;
}

int node__req_encode(const struct node__req *r, struct buf *out)
{
    int rc = buf_append_u8(out, NODE__ENTRY_V1);
    if (rc == 0)
        rc = buf_append_u8(out, r->type);
    if (rc == 0)
        rc = buf_append_varint(out, r->id);
    if (rc != 0)
        return rc;
    switch (r->type) {
    case NODE__E_PUT:
        return enc_put(out, &r->u.put);
    case NODE__E_DELETE:
        return enc_del(out, &r->u.del);
    case NODE__E_TXN:
        return enc_txn(out, &r->u.txn, 1);
    case NODE__E_COMPACT:
        rc = put_i64(out, r->u.compact.rev);
        return rc ? rc : buf_append_u8(out, r->u.compact.physical ? 1 : 0);
    case NODE__E_LEASE_GRANT:
        rc = put_i64(out, r->u.grant.id);
        return rc ? rc : put_i64(out, r->u.grant.ttl_s);
    case NODE__E_LEASE_REVOKE:
        return put_i64(out, r->u.revoke_id);
    case NODE__E_LEASE_CHECKPOINT:
        rc = buf_append_varint(out, r->u.checkpoint.n);
        for (size_t i = 0; rc == 0 && i < r->u.checkpoint.n; i++) {
            rc = put_i64(out, r->u.checkpoint.ids[i]);
            if (rc == 0)
                rc = put_i64(out, r->u.checkpoint.remaining_s[i]);
        }
        return rc;
    case NODE__E_ALARM:
        rc = buf_append_u8(out, r->u.alarm.action);
        if (rc == 0)
            rc = buf_append_u8(out, r->u.alarm.type);
        return rc ? rc : buf_append_varint(out, r->u.alarm.member);
    case NODE__E_MEMBER_UPDATE: {
        /* The member record without its own version byte and id prefix. */
        struct buf tmp = BUF_INIT;
        rc = node__member_encode(0, r->u.member, &tmp);
        if (rc == 0)
            rc = buf_append(out, tmp.data, tmp.len);
        buf_free(&tmp);
        return rc;
    }
    case NODE__E_AUTH:
        return enc_auth(out, &r->u.auth);
    case NODE__E_V2:
        return enc_v2(out, &r->u.v2);
    default:
        CAIRN_UNREACHABLE();
    }
}

/* ---- decoding ---- */

/* A varint in its shortest form only: one value, one encoding, so that a
 * decoded entry re-encodes to the same bytes. */
static uint64_t get_uv(struct codec_reader *r)
{
    size_t before = r->off;
    uint64_t v = codec_read_varint(r);
    if (!r->bad && r->off - before != varint_size(v))
        r->bad = true;
    return r->bad ? 0 : v;
}

static const uint8_t *get_bytes(struct codec_reader *r, size_t *n)
{
    uint64_t len = get_uv(r);
    if (r->bad || len > codec_reader_left(r)) {
        r->bad = true;
        *n = 0;
        return NULL;
    }
    *n = (size_t)len;
    return len ? codec_read_bytes(r, (size_t)len) : NULL;
}

static int64_t get_i64(struct codec_reader *r)
{
    return zigzag_decode(get_uv(r));
}

/* A count of items that each take at least one byte: larger than what is
 * left means malformed, which also bounds the allocation. */
static size_t get_count(struct codec_reader *r)
{
    uint64_t n = get_uv(r);
    if (r->bad || n > codec_reader_left(r)) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}

static void dec_put(struct codec_reader *r, struct mvcc_put_req *p)
{
    memset(p, 0, sizeof(*p));
    p->key = get_bytes(r, &p->key_len);
    p->value = get_bytes(r, &p->value_len);
    p->lease = get_i64(r);
    uint8_t flags = codec_read_u8(r);
    if (flags & ~7u)
        r->bad = true;
    p->prev_kv = flags & 1;
    p->ignore_value = flags & 2;
    p->ignore_lease = flags & 4;
}

static void dec_del(struct codec_reader *r, struct mvcc_delete_req *d)
{
    memset(d, 0, sizeof(*d));
    d->key = get_bytes(r, &d->key_len);
    d->end = get_bytes(r, &d->end_len);
    uint8_t flags = codec_read_u8(r);
    if (flags & ~1u)
        r->bad = true;
    d->prev_kv = flags & 1;
}

static void dec_range(struct codec_reader *r, struct mvcc_range_req *q)
{
    memset(q, 0, sizeof(*q));
    q->key = get_bytes(r, &q->key_len);
    q->end = get_bytes(r, &q->end_len);
    q->limit = get_i64(r);
    q->revision = get_i64(r);
    uint8_t order = codec_read_u8(r), target = codec_read_u8(r);
    uint8_t flags = codec_read_u8(r);
    if (order > MVCC_SORT_DESCEND || target > MVCC_SORT_VALUE || (flags & ~3u))
        r->bad = true;
    q->sort_order = (enum mvcc_sort_order)order;
    q->sort_target = (enum mvcc_sort_target)target;
    q->keys_only = flags & 1;
    q->count_only = flags & 2;
    q->min_mod_rev = get_i64(r);
    q->max_mod_rev = get_i64(r);
    q->min_create_rev = get_i64(r);
    q->max_create_rev = get_i64(r);
}

static int dec_txn(struct codec_reader *r, struct mvcc_arena *a,
                   struct mvcc_txn_req *t, int depth);

static int dec_ops(struct codec_reader *r, struct mvcc_arena *a,
                   const struct mvcc_op **out, size_t *n_out, int depth)
{
    size_t n = get_count(r);
    *out = NULL;
    *n_out = 0;
    if (r->bad)
        return CAIRN_EMALFORMED;
    if (n == 0)
        return 0;
    struct mvcc_op *ops = mvcc_arena_alloc(a, n * sizeof(*ops));
    if (ops == NULL)
        return CAIRN_ENOMEM;
    memset(ops, 0, n * sizeof(*ops));
    for (size_t i = 0; i < n; i++) {
        uint8_t type = codec_read_u8(r);
        if (r->bad)
            return CAIRN_EMALFORMED;
        ops[i].type = (enum mvcc_op_type)type;
        switch (type) {
        case MVCC_OP_RANGE:
            dec_range(r, &ops[i].u.range);
            break;
        case MVCC_OP_PUT:
            dec_put(r, &ops[i].u.put);
            break;
        case MVCC_OP_DELETE:
            dec_del(r, &ops[i].u.del);
            break;
        case MVCC_OP_TXN: {
            if (depth + 1 > NODE__TXN_DEPTH_MAX)
                return CAIRN_EMALFORMED;
            struct mvcc_txn_req *sub = mvcc_arena_alloc(a, sizeof(*sub));
            if (sub == NULL)
                return CAIRN_ENOMEM;
            int rc = dec_txn(r, a, sub, depth + 1);
            if (rc != 0)
                return rc;
            ops[i].u.txn = sub;
            break;
        }
        default:
            return CAIRN_EMALFORMED;
        }
        if (r->bad)
            return CAIRN_EMALFORMED;
    }
    *out = ops;
    *n_out = n;
    return 0;
}

static int dec_txn(struct codec_reader *r, struct mvcc_arena *a,
                   struct mvcc_txn_req *t, int depth)
{
    memset(t, 0, sizeof(*t));
    size_t n = get_count(r);
    if (r->bad)
        return CAIRN_EMALFORMED;
    if (n > 0) {
        struct mvcc_compare *c = mvcc_arena_alloc(a, n * sizeof(*c));
        if (c == NULL)
            return CAIRN_ENOMEM;
        memset(c, 0, n * sizeof(*c));
        for (size_t i = 0; i < n; i++) {
            uint8_t res = codec_read_u8(r), target = codec_read_u8(r);
            if (res > MVCC_CMP_NOT_EQUAL || target > MVCC_CMP_LEASE)
                r->bad = true;
            c[i].result = (enum mvcc_cmp_result)res;
            c[i].target = (enum mvcc_cmp_target)target;
            c[i].key = get_bytes(r, &c[i].key_len);
            c[i].end = get_bytes(r, &c[i].end_len);
            c[i].number = get_i64(r);
            c[i].value = get_bytes(r, &c[i].value_len);
            if (r->bad)
                return CAIRN_EMALFORMED;
        }
        t->compares = c;
        t->n_compares = n;
    }
    int rc = dec_ops(r, a, &t->success, &t->n_success, depth);
    if (rc == 0)
        rc = dec_ops(r, a, &t->failure, &t->n_failure, depth);
    return rc;
}

static int dec_member_body(struct codec_reader *r, struct node_member *m);

/* Anything auth_req_check refuses (unknown op or permission type, names
 * too long or holding NUL) is malformed: the proposer checked it. */
static void dec_auth(struct codec_reader *r, struct auth_req *q)
{
    q->op = codec_read_u8(r);
    q->name = get_bytes(r, &q->name_len);
    q->role = get_bytes(r, &q->role_len);
    q->password = get_bytes(r, &q->password_len);
    uint8_t f = codec_read_u8(r);
    q->no_password = f & 1;
    q->perm.type = codec_read_u8(r);
    q->perm.key = get_bytes(r, &q->perm.key_len);
    q->perm.end = get_bytes(r, &q->perm.end_len);
    if (f > 1 || q->perm.type > AUTH_PERM_READWRITE ||
        (!r->bad && auth_req_check(q) != 0))
        r->bad = true;
}

/* Anything v2_req_check refuses is malformed: the proposer checked it. */
static void dec_v2(struct codec_reader *r, struct v2_req *q)
{
    q->op = codec_read_u8(r);
    q->prev_exist = codec_read_u8(r);
    uint8_t f = codec_read_u8(r);
    q->dir = f & 1;
    q->recursive = (f & 2) != 0;
    q->sorted = (f & 4) != 0;
    q->refresh = (f & 8) != 0;
    q->path = get_bytes(r, &q->path_len);
    q->value = get_bytes(r, &q->value_len);
    q->prev_value = get_bytes(r, &q->prev_value_len);
    q->prev_index = get_uv(r);
    q->expiration_ns = get_i64(r);
    q->now_ns = get_i64(r);
    if (f > 15 || (!r->bad && v2_req_check(q) != 0))
        r->bad = true;
}

int node__req_decode(const void *p, size_t len, struct mvcc_arena *a,
                     struct node__req *out)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    memset(out, 0, sizeof(*out));
    if (codec_read_u8(&r) != NODE__ENTRY_V1)
        return CAIRN_EMALFORMED;
    out->type = codec_read_u8(&r);
    out->id = get_uv(&r);
    if (r.bad)
        return CAIRN_EMALFORMED;
    int rc = 0;
    switch (out->type) {
    case NODE__E_PUT:
        dec_put(&r, &out->u.put);
        break;
    case NODE__E_DELETE:
        dec_del(&r, &out->u.del);
        break;
    case NODE__E_TXN:
        rc = dec_txn(&r, a, &out->u.txn, 1);
        break;
    case NODE__E_COMPACT: {
        out->u.compact.rev = get_i64(&r);
        uint8_t f = codec_read_u8(&r);
        if (f > 1)
            r.bad = true;
        out->u.compact.physical = f;
        break;
    }
    case NODE__E_LEASE_GRANT:
        out->u.grant.id = get_i64(&r);
        out->u.grant.ttl_s = get_i64(&r);
        break;
    case NODE__E_LEASE_REVOKE:
        out->u.revoke_id = get_i64(&r);
        break;
    case NODE__E_LEASE_CHECKPOINT: {
        size_t n = get_count(&r);
        if (r.bad || n > NODE__CHECKPOINTS_MAX)
            return CAIRN_EMALFORMED;
        int64_t *ids = NULL, *rem = NULL;
        if (n > 0) {
            ids = mvcc_arena_alloc(a, n * sizeof(*ids));
            rem = mvcc_arena_alloc(a, n * sizeof(*rem));
            if (ids == NULL || rem == NULL)
                return CAIRN_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            ids[i] = get_i64(&r);
            rem[i] = get_i64(&r);
        }
        out->u.checkpoint.ids = ids;
        out->u.checkpoint.remaining_s = rem;
        out->u.checkpoint.n = n;
        break;
    }
    case NODE__E_ALARM:
        out->u.alarm.action = codec_read_u8(&r);
        out->u.alarm.type = codec_read_u8(&r);
        out->u.alarm.member = get_uv(&r);
        if (out->u.alarm.action < NODE_ALARM_ACTIVATE ||
            out->u.alarm.action > NODE_ALARM_DEACTIVATE ||
            out->u.alarm.type > NODE_ALARM_CORRUPT)
            r.bad = true;
        break;
    case NODE__E_MEMBER_UPDATE: {
        struct node_member *m = mvcc_arena_alloc(a, sizeof(*m));
        if (m == NULL)
            return CAIRN_ENOMEM;
        if (codec_read_u8(&r) != NODE__ENTRY_V1)
            return CAIRN_EMALFORMED;
        if (get_uv(&r) != 0) /* the record's own id slot */
            return CAIRN_EMALFORMED;
        rc = dec_member_body(&r, m);
        out->u.member = m;
        break;
    }
    case NODE__E_AUTH:
        dec_auth(&r, &out->u.auth);
        break;
    case NODE__E_V2:
        dec_v2(&r, &out->u.v2);
        break;
    default:
        return CAIRN_EMALFORMED;
    }
    if (rc != 0)
        return rc;
    if (r.bad || codec_reader_left(&r) != 0)
        return CAIRN_EMALFORMED;
    return 0;
}

/* ---- member records ---- */

static int put_str(struct buf *b, const char *s)
{
    return put_bytes(b, (const uint8_t *)s, strlen(s));
}

int node__member_encode(uint64_t req_id, const struct node_member *m,
                        struct buf *out)
{
    CAIRN_ASSERT(m->n_peer_urls <= NODE_MEMBER_URLS_MAX);
    CAIRN_ASSERT(m->n_client_urls <= NODE_MEMBER_URLS_MAX);
    int rc = buf_append_u8(out, NODE__ENTRY_V1);
    if (rc == 0)
        rc = buf_append_varint(out, req_id);
    if (rc == 0)
        rc = buf_append_varint(out, m->id);
    if (rc == 0)
        rc = put_str(out, m->name);
    if (rc == 0)
        rc = buf_append_varint(out, m->n_peer_urls);
    for (uint32_t i = 0; rc == 0 && i < m->n_peer_urls; i++)
        rc = put_str(out, m->peer_urls[i]);
    if (rc == 0)
        rc = buf_append_varint(out, m->n_client_urls);
    for (uint32_t i = 0; rc == 0 && i < m->n_client_urls; i++)
        rc = put_str(out, m->client_urls[i]);
    if (rc == 0)
        rc = buf_append_u8(out, m->is_learner ? 1 : 0);
    return rc;
}

/* Copies a length-prefixed string into dst (size bytes, NUL included);
 * too long or containing NUL is malformed. */
static void get_str(struct codec_reader *r, char *dst, size_t size)
{
    size_t n;
    const uint8_t *p = get_bytes(r, &n);
    if (r->bad || n >= size || (n > 0 && memchr(p, 0, n) != NULL)) {
        r->bad = true;
        dst[0] = 0;
        return;
    }
    if (n > 0)
        memcpy(dst, p, n);
    dst[n] = 0;
}

static int dec_member_body(struct codec_reader *r, struct node_member *m)
{
    memset(m, 0, sizeof(*m));
    m->id = get_uv(r);
    get_str(r, m->name, sizeof(m->name));
    uint64_t np = get_uv(r);
    if (r->bad || np > NODE_MEMBER_URLS_MAX)
        return CAIRN_EMALFORMED;
    m->n_peer_urls = (uint32_t)np;
    for (uint32_t i = 0; i < m->n_peer_urls; i++)
        get_str(r, m->peer_urls[i], NODE_URL_MAX);
    uint64_t nc = get_uv(r);
    if (r->bad || nc > NODE_MEMBER_URLS_MAX)
        return CAIRN_EMALFORMED;
    m->n_client_urls = (uint32_t)nc;
    for (uint32_t i = 0; i < m->n_client_urls; i++)
        get_str(r, m->client_urls[i], NODE_URL_MAX);
    uint8_t flags = codec_read_u8(r);
    if (flags > 1)
        r->bad = true;
    m->is_learner = flags;
    return r->bad ? CAIRN_EMALFORMED : 0;
}

int node__member_decode(const void *p, size_t len, uint64_t *req_id,
                        struct node_member *m)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    if (codec_read_u8(&r) != NODE__ENTRY_V1)
        return CAIRN_EMALFORMED;
    *req_id = get_uv(&r);
    int rc = dec_member_body(&r, m);
    if (rc != 0)
        return rc;
    if (r.bad || codec_reader_left(&r) != 0)
        return CAIRN_EMALFORMED;
    return 0;
}

/* ---- description for tools and traces ---- */

static const char *type_names[NODE__E_MAX + 1] = {
    "?",      "put",        "delete", "txn",           "compact", "grant",
    "revoke", "checkpoint", "alarm",  "member-update", "auth",    "v2",
};

int node_entry_describe(const void *data, size_t len, char *out, size_t size)
{
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    struct node__req r;
    int rc = node__req_decode(data, len, &a, &r);
    if (rc == 0) {
        int k = snprintf(out, size, "%s id=%llx", type_names[r.type],
                         (unsigned long long)r.id);
        size_t used = k < 0 ? 0 : ((size_t)k < size ? (size_t)k : size);
        char *p = out + used;
        size_t left = size - used;
        switch (r.type) {
        case NODE__E_PUT:
            snprintf(p, left, " key=%.*s value_len=%zu lease=%lld",
                     (int)(r.u.put.key_len > 64 ? 64 : r.u.put.key_len),
                     r.u.put.key ? (const char *)r.u.put.key : "",
                     r.u.put.value_len, (long long)r.u.put.lease);
            break;
        case NODE__E_DELETE:
            snprintf(p, left, " key=%.*s end_len=%zu",
                     (int)(r.u.del.key_len > 64 ? 64 : r.u.del.key_len),
                     r.u.del.key ? (const char *)r.u.del.key : "",
                     r.u.del.end_len);
            break;
        case NODE__E_TXN:
            snprintf(p, left, " compares=%zu success=%zu failure=%zu",
                     r.u.txn.n_compares, r.u.txn.n_success, r.u.txn.n_failure);
            break;
        case NODE__E_COMPACT:
            snprintf(p, left, " rev=%lld", (long long)r.u.compact.rev);
            break;
        case NODE__E_LEASE_GRANT:
            snprintf(p, left, " lease=%lld ttl=%lld", (long long)r.u.grant.id,
                     (long long)r.u.grant.ttl_s);
            break;
        case NODE__E_LEASE_REVOKE:
            snprintf(p, left, " lease=%lld", (long long)r.u.revoke_id);
            break;
        case NODE__E_LEASE_CHECKPOINT:
            snprintf(p, left, " n=%zu", r.u.checkpoint.n);
            break;
        case NODE__E_ALARM:
            snprintf(p, left, " action=%u type=%u member=%llx",
                     r.u.alarm.action, r.u.alarm.type,
                     (unsigned long long)r.u.alarm.member);
            break;
        case NODE__E_MEMBER_UPDATE:
            snprintf(p, left, " member=%llx",
                     (unsigned long long)r.u.member->id);
            break;
        case NODE__E_AUTH:
            /* names only: never a password hash in a trace */
            snprintf(p, left, " op=%u name=%.*s role=%.*s", r.u.auth.op,
                     (int)(r.u.auth.name_len > 64 ? 64 : r.u.auth.name_len),
                     r.u.auth.name ? (const char *)r.u.auth.name : "",
                     (int)(r.u.auth.role_len > 64 ? 64 : r.u.auth.role_len),
                     r.u.auth.role ? (const char *)r.u.auth.role : "");
            break;
        case NODE__E_V2:
            snprintf(p, left, " op=%u path=%.*s value_len=%zu", r.u.v2.op,
                     (int)(r.u.v2.path_len > 64 ? 64 : r.u.v2.path_len),
                     r.u.v2.path ? (const char *)r.u.v2.path : "",
                     r.u.v2.value_len);
            break;
        default:
            break;
        }
    }
    mvcc_arena_free(&a);
    return rc;
}
