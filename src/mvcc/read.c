/* Reading the revisioned key space: finding the version of a key visible at
 * a revision, walking a key range, and etcd's Range (limit, count, sort,
 * min/max filters, keys_only, count_only). */
#include <stdlib.h>
#include <string.h>

#include "mvcc/mvcc_int.h"

/* The seek key ekey || BE64(main) || BE64(sub) into buf, which has room
 * for MVCC__EKEY_LONG + MVCC__REV_BYTES bytes. */
static MDB_val seek_key(uint8_t *buf, const uint8_t *ekey, size_t ekey_len,
                        uint64_t main, uint64_t sub)
{
    CAIRN_ASSERT(ekey_len <= MVCC__EKEY_LONG);
    if (ekey_len)
        memcpy(buf, ekey, ekey_len);
    mvcc__put_be64(buf + ekey_len, main);
    mvcc__put_be64(buf + ekey_len + 8, sub);
    return (MDB_val){ekey_len + MVCC__REV_BYTES, buf};
}

/* 64-bit hash of a long key's tail (FNV-1a over 8-byte little-endian words,
 * then a final mix): part of the on-disk format, so fixed forever. */
static uint64_t tail_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int j = 7; j >= 0; j--)
            w = (w << 8) | p[i + (size_t)j];
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

int mvcc__ekey_find(const struct mvcc_store *s, MDB_cursor *c,
                    const uint8_t *key, size_t key_len, bool for_write,
                    uint8_t *ekey, size_t *ekey_len)
{
    if (!mvcc__ekey_is_long(key_len)) {
        if (key_len)
            memcpy(ekey, key, key_len);
        *ekey_len = key_len;
        return 0;
    }
    memcpy(ekey, key, MVCC__SHORT_MAX);
    mvcc__put_be64(ekey + MVCC__SHORT_MAX,
                   tail_hash(key + MVCC__SHORT_MAX, key_len - MVCC__SHORT_MAX) &
                       s->hash_mask);
    *ekey_len = MVCC__EKEY_LONG;
    /* Walk the sequence numbers in use under this prefix and hash (one,
     * unless hashes collide), one seek each. */
    uint64_t seq = 0;
    uint8_t buf[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    for (;;) {
        mvcc__put_be64(ekey + MVCC__SHORT_MAX + 8, seq);
        MDB_val k = seek_key(buf, ekey, MVCC__EKEY_LONG, 0, 0), v;
        int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            return mvcc__err(mrc);
        if (mrc == MDB_NOTFOUND || k.mv_size != MVCC__EKEY_LONG + 16 ||
            memcmp(k.mv_data, ekey, MVCC__SHORT_MAX + 8) != 0)
            return for_write ? 0 : CAIRN_ENOTFOUND; /* seq is free */
        struct mvcc__rec r;
        if (!mvcc__rec_decode(&k, &v, &r))
            return CAIRN_ECORRUPT;
        seq = mvcc__get_be64(r.ekey + MVCC__SHORT_MAX + 8);
        if (mvcc__key_cmp(r.key, r.key_len, key, key_len) == 0) {
            memcpy(ekey, r.ekey, MVCC__EKEY_LONG);
            return 0;
        }
        if (seq == UINT64_MAX)
            return CAIRN_EFULL;
        seq++;
    }
}

int mvcc__ekey_full(MDB_cursor *c, const uint8_t *ekey, size_t ekey_len,
                    const uint8_t **key, size_t *key_len)
{
    if (!mvcc__ekey_is_long(ekey_len)) {
        *key = ekey;
        *key_len = ekey_len;
        return 0;
    }
    if (ekey_len != MVCC__EKEY_LONG)
        return CAIRN_ECORRUPT;
    uint8_t buf[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    MDB_val k = seek_key(buf, ekey, ekey_len, 0, 0), v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc != 0)
        return mrc == MDB_NOTFOUND ? CAIRN_ECORRUPT : mvcc__err(mrc);
    struct mvcc__rec r;
    if (!mvcc__rec_decode(&k, &v, &r) || r.ekey_len != ekey_len ||
        memcmp(r.ekey, ekey, ekey_len) != 0)
        return CAIRN_ECORRUPT;
    *key = r.key;
    *key_len = r.key_len;
    return 0;
}

int mvcc__get_e(MDB_cursor *c, const uint8_t *ekey, size_t ekey_len,
                mvcc_rev at, bool want_tomb, struct mvcc__rec *r)
{
    uint8_t buf[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    MDB_val k = seek_key(buf, ekey, ekey_len, (uint64_t)at + 1, 0), v;
    /* The first record after (key, at) ... then one back is the latest of
     * key at or below `at`, if it belongs to key. */
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND)
        mrc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    else if (mrc == 0)
        mrc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    if (mrc != 0)
        return mrc == MDB_NOTFOUND ? CAIRN_ENOTFOUND : mvcc__err(mrc);
    if (!mvcc__rec_decode(&k, &v, r))
        return CAIRN_ECORRUPT;
    if (r->ekey_len != ekey_len ||
        (ekey_len && memcmp(r->ekey, ekey, ekey_len) != 0) || r->main > at ||
        (r->tomb && !want_tomb))
        return CAIRN_ENOTFOUND;
    return 0;
}

int mvcc__get(struct mvcc_store *s, MDB_cursor *c, const uint8_t *key,
              size_t key_len, mvcc_rev at, bool want_tomb, struct mvcc__rec *r)
{
    uint8_t ekey[MVCC__EKEY_LONG];
    size_t ekey_len;
    int rc = mvcc__ekey_find(s, c, key, key_len, false, ekey, &ekey_len);
    if (rc != 0)
        return rc;
    return mvcc__get_e(c, ekey, ekey_len, at, want_tomb, r);
}

int mvcc__get_exact(struct mvcc_store *s, MDB_txn *t, const uint8_t *ekey,
                    size_t ekey_len, mvcc_rev main, int64_t sub,
                    struct mvcc__rec *r)
{
    if (ekey_len > MVCC__EKEY_LONG)
        return CAIRN_ECORRUPT;
    uint8_t buf[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    MDB_val k = seek_key(buf, ekey, ekey_len, (uint64_t)main, (uint64_t)sub), v;
    int mrc = mdb_get(t, s->kv, &k, &v);
    if (mrc != 0)
        return mrc == MDB_NOTFOUND ? CAIRN_ENOTFOUND : mvcc__err(mrc);
    if (!mvcc__rec_decode(&k, &v, r))
        return CAIRN_ECORRUPT;
    /* mdb_get leaves k on our stack buffer: point at the caller's bytes. */
    if (r->key == r->ekey)
        r->key = ekey;
    r->ekey = ekey;
    return 0;
}

/* A range walk's state. Long keys sharing a prefix are stored in hash
 * order: the visible record of each is gathered in grp, and the group is
 * sorted by full key and handed out when the walk leaves it. */
struct walk {
    const uint8_t *key, *end;
    size_t key_len, end_len;
    bool unbounded, check_start;
    void *arg;
    mvcc__visit_cb cb;
    struct mvcc__rec *grp;
    size_t n, cap;
    bool in_grp;
    uint8_t prefix[MVCC__SHORT_MAX];
};

static int walk_emit(struct walk *w, const struct mvcc__rec *r)
{
    if (r->tomb)
        return 0;
    if (!mvcc__ekey_is_long(r->ekey_len))
        return w->cb(w->arg, r);
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct mvcc__rec *ng = cairn_realloc(w->grp, cap * sizeof(*ng));
        if (ng == NULL)
            return CAIRN_ENOMEM;
        w->grp = ng;
        w->cap = cap;
    }
    w->grp[w->n++] = *r;
    return 0;
}

static int rec_key_cmp(const void *a, const void *b)
{
    const struct mvcc__rec *x = a, *y = b;
    return mvcc__key_cmp(x->key, x->key_len, y->key, y->key_len);
}

/* Hands out the gathered group in key order, within [key, end). */
static int walk_flush(struct walk *w)
{
    w->in_grp = false;
    size_t n = w->n;
    w->n = 0;
    if (n > 1)
        qsort(w->grp, n, sizeof(*w->grp), rec_key_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct mvcc__rec *r = &w->grp[i];
        if (mvcc__key_cmp(r->key, r->key_len, w->key, w->key_len) < 0)
            continue;
        if (!w->unbounded &&
            mvcc__key_cmp(r->key, r->key_len, w->end, w->end_len) >= 0)
            return 1;
        int rc = w->cb(w->arg, r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Whether r starts a record that is not part of the current long group. */
static bool walk_leaves_grp(const struct walk *w, const struct mvcc__rec *r)
{
    return w->in_grp && (!mvcc__ekey_is_long(r->ekey_len) ||
                         memcmp(w->prefix, r->ekey, MVCC__SHORT_MAX) != 0);
}

/* Judges where r sits against the range before its group is entered:
 * 1 stops the walk (past the end), 2 skips r (before the start). */
static int walk_bounds(struct walk *w, const struct mvcc__rec *r)
{
    if (!mvcc__ekey_is_long(r->ekey_len)) {
        if (!w->unbounded &&
            mvcc__key_cmp(r->key, r->key_len, w->end, w->end_len) >= 0)
            return 1;
        if (w->check_start &&
            mvcc__key_cmp(r->key, r->key_len, w->key, w->key_len) < 0)
            return 2;
        return 0;
    }
    if (!w->in_grp) {
        /* Every key of the group is longer than its prefix, so an end at
         * or below the prefix ends the walk. */
        if (!w->unbounded &&
            mvcc__key_cmp(w->end, w->end_len, r->ekey, MVCC__SHORT_MAX) <= 0)
            return 1;
        w->in_grp = true;
        memcpy(w->prefix, r->ekey, MVCC__SHORT_MAX);
    }
    return 0;
}

static int walk_run(struct mvcc_store *s, MDB_cursor *c, struct walk *w,
                    mvcc_rev at)
{
    (void)s;
    /* A start key longer than the short limit: seek to its prefix and skip
     * what sorts before the start. */
    size_t seek_len =
        w->key_len > MVCC__SHORT_MAX ? MVCC__SHORT_MAX : w->key_len;
    uint8_t buf[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    MDB_val k = seek_key(buf, w->key, seek_len, 0, 0), v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    /* Linear walk: for each key remember the latest record <= at; a record
     * above `at` makes us seek past the key's newer history. */
    struct mvcc__rec best, r;
    bool have = false;
    int rc = 0;
    while (mrc == 0) {
        if (!mvcc__rec_decode(&k, &v, &r)) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        if (have && (best.ekey_len != r.ekey_len ||
                     memcmp(best.ekey, r.ekey, r.ekey_len) != 0)) {
            if ((rc = walk_emit(w, &best)) != 0)
                break;
            have = false;
        }
        if (walk_leaves_grp(w, &r) && (rc = walk_flush(w)) != 0)
            break;
        int b = walk_bounds(w, &r);
        if (b == 1)
            break;
        if (b == 2) {
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            continue;
        }
        if (r.main <= at) {
            best = r;
            have = true;
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
            continue;
        }
        /* Newer than `at`: emit what we have, then jump to the next key. */
        if (have) {
            if ((rc = walk_emit(w, &best)) != 0)
                break;
            have = false;
        }
        k = seek_key(buf, r.ekey, r.ekey_len, UINT64_MAX, UINT64_MAX);
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mvcc__err(mrc);
    if (rc == 0 && have)
        rc = walk_emit(w, &best);
    if (rc == 0 && w->in_grp)
        rc = walk_flush(w);
    return rc;
}

int mvcc__visit(struct mvcc_store *s, MDB_cursor *c, const uint8_t *key,
                size_t key_len, const uint8_t *end, size_t end_len, mvcc_rev at,
                void *arg, mvcc__visit_cb cb)
{
    if (end_len == 0) {
        struct mvcc__rec r;
        int rc = mvcc__get(s, c, key, key_len, at, false, &r);
        if (rc == CAIRN_ENOTFOUND)
            return 0;
        if (rc != 0)
            return rc;
        rc = cb(arg, &r);
        return rc > 0 ? 0 : rc;
    }
    struct walk w = {.key = key,
                     .key_len = key_len,
                     .end = end,
                     .end_len = end_len,
                     .unbounded = end_len == 1 && end[0] == 0,
                     .check_start = key_len > MVCC__SHORT_MAX,
                     .arg = arg,
                     .cb = cb};
    if (!w.unbounded && mvcc__key_cmp(end, end_len, key, key_len) <= 0)
        return 0;
    int rc = walk_run(s, c, &w, at);
    cairn_free(w.grp);
    return rc > 0 ? 0 : rc;
}

/* ---- Range ---- */

#define COLLECT_LOCAL 8

struct collect {
    struct mvcc_arena *a;
    struct mvcc_kv *kvs; /* local or heap array, copied into the arena */
    struct mvcc_kv local[COLLECT_LOCAL]; /* small results need no malloc */
    size_t n, cap;
    size_t fetch; /* 0: all */
    int64_t count;
    bool count_only;
    bool keys_only;
};

static int collect_cb(void *arg, const struct mvcc__rec *r)
{
    struct collect *c = arg;
    c->count++;
    if (c->count_only || (c->fetch != 0 && c->n >= c->fetch))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap * 2;
        struct mvcc_kv *nk;
        if (c->kvs == c->local) {
            nk = cairn_malloc(cap * sizeof(*nk));
            if (nk != NULL)
                memcpy(nk, c->local, sizeof(c->local));
        } else {
            nk = cairn_realloc(c->kvs, cap * sizeof(*nk));
        }
        if (nk == NULL)
            return CAIRN_ENOMEM;
        c->kvs = nk;
        c->cap = cap;
    }
    return mvcc__kv_copy(c->a, r, c->keys_only, &c->kvs[c->n++]);
}

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : (a > b ? 1 : 0);
}

static int sort_cmp_target(const struct mvcc_kv *a, const struct mvcc_kv *b,
                           enum mvcc_sort_target t)
{
    switch (t) {
    case MVCC_SORT_KEY:
        return mvcc__key_cmp(a->key, a->key_len, b->key, b->key_len);
    case MVCC_SORT_VERSION:
        return cmp_i64(a->version, b->version);
    case MVCC_SORT_CREATE:
        return cmp_i64(a->create_rev, b->create_rev);
    case MVCC_SORT_MOD:
        return cmp_i64(a->mod_rev, b->mod_rev);
    case MVCC_SORT_VALUE:
        return mvcc__key_cmp(a->value, a->value_len, b->value, b->value_len);
    }
    return 0;
}

/* Stable sort by target with the key order as the tie-break: etcd's
 * sort.Sort is not stable, so ties have no defined order there; ours is the
 * key order, which is what a client most likely expects. */
static void sort_kvs(struct mvcc_kv *kvs, size_t n, enum mvcc_sort_target t,
                     bool descend, struct mvcc_kv *tmp)
{
    /* Bottom-up merge sort (input is in key order, so stability keeps key
     * order among ties). */
    struct mvcc_kv *src = kvs, *dst = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n;
            size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) {
                int c = sort_cmp_target(&src[j], &src[i], t);
                if (descend)
                    c = -c;
                if (c < 0)
                    dst[o++] = src[j++];
                else
                    dst[o++] = src[i++];
            }
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        struct mvcc_kv *x = src;
        src = dst;
        dst = x;
    }
    if (src != kvs)
        memcpy(kvs, src, n * sizeof(*kvs));
}

/* A point read without revision filters (the commonest read): one
 * lookup and one copy, without the range walk's collection. Sorting one
 * key-value changes nothing and a limit of 1 or more keeps it. */
static int range_point(struct mvcc_store *s, struct mvcc__rd *rd, MDB_cursor *c,
                       mvcc_rev cur, mvcc_rev at,
                       const struct mvcc_range_req *req, struct mvcc_arena *a,
                       struct mvcc_range_resp *resp)
{
    struct mvcc__rec r;
    int rc = MVCC__TREE_FALLBACK;
    if (rd != NULL && rd->root_state == 0)
        rd->root_state = mvcc__tree_root(s, rd->t, &rd->kv_root) ? 1 : -1;
    if (rd != NULL && rd->root_state > 0)
        rc = mvcc__tree_get(s, rd->kv_root, req->key, req->key_len, at, false,
                            &r);
    if (rc == MVCC__TREE_FALLBACK)
        rc = mvcc__get(s, c, req->key, req->key_len, at, false, &r);
    if (rc == CAIRN_ENOTFOUND)
        rc = 0;
    else if (rc == 0)
        resp->count = 1;
    if (rc != 0 || resp->count == 0 || req->count_only) {
        resp->header_rev = rc == 0 ? cur : 0;
        return rc;
    }
    struct mvcc_kv *kv = mvcc_arena_alloc(a, sizeof(*kv));
    if (kv == NULL)
        return CAIRN_ENOMEM;
    if ((rc = mvcc__kv_copy(a, &r, req->keys_only, kv)) != 0)
        return rc;
    resp->kvs = kv;
    resp->n_kvs = 1;
    resp->header_rev = cur;
    return 0;
}

int mvcc__range(struct mvcc_store *s, struct mvcc__rd *rd, MDB_cursor *kvc,
                mvcc_rev cur, mvcc_rev compact,
                const struct mvcc_range_req *req, struct mvcc_arena *a,
                struct mvcc_range_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    if (req->revision > cur)
        return CAIRN_EFUTUREREV;
    mvcc_rev at = req->revision <= 0 ? cur : req->revision;
    if (at < compact)
        return CAIRN_EREVCOMPACTED;
    if (req->end_len == 0 && req->min_mod_rev == 0 && req->max_mod_rev == 0 &&
        req->min_create_rev == 0 && req->max_create_rev == 0)
        return range_point(s, rd, kvc, cur, at, req, a, resp);
    bool fetch_all = req->sort_order != MVCC_SORT_NONE ||
                     req->min_mod_rev != 0 || req->max_mod_rev != 0 ||
                     req->min_create_rev != 0 || req->max_create_rev != 0;
    struct collect c = {.a = a,
                        .count_only = req->count_only,
                        .keys_only = req->keys_only &&
                                     req->sort_target != MVCC_SORT_VALUE};
    c.kvs = c.local;
    c.cap = COLLECT_LOCAL;
    if (!fetch_all && req->limit > 0)
        c.fetch = (size_t)req->limit + 1;
    int rc = mvcc__visit(s, kvc, req->key, req->key_len, req->end, req->end_len,
                         at, &c, collect_cb);
    if (rc != 0)
        goto out;
    size_t j = 0;
    for (size_t i = 0; i < c.n; i++) {
        const struct mvcc_kv *kv = &c.kvs[i];
        if (req->max_mod_rev != 0 && kv->mod_rev > req->max_mod_rev)
            continue;
        if (req->min_mod_rev != 0 && kv->mod_rev < req->min_mod_rev)
            continue;
        if (req->max_create_rev != 0 && kv->create_rev > req->max_create_rev)
            continue;
        if (req->min_create_rev != 0 && kv->create_rev < req->min_create_rev)
            continue;
        c.kvs[j++] = c.kvs[i];
    }
    c.n = j;
    enum mvcc_sort_order order = req->sort_order;
    if (req->sort_target != MVCC_SORT_KEY && order == MVCC_SORT_NONE)
        order = MVCC_SORT_ASCEND;
    if (order != MVCC_SORT_NONE && c.n > 1) {
        struct mvcc_kv *tmp = cairn_malloc(c.n * sizeof(*tmp));
        if (tmp == NULL) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
        sort_kvs(c.kvs, c.n, req->sort_target, order == MVCC_SORT_DESCEND, tmp);
        cairn_free(tmp);
    }
    if (req->limit > 0 && c.n > (size_t)req->limit) {
        c.n = (size_t)req->limit;
        resp->more = true;
    }
    if (c.n > 0) {
        resp->kvs = mvcc_arena_alloc(a, c.n * sizeof(*resp->kvs));
        if (resp->kvs == NULL) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
        memcpy(resp->kvs, c.kvs, c.n * sizeof(*resp->kvs));
    }
    if (req->keys_only)
        for (size_t i = 0; i < c.n; i++) {
            resp->kvs[i].value = NULL;
            resp->kvs[i].value_len = 0;
        }
    resp->n_kvs = c.n;
    resp->count = c.count;
    resp->header_rev = cur;
out:
    if (c.kvs != c.local)
        cairn_free(c.kvs);
    return rc;
}

int mvcc_range(struct mvcc_store *s, const struct mvcc_range_req *req,
               struct mvcc_arena *a, struct mvcc_range_resp *resp)
{
    /* The figures come from the apply thread's atomics instead of the meta
     * records, which saves two lookups per read. The revision is read
     * before the snapshot begins, so the snapshot holds at least that
     * revision (it may hold a newer one, and reading at `cur` is still a
     * consistent view). The compaction revision is read after: a snapshot
     * that misses history was taken after a compaction step, which follows
     * the commit that published the compaction revision. */
    mvcc_rev cur = atomic_load(&s->committed_rev);
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    mvcc_rev compact = atomic_load(&s->committed_compact);
    if (compact > cur) {
        /* A commit raced us: take both from the snapshot itself. */
        uint64_t c1, c2;
        if ((rc = mvcc__meta_get(s, rd->t, "rev", &c1)) != 0 ||
            (rc = mvcc__meta_get(s, rd->t, "compact", &c2)) != 0)
            goto out;
        cur = (mvcc_rev)c1;
        compact = (mvcc_rev)c2;
    }
    rc = mvcc__range(s, rd, rd->kv, cur, compact, req, a, resp);
    atomic_fetch_add_explicit(&s->ops_ranges, 1, memory_order_relaxed);
out:
    mvcc__read_end(s, rd);
    return rc;
}

/* ---- readers ---- */

struct mvcc_reader {
    struct mvcc_store *s;
    struct mvcc__rd *rd;
    mvcc_rev cur, compact;
};

int mvcc_reader_begin(struct mvcc_store *s, struct mvcc_reader **out)
{
    struct mvcc_reader *r = cairn_malloc(sizeof(*r));
    if (r == NULL)
        return CAIRN_ENOMEM;
    r->s = s;
    int rc = mvcc__read_begin(s, &r->rd);
    if (rc != 0) {
        cairn_free(r);
        return rc;
    }
    uint64_t cur, compact;
    if ((rc = mvcc__meta_get(s, r->rd->t, "rev", &cur)) != 0 ||
        (rc = mvcc__meta_get(s, r->rd->t, "compact", &compact)) != 0) {
        mvcc_reader_end(r);
        return rc;
    }
    r->cur = (mvcc_rev)cur;
    r->compact = (mvcc_rev)compact;
    *out = r;
    return 0;
}

int mvcc_reader_range(struct mvcc_reader *r, const struct mvcc_range_req *req,
                      struct mvcc_arena *a, struct mvcc_range_resp *resp)
{
    return mvcc__range(r->s, r->rd, r->rd->kv, r->cur, r->compact, req, a,
                       resp);
}

MDB_txn *mvcc__reader_txn(struct mvcc_reader *r)
{
    return r->rd->t;
}

struct mvcc_store *mvcc__reader_store(struct mvcc_reader *r)
{
    return r->s;
}

void mvcc_reader_end(struct mvcc_reader *r)
{
    if (r == NULL)
        return;
    mvcc__read_end(r->s, r->rd);
    cairn_free(r);
}
