/* The in-memory storage that ships with the core (etcd's MemoryStorage): a
 * snapshot plus the entries after it, all owned copies. */
#include "raft/raft_int.h"

#include <string.h>

struct raft_memory_storage {
    struct raft_storage iface;
    struct raft_hard_state hs;
    struct raft_snapshot snap; /* snap.data owned */
    /* v.ents[0] is a dummy carrying the snapshot's index and term; the log
     * holds v.ents[1..n). Data is copied, one block per append. */
    struct entry_vec v;
    uint64_t bytes; /* cost of v.ents[1..n), raft_memory_storage_bytes */
};

static uint64_t cost(const struct raft_entry *e)
{
    return e->len + RAFT_MEMORY_STORAGE_ENTRY_OVERHEAD;
}

/* The cost of v.ents[from, to). */
static uint64_t cost_range(const struct raft_memory_storage *ms, size_t from,
                           size_t to)
{
    uint64_t b = 0;
    for (size_t i = from; i < to; i++)
        b += cost(&ms->v.ents[i]);
    return b;
}

static raft_index ms_first(const struct raft_memory_storage *ms)
{
    return ms->v.ents[0].index + 1;
}

static raft_index ms_last(const struct raft_memory_storage *ms)
{
    return ms->v.ents[0].index + ms->v.n - 1;
}

static int ms_initial_state(void *ctx, struct raft_hard_state *hs,
                            struct raft_conf_state *cs)
{
    struct raft_memory_storage *ms = ctx;
    *hs = ms->hs;
    *cs = ms->snap.meta.conf;
    return 0;
}

static int ms_first_index(void *ctx, raft_index *out)
{
    *out = ms_first(ctx);
    return 0;
}

static int ms_last_index(void *ctx, raft_index *out)
{
    *out = ms_last(ctx);
    return 0;
}

static int ms_term(void *ctx, raft_index i, raft_term *out)
{
    struct raft_memory_storage *ms = ctx;
    raft_index off = ms->v.ents[0].index;
    if (i < off)
        return CAIRN_ECOMPACTED;
    if (i - off >= ms->v.n)
        return CAIRN_EUNAVAILABLE;
    *out = ms->v.ents[i - off].term;
    return 0;
}

static int ms_entries(void *ctx, raft_index lo, raft_index hi,
                      uint64_t max_bytes, const struct raft_entry **out,
                      size_t *n)
{
    struct raft_memory_storage *ms = ctx;
    raft_index off = ms->v.ents[0].index;
    if (lo <= off)
        return CAIRN_ECOMPACTED;
    CAIRN_ASSERT(lo < hi && hi <= ms_last(ms) + 1);
    size_t count = 0;
    uint64_t bytes = 0;
    for (raft_index i = lo; i < hi; i++) {
        const struct raft_entry *e = &ms->v.ents[i - off];
        if (count > 0 && bytes + e->len > max_bytes)
            break;
        bytes += e->len;
        count++;
    }
    *out = &ms->v.ents[lo - off];
    *n = count;
    return 0;
}

static int ms_snapshot(void *ctx, const struct raft_snapshot **out)
{
    struct raft_memory_storage *ms = ctx;
    *out = &ms->snap;
    return 0;
}

int raft_memory_storage_new(struct raft_memory_storage **out)
{
    struct raft_memory_storage *ms = cairn_calloc(1, sizeof(*ms));
    if (ms == NULL)
        return CAIRN_ENOMEM;
    if (raft__ev_reserve(&ms->v, 16) != 0) {
        cairn_free(ms);
        return CAIRN_ENOMEM;
    }
    memset(&ms->v.ents[0], 0, sizeof(ms->v.ents[0]));
    ms->v.blocks[0] = NULL;
    ms->v.n = 1;
    ms->iface.ctx = ms;
    ms->iface.initial_state = ms_initial_state;
    ms->iface.first_index = ms_first_index;
    ms->iface.last_index = ms_last_index;
    ms->iface.term = ms_term;
    ms->iface.entries = ms_entries;
    ms->iface.snapshot = ms_snapshot;
    *out = ms;
    return 0;
}

static void free_entries_from(struct raft_memory_storage *ms, size_t from)
{
    ms->bytes -= cost_range(ms, from, ms->v.n);
    raft__ev_release(&ms->v, from, ms->v.n);
    ms->v.n = from;
}

void raft_memory_storage_free(struct raft_memory_storage *ms)
{
    if (ms == NULL)
        return;
    raft__ev_free(&ms->v);
    cairn_free((void *)ms->snap.data);
    cairn_free(ms);
}

const struct raft_storage *
raft_memory_storage_iface(struct raft_memory_storage *ms)
{
    return &ms->iface;
}

int raft_memory_storage_bootstrap(struct raft_memory_storage *ms,
                                  const struct raft_conf_state *cs)
{
    if (ms->v.n != 1 || ms->v.ents[0].index != 0 || ms->hs.term != 0)
        return CAIRN_EEXISTS;
    ms->snap.meta.index = 1;
    ms->snap.meta.term = 1;
    ms->snap.meta.conf = *cs;
    ms->v.ents[0].index = 1;
    ms->v.ents[0].term = 1;
    ms->hs.term = 1;
    ms->hs.commit = 1;
    return 0;
}

void raft_memory_storage_set_hard_state(struct raft_memory_storage *ms,
                                        const struct raft_hard_state *hs)
{
    ms->hs = *hs;
}

void raft_memory_storage_hard_state(const struct raft_memory_storage *ms,
                                    struct raft_hard_state *hs)
{
    *hs = ms->hs;
}

int raft_memory_storage_append(struct raft_memory_storage *ms,
                               const struct raft_entry *entries, size_t n)
{
    if (n == 0)
        return 0;
    raft_index first = ms_first(ms);
    raft_index last_new = entries[0].index + n - 1;
    if (last_new < first)
        return 0; /* all older than the snapshot */
    if (entries[0].index > ms_last(ms) + 1)
        return CAIRN_EUNAVAILABLE;
    if (entries[0].index < first) {
        size_t skip = (size_t)(first - entries[0].index);
        entries += skip;
        n -= skip;
    }
    size_t at = (size_t)(entries[0].index - ms->v.ents[0].index);
    uint64_t dropped = cost_range(ms, at, ms->v.n);
    /* All or nothing: a failed allocation leaves the log as it was. */
    int rv = raft__ev_replace_from(&ms->v, at, entries, n);
    if (rv == 0)
        ms->bytes = ms->bytes - dropped + cost_range(ms, at, ms->v.n);
    return rv;
}

static int set_snapshot(struct raft_memory_storage *ms,
                        const struct raft_snapshot_meta *meta, const void *data,
                        size_t len)
{
    void *copy = NULL;
    if (len > 0) {
        copy = cairn_memdup(data, len);
        if (copy == NULL)
            return CAIRN_ENOMEM;
    }
    cairn_free((void *)ms->snap.data);
    ms->snap.meta = *meta;
    ms->snap.data = copy;
    ms->snap.len = len;
    return 0;
}

int raft_memory_storage_apply_snapshot(struct raft_memory_storage *ms,
                                       const struct raft_snapshot *snap)
{
    if (snap->meta.index <= ms->snap.meta.index)
        return CAIRN_ESNAPOUTOFDATE;
    int rv = set_snapshot(ms, &snap->meta, snap->data, snap->len);
    if (rv != 0)
        return rv;
    free_entries_from(ms, 1);
    ms->v.ents[0].index = snap->meta.index;
    ms->v.ents[0].term = snap->meta.term;
    return 0;
}

int raft_memory_storage_create_snapshot(struct raft_memory_storage *ms,
                                        raft_index index,
                                        const struct raft_conf_state *cs,
                                        const void *data, size_t len)
{
    if (index <= ms->snap.meta.index)
        return CAIRN_ESNAPOUTOFDATE;
    if (index > ms_last(ms))
        return CAIRN_EUNAVAILABLE;
    struct raft_snapshot_meta meta = {.index = index, .conf = *cs};
    int rv = ms_term(ms, index, &meta.term);
    CAIRN_ASSERT(rv == 0); /* index > snapshot >= ents[0].index */
    return set_snapshot(ms, &meta, data, len);
}

int raft_memory_storage_compact(struct raft_memory_storage *ms,
                                raft_index index)
{
    raft_index off = ms->v.ents[0].index;
    if (index <= off)
        return CAIRN_ECOMPACTED;
    if (index > ms_last(ms))
        return CAIRN_EUNAVAILABLE;
    size_t drop = (size_t)(index - off);
    raft_term term = ms->v.ents[drop].term;
    ms->bytes -= cost_range(ms, 1, drop + 1);
    raft__ev_remove_range(&ms->v, 1, drop + 1);
    ms->v.ents[0].index = index;
    ms->v.ents[0].term = term;
    return 0;
}

uint64_t raft_memory_storage_bytes(const struct raft_memory_storage *ms)
{
    return ms->bytes;
}

raft_index raft_memory_storage_keep_bytes(const struct raft_memory_storage *ms,
                                          uint64_t bytes)
{
    uint64_t kept = 0;
    size_t i = ms->v.n;
    /* Bounded by the number of entries. */
    while (i > 1 && kept + cost(&ms->v.ents[i - 1]) <= bytes) {
        kept += cost(&ms->v.ents[i - 1]);
        i--;
    }
    /* Entries [i, n) fit: compact up to ents[i - 1]. */
    return ms->v.ents[0].index + (raft_index)(i - 1);
}

raft_index raft_memory_storage_first_index(const struct raft_memory_storage *ms)
{
    return ms_first(ms);
}
