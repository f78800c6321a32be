/* The lessor: leases in a sorted array guarded by one mutex, persisted in
 * mvcc's ext table (record layout in docs/lease.md). */
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

struct lease {
    int64_t id;
    int64_t ttl_s;
    int64_t remaining_ttl_s; /* checkpointed; 0: none */
    int64_t expiry_ms;       /* FOREVER when not primary */
    int64_t next_cp_ms;      /* next checkpoint due (primary) */
};

struct lessor {
    struct mvcc_store *s;
    struct lease_options o;
    pthread_mutex_t mu;
    struct lease *v; /* sorted by id */
    size_t n, cap;
    bool primary;
    int64_t next_auto_id;
    uint64_t steps; /* work done, for lease__work_steps */
};

static size_t find_pos(const struct lessor *l, int64_t id, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->v[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < l->n && l->v[lo].id == id;
    return lo;
}

static struct lease *find(struct lessor *l, int64_t id)
{
    bool found;
    size_t p = find_pos(l, id, &found);
    return found ? &l->v[p] : NULL;
}

static int insert(struct lessor *l, const struct lease *le)
{
    bool found;
    size_t p = find_pos(l, le->id, &found);
    CAIRN_ASSERT(!found);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct lease *nv = cairn_realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL)
            return CAIRN_ENOMEM;
        l->v = nv;
        l->cap = cap;
    }
    CAIRN_ASSERT(l->v != NULL); /* cap > n, so the array was made */
    if (p < l->n)
        memmove(&l->v[p + 1], &l->v[p], (l->n - p) * sizeof(*l->v));
    l->steps += l->n - p;
    l->v[p] = *le;
    l->n++;
    return 0;
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
    struct lease le = {.id = id,
                       .ttl_s = (int64_t)codec_get_u64(val),
                       .remaining_ttl_s = (int64_t)codec_get_u64(val + 8),
                       .expiry_ms = FOREVER,
                       .next_cp_ms = FOREVER};
    return insert(l, &le);
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
    cairn_free(l->v);
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
    struct lease le = {.id = id,
                       .ttl_s = ttl_s < l->o.min_ttl_s ? l->o.min_ttl_s : ttl_s,
                       .expiry_ms = FOREVER,
                       .next_cp_ms = FOREVER};
    if (l->primary)
        refresh(l, &le, now_ms, 0);
    if ((rc = persist(l, &le)) != 0)
        goto out;
    if (auto_id) {
        uint8_t v[8];
        codec_put_u64(v, (uint64_t)(id + 1));
        if ((rc = mvcc_ext_put(l->s, TABLE_META, "next", 4, v, 8)) != 0)
            goto out;
    }
    if ((rc = insert(l, &le)) != 0)
        goto out;
    if (auto_id)
        l->next_auto_id = id + 1;
    *granted_id = id;
    *granted_ttl_s = le.ttl_s;
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
    bool found;
    size_t p = find_pos(l, id, &found);
    if (found) {
        memmove(&l->v[p], &l->v[p + 1], (l->n - p - 1) * sizeof(*l->v));
        l->steps += l->n - p;
        l->n--;
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
    for (size_t i = 0; i < l->n; i++)
        v[i] = &l->v[i];
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
    for (size_t i = 0; i < l->n; i++)
        refresh(l, &l->v[i], now_ms, extend_ms);
    spread_expiries(l, now_ms, extend_ms);
    pthread_mutex_unlock(&l->mu);
}

void lease_demote(struct lessor *l)
{
    pthread_mutex_lock(&l->mu);
    l->primary = false;
    for (size_t i = 0; i < l->n; i++) {
        l->v[i].expiry_ms = FOREVER;
        l->v[i].next_cp_ms = FOREVER;
    }
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
        *ttl_s = le->ttl_s;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

size_t lease_expired(struct lessor *l, int64_t now_ms, int64_t *ids, size_t max)
{
    pthread_mutex_lock(&l->mu);
    size_t n = 0;
    if (l->primary) {
        /* Selection of the max earliest expiries: a linear pass per pick
         * keeps it simple; leases are few compared to keys. */
        int64_t last_exp = INT64_MIN, last_id = INT64_MIN;
        while (n < max) {
            struct lease *best = NULL;
            l->steps += l->n;
            for (size_t i = 0; i < l->n; i++) {
                struct lease *le = &l->v[i];
                if (le->expiry_ms > now_ms)
                    continue;
                if (le->expiry_ms < last_exp ||
                    (le->expiry_ms == last_exp && le->id <= last_id))
                    continue;
                if (best == NULL || le->expiry_ms < best->expiry_ms ||
                    (le->expiry_ms == best->expiry_ms && le->id < best->id))
                    best = le;
            }
            if (best == NULL)
                break;
            ids[n++] = best->id;
            last_exp = best->expiry_ms;
            last_id = best->id;
        }
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

size_t lease_checkpoints_due(struct lessor *l, int64_t now_ms, int64_t *ids,
                             int64_t *remaining_ttl_s, size_t max)
{
    pthread_mutex_lock(&l->mu);
    size_t n = 0;
    for (size_t i = 0; l->primary && i < l->n && n < max; i++) {
        struct lease *le = &l->v[i];
        l->steps++;
        if (le->next_cp_ms > now_ms || le->expiry_ms <= now_ms)
            continue;
        int64_t rem_ms = le->expiry_ms - now_ms;
        ids[n] = le->id;
        /* Rounded up: a checkpoint never shortens a lease. */
        remaining_ttl_s[n] = (rem_ms + 999) / 1000;
        n++;
        le->next_cp_ms = rem_ms > l->o.checkpoint_interval_ms
                             ? now_ms + l->o.checkpoint_interval_ms
                             : FOREVER;
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

size_t lease_list(struct lessor *l, int64_t *ids, size_t max)
{
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n && i < max; i++)
        ids[i] = l->v[i].id;
    size_t n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

uint64_t lease__work_steps(struct lessor *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t n = l->steps;
    pthread_mutex_unlock(&l->mu);
    return n;
}
