/* The wal test groups and their shared helpers: a member's directories on
 * an in-memory file system, and entries whose bytes are a function of their
 * index, term and length, so a test can check what it reads back. */
#ifndef CAIRN_TEST_WAL_TESTS_H
#define CAIRN_TEST_WAL_TESTS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the includes above first */
#include <cmocka.h>

#include "wal/wal.h"

#define TW_WAL_DIR "/data/member/wal"
#define TW_SNAP_DIR "/data/member/snap"

struct tw {
    struct cairn_fs fs;
    struct prng rng;
    struct wal_options o;
    struct cairn_log log;
    int warnings; /* lines logged at WARN or above */
};

/* A fresh in-memory file system; segment size 0 means the default. */
void tw_init(struct tw *t, uint64_t seed, uint64_t segment_size_bytes);
void tw_close(struct tw *t);
/* The seed for randomised tests: CAIRN_TEST_SEED if set, else def. */
uint64_t tw_seed(uint64_t def);

/* Fills e (data in store, room for len bytes) for (index, term, len). */
void tw_entry(struct raft_entry *e, uint8_t *store, raft_index index,
              raft_term term, size_t len);
/* Whether e has the bytes tw_entry gives for (index, term, len). */
int tw_entry_ok(const struct raft_entry *e, raft_index index, raft_term term,
                size_t len);
/* Appends entries [first, first+n) of term `term`, len bytes each. */
int tw_append(struct wal *w, raft_index first, size_t n, raft_term term,
              size_t len, const struct raft_hard_state *hs);
/* The same, with the error message in *m. */
int tw_append_msg(struct wal *w, raft_index first, size_t n, raft_term term,
                  size_t len, const struct raft_hard_state *hs,
                  struct cairn_errmsg *m);

/* Reads the whole file at path into *out (caller frees), size in *n. */
void tw_read(struct cairn_fs *fs, const char *path, uint8_t **out, size_t *n);
/* Writes bytes at off in path and syncs them (to damage files). */
void tw_write(struct cairn_fs *fs, const char *path, const void *p, size_t n,
              uint64_t off);
/* The path of the i-th segment (in name order) of TW_WAL_DIR. */
void tw_segment(struct cairn_fs *fs, size_t i, char *out, size_t size);

int test_wal_basic_group(void);
int test_wal_damage_group(void);
int test_wal_rotation_group(void);
int test_wal_faults_group(void);
int test_wal_snap_group(void);
int test_wal_model_group(void);
int test_wal_posix_group(void);

#endif
