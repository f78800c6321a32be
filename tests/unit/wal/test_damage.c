/* Damage: a tail cut at every byte offset of the last record recovers
 * exactly the complete records before it; a bit flipped anywhere else is
 * detected and named by file and offset, never silently dropped. */
#include <stdlib.h>
#include <string.h>

#include "tests.h"
#include "wal/format.h"

static const struct wal_metadata META = {1, 2};

/* Offsets and sizes of the records in a segment's bytes. */
static size_t records_of(const uint8_t *p, size_t n, uint64_t seq,
                         uint64_t *off, uint64_t *size, size_t cap)
{
    struct wal__scan s;
    wal__scan_init(&s, p, n, seq);
    size_t k = 0;
    struct wal__rec r;
    const char *why;
    while (k < cap && wal__scan_next(&s, &r, &why) == WAL_SCAN_RECORD) {
        off[k] = r.off;
        size[k] = r.size;
        k++;
    }
    return k;
}

static uint64_t seq_of(const char *path)
{
    uint64_t seq;
    raft_index first;
    assert_int_equal(wal__seg_parse(strrchr(path, '/') + 1, &seq, &first), 0);
    return seq;
}

static void wal_truncate_every_offset_of_last_record(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 10, 64 * 1024);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    assert_int_equal(tw_append(w, 1, 5, 1, 64, NULL), 0);
    assert_int_equal(tw_append(w, 6, 1, 1, 300, NULL), 0);
    wal_close(w);
    char path[256];
    tw_segment(&t.fs, 0, path, sizeof path);
    uint8_t *orig;
    size_t n;
    tw_read(&t.fs, path, &orig, &n);
    uint64_t off[64], size[64];
    size_t nrec = records_of(orig, n, seq_of(path), off, size, 64);
    assert_true(nrec >= 8); /* metadata, hard state, 6 entries */
    uint64_t x = off[nrec - 1], end = x + size[nrec - 1];
    uint8_t *zeros = calloc(1, n);
    int truncated_seen = 0;
    for (int variant = 0; variant < 2; variant++) {
        for (uint64_t k = x; k < end; k++) {
            tw_write(&t.fs, path, orig, n, 0);
            if (variant == 0) {
                /* the write stopped at k; preallocated space reads zero */
                tw_write(&t.fs, path, zeros, end - k, k);
            } else {
                int fd;
                assert_int_equal(t.fs.open(&t.fs, path, CAIRN_FS_RDWR, &fd), 0);
                assert_int_equal(t.fs.ftruncate(&t.fs, fd, k), 0);
                assert_int_equal(t.fs.fdatasync(&t.fs, fd), 0);
                t.fs.close(&t.fs, fd);
            }
            struct wal_recovery rec;
            int rv = wal_open(&t.o, 0, 0, &w, &rec, &m);
            if (rv != 0)
                fail_msg("cut at %llu (variant %d): %s", (unsigned long long)k,
                         variant, m.text);
            assert_int_equal(rec.n_entries, 5);
            for (size_t i = 0; i < 5; i++)
                assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, 64));
            truncated_seen += rec.truncated;
            wal_recovery_free(&rec);
            if (k % 97 == 0) {
                /* The log goes on from the cut, and stays readable. */
                assert_int_equal(tw_append(w, 6, 2, 2, 10, NULL), 0);
                wal_close(w);
                assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), 0);
                assert_int_equal(rec.n_entries, 7);
                assert_true(tw_entry_ok(&rec.entries[6], 7, 2, 10));
                assert_false(rec.truncated);
                wal_recovery_free(&rec);
            }
            wal_close(w);
        }
    }
    /* Every truncation was reported in the log. */
    assert_int_equal(t.warnings, truncated_seen);
    /* Every cut but the one at the record's first byte left a tail. */
    assert_true(truncated_seen >= (int)(2 * (end - x) - 2));
    free(zeros);
    free(orig);
    tw_close(&t);
}

static void wal_bit_flip_detected(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 11, 4096);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    struct raft_hard_state hs = {1, 1, 0};
    raft_index next = 1;
    for (int b = 0; b < 10; b++) {
        hs.commit = next - 1;
        assert_int_equal(tw_append(w, next, 5, 1, 100, &hs), 0);
        next += 5;
    }
    size_t total = next - 1;
    /* The last segment is a prepared, empty one: damage there harms
     * nothing; the one before holds the tail of the log. */
    assert_int_equal(wal_prepare(w, &m), 0);
    size_t nseg = wal_segment_count(w);
    assert_true(nseg >= 3);
    wal_close(w);
    size_t checks = 0;
    for (size_t sgi = 0; sgi < nseg; sgi++) {
        bool prepared = sgi == nseg - 1;
        bool last = sgi == nseg - 2;
        char path[256];
        tw_segment(&t.fs, sgi, path, sizeof path);
        uint8_t *orig;
        size_t n;
        tw_read(&t.fs, path, &orig, &n);
        uint64_t off[256], size[256];
        size_t nrec = records_of(orig, n, seq_of(path), off, size, 256);
        uint64_t end = off[nrec - 1] + size[nrec - 1];
        uint64_t last_rec = off[nrec - 1];
        /* Every byte of every record, and some of the space after. */
        for (uint64_t p = 0; p < end + 64 && p < n; p++) {
            uint8_t flipped = orig[p] ^ (uint8_t)(1u << (p * 7 % 8));
            tw_write(&t.fs, path, orig, n, 0);
            tw_write(&t.fs, path, &flipped, 1, p);
            struct wal_recovery rec;
            int rv = wal_open(&t.o, 0, 0, &w, &rec, &m);
            checks++;
            if (prepared) {
                assert_int_equal(nrec, 1);
                assert_int_equal(rv, 0);
                assert_int_equal(rec.n_entries, total);
                assert_true(rec.truncated);
            } else if (p >= end) {
                /* Past the records: harmless in the last segment (cut
                 * away as a torn tail), damage in an earlier one. */
                if (last) {
                    assert_int_equal(rv, 0);
                    assert_int_equal(rec.n_entries, total);
                    assert_true(rec.truncated);
                } else {
                    assert_int_equal(rv, CAIRN_ECORRUPT);
                }
            } else if (last && p >= last_rec) {
                /* The last record (the batch's hard state) cannot be told
                 * from a torn write: it is either refused or cut, never
                 * returned changed. */
                if (rv == 0) {
                    assert_int_equal(rec.n_entries, total);
                    assert_int_equal(rec.hard_state.commit, total - 10);
                    assert_true(rec.truncated);
                } else {
                    assert_int_equal(rv, CAIRN_ECORRUPT);
                }
            } else {
                if (rv == 0)
                    fail_msg("flip at %s:%llu not detected", path,
                             (unsigned long long)p);
                assert_int_equal(rv, CAIRN_ECORRUPT);
                assert_non_null(strstr(m.text, strrchr(path, '/') + 1));
                assert_non_null(strstr(m.text, "at offset"));
            }
            if (rv == 0) {
                for (size_t i = 0; i < rec.n_entries; i++)
                    assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, 100));
                wal_recovery_free(&rec);
                wal_close(w);
            }
        }
        tw_write(&t.fs, path, orig, n, 0);
        free(orig);
    }
    assert_true(checks > 4000);
    tw_close(&t);
}

/* A missing middle segment, or a segment from another member, is refused. */
static void wal_missing_or_foreign_segment(void **state)
{
    (void)state;
    struct tw t;
    tw_init(&t, 12, 4096);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    for (int b = 0; b < 30; b++)
        assert_int_equal(tw_append(w, (raft_index)b * 5 + 1, 5, 1, 100, NULL),
                         0);
    assert_true(wal_segment_count(w) >= 3);
    wal_close(w);
    char path[256];
    tw_segment(&t.fs, 1, path, sizeof path);
    uint8_t *orig;
    size_t n;
    tw_read(&t.fs, path, &orig, &n);
    assert_int_equal(t.fs.unlink(&t.fs, path), 0);
    struct wal_recovery rec;
    assert_int_equal(wal_open(&t.o, 0, 0, &w, &rec, &m), CAIRN_ECORRUPT);
    assert_non_null(strstr(m.text, "missing"));
    free(orig);
    tw_close(&t);
}

int test_wal_damage_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_truncate_every_offset_of_last_record),
        cmocka_unit_test(wal_bit_flip_detected),
        cmocka_unit_test(wal_missing_or_foreign_segment),
    };
    return cmocka_run_group_tests_name("wal_damage", tests, NULL, NULL);
}
