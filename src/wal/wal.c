/* The write-ahead log: segment preparation and rotation, group-committed
 * appends, recovery with torn-tail truncation, and release (wal/wal.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "wal/format.h"
#include "wal/wal.h"

#define PATH_MAX_BYTES 4096
/* A bound on segments in one directory: at 64 MiB each, 16 TiB of log. */
#define WAL_SEGMENTS_MAX (1u << 18)

struct wal_seg {
    uint64_t seq;
    raft_index first;
};

struct wal {
    struct cairn_fs *fs;
    char *dir;
    const struct cairn_log *log;
    uint64_t seg_size;
    bool zero_fill;
    struct cairn_hist *fsync_hist; /* may be NULL */
    struct wal_metadata meta;
    /* Segments on disk in seq order: segs[cur] is open for appending; a
     * prepared one, if any, is segs[cur + 1], the last. */
    struct wal_seg *segs;
    size_t n_segs, cap_segs;
    size_t cur;
    int fd;
    uint64_t off;      /* end of the records in the open segment */
    uint64_t head_end; /* end of its head records (metadata, hard state) */
    /* The open segment was just rotated to: the next batch starts with the
     * hard state (head_len bytes of it once encoded). */
    bool need_head;
    size_t head_len;
    uint32_t crc; /* chain value after its last record */
    /* The prepared next segment, if next_fd >= 0. */
    int next_fd;
    uint64_t next_off;
    uint32_t next_crc;
    raft_index last_index;
    struct raft_hard_state hs;
    /* The open segment ends in records written without fdatasync (commit
     * moves): synced before the segment is left. */
    bool unsynced;
    int fatal; /* sticky: 0, CAIRN_ESYNC or a write error */
    /* The batch being framed: the bytes after the `sent` already written
     * (a large batch goes out a record at a time). */
    struct buf batch;
    uint64_t sent;
    uint64_t bytes_appended;
};

/* --- small helpers --- */

static int seg_path(const struct wal *w, char *out, uint64_t seq,
                    raft_index first)
{
    char name[WAL_NAME_MAX];
    wal__seg_name(name, seq, first);
    return wal__join(out, PATH_MAX_BYTES, w->dir, name);
}

static int tmp_path(const struct wal *w, char *out, uint64_t seq)
{
    char name[WAL_NAME_MAX];
    wal__tmp_name(name, seq);
    return wal__join(out, PATH_MAX_BYTES, w->dir, name);
}

static void batch_reset(struct wal *w)
{
    buf_reset(&w->batch);
    w->sent = 0;
}

static uint64_t batch_len(const struct wal *w)
{
    return w->sent + w->batch.len;
}

/* Writes what the batch buffer holds, the batch starting at off. */
static int batch_write(struct wal *w, int fd, uint64_t off)
{
    if (w->batch.len == 0)
        return 0;
    int rv =
        w->fs->pwrite(w->fs, fd, w->batch.data, w->batch.len, off + w->sent);
    if (rv == 0) {
        w->sent += w->batch.len;
        buf_reset(&w->batch);
    }
    return rv;
}

static int segs_push(struct wal *w, uint64_t seq, raft_index first)
{
    if (w->n_segs == w->cap_segs) {
        if (w->cap_segs >= WAL_SEGMENTS_MAX)
            return CAIRN_ETOOBIG;
        size_t ncap = w->cap_segs ? w->cap_segs * 2 : 8;
        struct wal_seg *ns = cairn_realloc(w->segs, ncap * sizeof *ns);
        if (!ns)
            return CAIRN_ENOMEM;
        w->segs = ns;
        w->cap_segs = ncap;
    }
    w->segs[w->n_segs].seq = seq;
    w->segs[w->n_segs].first = first;
    w->n_segs++;
    return 0;
}

static struct wal *wal_alloc(const struct wal_options *o)
{
    struct wal *w = cairn_calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->dir = cairn_strdup(o->dir);
    if (!w->dir) {
        cairn_free(w);
        return NULL;
    }
    size_t n = strlen(w->dir);
    while (n > 1 && w->dir[n - 1] == '/')
        w->dir[--n] = '\0';
    w->fs = o->fs;
    w->log = o->log;
    w->seg_size = o->segment_size_bytes ? o->segment_size_bytes
                                        : WAL_SEGMENT_SIZE_DEFAULT;
    w->zero_fill = !o->no_zero_fill;
    w->fsync_hist = o->fsync_hist;
    w->fd = -1;
    w->next_fd = -1;
    buf_init(&w->batch);
    return w;
}

void wal_close(struct wal *w)
{
    if (!w)
        return;
    if (w->fd >= 0)
        w->fs->close(w->fs, w->fd);
    if (w->next_fd >= 0)
        w->fs->close(w->fs, w->next_fd);
    buf_free(&w->batch);
    cairn_free(w->segs);
    cairn_free(w->dir);
    cairn_free(w);
}

raft_index wal_last_index(const struct wal *w)
{
    return w->last_index;
}

int wal_fatal_error(const struct wal *w)
{
    return w->fatal;
}

uint64_t wal_bytes_appended(const struct wal *w)
{
    return w->bytes_appended;
}

size_t wal_segment_count(const struct wal *w)
{
    return w->n_segs;
}

void wal_recovery_free(struct wal_recovery *rec)
{
    cairn_free(rec->entries);
    cairn_free(rec->arena);
    memset(rec, 0, sizeof *rec);
}

/* Creates dir and any missing parents, each made durable in its parent. */
static int mkdir_all(struct cairn_fs *fs, const char *dir,
                     struct cairn_errmsg *m)
{
    char path[PATH_MAX_BYTES];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return cairn_errmsg_code(m, CAIRN_EINVAL, "directory %s", dir);
    memcpy(path, dir, n + 1);
    /* Bounded by the path's length: one component per turn. */
    for (size_t i = 1; i <= n; i++) {
        if ((path[i] != '/' && path[i] != '\0') || path[i - 1] == '/')
            continue;
        char saved = path[i];
        path[i] = '\0';
        struct cairn_fs_stat st;
        int rv = fs->stat(fs, path, &st);
        if (rv == CAIRN_ENOTFOUND) {
            rv = fs->mkdir(fs, path);
            if (rv != 0 && rv != CAIRN_EEXISTS)
                return cairn_errmsg_code(m, rv, "mkdir %s", path);
        } else if (rv != 0) {
            return cairn_errmsg_code(m, rv, "stat %s", path);
        } else if (!st.is_dir) {
            return cairn_errmsg_code(m, CAIRN_EINVAL, "%s is not a directory",
                                     path);
        }
        /* Existing or new, its name is made durable: an earlier attempt
         * may have created it and failed at the sync. */
        char parent[PATH_MAX_BYTES];
        wal__parent(path, parent);
        rv = fs->fsync_dir(fs, parent);
        if (rv != 0)
            return cairn_errmsg_code(m, rv, "fsync directory %s", parent);
        path[i] = saved;
    }
    return 0;
}

/* --- preparing and rotating segments --- */

/* Writes zeros over [from, to) of fd, so that later writes there overwrite
 * written blocks (no extent conversion at fdatasync time). */
static int zero_fill(struct wal *w, int fd, uint64_t from, uint64_t to)
{
    static const uint8_t zeros[64 * 1024];
    /* Bounded by (to - from) / sizeof zeros turns. */
    while (from < to) {
        uint64_t n = to - from < sizeof zeros ? to - from : sizeof zeros;
        int rv = w->fs->pwrite(w->fs, fd, zeros, (size_t)n, from);
        if (rv != 0)
            return rv;
        from += n;
    }
    return 0;
}

int wal_prepare(struct wal *w, struct cairn_errmsg *m)
{
    if (w->fatal)
        return cairn_errmsg_code(m, w->fatal, "wal: prepare segment");
    /* Nothing to do with one prepared, or while the open segment holds no
     * records yet: it is what a recovery would take for the prepared one,
     * and two empty segments look like damage. */
    if (w->next_fd >= 0 || (w->fd >= 0 && w->need_head))
        return 0;
    /* Named now, after the index the log would go on from: every record a
     * recovery from index i needs is written after the segment before the
     * last one named <= i became the open one (docs/wal.md). */
    uint64_t seq = w->n_segs ? w->segs[w->n_segs - 1].seq + 1 : 0;
    raft_index first = w->n_segs ? w->last_index + 1 : 0;
    char path[PATH_MAX_BYTES], final[PATH_MAX_BYTES];
    int rv = tmp_path(w, path, seq);
    if (rv == 0)
        rv = seg_path(w, final, seq, first);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: segment path in %s", w->dir);
    rv = segs_push(w, seq, first);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: prepare %s", final);
    w->n_segs--; /* counted once it has its name */
    /* A leftover of an earlier failed attempt is rebuilt from scratch. */
    rv = w->fs->unlink(w->fs, path);
    if (rv != 0 && rv != CAIRN_ENOTFOUND)
        return cairn_errmsg_code(m, rv, "wal: remove %s", path);
    int fd;
    rv = w->fs->open(w->fs, path, CAIRN_FS_RDWR | CAIRN_FS_CREATE, &fd);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: create %s", path);
    const char *what = "preallocate";
    rv = w->fs->fallocate(w->fs, fd, 0, w->seg_size);
    if (rv == 0 && w->zero_fill) {
        what = "zero-fill";
        rv = zero_fill(w, fd, 0, w->seg_size);
    }
    uint8_t head[WAL_HEAD_MAX];
    uint32_t crc = wal__seg_seed(seq);
    if (rv == 0) {
        what = "write";
        batch_reset(w);
        rv = wal__rec_append(&w->batch, &crc, head,
                             wal__head_metadata(head, &w->meta, seq));
        if (rv == 0)
            rv = w->fs->pwrite(w->fs, fd, w->batch.data, w->batch.len, 0);
    }
    if (rv == 0) {
        what = "fdatasync";
        rv = w->fs->fdatasync(w->fs, fd);
    }
    if (rv == 0) {
        what = "rename";
        rv = w->fs->rename(w->fs, path, final);
    }
    if (rv != 0) {
        /* Nothing refers to the file yet: drop it, the WAL is unharmed. */
        w->fs->close(w->fs, fd);
        w->fs->unlink(w->fs, path);
        return cairn_errmsg_code(m, rv, "wal: %s %s", what, path);
    }
    w->n_segs++;
    rv = w->fs->fsync_dir(w->fs, w->dir);
    if (rv != 0) {
        /* The name may or may not be durable, and a failed sync is never
         * retried: the WAL stops here. */
        w->fs->close(w->fs, fd);
        w->fatal = CAIRN_ESYNC;
        return cairn_errmsg_code(m, CAIRN_ESYNC,
                                 "wal: fsync directory %s after creating %s: "
                                 "%s",
                                 w->dir, final, cairn_strerror(rv));
    }
    w->next_fd = fd;
    w->next_off = w->batch.len;
    w->next_crc = crc;
    return 0;
}

/* Makes what unsynced writes left in the open segment durable. */
static int sync_open(struct wal *w, struct cairn_errmsg *m)
{
    if (!w->unsynced)
        return 0;
    int rv = w->fs->fdatasync(w->fs, w->fd);
    if (rv != 0) {
        char name[WAL_NAME_MAX];
        const struct wal_seg *s = &w->segs[w->cur];
        wal__seg_name(name, s->seq, s->first);
        w->fatal = CAIRN_ESYNC;
        return cairn_errmsg_code(m, CAIRN_ESYNC, "wal: fdatasync %s: %s", name,
                                 cairn_strerror(rv));
    }
    w->unsynced = false;
    return 0;
}

/* Makes the prepared segment the open one: no file-system work but closing
 * the old one, as the prepared segment already has its name. Returns 0, a
 * non-fatal error (nothing changed), or sets w->fatal. */
static int rotate(struct wal *w, struct cairn_errmsg *m)
{
    int rv = wal_prepare(w, m);
    if (rv != 0)
        return rv;
    /* Only the last segment may end torn: whatever an unsynced write left
     * in this one becomes durable before a later one is written. */
    if ((rv = sync_open(w, m)) != 0)
        return rv;
    if (w->fd >= 0)
        w->fs->close(w->fs, w->fd);
    w->cur = w->n_segs - 1;
    w->fd = w->next_fd;
    w->off = w->next_off;
    w->head_end = w->next_off;
    w->need_head = true;
    w->crc = w->next_crc;
    w->next_fd = -1;
    cairn_debugf(w->log, "wal", "rotated to segment %" PRIu64,
                 w->segs[w->cur].seq);
    return 0;
}

/* Writes w->batch at the end of the open segment and syncs it, unless
 * !sync. */
static int write_batch_opt(struct wal *w, bool sync, struct cairn_errmsg *m)
{
    char name[WAL_NAME_MAX];
    const struct wal_seg *s = &w->segs[w->cur];
    wal__seg_name(name, s->seq, s->first);
    uint64_t len = batch_len(w);
    int rv = batch_write(w, w->fd, w->off);
    if (rv != 0) {
        w->fatal = rv;
        return cairn_errmsg_code(
            m, rv, "wal: write %" PRIu64 " bytes to %s at %" PRIu64, len, name,
            w->off);
    }
    if (sync) {
        uint64_t t0 = w->fsync_hist != NULL ? cairn_hist_now_ns() : 0;
        rv = w->fs->fdatasync(w->fs, w->fd);
        if (rv != 0) {
            w->fatal = CAIRN_ESYNC;
            return cairn_errmsg_code(m, CAIRN_ESYNC, "wal: fdatasync %s: %s",
                                     name, cairn_strerror(rv));
        }
        if (w->fsync_hist != NULL)
            cairn_hist_observe(w->fsync_hist, cairn_hist_now_ns() - t0);
    }
    w->unsynced = !sync;
    w->bytes_appended += len;
    if (w->need_head) {
        w->head_end = w->off + w->head_len;
        w->need_head = false;
    }
    w->off += len;
    return 0;
}

static int write_batch(struct wal *w, struct cairn_errmsg *m)
{
    return write_batch_opt(w, true, m);
}

/* Rotates if `size` more bytes would not fit in the open segment (unless it
 * holds nothing but its head), then starts w->batch, with the hard state at
 * the head of a new segment. */
static int begin_batch(struct wal *w, uint64_t size, uint32_t *crc,
                       struct cairn_errmsg *m)
{
    if (w->fatal)
        return cairn_errmsg_code(m, w->fatal,
                                 "wal: append (refused after an "
                                 "earlier failure)");
    if (w->off + size > w->seg_size && w->off > w->head_end) {
        int rv = rotate(w, m);
        if (rv != 0)
            return rv;
    }
    batch_reset(w);
    *crc = w->crc;
    if (w->need_head) {
        /* Kept until a batch carrying it is written, so that a batch that
         * fails to encode cannot leave a segment without its head. */
        uint8_t head[WAL_HEAD_MAX];
        int rv = wal__rec_append(&w->batch, crc, head,
                                 wal__head_hard_state(head, &w->hs));
        if (rv != 0)
            return cairn_errmsg_code(m, rv, "wal: encode hard state");
        w->head_len = w->batch.len;
    }
    return 0;
}

static int append(struct wal *w, const struct raft_hard_state *hs,
                  const struct raft_entry *ents, size_t n, bool sync,
                  struct cairn_errmsg *m)
{
    if (n > 0) {
        if (ents[0].index == 0 || ents[0].index > w->last_index + 1)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "wal: append at index %" PRIu64
                                     " after last index %" PRIu64,
                                     ents[0].index, w->last_index);
        for (size_t i = 1; i < n; i++)
            CAIRN_ASSERT(ents[i].index == ents[i - 1].index + 1);
    }
    uint8_t head[WAL_HEAD_MAX];
    uint64_t size = 0, hs_size = 0, rec_max = 0;
    if (hs)
        size += hs_size = wal__rec_size(wal__head_hard_state(head, hs));
    for (size_t i = 0, k; i < n; i += k) {
        uint64_t len;
        k = wal__entries_take(&ents[i], n - i, &len);
        /* Only an entry alone in its record can pass the limit (records
         * of several stay within WAL_ENTRIES_RECORD_BYTES). */
        if (len > WAL_RECORD_MAX)
            return cairn_errmsg_code(m, CAIRN_ETOOBIG,
                                     "wal: encode batch: entry %" PRIu64
                                     " of %zu bytes",
                                     ents[i].index, ents[i].len);
        size += wal__rec_size(len);
        if (wal__rec_size(len) > rec_max)
            rec_max = wal__rec_size(len);
    }
    if (size == 0)
        return w->fatal ? cairn_errmsg_code(m, w->fatal, "wal: append") : 0;
    uint32_t crc = 0;
    int rv = begin_batch(w, size, &crc, m);
    if (rv != 0)
        return rv;
    /* Room for the largest record and the hard state after the head, so
     * that nothing fails once the first record is written. */
    if ((rv = buf_reserve(&w->batch, (size_t)(rec_max + hs_size))) != 0)
        return cairn_errmsg_code(m, rv, "wal: encode batch");
    /* Entries before the hard state: recovery keeps a prefix of the
     * records, so a commit index that survives a torn write always has its
     * entries. */
    for (size_t i = 0, k; i < n; i += k) {
        uint64_t len;
        k = wal__entries_take(&ents[i], n - i, &len);
        if (w->batch.len > 0 && i > 0) {
            /* The records framed so far go out while the data their
             * checksum just read is still in the cache for the kernel's
             * copy (a large batch: 128 KiB records). */
            uint64_t at = w->off + w->sent, blen = w->batch.len;
            rv = batch_write(w, w->fd, w->off);
            if (rv != 0) {
                char name[WAL_NAME_MAX];
                const struct wal_seg *sg = &w->segs[w->cur];
                wal__seg_name(name, sg->seq, sg->first);
                w->fatal = rv;
                return cairn_errmsg_code(
                    m, rv, "wal: write %" PRIu64 " bytes to %s at %" PRIu64,
                    blen, name, at);
            }
        }
        wal__frame_entries(w->batch.data + w->batch.len, &crc, &ents[i], k,
                           len);
        w->batch.len += (size_t)wal__rec_size(len);
    }
    if (rv == 0 && hs)
        rv = wal__rec_append(&w->batch, &crc, head,
                             wal__head_hard_state(head, hs));
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: encode batch");
    rv = write_batch_opt(w, sync, m);
    if (rv != 0)
        return rv;
    w->crc = crc;
    if (hs)
        w->hs = *hs;
    if (n > 0)
        w->last_index = ents[n - 1].index;
    return 0;
}

int wal_append(struct wal *w, const struct raft_hard_state *hs,
               const struct raft_entry *ents, size_t n, struct cairn_errmsg *m)
{
    return append(w, hs, ents, n, true, m);
}

int wal_append_hard_state(struct wal *w, const struct raft_hard_state *hs,
                          struct cairn_errmsg *m)
{
    bool sync = hs->term != w->hs.term || hs->vote != w->hs.vote ||
                hs->commit < w->hs.commit;
    return append(w, hs, NULL, 0, sync, m);
}

int wal_snapshot(struct wal *w, raft_index index, raft_term term,
                 struct cairn_errmsg *m)
{
    uint8_t head[WAL_HEAD_MAX];
    size_t hl = wal__head_snapshot(head, index, term);
    uint32_t crc = 0;
    int rv = begin_batch(w, wal__rec_size(hl), &crc, m);
    if (rv != 0)
        return rv;
    rv = wal__rec_append(&w->batch, &crc, head, hl);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: encode snapshot record");
    rv = write_batch(w, m);
    if (rv != 0)
        return rv;
    w->crc = crc;
    /* An installed snapshot past the log restarts the log after it. */
    if (index > w->last_index)
        w->last_index = index;
    return 0;
}

int wal_release(struct wal *w, raft_index index, struct cairn_errmsg *m)
{
    /* Keep from the segment before the last one named at or below index
     * (where a recovery from index starts reading), and never the open
     * one or anything after it. */
    size_t keep = 0;
    for (size_t i = w->n_segs; i-- > 0;) {
        if (w->segs[i].first <= index) {
            keep = i > 0 ? i - 1 : 0;
            break;
        }
    }
    if (keep > w->cur)
        keep = w->cur;
    size_t removed = 0;
    int rv = 0;
    char path[PATH_MAX_BYTES];
    for (; removed < keep; removed++) {
        rv = seg_path(w, path, w->segs[removed].seq, w->segs[removed].first);
        if (rv == 0)
            rv = w->fs->unlink(w->fs, path);
        if (rv != 0) {
            cairn_errmsg_code(m, rv, "wal: release %s", path);
            break;
        }
    }
    if (removed > 0) {
        memmove(w->segs, w->segs + removed,
                (w->n_segs - removed) * sizeof *w->segs);
        w->n_segs -= removed;
        w->cur -= removed;
        int srv = w->fs->fsync_dir(w->fs, w->dir);
        if (srv != 0 && rv == 0)
            rv = cairn_errmsg_code(m, srv, "wal: fsync directory %s", w->dir);
        cairn_debugf(w->log, "wal",
                     "released %zu segments below index %" PRIu64, removed,
                     index);
    }
    return rv;
}

/* --- creating --- */

static int list_segments(struct cairn_fs *fs, const char *dir,
                         struct cairn_fs_names *names, bool *any)
{
    int rv = fs->list(fs, dir, names);
    if (rv != 0)
        return rv;
    *any = false;
    for (size_t i = 0; i < names->count; i++) {
        uint64_t seq;
        raft_index first;
        if (wal__seg_parse(names->names[i], &seq, &first) == 0)
            *any = true;
    }
    return 0;
}

bool wal_exists(struct cairn_fs *fs, const char *dir)
{
    struct cairn_fs_names names;
    bool any = false;
    if (list_segments(fs, dir, &names, &any) != 0)
        return false;
    cairn_fs_names_free(&names);
    return any;
}

int wal_create(const struct wal_options *o, const struct wal_metadata *meta,
               struct wal **out, struct cairn_errmsg *m)
{
    int rv = mkdir_all(o->fs, o->dir, m);
    if (rv != 0) {
        cairn_errmsg_prefixf(m, "wal: create");
        return rv;
    }
    if (wal_exists(o->fs, o->dir))
        return cairn_errmsg_code(m, CAIRN_EEXISTS, "wal: create in %s", o->dir);
    struct wal *w = wal_alloc(o);
    if (!w)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "wal: create");
    w->meta = *meta;
    rv = rotate(w, m);
    if (rv == 0) {
        /* An empty batch: just the head's hard state. */
        uint32_t crc = 0;
        rv = begin_batch(w, 0, &crc, m);
        if (rv == 0)
            rv = write_batch(w, m);
        if (rv == 0)
            w->crc = crc;
    }
    if (rv != 0) {
        wal_close(w);
        return rv;
    }
    struct cairn_errmsg pm;
    if (wal_prepare(w, &pm) != 0)
        cairn_warnf(w->log, "wal", "%s (will retry at rotation)", pm.text);
    *out = w;
    return 0;
}

/* --- recovery --- */

/* Entries recovered so far: data as offsets into the arena, fixed up into
 * pointers at the end (the arena moves as it grows). */
struct rec_state {
    raft_index snap_index;
    raft_term snap_term;
    bool snap_seen;       /* the snapshot's record was found */
    bool have_snap_entry; /* an entry at snap_index was seen */
    raft_term snap_entry_term;
    struct raft_entry *ents;
    size_t *data_off; /* ents[i]'s data at arena.data + data_off[i] */
    size_t n, cap;
    struct buf arena;
    bool have_meta;
    struct wal_metadata meta;
    struct raft_hard_state hs;
    /* Entries after a gap: the open segment before the one recovery starts
     * from may begin with the tail of a suffix that a later record
     * replaces; until such a record comes, they are skipped. Where the
     * first of them was, for the error if none comes. */
    bool stale;
    size_t stale_seg;
    uint64_t stale_off;
    size_t at_seg; /* where the record being applied is */
    uint64_t at_off;
};

static int rec_entry(struct rec_state *r, const struct raft_entry *e)
{
    if (e->index <= r->snap_index) {
        /* A record for index i ends the log at i: whatever came after it,
         * past the snapshot too, was a suffix this record replaced. */
        r->n = 0;
        r->stale = false;
        if (e->index == r->snap_index) {
            r->have_snap_entry = true;
            r->snap_entry_term = e->term;
        }
        return 0;
    }
    raft_index expect = r->snap_index + r->n + 1;
    if (e->index > expect) {
        if (!r->stale) {
            r->stale = true;
            r->stale_seg = r->at_seg;
            r->stale_off = r->at_off;
        }
        return 0;
    }
    r->stale = false;
    r->n = (size_t)(e->index - r->snap_index - 1);
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        struct raft_entry *ne = cairn_realloc(r->ents, ncap * sizeof *ne);
        if (!ne)
            return CAIRN_ENOMEM;
        r->ents = ne;
        size_t *no = cairn_realloc(r->data_off, ncap * sizeof *no);
        if (!no)
            return CAIRN_ENOMEM;
        r->data_off = no;
        r->cap = ncap;
    }
    struct raft_entry *d = &r->ents[r->n++];
    *d = *e;
    d->data = NULL;
    r->data_off[r->n - 1] = r->arena.len;
    if (e->len > 0 && buf_append(&r->arena, e->data, e->len) != 0)
        return CAIRN_ENOMEM;
    return 0;
}

/* A snapshot record: the chosen snapshot confirms (or resets) the log; a
 * later one must agree with the entries read, or the log restarted after a
 * snapshot we are not starting from and the gap cannot be filled. */
static int rec_snapshot(struct rec_state *r, raft_index index, raft_term term)
{
    if (index == r->snap_index && term == r->snap_term) {
        r->snap_seen = true;
        if (!r->have_snap_entry || r->snap_entry_term != term) {
            r->n = 0; /* installed from a leader: the log restarts here */
            r->stale = false;
        }
        return 0;
    }
    if (index <= r->snap_index || r->stale)
        return 0;
    raft_index off = index - r->snap_index;
    if (off > r->n || r->ents[off - 1].term != term)
        return CAIRN_EWALGAP;
    return 0;
}

static int read_file(struct cairn_fs *fs, int fd, struct buf *b)
{
    uint64_t size;
    int rv = fs->fsize(fs, fd, &size);
    if (rv != 0)
        return rv;
    buf_reset(b);
    if (size > SIZE_MAX / 2)
        return CAIRN_ETOOBIG;
    uint8_t *p = buf_extend(b, (size_t)size);
    if (!p && size > 0)
        return CAIRN_ENOMEM;
    size_t got;
    rv = fs->pread(fs, fd, p, (size_t)size, 0, &got);
    if (rv != 0)
        return rv;
    b->len = got;
    return 0;
}

/* What reading one segment found. */
struct seg_scan {
    uint64_t size;     /* bytes in the file */
    uint64_t end;      /* after the last good record */
    uint64_t head_end; /* after the leading metadata and hard state */
    uint64_t nrec;     /* good records */
    uint32_t crc;      /* chain value after the last good record */
    bool bad;          /* a record at `end` failed its check */
    bool torn;         /* ... and looks like a write that never completed */
    const char *why;
    uint64_t data_end; /* after the last non-zero byte */
};

/* Reads segment idx through fd into bytes and checks every record; with
 * `apply`, feeds the records to r. A failing record is not an error here:
 * it is described in *ss and the caller decides (a torn tail or damage). */
static int scan_segment(struct wal *w, struct rec_state *r, size_t idx, int fd,
                        bool apply, struct buf *bytes, struct seg_scan *ss,
                        struct cairn_errmsg *m)
{
    const struct wal_seg *sg = &w->segs[idx];
    char name[WAL_NAME_MAX];
    wal__seg_name(name, sg->seq, sg->first);
    memset(ss, 0, sizeof *ss);
    int rv = read_file(w->fs, fd, bytes);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: read %s", name);
    struct wal__scan s;
    wal__scan_init(&s, bytes->data, bytes->len, sg->seq);
    ss->size = bytes->len;
    bool in_head = true;
    /* Bounded: each turn consumes at least one 8-byte header. */
    for (uint64_t nrec = 0;; nrec++) {
        struct wal__rec rec;
        const char *why;
        enum wal__scan_status st = wal__scan_next(&s, &rec, &why);
        if (st == WAL_SCAN_END) {
            if (wal__all_zero(s.p, s.off, s.size))
                break;
            why = "bytes after the last record";
            st = WAL_SCAN_BAD;
        }
        if (st == WAL_SCAN_BAD) {
            ss->bad = true;
            ss->why = why;
            ss->torn = wal__tail_is_torn(&s);
            break;
        }
        if (nrec == 0 && (rec.type != WAL_REC_METADATA || rec.seq != sg->seq))
            return cairn_errmsg_code(m, CAIRN_ECORRUPT,
                                     "wal: %s/%s at offset 0: the segment "
                                     "does not start with its metadata",
                                     w->dir, name);
        if (nrec != 0 && rec.type == WAL_REC_METADATA)
            return cairn_errmsg_code(m, CAIRN_ECORRUPT,
                                     "wal: %s/%s at offset %" PRIu64
                                     ": metadata record inside a segment",
                                     w->dir, name, rec.off);
        ss->nrec = nrec + 1;
        in_head = in_head && (rec.type == WAL_REC_METADATA ||
                              rec.type == WAL_REC_HARD_STATE);
        if (in_head)
            ss->head_end = rec.off + rec.size;
        if (!apply)
            continue;
        switch (rec.type) {
        case WAL_REC_METADATA:
            if (r->have_meta && (rec.u.meta.member_id != r->meta.member_id ||
                                 rec.u.meta.cluster_id != r->meta.cluster_id))
                return cairn_errmsg_code(
                    m, CAIRN_ECORRUPT,
                    "wal: %s/%s: member %" PRIx64 " of cluster %" PRIx64
                    " differs from earlier segments",
                    w->dir, name, rec.u.meta.member_id, rec.u.meta.cluster_id);
            r->meta = rec.u.meta;
            r->have_meta = true;
            break;
        case WAL_REC_HARD_STATE:
            r->hs = rec.u.hs;
            break;
        case WAL_REC_ENTRIES: {
            r->at_seg = idx;
            r->at_off = rec.off;
            struct wal__ents_iter it;
            struct raft_entry e;
            wal__ents_begin(&it, &rec);
            /* Bounded by the record's count. */
            while (rv == 0 && wal__ents_next(&it, &rec, &e))
                rv = rec_entry(r, &e);
            break;
        }
        case WAL_REC_SNAPSHOT:
            rv = rec_snapshot(r, rec.u.snap.index, rec.u.snap.term);
            break;
        default:
            CAIRN_UNREACHABLE();
        }
        if (rv == CAIRN_EWALGAP)
            return cairn_errmsg_code(m, rv,
                                     "wal: %s/%s at offset %" PRIu64
                                     ": record does not follow "
                                     "the log from snapshot %" PRIu64,
                                     w->dir, name, rec.off, r->snap_index);
        if (rv != 0)
            return cairn_errmsg_code(m, rv, "wal: recover %s", name);
    }
    ss->end = s.off;
    ss->crc = s.crc;
    ss->data_end = bytes->len;
    while (ss->data_end > ss->end && bytes->data[ss->data_end - 1] == 0)
        ss->data_end--;
    return 0;
}

/* Writes the metadata and hard state at the start of the empty open
 * segment. */
static int write_head(struct wal *w, struct cairn_errmsg *m)
{
    uint8_t head[WAL_HEAD_MAX];
    uint32_t crc = wal__seg_seed(w->segs[w->cur].seq);
    batch_reset(w);
    int rv = wal__rec_append(
        &w->batch, &crc, head,
        wal__head_metadata(head, &w->meta, w->segs[w->cur].seq));
    if (rv == 0)
        rv = wal__rec_append(&w->batch, &crc, head,
                             wal__head_hard_state(head, &w->hs));
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: encode segment head");
    rv = write_batch(w, m);
    if (rv != 0)
        return rv;
    w->crc = crc;
    w->head_end = w->off;
    w->need_head = false;
    return 0;
}

/* Cuts the open segment back to `end`, keeping its preallocation. */
static int truncate_tail(struct wal *w, uint64_t end, uint64_t data_end,
                         uint64_t size, struct cairn_errmsg *m)
{
    char name[WAL_NAME_MAX];
    const struct wal_seg *sg = &w->segs[w->cur];
    wal__seg_name(name, sg->seq, sg->first);
    /* Zeros over the torn bytes (those past data_end are zero already)
     * keep the space preallocated and written; a file cut short grows
     * back to the segment size. */
    int rv = zero_fill(w, w->fd, end, data_end);
    if (rv == 0 && size < w->seg_size) {
        rv = w->fs->fallocate(w->fs, w->fd, 0, w->seg_size);
        if (rv == 0 && w->zero_fill)
            rv = zero_fill(w, w->fd, size, w->seg_size);
    }
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "wal: truncate %s at %" PRIu64, name,
                                 end);
    rv = w->fs->fdatasync(w->fs, w->fd);
    if (rv != 0) {
        w->fatal = CAIRN_ESYNC;
        return cairn_errmsg_code(m, CAIRN_ESYNC, "wal: fdatasync %s: %s", name,
                                 cairn_strerror(rv));
    }
    cairn_warnf(w->log, "wal",
                "truncated the torn tail of %s/%s at offset %" PRIu64
                " (%" PRIu64 " bytes were never made durable)",
                w->dir, name, end, size - end);
    return 0;
}

int wal_open(const struct wal_options *o, raft_index snap_index,
             raft_term snap_term, struct wal **out, struct wal_recovery *rec,
             struct cairn_errmsg *m)
{
    memset(rec, 0, sizeof *rec);
    struct wal *w = wal_alloc(o);
    if (!w)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "wal: open");
    struct rec_state r;
    memset(&r, 0, sizeof r);
    r.snap_index = snap_index;
    r.snap_term = snap_term;
    buf_init(&r.arena);
    struct buf bytes = BUF_INIT;
    struct seg_scan *scans = NULL;
    struct cairn_fs_names names = {NULL, 0};
    int rv = w->fs->list(w->fs, w->dir, &names);
    if (rv != 0) {
        cairn_errmsg_code(m, rv, "wal: list %s", w->dir);
        goto err_after_alloc;
    }
    bool removed_tmp = false;
    for (size_t i = 0; i < names.count; i++) {
        uint64_t seq;
        raft_index first;
        char path[PATH_MAX_BYTES];
        if (wal__seg_parse(names.names[i], &seq, &first) == 0) {
            rv = segs_push(w, seq, first);
        } else if (wal__is_tmp(names.names[i]) &&
                   wal__join(path, sizeof path, w->dir, names.names[i]) == 0) {
            /* A segment prepared but never used: built again later. */
            rv = w->fs->unlink(w->fs, path);
            removed_tmp = true;
        }
        if (rv != 0) {
            cairn_errmsg_code(m, rv, "wal: open %s/%s", w->dir, names.names[i]);
            goto err_after_list;
        }
    }
    if (removed_tmp && (rv = w->fs->fsync_dir(w->fs, w->dir)) != 0) {
        cairn_errmsg_code(m, rv, "wal: fsync directory %s", w->dir);
        goto err_after_list;
    }
    if (w->n_segs == 0) {
        rv = cairn_errmsg_code(m, CAIRN_ENOTFOUND, "wal: no segments in %s",
                               w->dir);
        goto err_after_list;
    }
    /* Start at the segment before the last one named <= snap_index: that one
     * was prepared when the log ended before the snapshot's entry, so every
     * record needed from the snapshot on was written after the segment
     * before it became the open one (docs/wal.md). */
    size_t start = w->n_segs;
    for (size_t i = w->n_segs; i-- > 0;) {
        if (w->segs[i].first <= snap_index) {
            start = i > 0 ? i - 1 : 0;
            break;
        }
    }
    if (start == w->n_segs) {
        rv = cairn_errmsg_code(m, CAIRN_EWALGAP,
                               "wal: %s: the oldest segment starts after "
                               "snapshot index %" PRIu64,
                               w->dir, snap_index);
        goto err_after_list;
    }
    /* Names sort by seq (fixed-width hex); one missing from where the
     * reading starts is lost data. Below that, gaps are a release a crash
     * cut short (its unlinks were not yet synced, and any subset of them
     * may have reached the disk): nothing there is read, and the next
     * release removes what is left (docs/wal.md "Release"). */
    for (size_t i = start + 1; i < w->n_segs; i++) {
        if (w->segs[i].seq != w->segs[i - 1].seq + 1) {
            char name[WAL_NAME_MAX];
            wal__seg_name(name, w->segs[i - 1].seq, w->segs[i - 1].first);
            rv = cairn_errmsg_code(m, CAIRN_ECORRUPT,
                                   "wal: %s: segment %" PRIu64
                                   " is missing after %s",
                                   w->dir, w->segs[i - 1].seq + 1, name);
            goto err_after_list;
        }
    }
    scans = cairn_calloc(w->n_segs, sizeof *scans);
    if (!scans) {
        rv = cairn_errmsg_code(m, CAIRN_ENOMEM, "wal: open");
        goto err_after_list;
    }
    /* A record failing its check is a torn tail only if no later segment
     * holds anything but its metadata (segments prepared ahead). */
    size_t bad = w->n_segs;
    size_t cur = start;
    for (size_t i = start; i < w->n_segs; i++) {
        char path[PATH_MAX_BYTES];
        rv = seg_path(w, path, w->segs[i].seq, w->segs[i].first);
        int fd = -1;
        if (rv == 0)
            rv = w->fs->open(w->fs, path, CAIRN_FS_RDONLY, &fd);
        if (rv != 0) {
            cairn_errmsg_code(m, rv, "wal: open %s", path);
            goto err_after_list;
        }
        rv = scan_segment(w, &r, i, fd, bad == w->n_segs, &bytes, &scans[i], m);
        w->fs->close(w->fs, fd);
        if (rv != 0)
            goto err_after_list;
        const struct seg_scan *ss = &scans[i];
        size_t at = i; /* the segment an error names */
        if (bad == w->n_segs) {
            if (ss->nrec > 1 || ss->bad)
                cur = i;
            if (!ss->bad || ss->torn) {
                if (ss->bad)
                    bad = i;
                continue;
            }
        } else if (ss->bad || ss->nrec > 1) {
            at = bad; /* more log after a bad record: damage, not a tear */
        } else {
            continue;
        }
        char name[WAL_NAME_MAX];
        wal__seg_name(name, w->segs[at].seq, w->segs[at].first);
        rv = cairn_errmsg_code(m, CAIRN_ECORRUPT,
                               "wal: %s/%s at offset %" PRIu64 ": %s", w->dir,
                               name, scans[at].end, scans[at].why);
        goto err_after_list;
    }
    /* A named segment always has durable metadata (it is synced before the
     * rename), and at most one, prepared, follows the log's last records:
     * anything else is damage, never a crash's doing. */
    for (size_t i = start; i < w->n_segs; i++) {
        if (scans[i].nrec == 0 && !scans[i].bad) {
            char name[WAL_NAME_MAX];
            wal__seg_name(name, w->segs[i].seq, w->segs[i].first);
            rv = cairn_errmsg_code(m, CAIRN_ECORRUPT,
                                   "wal: %s/%s at offset 0: the segment "
                                   "does not start with its metadata",
                                   w->dir, name);
            goto err_after_list;
        }
    }
    if (cur + 2 < w->n_segs) {
        char name[WAL_NAME_MAX];
        wal__seg_name(name, w->segs[cur + 2].seq, w->segs[cur + 2].first);
        rv = cairn_errmsg_code(m, CAIRN_ECORRUPT,
                               "wal: %s/%s: a second empty segment after the "
                               "last records (records lost from one of them?)",
                               w->dir, name);
        goto err_after_list;
    }
    if (r.stale) {
        char name[WAL_NAME_MAX];
        wal__seg_name(name, w->segs[r.stale_seg].seq,
                      w->segs[r.stale_seg].first);
        rv = cairn_errmsg_code(m, CAIRN_EWALGAP,
                               "wal: %s/%s at offset %" PRIu64
                               ": entry does not follow the log from "
                               "snapshot %" PRIu64,
                               w->dir, name, r.stale_off, snap_index);
        goto err_after_list;
    }
    if (snap_index > 0 && !r.snap_seen) {
        rv = cairn_errmsg_code(m, CAIRN_EWALGAP,
                               "wal: %s holds no record of snapshot %" PRIu64
                               " at term %" PRIu64,
                               w->dir, snap_index, snap_term);
        goto err_after_list;
    }
    if (!r.have_meta) {
        rv = cairn_errmsg_code(m, CAIRN_ECORRUPT, "wal: %s: no metadata",
                               w->dir);
        goto err_after_list;
    }
    w->meta = r.meta;
    w->hs = r.hs;
    w->last_index = snap_index + r.n;
    /* The open segment is the last one with records (or a bad tail); the
     * one after it, if any, holds just its metadata: the prepared one. */
    w->cur = cur;
    const struct seg_scan *cs = &scans[cur];
    char path[PATH_MAX_BYTES];
    rv = seg_path(w, path, w->segs[cur].seq, w->segs[cur].first);
    if (rv == 0)
        rv = w->fs->open(w->fs, path, CAIRN_FS_RDWR, &w->fd);
    if (rv != 0) {
        cairn_errmsg_code(m, rv, "wal: open %s", path);
        goto err_after_list;
    }
    w->off = cs->end;
    w->head_end = cs->head_end;
    w->crc = cs->crc;
    w->need_head = cs->nrec <= 1;
    if (cs->bad) {
        rv = truncate_tail(w, cs->end, cs->data_end, cs->size, m);
        if (rv != 0)
            goto err_after_list;
        rec->truncated = true;
        rec->truncated_bytes = cs->size - cs->end;
    }
    if (cur + 1 < w->n_segs) {
        /* Holds just its metadata (checked above): the prepared one. */
        rv = seg_path(w, path, w->segs[cur + 1].seq, w->segs[cur + 1].first);
        if (rv == 0)
            rv = w->fs->open(w->fs, path, CAIRN_FS_RDWR, &w->next_fd);
        if (rv != 0) {
            cairn_errmsg_code(m, rv, "wal: open %s", path);
            goto err_after_list;
        }
        w->next_off = scans[cur + 1].end;
        w->next_crc = scans[cur + 1].crc;
    }
    /* What we return must be durable, and bytes read back after an earlier
     * failed fdatasync may only be in the page cache: sync them (and the
     * names) now, or refuse to start. */
    rv = w->fs->fdatasync(w->fs, w->fd);
    if (rv == 0)
        rv = w->fs->fsync_dir(w->fs, w->dir);
    if (rv != 0) {
        rv = cairn_errmsg_code(m, CAIRN_ESYNC, "wal: sync %s on open: %s",
                               w->dir, cairn_strerror(rv));
        goto err_after_list;
    }
    if (w->off == 0) {
        /* Only damage can reach the head (it is durable before the segment
         * is named), but a segment must start with it all the same. */
        rv = write_head(w, m);
        if (rv != 0)
            goto err_after_list;
    }
    /* Hand the entries over, data pointers fixed up into the arena. */
    for (size_t i = 0; i < r.n; i++) {
        r.ents[i].data = r.ents[i].len ? r.arena.data + r.data_off[i] : NULL;
    }
    rec->meta = r.meta;
    rec->hard_state = r.hs;
    rec->snap.index = snap_index;
    rec->snap.term = snap_term;
    rec->entries = r.ents;
    rec->n_entries = r.n;
    cairn_free(r.data_off);
    rec->arena = r.arena.data;
    /* Prepare the next segment only if the open one holds records: an
     * empty open segment (its first batch was lost to a crash) is what the
     * next recovery takes for the prepared one, and two empty segments
     * would look like damage. */
    bool prepare = scans[cur].nrec > 1;
    cairn_fs_names_free(&names);
    buf_free(&bytes);
    cairn_free(scans);
    struct cairn_errmsg pm;
    if (prepare && wal_prepare(w, &pm) != 0)
        cairn_warnf(w->log, "wal", "%s (will retry at rotation)", pm.text);
    *out = w;
    return 0;

err_after_list:
    cairn_fs_names_free(&names);
    cairn_free(scans);
err_after_alloc:
    buf_free(&bytes);
    buf_free(&r.arena);
    cairn_free(r.ents);
    cairn_free(r.data_off);
    wal_close(w);
    return rv;
}
