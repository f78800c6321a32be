/* The allocation wrapper with countdown fault injection and a counter. */
#include "util/mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic int fault_countdown = -1;
static _Atomic int fault_repeat;
static _Atomic uint64_t alloc_count;

static int mem_should_fail(void)
{
    int c = atomic_load_explicit(&fault_countdown, memory_order_relaxed);
    if (c < 0)
        return 0;
    if (c > 0) {
        atomic_fetch_sub_explicit(&fault_countdown, 1, memory_order_relaxed);
        return 0;
    }
    if (atomic_load_explicit(&fault_repeat, memory_order_relaxed) <= 0)
        return 0;
    if (atomic_fetch_sub_explicit(&fault_repeat, 1, memory_order_relaxed) == 1)
        atomic_store(&fault_countdown, -1);
    return 1;
}

void cairn_mem_fault_set(int countdown, int repeat)
{
    atomic_store(&fault_repeat, repeat);
    atomic_store(&fault_countdown, countdown);
}

uint64_t cairn_mem_alloc_count(void)
{
    return atomic_load_explicit(&alloc_count, memory_order_relaxed);
}

void *cairn_malloc(size_t size)
{
    if (mem_should_fail())
        return NULL;
    void *p = malloc(size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return p;
}

void *cairn_calloc(size_t n, size_t size)
{
    if (mem_should_fail())
        return NULL;
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return p;
}

void *cairn_realloc(void *p, size_t size)
{
    if (mem_should_fail())
        return NULL;
    void *q = realloc(p, size ? size : 1);
    if (q)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return q;
}

void cairn_free(void *p)
{
    free(p);
}

void *cairn_memdup(const void *p, size_t n)
{
    void *q = cairn_malloc(n);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

char *cairn_strdup(const char *s)
{
    return cairn_memdup(s, strlen(s) + 1);
}
