/* Shared helpers of the wal tests (tests.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static void count_sink(void *arg, enum cairn_log_level level, const char *line)
{
    struct tw *t = arg;
    if (getenv("CAIRN_WAL_MODEL_TRACE"))
        fprintf(stderr, "log: %s\n", line);
    if (level >= CAIRN_LOG_WARN)
        t->warnings++;
}

static int64_t zero_clock(void *arg)
{
    (void)arg;
    return 0;
}

void tw_init(struct tw *t, uint64_t seed, uint64_t segment_size_bytes)
{
    memset(t, 0, sizeof *t);
    prng_seed(&t->rng, seed);
    assert_int_equal(cairn_fs_mem_init(&t->fs, &t->rng), 0);
    cairn_log_init(&t->log, "test", CAIRN_LOG_INFO);
    t->log.sink = count_sink;
    t->log.sink_arg = t;
    t->log.clock = zero_clock;
    t->o.fs = &t->fs;
    t->o.dir = TW_WAL_DIR;
    t->o.segment_size_bytes = segment_size_bytes;
    t->o.log = &t->log;
}

void tw_close(struct tw *t)
{
    cairn_fs_mem_close(&t->fs);
}

uint64_t tw_seed(uint64_t def)
{
    const char *s = getenv("CAIRN_TEST_SEED");
    return s && *s ? strtoull(s, NULL, 0) : def;
}

static uint8_t byte_of(raft_index index, raft_term term, size_t len, size_t k)
{
    uint64_t st = index * 0x9E3779B97F4A7C15ull ^ term * 31 ^ len * 7 ^ k;
    return (uint8_t)splitmix64(&st);
}

void tw_entry(struct raft_entry *e, uint8_t *store, raft_index index,
              raft_term term, size_t len)
{
    for (size_t k = 0; k < len; k++)
        store[k] = byte_of(index, term, len, k);
    e->index = index;
    e->term = term;
    e->type = (uint8_t)(index % 3);
    e->data = len ? store : NULL;
    e->len = len;
}

int tw_entry_ok(const struct raft_entry *e, raft_index index, raft_term term,
                size_t len)
{
    if (e->index != index || e->term != term || e->len != len ||
        e->type != index % 3)
        return 0;
    for (size_t k = 0; k < len; k++)
        if (e->data[k] != byte_of(index, term, len, k))
            return 0;
    return 1;
}

int tw_append(struct wal *w, raft_index first, size_t n, raft_term term,
              size_t len, const struct raft_hard_state *hs)
{
    struct cairn_errmsg m;
    return tw_append_msg(w, first, n, term, len, hs, &m);
}

int tw_append_msg(struct wal *w, raft_index first, size_t n, raft_term term,
                  size_t len, const struct raft_hard_state *hs,
                  struct cairn_errmsg *m)
{
    struct raft_entry *ents = calloc(n ? n : 1, sizeof *ents);
    uint8_t *store = malloc(n * len + 1);
    for (size_t i = 0; i < n; i++)
        tw_entry(&ents[i], store + i * len, first + i, term, len);
    int rv = wal_append(w, hs, ents, n, m);
    free(ents);
    free(store);
    return rv;
}

void tw_read(struct cairn_fs *fs, const char *path, uint8_t **out, size_t *n)
{
    int fd;
    assert_int_equal(fs->open(fs, path, CAIRN_FS_RDONLY, &fd), 0);
    uint64_t size;
    assert_int_equal(fs->fsize(fs, fd, &size), 0);
    *out = malloc(size + 1);
    assert_int_equal(fs->pread(fs, fd, *out, size, 0, n), 0);
    assert_int_equal(*n, size);
    fs->close(fs, fd);
}

void tw_write(struct cairn_fs *fs, const char *path, const void *p, size_t n,
              uint64_t off)
{
    int fd;
    assert_int_equal(fs->open(fs, path, CAIRN_FS_RDWR, &fd), 0);
    assert_int_equal(fs->pwrite(fs, fd, p, n, off), 0);
    assert_int_equal(fs->fdatasync(fs, fd), 0);
    fs->close(fs, fd);
}

void tw_segment(struct cairn_fs *fs, size_t i, char *out, size_t size)
{
    struct cairn_fs_names names;
    assert_int_equal(fs->list(fs, TW_WAL_DIR, &names), 0);
    size_t k = 0;
    for (size_t j = 0; j < names.count; j++) {
        size_t l = strlen(names.names[j]);
        if (l > 4 && strcmp(names.names[j] + l - 4, ".wal") == 0) {
            if (k++ == i) {
                snprintf(out, size, "%s/%s", TW_WAL_DIR, names.names[j]);
                cairn_fs_names_free(&names);
                return;
            }
        }
    }
    cairn_fs_names_free(&names);
    fail_msg("no segment %zu", i);
}
