/* The core's view of the log: the host's storage plus the unstable tail of
 * entries and the snapshot not yet durable (etcd's raftLog and unstable), and
 * the per-update arena that hands copies out. */
#include "raft/raft_int.h"

#include <string.h>

#define ARENA_BLOCK_MIN (64 * 1024)
#define ARENA_ALIGN 16

void raft__arena_init(struct arena *a)
{
    a->first = NULL;
    a->cur = NULL;
}

void raft__arena_reset(struct arena *a)
{
    for (struct arena_block *b = a->first; b != NULL; b = b->next)
        b->used = 0;
    a->cur = a->first;
}

void raft__arena_free(struct arena *a)
{
    struct arena_block *b = a->first;
    while (b != NULL) {
        struct arena_block *next = b->next;
        cairn_free(b);
        b = next;
    }
    a->first = a->cur = NULL;
}

static uint8_t *block_data(struct arena_block *b)
{
    return (uint8_t *)b + ((sizeof(*b) + ARENA_ALIGN - 1) & ~(size_t)15);
}

void *raft__arena_alloc(struct arena *a, size_t size)
{
    size = (size + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    /* Walk the kept blocks first; bounded by the number of blocks. */
    for (struct arena_block *b = a->cur; b != NULL; b = b->next) {
        if (b->cap - b->used >= size) {
            void *p = block_data(b) + b->used;
            b->used += size;
            a->cur = b;
            return p;
        }
    }
    size_t cap = size > ARENA_BLOCK_MIN ? size : ARENA_BLOCK_MIN;
    struct arena_block *b =
        cairn_malloc(((sizeof(*b) + ARENA_ALIGN - 1) & ~(size_t)15) + cap);
    if (b == NULL)
        return NULL;
    b->cap = cap;
    b->used = size;
    /* Append at the end so the order of reuse stays the order of need. */
    b->next = NULL;
    if (a->first == NULL) {
        a->first = b;
    } else {
        struct arena_block *last = a->cur != NULL ? a->cur : a->first;
        while (last->next != NULL)
            last = last->next;
        last->next = b;
    }
    a->cur = b;
    return block_data(b);
}

/* ---- unstable ---- */

static void free_snap(struct raft_snapshot *s)
{
    if (s != NULL) {
        cairn_free((void *)s->data);
        cairn_free(s);
    }
}

static struct raft_snapshot *copy_snap(const struct raft_snapshot *s)
{
    struct raft_snapshot *c = cairn_malloc(sizeof(*c));
    if (c == NULL)
        return NULL;
    *c = *s;
    c->data = NULL;
    if (s->len > 0) {
        c->data = cairn_memdup(s->data, s->len);
        if (c->data == NULL) {
            cairn_free(c);
            return NULL;
        }
    }
    return c;
}

static void storage_check(int rv)
{
    /* The storage contract allows only these (raft.h). */
    CAIRN_ASSERT(rv == 0 || rv == CAIRN_ECOMPACTED ||
                 rv == CAIRN_EUNAVAILABLE || rv == CAIRN_EAGAIN);
}

int raft__log_init(struct raft_log *l, const struct raft_storage *storage)
{
    memset(l, 0, sizeof(*l));
    l->storage = storage;
    raft_index first, last;
    int rv = storage->first_index(storage->ctx, &first);
    CAIRN_ASSERT(rv == 0);
    rv = storage->last_index(storage->ctx, &last);
    CAIRN_ASSERT(rv == 0);
    l->u.offset = last + 1;
    l->u.handed_out = last;
    l->committed = first - 1;
    l->applied = first - 1;
    return 0;
}

void raft__log_close(struct raft_log *l)
{
    raft__ev_free(&l->u.v);
    free_snap(l->u.snap);
    memset(&l->u, 0, sizeof(l->u));
}

raft_index raft__log_first_index(const struct raft_log *l)
{
    if (l->u.snap != NULL)
        return l->u.snap->meta.index + 1;
    raft_index i;
    int rv = l->storage->first_index(l->storage->ctx, &i);
    CAIRN_ASSERT(rv == 0);
    return i;
}

raft_index raft__log_last_index(const struct raft_log *l)
{
    if (l->u.v.n > 0)
        return l->u.offset + l->u.v.n - 1;
    if (l->u.snap != NULL)
        return l->u.snap->meta.index;
    raft_index i;
    int rv = l->storage->last_index(l->storage->ctx, &i);
    CAIRN_ASSERT(rv == 0);
    return i;
}

raft_index raft__log_durable_index(const struct raft_log *l)
{
    return l->u.offset - 1;
}

int raft__log_term(const struct raft_log *l, raft_index i, raft_term *t)
{
    const struct unstable *u = &l->u;
    if (i < u->offset) {
        if (u->snap != NULL) {
            if (i == u->snap->meta.index) {
                *t = u->snap->meta.term;
                return 0;
            }
            if (i < u->snap->meta.index)
                return CAIRN_ECOMPACTED;
            /* Between the snapshot and offset cannot be: offset stays
             * snap.index + 1 until the snapshot is installed (stable_to
             * defers). */
            CAIRN_ASSERT(u->offset == u->snap->meta.index + 1);
        }
        int rv = l->storage->term(l->storage->ctx, i, t);
        storage_check(rv);
        return rv;
    }
    if (i - u->offset >= u->v.n)
        return CAIRN_EUNAVAILABLE;
    *t = u->v.ents[i - u->offset].term;
    return 0;
}

raft_term raft__log_term_or_zero(const struct raft_log *l, raft_index i)
{
    raft_term t;
    return raft__log_term(l, i, &t) == 0 ? t : 0;
}

raft_term raft__log_last_term(const struct raft_log *l)
{
    raft_term t = 0;
    int rv = raft__log_term(l, raft__log_last_index(l), &t);
    CAIRN_ASSERT(rv == 0);
    return t;
}

bool raft__log_match_term(const struct raft_log *l, raft_index i, raft_term t)
{
    raft_term have;
    return raft__log_term(l, i, &have) == 0 && have == t;
}

bool raft__log_is_up_to_date(const struct raft_log *l, raft_index last,
                             raft_term term)
{
    raft_term lt = raft__log_last_term(l);
    return term > lt || (term == lt && last >= raft__log_last_index(l));
}

raft_index raft__log_find_conflict(const struct raft_log *l,
                                   const struct raft_entry *ents, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!raft__log_match_term(l, ents[i].index, ents[i].term))
            return ents[i].index;
    return 0;
}

raft_index raft__log_find_conflict_by_term(const struct raft_log *l,
                                           raft_index index, raft_term term,
                                           raft_term *found_term)
{
    raft_index last = raft__log_last_index(l);
    if (index > last) {
        /* Our log is shorter: the leader should probe from our end. */
        *found_term = 0;
        return index;
    }
    /* Bounded by the log's length. */
    for (;;) {
        raft_term t;
        if (raft__log_term(l, index, &t) != 0) {
            *found_term = 0;
            return index;
        }
        if (t <= term) {
            *found_term = t;
            return index;
        }
        index--;
    }
}

int raft__log_append(struct raft_log *l, const struct raft_entry *ents,
                     size_t n)
{
    if (n == 0)
        return 0;
    struct unstable *u = &l->u;
    raft_index after = ents[0].index;
    CAIRN_ASSERT(after <= raft__log_last_index(l) + 1);
    size_t keep = 0;
    if (after > u->offset) {
        keep = (size_t)(after - u->offset);
        CAIRN_ASSERT(keep <= u->v.n);
    }
    /* Replaces the unstable tail from `after` (when after <= offset, the
     * whole of it: the host truncates its storage when it persists
     * these). Running out of memory changes nothing. */
    int rv = raft__ev_replace_from(&u->v, keep, ents, n);
    if (rv != 0)
        return rv;
    if (keep == 0)
        u->offset = after;
    if (u->handed_out > after - 1)
        u->handed_out = after - 1;
    /* A persisted report for replaced entries no longer holds. */
    if (u->stable_pending > after - 1)
        u->stable_pending = after - 1;
    return 0;
}

int raft__log_maybe_append(struct raft_log *l, raft_index index,
                           raft_term log_term, raft_index committed,
                           const struct raft_entry *ents, size_t n,
                           raft_index *last_new, raft_index *written_from)
{
    *written_from = 0;
    bool skip_check = false;
#ifdef CAIRN_FAULTS
    skip_check = l->faults != NULL && l->faults->skip_append_conflict_check;
#endif
    if (!raft__log_match_term(l, index, log_term)) {
        if (!skip_check || index > raft__log_last_index(l))
            return 0;
    }
    raft_index lastnew = index + n;
    raft_index ci = raft__log_find_conflict(l, ents, n);
    if (ci != 0) {
        if (ci <= l->committed) {
            /* A committed entry never changes; under the fault switch the
             * entries at or below commit are skipped instead. */
            CAIRN_ASSERT(skip_check);
            ci = l->committed + 1;
        }
        if (ci <= lastnew) {
            size_t off = (size_t)(ci - (index + 1));
            int rv = raft__log_append(l, ents + off, n - off);
            if (rv != 0)
                return rv;
            *written_from = ci;
        }
    }
    raft_index c = committed < lastnew ? committed : lastnew;
    raft__log_commit_to(l, c);
    *last_new = lastnew;
    return 1;
}

void raft__log_commit_to(struct raft_log *l, raft_index i)
{
    if (i > l->committed) {
        CAIRN_ASSERT(i <= raft__log_last_index(l));
        l->committed = i;
    }
}

bool raft__log_maybe_commit(struct raft_log *l, raft_index max, raft_term term)
{
    if (max <= l->committed)
        return false;
    bool any_term = false;
#ifdef CAIRN_FAULTS
    any_term = l->faults != NULL && l->faults->commit_earlier_terms;
#endif
    /* §5.4.2: count replicas only for entries of the current term. */
    if (!any_term && raft__log_term_or_zero(l, max) != term)
        return false;
    raft__log_commit_to(l, max);
    return true;
}

int raft__log_slice(const struct raft_log *l, raft_index lo, raft_index hi,
                    uint64_t max_bytes, struct arena *a,
                    struct raft_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (lo >= hi)
        return 0;
    if (lo < raft__log_first_index(l))
        return CAIRN_ECOMPACTED;
    CAIRN_ASSERT(hi <= raft__log_last_index(l) + 1);
    const struct unstable *u = &l->u;
    const struct raft_entry *st = NULL;
    size_t n_st = 0;
    uint64_t bytes = 0;
    if (lo < u->offset) {
        raft_index shi = hi < u->offset ? hi : u->offset;
        int rv = l->storage->entries(l->storage->ctx, lo, shi, max_bytes, &st,
                                     &n_st);
        storage_check(rv);
        if (rv != 0)
            return rv;
        CAIRN_ASSERT(n_st > 0 && n_st <= shi - lo);
        for (size_t i = 0; i < n_st; i++)
            bytes += st[i].len;
        if (n_st < shi - lo)
            hi = lo + n_st; /* the byte limit stopped it */
    }
    size_t n_un = 0;
    raft_index ulo = lo > u->offset ? lo : u->offset;
    for (raft_index i = ulo; i < hi; i++) {
        const struct raft_entry *e = &u->v.ents[i - u->offset];
        if (n_st + n_un > 0 && bytes + e->len > max_bytes)
            break;
        bytes += e->len;
        n_un++;
    }
    size_t total = n_st + n_un;
    struct raft_entry *res = raft__arena_alloc(a, total * sizeof(*res));
    if (res == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < total; i++) {
        const struct raft_entry *e =
            i < n_st ? &st[i] : &u->v.ents[ulo - u->offset + (i - n_st)];
        res[i] = *e;
        if (e->len > 0) {
            uint8_t *d = raft__arena_alloc(a, e->len);
            if (d == NULL)
                return CAIRN_ENOMEM;
            memcpy(d, e->data, e->len);
            res[i].data = d;
        } else {
            res[i].data = NULL;
        }
    }
    *out = res;
    *n = total;
    return 0;
}

void raft__log_stable_to(struct raft_log *l, raft_index i, raft_term t)
{
    struct unstable *u = &l->u;
    if (i < u->offset || i - u->offset >= u->v.n)
        return;
    if (u->v.ents[i - u->offset].term != t)
        return; /* stale: that entry was replaced since */
    if (i > u->handed_out)
        return; /* the host cannot have persisted what it never got */
    if (u->snap != NULL) {
        /* The entries follow a snapshot the host has not installed yet.
         * Dropping them now would leave the log's end to the snapshot
         * (losing them: a shorter last index grants votes to candidates
         * lacking entries we acknowledged) or to storage, which may not
         * hold the snapshot yet. Keep them until it is installed. */
        if (i > u->stable_pending)
            u->stable_pending = i;
        return;
    }
    size_t drop = (size_t)(i - u->offset) + 1;
    raft__ev_remove_range(&u->v, 0, drop);
    u->offset = i + 1;
}

void raft__log_stable_snap_to(struct raft_log *l, raft_index i)
{
    struct unstable *u = &l->u;
    if (u->snap == NULL || u->snap->meta.index != i || !u->snap_handed_out)
        return;
    free_snap(u->snap);
    u->snap = NULL;
    if (l->applied < i)
        l->applied = i;
    /* Now storage holds the snapshot: the entries reported persisted in
     * the meantime (validated then, cut back on truncation) leave. */
    raft_index p = u->stable_pending;
    u->stable_pending = 0;
    if (p >= u->offset && p - u->offset < u->v.n) {
        size_t drop = (size_t)(p - u->offset) + 1;
        raft__ev_remove_range(&u->v, 0, drop);
        u->offset = p + 1;
    }
}

int raft__log_restore(struct raft_log *l, const struct raft_snapshot *snap)
{
    struct raft_snapshot *c = copy_snap(snap);
    if (c == NULL)
        return CAIRN_ENOMEM;
    struct unstable *u = &l->u;
    free_snap(u->snap);
    raft__ev_release(&u->v, 0, u->v.n);
    u->v.n = 0;
    u->snap = c;
    u->snap_handed_out = false;
    u->offset = snap->meta.index + 1;
    u->handed_out = snap->meta.index;
    u->stable_pending = 0;
    l->committed = snap->meta.index;
    return 0;
}

int raft__log_snapshot(const struct raft_log *l,
                       const struct raft_snapshot **out)
{
    if (l->u.snap != NULL) {
        *out = l->u.snap;
        return 0;
    }
    int rv = l->storage->snapshot(l->storage->ctx, out);
    storage_check(rv);
    return rv;
}
