/* Damage: a tail cut at every byte offset of the last record recovers
 * exactly the complete records before it; a bit flipped anywhere else is
 * detected and named by file and offset, never silently dropped. */
#include <stdio.h>
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
    /* A payload of 7 + 297 bytes needs no padding: a cut anywhere in
     * the record loses some of its bytes. */
    assert_int_equal(tw_append(w, 6, 1, 1, 297, NULL), 0);
    wal_close(w);
    char path[256];
    tw_segment(&t.fs, 0, path, sizeof path);
    uint8_t *orig;
    size_t n;
    tw_read(&t.fs, path, &orig, &n);
    uint64_t off[64], size[64];
    size_t nrec = records_of(orig, n, seq_of(path), off, size, 64);
    /* metadata, hard state, a record of entries 1-5, one of entry 6 */
    assert_int_equal(nrec, 4);
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

/* Random damage of many kinds (bytes overwritten with noise, lengths set to
 * anything, cuts anywhere): recovery never crashes or reads out of bounds
 * (the ASan build checks), returns a clear error or a log whose indexes
 * follow each other, and what it returns is a prefix of what was written. */
static void wal_random_damage(void **state)
{
    (void)state;
    struct tw t;
    uint64_t seed = tw_seed(13);
    tw_init(&t, seed, 4096);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&t.o, &META, &w, &m), 0);
    for (raft_index i = 1; i <= 60; i += 3)
        assert_int_equal(tw_append(w, i, 3, 1, 90, NULL), 0);
    size_t nseg = wal_segment_count(w);
    wal_close(w);
    uint8_t *orig[64];
    size_t len[64];
    char paths[64][256];
    assert_true(nseg <= 64);
    for (size_t i = 0; i < nseg; i++) {
        tw_segment(&t.fs, i, paths[i], sizeof paths[i]);
        tw_read(&t.fs, paths[i], &orig[i], &len[i]);
    }
    int errors = 0, oks = 0;
    for (int k = 0; k < 1500; k++) {
        for (size_t i = 0; i < nseg; i++)
            tw_write(&t.fs, paths[i], orig[i], len[i], 0);
        size_t sg = (size_t)prng_below(&t.rng, nseg);
        uint64_t kind = prng_below(&t.rng, 4);
        uint64_t at = prng_below(&t.rng, 900) & ~(uint64_t)(kind == 1 ? 7 : 0);
        uint8_t noise[64];
        for (size_t b = 0; b < sizeof noise; b++)
            noise[b] = (uint8_t)prng_next(&t.rng);
        if (kind == 0) {
            tw_write(&t.fs, paths[sg], noise, 1 + prng_below(&t.rng, 64), at);
        } else if (kind == 1) {
            /* a header with any length, CRC and all */
            tw_write(&t.fs, paths[sg], noise, 8, at);
        } else if (kind == 2) {
            uint8_t big[4] = {0xff, 0xff, 0xff,
                              (uint8_t)prng_below(&t.rng, 256)};
            tw_write(&t.fs, paths[sg], big, 4, at | 4);
        } else {
            int fd;
            assert_int_equal(t.fs.open(&t.fs, paths[sg], CAIRN_FS_RDWR, &fd),
                             0);
            assert_int_equal(t.fs.ftruncate(&t.fs, fd, at), 0);
            t.fs.close(&t.fs, fd);
        }
        struct wal_recovery rec;
        int rv = wal_open(&t.o, 0, 0, &w, &rec, &m);
        if (rv != 0) {
            assert_true(rv == CAIRN_ECORRUPT || rv == CAIRN_EWALGAP);
            errors++;
            continue;
        }
        oks++;
        for (size_t i = 0; i < rec.n_entries; i++)
            assert_true(tw_entry_ok(&rec.entries[i], i + 1, 1, 90));
        wal_recovery_free(&rec);
        wal_close(w);
        /* Recovery may have cut a tail and prepared segments: start over
         * from the original files, without the new ones. */
        struct cairn_fs_names names;
        assert_int_equal(t.fs.list(&t.fs, TW_WAL_DIR, &names), 0);
        for (size_t i = 0; i < names.count; i++) {
            char pth[256];
            snprintf(pth, sizeof pth, "%s/%s", TW_WAL_DIR, names.names[i]);
            bool known = false;
            for (size_t j = 0; j < nseg; j++)
                known = known || strcmp(pth, paths[j]) == 0;
            if (!known)
                assert_int_equal(t.fs.unlink(&t.fs, pth), 0);
        }
        cairn_fs_names_free(&names);
    }
    assert_true(errors > 100 && oks > 100);
    for (size_t i = 0; i < nseg; i++)
        free(orig[i]);
    tw_close(&t);
}

/* One record with payload p framed at the start of a scratch segment
 * (static: *r borrows its bytes). */
static enum wal__scan_status scan_one(const uint8_t *p, size_t n,
                                      struct wal__rec *r, const char **why)
{
    struct buf b = BUF_INIT;
    uint32_t crc = wal__seg_seed(0);
    assert_int_equal(wal__rec_append(&b, &crc, p, n), 0);
    static uint8_t seg[128];
    memset(seg, 0, sizeof seg);
    assert_true(b.len <= sizeof seg);
    memcpy(seg, b.data, b.len);
    buf_free(&b);
    struct wal__scan s;
    wal__scan_init(&s, seg, sizeof seg, 0);
    return wal__scan_next(&s, r, why);
}

/* An entries record whose CRC holds but whose table does not describe its
 * data (a writer's bug, or damage the CRC missed) is refused, not read
 * past: a first index or count of 0, indexes past 2^64, a table cut
 * short, data shorter or longer than the table says. */
static void wal_entries_record_checked(void **state)
{
    (void)state;
    struct wal__rec r;
    const char *why;
    static const uint8_t good[] = {
        WAL_REC_ENTRIES, 7, 2, 0, 1, 3, 1, 2, 2, 'a', 'b', 'c', 'd', 'e'};
    assert_int_equal(scan_one(good, sizeof good, &r, &why), WAL_SCAN_RECORD);
    assert_int_equal(r.type, WAL_REC_ENTRIES);
    struct wal__ents_iter it;
    struct raft_entry e;
    wal__ents_begin(&it, &r);
    assert_true(wal__ents_next(&it, &r, &e));
    assert_int_equal(e.index, 7);
    assert_int_equal(e.term, 1);
    assert_int_equal(e.type, 0);
    assert_int_equal(e.len, 3);
    assert_memory_equal(e.data, "abc", 3);
    assert_true(wal__ents_next(&it, &r, &e));
    assert_int_equal(e.index, 8);
    assert_int_equal(e.term, 2);
    assert_int_equal(e.type, 1);
    assert_memory_equal(e.data, "de", 2);
    assert_false(wal__ents_next(&it, &r, &e));
    static const struct {
        uint8_t p[24];
        size_t n;
    } bad[] = {
        {{WAL_REC_ENTRIES, 1, 0}, 3},                    /* count 0 */
        {{WAL_REC_ENTRIES, 0, 1, 0, 1, 0}, 6},           /* index 0 */
        {{WAL_REC_ENTRIES, 1, 1, 0, 1, 3, 'a', 'b'}, 8}, /* short */
        {{WAL_REC_ENTRIES, 1, 1, 0, 1, 1, 'a', 'b'}, 8}, /* long */
        {{WAL_REC_ENTRIES, 1, 2, 0, 1, 1, 'a'}, 7},      /* table */
        {{WAL_REC_ENTRIES, 1, 1, 0, 1, 0x80}, 6},        /* varint */
        {{WAL_REC_ENTRIES, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0x01, 2, 0, 1, 0, 0, 1, 0},
         17}, /* indexes past 2^64 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (scan_one(bad[i].p, bad[i].n, &r, &why) != WAL_SCAN_BAD)
            fail_msg("bad entries record %zu accepted", i);
        assert_string_equal(why, "malformed record payload");
    }
}

int test_wal_damage_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wal_truncate_every_offset_of_last_record),
        cmocka_unit_test(wal_bit_flip_detected),
        cmocka_unit_test(wal_missing_or_foreign_segment),
        cmocka_unit_test(wal_random_damage),
        cmocka_unit_test(wal_entries_record_checked),
    };
    return cmocka_run_group_tests_name("wal_damage", tests, NULL, NULL);
}
