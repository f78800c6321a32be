/* wal: the public header of cairn's durable Raft storage — the write-ahead
 * log of entries and hard state in preallocated segments, the snapshot
 * metadata files, and crash recovery of both. The on-disk format is
 * docs/wal.md; cairn-wal-dump prints it.
 *
 * Layout under a member's data directory:
 *   member/wal/<seq:016x>-<first index:016x>.wal   segments, seq from 0
 *   member/wal/<seq:016x>.tmp                      a segment being prepared
 *   member/snap/<term:016x>-<index:016x>.snap      snapshot metadata
 *
 * Durability contract (DESIGN.md): wal_append returns 0 only once everything
 * it was given is durable (one fdatasync per call: group commit); only a
 * commit index alone (wal_append_hard_state) is written unsynced. A failed
 * fdatasync is fatal: the WAL refuses every later write with CAIRN_ESYNC and
 * never retries (PITFALLS.md: CockroachDB #37102). A failed write is fatal
 * too (the bytes after the last durable record are unknown), with the write's
 * own code. Recovery truncates a torn tail of the last segment (bytes that
 * were never made durable) and refuses to open, naming the file and offset,
 * on damage anywhere else.
 *
 * Snapshot order (etcd's): the host first saves the snapshot's metadata file
 * (wal_snap_save), then records it in the log (wal_snapshot) — a crash
 * between leaves a file recovery ignores, while a record without its file
 * leaves a log that does not open when the record restarted it — then may
 * release older segments (wal_release) once the state machine is durable up
 * to the snapshot. Recovery (wal_recover) uses the newest valid snapshot file
 * whose record the log still holds; a corrupt newest file is reported and an
 * older one used only if the log still covers the gap from it; otherwise it
 * refuses with CAIRN_ENOSNAP.
 *
 * Files only through the util/fs.h table given in the options.
 *
 * Threads: a struct wal belongs to one thread at a time (in the server, the
 * WAL thread); nothing here takes locks. Distinct WALs are independent.
 */
#ifndef CAIRN_WAL_WAL_H
#define CAIRN_WAL_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"
#include "util/util.h"

/* Default size segments are preallocated to (etcd's SegmentSizeBytes). */
#define WAL_SEGMENT_SIZE_DEFAULT (64u * 1024 * 1024)
/* Largest payload of one record; an entry's data must be smaller. */
#define WAL_RECORD_MAX (256u * 1024 * 1024)

struct wal_options {
    struct cairn_fs *fs;         /* borrowed; outlives the WAL */
    const char *dir;             /* member/wal; copied */
    uint64_t segment_size_bytes; /* 0: WAL_SEGMENT_SIZE_DEFAULT */
    /* Preparing a segment reserves its space with fallocate and, unless
     * this is set, also writes zeros over it: on ext4 and XFS an fdatasync
     * into fallocated (unwritten) space also commits the extent conversion
     * to the journal, which measured 2x slower for 64 KiB batches. Zeroing
     * costs a segment's worth of writes in wal_prepare, off the hot path.
     * Tests and the simulator on the in-memory file system may skip it. */
    bool no_zero_fill;
    const struct cairn_log *log; /* may be NULL; borrowed */
    /* May be NULL. Each append's (and snapshot record's) fdatasync is timed
     * into it: etcd's etcd_disk_wal_fsync_duration_seconds. Borrowed;
     * outlives the WAL. */
    struct cairn_hist *fsync_hist;
};

/* Who the log belongs to; written at the head of every segment. */
struct wal_metadata {
    uint64_t member_id;
    uint64_t cluster_id;
};

/* What recovery returns. entries[0..n_entries) are the log after
 * snap.index, in index order; their data point into memory owned by this
 * struct until wal_recovery_free. */
struct wal_recovery {
    struct wal_metadata meta;
    struct raft_hard_state hard_state; /* zero if none was ever written */
    bool has_snap;                     /* a snapshot file was used */
    struct raft_snapshot_meta snap;    /* index 0 when !has_snap */
    struct raft_entry *entries;
    size_t n_entries;
    /* Torn tail found and truncated (informational, also logged). */
    bool truncated;
    uint64_t truncated_bytes;
    /* private */
    uint8_t *arena;
};

void wal_recovery_free(struct wal_recovery *rec);

struct wal;

/* Whether dir holds a WAL (at least one segment). */
bool wal_exists(struct cairn_fs *fs, const char *dir);

/* Creates a new WAL in o->dir (created with its parents if missing; it must
 * not already hold a WAL: CAIRN_EEXISTS) with an empty log and zero hard
 * state, durable before it returns, and opens it for appending. */
int wal_create(const struct wal_options *o, const struct wal_metadata *meta,
               struct wal **out, struct cairn_errmsg *m);

/* Opens the WAL in o->dir, reading it from the snapshot at (snap_index,
 * snap_term) on: the log must hold that snapshot's record (unless
 * snap_index == 0) and every entry after it, else CAIRN_EWALGAP. A torn tail
 * of the last segment is truncated (and logged); any other damage gives
 * CAIRN_ECORRUPT with the file and byte offset in m. Before returning, the
 * last segment and the directory are synced, so that nothing returned lives
 * only in the page cache (CAIRN_ESYNC if that fails). On success *out is
 * open for appending after the recovered log, and rec holds what was read
 * (rec is zeroed on failure; free it with wal_recovery_free either way). */
int wal_open(const struct wal_options *o, raft_index snap_index,
             raft_term snap_term, struct wal **out, struct wal_recovery *rec,
             struct cairn_errmsg *m);

/* The whole start-up path: picks the snapshot file in snap_dir as the header
 * describes and opens the WAL from it. rec->snap and rec->has_snap tell which
 * snapshot was used. */
int wal_recover(const struct wal_options *o, const char *snap_dir,
                struct wal **out, struct wal_recovery *rec,
                struct cairn_errmsg *m);

/* Appends one batch and makes it durable with one fdatasync: the entries
 * ents[0..n) (consecutive indexes), then hs (NULL if the hard state did not
 * change), so that a hard state recovered after a torn write always comes
 * with its entries. Writing index i ends the log at i: if ents[0].index is
 * not past the last index, the log from ents[0].index on is replaced (a
 * follower's conflicting suffix; the host must never rewrite committed
 * entries). The entries' data are borrowed for the call. Rotates to the
 * prepared segment first when the batch does not fit in the current one.
 * Errors: CAIRN_ESYNC (fatal, forever), a write error (fatal, forever),
 * CAIRN_ENOSPC / CAIRN_EIO preparing a segment (not fatal: nothing was
 * written; the call may be repeated), CAIRN_EINVAL (ents[0].index leaves a
 * gap), CAIRN_ENOMEM. */
int wal_append(struct wal *w, const struct raft_hard_state *hs,
               const struct raft_entry *ents, size_t n, struct cairn_errmsg *m);

/* Appends a hard state alone. As wal_append when its term or vote differs
 * from the last one written; when only its commit index moved forward, the
 * record is written without fdatasync (etcd's MustSync rule): a commit index
 * need not be durable, since raft raises a lagging commit to the applied
 * index on restart and a leader tells a member its commit again. The next
 * synced append (or rotation, which syncs a segment before leaving it)
 * makes it durable; until then a crash may lose or tear it, and recovery
 * truncates the torn tail as any other. Errors as wal_append. */
int wal_append_hard_state(struct wal *w, const struct raft_hard_state *hs,
                          struct cairn_errmsg *m);

/* Records that a snapshot at (index, term) exists, durably (one fdatasync).
 * If the log's entry at index has another term or is missing (a snapshot
 * installed from the leader), the log restarts after index: recovery from
 * this snapshot drops the entries logged before this record, and the next
 * append may start at index + 1. Errors as wal_append. */
int wal_snapshot(struct wal *w, raft_index index, raft_term term,
                 struct cairn_errmsg *m);

/* Removes the segments that only hold entries below `index` (the state
 * machine must be durable up to index and a snapshot at index recorded):
 * those before the segment where a recovery from index starts reading
 * (docs/wal.md). The open segment is never removed. */
int wal_release(struct wal *w, raft_index index, struct cairn_errmsg *m);

/* Prepares the next segment (created, preallocated, zero-filled, synced,
 * named, its directory synced) if it is not prepared yet, so that rotation
 * costs nothing on the hot path; the WAL thread may call it when idle.
 * wal_append calls it itself when rotation finds nothing prepared. It does
 * nothing while the open segment holds no records yet. A failed directory
 * sync here is fatal (CAIRN_ESYNC); other failures are not. */
int wal_prepare(struct wal *w, struct cairn_errmsg *m);

/* Last index in the log (0 if none), and the sticky fatal error (0 if
 * none). */
raft_index wal_last_index(const struct wal *w);
int wal_fatal_error(const struct wal *w);
/* Bytes written by appends and snapshot records since open: records,
 * padding, a new segment's leading hard state; not the metadata record
 * written when preparing a segment. */
uint64_t wal_bytes_appended(const struct wal *w);
/* Number of segments on disk (tests, metrics). */
size_t wal_segment_count(const struct wal *w);

/* Closes the files and frees w (NULL is fine). Nothing is synced: everything
 * wal_append returned 0 for is already durable (a commit index written alone
 * stays in the page cache, as etcd's). */
void wal_close(struct wal *w);

/* --- Snapshot metadata files (member/snap) --- */

/* Writes meta to snap_dir (created if missing) as <term>-<index>.snap:
 * temporary name, fdatasync, rename, directory fsync. */
int wal_snap_save(struct cairn_fs *fs, const char *snap_dir,
                  const struct raft_snapshot_meta *meta,
                  struct cairn_errmsg *m);

/* Reads one snapshot file: 0, CAIRN_ECORRUPT (bad magic, CRC, length, or
 * contents disagreeing with the name) or an I/O error. */
int wal_snap_read(struct cairn_fs *fs, const char *path,
                  struct raft_snapshot_meta *meta, struct cairn_errmsg *m);

/* Removes all but the newest `keep` snapshot files (etcd keeps 5). */
int wal_snap_purge(struct cairn_fs *fs, const char *snap_dir, size_t keep,
                   struct cairn_errmsg *m);

#endif
