/* Round trips: what was appended is what recovery returns, including hard
 * state, overwritten suffixes and a start from a snapshot. */
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static const struct wal_metadata META = {0x1111, 0x2222};

static void wal_create_open_round_trip(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 1, 64 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_false(wal_exists(&t.fs, TW_WAL_DIR));
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    assert_true(wal_exists(&t.fs, TW_WAL_DIR));
    struct raft_hard_state hs = {3, 7, 2};
    assert_int_equal(tw_append(w, 1, 5, 3, 100, &hs), 0);
    assert_int_equal(tw_append(w, 6, 1, 3, 0, NULL), 0);
    assert_int_equal(wal_append(w, NULL, NULL, 0, &m), 0); /* nothing */
    assert_int_equal(wal_last_index(w), 6);
    wal_close(w);
    assert_int_equal(cairn_fs_mem_open_handles(&t.fs), 0);
    struct wal *again;
    assert_int_equal(wal_create(&t.o, &META, &again, &m), CAIRN_EEXISTS);

    /* Everything synced survives a crash. */
    cairn_fs_mem_crash(&t.fs, false);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.meta.member_id, META.member_id);
    assert_int_equal(rec.meta.cluster_id, META.cluster_id);
    assert_int_equal(rec.hard_state.term, 3);
    assert_int_equal(rec.hard_state.vote, 7);
    assert_int_equal(rec.hard_state.commit, 2);
    assert_int_equal(rec.n_entries, 6);
    for (size_t i = 0; i < 5; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 3, 100));
    assert_true(tw_entry_ok(&rec.entries[5], 6, 3, 0));
    assert_false(rec.truncated);
    wal_recovery_free(&rec);

    /* Appends go on after recovery, and a conflicting suffix is replaced. */
    struct raft_hard_state hs2 = {4, 9, 4};
    assert_int_equal(tw_append(w, 5, 3, 4, 50, &hs2), 0);
    assert_int_equal(wal_last_index(w), 7);
    assert_int_equal(tw_append(w, 9, 1, 4, 50, NULL), CAIRN_EINVAL);
    wal_close(w);
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 7);
    for (size_t i = 0; i < 4; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 3, 100));
    for (size_t i = 4; i < 7; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 4, 50));
    assert_int_equal(rec.hard_state.term, 4);
    assert_int_equal(rec.hard_state.commit, 4);
    wal_recovery_free(&rec);
    wal_close(w);
    assert_int_equal(t.warnings, 0);
    tw_close(&t);
}

static void wal_open_from_snapshot(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 2, 64 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    assert_int_equal(tw_append(w, 1, 10, 1, 20, NULL), 0);
    assert_int_equal(wal_snapshot(w, 6, 1, &m), 0);
    assert_int_equal(tw_append(w, 11, 2, 2, 20, NULL), 0);
    wal_close(w);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 6, 1, &w, &rec, &m), 0);
    assert_int_equal(rec.snap.index, 6);
    assert_int_equal(rec.n_entries, 6);
    for (size_t i = 0; i < 4; i++)
        assert_true(tw_entry_ok(&rec.entries[i], 7 + i, 1, 20));
    assert_true(tw_entry_ok(&rec.entries[4], 11, 2, 20));
    wal_recovery_free(&rec);
    wal_close(w);
    /* A snapshot the log has no record of is refused. */
    assert_int_equal(wal_open(&t.o, 7, 1, &w, &rec, &m), CAIRN_EWALGAP);
    assert_non_null(strstr(m.text, "no record of snapshot 7"));
    assert_int_equal(wal_open(&t.o, 6, 2, &w, &rec, &m), CAIRN_EWALGAP);
    tw_close(&t);
}

/* A snapshot installed from a leader, past the local log or over a
 * conflicting entry, restarts the log after it; a crash before the leader's
 * entries arrive must not bring the stale suffix back. */
static void wal_installed_snapshot_resets_log(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 3, 64 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    assert_int_equal(tw_append(w, 1, 8, 1, 10, NULL), 0);
    /* entry 5 has term 1 here; the leader's snapshot says term 2 */
    assert_int_equal(wal_snapshot(w, 5, 2, &m), 0);
    wal_close(w);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 5, 2, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 0);
    assert_int_equal(wal_last_index(w), 5);
    wal_recovery_free(&rec);
    assert_int_equal(wal_snapshot(w, 20, 3, &m), 0);
    assert_int_equal(wal_last_index(w), 20);
    assert_int_equal(tw_append(w, 21, 2, 3, 10, NULL), 0);
    wal_close(w);
    assert_int_equal(wal_open(&t.o, 20, 3, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 2);
    assert_true(tw_entry_ok(&rec.entries[0], 21, 3, 10));
    wal_recovery_free(&rec);
    wal_close(w);
    /* From the older snapshot the log has a hole (6..20): refused. */
    assert_int_equal(wal_open(&t.o, 5, 2, &w, &rec, &m), CAIRN_EWALGAP);
    tw_close(&t);
}

static void wal_big_entries(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 4, 16 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    /* Larger than a segment: written whole into a fresh one. */
    assert_int_equal(tw_append(w, 1, 1, 1, 40000, NULL), 0);
    assert_int_equal(tw_append(w, 2, 3, 1, 7, NULL), 0);
    assert_int_equal(tw_append(w, 5, 1, 1, 40000, NULL), 0);
    wal_close(w);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 5);
    assert_true(tw_entry_ok(&rec.entries[0], 1, 1, 40000));
    assert_true(tw_entry_ok(&rec.entries[4], 5, 1, 40000));
    assert_true(wal_segment_count(w) >= 2);
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

/* A batch's entries share entries records: small ones checksummed with
 * their record, large ones (WAL_COPY_CRC_MIN and more) as they are copied,
 * side by side or between small ones; a batch past the 128 KiB a record
 * takes spans several records, written one at a time. All come back in
 * order with their hard state. */
static void wal_batch_records_mixed(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 5, 16 * 1024 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    static const size_t lens[] = {10, 2000, 3000, 5, 0, 1500, 1023, 1024};
    enum { N = sizeof lens / sizeof lens[0] };
    struct raft_entry ents[N];
    uint8_t *store[N];
    for (size_t i = 0; i < N; i++) {
        store[i] = malloc(lens[i] + 1);
        tw_entry(&ents[i], store[i], i + 1, 1, lens[i]);
    }
    struct raft_hard_state hs = {1, 1, 3};
    assert_int_equal(wal_append(w, &hs, ents, N, &m), 0);
    uint64_t before = wal_bytes_appended(w);
    /* 300 x 16,000 bytes: more than one record's worth. */
    hs.commit = N + 300;
    assert_int_equal(tw_append(w, N + 1, 300, 2, 16000, &hs), 0);
    assert_true(wal_bytes_appended(w) - before > 4u * 1024 * 1024);
    wal_close(w);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, N + 300);
    for (size_t i = 0; i < N; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, lens[i]));
    for (size_t i = N; i < N + 300; i++)
        assert_true(tw_entry_ok(&rec.entries[i], i + 1, 2, 16000));
    assert_int_equal(rec.hard_state.commit, N + 300);
    wal_recovery_free(&rec);
    wal_close(w);
    for (size_t i = 0; i < N; i++)
        free(store[i]);
    tw_close(&t);
}

/* An entry too large for a record is refused before anything is written
 * (its data is not even read), naming it; the WAL stays usable. */
static void wal_entry_too_large(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 6, 64 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    static const uint8_t small[8];
    struct raft_entry ents[2] = {
        {.index = 1, .term = 1, .data = small, .len = sizeof small},
        {.index = 2, .term = 1, .data = small, .len = WAL_RECORD_MAX},
    };
    assert_int_equal(wal_append(w, NULL, ents, 2, &m), CAIRN_ETOOBIG);
    assert_non_null(strstr(m.text, "entry 2 "));
    assert_int_equal(wal_fatal_error(w), 0);
    assert_int_equal(tw_append(w, 1, 3, 1, 100, NULL), 0);
    wal_close(w);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 3);
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

/* A hard state that only moves the commit index is written without
 * fdatasync (a later sync or rotation makes it durable); a change of term
 * or vote is synced; a crash in between loses at most that commit. */
static void wal_commit_alone_unsynced(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 3, 8192);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    struct raft_hard_state hs = {2, 1, 0};
    assert_int_equal(tw_append(w, 1, 5, 2, 100, &hs), 0);
    assert_int_equal(cairn_fs_mem_unsynced_bytes(&t.fs), 0);
    hs.commit = 3;
    assert_int_equal(wal_append_hard_state(w, &hs, &m), 0);
    assert_true(cairn_fs_mem_unsynced_bytes(&t.fs) > 0);
    wal_close(w);

    /* Power loss, tearing the unsynced record: the log and the synced hard
     * state are intact, the commit may be the older one. */
    cairn_fs_mem_crash(&t.fs, true);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, 5);
    assert_int_equal(rec.hard_state.term, 2);
    assert_int_equal(rec.hard_state.vote, 1);
    assert_true(rec.hard_state.commit == 0 || rec.hard_state.commit == 3);
    wal_recovery_free(&rec);

    /* The next synced append carries the unsynced commit with it. */
    hs.commit = 4;
    assert_int_equal(wal_append_hard_state(w, &hs, &m), 0);
    assert_int_equal(tw_append(w, 6, 1, 2, 100, NULL), 0);
    assert_int_equal(cairn_fs_mem_unsynced_bytes(&t.fs), 0);
    /* A new vote or term is synced at once. */
    struct raft_hard_state voted = {3, 2, 4};
    assert_int_equal(wal_append_hard_state(w, &voted, &m), 0);
    assert_int_equal(cairn_fs_mem_unsynced_bytes(&t.fs), 0);
    /* Rotation syncs an unsynced tail before leaving its segment, so only
     * the last segment can end torn. */
    size_t segs = wal_segment_count(w);
    raft_index next = 7;
    while (wal_segment_count(w) == segs) {
        voted.commit = next - 1;
        assert_int_equal(wal_append_hard_state(w, &voted, &m), 0);
        assert_true(cairn_fs_mem_unsynced_bytes(&t.fs) > 0);
        assert_int_equal(tw_append(w, next, 4, 3, 1000, NULL), 0);
        assert_int_equal(cairn_fs_mem_unsynced_bytes(&t.fs), 0);
        next += 4;
    }
    wal_close(w);
    cairn_fs_mem_crash(&t.fs, true);
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
    assert_int_equal(rec.n_entries, next - 1);
    assert_int_equal(rec.hard_state.term, 3);
    assert_int_equal(rec.hard_state.commit, voted.commit);
    wal_recovery_free(&rec);
    wal_close(w);
    tw_close(&t);
}

int test_wal_basic_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_create_open_round_trip),
        cmocka_unit_test(wal_open_from_snapshot),
        cmocka_unit_test(wal_installed_snapshot_resets_log),
        cmocka_unit_test(wal_big_entries),
        cmocka_unit_test(wal_batch_records_mixed),
        cmocka_unit_test(wal_entry_too_large),
        cmocka_unit_test(wal_commit_alone_unsynced),
    };
    return cmocka_run_group_tests_name("wal_basic", tests, NULL, NULL);
}
