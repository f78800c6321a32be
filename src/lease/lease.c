/* The lessor: leases in a hash table by id, with an expiry heap and a
 * checkpoint heap, guarded by one mutex; persisted in mvcc's ext table
 * (record layout in docs/lease.md). Every per-lease operation is O(1) or
 * O(log n): a fleet of leases expiring together is revoked in O(n log n). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lease/lease.h"

#define TABLE_LEASE 'L'
#define TABLE_META 'M'
#define FOREVER INT64_MAX
#define DEFAULT_CP_INTERVAL_MS (5 * 60 * 1000)
/* etcd's leaseRevokeRate: revocations per second the leader aims at. */
#define LEASE_REVOKE_RATE 1000
#define NO_POS SIZE_MAX
#define TABLE_MIN 16

struct lease {
    int64_t id;
    int64_t ttl_s;
    int64_t remaining_ttl_s; /* checkpointed; 0: none */
    int64_t expiry_ms;       /* FOREVER when not primary */
    int64_t next_cp_ms;      /* next checkpoint due (primary); FOREVER: none */
    size_t pos[2];           /* in the heaps (enum heap_kind); NO_POS: out */
};

/* Two binary min-heaps of leases, by (time, id) so that ties break the
 * same way on every member: the expiry heap holds every lease while the
 * lessor is primary, the checkpoint heap those with a checkpoint to come.
 * Each lease records its position, so a renew or a revoke moves it in
 * O(log n) and a tick looks only at the leases that are due. */
enum heap_kind { H_EXPIRY, H_CHECKPOINT };

struct heap {
    enum heap_kind kind;
    struct lease **v;
    size_t n;
};

struct lessor {
    struct mvcc_store *s;
    struct lease_options o;
    pthread_mutex_t mu;
    /* Open addressing by id (linear probing, at most half full); the heaps'
     * arrays have room for cap / 2 leases, so no insertion into a heap can
     * fail once a lease is in the table. */
    struct lease **tab;
    size_t n, cap;
    struct heap heaps[2];
    bool primary;
    int64_t next_auto_id;
    uint64_t steps; /* work done, for lease__work_steps */
};

/* ---- the id table ---- */

static size_t slot_of(const struct lessor *l, int64_t id)
{
    uint64_t x = (uint64_t)id;
    /* murmur3's finalizer: ids are often consecutive. */
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (size_t)x & (l->cap - 1);
}

static struct lease *find(struct lessor *l, int64_t id)
{
    if (l->cap == 0)
        return NULL;
    for (size_t i = slot_of(l, id);; i = (i + 1) & (l->cap - 1)) {
        l->steps++;
        if (l->tab[i] == NULL || l->tab[i]->id == id)
            return l->tab[i];
    }
}

static void table_put(struct lessor *l, struct lease *le)
{
    size_t i = slot_of(l, le->id);
    while (l->tab[i] != NULL) {
        l->steps++;
        i = (i + 1) & (l->cap - 1);
    }
    l->tab[i] = le;
}

/* Removes by shifting back the entries of the probe run that follows, so
 * that no tombstone lengthens later searches. */
static void table_del(struct lessor *l, const struct lease *le)
{
    size_t mask = l->cap - 1, i = slot_of(l, le->id);
    while (l->tab[i] != le)
        i = (i + 1) & mask;
    for (size_t j = (i + 1) & mask; l->tab[j] != NULL; j = (j + 1) & mask) {
        l->steps++;
        size_t home = slot_of(l, l->tab[j]->id);
        /* tab[j] may fill the hole at i unless its home lies in (i, j]. */
        bool stays = i < j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            l->tab[i] = l->tab[j];
            i = j;
        }
    }
    l->tab[i] = NULL;
}

/* Sizes the heaps' arrays for a table of cap slots: at most half full, it
 * holds at most cap / 2 leases. */
static int heaps_fit(struct lessor *l, size_t cap)
{
    for (int h = 0; h < 2; h++) {
        struct lease **v =
            cairn_realloc(l->heaps[h].v, cap / 2 * sizeof(*l->heaps[h].v));
        if (v == NULL)
            return CAIRN_ENOMEM;
        l->heaps[h].v = v;
    }
    return 0;
}

/* Rebuilds the table for cap slots (a power of two, at least 2n). On
 * failure the table is unchanged and every heap array still fits it. */
static int resize(struct lessor *l, size_t cap)
{
    bool grow = cap > l->cap;
    /* Growing, the heaps first (one grown alone is only larger); shrinking,
     * after the table (one left larger is harmless). */
    if (grow && heaps_fit(l, cap) != 0)
        return CAIRN_ENOMEM;
    struct lease **tab = cairn_calloc(cap, sizeof(*tab));
    if (tab == NULL)
        return CAIRN_ENOMEM;
    struct lease **old = l->tab;
    size_t old_cap = l->cap;
    l->tab = tab;
    l->cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i] != NULL)
            table_put(l, old[i]);
    l->steps += old_cap;
    cairn_free(old);
    if (!grow)
        (void)heaps_fit(l, cap);
    return 0;
}

/* Room for one more lease. */
static int reserve(struct lessor *l)
{
    if (2 * (l->n + 1) <= l->cap)
        return 0;
    return resize(l, l->cap ? 2 * l->cap : TABLE_MIN);
}

/* Gives memory back once most leases are gone (a fleet expired); a
 * failure only keeps the larger arrays. */
static void shrink(struct lessor *l)
{
    if (l->cap > TABLE_MIN && 8 * l->n < l->cap)
        (void)resize(l, l->cap / 2);
}

/* ---- the heaps ---- */

static int64_t heap_key(const struct heap *h, const struct lease *le)
{
    return h->kind == H_EXPIRY ? le->expiry_ms : le->next_cp_ms;
}

static bool heap_less(const struct heap *h, const struct lease *a,
                      const struct lease *b)
{
    int64_t x = heap_key(h, a), y = heap_key(h, b);
    return x < y || (x == y && a->id < b->id);
}

static void heap_set(struct heap *h, size_t i, struct lease *le)
{
    h->v[i] = le;
    le->pos[h->kind] = i;
}

static void sift_up(struct lessor *l, struct heap *h, size_t i)
{
    struct lease *le = h->v[i];
    while (i > 0 && heap_less(h, le, h->v[(i - 1) / 2])) {
        l->steps++;
        heap_set(h, i, h->v[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(h, i, le);
}

static void sift_down(struct lessor *l, struct heap *h, size_t i)
{
    struct lease *le = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        l->steps++;
        if (c + 1 < h->n && heap_less(h, h->v[c + 1], h->v[c]))
            c++;
        if (!heap_less(h, h->v[c], le))
            break;
        heap_set(h, i, h->v[c]);
        i = c;
    }
    heap_set(h, i, le);
}

/* Puts le in the heap, or moves it after its key changed. The arrays have
 * room for every lease in the table. */
static void heap_update(struct lessor *l, struct heap *h, struct lease *le)
{
    size_t i = le->pos[h->kind];
    if (i == NO_POS) {
        i = h->n++;
        heap_set(h, i, le);
    }
    sift_up(l, h, i);
    sift_down(l, h, le->pos[h->kind]);
}

static void heap_remove(struct lessor *l, struct heap *h, struct lease *le)
{
    size_t i = le->pos[h->kind];
    if (i == NO_POS)
        return;
    le->pos[h->kind] = NO_POS;
    struct lease *last = h->v[--h->n];
    if (last == le)
        return;
    heap_set(h, i, last);
    sift_up(l, h, i);
    sift_down(l, h, last->pos[h->kind]);
}

/* Empties both heaps and, when primary, fills them again from every
 * lease's times: O(n), for promote and demote. */
static void heaps_rebuild(struct lessor *l)
{
    struct heap *e = &l->heaps[H_EXPIRY], *c = &l->heaps[H_CHECKPOINT];
    e->n = c->n = 0;
    for (size_t i = 0; i < l->cap; i++) {
        struct lease *le = l->tab[i];
        if (le == NULL)
            continue;
        le->pos[H_EXPIRY] = le->pos[H_CHECKPOINT] = NO_POS;
        if (!l->primary)
            continue;
        heap_set(e, e->n++, le);
        if (le->next_cp_ms != FOREVER)
            heap_set(c, c->n++, le);
    }
    l->steps += l->cap;
    for (size_t i = e->n / 2; i-- > 0;)
        sift_down(l, e, i);
    for (size_t i = c->n / 2; i-- > 0;)
        sift_down(l, c, i);
}

/* The lease's checkpoint time changed: keep the checkpoint heap to the
 * leases that have one. */
static void cp_update(struct lessor *l, struct lease *le)
{
    struct heap *c = &l->heaps[H_CHECKPOINT];
    if (le->next_cp_ms == FOREVER)
        heap_remove(l, c, le);
    else
        heap_update(l, c, le);
}

/* A new lease (loaded or granted): in the table, and in the heaps when
 * primary. reserve() was called. */
static void insert(struct lessor *l, struct lease *le)
{
    le->pos[H_EXPIRY] = le->pos[H_CHECKPOINT] = NO_POS;
    table_put(l, le);
    l->n++;
    if (l->primary) {
        heap_update(l, &l->heaps[H_EXPIRY], le);
        cp_update(l, le);
    }
}

static void encode_id(uint8_t *b, int64_t id)
{
    /* Big-endian so the ext table lists leases in id order. */
    for (int i = 7; i >= 0; i--) {
        b[i] = (uint8_t)id;
        id = (int64_t)((uint64_t)id >> 8);
    }
}

static int persist(struct lessor *l, const struct lease *le)
{
    uint8_t k[8], v[16];
    encode_id(k, le->id);
    codec_put_u64(v, (uint64_t)le->ttl_s);
    codec_put_u64(v + 8, (uint64_t)le->remaining_ttl_s);
    return mvcc_ext_put(l->s, TABLE_LEASE, k, sizeof(k), v, sizeof(v));
}

static int load_cb(void *arg, const uint8_t *key, size_t key_len,
                   const uint8_t *val, size_t val_len)
{
    struct lessor *l = arg;
    if (key_len != 8 || val_len != 16)
        return CAIRN_ECORRUPT;
    int64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (int64_t)(((uint64_t)id << 8) | key[i]);
    if (find(l, id) != NULL)
        return CAIRN_ECORRUPT;
    int rc = reserve(l);
    if (rc != 0)
        return rc;
    struct lease *le = cairn_malloc(sizeof(*le));
    if (le == NULL)
        return CAIRN_ENOMEM;
    *le = (struct lease){.id = id,
                         .ttl_s = (int64_t)codec_get_u64(val),
                         .remaining_ttl_s = (int64_t)codec_get_u64(val + 8),
                         .expiry_ms = FOREVER,
                         .next_cp_ms = FOREVER};
    insert(l, le);
    return 0;
}

static int load_meta_cb(void *arg, const uint8_t *key, size_t key_len,
                        const uint8_t *val, size_t val_len)
{
    struct lessor *l = arg;
    if (key_len == 4 && memcmp(key, "next", 4) == 0 && val_len == 8)
        l->next_auto_id = (int64_t)codec_get_u64(val);
    return 0;
}

static bool hook_exists(void *arg, int64_t id)
{
    return lease_exists(arg, id);
}

int lease_open(struct mvcc_store *s, const struct lease_options *o,
               struct lessor **out)
{
    struct lessor *l = cairn_calloc(1, sizeof(*l));
    if (l == NULL)
        return CAIRN_ENOMEM;
    l->s = s;
    if (o != NULL)
        l->o = *o;
    if (l->o.checkpoint_interval_ms <= 0)
        l->o.checkpoint_interval_ms = DEFAULT_CP_INTERVAL_MS;
    l->next_auto_id = 1;
    l->heaps[H_EXPIRY].kind = H_EXPIRY;
    l->heaps[H_CHECKPOINT].kind = H_CHECKPOINT;
    pthread_mutex_init(&l->mu, NULL);
    int rc = mvcc_ext_scan(s, TABLE_LEASE, l, load_cb);
    if (rc == 0)
        rc = mvcc_ext_scan(s, TABLE_META, l, load_meta_cb);
    if (rc != 0) {
        lease_close(l);
        return rc;
    }
    struct mvcc_lease_hooks h = {hook_exists, l};
    mvcc_set_lease_hooks(s, &h);
    *out = l;
    return 0;
}

void lease_close(struct lessor *l)
{
    if (l == NULL)
        return;
    struct mvcc_lease_hooks none = {NULL, NULL};
    mvcc_set_lease_hooks(l->s, &none);
    pthread_mutex_destroy(&l->mu);
    for (size_t i = 0; i < l->cap; i++)
        cairn_free(l->tab[i]);
    cairn_free(l->tab);
    cairn_free(l->heaps[H_EXPIRY].v);
    cairn_free(l->heaps[H_CHECKPOINT].v);
    cairn_free(l);
}

bool lease_exists(struct lessor *l, int64_t id)
{
    pthread_mutex_lock(&l->mu);
    bool ok = find(l, id) != NULL;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

static int64_t remaining_or_ttl(const struct lease *le)
{
    return le->remaining_ttl_s > 0 ? le->remaining_ttl_s : le->ttl_s;
}

static int64_t add_ms(int64_t now_ms, int64_t s, int64_t extra_ms)
{
    /* TTLs up to LEASE_TTL_MAX seconds: keep the sum from overflowing. */
    if (s > (FOREVER - now_ms - extra_ms) / 1000 - 1)
        return FOREVER - 1;
    return now_ms + s * 1000 + extra_ms;
}

static void refresh(struct lessor *l, struct lease *le, int64_t now_ms,
                    int64_t extend_ms)
{
    le->expiry_ms = add_ms(now_ms, remaining_or_ttl(le), extend_ms);
    le->next_cp_ms = remaining_or_ttl(le) * 1000 > l->o.checkpoint_interval_ms
                         ? now_ms + l->o.checkpoint_interval_ms
                         : FOREVER;
}

int lease_grant(struct lessor *l, int64_t id, int64_t ttl_s, int64_t now_ms,
                int64_t *granted_id, int64_t *granted_ttl_s)
{
    if (ttl_s > LEASE_TTL_MAX)
        return CAIRN_ELEASETTLTOOLARGE;
    if (mvcc_alarm_active(l->s))
        return CAIRN_EQUOTA;
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    bool auto_id = id == 0;
    if (auto_id) {
        /* Bounded: at most n ids are taken. */
        id = l->next_auto_id > 0 ? l->next_auto_id : 1;
        for (size_t i = 0; i <= l->n && find(l, id) != NULL; i++)
            id++;
    } else if (id < 0) {
        rc = CAIRN_ELEASENOTFOUND;
        goto out;
    }
    if (find(l, id) != NULL) {
        rc = CAIRN_ELEASEEXISTS;
        goto out;
    }
    /* Memory first: once persisted, the lease must go in the table. */
    struct lease *le = NULL;
    if ((rc = reserve(l)) != 0 || (le = cairn_malloc(sizeof(*le))) == NULL) {
        rc = rc ? rc : CAIRN_ENOMEM;
        goto out;
    }
    *le =
        (struct lease){.id = id,
                       .ttl_s = ttl_s < l->o.min_ttl_s ? l->o.min_ttl_s : ttl_s,
                       .expiry_ms = FOREVER,
                       .next_cp_ms = FOREVER};
    if (l->primary)
        refresh(l, le, now_ms, 0);
    if ((rc = persist(l, le)) != 0) {
        cairn_free(le);
        goto out;
    }
    if (auto_id) {
        uint8_t v[8];
        codec_put_u64(v, (uint64_t)(id + 1));
        if ((rc = mvcc_ext_put(l->s, TABLE_META, "next", 4, v, 8)) != 0) {
            cairn_free(le);
            goto out;
        }
    }
    insert(l, le);
    if (auto_id)
        l->next_auto_id = id + 1;
    *granted_id = id;
    *granted_ttl_s = le->ttl_s;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

int lease_revoke(struct lessor *l, int64_t id)
{
    if (!lease_exists(l, id))
        return CAIRN_ELEASENOTFOUND;
    /* The keys first (one revision, key order), then the lease record, in
     * the same batch transaction. */
    int64_t deleted;
    int rc = mvcc_lease_revoke_keys(l->s, id, &deleted);
    if (rc != 0)
        return rc;
    uint8_t k[8];
    encode_id(k, id);
    rc = mvcc_ext_del(l->s, TABLE_LEASE, k, sizeof(k));
    if (rc != 0 && rc != CAIRN_ENOTFOUND)
        return rc; /* mvcc failed the batch */
    pthread_mutex_lock(&l->mu);
    struct lease *le = find(l, id);
    if (le != NULL) {
        heap_remove(l, &l->heaps[H_EXPIRY], le);
        heap_remove(l, &l->heaps[H_CHECKPOINT], le);
        table_del(l, le);
        l->n--;
        cairn_free(le);
        shrink(l);
    }
    pthread_mutex_unlock(&l->mu);
    return 0;
}

int lease_checkpoint(struct lessor *l, int64_t id, int64_t remaining_ttl_s)
{
    pthread_mutex_lock(&l->mu);
    struct lease *le = find(l, id);
    int rc = 0;
    if (le != NULL) {
        le->remaining_ttl_s = remaining_ttl_s;
        rc = persist(l, le);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int by_expiry(const void *a, const void *b)
{
    const struct lease *x = *(const struct lease *const *)a;
    const struct lease *y = *(const struct lease *const *)b;
    if (x->expiry_ms != y->expiry_ms)
        return x->expiry_ms < y->expiry_ms ? -1 : 1;
    return x->id < y->id ? -1 : (x->id > y->id);
}

/* etcd's Promote: when enough leases exist that many could expire in the
 * same second, push later the expiries beyond 3/4 of the revoke rate per
 * one-second window, so a new leader does not revoke a flood at once. */
static void spread_expiries(struct lessor *l, int64_t now_ms, int64_t extend_ms)
{
    if (l->n < LEASE_REVOKE_RATE)
        return;
    struct lease **v = cairn_malloc(l->n * sizeof(*v));
    if (v == NULL)
        return; /* spreading is an optimisation; expiries stay correct */
    size_t k = 0;
    for (size_t i = 0; i < l->cap; i++)
        if (l->tab[i] != NULL)
            v[k++] = l->tab[i];
    qsort(v, l->n, sizeof(*v), by_expiry);
    const int64_t target = (3 * LEASE_REVOKE_RATE) / 4;
    int64_t base = v[0]->expiry_ms - now_ms;
    int64_t next = base + 1000;
    int64_t expires = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct lease *le = v[i];
        int64_t remaining = le->expiry_ms - now_ms;
        if (remaining > next) {
            base = remaining;
            next = base + 1000;
            expires = 1;
            continue;
        }
        expires++;
        if (expires <= target)
            continue;
        double delay_ms = 1000.0 * (double)expires / (double)target -
                          (double)(remaining - base);
        int64_t delay = (int64_t)delay_ms;
        next = base + delay;
        refresh(l, le, now_ms, delay + extend_ms);
    }
    cairn_free(v);
}

void lease_promote(struct lessor *l, int64_t now_ms, int64_t extend_ms)
{
    pthread_mutex_lock(&l->mu);
    l->primary = true;
    for (size_t i = 0; i < l->cap; i++)
        if (l->tab[i] != NULL)
            refresh(l, l->tab[i], now_ms, extend_ms);
    spread_expiries(l, now_ms, extend_ms);
    heaps_rebuild(l);
    pthread_mutex_unlock(&l->mu);
}

void lease_demote(struct lessor *l)
{
    pthread_mutex_lock(&l->mu);
    l->primary = false;
    for (size_t i = 0; i < l->cap; i++)
        if (l->tab[i] != NULL)
            l->tab[i]->expiry_ms = l->tab[i]->next_cp_ms = FOREVER;
    heaps_rebuild(l);
    pthread_mutex_unlock(&l->mu);
}

bool lease_is_primary(struct lessor *l)
{
    pthread_mutex_lock(&l->mu);
    bool p = l->primary;
    pthread_mutex_unlock(&l->mu);
    return p;
}

int lease_renew(struct lessor *l, int64_t id, int64_t now_ms, int64_t *ttl_s,
                bool *clear_checkpoint)
{
    pthread_mutex_lock(&l->mu);
    int rc = 0;
    struct lease *le = find(l, id);
    if (!l->primary) {
        rc = CAIRN_ENOTLEADER;
    } else if (le == NULL || le->expiry_ms <= now_ms) {
        /* An expired lease is being revoked: renewing it would race the
         * revocation (etcd waits for it and answers not found). */
        rc = CAIRN_ELEASENOTFOUND;
    } else {
        *clear_checkpoint = le->remaining_ttl_s > 0;
        le->remaining_ttl_s = 0;
        le->expiry_ms = add_ms(now_ms, le->ttl_s, 0);
        le->next_cp_ms = le->ttl_s * 1000 > l->o.checkpoint_interval_ms
                             ? now_ms + l->o.checkpoint_interval_ms
                             : FOREVER;
        heap_update(l, &l->heaps[H_EXPIRY], le);
        cp_update(l, le);
        *ttl_s = le->ttl_s;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Frontier entries: expiry-heap positions, themselves in a min-heap by the
 * lease they hold. */
static bool front_less(const struct heap *e, size_t a, size_t b)
{
    return heap_less(e, e->v[a], e->v[b]);
}

static void front_push(struct lessor *l, const struct heap *e, size_t *f,
                       size_t *n, size_t pos)
{
    size_t i = (*n)++;
    for (; i > 0 && front_less(e, pos, f[(i - 1) / 2]); i = (i - 1) / 2) {
        l->steps++;
        f[i] = f[(i - 1) / 2];
    }
    f[i] = pos;
}

static size_t front_pop(struct lessor *l, const struct heap *e, size_t *f,
                        size_t *n)
{
    size_t top = f[0], last = f[--*n], i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        l->steps++;
        if (c + 1 < *n && front_less(e, f[c + 1], f[c]))
            c++;
        if (!front_less(e, f[c], last))
            break;
        f[i] = f[c];
        i = c;
    }
    if (*n > 0)
        f[i] = last;
    return top;
}

#define FRONT_STACK 256

size_t lease_expired(struct lessor *l, int64_t now_ms, int64_t *ids, size_t max)
{
    /* The max earliest expiries without taking them out of the heap (they
     * stay until revoked): walk it from the root, always to the earliest
     * position seen but not taken, never below a lease not yet expired.
     * O(max log max), whatever the number of leases. */
    size_t stack[FRONT_STACK + 1], *f = stack;
    if (max > FRONT_STACK &&
        (f = cairn_malloc((max + 1) * sizeof(*f))) == NULL) {
        f = stack;
        max = FRONT_STACK; /* fewer this call; the rest on the next */
    }
    pthread_mutex_lock(&l->mu);
    const struct heap *e = &l->heaps[H_EXPIRY];
    size_t n = 0, nf = 0;
    if (l->primary && e->n > 0 && e->v[0]->expiry_ms <= now_ms)
        front_push(l, e, f, &nf, 0);
    while (n < max && nf > 0) {
        size_t p = front_pop(l, e, f, &nf);
        ids[n++] = e->v[p]->id;
        for (size_t c = 2 * p + 1; c <= 2 * p + 2 && c < e->n; c++)
            if (e->v[c]->expiry_ms <= now_ms)
                front_push(l, e, f, &nf, c);
    }
    pthread_mutex_unlock(&l->mu);
    if (f != stack)
        cairn_free(f);
    return n;
}

size_t lease_checkpoints_due(struct lessor *l, int64_t now_ms, int64_t *ids,
                             int64_t *remaining_ttl_s, size_t max)
{
    pthread_mutex_lock(&l->mu);
    struct heap *c = &l->heaps[H_CHECKPOINT];
    size_t n = 0;
    while (l->primary && n < max && c->n > 0 && c->v[0]->next_cp_ms <= now_ms) {
        struct lease *le = c->v[0];
        if (le->expiry_ms <= now_ms) {
            /* Being revoked: no checkpoint (its clock does not come back
             * before a renew, which is refused, or a promote, which
             * schedules again). */
            heap_remove(l, c, le);
            le->next_cp_ms = FOREVER;
            continue;
        }
        int64_t rem_ms = le->expiry_ms - now_ms;
        ids[n] = le->id;
        /* Rounded up: a checkpoint never shortens a lease. */
        remaining_ttl_s[n] = (rem_ms + 999) / 1000;
        n++;
        le->next_cp_ms = rem_ms > l->o.checkpoint_interval_ms
                             ? now_ms + l->o.checkpoint_interval_ms
                             : FOREVER;
        cp_update(l, le);
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

int lease_time_to_live(struct lessor *l, int64_t id, int64_t now_ms,
                       struct lease_info *info, size_t max_keys, void *arg,
                       mvcc_lease_key_cb cb)
{
    pthread_mutex_lock(&l->mu);
    struct lease *le = find(l, id);
    if (le == NULL) {
        pthread_mutex_unlock(&l->mu);
        return CAIRN_ELEASENOTFOUND;
    }
    info->id = id;
    info->granted_ttl_s = le->ttl_s;
    if (l->primary && le->expiry_ms != FOREVER) {
        int64_t rem = le->expiry_ms - now_ms;
        /* etcd truncates Remaining().Seconds(); an expired lease shows -1. */
        info->ttl_s = rem <= 0 ? -1 : rem / 1000;
    } else {
        info->ttl_s = remaining_or_ttl(le);
    }
    pthread_mutex_unlock(&l->mu);
    if (cb == NULL || max_keys == 0)
        return 0;
    return mvcc_lease_keys(l->s, id, max_keys, arg, cb);
}

static int by_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : (x > y);
}

/* Ascending ids: a radix sort, byte by byte from the lowest, skipping the
 * bytes every id shares (ids are mostly small), so a list of 100,000 costs
 * a few passes instead of a comparison sort's 1.7 million calls. */
static void sort_ids(int64_t *v, size_t n)
{
    uint64_t *tmp = n > 64 ? cairn_malloc(n * sizeof(*tmp)) : NULL;
    if (tmp == NULL) {
        if (n > 1)
            qsort(v, n, sizeof(*v), by_id);
        return;
    }
    /* The sign bit flipped: two's complement order as unsigned order. */
    const uint64_t flip = (uint64_t)1 << 63;
    uint64_t *a = (uint64_t *)(void *)v, *b = tmp;
    size_t count[8][256] = {{0}};
    for (size_t i = 0; i < n; i++) {
        uint64_t x = a[i] ^ flip;
        for (int d = 0; d < 8; d++)
            count[d][(x >> (8 * d)) & 255]++;
    }
    for (int d = 0; d < 8; d++) {
        uint64_t first = ((a[0] ^ flip) >> (8 * d)) & 255;
        if (count[d][first] == n)
            continue; /* every id has this byte: order unchanged */
        size_t at = 0;
        for (int k = 0; k < 256; k++) {
            size_t c = count[d][k];
            count[d][k] = at;
            at += c;
        }
        for (size_t i = 0; i < n; i++)
            b[count[d][((a[i] ^ flip) >> (8 * d)) & 255]++] = a[i];
        uint64_t *t = a;
        a = b;
        b = t;
    }
    if (a != (uint64_t *)(void *)v)
        memcpy(v, a, n * sizeof(*v));
    cairn_free(tmp);
}

/* Keeps in ids[0..max) a max-heap of the max lowest ids seen. */
static void keep_lowest(int64_t *ids, size_t max, size_t *n, int64_t id)
{
    size_t i;
    if (*n < max) {
        for (i = (*n)++; i > 0 && ids[(i - 1) / 2] < id; i = (i - 1) / 2)
            ids[i] = ids[(i - 1) / 2];
        ids[i] = id;
        return;
    }
    if (id >= ids[0])
        return;
    for (i = 0;;) {
        size_t c = 2 * i + 1;
        if (c >= max)
            break;
        if (c + 1 < max && ids[c + 1] > ids[c])
            c++;
        if (ids[c] <= id)
            break;
        ids[i] = ids[c];
        i = c;
    }
    ids[i] = id;
}

size_t lease_list(struct lessor *l, int64_t *ids, size_t max)
{
    /* The table has no order: gather under the lock, sort outside it. */
    pthread_mutex_lock(&l->mu);
    size_t total = l->n, k = 0;
    for (size_t i = 0; max > 0 && i < l->cap; i++) {
        if (l->tab[i] == NULL)
            continue;
        if (total <= max)
            ids[k++] = l->tab[i]->id;
        else
            keep_lowest(ids, max, &k, l->tab[i]->id);
    }
    pthread_mutex_unlock(&l->mu);
    sort_ids(ids, k);
    return total;
}

uint64_t lease__work_steps(struct lessor *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->steps;
    pthread_mutex_unlock(&l->mu);
    return n;
}
