/* A point read's own descent of the kv tree in a read snapshot
 * (docs/mvcc.md, "Point reads: our own descent").
 *
 * A point get wants the greatest kv record below (key, at + 1, 0). Through
 * LMDB's cursor that is a SET_RANGE and a step back: some 1,400
 * instructions of cursor code around the comparator, a step to the next
 * leaf and back when the record is the last of its page (one get in 13 at
 * a million keys), and at every page a wait for the node LMDB probes
 * first before the comparator can ask for the rest of the page. Here the
 * descent reads LMDB 0.9's pages itself (their layout is LMDB's on-disk
 * format): at each page it reads the header, asks for every node line at
 * once, and while searching a branch page asks for the first line of
 * each child it compares against, so the next level's header is on its
 * way. Pages of a read snapshot never change while it is held, and
 * every offset and page number is checked against the page and the map,
 * so bad content costs a fallback to LMDB's cursor, never a read outside
 * the map. */
#include <string.h>

#include "mvcc/mvcc_int.h"

/* LMDB 0.9's layout (mdb.c, part of its file format). Page header: page
 * number (8 bytes), pad (2), flags (2), lower (2: end of the node
 * offsets), upper (2: start of the nodes), then the 16-bit node offsets.
 * Node: data size low and high 16 bits (a branch node: the child's page
 * number in these and the flags word), flags (2), key size (2), key,
 * data. A named database's record in the main database is an MDB_db,
 * whose root page number is its last 8 bytes. */
#define T_FLAGS 10
#define T_LOWER 12
#define T_UPPER 14
#define T_HDR 16
#define T_NODE 8
#define T_P_BRANCH 0x01
#define T_P_LEAF 0x02
#define T_P_KINDS 0x7f /* branch, leaf, overflow, meta, dirty, leaf2, subp */
#define T_F_BIGDATA 0x01
#define T_F_SUBDATA 0x02
#define T_F_DUPDATA 0x04
#define T_DB_SIZE 48
#define T_DB_ROOT 40
#define T_INVALID_PGNO UINT64_MAX
#define T_DEPTH_MAX 32

static inline uint16_t t_u16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

bool mvcc__tree_root(const struct mvcc_store *s, MDB_txn *t, uint64_t *root)
{
    MDB_val k = {2, "kv"}, v;
    if (mdb_get(t, s->main_dbi, &k, &v) != 0 || v.mv_size != T_DB_SIZE)
        return false;
    memcpy(root, (const uint8_t *)v.mv_data + T_DB_ROOT, sizeof(*root));
    return true;
}

/* kv-db order of two full kv keys (user key then 16-byte revision). */
static inline int t_cmp(const uint8_t *a, size_t al, const uint8_t *b,
                        size_t bl)
{
    if (al >= MVCC__REV_BYTES + 8 && bl >= MVCC__REV_BYTES + 8) {
        uint64_t x = mvcc__get_be64(a), y = mvcc__get_be64(b);
        if (x != y)
            return x < y ? -1 : 1;
    }
    size_t ul = al - MVCC__REV_BYTES, vl = bl - MVCC__REV_BYTES;
    int c = mvcc__key_cmp(a, ul, b, vl);
    if (c != 0)
        return c;
    uint64_t x = mvcc__get_be64(a + ul), y = mvcc__get_be64(b + vl);
    if (x == y) {
        x = mvcc__get_be64(a + ul + 8);
        y = mvcc__get_be64(b + vl + 8);
    }
    return x < y ? -1 : (x > y);
}

struct t_page {
    const uint8_t *p;
    size_t psize;
    unsigned n; /* nodes */
};

/* Node i's offset in the page if its header fits there, else 0. */
static inline size_t t_node(const struct t_page *pg, unsigned i)
{
    size_t off = t_u16(pg->p + T_HDR + 2 * (size_t)i);
    return off >= T_HDR && off + T_NODE <= pg->psize ? off : 0;
}

/* Node i's key into *key, *klen; its offset in the page, 0 if it does not
 * fit in the page. */
static inline size_t t_key(const struct t_page *pg, unsigned i,
                           const uint8_t **key, size_t *klen)
{
    size_t off = t_node(pg, i);
    if (off == 0)
        return 0;
    size_t ks = t_u16(pg->p + off + 6);
    if (ks < MVCC__REV_BYTES || off + T_NODE + ks > pg->psize)
        return 0;
    *key = pg->p + off + T_NODE;
    *klen = ks;
    return off;
}

/* A branch node's child page number. */
static inline uint64_t t_child(const uint8_t *nd)
{
    return t_u16(nd) | (uint64_t)t_u16(nd + 2) << 16 |
           (uint64_t)t_u16(nd + 4) << 32;
}

/* The number of nodes in [lo, n) whose key is below s (they come first),
 * or -1 if a node is malformed. In a branch page, asks for the first line
 * of the child of each node compared (the search ends next to one of
 * them). */
static int t_below(const struct t_page *pg, unsigned lo, const uint8_t *s,
                   size_t sl, const struct mvcc__pf *map, bool branch)
{
    unsigned hi = pg->n;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        const uint8_t *k;
        size_t kl, off = t_key(pg, mid, &k, &kl);
        if (off == 0)
            return -1;
        if (branch) {
            uint64_t coff = t_child(pg->p + off) * pg->psize;
            if (coff < map->len)
                __builtin_prefetch((const void *)(map->lo + coff));
        }
        if (t_cmp(k, kl, s, sl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (int)lo;
}

/* Enters page pgno: checks it, then asks for every line holding nodes. */
static bool t_enter(const struct mvcc__pf *map, uint64_t pgno,
                    struct t_page *pg, uint16_t *flags)
{
    pg->psize = map->page_mask + 1;
    if (pgno >= map->len / pg->psize)
        return false;
    pg->p = (const uint8_t *)(map->lo + (uintptr_t)(pgno * pg->psize));
    uint16_t lower = t_u16(pg->p + T_LOWER), upper = t_u16(pg->p + T_UPPER);
    *flags = t_u16(pg->p + T_FLAGS) & T_P_KINDS;
    if (lower <= T_HDR || upper < lower || upper > pg->psize)
        return false; /* no nodes, or not a page */
    pg->n = (lower - T_HDR) / 2;
    for (size_t off = upper & ~(size_t)63; off < pg->psize; off += 64)
        __builtin_prefetch(pg->p + off);
    return true;
}

int mvcc__tree_get(const struct mvcc_store *s, uint64_t root,
                   const uint8_t *key, size_t key_len, mvcc_rev at,
                   bool want_tomb, struct mvcc__rec *r)
{
    const struct mvcc__pf *map = &s->pf;
    if (map->len == 0 || key_len > MVCC__SHORT_MAX || at < 0)
        return MVCC__TREE_FALLBACK;
    if (root == T_INVALID_PGNO)
        return CAIRN_ENOTFOUND; /* an empty tree */
    uint8_t sk[MVCC__SHORT_MAX + MVCC__REV_BYTES];
    if (key_len)
        memcpy(sk, key, key_len);
    mvcc__put_be64(sk + key_len, (uint64_t)at + 1);
    mvcc__put_be64(sk + key_len + 8, 0);
    size_t sl = key_len + MVCC__REV_BYTES;
    uint64_t pgno = root;
    for (int depth = 0; depth < T_DEPTH_MAX; depth++) {
        struct t_page pg;
        uint16_t flags;
        if (!t_enter(map, pgno, &pg, &flags))
            return MVCC__TREE_FALLBACK;
        if (flags == T_P_BRANCH) {
            /* The child is the last node below the seek key; node 0's
             * key is empty and stands for everything below node 1's. */
            int i = t_below(&pg, 1, sk, sl, map, true);
            size_t off = i >= 1 ? t_node(&pg, (unsigned)i - 1) : 0;
            if (off == 0)
                return MVCC__TREE_FALLBACK;
            pgno = t_child(pg.p + off);
            continue;
        }
        if (flags != T_P_LEAF)
            return MVCC__TREE_FALLBACK;
        /* Every key of this leaf's right neighbours is above the seek key,
         * so the record wanted is the leaf's last one below it; if the
         * leaf has none, it is in a leaf to the left (a separator left
         * behind by a deletion): LMDB's cursor finds it. */
        int i = t_below(&pg, 0, sk, sl, map, false);
        if (i < 1)
            return MVCC__TREE_FALLBACK;
        const uint8_t *k;
        size_t kl, off = t_key(&pg, (unsigned)i - 1, &k, &kl);
        if (off == 0)
            return MVCC__TREE_FALLBACK;
        const uint8_t *nd = pg.p + off;
        uint16_t nflags = t_u16(nd + 4);
        size_t dsize = t_u16(nd) | (size_t)t_u16(nd + 2) << 16;
        if ((nflags & (T_F_BIGDATA | T_F_SUBDATA | T_F_DUPDATA)) != 0 ||
            dsize > pg.psize - (off + T_NODE + kl))
            return MVCC__TREE_FALLBACK; /* a value on overflow pages */
        MDB_val mk = {kl, (void *)k}, mv = {dsize, (void *)(k + kl)};
        if (!mvcc__rec_decode(&mk, &mv, r))
            return CAIRN_ECORRUPT;
        if (r->ekey_len != key_len ||
            (key_len && memcmp(r->ekey, key, key_len) != 0) || r->main > at ||
            (r->tomb && !want_tomb))
            return CAIRN_ENOTFOUND;
        return 0;
    }
    return MVCC__TREE_FALLBACK;
}
