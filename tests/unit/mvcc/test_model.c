/* Model-based test of the store: long random sequences of puts, deletes,
 * txns (nested), ranges at random revisions, compactions, lease
 * revocations, batch aborts, reopens and watches, each result compared
 * field by field with a naive in-memory model of etcd's semantics. */
#include "helpers.h"
#include "tests.h"

#define FILL 479
#define MK (3 + FILL)
#define MV 24
#define MAX_LEASES 8
#define MAX_WATCHERS 6

struct mrec {
    uint8_t key[MK];
    size_t klen;
    mvcc_rev main;
    int64_t sub;
    bool tomb;
    mvcc_rev create;
    int64_t version, lease;
    uint8_t val[MV];
    size_t vlen;
};

struct model {
    struct mrec *r;
    size_t n, cap;
    mvcc_rev rev, compact;
    /* Committed state, for reads outside the batch. */
    size_t cn;
    mvcc_rev crev, ccompact;
    int64_t leases[MAX_LEASES];
    size_t nleases;
};

/* ---- model ---- */

static int kcmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c)
        return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

static bool in_range(const uint8_t *k, size_t kl, const uint8_t *key,
                     size_t key_len, const uint8_t *end, size_t end_len)
{
    if (end_len == 0)
        return kcmp(k, kl, key, key_len) == 0;
    if (kcmp(k, kl, key, key_len) < 0)
        return false;
    if (end_len == 1 && end[0] == 0)
        return true;
    return kcmp(k, kl, end, end_len) < 0;
}

/* The record of key visible at `at` among the first n records. */
static const struct mrec *m_visible(const struct model *m, size_t n,
                                    const uint8_t *k, size_t kl, mvcc_rev at)
{
    for (size_t i = n; i-- > 0;) {
        const struct mrec *r = &m->r[i];
        if (r->main <= at && kcmp(r->key, r->klen, k, kl) == 0)
            return r->tomb ? NULL : r;
    }
    return NULL;
}

static int rec_ptr_cmp(const void *a, const void *b)
{
    const struct mrec *x = *(const struct mrec *const *)a;
    const struct mrec *y = *(const struct mrec *const *)b;
    return kcmp(x->key, x->klen, y->key, y->klen);
}

/* Visible records in [key, end) at `at`, in key order; returns count. */
static size_t m_visit(const struct model *m, size_t n, const uint8_t *key,
                      size_t key_len, const uint8_t *end, size_t end_len,
                      mvcc_rev at, const struct mrec **out)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++) {
        const struct mrec *r = &m->r[i];
        if (!in_range(r->key, r->klen, key, key_len, end, end_len))
            continue;
        /* Count each key once: at its last record among the first n. */
        bool later = false;
        for (size_t j = i + 1; j < n && !later; j++)
            later = kcmp(m->r[j].key, m->r[j].klen, r->key, r->klen) == 0;
        if (later)
            continue;
        const struct mrec *v = m_visible(m, n, r->key, r->klen, at);
        if (v != NULL)
            out[c++] = v;
    }
    qsort(out, c, sizeof(*out), rec_ptr_cmp);
    return c;
}

static struct mrec *m_add(struct model *m)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->r = realloc(m->r, m->cap * sizeof(*m->r));
        assert_non_null(m->r);
    }
    struct mrec *r = &m->r[m->n++];
    memset(r, 0, sizeof(*r));
    return r;
}

static bool m_lease_exists(void *arg, int64_t id)
{
    struct model *m = arg;
    for (size_t i = 0; i < m->nleases; i++)
        if (m->leases[i] == id)
            return true;
    return false;
}

struct mw {
    mvcc_rev begin, main;
    int64_t sub;
};

static mvcc_rev mw_rev(const struct mw *w)
{
    return w->sub ? w->main : w->begin;
}

static void check_kv(const struct mvcc_kv *kv, const struct mrec *r,
                     bool keys_only)
{
    if (kcmp(kv->key, kv->key_len, r->key, r->klen) != 0 ||
        kv->mod_rev != r->main)
        fprintf(stderr, "kv %.*s@%lld vs model %.*s@%lld\n", (int)kv->key_len,
                (const char *)kv->key, (long long)kv->mod_rev, (int)r->klen,
                (const char *)r->key, (long long)r->main);
    assert_int_equal(kcmp(kv->key, kv->key_len, r->key, r->klen), 0);
    assert_int_equal(kv->create_rev, r->create);
    assert_int_equal(kv->mod_rev, r->main);
    assert_int_equal(kv->version, r->version);
    assert_int_equal(kv->lease, r->lease);
    if (keys_only)
        assert_int_equal(kv->value_len, 0);
    else
        assert_int_equal(kcmp(kv->value, kv->value_len, r->val, r->vlen), 0);
}

static int64_t tcmp_int(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int sort_key(const struct mrec *a, const struct mrec *b,
                    enum mvcc_sort_target t)
{
    switch (t) {
    case MVCC_SORT_KEY:
        return kcmp(a->key, a->klen, b->key, b->klen);
    case MVCC_SORT_VERSION:
        return (int)tcmp_int(a->version, b->version);
    case MVCC_SORT_CREATE:
        return (int)tcmp_int(a->create, b->create);
    case MVCC_SORT_MOD:
        return (int)tcmp_int(a->main, b->main);
    case MVCC_SORT_VALUE:
        return kcmp(a->val, a->vlen, b->val, b->vlen);
    }
    return 0;
}

/* Checks a range response against the model over the first n records. */
static void m_check_range(const struct model *m, size_t n, mvcc_rev cur,
                          mvcc_rev compact, const struct mvcc_range_req *q,
                          int rc, const struct mvcc_range_resp *resp)
{
    if (q->revision > cur) {
        assert_int_equal(rc, CAIRN_EFUTUREREV);
        return;
    }
    mvcc_rev at = q->revision <= 0 ? cur : q->revision;
    if (at < compact) {
        assert_int_equal(rc, CAIRN_EREVCOMPACTED);
        return;
    }
    assert_int_equal(rc, 0);
    const struct mrec **v = malloc((n + 1) * sizeof(*v));
    size_t c = m_visit(m, n, q->key, q->key_len, q->end, q->end_len, at, v);
    assert_int_equal(resp->count, (int64_t)c);
    assert_int_equal(resp->header_rev, cur);
    if (q->count_only) {
        assert_int_equal(resp->n_kvs, 0);
        free(v);
        return;
    }
    size_t j = 0;
    for (size_t i = 0; i < c; i++) {
        const struct mrec *r = v[i];
        if ((q->max_mod_rev && r->main > q->max_mod_rev) ||
            (q->min_mod_rev && r->main < q->min_mod_rev) ||
            (q->max_create_rev && r->create > q->max_create_rev) ||
            (q->min_create_rev && r->create < q->min_create_rev))
            continue;
        v[j++] = r;
    }
    /* etcd fetches only limit+1 keys (in key order) unless sorting
     * explicitly or filtering, and sorts what it fetched. */
    if (q->sort_order == MVCC_SORT_NONE && !q->min_mod_rev && !q->max_mod_rev &&
        !q->min_create_rev && !q->max_create_rev && q->limit > 0 &&
        j > (size_t)q->limit + 1)
        j = (size_t)q->limit + 1;
    enum mvcc_sort_order o = q->sort_order;
    if (q->sort_target != MVCC_SORT_KEY && o == MVCC_SORT_NONE)
        o = MVCC_SORT_ASCEND;
    if (o != MVCC_SORT_NONE) {
        /* insertion sort: stable, ties in key order */
        for (size_t i = 1; i < j; i++) {
            const struct mrec *x = v[i];
            size_t p = i;
            while (p > 0) {
                int cmp = sort_key(v[p - 1], x, q->sort_target);
                if (o == MVCC_SORT_DESCEND)
                    cmp = -cmp;
                if (cmp <= 0)
                    break;
                v[p] = v[p - 1];
                p--;
            }
            v[p] = x;
        }
    }
    bool more = false;
    if (q->limit > 0 && j > (size_t)q->limit) {
        j = (size_t)q->limit;
        more = true;
    }
    if (resp->n_kvs != j || resp->more != more || getenv("CAIRN_MVCC_TRACE"))
        fprintf(stderr,
                "range %.*s..%.*s(%zu) rev %lld limit %lld sort %d/%d ko %d "
                "co %d mm %lld/%lld cc %lld/%lld -> n %zu/%zu\n",
                (int)q->key_len, (const char *)q->key, (int)q->end_len,
                (const char *)q->end, q->end_len, (long long)q->revision,
                (long long)q->limit, q->sort_order, q->sort_target,
                q->keys_only, q->count_only, (long long)q->min_mod_rev,
                (long long)q->max_mod_rev, (long long)q->min_create_rev,
                (long long)q->max_create_rev, resp->n_kvs, j);
    assert_int_equal(resp->more, more);
    assert_int_equal(resp->n_kvs, j);
    for (size_t i = 0; i < j; i++)
        check_kv(&resp->kvs[i], v[i], q->keys_only);
    free(v);
}

static void m_write(struct model *m, struct mw *w, const uint8_t *k, size_t kl,
                    bool tomb, mvcc_rev create, int64_t version, int64_t lease,
                    const uint8_t *val, size_t vl)
{
    struct mrec *r = m_add(m);
    memcpy(r->key, k, kl);
    r->klen = kl;
    r->main = w->main;
    r->sub = w->sub++;
    r->tomb = tomb;
    r->create = create;
    r->version = version;
    r->lease = lease;
    if (vl)
        memcpy(r->val, val, vl);
    r->vlen = vl;
    m->rev = w->main;
}

/* resp NULL: a dry run that only finds out whether the request fails. */
static int m_put(struct model *m, struct mw *w, const struct mvcc_put_req *q,
                 const struct mvcc_put_resp *resp)
{
    const struct mrec *p = m_visible(m, m->n, q->key, q->key_len, mw_rev(w));
    struct mrec prev;
    if (p)
        prev = *p;
    if ((q->ignore_value || q->ignore_lease) && !p)
        return CAIRN_EKEYNOTFOUND;
    if (resp != NULL && q->prev_kv && p) {
        assert_non_null(resp->prev_kv);
        check_kv(resp->prev_kv, &prev, false);
    } else if (resp != NULL) {
        assert_null(resp->prev_kv);
    }
    const uint8_t *val = q->ignore_value ? prev.val : q->value;
    size_t vl = q->ignore_value ? prev.vlen : q->value_len;
    int64_t lease = q->ignore_lease ? prev.lease : q->lease;
    m_write(m, w, q->key, q->key_len, false, p ? prev.create : w->main,
            p ? prev.version + 1 : 1, lease, val, vl);
    if (resp)
        assert_int_equal(resp->header_rev, w->main);
    return 0;
}

static void m_del(struct model *m, struct mw *w,
                  const struct mvcc_delete_req *q,
                  const struct mvcc_delete_resp *resp)
{
    const struct mrec **v = malloc((m->n + 1) * sizeof(*v));
    size_t c =
        m_visit(m, m->n, q->key, q->key_len, q->end, q->end_len, mw_rev(w), v);
    struct mrec *copy = malloc((c + 1) * sizeof(*copy));
    for (size_t i = 0; i < c; i++)
        copy[i] = *v[i];
    if (resp != NULL) {
        assert_int_equal(resp->deleted, (int64_t)c);
        assert_int_equal(resp->n_prev_kvs, q->prev_kv ? c : 0);
        for (size_t i = 0; q->prev_kv && i < c; i++)
            check_kv(&resp->prev_kvs[i], &copy[i], false);
    }
    for (size_t i = 0; i < c; i++)
        m_write(m, w, copy[i].key, copy[i].klen, true, 0, 0, 0, NULL, 0);
    if (resp)
        assert_int_equal(resp->header_rev, mw_rev(w));
    free(copy);
    free(v);
}

static bool m_cmp_one(const struct mvcc_compare *c, const struct mrec *r)
{
    struct mrec zero = {0};
    if (r == NULL)
        r = &zero;
    int64_t x;
    switch (c->target) {
    case MVCC_CMP_VALUE:
        x = kcmp(r->val, r->vlen, c->value, c->value_len);
        break;
    case MVCC_CMP_CREATE:
        x = tcmp_int(r->create, c->number);
        break;
    case MVCC_CMP_MOD:
        x = tcmp_int(r->main, c->number);
        break;
    case MVCC_CMP_VERSION:
        x = tcmp_int(r->version, c->number);
        break;
    default:
        x = tcmp_int(r->lease, c->number);
        break;
    }
    switch (c->result) {
    case MVCC_CMP_EQUAL:
        return x == 0;
    case MVCC_CMP_NOT_EQUAL:
        return x != 0;
    case MVCC_CMP_GREATER:
        return x > 0;
    default:
        return x < 0;
    }
}

static bool m_compares(struct model *m, mvcc_rev at,
                       const struct mvcc_txn_req *t)
{
    const struct mrec **v = malloc((m->n + 1) * sizeof(*v));
    bool ok = true;
    for (size_t i = 0; i < t->n_compares && ok; i++) {
        const struct mvcc_compare *c = &t->compares[i];
        size_t n =
            m_visit(m, m->n, c->key, c->key_len, c->end, c->end_len, at, v);
        if (n == 0)
            ok = c->target != MVCC_CMP_VALUE && m_cmp_one(c, NULL);
        for (size_t j = 0; j < n && ok; j++)
            ok = m_cmp_one(c, v[j]);
    }
    free(v);
    return ok;
}

/* Pre-order path of branch choices, all evaluated before any write. */
static void m_path(struct model *m, mvcc_rev at, const struct mvcc_txn_req *t,
                   bool *path, size_t *n)
{
    bool ok = m_compares(m, at, t);
    path[(*n)++] = ok;
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t k = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < k; i++)
        if (ops[i].type == MVCC_OP_TXN)
            m_path(m, at, ops[i].u.txn, path, n);
}

static int m_check(struct model *m, mvcc_rev at, const struct mvcc_txn_req *t,
                   const bool *path, size_t *pos)
{
    bool ok = path[(*pos)++];
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t k = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < k; i++) {
        int rc = 0;
        if (ops[i].type == MVCC_OP_TXN) {
            rc = m_check(m, at, ops[i].u.txn, path, pos);
        } else if (ops[i].type == MVCC_OP_PUT) {
            const struct mvcc_put_req *p = &ops[i].u.put;
            if ((p->ignore_value || p->ignore_lease) &&
                !m_visible(m, m->n, p->key, p->key_len, at))
                rc = CAIRN_EKEYNOTFOUND;
            else if (p->lease && !m_lease_exists(m, p->lease))
                rc = CAIRN_ELEASENOTFOUND;
        } else if (ops[i].type == MVCC_OP_RANGE) {
            const struct mvcc_range_req *r = &ops[i].u.range;
            if (r->revision > at)
                rc = CAIRN_EFUTUREREV;
            else if (r->revision != 0 && r->revision < m->compact)
                rc = CAIRN_EREVCOMPACTED;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* resp NULL: a dry run returning the error the txn meets, if any. */
static int m_exec(struct model *m, struct mw *w, const struct mvcc_txn_req *t,
                  const bool *path, size_t *pos,
                  const struct mvcc_txn_resp *resp)
{
    bool ok = path[(*pos)++];
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t k = ok ? t->n_success : t->n_failure;
    if (resp) {
        assert_int_equal(resp->succeeded, ok);
        assert_int_equal(resp->n_responses, k);
    }
    for (size_t i = 0; i < k; i++) {
        const struct mvcc_op_resp *r = resp ? &resp->responses[i] : NULL;
        if (r)
            assert_int_equal(r->type, ops[i].type);
        int rc = 0;
        switch (ops[i].type) {
        case MVCC_OP_RANGE:
            if (r)
                m_check_range(m, m->n, mw_rev(w), m->compact, &ops[i].u.range,
                              0, &r->u.range);
            break;
        case MVCC_OP_PUT:
            rc = m_put(m, w, &ops[i].u.put, r ? &r->u.put : NULL);
            break;
        case MVCC_OP_DELETE:
            m_del(m, w, &ops[i].u.del, r ? &r->u.del : NULL);
            break;
        case MVCC_OP_TXN:
            if (r)
                assert_int_equal(r->u.txn->header_rev, 0);
            rc = m_exec(m, w, ops[i].u.txn, path, pos, r ? r->u.txn : NULL);
            break;
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- random requests ---- */

struct gen {
    struct prng p;
    struct mvcc_arena a; /* request memory, reset per step */
    struct model *m;
};

/* Keys of 1 to 3 letters a-d. Those starting with c or d often carry a
 * filler after their first letter that makes them long (the store keeps
 * keys over 479 bytes by prefix and hash, in groups it sorts when read):
 * "c" + 477-479 filler bytes + 0-2 letters, so short and long keys share
 * prefixes and the group sits right after its 479-byte prefix. */
static const uint8_t *gkey(struct gen *g, size_t *len)
{
    size_t n = 1 + prng_below(&g->p, 3);
    uint8_t *k = mvcc_arena_alloc(&g->a, n + FILL);
    k[0] = (uint8_t)('a' + prng_below(&g->p, 4));
    size_t f = 0;
    if (k[0] >= 'c' && prng_chance(&g->p, 0.6))
        f = FILL - 2 + prng_below(&g->p, 3);
    memset(k + 1, 'm', f);
    for (size_t i = 1; i < n; i++)
        k[f + i] = (uint8_t)('a' + prng_below(&g->p, 4));
    *len = n + f;
    return k;
}

static void gend(struct gen *g, const uint8_t *key, size_t kl,
                 const uint8_t **end, size_t *el)
{
    switch (prng_below(&g->p, 5)) {
    case 0:
    case 1:
        *end = NULL;
        *el = 0;
        break;
    case 2: { /* prefix */
        uint8_t *e = mvcc_arena_alloc(&g->a, kl);
        memcpy(e, key, kl);
        e[kl - 1]++;
        *end = e;
        *el = kl;
        break;
    }
    case 3: {
        static const uint8_t z = 0;
        *end = &z;
        *el = 1;
        break;
    }
    default:
        *end = gkey(g, el);
    }
}

static const uint8_t *gval(struct gen *g, size_t *len)
{
    size_t n = prng_below(&g->p, 6);
    uint8_t *v = mvcc_arena_alloc(&g->a, n + 1);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint8_t)('0' + prng_below(&g->p, 3));
    *len = n;
    return v;
}

static int64_t glease(struct gen *g)
{
    uint64_t r = prng_below(&g->p, 10);
    if (r < 6)
        return 0;
    if (r < 9 && g->m->nleases > 0)
        return g->m->leases[prng_below(&g->p, g->m->nleases)];
    return 1000 + (int64_t)prng_below(&g->p, 3); /* usually missing */
}

static void gput(struct gen *g, struct mvcc_put_req *q)
{
    memset(q, 0, sizeof(*q));
    q->key = gkey(g, &q->key_len);
    q->prev_kv = prng_chance(&g->p, 0.5);
    uint64_t r = prng_below(&g->p, 10);
    if (r == 0) {
        q->ignore_value = true;
    } else if (r == 1) {
        q->ignore_lease = true;
    } else if (r == 2) {
        q->ignore_value = q->ignore_lease = true;
    }
    if (!q->ignore_value)
        q->value = gval(g, &q->value_len);
    if (!q->ignore_lease)
        q->lease = glease(g);
}

static void gdel(struct gen *g, struct mvcc_delete_req *q)
{
    memset(q, 0, sizeof(*q));
    q->key = gkey(g, &q->key_len);
    gend(g, q->key, q->key_len, &q->end, &q->end_len);
    q->prev_kv = prng_chance(&g->p, 0.5);
}

static void grange(struct gen *g, struct mvcc_range_req *q, mvcc_rev cur,
                   mvcc_rev compact)
{
    memset(q, 0, sizeof(*q));
    q->key = gkey(g, &q->key_len);
    gend(g, q->key, q->key_len, &q->end, &q->end_len);
    if (prng_chance(&g->p, 0.3))
        q->limit = (int64_t)prng_below(&g->p, 4);
    if (prng_chance(&g->p, 0.4)) {
        mvcc_rev lo = compact > 2 ? compact - 2 : 1;
        q->revision =
            (mvcc_rev)prng_range(&g->p, (uint64_t)lo, (uint64_t)cur + 1);
    }
    if (prng_chance(&g->p, 0.3)) {
        q->sort_order = (enum mvcc_sort_order)prng_below(&g->p, 3);
        q->sort_target = (enum mvcc_sort_target)prng_below(&g->p, 5);
    }
    q->keys_only = prng_chance(&g->p, 0.2);
    q->count_only = prng_chance(&g->p, 0.1);
    if (prng_chance(&g->p, 0.2)) {
        mvcc_rev x = (mvcc_rev)prng_range(&g->p, 1, (uint64_t)cur + 1);
        switch (prng_below(&g->p, 4)) {
        case 0:
            q->min_mod_rev = x;
            break;
        case 1:
            q->max_mod_rev = x;
            break;
        case 2:
            q->min_create_rev = x;
            break;
        default:
            q->max_create_rev = x;
        }
    }
}

static struct mvcc_txn_req *gtxn(struct gen *g, int depth, mvcc_rev cur)
{
    struct mvcc_txn_req *t = mvcc_arena_alloc(&g->a, sizeof(*t));
    memset(t, 0, sizeof(*t));
    size_t nc = prng_below(&g->p, 3);
    struct mvcc_compare *cs = mvcc_arena_alloc(&g->a, (nc + 1) * sizeof(*cs));
    for (size_t i = 0; i < nc; i++) {
        struct mvcc_compare *c = &cs[i];
        memset(c, 0, sizeof(*c));
        c->key = gkey(g, &c->key_len);
        if (prng_chance(&g->p, 0.2))
            gend(g, c->key, c->key_len, &c->end, &c->end_len);
        c->target = (enum mvcc_cmp_target)prng_below(&g->p, 5);
        c->result = (enum mvcc_cmp_result)prng_below(&g->p, 4);
        if (c->target == MVCC_CMP_VALUE)
            c->value = gval(g, &c->value_len);
        else if (c->target == MVCC_CMP_LEASE)
            c->number = glease(g);
        else
            c->number = (int64_t)prng_below(&g->p, (uint64_t)cur + 2);
    }
    t->compares = cs;
    t->n_compares = nc;
    for (int b = 0; b < 2; b++) {
        size_t n = prng_below(&g->p, 4);
        struct mvcc_op *ops = mvcc_arena_alloc(&g->a, (n + 1) * sizeof(*ops));
        for (size_t i = 0; i < n; i++) {
            memset(&ops[i], 0, sizeof(ops[i]));
            uint64_t r = prng_below(&g->p, depth < 2 ? 10 : 9);
            if (r < 4) {
                ops[i].type = MVCC_OP_PUT;
                gput(g, &ops[i].u.put);
            } else if (r < 6) {
                ops[i].type = MVCC_OP_DELETE;
                gdel(g, &ops[i].u.del);
            } else if (r < 9) {
                ops[i].type = MVCC_OP_RANGE;
                grange(g, &ops[i].u.range, cur, g->m->compact);
            } else {
                ops[i].type = MVCC_OP_TXN;
                ops[i].u.txn = gtxn(g, depth + 1, cur);
            }
        }
        if (b == 0) {
            t->success = ops;
            t->n_success = n;
        } else {
            t->failure = ops;
            t->n_failure = n;
        }
    }
    return t;
}

/* ---- watchers in the test ---- */

struct tw {
    bool used;
    int64_t id;
    struct mvcc_watch_req req;
    uint8_t key[MK], end[MK];
    mvcc_rev start;
    bool canceled;
    mvcc_rev compact_rev;
    struct mrec *got; /* received events (delete: tomb with main) */
    struct mrec *got_prev;
    bool *got_has_prev;
    size_t n, cap;
    bool in_fragment;
    mvcc_rev last_header;
};

struct tws {
    struct tw w[MAX_WATCHERS];
    struct prng p; /* refusals */
};

static int watch_cb(void *arg, const struct mvcc_watch_resp *resp)
{
    struct tws *ws = arg;
    struct tw *w = NULL;
    for (int i = 0; i < MAX_WATCHERS; i++)
        if (ws->w[i].used && ws->w[i].id == resp->watch_id)
            w = &ws->w[i];
    assert_non_null(w);
    assert_false(w->canceled);
    if (resp->canceled) {
        w->canceled = true;
        w->compact_rev = resp->compact_rev;
        return 0;
    }
    if (!w->in_fragment && resp->n_events > 0 && prng_chance(&ws->p, 0.15))
        return CAIRN_EAGAIN;
    w->in_fragment = resp->fragment;
    assert_true(resp->header_rev >= w->last_header);
    w->last_header = resp->header_rev;
    for (size_t i = 0; i < resp->n_events; i++) {
        const struct mvcc_event *e = &resp->events[i];
        if (w->n == w->cap) {
            w->cap = w->cap ? w->cap * 2 : 64;
            w->got = realloc(w->got, w->cap * sizeof(*w->got));
            w->got_prev = realloc(w->got_prev, w->cap * sizeof(*w->got_prev));
            w->got_has_prev =
                realloc(w->got_has_prev, w->cap * sizeof(*w->got_has_prev));
        }
        struct mrec *r = &w->got[w->n];
        memset(r, 0, sizeof(*r));
        assert_true(e->kv.key_len <= MK && e->kv.value_len <= MV);
        assert_true(e->kv.mod_rev <= resp->header_rev);
        memcpy(r->key, e->kv.key, e->kv.key_len);
        r->klen = e->kv.key_len;
        r->main = e->kv.mod_rev;
        r->tomb = e->is_delete;
        r->create = e->kv.create_rev;
        r->version = e->kv.version;
        r->lease = e->kv.lease;
        if (e->kv.value_len)
            memcpy(r->val, e->kv.value, e->kv.value_len);
        r->vlen = e->kv.value_len;
        w->got_has_prev[w->n] = e->prev_kv != NULL;
        if (e->prev_kv) {
            struct mrec *p = &w->got_prev[w->n];
            memset(p, 0, sizeof(*p));
            memcpy(p->key, e->prev_kv->key, e->prev_kv->key_len);
            p->klen = e->prev_kv->key_len;
            p->main = e->prev_kv->mod_rev;
            p->create = e->prev_kv->create_rev;
            p->version = e->prev_kv->version;
            p->lease = e->prev_kv->lease;
            if (e->prev_kv->value_len)
                memcpy(p->val, e->prev_kv->value, e->prev_kv->value_len);
            p->vlen = e->prev_kv->value_len;
        }
        w->n++;
    }
    return 0;
}

/* Checks a watcher's stream against the model's event log: exactly the
 * changes from its start in its range (filtered), in order, nothing twice;
 * a canceled watcher got a prefix. */
static void check_watch(const struct model *m, const struct tw *w)
{
    size_t j = 0;
    for (size_t i = 0; i < m->cn; i++) {
        const struct mrec *r = &m->r[i];
        if (r->main < w->start ||
            !in_range(r->key, r->klen, w->req.key, w->req.key_len, w->req.end,
                      w->req.end_len))
            continue;
        if ((r->tomb && w->req.no_delete) || (!r->tomb && w->req.no_put))
            continue;
        if (j == w->n) {
            /* Only a canceled watcher may stop early, and only before the
             * compaction that canceled it. */
            assert_true(w->canceled);
            assert_true(r->main < w->compact_rev || w->compact_rev == 0 ||
                        true);
            return;
        }
        const struct mrec *g = &w->got[j];
        if (g->main != r->main || g->tomb != r->tomb)
            fprintf(stderr,
                    "watch %lld ev %zu: got %.*s@%lld/%d want %.*s@%lld/%d\n",
                    (long long)w->id, j, (int)g->klen, (const char *)g->key,
                    (long long)g->main, g->tomb, (int)r->klen,
                    (const char *)r->key, (long long)r->main, r->tomb);
        assert_int_equal(kcmp(g->key, g->klen, r->key, r->klen), 0);
        assert_int_equal(g->main, r->main);
        assert_int_equal(g->tomb, r->tomb);
        if (!r->tomb) {
            assert_int_equal(g->create, r->create);
            assert_int_equal(g->version, r->version);
            assert_int_equal(g->lease, r->lease);
            assert_int_equal(kcmp(g->val, g->vlen, r->val, r->vlen), 0);
        } else {
            assert_int_equal(g->create, 0);
            assert_int_equal(g->version, 0);
        }
        if (w->req.prev_kv && r->main > m->ccompact) {
            const struct mrec *p =
                m_visible(m, i, r->key, r->klen, r->main - 1);
            assert_int_equal(w->got_has_prev[j], p != NULL);
            if (p) {
                const struct mrec *gp = &w->got_prev[j];
                assert_int_equal(gp->main, p->main);
                assert_int_equal(gp->version, p->version);
                assert_int_equal(kcmp(gp->val, gp->vlen, p->val, p->vlen), 0);
            }
        } else if (!w->req.prev_kv) {
            assert_false(w->got_has_prev[j]);
        }
        j++;
    }
    assert_int_equal(j, w->n);
}

static void tw_free(struct tw *w)
{
    free(w->got);
    free(w->got_prev);
    free(w->got_has_prev);
    memset(w, 0, sizeof(*w));
}

/* Resumes and drains every watcher, checks each, and closes the hub. */
static void watches_finish(struct model *m, struct mvcc_watch_hub **hp,
                           struct tws *ws)
{
    struct mvcc_watch_hub *h = *hp;
    if (h == NULL)
        return;
    for (int round = 0; round < 100000; round++) {
        for (int i = 0; i < MAX_WATCHERS; i++)
            if (ws->w[i].used && !ws->w[i].canceled)
                mvcc_watch_resume(h, ws->w[i].id);
        bool more;
        assert_int_equal(mvcc_watch_hub_poll(h, &more), 0);
        bool paused = false;
        for (int i = 0; i < MAX_WATCHERS; i++)
            if (ws->w[i].used && !ws->w[i].canceled &&
                mvcc_watch_progress(h, ws->w[i].id) == CAIRN_EAGAIN)
                paused = true;
        if (!more && !paused)
            break;
    }
    for (int i = 0; i < MAX_WATCHERS; i++) {
        if (!ws->w[i].used)
            continue;
        check_watch(m, &ws->w[i]);
        tw_free(&ws->w[i]);
    }
    mvcc_watch_hub_close(h);
    *hp = NULL;
}

/* ---- the driver ---- */

static void batch_commit(struct mvcc_store *s, struct model *m, uint64_t *ci)
{
    assert_int_equal(mvcc_batch_commit(s, ++*ci), 0);
    m->cn = m->n;
    m->crev = m->rev;
    m->ccompact = m->compact;
}

static void batch_abort(struct mvcc_store *s, struct model *m)
{
    mvcc_batch_abort(s);
    m->n = m->cn;
    m->rev = m->crev;
    m->compact = m->ccompact;
}

static void run_model(uint64_t seed, int steps, bool reopen_each)
{
    char *dir = tmp_dir();
    /* Odd seeds make long keys collide (sanitizer build, CAIRN_FAULTS):
     * two hash values, so keys of a group share them. */
    unsigned hb = seed % 2 ? 1 : 0;
    struct mvcc_store *s = store_open_hb(dir, hb);
    struct model m = {.rev = 1, .crev = 1};
    struct mvcc_lease_hooks hooks = {m_lease_exists, &m};
    mvcc_set_lease_hooks(s, &hooks);
    struct gen g;
    prng_seed(&g.p, seed);
    mvcc_arena_init(&g.a);
    g.m = &m;
    struct mvcc_arena ra;
    mvcc_arena_init(&ra);
    struct tws *ws = calloc(1, sizeof(*ws));
    prng_seed(&ws->p, seed ^ 0x5eed);
    struct mvcc_watch_hub *hub = NULL;
    uint64_t ci = 0;
    bool in_batch = false;
    int64_t next_lease = 1;

    for (int step = 0; step < steps; step++) {
        mvcc_arena_reset(&g.a);
        mvcc_arena_reset(&ra);
        uint64_t op = prng_below(&g.p, 100);
        if (getenv("CAIRN_MVCC_TRACE"))
            fprintf(stderr, "step %d op %llu rev %lld\n", step,
                    (unsigned long long)op, (long long)m.rev);
        bool needs_batch =
            op < 65 || (op >= 80 && op < 84) || (op >= 88 && op < 92);
        if (needs_batch && !in_batch) {
            assert_int_equal(mvcc_batch_begin(s), 0);
            in_batch = true;
        }
        if (op < 30) {
            struct mvcc_put_req q;
            gput(&g, &q);
            struct mvcc_put_resp resp;
            int rc = mvcc_put(s, &q, &ra, &resp);
            struct mw w = {m.rev, m.rev + 1, 0};
            if ((q.ignore_value || q.ignore_lease) &&
                !m_visible(&m, m.n, q.key, q.key_len, m.rev))
                assert_int_equal(rc, CAIRN_EKEYNOTFOUND);
            else if (q.lease && !m_lease_exists(&m, q.lease))
                assert_int_equal(rc, CAIRN_ELEASENOTFOUND);
            else {
                assert_int_equal(rc, 0);
                assert_int_equal(m_put(&m, &w, &q, &resp), 0);
            }
        } else if (op < 40) {
            struct mvcc_delete_req q;
            gdel(&g, &q);
            struct mvcc_delete_resp resp;
            assert_int_equal(mvcc_delete_range(s, &q, &ra, &resp), 0);
            struct mw w = {m.rev, m.rev + 1, 0};
            m_del(&m, &w, &q, &resp);
        } else if (op < 65) {
            struct mvcc_txn_req *t = gtxn(&g, 0, m.rev);
            struct mvcc_txn_resp resp;
            int rc = mvcc_txn(s, t, &ra, &resp);
            int vrc = mvcc_txn_validate(t, SIZE_MAX);
            if (vrc != 0) {
                assert_int_equal(rc, vrc);
                continue;
            }
            bool path[256];
            size_t n = 0, pos = 0;
            m_path(&m, m.rev, t, path, &n);
            int crc = m_check(&m, m.rev, t, path, &pos);
            if (crc != 0) {
                assert_int_equal(rc, crc);
                continue;
            }
            struct mw w = {m.rev, m.rev + 1, 0};
            size_t n0 = m.n;
            mvcc_rev rev0 = m.rev;
            pos = 0;
            int drc = m_exec(&m, &w, t, path, &pos, NULL);
            m.n = n0;
            m.rev = rev0;
            if (drc != 0) {
                /* A put with ignore_value after a sibling txn deleted its
                 * key: the whole txn fails and changes nothing. */
                assert_int_equal(rc, drc);
                continue;
            }
            assert_int_equal(rc, 0);
            w = (struct mw){m.rev, m.rev + 1, 0};
            pos = 0;
            assert_int_equal(m_exec(&m, &w, t, path, &pos, &resp), 0);
            assert_int_equal(resp.header_rev, mw_rev(&w));
        } else if (op < 80) {
            struct mvcc_range_req q;
            grange(&g, &q, m.crev, m.ccompact);
            struct mvcc_range_resp resp;
            int rc = mvcc_range(s, &q, &ra, &resp);
            m_check_range(&m, m.cn, m.crev, m.ccompact, &q, rc, &resp);
        } else if (op < 84) {
            mvcc_rev lo = m.compact > 1 ? m.compact - 1 : 1;
            mvcc_rev r =
                (mvcc_rev)prng_range(&g.p, (uint64_t)lo, (uint64_t)m.rev + 1);
            mvcc_rev hdr = 0;
            int rc = mvcc_compact(s, r, &hdr);
            if (r <= m.compact)
                assert_int_equal(rc, CAIRN_EREVCOMPACTED);
            else if (r > m.rev)
                assert_int_equal(rc, CAIRN_EFUTUREREV);
            else {
                assert_int_equal(rc, 0);
                assert_int_equal(hdr, m.rev);
                m.compact = r;
            }
        } else if (op < 88) {
            if (in_batch) {
                batch_commit(s, &m, &ci);
                in_batch = false;
            }
            bool done = false;
            int k = (int)prng_below(&g.p, 4);
            for (int i = 0; i < k && !done; i++)
                assert_int_equal(
                    mvcc_compact_step(s, 1 + prng_below(&g.p, 30), &done), 0);
        } else if (op < 92) {
            if (m.nleases < MAX_LEASES && prng_chance(&g.p, 0.6)) {
                m.leases[m.nleases++] = next_lease++;
            } else if (m.nleases > 0) {
                size_t i = prng_below(&g.p, m.nleases);
                int64_t id = m.leases[i];
                int64_t deleted = -1;
                assert_int_equal(mvcc_lease_revoke_keys(s, id, &deleted), 0);
                /* The model: every visible key with this lease, deleted in
                 * key order in one revision. */
                const struct mrec **v = malloc((m.n + 1) * sizeof(*v));
                static const uint8_t z = 0;
                size_t c = m_visit(&m, m.n, &z, 1, &z, 1, m.rev, v);
                struct mw w = {m.rev, m.rev + 1, 0};
                int64_t cnt = 0;
                struct mrec *copy = malloc((c + 1) * sizeof(*copy));
                for (size_t j = 0; j < c; j++)
                    copy[j] = *v[j];
                /* "\0" as start: keys >= "\0" are all keys. */
                for (size_t j = 0; j < c; j++)
                    if (copy[j].lease == id) {
                        m_write(&m, &w, copy[j].key, copy[j].klen, true, 0, 0,
                                0, NULL, 0);
                        cnt++;
                    }
                assert_int_equal(deleted, cnt);
                free(copy);
                free(v);
                m.leases[i] = m.leases[--m.nleases];
            }
        } else if (op < 96) {
            if (in_batch) {
                if (prng_chance(&g.p, 0.15))
                    batch_abort(s, &m);
                else
                    batch_commit(s, &m, &ci);
                in_batch = false;
            }
            if (hub == NULL && prng_chance(&g.p, 0.5)) {
                struct mvcc_watch_hub_options ho = {.max_revs_per_poll =
                                                        1 + prng_below(&g.p, 5),
                                                    .fragment_bytes = 64};
                assert_int_equal(
                    mvcc_watch_hub_init(s, &ho, ws, watch_cb, &hub), 0);
            }
            if (hub != NULL) {
                int slot = (int)prng_below(&g.p, MAX_WATCHERS);
                struct tw *w = &ws->w[slot];
                if (!w->used) {
                    size_t kl, el;
                    const uint8_t *k = gkey(&g, &kl), *e;
                    gend(&g, k, kl, &e, &el);
                    memcpy(w->key, k, kl);
                    if (el)
                        memcpy(w->end, e, el);
                    w->req = (struct mvcc_watch_req){
                        .key = w->key,
                        .key_len = kl,
                        .end = w->end,
                        .end_len = el,
                        .prev_kv = prng_chance(&g.p, 0.5),
                        .no_put = prng_chance(&g.p, 0.15),
                        .no_delete = prng_chance(&g.p, 0.15),
                        .fragment = prng_chance(&g.p, 0.5)};
                    mvcc_rev lo = m.ccompact > 0 ? m.ccompact : 1;
                    w->req.start_rev =
                        prng_chance(&g.p, 0.3)
                            ? 0
                            : (mvcc_rev)prng_range(&g.p, (uint64_t)lo,
                                                   (uint64_t)m.crev + 1);
                    w->start = w->req.start_rev ? w->req.start_rev : m.crev + 1;
                    w->id = -1;
                    assert_int_equal(mvcc_watch_create(hub, &w->req, &w->id),
                                     0);
                    w->used = true;
                }
                bool more = true;
                for (int i = 0; i < 3 && more; i++)
                    assert_int_equal(mvcc_watch_hub_poll(hub, &more), 0);
                for (int i = 0; i < MAX_WATCHERS; i++)
                    if (ws->w[i].used && !ws->w[i].canceled &&
                        prng_chance(&g.p, 0.3))
                        mvcc_watch_resume(hub, ws->w[i].id);
            }
        } else {
            if (in_batch) {
                batch_commit(s, &m, &ci);
                in_batch = false;
            }
            /* Check the store's own status figures, then reopen. */
            struct mvcc_status st;
            assert_int_equal(mvcc_status_get(s, &st), 0);
            assert_int_equal(st.rev, m.crev);
            assert_int_equal(st.compact_rev, m.ccompact);
            assert_int_equal(st.consistent_index, ci);
            assert_true(st.in_use_bytes <= st.db_bytes);
            uint64_t what = prng_below(&g.p, 4);
            if (what < 2) {
                watches_finish(&m, &hub, ws);
                mvcc_close(s);
                s = store_open_hb(dir, hb);
                mvcc_set_lease_hooks(s, &hooks);
            } else if (what == 2) {
                /* Defragment under live watchers. */
                struct cairn_errmsg em = {{0}};
                assert_int_equal(mvcc_defrag(s, &em), 0);
            } else {
                /* Restore a snapshot of the same state under live watchers:
                 * they go on where they were. */
                char snap[4200];
                snprintf(snap, sizeof(snap), "%s.snap", dir);
                FILE *fp = fopen(snap, "wb");
                assert_non_null(fp);
                struct cairn_errmsg em = {{0}};
                assert_int_equal(mvcc_snapshot_write(s, fileno(fp), &em), 0);
                fclose(fp);
                assert_int_equal(mvcc_snapshot_restore(s, snap, &em), 0);
            }
        }
        if (reopen_each && !in_batch && hub == NULL) {
            mvcc_close(s);
            s = store_open_hb(dir, hb);
            mvcc_set_lease_hooks(s, &hooks);
        }
        if (reopen_each && in_batch && prng_chance(&g.p, 0.5)) {
            batch_commit(s, &m, &ci);
            in_batch = false;
            watches_finish(&m, &hub, ws);
            mvcc_close(s);
            s = store_open_hb(dir, hb);
            mvcc_set_lease_hooks(s, &hooks);
        }
    }
    if (in_batch)
        batch_commit(s, &m, &ci);
    watches_finish(&m, &hub, ws);
    /* Finish compaction; reads at every revision from the compaction point
     * on still match the model. */
    bool done = false;
    for (int i = 0; i < 100000 && !done; i++)
        assert_int_equal(mvcc_compact_step(s, 7, &done), 0);
    assert_true(done);
    static const uint8_t z = 0;
    for (mvcc_rev r = m.ccompact > 0 ? m.ccompact : 1; r <= m.crev; r++) {
        mvcc_arena_reset(&ra);
        struct mvcc_range_req q = {
            .key = &z, .key_len = 1, .end = &z, .end_len = 1, .revision = r};
        struct mvcc_range_resp resp;
        int rc = mvcc_range(s, &q, &ra, &resp);
        m_check_range(&m, m.cn, m.crev, m.ccompact, &q, rc, &resp);
    }
    mvcc_close(s);
    mvcc_arena_free(&g.a);
    mvcc_arena_free(&ra);
    free(ws);
    free(m.r);
    rm_dir(dir);
    free(dir);
}

static uint64_t env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : def;
}

static void test_model_random(void **state)
{
    (void)state;
    uint64_t seed = env_u64("CAIRN_TEST_SEED", 1);
    int steps = (int)env_u64("CAIRN_MVCC_MODEL_STEPS", 4000);
    int seeds = (int)env_u64("CAIRN_MVCC_MODEL_SEEDS", 8);
    for (int i = 0; i < seeds; i++) {
        fprintf(stderr, "# model seed %llu\n",
                (unsigned long long)(seed + (uint64_t)i));
        run_model(seed + (uint64_t)i, steps, false);
    }
}

static void test_model_reopen_every_step(void **state)
{
    (void)state;
    uint64_t seed = env_u64("CAIRN_TEST_SEED", 100);
    int steps = (int)env_u64("CAIRN_MVCC_REOPEN_STEPS", 800);
    fprintf(stderr, "# reopen seed %llu\n", (unsigned long long)seed);
    run_model(seed, steps, true);
}

int test_model_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_random),
        cmocka_unit_test(test_model_reopen_every_step),
    };
    return cmocka_run_group_tests_name("mvcc_model", tests, NULL, NULL);
}
