/* Snapshot metadata files in member/snap, and the start-up path that picks
 * the snapshot to recover from (wal/wal.h; format in docs/wal.md). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal/format.h"
#include "wal/wal.h"

#define PATH_MAX_BYTES 4096
static const uint8_t SNAP_MAGIC[8] = {'C', 'A', 'I', 'R', 'N', 'S', 'N', 'P'};
#define SNAP_HEADER_BYTES 16u /* magic, crc, payload length */
#define SNAP_PAYLOAD_MAX (2 * CAIRN_VARINT_MAX + RAFT_CONF_STATE_ENCODED_MAX)
/* A bound on snapshot files considered at start-up. */
#define SNAP_FILES_MAX 4096u

static void snap_name(char *out, raft_term term, raft_index index)
{
    snprintf(out, WAL_NAME_MAX, "%016" PRIx64 "-%016" PRIx64 ".snap",
             (uint64_t)term, (uint64_t)index);
}

static bool snap_parse(const char *name, raft_term *term, raft_index *index)
{
    uint64_t t, i;
    if (strlen(name) != 16 + 1 + 16 + 5 || name[16] != '-' ||
        strcmp(name + 33, ".snap") != 0 || !wal__hex16(name, &t) ||
        !wal__hex16(name + 17, &i))
        return false;
    *term = t;
    *index = i;
    return true;
}

/* Creates dir if missing, and makes its name durable either way: an earlier
 * attempt may have created it and failed at the sync. */
static int mkdir_if_missing(struct cairn_fs *fs, const char *dir)
{
    struct cairn_fs_stat st;
    int rv = fs->stat(fs, dir, &st);
    if (rv == 0 && !st.is_dir)
        return CAIRN_EINVAL;
    if (rv == CAIRN_ENOTFOUND) {
        rv = fs->mkdir(fs, dir);
        if (rv == CAIRN_EEXISTS)
            rv = 0;
    }
    if (rv != 0)
        return rv;
    char parent[PATH_MAX_BYTES];
    if (strlen(dir) >= sizeof parent)
        return CAIRN_ETOOBIG;
    wal__parent(dir, parent);
    return fs->fsync_dir(fs, parent);
}

int wal_snap_save(struct cairn_fs *fs, const char *snap_dir,
                  const struct raft_snapshot_meta *meta, struct cairn_errmsg *m)
{
    uint8_t file[SNAP_HEADER_BYTES + SNAP_PAYLOAD_MAX];
    uint8_t *p = file + SNAP_HEADER_BYTES;
    size_t n = 0;
    n += varint_put(p + n, meta->index);
    n += varint_put(p + n, meta->term);
    n += raft_conf_state_encode(&meta->conf, p + n);
    memcpy(file, SNAP_MAGIC, sizeof SNAP_MAGIC);
    codec_put_u32(file + 12, (uint32_t)n);
    codec_put_u32(file + 8, crc32c(0, file + 12, 4 + n));
    char name[WAL_NAME_MAX], path[PATH_MAX_BYTES], tmp[PATH_MAX_BYTES];
    snap_name(name, meta->term, meta->index);
    int rv = wal__join(path, sizeof path, snap_dir, name);
    if (rv == 0 && snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        rv = CAIRN_ETOOBIG;
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: path in %s", snap_dir);
    rv = mkdir_if_missing(fs, snap_dir);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: create directory %s", snap_dir);
    int fd;
    rv = fs->unlink(fs, tmp);
    if (rv != 0 && rv != CAIRN_ENOTFOUND)
        return cairn_errmsg_code(m, rv, "snap: remove %s", tmp);
    rv =
        fs->open(fs, tmp, CAIRN_FS_RDWR | CAIRN_FS_CREATE | CAIRN_FS_EXCL, &fd);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: create %s", tmp);
    const char *what = "write";
    rv = fs->pwrite(fs, fd, file, SNAP_HEADER_BYTES + n, 0);
    if (rv == 0) {
        what = "fdatasync";
        rv = fs->fdatasync(fs, fd);
    }
    int crv = fs->close(fs, fd);
    if (rv == 0 && crv != 0) {
        what = "close";
        rv = crv;
    }
    if (rv == 0) {
        what = "rename";
        rv = fs->rename(fs, tmp, path);
    }
    if (rv != 0) {
        fs->unlink(fs, tmp);
        return cairn_errmsg_code(m, rv, "snap: %s %s", what, tmp);
    }
    rv = fs->fsync_dir(fs, snap_dir);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: fsync directory %s", snap_dir);
    return 0;
}

int wal_snap_read(struct cairn_fs *fs, const char *path,
                  struct raft_snapshot_meta *meta, struct cairn_errmsg *m)
{
    uint8_t file[SNAP_HEADER_BYTES + SNAP_PAYLOAD_MAX + 1];
    int fd;
    int rv = fs->open(fs, path, CAIRN_FS_RDONLY, &fd);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: open %s", path);
    size_t got = 0;
    rv = fs->pread(fs, fd, file, sizeof file, 0, &got);
    fs->close(fs, fd);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: read %s", path);
    const char *why = NULL;
    size_t n = 0;
    if (got < SNAP_HEADER_BYTES ||
        memcmp(file, SNAP_MAGIC, sizeof SNAP_MAGIC) != 0) {
        why = "not a snapshot file";
    } else {
        n = codec_get_u32(file + 12);
        if (n > SNAP_PAYLOAD_MAX || got != SNAP_HEADER_BYTES + n)
            why = "bad length";
        else if (crc32c(0, file + 12, 4 + n) != codec_get_u32(file + 8))
            why = "CRC mismatch";
    }
    if (!why) {
        struct codec_reader rd;
        codec_reader_init(&rd, file + SNAP_HEADER_BYTES, n);
        memset(meta, 0, sizeof *meta);
        meta->index = codec_read_varint(&rd);
        meta->term = codec_read_varint(&rd);
        size_t left = codec_reader_left(&rd);
        const uint8_t *conf = codec_read_bytes(&rd, left);
        if (rd.bad || raft_conf_state_decode(conf, left, &meta->conf) != 0)
            why = "malformed contents";
    }
    if (!why) {
        const char *base = strrchr(path, '/');
        raft_term t;
        raft_index i;
        base = base ? base + 1 : path;
        if (!snap_parse(base, &t, &i) || t != meta->term || i != meta->index)
            why = "contents disagree with the file name";
    }
    if (why)
        return cairn_errmsg_code(m, CAIRN_ECORRUPT, "snap: %s: %s", path, why);
    return 0;
}

struct snap_file {
    raft_term term;
    raft_index index;
    char name[WAL_NAME_MAX];
};

static int snap_cmp_newest_first(const void *a, const void *b)
{
    const struct snap_file *x = a, *y = b;
    if (x->index != y->index)
        return x->index > y->index ? -1 : 1;
    if (x->term != y->term)
        return x->term > y->term ? -1 : 1;
    return 0;
}

/* The snapshot files in dir, newest first; stale temporary files are
 * removed. A missing directory has none. */
static int snap_list(struct cairn_fs *fs, const char *dir,
                     struct snap_file **out, size_t *count,
                     struct cairn_errmsg *m)
{
    *out = NULL;
    *count = 0;
    struct cairn_fs_names names;
    int rv = fs->list(fs, dir, &names);
    if (rv == CAIRN_ENOTFOUND)
        return 0;
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "snap: list %s", dir);
    struct snap_file *files = NULL;
    size_t n = 0;
    if (names.count > 0) {
        files = cairn_calloc(names.count, sizeof *files);
        if (!files) {
            cairn_fs_names_free(&names);
            return cairn_errmsg_code(m, CAIRN_ENOMEM, "snap: list %s", dir);
        }
    }
    for (size_t i = 0; i < names.count && n < SNAP_FILES_MAX; i++) {
        const char *nm = names.names[i];
        if (snap_parse(nm, &files[n].term, &files[n].index)) {
            snprintf(files[n].name, sizeof files[n].name, "%s", nm);
            n++;
        } else if (wal__is_tmp(nm)) {
            char path[PATH_MAX_BYTES];
            if (wal__join(path, sizeof path, dir, nm) == 0)
                fs->unlink(fs, path); /* a save that never finished */
        }
    }
    cairn_fs_names_free(&names);
    if (n > 1)
        qsort(files, n, sizeof *files, snap_cmp_newest_first);
    *out = files;
    *count = n;
    return 0;
}

int wal_snap_purge(struct cairn_fs *fs, const char *snap_dir, size_t keep,
                   struct cairn_errmsg *m)
{
    struct snap_file *files;
    size_t n;
    int rv = snap_list(fs, snap_dir, &files, &n, m);
    if (rv != 0)
        return rv;
    bool any = false;
    for (size_t i = keep; i < n && rv == 0; i++) {
        char path[PATH_MAX_BYTES];
        rv = wal__join(path, sizeof path, snap_dir, files[i].name);
        if (rv == 0)
            rv = fs->unlink(fs, path);
        if (rv != 0)
            cairn_errmsg_code(m, rv, "snap: remove %s", files[i].name);
        any = true;
    }
    cairn_free(files);
    if (any) {
        int srv = fs->fsync_dir(fs, snap_dir);
        if (srv != 0 && rv == 0)
            rv =
                cairn_errmsg_code(m, srv, "snap: fsync directory %s", snap_dir);
    }
    return rv;
}

static int sync_file(struct cairn_fs *fs, const char *path)
{
    int fd;
    int rv = fs->open(fs, path, CAIRN_FS_RDONLY, &fd);
    if (rv != 0)
        return rv;
    rv = fs->fdatasync(fs, fd);
    fs->close(fs, fd);
    return rv;
}

int wal_recover(const struct wal_options *o, const char *snap_dir,
                struct wal **out, struct wal_recovery *rec,
                struct cairn_errmsg *m)
{
    struct snap_file *files;
    size_t n;
    int rv = snap_list(o->fs, snap_dir, &files, &n, m);
    if (rv != 0)
        return rv;
    bool skipped = false;
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX_BYTES];
        struct raft_snapshot_meta meta;
        memset(&meta, 0, sizeof meta);
        struct cairn_errmsg why;
        rv = wal__join(path, sizeof path, snap_dir, files[i].name);
        if (rv == 0)
            rv = wal_snap_read(o->fs, path, &meta, &why);
        if (rv == CAIRN_ECORRUPT) {
            cairn_errorf(o->log, "wal",
                         "%s; trying an older snapshot if the log covers "
                         "the gap",
                         why.text);
            skipped = true;
            continue;
        }
        if (rv != 0) {
            cairn_free(files);
            return cairn_errmsg_code(m, rv, "snap: read %s", path);
        }
        rv = wal_open(o, meta.index, meta.term, out, rec, &why);
        if (rv == 0) {
            /* The file may have been read back from the page cache after a
             * save whose sync failed: make it durable before it is used. */
            rv = sync_file(o->fs, path);
            if (rv == 0)
                rv = o->fs->fsync_dir(o->fs, snap_dir);
            if (rv != 0) {
                wal_close(*out);
                *out = NULL;
                wal_recovery_free(rec);
                cairn_free(files);
                return cairn_errmsg_code(m, CAIRN_ESYNC,
                                         "snap: sync %s on open: %s", path,
                                         cairn_strerror(rv));
            }
            rec->has_snap = true;
            rec->snap = meta;
            cairn_free(files);
            return 0;
        }
        if (rv != CAIRN_EWALGAP) {
            *m = why;
            cairn_free(files);
            return rv;
        }
        cairn_warnf(o->log, "wal", "snapshot %s cannot be used: %s",
                    files[i].name, why.text);
        skipped = true;
    }
    cairn_free(files);
    /* No snapshot file usable: the log alone, if it still starts at 1. */
    struct cairn_errmsg why;
    rv = wal_open(o, 0, 0, out, rec, &why);
    if (rv == CAIRN_EWALGAP && skipped)
        return cairn_errmsg_code(m, CAIRN_ENOSNAP,
                                 "wal: no usable snapshot in %s, and the log "
                                 "does not cover the gap (%s)",
                                 snap_dir, why.text);
    if (rv != 0)
        *m = why;
    return rv;
}
