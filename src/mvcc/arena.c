/* The response arena: a chunked bump allocator so a whole response (and its
 * key-values) is freed at once. */
#include "mvcc/mvcc.h"

struct mvcc__chunk {
    struct mvcc__chunk *next;
    size_t used;
    size_t cap;
    _Alignas(16) uint8_t data[];
};

#define ARENA_CHUNK_MIN (16 * 1024)

void mvcc_arena_init(struct mvcc_arena *a)
{
    a->head = NULL;
    a->bytes = 0;
}

void mvcc_arena_free(struct mvcc_arena *a)
{
    struct mvcc__chunk *c = a->head;
    while (c != NULL) {
        struct mvcc__chunk *next = c->next;
        cairn_free(c);
        c = next;
    }
    a->head = NULL;
    a->bytes = 0;
}

void mvcc_arena_reset(struct mvcc_arena *a)
{
    if (a->head == NULL)
        return;
    /* Keep the newest chunk (the largest in a growing sequence). */
    struct mvcc__chunk *keep = a->head;
    struct mvcc__chunk *c = keep->next;
    while (c != NULL) {
        struct mvcc__chunk *next = c->next;
        cairn_free(c);
        c = next;
    }
    keep->next = NULL;
    keep->used = 0;
    a->bytes = 0;
}

void *mvcc_arena_alloc(struct mvcc_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0)
        n = 8;
    struct mvcc__chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        size_t cap = ARENA_CHUNK_MIN;
        if (c != NULL && c->cap * 2 > cap)
            cap = c->cap * 2;
        if (cap > 16 * 1024 * 1024)
            cap = 16 * 1024 * 1024;
        if (cap < n)
            cap = n;
        struct mvcc__chunk *nc = cairn_malloc(sizeof(*nc) + cap);
        if (nc == NULL)
            return NULL;
        nc->next = c;
        nc->used = 0;
        nc->cap = cap;
        a->head = nc;
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    a->bytes += n;
    return p;
}
