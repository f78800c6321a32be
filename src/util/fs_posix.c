/* The POSIX implementation of the file-system function table (util/fs.h). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/assert.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/mem.h"

void cairn_fs_names_free(struct cairn_fs_names *n)
{
    for (size_t i = 0; i < n->count; i++)
        cairn_free(n->names[i]);
    cairn_free(n->names);
    n->names = NULL;
    n->count = 0;
}

static int err_errno(void)
{
    return cairn_err_from_errno(errno);
}

static int px_open(struct cairn_fs *fs, const char *path, unsigned flags,
                   int *fd)
{
    (void)fs;
    CAIRN_ASSERT(!(flags & CAIRN_FS_RDONLY) != !(flags & CAIRN_FS_RDWR));
    int of = O_CLOEXEC | ((flags & CAIRN_FS_RDWR) ? O_RDWR : O_RDONLY);
    if (flags & CAIRN_FS_CREATE)
        of |= O_CREAT;
    if (flags & CAIRN_FS_EXCL)
        of |= O_EXCL;
    int f;
    do {
        f = open(path, of, 0600); /* member data is private, as etcd has it */
    } while (f < 0 && errno == EINTR);
    if (f < 0)
        return err_errno();
    *fd = f;
    return 0;
}

static int px_close(struct cairn_fs *fs, int fd)
{
    (void)fs;
    /* close(2) releases the descriptor even when it fails; never retry it. */
    return close(fd) == 0 ? 0 : err_errno();
}

static int px_pwrite(struct cairn_fs *fs, int fd, const void *data, size_t len,
                     uint64_t off)
{
    (void)fs;
    const uint8_t *p = data;
    /* Bounded: every turn writes at least one byte or returns. */
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_errno();
        }
        if (n == 0)
            return CAIRN_EIO;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Iovecs per pwritev(2) call: Linux's IOV_MAX; more are written in turns. */
#define PX_IOV_MAX 1024

static int px_pwritev(struct cairn_fs *fs, int fd,
                      const struct cairn_iovec *iov, size_t n, uint64_t off)
{
    (void)fs;
    struct iovec v[PX_IOV_MAX];
    size_t i = 0;    /* next piece of iov to load into v */
    size_t skip = 0; /* bytes of iov[i] already written */
    /* Bounded: every turn writes at least one byte or returns. */
    for (;;) {
        size_t nv = 0;
        for (size_t k = i; k < n && nv < PX_IOV_MAX; k++) {
            size_t s = k == i ? skip : 0;
            if (iov[k].len == s)
                continue;
            v[nv].iov_base = (uint8_t *)iov[k].base + s; /* only read */
            v[nv].iov_len = iov[k].len - s;
            nv++;
        }
        if (nv == 0)
            return 0;
        ssize_t w = pwritev(fd, v, (int)nv, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return err_errno();
        }
        if (w == 0)
            return CAIRN_EIO;
        off += (uint64_t)w;
        /* Advance past what was written, within or across pieces. */
        size_t left = (size_t)w;
        while (left > 0) {
            size_t rest = iov[i].len - skip;
            if (left < rest) {
                skip += left;
                left = 0;
            } else {
                left -= rest;
                i++;
                skip = 0;
            }
        }
    }
}

static int px_pread(struct cairn_fs *fs, int fd, void *data, size_t len,
                    uint64_t off, size_t *nread)
{
    (void)fs;
    uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return err_errno();
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *nread = done;
    return 0;
}

static int px_fdatasync(struct cairn_fs *fs, int fd)
{
    (void)fs;
    /* No retry on EINTR either: after a failed fdatasync the kernel may have
     * dropped the dirty pages, so the caller must treat any failure as fatal.
     */
    return fdatasync(fd) == 0 ? 0 : err_errno();
}

static int px_fsync_dir(struct cairn_fs *fs, const char *path)
{
    (void)fs;
    int d = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return err_errno();
    int rv = fsync(d) == 0 ? 0 : err_errno();
    close(d);
    return rv;
}

static int px_fallocate(struct cairn_fs *fs, int fd, uint64_t off, uint64_t len)
{
    (void)fs;
    if (fallocate(fd, 0, (off_t)off, (off_t)len) == 0)
        return 0;
    if (errno != EOPNOTSUPP && errno != ENOSYS)
        return err_errno();
    /* tmpfs and some others lack fallocate(2); posix_fallocate writes zeros
     * instead, which reserves the space just the same. */
    int e = posix_fallocate(fd, (off_t)off, (off_t)len);
    return e == 0 ? 0 : cairn_err_from_errno(e);
}

static int px_ftruncate(struct cairn_fs *fs, int fd, uint64_t size_bytes)
{
    (void)fs;
    int rv;
    do {
        rv = ftruncate(fd, (off_t)size_bytes);
    } while (rv < 0 && errno == EINTR);
    return rv == 0 ? 0 : err_errno();
}

static int px_rename(struct cairn_fs *fs, const char *from, const char *to)
{
    (void)fs;
    return rename(from, to) == 0 ? 0 : err_errno();
}

static int px_unlink(struct cairn_fs *fs, const char *path)
{
    (void)fs;
    return unlink(path) == 0 ? 0 : err_errno();
}

static int px_mkdir(struct cairn_fs *fs, const char *path)
{
    (void)fs;
    return mkdir(path, 0700) == 0 ? 0 : err_errno();
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int px_list(struct cairn_fs *fs, const char *path,
                   struct cairn_fs_names *out)
{
    (void)fs;
    out->names = NULL;
    out->count = 0;
    DIR *d = opendir(path);
    if (!d)
        return err_errno();
    size_t cap = 0;
    int rv = 0;
    struct dirent *e;
    /* Bounded by the directory's size. */
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (out->count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **nn = cairn_realloc(out->names, ncap * sizeof *nn);
            if (!nn) {
                rv = CAIRN_ENOMEM;
                break;
            }
            out->names = nn;
            cap = ncap;
        }
        char *s = cairn_strdup(e->d_name);
        if (!s) {
            rv = CAIRN_ENOMEM;
            break;
        }
        out->names[out->count++] = s;
    }
    closedir(d);
    if (rv != 0) {
        cairn_fs_names_free(out);
        return rv;
    }
    if (out->count > 1)
        qsort(out->names, out->count, sizeof *out->names, name_cmp);
    return 0;
}

static int px_stat(struct cairn_fs *fs, const char *path,
                   struct cairn_fs_stat *st)
{
    (void)fs;
    struct stat s;
    if (stat(path, &s) != 0)
        return err_errno();
    st->is_dir = S_ISDIR(s.st_mode);
    st->size_bytes = st->is_dir ? 0 : (uint64_t)s.st_size;
    return 0;
}

static int px_fsize(struct cairn_fs *fs, int fd, uint64_t *size_bytes)
{
    (void)fs;
    struct stat s;
    if (fstat(fd, &s) != 0)
        return err_errno();
    *size_bytes = (uint64_t)s.st_size;
    return 0;
}

void cairn_fs_posix_init(struct cairn_fs *fs)
{
    memset(fs, 0, sizeof *fs);
    fs->open = px_open;
    fs->close = px_close;
    fs->pwrite = px_pwrite;
    fs->pwritev = px_pwritev;
    fs->pread = px_pread;
    fs->fdatasync = px_fdatasync;
    fs->fsync_dir = px_fsync_dir;
    fs->fallocate = px_fallocate;
    fs->ftruncate = px_ftruncate;
    fs->rename = px_rename;
    fs->unlink = px_unlink;
    fs->mkdir = px_mkdir;
    fs->list = px_list;
    fs->stat = px_stat;
    fs->fsize = px_fsize;
}
