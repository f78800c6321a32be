/* Compaction in bounded steps (each its own write transaction, resumable
 * after a restart) and the HashKV and Hash checksums. */
#include <string.h>

#include "mvcc/mvcc_int.h"

/* Deletes the kv record of ekey at (main, sub) and its revision-log
 * record. */
static int drop(struct mvcc_store *s, MDB_txn *t, const uint8_t *ekey,
                size_t ekey_len, mvcc_rev main, int64_t sub)
{
    uint8_t kb[MVCC__EKEY_LONG + MVCC__REV_BYTES];
    CAIRN_ASSERT(ekey_len <= MVCC__EKEY_LONG);
    if (ekey_len)
        memcpy(kb, ekey, ekey_len);
    mvcc__put_be64(kb + ekey_len, (uint64_t)main);
    mvcc__put_be64(kb + ekey_len + 8, (uint64_t)sub);
    MDB_val k = {ekey_len + MVCC__REV_BYTES, kb};
    int rc = mvcc__fault(s, MVCC_FAULT_COMPACT);
    if (rc == 0)
        rc = mdb_del(t, s->kv, &k, NULL);
    if (rc != 0)
        return mvcc__err(rc);
    uint8_t rk[16];
    mvcc__put_be64(rk, (uint64_t)main);
    mvcc__put_be64(rk + 8, (uint64_t)sub);
    MDB_val r = {16, rk};
    rc = mdb_del(t, s->rev, &r, NULL);
    return rc == MDB_NOTFOUND ? 0 : mvcc__err(rc);
}

struct victim {
    uint8_t *key;
    size_t key_len;
    mvcc_rev main;
    int64_t sub;
};

struct victims {
    struct victim *v;
    size_t n, cap;
};

static int victims_add(struct victims *vs, const struct mvcc__rec *r)
{
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 64;
        struct victim *nv = cairn_realloc(vs->v, cap * sizeof(*nv));
        if (nv == NULL)
            return CAIRN_ENOMEM;
        vs->v = nv;
        vs->cap = cap;
    }
    uint8_t *k = cairn_malloc(r->ekey_len ? r->ekey_len : 1);
    if (k == NULL)
        return CAIRN_ENOMEM;
    if (r->ekey_len)
        memcpy(k, r->ekey, r->ekey_len);
    vs->v[vs->n++] = (struct victim){k, r->ekey_len, r->main, r->sub};
    return 0;
}

static void victims_free(struct victims *vs)
{
    for (size_t i = 0; i < vs->n; i++)
        cairn_free(vs->v[i].key);
    cairn_free(vs->v);
}

int mvcc_compact_step(struct mvcc_store *s, size_t max_records, bool *done)
{
    CAIRN_ASSERT(s->wtxn == NULL);
    if (max_records == 0)
        max_records = 1;
    *done = false;
    MDB_txn *t;
    int rc = mvcc__err(mdb_txn_begin(s->env, NULL, 0, &t));
    if (rc != 0)
        return rc;
    uint64_t compact, cdone;
    if ((rc = mvcc__meta_get(s, t, "compact", &compact)) != 0 ||
        (rc = mvcc__meta_get(s, t, "compact_done", &cdone)) != 0)
        goto err_abort;
    if (compact == cdone) {
        mdb_txn_abort(t);
        *done = true;
        return 0;
    }
    mvcc_rev at = (mvcc_rev)compact;
    MDB_val ck = {14, "compact_cursor"}, cv;
    uint8_t *resume = NULL;
    size_t resume_len = 0;
    int mrc = mdb_get(t, s->meta, &ck, &cv);
    if (mrc == 0) {
        resume = cairn_memdup(cv.mv_data, cv.mv_size ? cv.mv_size : 1);
        if (resume == NULL) {
            rc = CAIRN_ENOMEM;
            goto err_abort;
        }
        resume_len = cv.mv_size;
    } else if (mrc != MDB_NOTFOUND) {
        rc = mvcc__err(mrc);
        goto err_abort;
    }
    MDB_cursor *c;
    if ((mrc = mdb_cursor_open(t, s->kv, &c)) != 0) {
        cairn_free(resume);
        rc = mvcc__err(mrc);
        goto err_abort;
    }
    MDB_val k, v;
    if (resume != NULL) {
        k.mv_size = resume_len;
        k.mv_data = resume;
        mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    } else {
        mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    }
    /* Walk the records; within each key's group, every record at or below
     * `at` but the latest one goes, and that one too if it is a tombstone
     * (etcd's keyIndex.compact keeps the latest version as of `at`). A
     * tombstone made exactly at `at` stays until the next compaction: it is
     * invisible to reads, but a watcher starting at `at` must see that
     * delete (etcd drops it, leaving a gap in such a watch). */
    struct victims vs = {0};
    struct mvcc__rec r, cand;
    bool have = false;
    size_t seen = 0;
    uint8_t *stop = NULL; /* where the next step resumes */
    size_t stop_len = 0;
    bool finished = false;
    rc = 0;
    while (rc == 0) {
        if (mrc == MDB_NOTFOUND) {
            if (have && cand.tomb && cand.main < at)
                rc = victims_add(&vs, &cand);
            finished = true;
            break;
        }
        if (mrc != 0) {
            rc = mvcc__err(mrc);
            break;
        }
        if (!mvcc__rec_decode(&k, &v, &r)) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        bool same = have && cand.ekey_len == r.ekey_len &&
                    memcmp(cand.ekey, r.ekey, r.ekey_len) == 0;
        if (have && !same) {
            if (cand.tomb && cand.main < at &&
                (rc = victims_add(&vs, &cand)) != 0)
                break;
            have = false;
        }
        if (seen >= max_records) {
            /* Resume at the candidate (re-judged next time) or here. */
            const MDB_val *at_k = &k;
            MDB_val cvk;
            if (have) {
                cvk.mv_size = cand.ekey_len + MVCC__REV_BYTES;
                cvk.mv_data = (void *)cand.ekey;
                at_k = &cvk;
            }
            stop = cairn_memdup(at_k->mv_data, at_k->mv_size);
            if (stop == NULL)
                rc = CAIRN_ENOMEM;
            stop_len = at_k->mv_size;
            break;
        }
        seen++;
        if (r.main <= at) {
            if (have && (rc = victims_add(&vs, &cand)) != 0)
                break;
            cand = r;
            have = true;
        } else if (have) {
            /* A newer record exists: the candidate is the kept version,
             * or, if a tombstone, nothing is kept. */
            if (cand.tomb && cand.main < at &&
                (rc = victims_add(&vs, &cand)) != 0)
                break;
            have = false;
        }
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    cairn_free(resume);
    for (size_t i = 0; rc == 0 && i < vs.n; i++)
        rc =
            drop(s, t, vs.v[i].key, vs.v[i].key_len, vs.v[i].main, vs.v[i].sub);
    victims_free(&vs);
    if (rc == 0) {
        if (finished) {
            rc = mvcc__meta_put(s, t, "compact_done", compact);
            if (rc == 0) {
                mrc = mdb_del(t, s->meta, &ck, NULL);
                if (mrc != 0 && mrc != MDB_NOTFOUND)
                    rc = mvcc__err(mrc);
            }
        } else {
            MDB_val sv = {stop_len, stop};
            rc = mvcc__err(mdb_put(t, s->meta, &ck, &sv, 0));
        }
    }
    cairn_free(stop);
    if (rc != 0)
        goto err_abort;
    rc = mvcc__err(mdb_txn_commit(t));
    if (rc == 0) {
        mvcc__snap_advance(s);
        *done = finished;
        mvcc__sizes_publish(s);
        if (s->on_commit != NULL)
            s->on_commit(s->on_commit_arg, s->wrev);
    }
    return rc;
err_abort:
    mdb_txn_abort(t);
    return rc;
}

bool mvcc_compact_pending(struct mvcc_store *s)
{
    struct mvcc__rd *rd;
    if (mvcc__read_begin(s, &rd) != 0)
        return false;
    uint64_t compact = 0, cdone = 0;
    bool pending = mvcc__meta_get(s, rd->t, "compact", &compact) == 0 &&
                   mvcc__meta_get(s, rd->t, "compact_done", &cdone) == 0 &&
                   cdone < compact;
    mvcc__read_end(s, rd);
    return pending;
}

/* ---- hashes ---- */

/* etcd's mvccpb.KeyValue as gogoproto marshals it (proto3: zero fields
 * left out), hashed piecewise. */
static uint32_t hash_varint_field(uint32_t h, uint8_t tag, int64_t v)
{
    if (v == 0)
        return h;
    uint8_t b[1 + CAIRN_VARINT_MAX];
    b[0] = tag;
    size_t n = varint_put(b + 1, (uint64_t)v);
    return crc32c(h, b, 1 + n);
}

static uint32_t hash_bytes_field(uint32_t h, uint8_t tag, const uint8_t *p,
                                 size_t len)
{
    if (len == 0)
        return h;
    uint8_t b[1 + CAIRN_VARINT_MAX];
    b[0] = tag;
    size_t n = varint_put(b + 1, len);
    h = crc32c(h, b, 1 + n);
    return crc32c(h, p, len);
}

/* One record as etcd's key bucket holds it: the revision key (BE main, '_',
 * BE sub, and 't' for a tombstone), then the marshaled KeyValue (only the
 * key for a tombstone). */
static uint32_t hash_rec(uint32_t h, const struct mvcc__rec *r)
{
    uint8_t rk[18];
    mvcc__put_be64(rk, (uint64_t)r->main);
    rk[8] = '_';
    mvcc__put_be64(rk + 9, (uint64_t)r->sub);
    rk[17] = 't';
    h = crc32c(h, rk, r->tomb ? 18 : 17);
    h = hash_bytes_field(h, 0x0a, r->key, r->key_len);
    if (r->tomb)
        return h;
    h = hash_varint_field(h, 0x10, r->create);
    h = hash_varint_field(h, 0x18, r->main);
    h = hash_varint_field(h, 0x20, r->version);
    h = hash_bytes_field(h, 0x2a, r->val, r->val_len);
    return hash_varint_field(h, 0x30, r->lease);
}

int mvcc_hash_kv(struct mvcc_store *s, mvcc_rev rev, uint32_t *hash,
                 mvcc_rev *compact_rev, mvcc_rev *header_rev)
{
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    MDB_txn *t = rd->t;
    uint64_t cur, compact;
    if ((rc = mvcc__meta_get(s, t, "rev", &cur)) != 0 ||
        (rc = mvcc__meta_get(s, t, "compact", &compact)) != 0)
        goto out;
    if (rev > (mvcc_rev)cur) {
        rc = CAIRN_EFUTUREREV;
        goto out;
    }
    if (rev > 0 && rev <= (mvcc_rev)compact) {
        rc = CAIRN_EREVCOMPACTED;
        goto out;
    }
    if (rev <= 0)
        rev = (mvcc_rev)cur;
    mvcc_rev cr = (mvcc_rev)compact;
    MDB_cursor *c;
    if ((rc = mvcc__err(mdb_cursor_open(t, s->rev, &c))) != 0)
        goto out;
    /* etcd's HashByRev: in revision order, every record in (compact, rev],
     * and below that only each key's version alive at rev. */
    uint32_t h = crc32c(0, "key", 3);
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (mrc == 0 && rc == 0) {
        if (k.mv_size != 16) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        mvcc_rev main = (mvcc_rev)mvcc__get_be64(k.mv_data);
        int64_t sub = (int64_t)mvcc__get_be64((const uint8_t *)k.mv_data + 8);
        if (main > rev)
            break;
        struct mvcc__rec r;
        rc = mvcc__get_exact(s, t, v.mv_data, v.mv_size, main, sub, &r);
        if (rc == CAIRN_ENOTFOUND)
            rc = CAIRN_ECORRUPT;
        if (rc != 0)
            break;
        bool take = main > cr;
        if (!take && !r.tomb) {
            struct mvcc__rec alive;
            int grc =
                mvcc__get_e(rd->kv, r.ekey, r.ekey_len, rev, false, &alive);
            if (grc != 0 && grc != CAIRN_ENOTFOUND) {
                rc = grc;
                break;
            }
            take = grc == 0 && alive.main == main && alive.sub == sub;
        }
        if (take)
            h = hash_rec(h, &r);
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mvcc__err(mrc);
    mdb_cursor_close(c);
    if (rc == 0) {
        *hash = h;
        /* etcd answers -1 before the first compaction. */
        *compact_rev = cr > 0 ? cr : -1;
        *header_rev = (mvcc_rev)cur;
    }
out:
    mvcc__read_end(s, rd);
    return rc;
}

static int hash_db(MDB_txn *t, MDB_dbi dbi, uint32_t *h)
{
    MDB_cursor *c;
    int rc = mvcc__err(mdb_cursor_open(t, dbi, &c));
    if (rc != 0)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        uint8_t l[8];
        codec_put_u32(l, (uint32_t)k.mv_size);
        codec_put_u32(l + 4, (uint32_t)v.mv_size);
        *h = crc32c(*h, l, sizeof(l));
        *h = crc32c(*h, k.mv_data, k.mv_size);
        *h = crc32c(*h, v.mv_data, v.mv_size);
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return mrc == MDB_NOTFOUND ? 0 : mvcc__err(mrc);
}

int mvcc_hash(struct mvcc_store *s, uint32_t *hash, mvcc_rev *header_rev)
{
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    MDB_txn *t = rd->t;
    uint32_t h = 0;
    uint64_t cur = 0, compact = 0;
    if ((rc = mvcc__meta_get(s, t, "rev", &cur)) == 0 &&
        (rc = mvcc__meta_get(s, t, "compact", &compact)) == 0 &&
        (rc = hash_db(t, s->kv, &h)) == 0 &&
        (rc = hash_db(t, s->rev, &h)) == 0 &&
        (rc = hash_db(t, s->lkey, &h)) == 0 &&
        (rc = hash_db(t, s->ext, &h)) == 0) {
        uint8_t m[16];
        codec_put_u64(m, cur);
        codec_put_u64(m + 8, compact);
        h = crc32c(h, m, sizeof(m));
        *hash = h;
        *header_rev = (mvcc_rev)cur;
    }
    mvcc__read_end(s, rd);
    return rc;
}
