/* The store's life cycle on LMDB: open and close, read-transaction pool,
 * write batches with the consistent index, meta records, status figures,
 * the ext table, sync and defragmentation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mvcc/mvcc_int.h"

#define COMP "mvcc"
#define DEFAULT_QUOTA ((size_t)2 * 1024 * 1024 * 1024)

int mvcc__err(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case ENOMEM:
        return CAIRN_ENOMEM;
    case MDB_MAP_FULL:
    case ENOSPC:
        return CAIRN_ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return CAIRN_ECORRUPT;
    case MDB_NOTFOUND:
        return CAIRN_ENOTFOUND;
    default:
        return CAIRN_EIO;
    }
}

int mvcc__key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

bool mvcc__in_range(const uint8_t *start, size_t start_len, const uint8_t *end,
                    size_t end_len, const uint8_t *key, size_t key_len)
{
    if (end_len == 0)
        return mvcc__key_cmp(start, start_len, key, key_len) == 0;
    if (mvcc__key_cmp(key, key_len, start, start_len) < 0)
        return false;
    if (end_len == 1 && end[0] == 0)
        return true;
    return mvcc__key_cmp(key, key_len, end, end_len) < 0;
}

/* kv-db order: user key (memcmp, then length), then the big-endian
 * revision suffix. */
static inline uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

/* Prefetching the page a search enters (docs/mvcc.md, "Point reads").
 * In a million-key store a point get's B-tree descent waited on memory at
 * nearly every probe of its binary searches, one cache line at a time:
 * each probe reads a node at its own offset in the page. When the
 * comparator first sees a node of a page, it asks for every line of the
 * page that holds nodes at once (LMDB 0.9's page header, part of its
 * on-disk format: bytes 14-15 are the offset where the nodes begin), so
 * the search, the step back and the value copy wait for memory about
 * once per page. Only a hint: the comparator prefetches only for nodes
 * inside the current thread's LMDB map (mvcc__prefetch_enter), reads
 * nothing outside the page holding the node, and a layout other than the
 * one assumed costs useless prefetches, never a wrong result. */
static _Thread_local struct mvcc__pf pf_map;
static _Thread_local uintptr_t pf_page;

struct mvcc__pf mvcc__prefetch_enter(const struct mvcc_store *s)
{
    struct mvcc__pf old = pf_map;
    pf_map = s->pf;
    return old;
}

void mvcc__prefetch_leave(struct mvcc__pf old)
{
    pf_map = old;
}

/* Out of line, so that the comparator's common path (same page) stays
 * free of the loop's register saves; unrolled, since a branch page asks
 * for some 60 lines. */
__attribute__((noipa)) static void prefetch_lines(const uint8_t *p,
                                                  const uint8_t *end)
{
#pragma GCC unroll 8
    for (; p < end; p += 64)
        __builtin_prefetch(p);
}

/* LMDB 0.9's page layout, part of its on-disk format: the header's
 * flags (P_BRANCH) at byte 10, the offset where the nodes begin at byte
 * 14; a node's key follows its 8-byte header, whose first three 16-bit
 * words hold a branch node's child page number. */
#define PF_FLAGS_OFF 10
#define PF_UPPER_OFF 14
#define PF_P_BRANCH 0x01
#define PF_NODE_HDR 8

static _Thread_local bool pf_branch; /* pf_page is a branch page */

static void prefetch_page(const uint8_t *p)
{
    pf_page = (uintptr_t)p;
    uint16_t flags, upper;
    memcpy(&flags, p + PF_FLAGS_OFF, sizeof(flags));
    memcpy(&upper, p + PF_UPPER_OFF, sizeof(upper));
    pf_branch = (flags & PF_P_BRANCH) != 0;
    prefetch_lines(p + (upper & ~63u), p + pf_map.page_mask + 1);
}

/* The first line (header and node offsets) of the child page of the
 * branch node whose key the search compares against: the search ends
 * at one of the nodes it compared, mostly the last one, so the next
 * level's header is on its way before LMDB reads it. */
static inline void prefetch_child(const uint8_t *node_key)
{
    /* Three 16-bit loads, as LMDB stores them: with one 64-bit load
     * GCC 12 dropped the prefetch altogether. */
    uint16_t w[3];
    memcpy(w, node_key - PF_NODE_HDR, sizeof(w));
    uint64_t pgno = w[0] | (uint64_t)w[1] << 16 | (uint64_t)w[2] << 32;
    uint64_t off = pgno * (pf_map.page_mask + 1);
    if (off < pf_map.len)
        __builtin_prefetch((const void *)(pf_map.lo + off));
}

/* The comparison beyond the first 8 bytes of the user keys. */
__attribute__((noinline)) static int kv_cmp_rest(const MDB_val *a,
                                                 const MDB_val *b)
{
    CAIRN_ASSERT(a->mv_size >= MVCC__REV_BYTES &&
                 b->mv_size >= MVCC__REV_BYTES);
    size_t al = a->mv_size - MVCC__REV_BYTES;
    size_t bl = b->mv_size - MVCC__REV_BYTES;
    const uint8_t *pa = a->mv_data, *pb = b->mv_data;
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(pa, pb, n) : 0;
    if (c != 0)
        return c;
    if (al != bl)
        return al < bl ? -1 : 1;
    uint64_t x = load_be64(pa + al), y = load_be64(pb + bl);
    if (x == y) {
        x = load_be64(pa + al + 8);
        y = load_be64(pb + bl + 8);
    }
    return x < y ? -1 : (x > y);
}

/* LMDB calls the comparator for every step of every search (a fifth of
 * a put's instructions): keys whose first 8 bytes differ, nearly every
 * comparison of a search, are told apart by one big-endian word compare
 * in a function that calls nothing (so it saves no registers); the rest
 * goes to kv_cmp_rest. */
static inline int kv_cmp_fast(const MDB_val *a, const MDB_val *b)
{
    if (a->mv_size >= MVCC__REV_BYTES + 8 &&
        b->mv_size >= MVCC__REV_BYTES + 8) {
        uint64_t x = load_be64(a->mv_data), y = load_be64(b->mv_data);
        if (x != y)
            return x < y ? -1 : 1;
    }
    return kv_cmp_rest(a, b);
}

__attribute__((noinline)) static int
kv_cmp_new_page(const MDB_val *a, const MDB_val *b, const uint8_t *page)
{
    prefetch_page(page);
    if (pf_branch && (uintptr_t)b->mv_data - (uintptr_t)page >= PF_NODE_HDR)
        prefetch_child(b->mv_data);
    return kv_cmp_fast(a, b);
}

/* Only nodes inside this thread's map are looked at: b may also be a
 * caller's key, whose surroundings are none of our business. */
static int kv_cmp(const MDB_val *a, const MDB_val *b)
{
    uintptr_t addr = (uintptr_t)b->mv_data;
    if (addr - pf_map.lo < pf_map.len) {
        uintptr_t page = addr & ~pf_map.page_mask;
        if (page != pf_page)
            return kv_cmp_new_page(a, b, (const uint8_t *)page);
        if (pf_branch && addr - page >= PF_NODE_HDR)
            prefetch_child(b->mv_data);
    }
    return kv_cmp_fast(a, b);
}

/* A record's varints are mostly one byte (sub 0, version 1, lease 0),
 * its create revision up to three (below 2^21): those are decoded
 * inline, the rest through the codec (same result: little-endian groups
 * of 7 bits). Advances *off; false if malformed. */
static inline bool rec_varint(const uint8_t *p, size_t len, size_t *off,
                              uint64_t *v)
{
    size_t o = *off;
    if (len - o >= 3) {
        uint64_t b0 = p[o], b1 = p[o + 1], b2 = p[o + 2];
        if (b0 < 0x80) {
            *v = b0;
            *off = o + 1;
            return true;
        }
        if (b1 < 0x80) {
            *v = (b0 & 0x7f) | b1 << 7;
            *off = o + 2;
            return true;
        }
        if (b2 < 0x80) {
            *v = (b0 & 0x7f) | (b1 & 0x7f) << 7 | b2 << 14;
            *off = o + 3;
            return true;
        }
    }
    size_t n = varint_get(p + o, len - o, v);
    *off = o + n;
    return n != 0;
}

bool mvcc__rec_decode(const MDB_val *k, const MDB_val *v, struct mvcc__rec *r)
{
    if (k->mv_size < MVCC__REV_BYTES || v->mv_size < 1)
        return false;
    const uint8_t *kp = k->mv_data, *p = v->mv_data;
    size_t len = v->mv_size, off = 1;
    r->ekey = kp;
    r->ekey_len = k->mv_size - MVCC__REV_BYTES;
    r->main = (mvcc_rev)mvcc__get_be64(kp + r->ekey_len);
    uint64_t ksub = mvcc__get_be64(kp + r->ekey_len + 8);
    uint8_t flags = p[0];
    r->tomb = (flags & MVCC__FLAG_TOMB) != 0;
    uint64_t sub, create, version, lease;
    if (!rec_varint(p, len, &off, &sub) || !rec_varint(p, len, &off, &create) ||
        !rec_varint(p, len, &off, &version) ||
        !rec_varint(p, len, &off, &lease))
        return false;
    r->sub = (int64_t)sub;
    r->create = (mvcc_rev)create;
    r->version = (int64_t)version;
    r->lease = (int64_t)lease;
    bool is_long = (flags & MVCC__FLAG_LONG) != 0;
    if (sub != ksub || is_long != mvcc__ekey_is_long(r->ekey_len) ||
        (is_long && r->ekey_len != MVCC__EKEY_LONG))
        return false;
    r->key = r->ekey;
    r->key_len = r->ekey_len;
    if (is_long) {
        uint64_t kl;
        if (!rec_varint(p, len, &off, &kl) || kl <= MVCC__SHORT_MAX ||
            kl > len - off || memcmp(r->ekey, p + off, MVCC__SHORT_MAX) != 0)
            return false;
        r->key = p + off;
        r->key_len = (size_t)kl;
        off += (size_t)kl;
    }
    r->val_len = len - off;
    r->val = p + off;
    r->raw = p;
    r->raw_len = len;
    return true;
}

int mvcc__kv_copy(struct mvcc_arena *a, const struct mvcc__rec *r,
                  bool keys_only, struct mvcc_kv *kv)
{
    size_t vl = keys_only ? 0 : r->val_len;
    uint8_t *p = mvcc_arena_alloc(a, r->key_len + vl);
    if (p == NULL)
        return CAIRN_ENOMEM;
    if (r->key_len)
        memcpy(p, r->key, r->key_len);
    if (vl)
        memcpy(p + r->key_len, r->val, vl);
    kv->key = p;
    kv->key_len = r->key_len;
    kv->value = vl ? p + r->key_len : NULL;
    kv->value_len = vl;
    kv->create_rev = r->create;
    kv->mod_rev = r->main;
    kv->version = r->version;
    kv->lease = r->lease;
    return 0;
}

/* ---- read transactions ---- */

/* Pooled read transactions keep their snapshot between reads while no
 * write transaction commits: beginning a read then costs no
 * mdb_txn_renew and no mdb_cursor_renew (which looks the kv db up in the
 * main db again): together a fifth of a point get's instructions. After
 * a commit, mvcc__snap_advance releases the idle pooled snapshots, so a
 * reader never sees a state older than what was published, and an idle
 * pool never keeps LMDB from reusing freed pages for more than a commit. */
int mvcc__read_begin(struct mvcc_store *s, struct mvcc__rd **out)
{
    pthread_rwlock_rdlock(&s->env_lock);
    struct mvcc__rd *rd = NULL;
    pthread_mutex_lock(&s->pool_mu);
    uint64_t gen = s->snap_gen;
    if (s->pool_n > 0)
        rd = s->pool[--s->pool_n];
    pthread_mutex_unlock(&s->pool_mu);
    int rc = 0;
    if (rd != NULL) {
        if (rd->live && rd->gen == gen) {
            rd->pf_saved = mvcc__prefetch_enter(s);
            *out = rd;
            return 0;
        }
        if (rd->live)
            mdb_txn_reset(rd->t);
        rd->live = false;
        /* A reader that cannot be renewed is dropped and a fresh one made. */
        if (mdb_txn_renew(rd->t) == 0 && mdb_cursor_renew(rd->t, rd->kv) == 0) {
            rd->gen = gen;
            rd->live = true;
            rd->root_state = 0;
            rd->pf_saved = mvcc__prefetch_enter(s);
            *out = rd;
            return 0;
        }
        mdb_cursor_close(rd->kv);
        mdb_txn_abort(rd->t);
        cairn_free(rd);
    }
    rd = cairn_malloc(sizeof(*rd));
    if (rd == NULL) {
        rc = ENOMEM;
        goto err_unlock;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &rd->t)) != 0)
        goto err_free;
    if ((rc = mdb_cursor_open(rd->t, s->kv, &rd->kv)) != 0) {
        mdb_txn_abort(rd->t);
        goto err_free;
    }
    rd->gen = gen;
    rd->live = true;
    rd->root_state = 0;
    rd->pf_saved = mvcc__prefetch_enter(s);
    *out = rd;
    return 0;
err_free:
    cairn_free(rd);
err_unlock:
    pthread_rwlock_unlock(&s->env_lock);
    return mvcc__err(rc);
}

void mvcc__read_end(struct mvcc_store *s, struct mvcc__rd *rd)
{
    mvcc__prefetch_leave(rd->pf_saved);
    pthread_mutex_lock(&s->pool_mu);
    if (rd->gen != s->snap_gen) {
        /* A commit came meanwhile: this snapshot is stale, release it. */
        mdb_txn_reset(rd->t);
        rd->live = false;
    }
    if (s->pool_n < MVCC__READ_POOL) {
        s->pool[s->pool_n++] = rd;
        rd = NULL;
    }
    pthread_mutex_unlock(&s->pool_mu);
    if (rd != NULL) {
        mdb_cursor_close(rd->kv);
        mdb_txn_abort(rd->t);
        cairn_free(rd);
    }
    pthread_rwlock_unlock(&s->env_lock);
}

void mvcc__snap_advance(struct mvcc_store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    s->snap_gen++;
    for (int i = 0; i < s->pool_n; i++)
        if (s->pool[i]->live) {
            mdb_txn_reset(s->pool[i]->t);
            s->pool[i]->live = false;
        }
    pthread_mutex_unlock(&s->pool_mu);
}

static void pool_drain(struct mvcc_store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    while (s->pool_n > 0) {
        struct mvcc__rd *rd = s->pool[--s->pool_n];
        mdb_cursor_close(rd->kv);
        mdb_txn_abort(rd->t);
        cairn_free(rd);
    }
    pthread_mutex_unlock(&s->pool_mu);
}

/* ---- meta ---- */

int mvcc__meta_get(struct mvcc_store *s, MDB_txn *t, const char *name,
                   uint64_t *v)
{
    MDB_val k = {strlen(name), (void *)name}, d;
    int rc = mdb_get(t, s->meta, &k, &d);
    if (rc == MDB_NOTFOUND) {
        *v = 0;
        return 0;
    }
    if (rc != 0)
        return mvcc__err(rc);
    if (d.mv_size != 8)
        return CAIRN_ECORRUPT;
    *v = codec_get_u64(d.mv_data);
    return 0;
}

int mvcc__meta_put(struct mvcc_store *s, MDB_txn *t, const char *name,
                   uint64_t v)
{
    uint8_t b[8];
    codec_put_u64(b, v);
    MDB_val k = {strlen(name), (void *)name}, d = {8, b};
    return mvcc__err(mdb_put(t, s->meta, &k, &d, 0));
}

/* ---- open and close ---- */

/* Live keys at the committed revision (etcd rebuilds its key index at
 * start and counts them): the base the keys counter moves from. A failure
 * only leaves the counter at 0, with a log line. */
static int64_t count_live_keys(struct mvcc_store *s)
{
    MDB_txn *t;
    MDB_cursor *c;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t) != 0)
        return 0;
    int64_t n = 0;
    if (mdb_cursor_open(t, s->kv, &c) == 0) {
        static const uint8_t zero = 0;
        struct mvcc_range_req req = {.key = &zero,
                                     .key_len = 1,
                                     .end = &zero,
                                     .end_len = 1,
                                     .count_only = true};
        struct mvcc_arena a;
        mvcc_arena_init(&a);
        struct mvcc_range_resp resp;
        int rc =
            mvcc__range(s, NULL, c, atomic_load(&s->committed_rev),
                        atomic_load(&s->committed_compact), &req, &a, &resp);
        if (rc == 0)
            n = resp.count;
        else
            cairn_warnf(s->log, COMP, "counting keys: %s", cairn_strerror(rc));
        mvcc_arena_free(&a);
        mdb_cursor_close(c);
    }
    mdb_txn_abort(t);
    return n;
}

/* Whether meta record name exists in the committed state. */
static bool meta_has(struct mvcc_store *s, const char *name)
{
    MDB_txn *t;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t) != 0)
        return false;
    MDB_val k = {strlen(name), (void *)name}, v;
    bool has = mdb_get(t, s->meta, &k, &v) == 0;
    mdb_txn_abort(t);
    return has;
}

/* Where LMDB mapped the file, for the comparator's prefetch: LMDB 0.9
 * tells the address only with MDB_FIXEDMAP, so it is found from a page
 * of the map (a meta-db record's) and the page number in its header.
 * Anything unexpected leaves the prefetch off. */
static struct mvcc__pf map_find(struct mvcc_store *s)
{
    struct mvcc__pf pf = {0, 0, 0};
    /* The prefetching comparator and our own descent (tree.c) read LMDB
     * 0.9's page layout; with another library version they stay off. */
    int major = 0, minor = 0;
    mdb_version(&major, &minor, NULL);
    if (major != 0 || minor != 9)
        return pf;
    MDB_envinfo info;
    MDB_stat est;
    MDB_txn *t;
    if (mdb_env_info(s->env, &info) != 0 || mdb_env_stat(s->env, &est) != 0 ||
        est.ms_psize < 64 || (est.ms_psize & (est.ms_psize - 1)) != 0 ||
        mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t) != 0)
        return pf;
    MDB_val k = {3, "rev"}, v;
    if (mdb_get(t, s->meta, &k, &v) == 0) {
        uintptr_t page = (uintptr_t)v.mv_data & ~(uintptr_t)(est.ms_psize - 1);
        uint64_t pgno;
        memcpy(&pgno, (const void *)page, sizeof(pgno));
        uintptr_t off = (uintptr_t)pgno * est.ms_psize;
        if (pgno < info.me_mapsize / est.ms_psize && off <= page)
            pf = (struct mvcc__pf){page - off, info.me_mapsize,
                                   est.ms_psize - 1u};
    }
    mdb_txn_abort(t);
    return pf;
}

static int env_open(struct mvcc_store *s, struct cairn_errmsg *em)
{
    int rc = mdb_env_create(&s->env);
    if (rc != 0)
        return cairn_errmsg_code(em, mvcc__err(rc), "mdb_env_create");
    mdb_env_set_maxdbs(s->env, 8);
    mdb_env_set_maxreaders(s->env, 256);
    mdb_env_set_mapsize(s->env, s->map_bytes);
    rc = mdb_env_open(s->env, s->dir, s->env_flags, 0644);
    if (rc != 0) {
        mdb_env_close(s->env);
        s->env = NULL;
        return cairn_errmsg_code(em, mvcc__err(rc), "open lmdb in %s: %s",
                                 s->dir, mdb_strerror(rc));
    }
    /* The long-key encoding fills LMDB's default 511-byte keys. */
    CAIRN_ASSERT(mdb_env_get_maxkeysize(s->env) >=
                 MVCC__EKEY_LONG + MVCC__REV_BYTES);
    MDB_txn *t;
    rc = mdb_txn_begin(s->env, NULL, 0, &t);
    if (rc != 0)
        goto err_after_env;
    if ((rc = mdb_dbi_open(t, NULL, 0, &s->main_dbi)) != 0 ||
        (rc = mdb_dbi_open(t, "kv", MDB_CREATE, &s->kv)) != 0 ||
        (rc = mdb_set_compare(t, s->kv, kv_cmp)) != 0 ||
        (rc = mdb_dbi_open(t, "rev", MDB_CREATE, &s->rev)) != 0 ||
        (rc = mdb_dbi_open(t, "meta", MDB_CREATE, &s->meta)) != 0 ||
        (rc = mdb_dbi_open(t, "lkey", MDB_CREATE, &s->lkey)) != 0 ||
        (rc = mdb_dbi_open(t, "ext", MDB_CREATE, &s->ext)) != 0) {
        mdb_txn_abort(t);
        goto err_after_env;
    }
    uint64_t rev, compact, alarm, format, ci, keys, quota;
    int crc;
    if ((crc = mvcc__meta_get(s, t, "keys", &keys)) != 0 ||
        (crc = mvcc__meta_get(s, t, "rev", &rev)) != 0 ||
        (crc = mvcc__meta_get(s, t, "ci", &ci)) != 0 ||
        (crc = mvcc__meta_get(s, t, "compact", &compact)) != 0 ||
        (crc = mvcc__meta_get(s, t, "alarm", &alarm)) != 0 ||
        (crc = mvcc__meta_get(s, t, "format", &format)) != 0 ||
        (crc = mvcc__meta_get(s, t, "quota_size", &quota)) != 0) {
        mdb_txn_abort(t);
        mdb_env_close(s->env);
        s->env = NULL;
        return cairn_errmsg_code(em, crc, "read meta in %s", s->dir);
    }
    if (rev != 0 && format != MVCC__FORMAT) {
        /* Format 1 stored keys of 480-495 bytes verbatim, which format 2
         * reads as long keys: refuse rather than misread. */
        mdb_txn_abort(t);
        mdb_env_close(s->env);
        s->env = NULL;
        return cairn_errmsg_code(em, CAIRN_ECORRUPT,
                                 "store in %s has format %llu, not %d", s->dir,
                                 (unsigned long long)format, MVCC__FORMAT);
    }
    if (rev == 0) {
        /* A new store is at revision 1, as etcd's. */
        rev = 1;
        if ((crc = mvcc__meta_put(s, t, "rev", rev)) != 0 ||
            (crc = mvcc__meta_put(s, t, "format", MVCC__FORMAT)) != 0) {
            mdb_txn_abort(t);
            mdb_env_close(s->env);
            s->env = NULL;
            return cairn_errmsg_code(em, crc, "init meta in %s", s->dir);
        }
    }
    rc = mdb_txn_commit(t);
    if (rc != 0)
        goto err_after_env;
    mvcc__snap_advance(s);
    s->pf = map_find(s);
    s->wrev = (mvcc_rev)rev;
    s->wcompact = (mvcc_rev)compact;
    s->alarm = alarm != 0;
    s->stored_quota_bytes = quota;
    atomic_store(&s->committed_quota_bytes, quota);
    atomic_store(&s->committed_rev, (int64_t)rev);
    atomic_store(&s->committed_compact, (int64_t)compact);
    atomic_store(&s->committed_ci, ci);
    /* The live keys are stored with every batch; a store written before
     * they were (no "keys" record, and revisions past the empty store's)
     * has them counted once, by reading every record. */
    bool have_keys = keys != 0 || rev <= 1 || meta_has(s, "keys");
    atomic_store(&s->ops_keys, have_keys ? (int64_t)keys : count_live_keys(s));
    mvcc__sizes_publish(s);
    return 0;
err_after_env:
    mdb_env_close(s->env);
    s->env = NULL;
    return cairn_errmsg_code(em, mvcc__err(rc), "open databases in %s: %s",
                             s->dir, mdb_strerror(rc));
}

int mvcc_open(const struct mvcc_options *opts, struct mvcc_store **out,
              struct cairn_errmsg *em)
{
    struct mvcc_store *s = cairn_calloc(1, sizeof(*s));
    if (s == NULL)
        return cairn_errmsg_code(em, CAIRN_ENOMEM, "mvcc open");
    s->dir = cairn_strdup(opts->dir);
    if (s->dir == NULL) {
        cairn_free(s);
        return cairn_errmsg_code(em, CAIRN_ENOMEM, "mvcc open");
    }
    s->log = opts->log;
    s->on_commit = opts->on_commit;
    s->on_commit_arg = opts->on_commit_arg;
    s->commit_hist = opts->commit_hist;
    s->fault = opts->fault;
    s->fault_arg = opts->fault_arg;
    s->hash_mask = UINT64_MAX;
#ifdef CAIRN_FAULTS
    if (opts->long_key_hash_bits > 0 && opts->long_key_hash_bits < 64)
        s->hash_mask = (UINT64_C(1) << opts->long_key_hash_bits) - 1;
#endif
    s->quota_bytes = opts->quota_bytes ? opts->quota_bytes : DEFAULT_QUOTA;
    /* Headroom past the quota so that a request admitted under the quota
     * never meets MDB_MAP_FULL halfway. */
    s->map_bytes = opts->map_bytes
                       ? opts->map_bytes
                       : s->quota_bytes + s->quota_bytes / 4 + (64u << 20);
    /* MDB_WRITEMAP: a batch's dirty pages are written in place in the map
     * instead of copied out with pwrite at commit (random puts dirty about
     * a page each); LMDB stays copy-on-write, so the meta page switch is
     * still the commit point. It rules out nested transactions, which we
     * do not use. */
    s->env_flags = MDB_NOTLS | MDB_NORDAHEAD | MDB_WRITEMAP |
                   (opts->no_meta_sync ? MDB_NOMETASYNC : MDB_NOSYNC);
    pthread_rwlock_init(&s->env_lock, NULL);
    pthread_mutex_init(&s->pool_mu, NULL);
    if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
        int rc = cairn_errmsg_code(em, cairn_err_from_errno(errno), "mkdir %s",
                                   s->dir);
        mvcc_close(s);
        return rc;
    }
    int rc = env_open(s, em);
    if (rc != 0) {
        cairn_errmsg_prefixf(em, "mvcc");
        mvcc_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

void mvcc_close(struct mvcc_store *s)
{
    if (s == NULL)
        return;
    if (s->wtxn != NULL)
        mvcc_batch_abort(s);
    pool_drain(s);
    if (s->env != NULL)
        mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->env_lock);
    pthread_mutex_destroy(&s->pool_mu);
    cairn_free(s->dir);
    cairn_free(s);
}

void mvcc_set_lease_hooks(struct mvcc_store *s,
                          const struct mvcc_lease_hooks *hooks)
{
    s->hooks = *hooks;
}

/* ---- batches ---- */

int mvcc_batch_begin(struct mvcc_store *s)
{
    CAIRN_ASSERT(s->wtxn == NULL);
    int rc = mdb_txn_begin(s->env, NULL, 0, &s->wtxn);
    if (rc != 0) {
        s->wtxn = NULL;
        return mvcc__err(rc);
    }
    if ((rc = mdb_cursor_open(s->wtxn, s->kv, &s->wcur)) != 0) {
        mdb_txn_abort(s->wtxn);
        s->wtxn = NULL;
        return mvcc__err(rc);
    }
    if ((rc = mdb_cursor_open(s->wtxn, s->rev, &s->wrcur)) != 0) {
        mdb_cursor_close(s->wcur);
        s->wcur = NULL;
        mdb_txn_abort(s->wtxn);
        s->wtxn = NULL;
        return mvcc__err(rc);
    }
    s->batch_failed = false;
    memset(&s->ops_batch, 0, sizeof s->ops_batch);
    s->wpf_saved = mvcc__prefetch_enter(s);
    return 0;
}

static void reload_committed(struct mvcc_store *s)
{
    s->wrev = atomic_load(&s->committed_rev);
    struct mvcc__rd *rd = NULL;
    if (mvcc__read_begin(s, &rd) == 0) {
        CAIRN_ASSERT(rd != NULL);
        MDB_txn *t = rd->t;
        uint64_t c = 0, a = 0;
        if (mvcc__meta_get(s, t, "compact", &c) == 0)
            s->wcompact = (mvcc_rev)c;
        if (mvcc__meta_get(s, t, "alarm", &a) == 0)
            s->alarm = a != 0;
        mvcc__read_end(s, rd);
    }
}

void mvcc_batch_abort(struct mvcc_store *s)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    mdb_cursor_close(s->wcur);
    s->wcur = NULL;
    mdb_cursor_close(s->wrcur);
    s->wrcur = NULL;
    mdb_txn_abort(s->wtxn);
    s->wtxn = NULL;
    mvcc__prefetch_leave(s->wpf_saved);
    reload_committed(s);
}

/* A committed batch's operation counts become visible. */
static void ops_publish(struct mvcc_store *s)
{
    const struct mvcc__ops *b = &s->ops_batch;
    atomic_fetch_add_explicit(&s->ops_puts, b->puts, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ops_deletes, b->deletes,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ops_ranges, b->ranges, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ops_txns, b->txns, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->ops_keys, b->keys, memory_order_relaxed);
    memset(&s->ops_batch, 0, sizeof s->ops_batch);
}

void mvcc_op_counts_get(struct mvcc_store *s, struct mvcc_op_counts *out)
{
    out->puts = atomic_load_explicit(&s->ops_puts, memory_order_relaxed);
    out->deletes = atomic_load_explicit(&s->ops_deletes, memory_order_relaxed);
    out->ranges = atomic_load_explicit(&s->ops_ranges, memory_order_relaxed);
    out->txns = atomic_load_explicit(&s->ops_txns, memory_order_relaxed);
    out->keys = atomic_load_explicit(&s->ops_keys, memory_order_relaxed);
}

int mvcc_batch_commit(struct mvcc_store *s, uint64_t consistent_index)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    int rc;
    if (s->batch_failed) {
        rc = CAIRN_EIO;
        goto err_abort;
    }
    int64_t keys = atomic_load(&s->ops_keys) + s->ops_batch.keys;
    if ((rc = mvcc__meta_put(s, s->wtxn, "rev", (uint64_t)s->wrev)) != 0 ||
        (rc = mvcc__meta_put(s, s->wtxn, "keys",
                             (uint64_t)(keys > 0 ? keys : 0))) != 0 ||
        (rc = mvcc__meta_put(s, s->wtxn, "ci", consistent_index)) != 0)
        goto err_abort;
    uint64_t quota = atomic_load(&s->committed_quota_bytes);
    if (quota != s->stored_quota_bytes &&
        (rc = mvcc__meta_put(s, s->wtxn, "quota_size", quota)) != 0)
        goto err_abort;
    mdb_cursor_close(s->wcur);
    s->wcur = NULL;
    mdb_cursor_close(s->wrcur);
    s->wrcur = NULL;
    uint64_t t0 = s->commit_hist != NULL ? cairn_hist_now_ns() : 0;
    rc = mdb_txn_commit(s->wtxn);
    s->wtxn = NULL;
    mvcc__prefetch_leave(s->wpf_saved);
    if (s->commit_hist != NULL)
        cairn_hist_observe(s->commit_hist, cairn_hist_now_ns() - t0);
    if (rc != 0) {
        reload_committed(s);
        return mvcc__err(rc);
    }
    mvcc__snap_advance(s);
    s->stored_quota_bytes = quota;
    atomic_store(&s->committed_compact, (int64_t)s->wcompact);
    atomic_store(&s->committed_rev, (int64_t)s->wrev);
    atomic_store(&s->committed_ci, consistent_index);
    ops_publish(s);
    mvcc__sizes_publish(s);
    if (s->on_commit != NULL)
        s->on_commit(s->on_commit_arg, s->wrev);
    return 0;
err_abort:
    mvcc_batch_abort(s);
    return rc;
}

int mvcc_sync(struct mvcc_store *s)
{
    CAIRN_ASSERT(s->wtxn == NULL);
    uint64_t t0 = s->commit_hist != NULL ? cairn_hist_now_ns() : 0;
    int rc = mvcc__fault(s, MVCC_FAULT_SYNC);
    if (rc == 0)
        rc = mdb_env_sync(s->env, 1);
    if (s->commit_hist != NULL)
        cairn_hist_observe(s->commit_hist, cairn_hist_now_ns() - t0);
    if (rc != 0) {
        cairn_errorf(s->log, COMP, "mdb_env_sync: %s", mdb_strerror(rc));
        return CAIRN_ESYNC;
    }
    return 0;
}

int mvcc_alarm_set(struct mvcc_store *s, bool on)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    int rc = mvcc__meta_put(s, s->wtxn, "alarm", on ? 1 : 0);
    if (rc != 0) {
        s->batch_failed = true;
        return rc;
    }
    s->alarm = on;
    return 0;
}

bool mvcc_alarm_active(struct mvcc_store *s)
{
    return s->alarm;
}

/* Pages LMDB uses for the tree of dbi in t (O(1): LMDB keeps the counts
 * in the database record). */
static uint64_t tree_pages(MDB_txn *t, MDB_dbi dbi)
{
    MDB_stat st;
    if (mdb_stat(t, dbi, &st) != 0)
        return 0;
    return (uint64_t)st.ms_branch_pages + st.ms_leaf_pages +
           st.ms_overflow_pages;
}

/* The bytes the committed state of t occupies: the two meta pages and
 * every page of every tree, LMDB's free list and its catalogue of named
 * databases included. It is the file's high-water mark minus the free
 * pages (those that the next writes reuse), what a compacting copy
 * (mvcc_defrag) would write, counted without walking the free list. */
static uint64_t in_use_bytes(struct mvcc_store *s, MDB_txn *t, size_t psize)
{
    uint64_t pages = 2 + tree_pages(t, 0) + tree_pages(t, 1) +
                     tree_pages(t, s->kv) + tree_pages(t, s->rev) +
                     tree_pages(t, s->meta) + tree_pages(t, s->lkey) +
                     tree_pages(t, s->ext);
    return pages * psize;
}

static uint64_t high_water_bytes(struct mvcc_store *s, size_t *psize)
{
    MDB_envinfo info;
    MDB_stat mst;
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &mst);
    *psize = mst.ms_psize;
    return (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize;
}

void mvcc__sizes_publish(struct mvcc_store *s)
{
    /* Its own read transaction, not the pool's: this runs with the env
     * lock held exclusively during defragmentation and restore. */
    MDB_txn *t;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &t) != 0)
        return; /* the figures stay those of the previous commit */
    size_t psize;
    uint64_t db = high_water_bytes(s, &psize);
    uint64_t used = in_use_bytes(s, t, psize);
    mdb_txn_abort(t);
    if (used > db)
        used = db;
    atomic_store(&s->committed_db_bytes, db);
    atomic_store(&s->committed_in_use_bytes, used);
    if (used > atomic_load(&s->committed_quota_bytes))
        atomic_store(&s->committed_quota_bytes, used);
}

/* After defragmentation the file holds only what is in use: the quota's
 * figure starts again from there, stored at once so that a restart does
 * not bring back the figure the copied meta record still holds. */
static int quota_reset(struct mvcc_store *s)
{
    atomic_store(&s->committed_quota_bytes, 0);
    mvcc__sizes_publish(s);
    uint64_t q = atomic_load(&s->committed_quota_bytes);
    MDB_txn *t;
    int rc = mvcc__err(mdb_txn_begin(s->env, NULL, 0, &t));
    if (rc != 0)
        return rc;
    if ((rc = mvcc__meta_put(s, t, "quota_size", q)) != 0) {
        mdb_txn_abort(t);
        return rc;
    }
    if ((rc = mvcc__err(mdb_txn_commit(t))) != 0)
        return rc;
    s->stored_quota_bytes = q;
    mvcc__snap_advance(s);
    mvcc__sizes_publish(s);
    return 0;
}

bool mvcc_quota_ok(struct mvcc_store *s, size_t cost)
{
    /* etcd: backend size + cost < quota. Our size is the most bytes in
     * use since the last defragmentation, not LMDB's high-water mark
     * (docs/mvcc.md, "Quota"). */
    uint64_t used = atomic_load(&s->committed_quota_bytes);
    if (used + cost >= s->quota_bytes)
        return false;
    /* Free pages that LMDB cannot reuse yet (a long reader pins them) let
     * the file grow past what is in use: the high-water mark must stay
     * half-way through the headroom so that admitted requests never meet
     * a full map. */
    uint64_t limit = s->quota_bytes;
    if (s->map_bytes > s->quota_bytes)
        limit += (s->map_bytes - s->quota_bytes) / 2;
    return atomic_load(&s->committed_db_bytes) + cost < limit;
}

uint64_t mvcc_consistent_index(struct mvcc_store *s)
{
    return atomic_load(&s->committed_ci);
}

/* ---- status ---- */

mvcc_rev mvcc_current_rev(struct mvcc_store *s)
{
    return (mvcc_rev)atomic_load(&s->committed_rev);
}

int mvcc_status_get(struct mvcc_store *s, struct mvcc_status *st)
{
    memset(st, 0, sizeof(*st));
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    MDB_txn *t = rd->t;
    uint64_t rev = 0, c = 0, cd = 0, ci = 0, alarm = 0;
    if ((rc = mvcc__meta_get(s, t, "rev", &rev)) != 0 ||
        (rc = mvcc__meta_get(s, t, "compact", &c)) != 0 ||
        (rc = mvcc__meta_get(s, t, "compact_done", &cd)) != 0 ||
        (rc = mvcc__meta_get(s, t, "ci", &ci)) != 0 ||
        (rc = mvcc__meta_get(s, t, "alarm", &alarm)) != 0)
        goto out;
    st->rev = (mvcc_rev)rev;
    st->compact_rev = (mvcc_rev)c;
    st->compact_done_rev = (mvcc_rev)cd;
    st->consistent_index = ci;
    st->nospace_alarm = alarm != 0;
    size_t psize;
    st->db_bytes = high_water_bytes(s, &psize);
    uint64_t used = in_use_bytes(s, t, psize);
    st->in_use_bytes = used < st->db_bytes ? used : st->db_bytes;
out:
    mvcc__read_end(s, rd);
    return rc;
}

/* ---- ext table ---- */

static int ext_key(uint8_t table, const void *key, size_t key_len,
                   uint8_t *stack, size_t stack_len, uint8_t **out)
{
    uint8_t *p = stack;
    if (key_len + 1 > stack_len) {
        p = cairn_malloc(key_len + 1);
        if (p == NULL)
            return CAIRN_ENOMEM;
    }
    p[0] = table;
    if (key_len)
        memcpy(p + 1, key, key_len);
    *out = p;
    return 0;
}

int mvcc_ext_put(struct mvcc_store *s, uint8_t table, const void *key,
                 size_t key_len, const void *val, size_t val_len)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    uint8_t stack[256], *p;
    int rc = ext_key(table, key, key_len, stack, sizeof(stack), &p);
    if (rc != 0)
        return rc;
    MDB_val k = {key_len + 1, p}, v = {val_len, (void *)val};
    rc = mvcc__fault(s, MVCC_FAULT_WRITE);
    rc = mvcc__err(rc ? rc : mdb_put(s->wtxn, s->ext, &k, &v, 0));
    if (p != stack)
        cairn_free(p);
    if (rc != 0)
        s->batch_failed = true;
    return rc;
}

int mvcc_ext_del(struct mvcc_store *s, uint8_t table, const void *key,
                 size_t key_len)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    uint8_t stack[256], *p;
    int rc = ext_key(table, key, key_len, stack, sizeof(stack), &p);
    if (rc != 0)
        return rc;
    MDB_val k = {key_len + 1, p};
    rc = mdb_del(s->wtxn, s->ext, &k, NULL);
    if (p != stack)
        cairn_free(p);
    if (rc == MDB_NOTFOUND)
        return CAIRN_ENOTFOUND;
    if (rc != 0)
        s->batch_failed = true;
    return mvcc__err(rc);
}

/* Visits the records of table from the first key >= seek (n bytes), in
 * key order, while their first `match` bytes equal seek's (match <= n):
 * one seek, then a walk of the matching run only. */
static int ext_walk_txn(struct mvcc_store *s, MDB_txn *t, uint8_t table,
                        const void *prefix, size_t n, size_t match, void *arg,
                        mvcc_ext_scan_cb cb)
{
    uint8_t stack[256], *start;
    int rc = ext_key(table, prefix, n, stack, sizeof(stack), &start);
    if (rc != 0)
        return rc;
    MDB_cursor *c;
    rc = mdb_cursor_open(t, s->ext, &c);
    if (rc != 0) {
        if (start != stack)
            cairn_free(start);
        return mvcc__err(rc);
    }
    MDB_val k = {n + 1, start}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    rc = 0;
    while (mrc == 0) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < match + 1 || memcmp(kp, start, match + 1) != 0)
            break;
        rc = cb(arg, kp + 1, k.mv_size - 1, v.mv_data, v.mv_size);
        if (rc != 0)
            break;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mvcc__err(mrc);
    mdb_cursor_close(c);
    if (start != stack)
        cairn_free(start);
    return rc;
}

static int ext_scan_txn(struct mvcc_store *s, MDB_txn *t, uint8_t table,
                        const void *prefix, size_t n, void *arg,
                        mvcc_ext_scan_cb cb)
{
    return ext_walk_txn(s, t, table, prefix, n, n, arg, cb);
}

int mvcc_ext_scan_from(struct mvcc_store *s, uint8_t table, const void *start,
                       size_t n, void *arg, mvcc_ext_scan_cb cb)
{
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    rc = ext_walk_txn(s, rd->t, table, start, n, 0, arg, cb);
    mvcc__read_end(s, rd);
    return rc;
}

int mvcc_ext_scan(struct mvcc_store *s, uint8_t table, void *arg,
                  mvcc_ext_scan_cb cb)
{
    return mvcc_ext_scan_prefix(s, table, NULL, 0, arg, cb);
}

int mvcc_ext_scan_prefix(struct mvcc_store *s, uint8_t table,
                         const void *prefix, size_t n, void *arg,
                         mvcc_ext_scan_cb cb)
{
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    rc = ext_scan_txn(s, rd->t, table, prefix, n, arg, cb);
    mvcc__read_end(s, rd);
    return rc;
}

int mvcc_ext_scan_batch(struct mvcc_store *s, uint8_t table, void *arg,
                        mvcc_ext_scan_cb cb)
{
    return mvcc_ext_scan_prefix_batch(s, table, NULL, 0, arg, cb);
}

int mvcc_ext_scan_prefix_batch(struct mvcc_store *s, uint8_t table,
                               const void *prefix, size_t n, void *arg,
                               mvcc_ext_scan_cb cb)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    return ext_scan_txn(s, s->wtxn, table, prefix, n, arg, cb);
}

int mvcc_reader_ext_scan_prefix(struct mvcc_reader *r, uint8_t table,
                                const void *prefix, size_t n, void *arg,
                                mvcc_ext_scan_cb cb)
{
    return ext_scan_txn(mvcc__reader_store(r), mvcc__reader_txn(r), table,
                        prefix, n, arg, cb);
}

static int ext_get_txn(struct mvcc_store *s, MDB_txn *t, uint8_t table,
                       const void *key, size_t key_len, const uint8_t **val,
                       size_t *val_len);

int mvcc_reader_ext_get(struct mvcc_reader *r, uint8_t table, const void *key,
                        size_t key_len, const uint8_t **val, size_t *val_len)
{
    return ext_get_txn(mvcc__reader_store(r), mvcc__reader_txn(r), table, key,
                       key_len, val, val_len);
}

int mvcc_ext_get_batch(struct mvcc_store *s, uint8_t table, const void *key,
                       size_t key_len, const uint8_t **val, size_t *val_len)
{
    CAIRN_ASSERT(s->wtxn != NULL);
    if (s->batch_failed)
        return CAIRN_EIO;
    return ext_get_txn(s, s->wtxn, table, key, key_len, val, val_len);
}

static int ext_get_txn(struct mvcc_store *s, MDB_txn *t, uint8_t table,
                       const void *key, size_t key_len, const uint8_t **val,
                       size_t *val_len)
{
    uint8_t stack[256], *p;
    int rc = ext_key(table, key, key_len, stack, sizeof(stack), &p);
    if (rc != 0)
        return rc;
    MDB_val k = {key_len + 1, p}, v;
    int mrc = mdb_get(t, s->ext, &k, &v);
    if (p != stack)
        cairn_free(p);
    if (mrc == MDB_NOTFOUND)
        return CAIRN_ENOTFOUND;
    if (mrc != 0)
        return mvcc__err(mrc);
    *val = v.mv_data;
    *val_len = v.mv_size;
    return 0;
}

int mvcc_lease_keys(struct mvcc_store *s, int64_t lease_id, size_t max,
                    void *arg, mvcc_lease_key_cb cb)
{
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(s, &rd);
    if (rc != 0)
        return rc;
    MDB_txn *t = rd->t;
    MDB_cursor *c;
    rc = mdb_cursor_open(t, s->lkey, &c);
    if (rc != 0) {
        mvcc__read_end(s, rd);
        return mvcc__err(rc);
    }
    uint8_t pre[8];
    mvcc__put_be64(pre, (uint64_t)lease_id);
    MDB_val k = {8, pre}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    size_t n = 0;
    rc = 0;
    while (mrc == 0 && n < max) {
        if (k.mv_size < 8 || memcmp(k.mv_data, pre, 8) != 0)
            break;
        const uint8_t *key;
        size_t key_len;
        rc = mvcc__ekey_full(rd->kv, (const uint8_t *)k.mv_data + 8,
                             k.mv_size - 8, &key, &key_len);
        if (rc == 0)
            rc = cb(arg, key, key_len);
        if (rc != 0)
            break;
        n++;
        mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mvcc__err(mrc);
    mdb_cursor_close(c);
    mvcc__read_end(s, rd);
    return rc;
}

/* ---- defragmentation ---- */

int mvcc_defrag(struct mvcc_store *s, struct cairn_errmsg *em)
{
    CAIRN_ASSERT(s->wtxn == NULL);
    char tmp[4096], tmpfile[4200], dbfile[4200], lockfile[4200];
    snprintf(tmp, sizeof(tmp), "%s/defrag.tmp", s->dir);
    snprintf(tmpfile, sizeof(tmpfile), "%s/data.mdb", tmp);
    snprintf(dbfile, sizeof(dbfile), "%s/data.mdb", s->dir);
    snprintf(lockfile, sizeof(lockfile), "%s/lock.mdb", tmp);
    unlink(tmpfile);
    unlink(lockfile);
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return cairn_errmsg_code(em, cairn_err_from_errno(errno),
                                 "defrag: mkdir %s", tmp);
    pthread_rwlock_wrlock(&s->env_lock);
    int rc = mdb_env_copy2(s->env, tmp, MDB_CP_COMPACT);
    if (rc == 0)
        rc = mvcc__fault(s, MVCC_FAULT_DEFRAG);
    if (rc != 0) {
        pthread_rwlock_unlock(&s->env_lock);
        unlink(tmpfile);
        rmdir(tmp);
        return cairn_errmsg_code(em, mvcc__err(rc), "defrag: copy to %s: %s",
                                 tmp, mdb_strerror(rc));
    }
    /* The copy is complete on disk (mdb_env_copy2 syncs it); swap it in. */
    pool_drain(s);
    mdb_env_close(s->env);
    s->env = NULL;
    int frc = rename(tmpfile, dbfile);
    int ferr = errno;
    rmdir(tmp);
    rc = env_open(s, em);
    if (rc == 0 && frc == 0 && (rc = quota_reset(s)) != 0)
        cairn_errmsg_setf(em, "defrag: store the quota size: %s",
                          cairn_strerror(rc));
    pthread_rwlock_unlock(&s->env_lock);
    if (frc != 0)
        return cairn_errmsg_code(em, cairn_err_from_errno(ferr),
                                 "defrag: rename %s", tmpfile);
    if (rc != 0)
        cairn_errmsg_prefixf(em, "defrag: reopen");
    return rc;
}

/* ---- Raft snapshots ---- */

int mvcc_snapshot_write(struct mvcc_store *s, int fd, struct cairn_errmsg *em)
{
    pthread_rwlock_rdlock(&s->env_lock);
    int rc = mdb_env_copyfd2(s->env, fd, 0);
    pthread_rwlock_unlock(&s->env_lock);
    if (rc != 0)
        return cairn_errmsg_code(em, mvcc__err(rc), "snapshot write: %s",
                                 mdb_strerror(rc));
    return 0;
}

/* The revision stored in an environment file, read by opening it alone. */
static int file_rev(const char *file, uint64_t *rev)
{
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc != 0)
        return mvcc__err(rc);
    mdb_env_set_maxdbs(env, 8);
    rc = mdb_env_open(env, file, MDB_NOSUBDIR | MDB_RDONLY | MDB_NOLOCK, 0644);
    MDB_txn *t = NULL;
    MDB_dbi meta;
    MDB_val k = {3, "rev"}, v;
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
    if (rc == 0)
        rc = mdb_dbi_open(t, "meta", 0, &meta);
    if (rc == 0)
        rc = mdb_get(t, meta, &k, &v);
    if (rc == 0 && v.mv_size != 8)
        rc = MDB_CORRUPTED;
    if (rc == 0)
        *rev = codec_get_u64(v.mv_data);
    if (t != NULL)
        mdb_txn_abort(t);
    mdb_env_close(env);
    return rc == MDB_NOTFOUND ? CAIRN_ECORRUPT : mvcc__err(rc);
}

int mvcc_snapshot_restore(struct mvcc_store *s, const char *file,
                          struct cairn_errmsg *em)
{
    CAIRN_ASSERT(s->wtxn == NULL);
    uint64_t rev = 0;
    int rc = file_rev(file, &rev);
    if (rc != 0)
        return cairn_errmsg_code(em, rc, "snapshot restore: read %s", file);
    if ((mvcc_rev)rev < atomic_load(&s->committed_rev))
        return cairn_errmsg_code(em, CAIRN_EINVAL,
                                 "snapshot restore: revision %llu is below "
                                 "the store's %lld",
                                 (unsigned long long)rev,
                                 (long long)atomic_load(&s->committed_rev));
    if ((rc = mvcc__fault(s, MVCC_FAULT_RESTORE)) != 0)
        return cairn_errmsg_code(em, mvcc__err(rc), "snapshot restore: %s",
                                 mdb_strerror(rc));
    char dbfile[4200], lockfile[4200];
    snprintf(dbfile, sizeof(dbfile), "%s/data.mdb", s->dir);
    snprintf(lockfile, sizeof(lockfile), "%s-lock", file);
    pthread_rwlock_wrlock(&s->env_lock);
    pool_drain(s);
    mdb_env_close(s->env);
    s->env = NULL;
    int frc = rename(file, dbfile);
    int ferr = errno;
    unlink(lockfile);
    rc = env_open(s, em);
    pthread_rwlock_unlock(&s->env_lock);
    if (frc != 0)
        return cairn_errmsg_code(em, cairn_err_from_errno(ferr),
                                 "snapshot restore: rename %s", file);
    if (rc != 0) {
        cairn_errmsg_prefixf(em, "snapshot restore: reopen");
        return rc;
    }
    if (s->on_commit != NULL)
        s->on_commit(s->on_commit_arg, s->wrev);
    return 0;
}
