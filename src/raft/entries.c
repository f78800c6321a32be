/* Owned arrays of entries whose data is copied in one block per batch and
 * shared by reference count, so appending a batch costs one allocation for
 * the data, not one per entry (the unstable log and the memory storage). */
#include "raft/raft_int.h"

#include <string.h>

struct data_block {
    size_t refs; /* entries pointing into this block */
};

#define BLOCK_HEADER ((sizeof(struct data_block) + 15) & ~(size_t)15)

static void unref(struct data_block *b)
{
    if (b != NULL && --b->refs == 0)
        cairn_free(b);
}

void raft__ev_release(struct entry_vec *v, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        unref(v->blocks[i]);
        v->blocks[i] = NULL;
    }
}

void raft__ev_free(struct entry_vec *v)
{
    raft__ev_release(v, 0, v->n);
    cairn_free(v->ents);
    cairn_free(v->blocks);
    memset(v, 0, sizeof(*v));
}

int raft__ev_reserve(struct entry_vec *v, size_t want)
{
    if (want <= v->cap)
        return 0;
    size_t cap = v->cap > 0 ? v->cap : 16;
    while (cap < want)
        cap *= 2;
    struct raft_entry *e = cairn_realloc(v->ents, cap * sizeof(*e));
    if (e == NULL)
        return CAIRN_ENOMEM;
    v->ents = e;
    struct data_block **b =
        cairn_realloc(v->blocks, cap * sizeof(struct data_block *));
    if (b == NULL)
        return CAIRN_ENOMEM; /* ents grew, cap did not: still consistent */
    v->blocks = b;
    v->cap = cap;
    return 0;
}

int raft__ev_replace_from(struct entry_vec *v, size_t at,
                          const struct raft_entry *ents, size_t n)
{
    CAIRN_ASSERT(at <= v->n);
    int rv = raft__ev_reserve(v, at + n);
    if (rv != 0)
        return rv;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ents[i].len;
    struct data_block *blk = NULL;
    if (total > 0) {
        blk = cairn_malloc(BLOCK_HEADER + total);
        if (blk == NULL)
            return CAIRN_ENOMEM;
        blk->refs = 0;
    }
    /* Nothing can fail from here on: the old tail goes, the copies come. */
    raft__ev_release(v, at, v->n);
    uint8_t *p = blk != NULL ? (uint8_t *)blk + BLOCK_HEADER : NULL;
    for (size_t i = 0; i < n; i++) {
        v->ents[at + i] = ents[i];
        v->blocks[at + i] = NULL;
        if (ents[i].len > 0) {
            CAIRN_ASSERT(p != NULL); /* total > 0, so the block exists */
            memcpy(p, ents[i].data, ents[i].len);
            v->ents[at + i].data = p;
            v->blocks[at + i] = blk;
            blk->refs++;
            p += ents[i].len;
        } else {
            v->ents[at + i].data = NULL;
        }
    }
    v->n = at + n;
    return 0;
}

void raft__ev_remove_range(struct entry_vec *v, size_t from, size_t to)
{
    CAIRN_ASSERT(from <= to && to <= v->n);
    raft__ev_release(v, from, to);
    memmove(v->ents + from, v->ents + to, (v->n - to) * sizeof(*v->ents));
    memmove(v->blocks + from, v->blocks + to,
            (v->n - to) * sizeof(struct data_block *));
    v->n -= to - from;
}
