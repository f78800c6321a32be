/* Rotation across many segments, the prepared next segment, and release. */
#include <string.h>

#include "tests.h"

static const struct wal_metadata META = {5, 6};

static size_t count_names(struct cairn_fs *fs, const char *suffix)
{
    struct cairn_fs_names names;
    assert_int_equal(fs->list(fs, TW_WAL_DIR, &names), 0);
    size_t k = 0, sl = strlen(suffix);
    for (size_t i = 0; i < names.count; i++) {
        size_t l = strlen(names.names[i]);
        k += l > sl && strcmp(names.names[i] + l - sl, suffix) == 0;
    }
    cairn_fs_names_free(&names);
    return k;
}

static void wal_rotation_many_segments(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 20, 8192);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    /* The next segment is ready, named, before it is needed. */
    assert_int_equal(count_names(&t.fs, ".tmp"), 0);
    assert_int_equal(count_names(&t.fs, ".wal"), 2);
    assert_int_equal(wal_segment_count(w), 2);
    raft_index next = 1;
    struct raft_hard_state hs = {1, 2, 0};
    for (int b = 0; b < 200; b++) {
        size_t n = 1 + (size_t)b % 7;
        hs.commit = next - 1;
        assert_int_equal(tw_append(w, next, n, 1, 200, &hs), 0);
        next += n;
    }
    size_t nseg = wal_segment_count(w);
    assert_true(nseg > 20);
    assert_int_equal(count_names(&t.fs, ".wal"), nseg);
    wal_close(w);
    /* Segments, names and hard state survive a crash: rotation synced the
     * directory. */
    cairn_fs_mem_crash(&t.fs, false);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, next - 1);
    for (size_t i = 0; i < rec.n_entries; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, 200));
    assert_int_equal(rec.hard_state.commit, hs.commit);
    /* Opening prepares the next segment if none was. */
    size_t opened = wal_segment_count(w);
    assert_true(opened == nseg || opened == nseg + 1);
    /* Each segment is named by its seq and the first index it could hold,
     * and the recovered open segment keeps taking appends. */
    char first[256];
    tw_segment(&t.fs, 0, first, sizeof first);
    assert_non_null(strstr(first, "0000000000000000-0000000000000000.wal"));
    wal_recovery_free(&rec);
    assert_int_equal(tw_append(w, next, 3, 2, 200, NULL), 0);
    wal_close(w);
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, next + 2);
    wal_recovery_free(&rec);
    size_t steady = wal_segment_count(w);
    wal_close(w);
    /* Restarts (and crashes) without appends do not pile up empty
     * segments: the prepared one is found and kept. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
        assert_int_equal(rec.n_entries, next + 2);
        assert_int_equal(wal_segment_count(w), steady);
        wal_recovery_free(&rec);
        wal_close(w);
        cairn_fs_mem_crash(&t.fs, true);
    }
    assert_int_equal(count_names(&t.fs, ".wal"), steady);
    tw_close(&t);
}

static void wal_release_segments(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 21, 4096);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    for (raft_index i = 1; i <= 100; i += 4)
        assert_int_equal(tw_append(w, i, 4, 1, 150, NULL), 0);
    size_t before = wal_segment_count(w);
    assert_true(before >= 4);
    /* Releasing below the first segment's successor removes nothing. */
    assert_int_equal(wal_release(w, 0, &m), 0);
    assert_int_equal(wal_segment_count(w), before);
    assert_int_equal(wal_snapshot(w, 60, 1, &m), 0);
    assert_int_equal(wal_release(w, 60, &m), 0);
    size_t after = wal_segment_count(w);
    assert_true(after < before && after >= 2);
    assert_int_equal(count_names(&t.fs, ".wal"), after);
    /* Releasing everything keeps the open segment. */
    assert_int_equal(tw_append(w, 101, 4, 1, 150, NULL), 0);
    wal_close(w);
    cairn_fs_mem_crash(&t.fs, false);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 60, 1, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 44);
    for (size_t i = 0; i < rec.n_entries; i++)
        assert_true(tw_entry_ok(&rec.entries[i], 61 + i, 1, 150));
    wal_recovery_free(&rec);
    /* Releasing past the end keeps the open segment and the prepared one. */
    assert_int_equal(wal_release(w, 1000, &m), 0);
    assert_true(wal_segment_count(w) <= 2);
    assert_int_equal(count_names(&t.fs, ".wal"), wal_segment_count(w));
    wal_close(w);
    /* From the start the log no longer reaches back. */
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), CAIRN_EWALGAP);
    tw_close(&t);
}

/* A crash during a release, before its directory sync: the file system
 * keeps any subset of the unlinks (util/fs.h), and the WAL opens from the
 * snapshot whichever released segments remain. */
static void wal_release_crash_keeps_any_subset(void **state)
{
    (void)state;
    bool partial = false;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct tw t;
        tw_init(&t, seed, 1024);
        struct cairn_errmsg m;
        struct wal *w;
        assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
        for (raft_index i = 1; i <= 100; i += 4)
            assert_int_equal(tw_append(w, i, 4, 1, 150, NULL), 0);
        size_t before = count_names(&t.fs, ".wal");
        assert_int_equal(wal_snapshot(w, 60, 1, &m), 0);
        cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, 0, 1, CAIRN_EIO, false);
        assert_int_equal(wal_release(w, 60, &m), CAIRN_EIO);
        size_t released = before - count_names(&t.fs, ".wal");
        assert_true(released >= 2);
        wal_close(w);
        cairn_fs_mem_crash(&t.fs, false);
        size_t kept = count_names(&t.fs, ".wal");
        partial |= kept > before - released && kept < before;
        struct wal_recovery rec;
        assert_int_equal(wal_open(&t.o, 60, 1, &w, &rec, &m), 0);
        assert_int_equal(rec.n_entries, 40);
        for (size_t i = 0; i < rec.n_entries; i++)
            assert_true(tw_entry_ok(&rec.entries[i], 61 + i, 1, 150));
        wal_recovery_free(&rec);
        wal_close(w);
        tw_close(&t);
    }
    assert_true(partial);
}

/* Overwrites that cross segment boundaries: the newest record of an index
 * wins, and rotation names may go down. */
static void wal_overwrite_across_segments(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 22, 4096);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    for (raft_index i = 1; i <= 60; i += 5)
        assert_int_equal(tw_append(w, i, 5, 1, 150, NULL), 0);
    assert_int_equal(tw_append(w, 20, 30, 2, 150, NULL), 0);
    assert_int_equal(tw_append(w, 31, 5, 3, 150, NULL), 0);
    wal_close(w);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 35);
    for (size_t i = 0; i < 35; i++) {
        raft_index idx = i + 1;
        raft_term term = idx < 20 ? 1 : idx < 31 ? 2 : 3;
        assert_true(tw_entry_ok(&rec.entries[i], idx, term, 150));
    }
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

int test_wal_rotation_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_rotation_many_segments),
        cmocka_unit_test(wal_release_segments),
        cmocka_unit_test(wal_release_crash_keeps_any_subset),
        cmocka_unit_test(wal_overwrite_across_segments),
    };
    return cmocka_run_group_tests_name("wal_rotation", tests, NULL, NULL);
}
