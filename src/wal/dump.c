/* cairn-wal-dump: prints WAL segments record by record, and snapshot
 * metadata files, for looking at a member's data by hand (docs/wal.md).
 *   cairn-wal-dump <member/wal directory | segment file | .snap file>... */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "wal/format.h"
#include "wal/wal.h"

static const char *type_name(uint8_t t)
{
    switch (t) {
    case WAL_REC_METADATA:
        return "metadata";
    case WAL_REC_HARD_STATE:
        return "hardstate";
    case WAL_REC_ENTRIES:
        return "entries";
    case WAL_REC_SNAPSHOT:
        return "snapshot";
    default:
        return "unknown";
    }
}

static int dump_segment(struct cairn_fs *fs, const char *path, bool last)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    uint64_t seq;
    raft_index first;
    if (wal__seg_parse(base, &seq, &first) != 0) {
        fprintf(stderr, "%s: not a segment name (<seq>-<index>.wal)\n", path);
        return 1;
    }
    int fd = -1;
    int rv = fs->open(fs, path, CAIRN_FS_RDONLY, &fd);
    bool opened = rv == 0;
    uint64_t size = 0;
    if (rv == 0)
        rv = fs->fsize(fs, fd, &size);
    struct buf b = BUF_INIT;
    uint8_t *p = NULL;
    if (rv == 0 && size > 0 && !(p = buf_extend(&b, (size_t)size)))
        rv = CAIRN_ENOMEM;
    size_t got = 0;
    if (rv == 0 && size > 0)
        rv = fs->pread(fs, fd, p, (size_t)size, 0, &got);
    if (opened)
        fs->close(fs, fd);
    if (rv != 0) {
        fprintf(stderr, "%s: %s\n", path, cairn_strerror(rv));
        buf_free(&b);
        return 1;
    }
    printf("segment %s seq=%" PRIu64 " first_index=%" PRIu64 " size=%" PRIu64
           "\n",
           base, seq, (uint64_t)first, size);
    struct wal__scan s;
    wal__scan_init(&s, b.data, got, seq);
    int status = 0;
    /* Bounded: each turn consumes at least one 8-byte header. */
    for (;;) {
        struct wal__rec r;
        const char *why;
        enum wal__scan_status st = wal__scan_next(&s, &r, &why);
        if (st == WAL_SCAN_END && wal__all_zero(s.p, s.off, s.size)) {
            printf("  end at offset %" PRIu64 " (%" PRIu64
                   " preallocated bytes follow)\n",
                   s.off, s.size - s.off);
            break;
        }
        if (st != WAL_SCAN_RECORD) {
            if (st == WAL_SCAN_END)
                why = "bytes after the last record";
            bool torn = wal__tail_is_torn(&s);
            printf("  BAD at offset %" PRIu64 ": %s (%s)\n", s.off, why,
                   torn && last ? "torn tail: recovery truncates here"
                   : torn       ? "damage: not the last segment"
                                : "damage: later records follow");
            status = torn && last ? 0 : 2;
            break;
        }
        printf("  %08" PRIx64 " size=%-6" PRIu64 " crc=%08" PRIx32 " %-9s",
               r.off, r.size, r.crc, type_name(r.type));
        switch (r.type) {
        case WAL_REC_METADATA:
            printf(" member=%" PRIx64 " cluster=%" PRIx64 " seq=%" PRIu64,
                   r.u.meta.member_id, r.u.meta.cluster_id, r.seq);
            break;
        case WAL_REC_HARD_STATE:
            printf(" term=%" PRIu64 " vote=%" PRIx64 " commit=%" PRIu64,
                   r.u.hs.term, r.u.hs.vote, r.u.hs.commit);
            break;
        case WAL_REC_ENTRIES: {
            printf(" first=%" PRIu64 " count=%" PRIu64, r.u.ents.first,
                   r.u.ents.count);
            struct wal__ents_iter it;
            struct raft_entry e;
            wal__ents_begin(&it, &r);
            /* Bounded by the record's count. */
            while (wal__ents_next(&it, &r, &e))
                printf("\n    entry index=%" PRIu64 " term=%" PRIu64
                       " type=%u bytes=%zu",
                       e.index, e.term, e.type, e.len);
            break;
        }
        case WAL_REC_SNAPSHOT:
            printf(" index=%" PRIu64 " term=%" PRIu64, r.u.snap.index,
                   r.u.snap.term);
            break;
        default:
            break;
        }
        printf("\n");
    }
    buf_free(&b);
    return status;
}

static int dump_snap(struct cairn_fs *fs, const char *path)
{
    struct raft_snapshot_meta meta;
    struct cairn_errmsg m;
    int rv = wal_snap_read(fs, path, &meta, &m);
    if (rv != 0) {
        printf("snapshot %s: BAD: %s\n", path, m.text);
        return 2;
    }
    printf("snapshot %s index=%" PRIu64 " term=%" PRIu64 " voters=", path,
           meta.index, meta.term);
    for (uint32_t i = 0; i < meta.conf.n_voters; i++)
        printf("%s%" PRIx64, i ? "," : "", meta.conf.voters[i]);
    printf(" learners=");
    for (uint32_t i = 0; i < meta.conf.n_learners; i++)
        printf("%s%" PRIx64, i ? "," : "", meta.conf.learners[i]);
    if (meta.conf.n_voters_outgoing) {
        printf(" voters_outgoing=");
        for (uint32_t i = 0; i < meta.conf.n_voters_outgoing; i++)
            printf("%s%" PRIx64, i ? "," : "", meta.conf.voters_outgoing[i]);
    }
    printf("\n");
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int dump_path(struct cairn_fs *fs, const char *path)
{
    struct cairn_fs_stat st;
    int rv = fs->stat(fs, path, &st);
    if (rv != 0) {
        fprintf(stderr, "%s: %s\n", path, cairn_strerror(rv));
        return 1;
    }
    if (!st.is_dir) {
        if (ends_with(path, ".snap"))
            return dump_snap(fs, path);
        return dump_segment(fs, path, true);
    }
    struct cairn_fs_names names;
    rv = fs->list(fs, path, &names);
    if (rv != 0) {
        fprintf(stderr, "%s: %s\n", path, cairn_strerror(rv));
        return 1;
    }
    size_t last = names.count;
    for (size_t i = 0; i < names.count; i++)
        if (ends_with(names.names[i], ".wal"))
            last = i;
    int status = 0;
    for (size_t i = 0; i < names.count; i++) {
        char full[4096];
        if (wal__join(full, sizeof full, path, names.names[i]) != 0)
            continue;
        int s = 0;
        if (ends_with(names.names[i], ".wal"))
            s = dump_segment(fs, full, i == last);
        else if (ends_with(names.names[i], ".snap"))
            s = dump_snap(fs, full);
        else
            printf("skipping %s\n", full);
        if (s > status)
            status = s;
    }
    cairn_fs_names_free(&names);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "usage: %s <wal directory | segment | snapshot file>...\n"
                "exit status: 0 all readable (a torn tail of the last "
                "segment is shown, not an error), 1 usage or I/O error, 2 "
                "damage\n",
                argv[0]);
        return 1;
    }
    struct cairn_fs fs;
    cairn_fs_posix_init(&fs);
    int status = 0;
    for (int i = 1; i < argc; i++) {
        int s = dump_path(&fs, argv[i]);
        if (s > status)
            status = s;
    }
    return status;
}
