/* The file-system function table: every file the WAL and snapshot code touch
 * goes through one of these, so that production runs on POSIX and tests and
 * the simulator run on a faulty in-memory file system with the same code.
 *
 * Conventions for every function in the table:
 *  - returns 0 or a negative CAIRN_E* code (util/err.h); errno values are
 *    mapped with cairn_err_from_errno (ENOSPC -> CAIRN_ENOSPC, ENOENT ->
 *    CAIRN_ENOTFOUND, EEXIST -> CAIRN_EEXISTS, anything else -> CAIRN_EIO);
 *  - paths are borrowed for the duration of the call only;
 *  - a file handle is a small non-negative int owned by the caller until it
 *    passes it to close.
 *
 * Durability model (what the in-memory file system enforces and what POSIX
 * promises): bytes written to a file survive a crash only after a successful
 * fdatasync of that file; a created, renamed or removed name survives a crash
 * only after a successful fsync_dir of the directory holding it. A failed
 * fdatasync leaves the written bytes in an unknown state: callers must treat
 * it as fatal and never retry (PITFALLS.md, CockroachDB #37102).
 *
 * Threads: the POSIX table may be used from any thread (it holds no state);
 * an in-memory file system belongs to one thread at a time. */
#ifndef CAIRN_UTIL_FS_H
#define CAIRN_UTIL_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/prng.h"

/* Flags of open. Exactly one of RDONLY and RDWR. */
#define CAIRN_FS_RDONLY 0x1u
#define CAIRN_FS_RDWR 0x2u
#define CAIRN_FS_CREATE 0x4u /* create the file if it does not exist */
#define CAIRN_FS_EXCL                                       \
    0x8u /* with CREATE: fail with CAIRN_EEXISTS if it does \
          */

struct cairn_fs_stat {
    bool is_dir;
    uint64_t size_bytes; /* 0 for directories */
};

/* One piece of a gathered write (pwritev): len bytes at base, borrowed for
 * the duration of the call. */
struct cairn_iovec {
    const void *base;
    size_t len;
};

/* A directory listing: names (not paths), sorted bytewise, "." and ".."
 * left out. Owned by the caller; free with cairn_fs_names_free. */
struct cairn_fs_names {
    char **names;
    size_t count;
};
void cairn_fs_names_free(struct cairn_fs_names *n);

struct cairn_fs {
    void *impl; /* the implementation's state; NULL for POSIX */

    int (*open)(struct cairn_fs *fs, const char *path, unsigned flags, int *fd);
    /* Always releases fd, also when it returns an error. */
    int (*close)(struct cairn_fs *fs, int fd);
    /* Writes all len bytes at off. On an error, a prefix of them may have
     * been written (a short write), and the rest of the file is unchanged. */
    int (*pwrite)(struct cairn_fs *fs, int fd, const void *data, size_t len,
                  uint64_t off);
    /* pwrite of the n pieces one after the other from off, as one write:
     * the same rules for errors and short writes, and for the in-memory
     * file system one write to tear at a crash. Lets the WAL write large
     * entries from the caller's memory instead of copying them. */
    int (*pwritev)(struct cairn_fs *fs, int fd, const struct cairn_iovec *iov,
                   size_t n, uint64_t off);
    /* Reads up to len bytes at off; *nread < len only at the end of file. */
    int (*pread)(struct cairn_fs *fs, int fd, void *data, size_t len,
                 uint64_t off, size_t *nread);
    /* Makes the file's bytes and size durable. */
    int (*fdatasync)(struct cairn_fs *fs, int fd);
    /* Makes the names in directory `path` durable. */
    int (*fsync_dir)(struct cairn_fs *fs, const char *path);
    /* Reserves [off, off+len): the file grows to at least off+len bytes
     * (reading zeros) and later writes there cannot fail for lack of space.
     * Durable after the next fdatasync. */
    int (*fallocate)(struct cairn_fs *fs, int fd, uint64_t off, uint64_t len);
    /* Sets the size; bytes past it are gone, growth reads zeros. */
    int (*ftruncate)(struct cairn_fs *fs, int fd, uint64_t size_bytes);
    /* Atomically replaces `to` by `from` (both in the same directory). */
    int (*rename)(struct cairn_fs *fs, const char *from, const char *to);
    int (*unlink)(struct cairn_fs *fs, const char *path);
    /* Creates one directory (its parent must exist); CAIRN_EEXISTS if the
     * name exists. */
    int (*mkdir)(struct cairn_fs *fs, const char *path);
    int (*list)(struct cairn_fs *fs, const char *path,
                struct cairn_fs_names *out);
    /* CAIRN_ENOTFOUND when path does not exist. */
    int (*stat)(struct cairn_fs *fs, const char *path,
                struct cairn_fs_stat *st);
    int (*fsize)(struct cairn_fs *fs, int fd, uint64_t *size_bytes);
};

/* Fills fs with the real POSIX implementation (open(2), pwrite(2),
 * fdatasync(2), fallocate(2) falling back to posix_fallocate, ...). Nothing
 * to free. Short writes and EINTR are retried inside pwrite; any other error
 * is returned. */
void cairn_fs_posix_init(struct cairn_fs *fs);

/* --- The faulty in-memory file system (tests and the simulator) ---------
 *
 * Starts empty but for the root directory "/" (paths are absolute, with '/'
 * separators, no "." or ".." components). Deterministic: every random choice
 * (where a write is torn, how short a short write is) comes from its own
 * generator, seeded from the caller's generator at init. */

/* The operations faults can be attached to. */
enum cairn_fs_mem_op {
    CAIRN_FS_MEM_WRITE = 0, /* pwrite */
    CAIRN_FS_MEM_SYNC,      /* fdatasync and fsync_dir */
    CAIRN_FS_MEM_ALLOC,     /* fallocate and ftruncate growth */
    CAIRN_FS_MEM_META,      /* open with CREATE, rename, unlink, mkdir */
    CAIRN_FS_MEM_OP_COUNT
};

/* Sets up fs as a new, empty in-memory file system; rng is only read from
 * during this call. CAIRN_ENOMEM if out of memory. Free with
 * cairn_fs_mem_close. */
int cairn_fs_mem_init(struct cairn_fs *fs, struct prng *rng);
/* Frees everything; handles still open become invalid. */
void cairn_fs_mem_close(struct cairn_fs *fs);

/* After `countdown` more successful operations of kind op, the next `repeat`
 * ones fail with `code` (CAIRN_EIO or CAIRN_ENOSPC, typically). For
 * CAIRN_FS_MEM_WRITE with `short_write` set, a failing write first writes a
 * random strict prefix of its bytes. countdown < 0 removes the fault. */
void cairn_fs_mem_fault(struct cairn_fs *fs, enum cairn_fs_mem_op op,
                        int countdown, int repeat, int code, bool short_write);
/* Each operation of kind op fails with `code` with probability p (for the
 * simulator's swarm faults); p == 0 turns it off. Independent of the
 * countdown fault above. */
void cairn_fs_mem_fault_rate(struct cairn_fs *fs, enum cairn_fs_mem_op op,
                             double p, int code, bool short_write);

/* A power loss: every file's bytes and size go back to what its last
 * successful fdatasync made durable, every directory's names to what its last
 * successful fsync_dir made durable (but each file unlinked since then stays
 * unlinked with probability 1/2, from the seed: a real disk may write back
 * some unsynced unlinks; renames and creates are undone), and every open handle
 * becomes invalid (operations on it return CAIRN_EINVAL; close still releases
 * it). With `tear`, the most recent write that was not yet durable is torn
 * instead of lost: a random subset of its 512-byte sectors reaches the disk, as
 * a real disk may leave it. Faults set with cairn_fs_mem_fault are cleared. */
void cairn_fs_mem_crash(struct cairn_fs *fs, bool tear);

/* Bytes written but not yet durable, over all files (tests). */
uint64_t cairn_fs_mem_unsynced_bytes(struct cairn_fs *fs);
/* Number of handles currently open (tests check for leaks). */
size_t cairn_fs_mem_open_handles(struct cairn_fs *fs);

#endif
