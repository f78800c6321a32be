/* Snapshot metadata files: round trip, the newest valid one loaded, a
 * corrupt one reported and an older one used only while the log covers the
 * gap, otherwise a refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static const struct wal_metadata META = {9, 10};

static struct raft_snapshot_meta snap_meta(raft_index index, raft_term term)
{
    struct raft_snapshot_meta s;
    memset(&s, 0, sizeof s);
    s.index = index;
    s.term = term;
    s.conf.n_voters = 3;
    s.conf.voters[0] = 1;
    s.conf.voters[1] = 2;
    s.conf.voters[2] = 3;
    s.conf.n_learners = 1;
    s.conf.learners[0] = 4;
    return s;
}

static void snap_save_read_round_trip(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 40, 0);
    struct cairn_errmsg m;
    struct raft_snapshot_meta s = snap_meta(42, 7), got;
    assert_int_equal(t.fs.mkdir(&t.fs, "/data"), 0);
    assert_int_equal(t.fs.mkdir(&t.fs, "/data/member"), 0);
    assert_int_equal(t.fs.fsync_dir(&t.fs, "/"), 0);
    assert_int_equal(t.fs.fsync_dir(&t.fs, "/data"), 0);
    assert_int_equal(wal_snap_save(&t.fs, TW_SNAP_DIR, &s, &m), 0);
    cairn_fs_mem_crash(&t.fs, false); /* durable once saved */
    const char *path = TW_SNAP_DIR "/0000000000000007-000000000000002a.snap";
    assert_int_equal(wal_snap_read(&t.fs, path, &got, &m), 0);
    assert_int_equal(got.index, 42);
    assert_int_equal(got.term, 7);
    assert_true(raft_conf_state_equal(&got.conf, &s.conf));
    /* Every flipped byte is caught. */
    uint8_t *orig;
    size_t n;
    tw_read(&t.fs, path, &orig, &n);
    for (size_t p = 0; p < n; p++) {
        uint8_t b = orig[p] ^ 0x10;
        tw_write(&t.fs, path, &b, 1, p);
        assert_int_equal(wal_snap_read(&t.fs, path, &got, &m), CAIRN_ECORRUPT);
        assert_non_null(strstr(m.text, path));
        tw_write(&t.fs, path, &orig[p], 1, p);
    }
    free(orig);
    /* Purge keeps the newest. */
    for (raft_index i = 50; i < 56; i++) {
        struct raft_snapshot_meta x = snap_meta(i, 7);
        assert_int_equal(wal_snap_save(&t.fs, TW_SNAP_DIR, &x, &m), 0);
    }
    assert_int_equal(wal_snap_purge(&t.fs, TW_SNAP_DIR, 2, &m), 0);
    struct cairn_fs_names names;
    assert_int_equal(t.fs.list(&t.fs, TW_SNAP_DIR, &names), 0);
    assert_int_equal(names.count, 2);
    assert_string_equal(names.names[0],
                        "0000000000000007-0000000000000036.snap");
    assert_string_equal(names.names[1],
                        "0000000000000007-0000000000000037.snap");
    cairn_fs_names_free(&names);
    tw_close(&t);
}

/* A log of 100 entries with snapshots recorded at 30 and 60 (files saved
 * for both), segments released below `release`. */
static void build(struct tw *t, raft_index release)
{
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t->o, &META, &w, &m), 0);
    for (raft_index i = 1; i <= 100; i += 5) {
        assert_int_equal(tw_append(w, i, 5, 1, 100, NULL), 0);
        if (i + 4 == 30 || i + 4 == 60) {
            struct raft_snapshot_meta s = snap_meta(i + 4, 1);
            assert_int_equal(wal_snapshot(w, i + 4, 1, &m), 0);
            assert_int_equal(wal_snap_save(&t->fs, TW_SNAP_DIR, &s, &m), 0);
        }
    }
    if (release)
        assert_int_equal(wal_release(w, release, &m), 0);
    wal_close(w);
}

static void corrupt_snap(struct tw *t, raft_index index)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%016x-%016llx.snap", TW_SNAP_DIR, 1,
             (unsigned long long)index);
    uint8_t junk = 0x5a;
    tw_write(&t->fs, path, &junk, 1, 13);
}

static void snap_recover_newest(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 41, 4096);
    build(&t, 60);
    struct cairn_errmsg m;
    struct wal *w;
    struct wal_recovery rec;
    assert_int_equal(wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m), 0);
    assert_true(rec.has_snap);
    assert_int_equal(rec.snap.index, 60);
    assert_int_equal(rec.snap.conf.n_voters, 3);
    assert_int_equal(rec.n_entries, 40);
    assert_true(tw_entry_ok(&rec.entries[0], 61, 1, 100));
    wal_recovery_free(&rec);
    wal_close(w);
    assert_int_equal(t.warnings, 0);
    tw_close(&t);
}

static void snap_corrupt_newest_falls_back_when_covered(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 42, 4096);
    build(&t, 30);
    corrupt_snap(&t, 60);
    struct cairn_errmsg m;
    struct wal *w;
    struct wal_recovery rec;
    assert_int_equal(wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m), 0);
    assert_true(rec.has_snap);
    assert_int_equal(rec.snap.index, 30);
    assert_int_equal(rec.n_entries, 70);
    for (size_t i = 0; i < 70; i++)
        assert_true(tw_entry_ok(&rec.entries[i], 31 + i, 1, 100));
    assert_true(t.warnings >= 1); /* the corrupt file was reported */
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

static void snap_corrupt_newest_refused_when_gap(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 43, 1024); /* about a batch a segment: release is exact */
    build(&t, 60);
    corrupt_snap(&t, 60);
    struct cairn_errmsg m;
    struct wal *w;
    struct wal_recovery rec;
    assert_int_equal(wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m),
                     CAIRN_ENOSNAP);
    assert_non_null(strstr(m.text, "no usable snapshot"));
    /* With no snapshot file at all and a whole log, start from the log. */
    struct tw t2;
    tw_init(&t2, 44, 4096);
    build(&t2, 0);
    corrupt_snap(&t2, 60);
    corrupt_snap(&t2, 30);
    assert_int_equal(wal_recover(&t2.o, TW_SNAP_DIR, &w, &rec, &m), 0);
    assert_false(rec.has_snap);
    assert_int_equal(rec.n_entries, 100);
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t2);
    tw_close(&t);
}

/* A snapshot save cut by a crash before its rename is durable leaves the
 * previous state; the temporary file is cleaned up. */
static void snap_crash_during_save(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 45, 4096);
    build(&t, 0);
    struct cairn_errmsg m;
    struct raft_snapshot_meta s = snap_meta(90, 1);
    /* The directory sync after the rename fails (syncs: the snap
     * directory's parent, the file, then the directory): the name is not
     * durable. */
    cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, 2, 1, CAIRN_EIO, false);
    assert_int_equal(wal_snap_save(&t.fs, TW_SNAP_DIR, &s, &m), CAIRN_EIO);
    assert_non_null(strstr(m.text, "fsync directory"));
    cairn_fs_mem_crash(&t.fs, false);
    struct wal *w;
    struct wal_recovery rec;
    assert_int_equal(wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m), 0);
    assert_int_equal(rec.snap.index, 60);
    wal_recovery_free(&rec);
    wal_close(w);
    /* A snapshot file the log has no record of is not used. */
    assert_int_equal(wal_snap_save(&t.fs, TW_SNAP_DIR, &s, &m), 0);
    assert_int_equal(wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m), 0);
    assert_int_equal(rec.snap.index, 60);
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

/* A snapshot received from the leader (beyond the log, so the log restarts
 * after it), cut off before its file is durable: in etcd's order (the file
 * first, then the record) the member recovers from its older snapshot; in
 * the other order it cannot start at all, for the record has dropped the
 * log before it and no file describes the snapshot (found by cairn-sim
 * --members with fsync failures: the host recorded first). */
static void snap_file_before_record(void **state)
{
    (void)state;
    for (int file_first = 0; file_first < 2; file_first++) {
        struct tw t;
        tw_init(&t, 46, 4096);
        build(&t, 0);
        struct cairn_errmsg m;
        struct wal *w;
        struct wal_recovery rec;
        assert_int_equal(wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m), 0);
        wal_recovery_free(&rec);
        struct raft_snapshot_meta s = snap_meta(150, 2);
        /* The save's file sync fails (after its parent directory's, and
         * after the record's own): the file is not durable. */
        cairn_fs_mem_fault(&t.fs, CAIRN_FS_MEM_SYNC, file_first ? 1 : 2, 1,
                           CAIRN_EIO, false);
        if (!file_first)
            assert_int_equal(wal_snapshot(w, 150, 2, &m), 0);
        assert_int_equal(wal_snap_save(&t.fs, TW_SNAP_DIR, &s, &m), CAIRN_EIO);
        wal_close(w);
        cairn_fs_mem_crash(&t.fs, false);
        int rv = wal_recover(&t.o, TW_SNAP_DIR, &w, &rec, &m);
        if (file_first) {
            assert_int_equal(rv, 0);
            assert_int_equal(rec.snap.index, 60);
            assert_int_equal(rec.n_entries, 40);
            wal_close(w);
        } else {
            assert_int_equal(rv, CAIRN_ENOSNAP);
        }
        wal_recovery_free(&rec);
        tw_close(&t);
    }
}

int test_wal_snap_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snap_save_read_round_trip),
        cmocka_unit_test(snap_recover_newest),
        cmocka_unit_test(snap_corrupt_newest_falls_back_when_covered),
        cmocka_unit_test(snap_corrupt_newest_refused_when_gap),
        cmocka_unit_test(snap_crash_during_save),
        cmocka_unit_test(snap_file_before_record),
    };
    return cmocka_run_group_tests_name("wal_snap", tests, NULL, NULL);
}
