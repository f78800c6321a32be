/* Allocation wrapper: every heap allocation in cairn goes through these, so
 * that tests can make the Nth allocation fail (fault injection by countdown,
 * as canonical/raft's fixture does) and count allocations in benchmarks. */
#ifndef CAIRN_UTIL_MEM_H
#define CAIRN_UTIL_MEM_H

#include <stddef.h>
#include <stdint.h>

/* Like malloc/calloc/realloc/free. They return NULL on failure (real or
 * injected); callers handle it and return CAIRN_ENOMEM. */
void *cairn_malloc(size_t size);
void *cairn_calloc(size_t n, size_t size);
void *cairn_realloc(void *p, size_t size);
void cairn_free(void *p);
/* A copy of s (NUL-terminated) or of n bytes of p; NULL when out of memory. */
char *cairn_strdup(const char *s);
void *cairn_memdup(const void *p, size_t n);

/* Test support (process-wide; only tests call these, never production code).
 * After `countdown` more successful allocations, the next `repeat` ones fail;
 * countdown < 0 turns injection off. */
void cairn_mem_fault_set(int countdown, int repeat);
/* Allocations done (successful calls to malloc/calloc/realloc) since start. */
uint64_t cairn_mem_alloc_count(void);

#endif
