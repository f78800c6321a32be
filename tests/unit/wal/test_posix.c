/* The same WAL on the real file system, in a temporary directory under /tmp
 * that the test removes: round trip with rotation, a cut tail, a flipped
 * bit, and snapshot recovery. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests.h"

static const struct wal_metadata META = {0x77, 0x88};

struct px {
    struct cairn_fs fs;
    char root[64];
    char wal[128];
    char snap[128];
    struct wal_options o;
};

static void px_init(struct px *p)
{
    cairn_fs_posix_init(&p->fs);
    snprintf(p->root, sizeof p->root, "/tmp/cairn-test-wal-XXXXXX");
    assert_non_null(mkdtemp(p->root));
    snprintf(p->wal, sizeof p->wal, "%s/member/wal", p->root);
    snprintf(p->snap, sizeof p->snap, "%s/member/snap", p->root);
    memset(&p->o, 0, sizeof p->o);
    p->o.fs = &p->fs;
    p->o.dir = p->wal;
    p->o.segment_size_bytes = 16 * 1024;
}

static void rm_dir(struct cairn_fs *fs, const char *dir)
{
    struct cairn_fs_names names;
    if (fs->list(fs, dir, &names) != 0)
        return;
    for (size_t i = 0; i < names.count; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names.names[i]);
        struct cairn_fs_stat st;
        if (fs->stat(fs, path, &st) == 0 && st.is_dir)
            rm_dir(fs, path);
        else
            fs->unlink(fs, path);
    }
    cairn_fs_names_free(&names);
    rmdir(dir);
}

static void px_done(struct px *p)
{
    rm_dir(&p->fs, p->root);
    struct cairn_fs_stat st;
    assert_int_equal(p->fs.stat(&p->fs, p->root, &st), CAIRN_ENOTFOUND);
}

/* The last segment holding more than its metadata (the one after it, if
 * any, is prepared and empty). */
static void last_segment(struct px *p, char *out, size_t size)
{
    struct cairn_fs_names names;
    assert_int_equal(p->fs.list(&p->fs, p->wal, &names), 0);
    bool found = false;
    for (size_t i = names.count; i-- > 0 && !found;) {
        if (!strstr(names.names[i], ".wal"))
            continue;
        snprintf(out, size, "%s/%s", p->wal, names.names[i]);
        uint8_t *bytes;
        size_t n;
        tw_read(&p->fs, out, &bytes, &n);
        size_t end = n;
        while (end > 0 && bytes[end - 1] == 0)
            end--;
        found = end > 64;
        free(bytes);
    }
    assert_true(found);
    cairn_fs_names_free(&names);
}

static void posix_round_trip_and_damage(void **state)
{
    (void)state;
    struct px p;
    px_init(&p);
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&p.o, &META, &w, &m), 0);
    struct raft_hard_state hs = {2, 1, 0};
    for (raft_index i = 1; i <= 200; i += 10) {
        hs.commit = i - 1;
        assert_int_equal(tw_append(w, i, 10, 2, 250, &hs), 0);
    }
    assert_true(wal_segment_count(w) >= 3);
    assert_int_equal(wal_snapshot(w, 150, 2, &m), 0);
    struct raft_snapshot_meta s;
    memset(&s, 0, sizeof s);
    s.index = 150;
    s.term = 2;
    s.conf.n_voters = 1;
    s.conf.voters[0] = 0x77;
    assert_int_equal(wal_snap_save(&p.fs, p.snap, &s, &m), 0);
    assert_int_equal(tw_append(w, 201, 1, 2, 100, NULL), 0);
    wal_close(w);

    struct wal_recovery rec;
    assert_int_equal(wal_recover(&p.o, p.snap, &w, &rec, &m), 0);
    assert_int_equal(rec.snap.index, 150);
    assert_int_equal(rec.n_entries, 51);
    assert_true(tw_entry_ok(&rec.entries[0], 151, 2, 250));
    assert_true(tw_entry_ok(&rec.entries[50], 201, 2, 100));
    assert_int_equal(rec.hard_state.commit, 190);
    wal_recovery_free(&rec);
    wal_close(w);

    /* Cut the last record short, as a crash mid-write would. */
    char seg[512];
    last_segment(&p, seg, sizeof seg);
    uint8_t *bytes;
    size_t n;
    tw_read(&p.fs, seg, &bytes, &n);
    size_t end = n;
    while (end > 0 && bytes[end - 1] == 0)
        end--;
    uint8_t zeros[64] = {0};
    tw_write(&p.fs, seg, zeros, 40, end - 40);
    assert_int_equal(wal_open(&p.o, 150, 2, &w, &rec, &m), 0);
    assert_true(rec.truncated);
    assert_int_equal(rec.n_entries, 50);
    wal_recovery_free(&rec);
    wal_close(w);

    /* A flipped bit in an earlier record is refused, naming the place. */
    uint8_t b = bytes[100] ^ 4;
    tw_write(&p.fs, seg, &b, 1, 100);
    assert_int_equal(wal_open(&p.o, 150, 2, &w, &rec, &m), CAIRN_ECORRUPT);
    assert_non_null(strstr(m.text, strrchr(seg, '/') + 1));
    assert_non_null(strstr(m.text, "at offset"));
    free(bytes);
    px_done(&p);
}

/* The golden WAL in tests/unit/wal/testdata pins the on-disk format: it
 * was written by this code (CAIRN_WAL_GOLDEN_WRITE=<dir> writes it again)
 * and must stay readable, record for record. */
#define GOLDEN_SEGMENT_BYTES 4096

static void golden_build(struct cairn_fs *fs, const char *root)
{
    char wal[512], snap[512];
    snprintf(wal, sizeof wal, "%s/member/wal", root);
    snprintf(snap, sizeof snap, "%s/member/snap", root);
    struct wal_options o = {.fs = fs,
                            .dir = wal,
                            .segment_size_bytes = GOLDEN_SEGMENT_BYTES,
                            .no_zero_fill = true};
    struct cairn_errmsg m;
    struct wal *w;
    assert_int_equal(wal_create(&o, &META, &w, &m), 0);
    struct raft_hard_state hs = {1, 0x77, 2};
    assert_int_equal(tw_append(w, 1, 4, 1, 100, &hs), 0);
    assert_int_equal(wal_snapshot(w, 3, 1, &m), 0);
    struct raft_snapshot_meta s;
    memset(&s, 0, sizeof s);
    s.index = 3;
    s.term = 1;
    s.conf.n_voters = 1;
    s.conf.voters[0] = 0x77;
    assert_int_equal(wal_snap_save(fs, snap, &s, &m), 0);
    hs.term = 2;
    hs.commit = 4;
    assert_int_equal(tw_append(w, 4, 2, 2, 30, &hs), 0);
    wal_close(w);
}

static void copy_dir(struct cairn_fs *fs, const char *from, const char *to)
{
    assert_int_equal(fs->mkdir(fs, to), 0);
    struct cairn_fs_names names;
    assert_int_equal(fs->list(fs, from, &names), 0);
    for (size_t i = 0; i < names.count; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", from, names.names[i]);
        snprintf(b, sizeof b, "%s/%s", to, names.names[i]);
        struct cairn_fs_stat st;
        assert_int_equal(fs->stat(fs, a, &st), 0);
        if (st.is_dir) {
            copy_dir(fs, a, b);
            continue;
        }
        uint8_t *bytes;
        size_t n;
        tw_read(fs, a, &bytes, &n);
        int fd;
        assert_int_equal(fs->open(fs, b, CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd),
                         0);
        assert_int_equal(fs->pwrite(fs, fd, bytes, n, 0), 0);
        fs->close(fs, fd);
        free(bytes);
    }
    cairn_fs_names_free(&names);
}

static void posix_golden_format(void **state)
{
    (void)state;
    struct px p;
    px_init(&p);
    const char *gen = getenv("CAIRN_WAL_GOLDEN_WRITE");
    if (gen && *gen)
        golden_build(&p.fs, gen);
    /* Recovery reads a copy: it syncs, prepares and may cut. */
    char member[256];
    snprintf(member, sizeof member, "%s/member", p.root);
    copy_dir(&p.fs, CAIRN_WAL_TESTDATA "/golden/member", member);
    struct cairn_errmsg m;
    struct wal *w;
    struct wal_recovery rec;
    p.o.segment_size_bytes = GOLDEN_SEGMENT_BYTES;
    if (wal_recover(&p.o, p.snap, &w, &rec, &m) != 0)
        fail_msg("golden WAL: %s", m.text);
    assert_true(rec.has_snap);
    assert_int_equal(rec.snap.index, 3);
    assert_int_equal(rec.snap.term, 1);
    assert_int_equal(rec.snap.conf.n_voters, 1);
    assert_int_equal(rec.snap.conf.voters[0], 0x77);
    assert_int_equal(rec.meta.member_id, META.member_id);
    assert_int_equal(rec.meta.cluster_id, META.cluster_id);
    assert_int_equal(rec.hard_state.term, 2);
    assert_int_equal(rec.hard_state.vote, 0x77);
    assert_int_equal(rec.hard_state.commit, 4);
    assert_int_equal(rec.n_entries, 2);
    assert_true(tw_entry_ok(&rec.entries[0], 4, 2, 30));
    assert_true(tw_entry_ok(&rec.entries[1], 5, 2, 30));
    assert_false(rec.truncated);
    wal_recovery_free(&rec);
    wal_close(w);
    px_done(&p);
}

int test_wal_posix_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(posix_round_trip_and_damage),
        cmocka_unit_test(posix_golden_format),
    };
    return cmocka_run_group_tests_name("wal_posix", tests, NULL, NULL);
}
