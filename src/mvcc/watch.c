/* Watchers: a hub owned by one thread pulls committed events from the
 * store's revision log and hands them to its watchers, so writers never
 * wait for watchers and a slow watcher costs no memory while it waits
 * (it catches up from the store when resumed). */
#include <string.h>

#include "mvcc/mvcc_int.h"

struct watcher {
    int64_t id;
    uint8_t *key;
    size_t key_len;
    uint8_t *end;
    size_t end_len;
    mvcc_rev next_rev; /* the first revision not yet delivered */
    bool prev_kv, no_put, no_delete, fragment;
    bool paused;
    bool sel; /* taking part in the current scan */
    /* Range watchers: a node of the hub's interval treap, ordered by
     * (key, id), each node knowing the greatest range end below it. */
    struct watcher *tl, *tr;
    uint64_t prio;
    const uint8_t *max_end; /* NULL: unbounded ("\0" end) */
    size_t max_end_len;
    /* Events gathered during one poll (arena memory). */
    struct mvcc_event *evs;
    size_t n, cap;
};

struct mvcc_watch_hub {
    struct mvcc_store *s;
    struct mvcc_watch_hub_options o;
    mvcc_watch_cb cb;
    void *arg;
    struct watcher **w; /* all watchers */
    size_t n, cap;
    /* The index events are matched through: single-key watchers sorted by
     * key (found by binary search), range watchers in a treap of
     * intervals (found in O(log n) per match). cand holds one event's
     * matches. Both arrays have room for cap. */
    struct watcher **pt, **cand;
    size_t npt;
    struct watcher *rg;
    struct prng rng; /* treap priorities */
    int64_t next_id;
    struct mvcc_arena arena;
};

/* First position in pt whose key is >= key. */
static size_t pt_lower(const struct mvcc_watch_hub *h, const uint8_t *key,
                       size_t key_len)
{
    size_t lo = 0, hi = h->npt;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mvcc__key_cmp(h->pt[mid]->key, h->pt[mid]->key_len, key, key_len) <
            0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- the interval treap of range watchers ---- */

static bool end_unbounded(const struct watcher *w)
{
    return w->end_len == 1 && w->end[0] == 0;
}

/* Order of range ends, NULL being the unbounded one. */
static int end_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    if (a == NULL || b == NULL)
        return (a == NULL) - (b == NULL);
    return mvcc__key_cmp(a, al, b, bl);
}

static void rg_fix(struct watcher *w)
{
    w->max_end = end_unbounded(w) ? NULL : w->end;
    w->max_end_len = w->end_len;
    struct watcher *kids[2] = {w->tl, w->tr};
    for (int i = 0; i < 2; i++)
        if (kids[i] != NULL && end_cmp(kids[i]->max_end, kids[i]->max_end_len,
                                       w->max_end, w->max_end_len) > 0) {
            w->max_end = kids[i]->max_end;
            w->max_end_len = kids[i]->max_end_len;
        }
}

static int rg_order(const struct watcher *a, const struct watcher *b)
{
    int c = mvcc__key_cmp(a->key, a->key_len, b->key, b->key_len);
    return c != 0 ? c : (a->id < b->id ? -1 : (a->id > b->id));
}

static struct watcher *rot_right(struct watcher *w)
{
    struct watcher *l = w->tl;
    w->tl = l->tr;
    l->tr = w;
    rg_fix(w);
    rg_fix(l);
    return l;
}

static struct watcher *rot_left(struct watcher *w)
{
    struct watcher *r = w->tr;
    w->tr = r->tl;
    r->tl = w;
    rg_fix(w);
    rg_fix(r);
    return r;
}

/* Recursion depth is the treap's height: O(log n) expected. */
static struct watcher *rg_insert(struct watcher *t, struct watcher *w)
{
    if (t == NULL) {
        w->tl = w->tr = NULL;
        rg_fix(w);
        return w;
    }
    if (rg_order(w, t) < 0) {
        t->tl = rg_insert(t->tl, w);
        if (t->tl->prio > t->prio)
            return rot_right(t);
    } else {
        t->tr = rg_insert(t->tr, w);
        if (t->tr->prio > t->prio)
            return rot_left(t);
    }
    rg_fix(t);
    return t;
}

static struct watcher *rg_remove(struct watcher *t, struct watcher *w)
{
    CAIRN_ASSERT(t != NULL);
    if (t == w) {
        if (t->tl == NULL)
            return t->tr;
        if (t->tr == NULL)
            return t->tl;
        if (t->tl->prio > t->tr->prio) {
            t = rot_right(t);
            t->tr = rg_remove(t->tr, w);
        } else {
            t = rot_left(t);
            t->tl = rg_remove(t->tl, w);
        }
    } else if (rg_order(w, t) < 0) {
        t->tl = rg_remove(t->tl, w);
    } else {
        t->tr = rg_remove(t->tr, w);
    }
    rg_fix(t);
    return t;
}

/* Adds to h->cand the range watchers selected for an event of key at main
 * whose range holds key: subtrees whose ends all lie at or below key are
 * skipped, and so are right subtrees of a node starting after key. */
static void rg_stab(struct mvcc_watch_hub *h, struct watcher *t,
                    const uint8_t *key, size_t key_len, mvcc_rev main,
                    size_t *nc)
{
    while (t != NULL && end_cmp(t->max_end, t->max_end_len, key, key_len) > 0) {
        rg_stab(h, t->tl, key, key_len, main, nc);
        if (mvcc__key_cmp(t->key, t->key_len, key, key_len) > 0)
            return;
        struct watcher *w = t;
        if (w->sel && w->next_rev <= main &&
            mvcc__in_range(w->key, w->key_len, w->end, w->end_len, key,
                           key_len))
            h->cand[(*nc)++] = w;
        t = t->tr;
    }
}

static void index_add(struct mvcc_watch_hub *h, struct watcher *w)
{
    if (w->end_len != 0) {
        w->prio = prng_next(&h->rng);
        h->rg = rg_insert(h->rg, w);
        return;
    }
    size_t p = pt_lower(h, w->key, w->key_len);
    memmove(&h->pt[p + 1], &h->pt[p], (h->npt - p) * sizeof(*h->pt));
    h->pt[p] = w;
    h->npt++;
}

static void index_del(struct mvcc_watch_hub *h, struct watcher *w)
{
    if (w->end_len != 0) {
        h->rg = rg_remove(h->rg, w);
        return;
    }
    for (size_t p = pt_lower(h, w->key, w->key_len); p < h->npt; p++)
        if (h->pt[p] == w) {
            memmove(&h->pt[p], &h->pt[p + 1],
                    (h->npt - p - 1) * sizeof(*h->pt));
            h->npt--;
            return;
        }
    CAIRN_UNREACHABLE();
}

int mvcc_watch_hub_init(struct mvcc_store *s,
                        const struct mvcc_watch_hub_options *opts, void *arg,
                        mvcc_watch_cb cb, struct mvcc_watch_hub **out)
{
    struct mvcc_watch_hub *h = cairn_calloc(1, sizeof(*h));
    if (h == NULL)
        return CAIRN_ENOMEM;
    h->s = s;
    if (opts != NULL)
        h->o = *opts;
    if (h->o.max_revs_per_poll == 0)
        h->o.max_revs_per_poll = 1000;
    if (h->o.fragment_bytes == 0)
        h->o.fragment_bytes = 1536 * 1024;
    if (h->o.max_watchers == 0)
        h->o.max_watchers = 100000;
    h->cb = cb;
    h->arg = arg;
    prng_seed(&h->rng, 0x7265617001);
    mvcc_arena_init(&h->arena);
    *out = h;
    return 0;
}

static void watcher_free(struct watcher *w)
{
    cairn_free(w->key);
    cairn_free(w->end);
    cairn_free(w->evs);
    cairn_free(w);
}

void mvcc_watch_hub_close(struct mvcc_watch_hub *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n; i++)
        watcher_free(h->w[i]);
    cairn_free(h->w);
    cairn_free(h->pt);
    cairn_free(h->cand);
    mvcc_arena_free(&h->arena);
    cairn_free(h);
}

static struct watcher *find(struct mvcc_watch_hub *h, int64_t id, size_t *pos)
{
    for (size_t i = 0; i < h->n; i++)
        if (h->w[i]->id == id) {
            if (pos != NULL)
                *pos = i;
            return h->w[i];
        }
    return NULL;
}

/* A private copy of len bytes that is never NULL when memory is there, also
 * for an empty key or range end (whose pointer may be NULL). */
static uint8_t *bytes_copy(const uint8_t *p, size_t len)
{
    uint8_t *c = cairn_malloc(len ? len : 1);
    if (c != NULL && len > 0)
        memcpy(c, p, len);
    return c;
}

int mvcc_watch_create(struct mvcc_watch_hub *h, const struct mvcc_watch_req *r,
                      int64_t *id)
{
    if (h->n >= h->o.max_watchers)
        return CAIRN_EFULL;
    if (*id >= 0 && find(h, *id, NULL) != NULL)
        return CAIRN_EEXISTS;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        struct watcher ***arrs[] = {&h->w, &h->pt, &h->cand};
        for (size_t i = 0; i < 3; i++) {
            struct watcher **nw = cairn_realloc(*arrs[i], cap * sizeof(*nw));
            if (nw == NULL)
                return CAIRN_ENOMEM; /* the grown ones stay grown: harmless */
            *arrs[i] = nw;
        }
        h->cap = cap;
    }
    struct watcher *w = cairn_calloc(1, sizeof(*w));
    if (w == NULL)
        return CAIRN_ENOMEM;
    w->key = bytes_copy(r->key, r->key_len);
    w->end = bytes_copy(r->end, r->end_len);
    if (w->key == NULL || w->end == NULL) {
        watcher_free(w);
        return CAIRN_ENOMEM;
    }
    w->key_len = r->key_len;
    w->end_len = r->end_len;
    w->prev_kv = r->prev_kv;
    w->no_put = r->no_put;
    w->no_delete = r->no_delete;
    w->fragment = r->fragment;
    w->next_rev =
        r->start_rev > 0 ? r->start_rev : atomic_load(&h->s->committed_rev) + 1;
    if (*id < 0) {
        while (find(h, h->next_id, NULL) != NULL)
            h->next_id++;
        *id = h->next_id++;
    }
    w->id = *id;
    h->w[h->n++] = w;
    index_add(h, w);
    return 0;
}

int mvcc_watch_cancel(struct mvcc_watch_hub *h, int64_t id)
{
    size_t pos;
    struct watcher *w = find(h, id, &pos);
    if (w == NULL)
        return CAIRN_ENOTFOUND;
    index_del(h, w);
    watcher_free(w);
    h->w[pos] = h->w[--h->n];
    return 0;
}

int mvcc_watch_resume(struct mvcc_watch_hub *h, int64_t id)
{
    struct watcher *w = find(h, id, NULL);
    if (w == NULL)
        return CAIRN_ENOTFOUND;
    w->paused = false;
    return 0;
}

int mvcc_watch_progress(struct mvcc_watch_hub *h, int64_t id)
{
    struct watcher *w = find(h, id, NULL);
    if (w == NULL)
        return CAIRN_ENOTFOUND;
    mvcc_rev cur = atomic_load(&h->s->committed_rev);
    if (w->paused || w->next_rev <= cur)
        return CAIRN_EAGAIN;
    struct mvcc_watch_resp resp = {.watch_id = id, .header_rev = cur};
    (void)h->cb(h->arg, &resp);
    return 0;
}

static int add_event(struct mvcc_watch_hub *h, struct watcher *w,
                     const struct mvcc_event *ev)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        struct mvcc_event *ne = cairn_realloc(w->evs, cap * sizeof(*ne));
        if (ne == NULL)
            return CAIRN_ENOMEM;
        w->evs = ne;
        w->cap = cap;
    }
    (void)h;
    w->evs[w->n++] = *ev;
    return 0;
}

/* Builds the event of record r, and its previous version if some watcher
 * wants it. */
static int make_event(struct mvcc_watch_hub *h, MDB_cursor *kvc,
                      const struct mvcc__rec *rp, bool want_prev,
                      struct mvcc_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    struct mvcc__rec r = *rp;
    mvcc_rev main = r.main;
    int rc;
    ev->is_delete = r.tomb;
    if ((rc = mvcc__kv_copy(&h->arena, &r, false, &ev->kv)) != 0)
        return rc;
    if (r.tomb) {
        /* etcd's delete event: the key and the deletion's revision. */
        ev->kv.create_rev = 0;
        ev->kv.version = 0;
        ev->kv.lease = 0;
    }
    if (want_prev && main > 1) {
        struct mvcc__rec p;
        rc = mvcc__get_e(kvc, r.ekey, r.ekey_len, main - 1, false, &p);
        if (rc == 0) {
            ev->prev_kv = mvcc_arena_alloc(&h->arena, sizeof(*ev->prev_kv));
            if (ev->prev_kv == NULL)
                return CAIRN_ENOMEM;
            if ((rc = mvcc__kv_copy(&h->arena, &p, false, ev->prev_kv)) != 0)
                return rc;
        } else if (rc != CAIRN_ENOTFOUND) {
            return rc;
        }
    }
    return 0;
}

/* The record a revision-log entry names. */
static int event_rec(struct mvcc_watch_hub *h, MDB_txn *t, const uint8_t *ekey,
                     size_t ekey_len, mvcc_rev main, int64_t sub,
                     struct mvcc__rec *r)
{
    int rc = mvcc__get_exact(h->s, t, ekey, ekey_len, main, sub, r);
    return rc == CAIRN_ENOTFOUND ? CAIRN_ECORRUPT : rc;
}

static size_t event_size(const struct mvcc_event *e)
{
    size_t n = 48 + e->kv.key_len + e->kv.value_len;
    if (e->prev_kv != NULL)
        n += 48 + e->prev_kv->key_len + e->prev_kv->value_len;
    return n;
}

/* Delivers w's gathered events as one response (or fragments). Returns
 * whether the consumer took them. */
static bool deliver(struct mvcc_watch_hub *h, struct watcher *w, mvcc_rev hi)
{
    struct mvcc_watch_resp resp = {.watch_id = w->id, .header_rev = hi};
    if (!w->fragment) {
        resp.events = w->evs;
        resp.n_events = w->n;
        if (h->cb(h->arg, &resp) == CAIRN_EAGAIN)
            return false;
#ifdef CAIRN_FAULTS
        if (h->o.fault_deliver_twice && w->n > 0 &&
            w->evs[0].kv.mod_rev % 5 == 0)
            (void)h->cb(h->arg, &resp);
#endif
        return true;
    }
    size_t start = 0;
    bool first = true;
    while (start < w->n) {
        size_t end = start, bytes = 0;
        while (end < w->n) {
            size_t es = event_size(&w->evs[end]);
            if (end > start && bytes + es > h->o.fragment_bytes)
                break;
            bytes += es;
            end++;
        }
        resp.events = w->evs + start;
        resp.n_events = end - start;
        resp.fragment = end < w->n;
        int rc = h->cb(h->arg, &resp);
        /* Once the first fragment is taken the rest must follow: a consumer
         * may refuse only a response's first fragment. */
        if (first && rc == CAIRN_EAGAIN)
            return false;
        first = false;
        start = end;
    }
    return true;
}

/* One pass over the revision log for the selected watchers (w->sel):
 * from the smallest next revision among them, at most max_revs_per_poll
 * revisions, never past cur. */
static int scan(struct mvcc_watch_hub *h, struct mvcc__rd *rd, mvcc_rev cur)
{
    mvcc_rev lo = 0;
    for (size_t i = 0; i < h->n; i++) {
        struct watcher *w = h->w[i];
        w->n = 0;
        if (w->sel && (lo == 0 || w->next_rev < lo))
            lo = w->next_rev;
    }
    if (lo == 0)
        return 0;
    mvcc_rev hi = lo + (mvcc_rev)h->o.max_revs_per_poll - 1;
    if (hi > cur)
        hi = cur;
    MDB_cursor *c;
    int rc = mvcc__err(mdb_cursor_open(rd->t, h->s->rev, &c));
    if (rc != 0)
        return rc;
    uint8_t rk[16];
    mvcc__put_be64(rk, (uint64_t)lo);
    mvcc__put_be64(rk + 8, 0);
    MDB_val k = {16, rk}, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    /* Bounded by the revisions in [lo, hi]. */
    while (mrc == 0 && rc == 0) {
        if (k.mv_size != 16) {
            rc = CAIRN_ECORRUPT;
            break;
        }
        mvcc_rev main = (mvcc_rev)mvcc__get_be64(k.mv_data);
        int64_t sub = (int64_t)mvcc__get_be64((const uint8_t *)k.mv_data + 8);
        if (main > hi)
            break;
        /* The revision log holds the ekey: a long key's full bytes come
         * from its record, read before matching. */
        struct mvcc__rec rec;
        bool have_rec = false;
        const uint8_t *key = v.mv_data;
        size_t key_len = v.mv_size;
        if (mvcc__ekey_is_long(key_len)) {
            if ((rc = event_rec(h, rd->t, key, key_len, main, sub, &rec)) != 0)
                break;
            have_rec = true;
            key = rec.key;
            key_len = rec.key_len;
        }
        /* The watchers this change concerns. */
        size_t nc = 0;
        bool built = false, want_prev = false;
        for (size_t i = pt_lower(h, key, key_len);
             i < h->npt &&
             mvcc__key_cmp(h->pt[i]->key, h->pt[i]->key_len, key, key_len) == 0;
             i++)
            if (h->pt[i]->sel && h->pt[i]->next_rev <= main)
                h->cand[nc++] = h->pt[i];
        rg_stab(h, h->rg, key, key_len, main, &nc);
        for (size_t i = 0; i < nc; i++)
            want_prev |= h->cand[i]->prev_kv;
        struct mvcc_event ev;
        for (size_t i = 0; i < nc && rc == 0; i++) {
            struct watcher *w = h->cand[i];
            if (!built) {
                if (!have_rec && (rc = event_rec(h, rd->t, v.mv_data, v.mv_size,
                                                 main, sub, &rec)) != 0)
                    break;
                have_rec = true;
                if ((rc = make_event(h, rd->kv, &rec, want_prev, &ev)) != 0)
                    break;
                built = true;
            }
            if ((ev.is_delete && w->no_delete) || (!ev.is_delete && w->no_put))
                continue;
            struct mvcc_event e = ev;
            if (!w->prev_kv)
                e.prev_kv = NULL;
            rc = add_event(h, w, &e);
        }
        if (rc == 0)
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND)
        rc = mvcc__err(mrc);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < h->n; i++) {
        struct watcher *w = h->w[i];
        if (!w->sel || w->next_rev > hi)
            continue;
        if (w->n > 0 && !deliver(h, w, hi)) {
            w->paused = true;
            continue;
        }
        w->next_rev = hi + 1;
    }
    return 0;
}

/* Whether some active watcher has committed revisions to read. A watcher
 * past the committed revision is past the compaction too (which never
 * passes it), so it needs neither events nor a cancel. */
static bool any_behind(const struct mvcc_watch_hub *h)
{
    mvcc_rev cur = atomic_load(&h->s->committed_rev);
    for (size_t i = 0; i < h->n; i++)
        if (!h->w[i]->paused && h->w[i]->next_rev <= cur)
            return true;
    return false;
}

int mvcc_watch_hub_poll(struct mvcc_watch_hub *h, bool *more)
{
    *more = false;
    /* The member polls every hub after every commit: those with nothing
     * to deliver answer without a read transaction. */
    if (!any_behind(h))
        return 0;
    mvcc_arena_reset(&h->arena);
    struct mvcc__rd *rd;
    int rc = mvcc__read_begin(h->s, &rd);
    if (rc != 0)
        return rc;
    MDB_txn *t = rd->t;
    uint64_t cur_u, compact_u;
    if ((rc = mvcc__meta_get(h->s, t, "rev", &cur_u)) != 0 ||
        (rc = mvcc__meta_get(h->s, t, "compact", &compact_u)) != 0)
        goto out;
    mvcc_rev cur = (mvcc_rev)cur_u, compact = (mvcc_rev)compact_u;
    /* Compacted watchers are canceled with the compact revision (etcd:
     * minRev < compactRev). */
    for (size_t i = 0; i < h->n;) {
        struct watcher *w = h->w[i];
        if (!w->paused && w->next_rev < compact) {
            struct mvcc_watch_resp resp = {.watch_id = w->id,
                                           .header_rev = cur,
                                           .compact_rev = compact,
                                           .canceled = true};
            (void)h->cb(h->arg, &resp);
            index_del(h, w);
            watcher_free(w);
            h->w[i] = h->w[--h->n];
            continue;
        }
        i++;
    }
    /* Two groups, as etcd's synced and unsynced watchers: those within one
     * poll's reach of the current revision are served first and up to it,
     * so a watcher replaying a long history never delays the others. */
    mvcc_rev near = cur - (mvcc_rev)h->o.max_revs_per_poll + 1;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        for (size_t i = 0; i < h->n; i++) {
            struct watcher *w = h->w[i];
            bool behind = !w->paused && w->next_rev <= cur;
            w->sel = behind &&
                     (pass == 0 ? w->next_rev >= near : w->next_rev < near);
        }
        rc = scan(h, rd, cur);
    }
    for (size_t i = 0; i < h->n; i++)
        if (!h->w[i]->paused && h->w[i]->next_rev <= cur)
            *more = true;
out:
    mvcc__read_end(h->s, rd);
    return rc;
}
