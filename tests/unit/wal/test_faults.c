/* Injected faults: a clear error for each; a failed fdatasync or write stops
 * the WAL for good; running out of space preparing a segment does not; and
 * after a crash everything synced before is still there. */
#include <stdlib.h>
#include <string.h>

#include "tests.h"
#include "wal/format.h"

static const struct wal_metadata META = {7, 8};

static void check_log(struct tw *t, size_t n, raft_term term, size_t len)
{
    struct cairn_errmsg m;
    struct wal *w;
    struct wal_recovery rec;
    int rv = wal_open(&t->o, 0, 0, &w, &rec, &m);
    if (rv != 0)
        fail_msg("reopen: %s", m.text);
    assert_true(rec.n_entries >= n);
    for (size_t i = 0; i < n; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, term, len));
    wal_recovery_free(&rec);
    wal_close(w);
}

static void wal_sync_failure_is_fatal(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 30, 64 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    assert_int_equal(tw_append(w, 1, 10, 1, 50, NULL), 0);
    cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, 0, 1, CAIRN_EIO, false);
    assert_int_equal(tw_append_msg(w, 11, 1, 1, 50, NULL, &m), CAIRN_ESYNC);
    assert_non_null(strstr(m.text, "fdatasync"));
    /* The file system would sync again now; the WAL must not try. */
    uint64_t unsynced = cairn_fs_mem_unsynced_bytes(&t.fs);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tw_append(w, 11, 1, 1, 50, NULL), CAIRN_ESYNC);
        assert_int_equal(wal_snapshot(w, 5, 1, &m), CAIRN_ESYNC);
        assert_int_equal(wal_prepare(w, &m), CAIRN_ESYNC);
    }
    struct raft_hard_state hs = {9, 9, 9};
    assert_int_equal(wal_append(w, &hs, NULL, 0, &m), CAIRN_ESYNC);
    assert_non_null(strstr(m.text, "refused"));
    assert_int_equal(cairn_fs_mem_unsynced_bytes(&t.fs), unsynced);
    assert_int_equal(wal_fatal_error(w), CAIRN_ESYNC);
    wal_close(w);
    cairn_fs_mem_crash(&t.fs, false);
    check_log(&t, 10, 1, 50);
    tw_close(&t);
}

static void wal_write_failure_is_fatal(void **state)
{
    (void)state;
    /* Variants 3 to 5: entries whose data is checksummed as it is copied;
     * 6 to 8: a batch of several records (written a record at a time)
     * whose second write fails, after the first succeeded. */
    for (int variant = 0; variant < 9; variant++) {
        size_t len = variant < 3 ? 50 : WAL_COPY_CRC_MIN + 100;
        size_t n = variant < 6 ? 20 : 200;
        struct tw t;
        tw_init(&t, 31 + (uint64_t)variant,
                variant < 6 ? 64 * 1024 : 1024 * 1024);
        struct cairn_errmsg m;
        struct wal *w;
        assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
        assert_int_equal(tw_append(w, 1, 10, 1, len, NULL), 0);
        int code = variant % 3 == 1 ? CAIRN_ENOSPC : CAIRN_EIO;
        cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_WRITE, variant < 6 ? 0 : 1, 1,
                           code, variant % 3 == 2);
        assert_int_equal(tw_append_msg(w, 11, n, 1, len, NULL, &m), code);
        assert_non_null(strstr(m.text, "wal: write"));
        assert_non_null(strstr(m.text, cairn_strerror(code)));
        assert_int_equal(tw_append(w, 11, 1, 1, len, NULL), code);
        assert_int_equal(wal_fatal_error(w), code);
        wal_close(w);
        /* Without a crash: the short write's prefix may be read back (it
         * was never acknowledged); the acknowledged log is intact. */
        check_log(&t, 10, 1, len);
        cairn_fs_mem_crash(&t.fs, variant % 3 == 2);
        check_log(&t, 10, 1, len);
        tw_close(&t);
    }
}

static void wal_nospace_preparing_segment(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 34, 4096);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    raft_index next = 1;
    /* Fill until a rotation has happened, so the next one is unprepared
     * when space runs out. */
    size_t segs = wal_segment_count(w);
    while (wal_segment_count(w) == segs) {
        assert_int_equal(tw_append(w, next, 4, 1, 200, NULL), 0);
        next += 4;
    }
    cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_ALLOC, 0, 1000, CAIRN_ENOSPC, false);
    int rv = 0;
    for (int i = 0; i < 50 && rv == 0; i++) {
        rv = tw_append_msg(w, next, 4, 1, 200, NULL, &m);
        if (rv == 0)
            next += 4;
    }
    assert_int_equal(rv, CAIRN_ENOSPC);
    assert_non_null(strstr(m.text, "preallocate"));
    assert_non_null(strstr(m.text, "no space left on device"));
    /* Not fatal: the same call works once there is space. */
    assert_int_equal(wal_fatal_error(w), 0);
    assert_int_equal(tw_append(w, next, 4, 1, 200, NULL), CAIRN_ENOSPC);
    cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_ALLOC, -1, 0, 0, false);
    assert_int_equal(tw_append(w, next, 4, 1, 200, NULL), 0);
    next += 4;
    wal_close(w);
    cairn_fs_mem_crash(&t.fs, false);
    check_log(&t, next - 1, 1, 200);
    tw_close(&t);
}

/* A crash mid-append, with the last write torn at random sectors: every
 * acknowledged batch is there, and of the torn one only whole records
 * (here one: a batch's entries share a record up to 128 KiB, so the torn
 * batch is there whole or not at all, and both happen).
 * CAIRN_WAL_TEAR_SEEDS seeds (default 60) from CAIRN_TEST_SEED on. */
static void wal_crash_with_torn_write(void **state)
{
    (void)state;
    int kept = 0, lost = 0;
    const char *env = getenv("CAIRN_WAL_TEAR_SEEDS");
    uint64_t seeds = env && *env ? strtoull(env, NULL, 0) : 60;
    uint64_t base = tw_seed(1);
    for (uint64_t seed = base; seed < base + seeds; seed++) {
        struct tw t;
        tw_init(&t, 100 + seed, 64 * 1024);
        struct cairn_errmsg m;
        struct wal *w;
        assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
        /* Records from a few bytes to several sectors, batches of 1 to 20
         * records, some with a hard state after their entries. */
        static const size_t lens[] = {0, 20, 300, 1000, 5000};
        size_t len = lens[seed % 5];
        size_t n = 1 + (size_t)(seed / 5 % 20);
        struct raft_hard_state hs = {1, 1, 10};
        assert_int_equal(tw_append(w, 1, 10, 1, len, NULL), 0);
        /* The batch is written but its sync fails: never acknowledged. */
        cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, 0, 1, CAIRN_EIO, false);
        assert_int_equal(tw_append(w, 11, n, 1, len, seed % 2 ? &hs : NULL),
                         CAIRN_ESYNC);
        cairn_fs_mem_crash(&t.fs, true);
        wal_close(w);
        struct wal_recovery rec;
        int rv = wal_open(&t.o, 0, 0, &w, &rec, &m);
        if (rv != 0)
            fail_msg("seed %llu: %s", (unsigned long long)seed, m.text);
        assert_true(rec.n_entries == 10 || rec.n_entries == 10 + n);
        for (size_t i = 0; i < rec.n_entries; i++)
            assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, len));
        /* A surviving hard state comes with its whole batch. */
        if (rec.hard_state.commit == 10)
            assert_int_equal(rec.n_entries, 10 + n);
        kept += rec.n_entries == 10 + n;
        lost += rec.n_entries == 10;
        wal_recovery_free(&rec);
        /* And the log takes appends after the cut. */
        raft_index next = wal_last_index(w) + 1;
        assert_int_equal(tw_append(w, next, 1, 2, 10, NULL), 0);
        wal_close(w);
        assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
        assert_int_equal(rec.n_entries, next);
        assert_false(rec.truncated);
        wal_recovery_free(&rec);
        wal_close(w);
        tw_close(&t);
    }
    assert_true((kept > 0 && lost > 0) || seeds < 20);
}

/* A crash at any point of rotation leaves a readable log. */
static void wal_crash_during_rotation(void **state)
{
    (void)state;
    for (int countdown = 0; countdown < 6; countdown++) {
        struct tw t;
        tw_init(&t, 200 + (uint64_t)countdown, 4096);
        struct cairn_errmsg m;
        struct wal *w;
        assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
        raft_index next = 1;
        size_t segs = wal_segment_count(w);
        /* Sync number `countdown` from now fails, then the power goes. */
        cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, countdown, 1, CAIRN_EIO,
                           false);
        raft_index acked = 0;
        for (int i = 0; i < 40 && wal_segment_count(w) < segs + 2; i++) {
            if (tw_append(w, next, 4, 1, 200, NULL) != 0)
                break;
            acked = next + 3;
            next += 4;
        }
        cairn_fs_mem_crash(&t.fs, true);
        wal_close(w);
        struct wal_recovery rec;
        int rv = wal_open(&t.o, 0, 0, &w, &rec, &m);
        if (rv != 0)
            fail_msg("countdown %d: %s", countdown, m.text);
        assert_true(rec.n_entries >= acked);
        wal_recovery_free(&rec);
        wal_close(w);
        tw_close(&t);
    }
}

/* Every allocation in open, append, snapshot and release failing in turn:
 * a clean error (no leak: the ASan build checks), nothing lost, and the WAL
 * opens whole once memory is back. */
static void allocation_failures(size_t len)
{
    struct tw t;
    tw_init(&t, 300 + len, len < WAL_COPY_CRC_MIN ? 4096 : 32 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    for (raft_index i = 1; i <= 40; i += 4)
        assert_int_equal(tw_append(w, i, 4, 1, len, NULL), 0);
    wal_close(w);
    raft_index last = 40;
    /* How many allocations one clean cycle makes: the countdowns to try. */
    uint64_t before = cairn_mem_alloc_count();
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    wal_recovery_free(&rec);
    assert_int_equal(tw_append(w, last + 1, 4, 1, len, NULL), 0);
    last += 4;
    assert_int_equal(wal_release(w, 0, &m), 0);
    wal_close(w);
    int cycle = (int)(cairn_mem_alloc_count() - before);
    assert_true(cycle > 5);
    int failures = 0;
    for (int k = 0; k <= cycle; k++) {
        cairn_mem_fault_set(k, 1);
        int rv = wal_open(&t.o, 0, 0, &w, &rec, &m);
        if (rv != 0) {
            cairn_mem_fault_set(-1, 0);
            assert_int_equal(rv, CAIRN_ENOMEM);
            failures++;
            continue;
        }
        assert_int_equal(rec.n_entries, last);
        wal_recovery_free(&rec);
        rv = tw_append(w, last + 1, 4, 1, len, NULL);
        int rrv = wal_release(w, 0, &m);
        cairn_mem_fault_set(-1, 0);
        if (rv == 0) {
            last += 4;
        } else {
            failures++;
            /* Out of memory before writing is not fatal; in the file
             * system's own bookkeeping during a write or sync it is. */
            assert_true(rv == CAIRN_ENOMEM || wal_fatal_error(w) != 0);
        }
        assert_true(rrv == 0 || rrv == CAIRN_ENOMEM);
        wal_close(w);
    }
    assert_true(failures > 5);
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_true(rec.n_entries >= last);
    for (size_t i = 0; i < last; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, len));
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

/* Small entries are copied and checksummed with their record; large ones
 * checksummed as they are copied: both paths. */
static void wal_allocation_failures(void **state)
{
    (void)state;
    allocation_failures(200);
    allocation_failures(WAL_COPY_CRC_MIN + 500);
}

int test_wal_faults_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_sync_failure_is_fatal),
        cmocka_unit_test(wal_write_failure_is_fatal),
        cmocka_unit_test(wal_nospace_preparing_segment),
        cmocka_unit_test(wal_crash_with_torn_write),
        cmocka_unit_test(wal_crash_during_rotation),
        cmocka_unit_test(wal_allocation_failures),
    };
    return cmocka_run_group_tests_name("wal_faults", tests, NULL, NULL);
}
