/* Shared helpers of the mvcc tests: temporary store directories and
 * building requests from C strings. */
#ifndef CAIRN_TESTS_MVCC_HELPERS_H
#define CAIRN_TESTS_MVCC_HELPERS_H

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "mvcc/mvcc.h"

/* A fresh directory under /tmp; the caller removes it with rm_dir. */
static inline char *tmp_dir(void)
{
    char tmpl[] = "/tmp/cairn-mvcc-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* Removes a store directory: its files and at most one level of
 * sub-directories (defrag's temporary one). */
static inline void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[8192];
            int n = snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            if (n < 0 || (size_t)n >= sizeof(p))
                continue;
            if (unlink(p) != 0)
                rm_dir(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* hash_bits: see mvcc_options.long_key_hash_bits (ignored without
 * CAIRN_FAULTS). */
static inline struct mvcc_store *store_open_hb(const char *dir,
                                               unsigned hash_bits)
{
    struct mvcc_options o = {.dir = dir, .quota_bytes = 64u << 20};
#ifdef CAIRN_FAULTS
    o.long_key_hash_bits = hash_bits;
#else
    (void)hash_bits;
#endif
    struct mvcc_store *s = NULL;
    struct cairn_errmsg em = {{0}};
    int rc = mvcc_open(&o, &s, &em);
    if (rc != 0)
        fprintf(stderr, "open: %s\n", em.text);
    assert_int_equal(rc, 0);
    return s;
}

static inline struct mvcc_store *store_open(const char *dir)
{
    return store_open_hb(dir, 0);
}

#define S(x) ((const uint8_t *)(x)), strlen(x)

#endif
