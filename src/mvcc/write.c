/* Writing the revisioned key space: Put, DeleteRange and Txn with etcd
 * v3.4's checks and semantics (etcdserver/apply.go, v3rpc/key.go), lease
 * attachments, compaction scheduling and lease revocation. Apply thread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mvcc/mvcc_int.h"

/* etcd's quota kvOverhead. */
#define KV_OVERHEAD 256

/* One write request in progress: all its changes share main revision
 * `main`, numbered by `sub`. */
struct wctx {
    struct mvcc_store *s;
    MDB_txn *t;
    MDB_cursor *c;  /* on the kv db of t */
    mvcc_rev begin; /* the revision before the request */
    mvcc_rev main;
    int64_t sub;          /* changes so far */
    struct mvcc__ops ops; /* this request's, for the counters */
};

static void wctx_init(struct wctx *w, struct mvcc_store *s)
{
    w->s = s;
    w->t = s->wtxn;
    w->c = s->wcur;
    w->begin = s->wrev;
    w->main = s->wrev + 1;
    w->sub = 0;
    memset(&w->ops, 0, sizeof w->ops);
}
/* The revision reads inside the request see: its own changes included. */
static mvcc_rev wctx_rev(const struct wctx *w)
{
    return w->sub > 0 ? w->main : w->begin;
}
/* Ends the request with its result: a request that failed after writing
 * something cannot be undone inside the batch, so the batch fails (the
 * member replays from the stored consistent index). */
static int wctx_end(struct wctx *w, int rc)
{
    if (rc != 0 && w->sub > 0)
        w->s->batch_failed = true;
    if (rc == 0 && w->sub > 0)
        w->s->wrev = w->main;
    if (rc == 0) {
        /* etcd's metricsTxnWrite.End: a txn is a request of more than one
         * operation. */
        struct mvcc__ops *b = &w->s->ops_batch;
        b->puts += w->ops.puts;
        b->deletes += w->ops.deletes;
        b->ranges += w->ops.ranges;
        b->keys += w->ops.keys;
        if (w->ops.puts + w->ops.deletes + w->ops.ranges > 1)
            b->txns++;
    }
    return rc;
}

/* lkey records hold the key's ekey (a long key's full bytes are in kv). */
static int lkey_update(struct wctx *w, int64_t lease, const uint8_t *ekey,
                       size_t ekey_len, bool attach)
{
    uint8_t p[8 + MVCC__EKEY_LONG];
    CAIRN_ASSERT(ekey_len <= MVCC__EKEY_LONG);
    mvcc__put_be64(p, (uint64_t)lease);
    if (ekey_len)
        memcpy(p + 8, ekey, ekey_len);
    MDB_val k = {ekey_len + 8, p}, v = {0, NULL};
    int rc = attach ? mdb_put(w->t, w->s->lkey, &k, &v, 0)
                    : mdb_del(w->t, w->s->lkey, &k, NULL);
    if (rc == MDB_NOTFOUND)
        rc = 0;
    return mvcc__err(rc);
}

/* A key being written: its full bytes and its kv-db key part. */
struct wkey {
    const uint8_t *key;
    size_t key_len;
    uint8_t ekey[MVCC__EKEY_LONG];
    size_t ekey_len;
};

static int wkey_init(struct wctx *w, struct wkey *k, const uint8_t *key,
                     size_t key_len)
{
    k->key = key;
    k->key_len = key_len;
    return mvcc__ekey_find(w->s, w->c, key, key_len, true, k->ekey,
                           &k->ekey_len);
}

/* Writes one change of the request: the kv record and the revision log
 * record. */
static int write_record(struct wctx *w, const struct wkey *wk, bool tomb,
                        mvcc_rev create, int64_t version, int64_t lease,
                        const uint8_t *val, size_t val_len)
{
    int64_t sub = w->sub;
    bool is_long = mvcc__ekey_is_long(wk->ekey_len);
    size_t vsz =
        1 + varint_size((uint64_t)sub) + varint_size((uint64_t)create) +
        varint_size((uint64_t)version) + varint_size((uint64_t)lease) + val_len;
    if (is_long)
        vsz += varint_size(wk->key_len) + wk->key_len;
    uint8_t kb[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    size_t key_len = wk->ekey_len;
    if (key_len)
        memcpy(kb, wk->ekey, key_len);
    mvcc__put_be64(kb + key_len, (uint64_t)w->main);
    mvcc__put_be64(kb + key_len + 8, (uint64_t)sub);
    MDB_val k = {key_len + MVCC__REV_BYTES, kb}, v = {vsz, NULL};
    /* Through the request's cursor: the lookup of the key's previous
     * version left it on the leaf page the new record goes to, and LMDB
     * then skips the descent from the root. */
    int rc = mvcc__fault(w->s, MVCC_FAULT_WRITE);
    if (rc == 0)
        rc = mdb_cursor_put(w->c, &k, &v, MDB_RESERVE);
    if (rc == 0) {
        uint8_t *p = v.mv_data;
        *p++ = (uint8_t)((tomb ? MVCC__FLAG_TOMB : 0) |
                         (is_long ? MVCC__FLAG_LONG : 0));
        p += varint_put(p, (uint64_t)sub);
        p += varint_put(p, (uint64_t)create);
        p += varint_put(p, (uint64_t)version);
        p += varint_put(p, (uint64_t)lease);
        if (is_long) {
            p += varint_put(p, wk->key_len);
            memcpy(p, wk->key, wk->key_len);
            p += wk->key_len;
        }
        if (val_len)
            memcpy(p, val, val_len);
        uint8_t rk[16];
        mvcc__put_be64(rk, (uint64_t)w->main);
        mvcc__put_be64(rk + 8, (uint64_t)sub);
        MDB_val rkv = {16, rk}, rvv = {key_len, (void *)wk->ekey};
        /* The batch's rev cursor stays at the end of the log between
         * appends, where mdb_put would set up a cursor each time. */
        rc = mdb_cursor_put(w->s->wrcur, &rkv, &rvv, MDB_APPEND);
    }
    if (rc != 0) {
        w->s->batch_failed = true;
        return mvcc__err(rc);
    }
    w->sub++;
    return 0;
}

static bool lease_exists(struct mvcc_store *s, int64_t lease)
{
    return s->hooks.exists != NULL && s->hooks.exists(s->hooks.arg, lease);
}

static int check_put_fields(const struct mvcc_put_req *r)
{
    if (r->key_len == 0)
        return CAIRN_EEMPTYKEY;
    if (r->ignore_value && r->value_len != 0)
        return CAIRN_EVALUEPROVIDED;
    if (r->ignore_lease && r->lease != 0)
        return CAIRN_ELEASEPROVIDED;
    return 0;
}

/* etcd's checkRequestPut, against the state before the request. */
static int check_put(struct wctx *w, const struct mvcc_put_req *r)
{
    if (r->ignore_value || r->ignore_lease) {
        struct mvcc__rec prev;
        int rc = mvcc__get(w->s, w->c, r->key, r->key_len, wctx_rev(w), false,
                           &prev);
        if (rc == CAIRN_ENOTFOUND)
            return CAIRN_EKEYNOTFOUND;
        if (rc != 0)
            return rc;
    }
    if (r->lease != 0 && !lease_exists(w->s, r->lease))
        return CAIRN_ELEASENOTFOUND;
    return 0;
}

static int put_exec(struct wctx *w, const struct mvcc_put_req *r,
                    struct mvcc_arena *a, struct mvcc_put_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct wkey wk;
    int rc = wkey_init(w, &wk, r->key, r->key_len);
    if (rc != 0)
        return rc;
    struct mvcc__rec prev;
    rc = mvcc__get_e(w->c, wk.ekey, wk.ekey_len, wctx_rev(w), false, &prev);
    bool have = rc == 0;
    if (rc != 0 && rc != CAIRN_ENOTFOUND)
        return rc;
    if ((r->ignore_value || r->ignore_lease) && !have)
        return CAIRN_EKEYNOTFOUND;
    const uint8_t *val = r->value;
    size_t val_len = r->value_len;
    int64_t lease = r->lease;
    struct mvcc_kv pkv;
    /* prev points into LMDB pages that the write below may move: copy what
     * is still needed first. */
    bool need_copy = have && (r->prev_kv || r->ignore_value);
    if (need_copy && (rc = mvcc__kv_copy(a, &prev, false, &pkv)) != 0)
        return rc;
    if (r->ignore_value) {
        val = pkv.value;
        val_len = pkv.value_len;
    }
    int64_t old_lease = have ? prev.lease : 0;
    if (r->ignore_lease)
        lease = old_lease;
    mvcc_rev create = have ? prev.create : w->main;
    int64_t version = have ? prev.version + 1 : 1;
    if (r->prev_kv && have) {
        resp->prev_kv = mvcc_arena_alloc(a, sizeof(*resp->prev_kv));
        if (resp->prev_kv == NULL)
            return CAIRN_ENOMEM;
        *resp->prev_kv = pkv;
    }
    if ((rc = write_record(w, &wk, false, create, version, lease, val,
                           val_len)) != 0)
        return rc;
    if (old_lease != 0 && old_lease != lease &&
        (rc = lkey_update(w, old_lease, wk.ekey, wk.ekey_len, false)) != 0)
        goto err_fail;
    if (lease != 0 && lease != old_lease &&
        (rc = lkey_update(w, lease, wk.ekey, wk.ekey_len, true)) != 0)
        goto err_fail;
    resp->header_rev = w->main;
    w->ops.puts++;
    w->ops.keys += have ? 0 : 1;
    return 0;
err_fail:
    w->s->batch_failed = true;
    return rc;
}

struct del_collect {
    struct mvcc_arena *a;
    struct mvcc_kv *kvs;
    size_t n, cap;
    bool keys_only;
};

static int del_collect_cb(void *arg, const struct mvcc__rec *r)
{
    struct del_collect *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        struct mvcc_kv *nk = cairn_realloc(c->kvs, cap * sizeof(*nk));
        if (nk == NULL)
            return CAIRN_ENOMEM;
        c->kvs = nk;
        c->cap = cap;
    }
    return mvcc__kv_copy(c->a, r, c->keys_only, &c->kvs[c->n++]);
}

static int delete_exec(struct wctx *w, const uint8_t *key, size_t key_len,
                       const uint8_t *end, size_t end_len, bool prev_kv,
                       struct mvcc_arena *a, struct mvcc_delete_resp *resp)
{
    memset(resp, 0, sizeof(*resp));
    struct del_collect c = {.a = a, .keys_only = !prev_kv};
    int rc = mvcc__visit(w->s, w->c, key, key_len, end, end_len, wctx_rev(w),
                         &c, del_collect_cb);
    if (rc != 0)
        goto out;
    if (prev_kv && c.n > 0) {
        resp->prev_kvs = mvcc_arena_alloc(a, c.n * sizeof(*resp->prev_kvs));
        if (resp->prev_kvs == NULL) {
            rc = CAIRN_ENOMEM;
            goto out;
        }
        memcpy(resp->prev_kvs, c.kvs, c.n * sizeof(*c.kvs));
        resp->n_prev_kvs = c.n;
    }
    for (size_t i = 0; i < c.n; i++) {
        const struct mvcc_kv *kv = &c.kvs[i];
        struct wkey wk;
        if ((rc = wkey_init(w, &wk, kv->key, kv->key_len)) != 0 ||
            (rc = write_record(w, &wk, true, 0, 0, 0, NULL, 0)) != 0)
            goto out;
        if (kv->lease != 0 && (rc = lkey_update(w, kv->lease, wk.ekey,
                                                wk.ekey_len, false)) != 0) {
            w->s->batch_failed = true;
            goto out;
        }
    }
    resp->deleted = (int64_t)c.n;
    w->ops.deletes++;
    w->ops.keys -= (int64_t)c.n;
    /* etcd: the next revision once the request changed anything. */
    resp->header_rev = w->sub > 0 ? w->main : w->begin;
out:
    cairn_free(c.kvs);
    return rc;
}

int mvcc_put(struct mvcc_store *s, const struct mvcc_put_req *req,
             struct mvcc_arena *a, struct mvcc_put_resp *resp)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    int rc = check_put_fields(req);
    if (rc != 0)
        return rc;
    if (s->alarm)
        return CAIRN_EQUOTA;
    struct wctx w;
    wctx_init(&w, s);
    if ((rc = check_put(&w, req)) != 0)
        return rc;
    return wctx_end(&w, put_exec(&w, req, a, resp));
}

int mvcc_delete_range(struct mvcc_store *s, const struct mvcc_delete_req *req,
                      struct mvcc_arena *a, struct mvcc_delete_resp *resp)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    if (req->key_len == 0)
        return CAIRN_EEMPTYKEY;
    struct wctx w;
    wctx_init(&w, s);
    return wctx_end(&w, delete_exec(&w, req->key, req->key_len, req->end,
                                    req->end_len, req->prev_kv, a, resp));
}

static int kv_key_cmp(const void *a, const void *b)
{
    const struct mvcc_kv *x = a, *y = b;
    return mvcc__key_cmp(x->key, x->key_len, y->key, y->key_len);
}

int mvcc_lease_revoke_keys(struct mvcc_store *s, int64_t lease_id,
                           int64_t *deleted)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    *deleted = 0;
    /* Collect the attached keys first: deleting moves the cursor's pages. */
    struct mvcc_arena a;
    mvcc_arena_init(&a);
    struct mvcc_kv *keys = NULL;
    size_t n = 0, cap = 0;
    bool any_long = false;
    MDB_cursor *c;
    int rc = mvcc__err(mdb_cursor_open(s->wtxn, s->lkey, &c));
    if (rc != 0)
        return rc;
    uint8_t pre[8];
    mvcc__put_be64(pre, (uint64_t)lease_id);
    MDB_val k = {8, pre}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && k.mv_size >= 8 && memcmp(k.mv_data, pre, 8) == 0) {
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct mvcc_kv *nk = cairn_realloc(keys, nc * sizeof(*nk));
            if (nk == NULL) {
                rc = CAIRN_ENOMEM;
                break;
            }
            keys = nk;
            cap = nc;
        }
        const uint8_t *key;
        size_t key_len;
        rc = mvcc__ekey_full(s->wcur, (const uint8_t *)k.mv_data + 8,
                             k.mv_size - 8, &key, &key_len);
        uint8_t *p = rc == 0 ? mvcc_arena_alloc(&a, key_len) : NULL;
        if (rc == 0 && p == NULL)
            rc = CAIRN_ENOMEM;
        if (rc != 0)
            break;
        memcpy(p, key, key_len);
        any_long |= mvcc__ekey_is_long(k.mv_size - 8);
        keys[n].key = p;
        keys[n].key_len = key_len;
        n++;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mvcc__err(mrc);
    if (rc != 0)
        goto out;
    /* etcd deletes a revoked lease's keys in key order; long keys of one
     * prefix are in hash order in lkey. */
    if (any_long)
        qsort(keys, n, sizeof(*keys), kv_key_cmp);
    struct wctx w;
    wctx_init(&w, s);
    for (size_t i = 0; i < n; i++) {
        struct mvcc_delete_resp dr;
        struct mvcc_arena da;
        mvcc_arena_init(&da);
        rc = delete_exec(&w, keys[i].key, keys[i].key_len, NULL, 0, false, &da,
                         &dr);
        mvcc_arena_free(&da);
        if (rc != 0)
            break;
        *deleted += dr.deleted;
    }
    rc = wctx_end(&w, rc);
out:
    cairn_free(keys);
    mvcc_arena_free(&a);
    return rc;
}

int mvcc_compact(struct mvcc_store *s, mvcc_rev rev, mvcc_rev *header_rev)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    if (rev <= s->wcompact)
        return CAIRN_EREVCOMPACTED;
    if (rev > s->wrev)
        return CAIRN_EFUTUREREV;
    int rc = mvcc__meta_put(s, s->wtxn, "compact", (uint64_t)rev);
    if (rc == 0) {
        MDB_val k = {14, "compact_cursor"};
        int mrc = mdb_del(s->wtxn, s->meta, &k, NULL);
        if (mrc != 0 && mrc != MDB_NOTFOUND)
            rc = mvcc__err(mrc);
    }
    if (rc != 0) {
        s->batch_failed = true;
        return rc;
    }
    s->wcompact = rev;
    *header_rev = s->wrev;
    return 0;
}

/* ---- Txn ---- */

size_t mvcc_put_cost(const struct mvcc_put_req *req)
{
    return KV_OVERHEAD + req->key_len + req->value_len;
}

static size_t ops_cost(const struct mvcc_op *ops, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == MVCC_OP_PUT)
            c += mvcc_put_cost(&ops[i].u.put);
    return c;
}

size_t mvcc_txn_cost(const struct mvcc_txn_req *req)
{
    size_t a = ops_cost(req->success, req->n_success);
    size_t b = ops_cost(req->failure, req->n_failure);
    return a > b ? a : b;
}

/* A set of put keys and deleted intervals for checkIntervals. Small txns
 * make linear scans the simple choice. */
struct ivset {
    struct mvcc_kv *iv; /* key..end as a delete range; end_len 0: point */
    size_t n, cap;
};

static int ivset_add(struct ivset *s, const uint8_t *k, size_t kl,
                     const uint8_t *e, size_t el)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct mvcc_kv *n = cairn_realloc(s->iv, cap * sizeof(*n));
        if (n == NULL)
            return CAIRN_ENOMEM;
        s->iv = n;
        s->cap = cap;
    }
    memset(&s->iv[s->n], 0, sizeof(s->iv[0]));
    s->iv[s->n].key = k;
    s->iv[s->n].key_len = kl;
    s->iv[s->n].value = e;
    s->iv[s->n].value_len = el;
    s->n++;
    return 0;
}

static bool ivset_has_point(const struct ivset *s, const uint8_t *k, size_t kl)
{
    for (size_t i = 0; i < s->n; i++)
        if (mvcc__key_cmp(s->iv[i].key, s->iv[i].key_len, k, kl) == 0)
            return true;
    return false;
}

/* Whether the point k lies in one of the delete intervals (etcd's
 * NewStringAffineInterval: [key, end), end "\0"... is not special there, so
 * an end of "\0" is an empty interval unless key is "" too). */
static bool ivset_covers(const struct ivset *s, const uint8_t *k, size_t kl)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct mvcc_kv *iv = &s->iv[i];
        if (iv->value_len == 0) {
            if (mvcc__key_cmp(iv->key, iv->key_len, k, kl) == 0)
                return true;
        } else if (mvcc__key_cmp(k, kl, iv->key, iv->key_len) >= 0 &&
                   mvcc__key_cmp(k, kl, iv->value, iv->value_len) < 0) {
            return true;
        }
    }
    return false;
}

static int check_intervals(const struct mvcc_op *reqs, size_t n,
                           struct ivset *puts, struct ivset *dels, int depth)
{
    if (depth > MVCC__TXN_DEPTH_MAX)
        return CAIRN_ETOOBIG;
    int rc;
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].type != MVCC_OP_DELETE)
            continue;
        const struct mvcc_delete_req *d = &reqs[i].u.del;
        if ((rc = ivset_add(dels, d->key, d->key_len, d->end, d->end_len)) != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].type != MVCC_OP_TXN)
            continue;
        const struct mvcc_txn_req *t = reqs[i].u.txn;
        struct ivset pt = {0}, dt = {0}, pe = {0}, de = {0};
        rc = check_intervals(t->success, t->n_success, &pt, &dt, depth + 1);
        if (rc == 0)
            rc = check_intervals(t->failure, t->n_failure, &pe, &de, depth + 1);
        for (size_t j = 0; rc == 0 && j < pt.n; j++) {
            if (ivset_has_point(puts, pt.iv[j].key, pt.iv[j].key_len) ||
                ivset_covers(dels, pt.iv[j].key, pt.iv[j].key_len))
                rc = CAIRN_EDUPLICATEKEY;
            else
                rc = ivset_add(puts, pt.iv[j].key, pt.iv[j].key_len, NULL, 0);
        }
        for (size_t j = 0; rc == 0 && j < pe.n; j++) {
            const uint8_t *k = pe.iv[j].key;
            size_t kl = pe.iv[j].key_len;
            if ((ivset_has_point(puts, k, kl) &&
                 !ivset_has_point(&pt, k, kl)) ||
                ivset_covers(dels, k, kl))
                rc = CAIRN_EDUPLICATEKEY;
            else
                rc = ivset_add(puts, k, kl, NULL, 0);
        }
        for (size_t j = 0; rc == 0 && j < dt.n; j++)
            rc = ivset_add(dels, dt.iv[j].key, dt.iv[j].key_len, dt.iv[j].value,
                           dt.iv[j].value_len);
        for (size_t j = 0; rc == 0 && j < de.n; j++)
            rc = ivset_add(dels, de.iv[j].key, de.iv[j].key_len, de.iv[j].value,
                           de.iv[j].value_len);
        cairn_free(pt.iv);
        cairn_free(dt.iv);
        cairn_free(pe.iv);
        cairn_free(de.iv);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (reqs[i].type != MVCC_OP_PUT)
            continue;
        const struct mvcc_put_req *p = &reqs[i].u.put;
        if (ivset_has_point(puts, p->key, p->key_len) ||
            ivset_covers(dels, p->key, p->key_len))
            return CAIRN_EDUPLICATEKEY;
        if ((rc = ivset_add(puts, p->key, p->key_len, NULL, 0)) != 0)
            return rc;
    }
    return 0;
}

static int check_txn_fields(const struct mvcc_txn_req *t, size_t max_ops,
                            int depth);

/* etcd's checkRequestOp. */
static int check_op_fields(const struct mvcc_op *o, size_t max_ops, int depth)
{
    switch (o->type) {
    case MVCC_OP_RANGE:
        return o->u.range.key_len == 0 ? CAIRN_EEMPTYKEY : 0;
    case MVCC_OP_PUT:
        return check_put_fields(&o->u.put);
    case MVCC_OP_DELETE:
        return o->u.del.key_len == 0 ? CAIRN_EEMPTYKEY : 0;
    case MVCC_OP_TXN:
        if (depth >= MVCC__TXN_DEPTH_MAX)
            return CAIRN_ETOOBIG;
        return check_txn_fields(o->u.txn, max_ops, depth + 1);
    }
    /* etcd answers an empty request op with ErrGRPCKeyNotFound. */
    return CAIRN_EKEYNOTFOUND;
}

/* etcd's checkTxnRequest: nested txns get what the outer one left of the
 * operation budget. */
static int check_txn_fields(const struct mvcc_txn_req *t, size_t max_ops,
                            int depth)
{
    size_t opc = t->n_compares;
    if (opc < t->n_success)
        opc = t->n_success;
    if (opc < t->n_failure)
        opc = t->n_failure;
    if (opc > max_ops)
        return CAIRN_ETOOMANYOPS;
    for (size_t j = 0; j < t->n_compares; j++)
        if (t->compares[j].key_len == 0)
            return CAIRN_EEMPTYKEY;
    int rc;
    for (size_t i = 0; i < t->n_success; i++)
        if ((rc = check_op_fields(&t->success[i], max_ops - opc, depth)) != 0)
            return rc;
    for (size_t i = 0; i < t->n_failure; i++)
        if ((rc = check_op_fields(&t->failure[i], max_ops - opc, depth)) != 0)
            return rc;
    return 0;
}

int mvcc_txn_validate(const struct mvcc_txn_req *req, size_t max_ops)
{
    int rc = check_txn_fields(req, max_ops, 0);
    if (rc != 0)
        return rc;
    struct ivset p = {0}, d = {0};
    rc = check_intervals(req->success, req->n_success, &p, &d, 0);
    cairn_free(p.iv);
    cairn_free(d.iv);
    if (rc != 0)
        return rc;
    p = (struct ivset){0};
    d = (struct ivset){0};
    rc = check_intervals(req->failure, req->n_failure, &p, &d, 0);
    cairn_free(p.iv);
    cairn_free(d.iv);
    return rc;
}

struct cmp_state {
    const struct mvcc_compare *c;
    bool ok;
    bool any;
};

static int cmp_int(int64_t a, int64_t b)
{
    return a < b ? -1 : (a > b ? 1 : 0);
}

static bool compare_kv(const struct mvcc_compare *c, const struct mvcc_kv *kv)
{
    int r = 0;
    switch (c->target) {
    case MVCC_CMP_VALUE:
        r = mvcc__key_cmp(kv->value, kv->value_len, c->value, c->value_len);
        break;
    case MVCC_CMP_CREATE:
        r = cmp_int(kv->create_rev, c->number);
        break;
    case MVCC_CMP_MOD:
        r = cmp_int(kv->mod_rev, c->number);
        break;
    case MVCC_CMP_VERSION:
        r = cmp_int(kv->version, c->number);
        break;
    case MVCC_CMP_LEASE:
        r = cmp_int(kv->lease, c->number);
        break;
    }
    switch (c->result) {
    case MVCC_CMP_EQUAL:
        return r == 0;
    case MVCC_CMP_NOT_EQUAL:
        return r != 0;
    case MVCC_CMP_GREATER:
        return r > 0;
    case MVCC_CMP_LESS:
        return r < 0;
    }
    return true;
}

static int cmp_cb(void *arg, const struct mvcc__rec *r)
{
    struct cmp_state *st = arg;
    struct mvcc_kv kv = {.key = r->key,
                         .key_len = r->key_len,
                         .value = r->val,
                         .value_len = r->val_len,
                         .create_rev = r->create,
                         .mod_rev = r->main,
                         .version = r->version,
                         .lease = r->lease};
    st->any = true;
    if (!compare_kv(st->c, &kv)) {
        st->ok = false;
        return 1;
    }
    return 0;
}

static int apply_compares(struct wctx *w, const struct mvcc_txn_req *t,
                          bool *ok)
{
    for (size_t i = 0; i < t->n_compares; i++) {
        const struct mvcc_compare *c = &t->compares[i];
        struct cmp_state st = {.c = c, .ok = true};
        int rc = mvcc__visit(w->s, w->c, c->key, c->key_len, c->end, c->end_len,
                             wctx_rev(w), &st, cmp_cb);
        if (rc != 0)
            return rc;
        if (!st.any) {
            if (c->target == MVCC_CMP_VALUE) {
                st.ok = false;
            } else {
                struct mvcc_kv empty = {0};
                st.ok = compare_kv(c, &empty);
            }
        }
        if (!st.ok) {
            *ok = false;
            return 0;
        }
    }
    *ok = true;
    return 0;
}

struct path {
    bool *v;
    size_t n, cap;
};

/* etcd's compareToPath: every compare of the txn tree along the chosen
 * branches, evaluated before anything is written, in pre-order. */
static int compute_path(struct wctx *w, const struct mvcc_txn_req *t,
                        struct path *p, int depth)
{
    if (depth > MVCC__TXN_DEPTH_MAX || p->n >= MVCC__TXN_PATH_MAX)
        return CAIRN_ETOOBIG;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        bool *nv = cairn_realloc(p->v, cap * sizeof(*nv));
        if (nv == NULL)
            return CAIRN_ENOMEM;
        p->v = nv;
        p->cap = cap;
    }
    bool ok;
    int rc = apply_compares(w, t, &ok);
    if (rc != 0)
        return rc;
    p->v[p->n++] = ok;
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == MVCC_OP_TXN &&
            (rc = compute_path(w, ops[i].u.txn, p, depth + 1)) != 0)
            return rc;
    return 0;
}

/* The delete ranges met so far along the executed path, in execution
 * order (borrowed from the request). */
struct dels_seen {
    const struct mvcc_delete_req **d;
    size_t n, cap;
};

static bool dels_cover(const struct dels_seen *ds, const uint8_t *key,
                       size_t key_len)
{
    for (size_t i = 0; i < ds->n; i++)
        if (mvcc__in_range(ds->d[i]->key, ds->d[i]->key_len, ds->d[i]->end,
                           ds->d[i]->end_len, key, key_len))
            return true;
    return false;
}

/* etcd's checkRequests with checkRequestPut and checkRequestRange. */
static int check_path(struct wctx *w, const struct mvcc_txn_req *t,
                      const struct path *p, size_t *pos)
{
    bool ok = p->v[(*pos)++];
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        switch (ops[i].type) {
        case MVCC_OP_TXN:
            rc = check_path(w, ops[i].u.txn, p, pos);
            break;
        case MVCC_OP_PUT:
            rc = check_put(w, &ops[i].u.put);
            break;
        case MVCC_OP_RANGE:
            if (ops[i].u.range.revision > wctx_rev(w))
                rc = CAIRN_EFUTUREREV;
            else if (ops[i].u.range.revision != 0 &&
                     ops[i].u.range.revision < w->s->wcompact)
                rc = CAIRN_EREVCOMPACTED;
            break;
        default:
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* etcd checks ignore_value/ignore_lease against the state before the txn,
 * then panics when a sibling nested txn deleted the key before the put
 * runs. Validation leaves a delete before such a put only in that shape;
 * this pass, after etcd's checks passed, finds it so the txn fails
 * cleanly. */
static int check_deleted_ignores(const struct mvcc_txn_req *t,
                                 const struct path *p, size_t *pos,
                                 struct dels_seen *ds)
{
    bool ok = p->v[(*pos)++];
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        const struct mvcc_put_req *put = &ops[i].u.put;
        switch (ops[i].type) {
        case MVCC_OP_TXN:
            rc = check_deleted_ignores(ops[i].u.txn, p, pos, ds);
            break;
        case MVCC_OP_PUT:
            if ((put->ignore_value || put->ignore_lease) &&
                dels_cover(ds, put->key, put->key_len))
                rc = CAIRN_EKEYNOTFOUND;
            break;
        case MVCC_OP_DELETE:
            if (ds->n == ds->cap) {
                size_t cap = ds->cap ? ds->cap * 2 : 8;
                const struct mvcc_delete_req **nd =
                    cairn_realloc(ds->d, cap * sizeof(*nd));
                if (nd == NULL)
                    return CAIRN_ENOMEM;
                ds->d = nd;
                ds->cap = cap;
            }
            ds->d[ds->n++] = &ops[i].u.del;
            break;
        default:
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int exec_path(struct wctx *w, const struct mvcc_txn_req *t,
                     const struct path *p, size_t *pos, struct mvcc_arena *a,
                     struct mvcc_txn_resp *resp)
{
    bool ok = p->v[(*pos)++];
    const struct mvcc_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    resp->succeeded = ok;
    resp->n_responses = n;
    resp->responses = NULL;
    if (n > 0) {
        resp->responses = mvcc_arena_alloc(a, n * sizeof(*resp->responses));
        if (resp->responses == NULL)
            return CAIRN_ENOMEM;
        memset(resp->responses, 0, n * sizeof(*resp->responses));
    }
    for (size_t i = 0; i < n; i++) {
        struct mvcc_op_resp *r = &resp->responses[i];
        r->type = ops[i].type;
        int rc = 0;
        switch (ops[i].type) {
        case MVCC_OP_RANGE:
            rc = mvcc__range(w->s, NULL, w->c, wctx_rev(w), w->s->wcompact,
                             &ops[i].u.range, a, &r->u.range);
            w->ops.ranges++;
            break;
        case MVCC_OP_PUT:
            rc = put_exec(w, &ops[i].u.put, a, &r->u.put);
            break;
        case MVCC_OP_DELETE:
            rc = delete_exec(w, ops[i].u.del.key, ops[i].u.del.key_len,
                             ops[i].u.del.end, ops[i].u.del.end_len,
                             ops[i].u.del.prev_kv, a, &r->u.del);
            break;
        case MVCC_OP_TXN:
            r->u.txn = mvcc_arena_alloc(a, sizeof(*r->u.txn));
            if (r->u.txn == NULL)
                return CAIRN_ENOMEM;
            memset(r->u.txn, 0, sizeof(*r->u.txn));
            rc = exec_path(w, ops[i].u.txn, p, pos, a, r->u.txn);
            break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mvcc_txn(struct mvcc_store *s, const struct mvcc_txn_req *req,
             struct mvcc_arena *a, struct mvcc_txn_resp *resp)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    memset(resp, 0, sizeof(*resp));
    if (s->batch_failed)
        return CAIRN_EIO;
    /* The operation budget is the api layer's (--max-txn-ops); applying
     * what was admitted must not depend on configuration. */
    int rc = mvcc_txn_validate(req, SIZE_MAX);
    if (rc != 0)
        return rc;
    if (s->alarm && mvcc_txn_cost(req) > 0)
        return CAIRN_EQUOTA;
    struct wctx w;
    wctx_init(&w, s);
    struct path p = {0};
    if ((rc = compute_path(&w, req, &p, 0)) != 0)
        goto out;
    size_t pos = 0;
    if ((rc = check_path(&w, req, &p, &pos)) != 0)
        goto out;
    struct dels_seen ds = {0};
    pos = 0;
    rc = check_deleted_ignores(req, &p, &pos, &ds);
    cairn_free(ds.d);
    if (rc != 0)
        goto out;
    /* Every logical error was found above: execution fails only on I/O or
     * memory, which fails the batch once something was written. */
    pos = 0;
    rc = wctx_end(&w, exec_path(&w, req, &p, &pos, a, resp));
    if (rc != 0) {
        memset(resp, 0, sizeof(*resp));
        goto out;
    }
    resp->header_rev = wctx_rev(&w); /* nested ones stay 0, as etcd's */
out:
    cairn_free(p.v);
    return rc;
}
