/* The file-system table: the in-memory file system's durability model
 * (unsynced bytes and unsynced names are lost on a crash), its faults and
 * its determinism, and the POSIX table on a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"
#include "util/util.h"

static void mem_setup(struct cairn_fs *fs, uint64_t seed)
{
    struct prng r;
    prng_seed(&r, seed);
    assert_int_equal(cairn_fs_mem_init(fs, &r), 0);
}

static int read_all(struct cairn_fs *fs, const char *path, uint8_t *out,
                    size_t cap, size_t *n)
{
    int fd;
    int rv = fs->open(fs, path, CAIRN_FS_RDONLY, &fd);
    if (rv != 0)
        return rv;
    rv = fs->pread(fs, fd, out, cap, 0, n);
    fs->close(fs, fd);
    return rv;
}

static void fs_mem_basic(void **state)
{
    (void)state;
    struct cairn_fs fs;
    mem_setup(&fs, 1);
    assert_int_equal(fs.mkdir(&fs, "/d"), 0);
    assert_int_equal(fs.mkdir(&fs, "/d"), CAIRN_EEXISTS);
    assert_int_equal(fs.mkdir(&fs, "/x/y"), CAIRN_ENOTFOUND);
    int fd;
    assert_int_equal(fs.open(&fs, "/d/a", CAIRN_FS_RDWR, &fd), CAIRN_ENOTFOUND);
    assert_int_equal(fs.open(&fs, "/d/a", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    int fd2;
    assert_int_equal(fs.open(&fs, "/d/a",
                             CAIRN_FS_RDWR | CAIRN_FS_CREATE | CAIRN_FS_EXCL,
                             &fd2),
                     CAIRN_EEXISTS);
    assert_int_equal(fs.pwrite(&fs, fd, "hello", 5, 3), 0);
    uint64_t size;
    assert_int_equal(fs.fsize(&fs, fd, &size), 0);
    assert_int_equal(size, 8);
    uint8_t b[16];
    size_t n;
    assert_int_equal(fs.pread(&fs, fd, b, sizeof b, 0, &n), 0);
    assert_int_equal(n, 8);
    assert_memory_equal(b, "\0\0\0hello", 8);
    assert_int_equal(fs.fallocate(&fs, fd, 0, 100), 0);
    assert_int_equal(fs.fsize(&fs, fd, &size), 0);
    assert_int_equal(size, 100);
    assert_int_equal(fs.ftruncate(&fs, fd, 4), 0);
    assert_int_equal(fs.pread(&fs, fd, b, sizeof b, 0, &n), 0);
    assert_int_equal(n, 4);
    assert_memory_equal(b, "\0\0\0h", 4);
    assert_int_equal(fs.close(&fs, fd), 0);
    assert_int_equal(fs.rename(&fs, "/d/a", "/d/b"), 0);
    struct cairn_fs_stat st;
    assert_int_equal(fs.stat(&fs, "/d/a", &st), CAIRN_ENOTFOUND);
    assert_int_equal(fs.stat(&fs, "/d/b", &st), 0);
    assert_false(st.is_dir);
    assert_int_equal(st.size_bytes, 4);
    assert_int_equal(fs.stat(&fs, "/d", &st), 0);
    assert_true(st.is_dir);
    assert_int_equal(fs.open(&fs, "/d/c", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    assert_int_equal(fs.close(&fs, fd), 0);
    assert_int_equal(fs.mkdir(&fs, "/d/sub"), 0);
    assert_int_equal(
        fs.open(&fs, "/d/sub/z", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd), 0);
    assert_int_equal(fs.close(&fs, fd), 0);
    struct cairn_fs_names names;
    assert_int_equal(fs.list(&fs, "/d", &names), 0);
    assert_int_equal(names.count, 3);
    assert_string_equal(names.names[0], "b");
    assert_string_equal(names.names[1], "c");
    assert_string_equal(names.names[2], "sub");
    cairn_fs_names_free(&names);
    assert_int_equal(fs.unlink(&fs, "/d/c"), 0);
    assert_int_equal(fs.unlink(&fs, "/d/c"), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_fs_mem_open_handles(&fs), 0);
    cairn_fs_mem_close(&fs);
}

static void fs_mem_crash_loses_unsynced(void **state)
{
    (void)state;
    struct cairn_fs fs;
    mem_setup(&fs, 2);
    int fd;
    assert_int_equal(fs.mkdir(&fs, "/d"), 0);
    assert_int_equal(fs.fsync_dir(&fs, "/"), 0);
    assert_int_equal(fs.open(&fs, "/d/f", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    assert_int_equal(fs.pwrite(&fs, fd, "durable", 7, 0), 0);
    assert_int_equal(fs.fdatasync(&fs, fd), 0);
    /* A new name whose directory is not synced is lost, its data too. */
    int fd2;
    assert_int_equal(
        fs.open(&fs, "/d/g", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd2), 0);
    assert_int_equal(fs.pwrite(&fs, fd2, "x", 1, 0), 0);
    assert_int_equal(fs.fdatasync(&fs, fd2), 0);
    assert_int_equal(fs.fsync_dir(&fs, "/d"), 0); /* f and g durable now */
    assert_int_equal(fs.pwrite(&fs, fd, "LOST", 4, 0), 0);
    assert_int_equal(fs.pwrite(&fs, fd, "more", 4, 7), 0);
    assert_true(cairn_fs_mem_unsynced_bytes(&fs) > 0);
    assert_int_equal(fs.rename(&fs, "/d/g", "/d/h"), 0); /* not durable */
    int fd3;
    assert_int_equal(
        fs.open(&fs, "/d/new", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd3), 0);
    cairn_fs_mem_crash(&fs, false);
    /* Old handles are dead but can be closed. */
    uint8_t b[32];
    size_t n;
    assert_int_equal(fs.pread(&fs, fd, b, sizeof b, 0, &n), CAIRN_EINVAL);
    assert_int_equal(fs.pwrite(&fs, fd, "x", 1, 0), CAIRN_EINVAL);
    fs.close(&fs, fd);
    fs.close(&fs, fd2);
    fs.close(&fs, fd3);
    assert_int_equal(cairn_fs_mem_open_handles(&fs), 0);
    assert_int_equal(read_all(&fs, "/d/f", b, sizeof b, &n), 0);
    assert_int_equal(n, 7);
    assert_memory_equal(b, "durable", 7);
    assert_int_equal(read_all(&fs, "/d/g", b, sizeof b, &n), 0);
    assert_int_equal(n, 1);
    struct cairn_fs_stat st;
    assert_int_equal(fs.stat(&fs, "/d/h", &st), CAIRN_ENOTFOUND);
    assert_int_equal(fs.stat(&fs, "/d/new", &st), CAIRN_ENOTFOUND);
    assert_int_equal(cairn_fs_mem_unsynced_bytes(&fs), 0);
    /* A directory whose own name was never synced vanishes with its
     * contents, synced or not. */
    assert_int_equal(fs.mkdir(&fs, "/e"), 0);
    assert_int_equal(fs.open(&fs, "/e/f", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    assert_int_equal(fs.fdatasync(&fs, fd), 0);
    assert_int_equal(fs.fsync_dir(&fs, "/e"), 0);
    fs.close(&fs, fd);
    cairn_fs_mem_crash(&fs, false);
    assert_int_equal(fs.stat(&fs, "/e", &st), CAIRN_ENOTFOUND);
    assert_int_equal(fs.stat(&fs, "/e/f", &st), CAIRN_ENOTFOUND);
    /* A synced unlink sticks. */
    assert_int_equal(fs.unlink(&fs, "/d/g"), 0);
    assert_int_equal(fs.fsync_dir(&fs, "/d"), 0);
    cairn_fs_mem_crash(&fs, false);
    assert_int_equal(fs.stat(&fs, "/d/g", &st), CAIRN_ENOTFOUND);
    assert_int_equal(fs.stat(&fs, "/d/f", &st), 0);
    cairn_fs_mem_close(&fs);
}

/* Which of four files survive (a bit each): unlinks not followed by a
 * directory sync, then a crash, on the file system seeded `seed`. */
static unsigned unlinked_survivors(uint64_t seed)
{
    struct cairn_fs fs;
    mem_setup(&fs, seed);
    static const char *const names[] = {"/a", "/b", "/c", "/d"};
    for (size_t i = 0; i < 4; i++) {
        int fd;
        assert_int_equal(
            fs.open(&fs, names[i], CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd), 0);
        assert_int_equal(fs.pwrite(&fs, fd, "x", 1, 0), 0);
        assert_int_equal(fs.fdatasync(&fs, fd), 0);
        fs.close(&fs, fd);
    }
    int fd;
    assert_int_equal(fs.open(&fs, "/r", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    fs.close(&fs, fd);
    assert_int_equal(fs.fsync_dir(&fs, "/"), 0);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(fs.unlink(&fs, names[i]), 0);
    /* A rename is never half done: its file keeps its old name. */
    assert_int_equal(fs.rename(&fs, "/r", "/s"), 0);
    cairn_fs_mem_crash(&fs, false);
    struct cairn_fs_stat st;
    assert_int_equal(fs.stat(&fs, "/r", &st), 0);
    assert_int_equal(fs.stat(&fs, "/s", &st), CAIRN_ENOTFOUND);
    unsigned mask = 0;
    for (unsigned i = 0; i < 4; i++)
        if (fs.stat(&fs, names[i], &st) == 0)
            mask |= 1u << i;
    cairn_fs_mem_close(&fs);
    return mask;
}

/* Unsynced unlinks reach the disk or not, each by a draw from the seed:
 * over seeds every outcome occurs, including strict subsets, and a seed
 * replays its outcome. */
static void fs_mem_crash_keeps_some_unlinks(void **state)
{
    (void)state;
    bool seen[16] = {false};
    for (uint64_t seed = 1; seed <= 200; seed++) {
        unsigned mask = unlinked_survivors(seed);
        assert_int_equal(mask, unlinked_survivors(seed));
        seen[mask] = true;
    }
    size_t kinds = 0;
    for (size_t i = 0; i < 16; i++)
        kinds += seen[i];
    assert_true(seen[0] && seen[15]);
    assert_true(kinds >= 8);
}

/* A torn write keeps whole 512-byte sectors of the last write, some but
 * maybe not all, chosen by the seed; earlier unsynced writes are lost. */
static void fs_mem_tear(void **state)
{
    (void)state;
    int seen_partial = 0, seen_none = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct cairn_fs fs;
        mem_setup(&fs, seed);
        int fd;
        assert_int_equal(
            fs.open(&fs, "/f", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd), 0);
        assert_int_equal(fs.fallocate(&fs, fd, 0, 8192), 0);
        assert_int_equal(fs.fdatasync(&fs, fd), 0);
        assert_int_equal(fs.fsync_dir(&fs, "/"), 0);
        uint8_t w[4096];
        memset(w, 0xAB, sizeof w);
        assert_int_equal(fs.pwrite(&fs, fd, "early", 5, 6000), 0);
        assert_int_equal(fs.pwrite(&fs, fd, w, sizeof w, 100), 0);
        cairn_fs_mem_crash(&fs, true);
        fs.close(&fs, fd);
        static uint8_t b[8192];
        size_t n;
        assert_int_equal(read_all(&fs, "/f", b, sizeof b, &n), 0);
        assert_int_equal(n, 8192);
        size_t kept = 0;
        for (size_t s = 0; s < 16; s++) {
            size_t lo = s * 512 < 100 ? 100 : s * 512;
            size_t hi = (s + 1) * 512 > 4196 ? 4196 : (s + 1) * 512;
            if (lo >= hi)
                continue;
            /* each sector is all new bytes or all old (zero) bytes */
            bool all_new = true, all_old = true;
            for (size_t i = lo; i < hi; i++) {
                all_new = all_new && b[i] == 0xAB;
                all_old = all_old && b[i] == 0;
            }
            assert_true(all_new || all_old);
            kept += all_new;
        }
        for (size_t i = 4196; i < 8192; i++)
            assert_int_equal(b[i], 0); /* "early" was lost */
        for (size_t i = 0; i < 100; i++)
            assert_int_equal(b[i], 0);
        seen_partial += kept > 0 && kept < 9;
        seen_none += kept == 0;
        cairn_fs_mem_close(&fs);
    }
    assert_true(seen_partial > 10);
    (void)seen_none;
}

/* The same seed tears the same way: the simulator replays byte for byte. */
static void fs_mem_tear_deterministic(void **state)
{
    (void)state;
    static uint8_t out[2][8192];
    for (int k = 0; k < 2; k++) {
        struct cairn_fs fs;
        mem_setup(&fs, 77);
        int fd;
        assert_int_equal(
            fs.open(&fs, "/f", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd), 0);
        assert_int_equal(fs.fsync_dir(&fs, "/"), 0);
        uint8_t w[8192];
        for (size_t i = 0; i < sizeof w; i++)
            w[i] = (uint8_t)(i * 7 + 1);
        assert_int_equal(fs.pwrite(&fs, fd, w, sizeof w, 0), 0);
        cairn_fs_mem_crash(&fs, true);
        fs.close(&fs, fd);
        size_t n = 0;
        memset(out[k], 0, sizeof out[k]);
        assert_int_equal(read_all(&fs, "/f", out[k], sizeof out[k], &n), 0);
        cairn_fs_mem_close(&fs);
    }
    assert_memory_equal(out[0], out[1], sizeof out[0]);
}

static void fs_mem_faults(void **state)
{
    (void)state;
    struct cairn_fs fs;
    mem_setup(&fs, 3);
    int fd;
    assert_int_equal(fs.open(&fs, "/f", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    assert_int_equal(fs.fsync_dir(&fs, "/"), 0);
    /* The third write fails, once. */
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_WRITE, 2, 1, CAIRN_EIO, false);
    assert_int_equal(fs.pwrite(&fs, fd, "a", 1, 0), 0);
    assert_int_equal(fs.pwrite(&fs, fd, "b", 1, 1), 0);
    assert_int_equal(fs.pwrite(&fs, fd, "c", 1, 2), CAIRN_EIO);
    assert_int_equal(fs.pwrite(&fs, fd, "d", 1, 3), 0);
    uint64_t size;
    assert_int_equal(fs.fsize(&fs, fd, &size), 0);
    assert_int_equal(size, 4);
    /* Short writes leave a strict prefix. */
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_WRITE, 0, 1, CAIRN_ENOSPC, true);
    uint8_t big[1000];
    memset(big, 7, sizeof big);
    assert_int_equal(fs.pwrite(&fs, fd, big, sizeof big, 100), CAIRN_ENOSPC);
    assert_int_equal(fs.fsize(&fs, fd, &size), 0);
    assert_true(size < 1100);
    /* Syncs fail and then work again (the caller must not retry, but the
     * file system does not decide that). */
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_SYNC, 0, 2, CAIRN_EIO, false);
    assert_int_equal(fs.fdatasync(&fs, fd), CAIRN_EIO);
    assert_int_equal(fs.fsync_dir(&fs, "/"), CAIRN_EIO);
    assert_int_equal(fs.fdatasync(&fs, fd), 0);
    /* A failed sync made nothing durable. */
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_SYNC, 0, 1, CAIRN_EIO, false);
    assert_int_equal(fs.pwrite(&fs, fd, "Z", 1, 0), 0);
    assert_int_equal(fs.fdatasync(&fs, fd), CAIRN_EIO);
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_ALLOC, 0, 1, CAIRN_ENOSPC, false);
    assert_int_equal(fs.fallocate(&fs, fd, 0, 1 << 20), CAIRN_ENOSPC);
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_META, 0, 1, CAIRN_EIO, false);
    assert_int_equal(fs.mkdir(&fs, "/d"), CAIRN_EIO);
    assert_int_equal(fs.mkdir(&fs, "/d"), 0);
    cairn_fs_mem_crash(&fs, false);
    fs.close(&fs, fd);
    uint8_t b[8];
    size_t n;
    assert_int_equal(read_all(&fs, "/f", b, 1, &n), 0);
    assert_int_equal(b[0], 'a');
    /* Rate faults are drawn from the seed: same seed, same failures. */
    int fails[2] = {0, 0};
    uint64_t pattern[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        struct cairn_fs f2;
        mem_setup(&f2, 99);
        int g;
        assert_int_equal(
            f2.open(&f2, "/g", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &g), 0);
        cairn_fs_mem_fault_rate(&f2, CAIRN_FS_MEM_WRITE, 0.3, CAIRN_EIO, false);
        for (int i = 0; i < 64; i++) {
            if (f2.pwrite(&f2, g, "x", 1, (uint64_t)i) != 0) {
                fails[k]++;
                pattern[k] |= 1ull << i;
            }
        }
        f2.close(&f2, g);
        cairn_fs_mem_close(&f2);
    }
    assert_int_equal(pattern[0], pattern[1]);
    assert_true(fails[0] > 5 && fails[0] < 40);
    cairn_fs_mem_close(&fs);
}

/* Pieces of lengths 0..7 cut from `src`, `count` of them: total bytes. */
static size_t iov_cut(struct cairn_iovec *iov, size_t count, const uint8_t *src)
{
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        iov[i].base = src + at;
        iov[i].len = (i * 5 + 3) % 8;
        at += iov[i].len;
    }
    return at;
}

/* pwritev is one write of the pieces in order: gathered exactly (empty
 * pieces too), failed and cut short as a whole, torn at a crash as one
 * write. */
static void fs_mem_pwritev(void **state)
{
    (void)state;
    enum { PIECES = 300 };
    static uint8_t src[PIECES * 8], back[PIECES * 8 + 64];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 13 + 1);
    struct cairn_iovec iov[PIECES];
    size_t total = iov_cut(iov, PIECES, src);
    struct cairn_fs fs;
    mem_setup(&fs, 5);
    int fd;
    assert_int_equal(fs.open(&fs, "/f", CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                     0);
    assert_int_equal(fs.pwritev(&fs, fd, iov, PIECES, 32), 0);
    size_t n;
    assert_int_equal(fs.pread(&fs, fd, back, sizeof back, 0, &n), 0);
    assert_int_equal(n, 32 + total);
    assert_memory_equal(back + 32, src, total);
    assert_int_equal(fs.pwritev(&fs, fd, iov, 0, 0), 0);
    /* A failing one writes a strict prefix of the gathered bytes. */
    memset(src, 0xEE, sizeof src);
    cairn_fs_mem_fault(&fs, CAIRN_FS_MEM_WRITE, 0, 1, CAIRN_EIO, true);
    assert_int_equal(fs.pwritev(&fs, fd, iov, PIECES, 32), CAIRN_EIO);
    assert_int_equal(fs.pread(&fs, fd, back, sizeof back, 0, &n), 0);
    size_t k = 0;
    while (k < total && back[32 + k] == 0xEE)
        k++;
    assert_true(k < total);
    for (size_t i = k; i < total; i++)
        assert_int_equal(back[32 + i], (uint8_t)(i * 13 + 1));
    /* Torn at a crash as one write: only whole 512-byte sectors of it (or
     * none) reach the disk, over what was durable (zeros). */
    memset(back, 0, sizeof back);
    assert_int_equal(fs.pwrite(&fs, fd, back, sizeof back, 0), 0);
    assert_int_equal(fs.fdatasync(&fs, fd), 0);
    assert_int_equal(fs.fsync_dir(&fs, "/"), 0);
    memset(src, 0x5A, sizeof src);
    assert_int_equal(fs.pwritev(&fs, fd, iov, PIECES, 0), 0);
    cairn_fs_mem_crash(&fs, true);
    fs.close(&fs, fd);
    assert_int_equal(read_all(&fs, "/f", back, sizeof back, &n), 0);
    for (size_t sec = 0; sec * 512 < total; sec++) {
        size_t end = (sec + 1) * 512 < total ? (sec + 1) * 512 : total;
        bool torn_in = back[sec * 512] == 0x5A;
        for (size_t i = sec * 512; i < end; i++)
            assert_int_equal(back[i] == 0x5A, torn_in);
    }
    cairn_fs_mem_close(&fs);
}

static void fs_posix_round_trip(void **state)
{
    (void)state;
    char dir[] = "/tmp/cairn-test-fs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct cairn_fs fs;
    cairn_fs_posix_init(&fs);
    char a[256], b[256], sub[256];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    int fd;
    assert_int_equal(fs.open(&fs, a, CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd), 0);
    assert_int_equal(fs.fallocate(&fs, fd, 0, 4096), 0);
    assert_int_equal(fs.pwrite(&fs, fd, "cairn", 5, 10), 0);
    assert_int_equal(fs.fdatasync(&fs, fd), 0);
    uint64_t size;
    assert_int_equal(fs.fsize(&fs, fd, &size), 0);
    assert_int_equal(size, 4096);
    uint8_t buf[16];
    size_t n;
    assert_int_equal(fs.pread(&fs, fd, buf, 5, 10, &n), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "cairn", 5);
    assert_int_equal(fs.pread(&fs, fd, buf, 16, 4090, &n), 0);
    assert_int_equal(n, 6);
    assert_int_equal(fs.ftruncate(&fs, fd, 12), 0);
    assert_int_equal(fs.close(&fs, fd), 0);
    assert_int_equal(fs.rename(&fs, a, b), 0);
    assert_int_equal(fs.mkdir(&fs, sub), 0);
    assert_int_equal(fs.mkdir(&fs, sub), CAIRN_EEXISTS);
    assert_int_equal(fs.fsync_dir(&fs, dir), 0);
    struct cairn_fs_stat st;
    assert_int_equal(fs.stat(&fs, a, &st), CAIRN_ENOTFOUND);
    assert_int_equal(fs.stat(&fs, b, &st), 0);
    assert_int_equal(st.size_bytes, 12);
    assert_int_equal(
        fs.open(&fs, b, CAIRN_FS_RDWR | CAIRN_FS_CREATE | CAIRN_FS_EXCL, &fd),
        CAIRN_EEXISTS);
    struct cairn_fs_names names;
    assert_int_equal(fs.list(&fs, dir, &names), 0);
    assert_int_equal(names.count, 2);
    assert_string_equal(names.names[0], "b");
    assert_string_equal(names.names[1], "sub");
    cairn_fs_names_free(&names);
    assert_int_equal(fs.unlink(&fs, b), 0);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* More pieces than one pwritev(2) call takes (IOV_MAX, 1024), empty ones
 * among them: written in order, in turns. */
static void fs_posix_pwritev(void **state)
{
    (void)state;
    enum { PIECES = 2500 };
    static uint8_t src[PIECES * 8], back[PIECES * 8 + 64];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + 5);
    static struct cairn_iovec iov[PIECES];
    size_t total = iov_cut(iov, PIECES, src);
    char path[] = "/tmp/cairn-test-fsv-XXXXXX";
    int tfd = mkstemp(path);
    assert_true(tfd >= 0);
    close(tfd);
    struct cairn_fs fs;
    cairn_fs_posix_init(&fs);
    int fd;
    assert_int_equal(fs.open(&fs, path, CAIRN_FS_RDWR, &fd), 0);
    assert_int_equal(fs.pwritev(&fs, fd, iov, PIECES, 16), 0);
    size_t n;
    assert_int_equal(fs.pread(&fs, fd, back, sizeof back, 0, &n), 0);
    assert_int_equal(n, 16 + total);
    assert_memory_equal(back + 16, src, total);
    fs.close(&fs, fd);
    unlink(path);
}

int test_fs_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fs_mem_basic),
        cmocka_unit_test(fs_mem_crash_loses_unsynced),
        cmocka_unit_test(fs_mem_crash_keeps_some_unlinks),
        cmocka_unit_test(fs_mem_tear),
        cmocka_unit_test(fs_mem_tear_deterministic),
        cmocka_unit_test(fs_mem_faults),
        cmocka_unit_test(fs_mem_pwritev),
        cmocka_unit_test(fs_posix_round_trip),
        cmocka_unit_test(fs_posix_pwritev),
    };
    return cmocka_run_group_tests_name("fs", tests, NULL, NULL);
}
