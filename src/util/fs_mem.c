/* The faulty in-memory file system of util/fs.h: tracks what is durable
 * apart from what is merely written, loses the difference on a simulated
 * crash, and fails operations on command, deterministically. */
#include <stdlib.h>
#include <string.h>

#include "util/assert.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/mem.h"
#include "util/prng.h"

#define SECTOR_BYTES 512u

struct mem_inode {
    bool is_dir;
    unsigned refs;     /* names (current and durable) and handles */
    struct buf data;   /* what readers see now */
    struct buf synced; /* what survives a crash */
    bool dirty;        /* data differs from synced in [dirty_lo, dirty_hi) */
    uint64_t dirty_lo, dirty_hi;
};

struct mem_entry {
    char *path;
    struct mem_inode *ino;
};

/* A namespace: every path (but "/") with its inode, unordered. */
struct mem_names {
    struct mem_entry *e;
    size_t n, cap;
};

struct mem_handle {
    struct mem_inode *ino; /* NULL: slot free */
    bool stale;            /* the file system crashed since it was opened */
    bool writable;
};

struct mem_fault {
    int countdown; /* < 0: off */
    int repeat;
    int code;
    bool short_write;
    double rate;
    int rate_code;
    bool rate_short;
};

struct mem_fs {
    struct prng rng;
    struct mem_names cur; /* the names as the process sees them */
    struct mem_names dur; /* the names a crash leaves */
    struct mem_handle *h;
    size_t nh;
    struct mem_fault faults[CAIRN_FS_MEM_OP_COUNT];
    /* The most recent write not yet durable, for tearing on a crash. */
    struct mem_inode *last_ino; /* holds a reference while set */
    uint64_t last_off, last_len;
};

static struct mem_fs *M(struct cairn_fs *fs)
{
    return fs->impl;
}

static void ino_unref(struct mem_inode *ino)
{
    CAIRN_ASSERT(ino->refs > 0);
    if (--ino->refs == 0) {
        buf_free(&ino->data);
        buf_free(&ino->synced);
        cairn_free(ino);
    }
}

static struct mem_entry *names_find(struct mem_names *ns, const char *path)
{
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->e[i].path, path) == 0)
            return &ns->e[i];
    return NULL;
}

/* Sets path -> ino (ino may be NULL: removes the name). */
static int names_set(struct mem_names *ns, const char *path,
                     struct mem_inode *ino)
{
    struct mem_entry *e = names_find(ns, path);
    if (e) {
        if (ino)
            ino->refs++;
        ino_unref(e->ino);
        if (ino) {
            e->ino = ino;
        } else {
            cairn_free(e->path);
            *e = ns->e[--ns->n];
        }
        return 0;
    }
    if (!ino)
        return 0;
    if (ns->n == ns->cap) {
        size_t ncap = ns->cap ? ns->cap * 2 : 16;
        struct mem_entry *ne = cairn_realloc(ns->e, ncap * sizeof *ne);
        if (!ne)
            return CAIRN_ENOMEM;
        ns->e = ne;
        ns->cap = ncap;
    }
    char *p = cairn_strdup(path);
    if (!p)
        return CAIRN_ENOMEM;
    ns->e[ns->n].path = p;
    ns->e[ns->n].ino = ino;
    ns->n++;
    ino->refs++;
    return 0;
}

static void names_clear(struct mem_names *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        cairn_free(ns->e[i].path);
        ino_unref(ns->e[i].ino);
    }
    cairn_free(ns->e);
    ns->e = NULL;
    ns->n = ns->cap = 0;
}

/* The parent directory of path, written into out ("/" for "/a"). */
static int parent_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (path[0] != '/' || !slash || slash[1] == '\0')
        return CAIRN_EINVAL;
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= size)
        return CAIRN_ETOOBIG;
    memcpy(out, path, n);
    out[n] = '\0';
    return 0;
}

static bool is_root(const char *path)
{
    return strcmp(path, "/") == 0;
}

/* Whether the parent of path exists as a directory in the current names. */
static int check_parent(struct mem_fs *m, const char *path)
{
    char parent[4096];
    int rv = parent_of(path, parent, sizeof parent);
    if (rv != 0)
        return rv;
    if (is_root(parent))
        return 0;
    struct mem_entry *e = names_find(&m->cur, parent);
    if (!e)
        return CAIRN_ENOTFOUND;
    return e->ino->is_dir ? 0 : CAIRN_EINVAL;
}

/* Whether the next operation of kind op is to fail, and with what. */
static int fault_hit(struct mem_fs *m, enum cairn_fs_mem_op op,
                     bool *short_write)
{
    struct mem_fault *f = &m->faults[op];
    *short_write = false;
    if (f->countdown > 0) {
        f->countdown--;
    } else if (f->countdown == 0 && f->repeat > 0) {
        f->repeat--;
        if (f->repeat == 0)
            f->countdown = -1;
        *short_write = f->short_write;
        return f->code;
    }
    if (f->rate > 0 && prng_chance(&m->rng, f->rate)) {
        *short_write = f->rate_short;
        return f->rate_code;
    }
    return 0;
}

static int handle_get(struct mem_fs *m, int fd, struct mem_handle **out)
{
    if (fd < 0 || (size_t)fd >= m->nh || !m->h[fd].ino)
        return CAIRN_EINVAL;
    if (m->h[fd].stale)
        return CAIRN_EINVAL;
    *out = &m->h[fd];
    return 0;
}

static void mark_dirty(struct mem_inode *ino, uint64_t lo, uint64_t hi)
{
    if (lo >= hi)
        return;
    if (!ino->dirty) {
        ino->dirty = true;
        ino->dirty_lo = lo;
        ino->dirty_hi = hi;
        return;
    }
    if (lo < ino->dirty_lo)
        ino->dirty_lo = lo;
    if (hi > ino->dirty_hi)
        ino->dirty_hi = hi;
}

/* Grows or shrinks b to size, new bytes zero. */
static int buf_resize_zero(struct buf *b, uint64_t size)
{
    if (size > SIZE_MAX)
        return CAIRN_ETOOBIG;
    if (size <= b->len) {
        b->len = (size_t)size;
        return 0;
    }
    return buf_append_zeros(b, (size_t)size - b->len);
}

static int mem_open(struct cairn_fs *fs, const char *path, unsigned flags,
                    int *fd)
{
    struct mem_fs *m = M(fs);
    CAIRN_ASSERT(!(flags & CAIRN_FS_RDONLY) != !(flags & CAIRN_FS_RDWR));
    struct mem_entry *e = names_find(&m->cur, path);
    struct mem_inode *ino = NULL;
    if (e) {
        if ((flags & CAIRN_FS_CREATE) && (flags & CAIRN_FS_EXCL))
            return CAIRN_EEXISTS;
        if (e->ino->is_dir)
            return CAIRN_EINVAL;
        ino = e->ino;
    } else {
        if (!(flags & CAIRN_FS_CREATE))
            return CAIRN_ENOTFOUND;
        int rv = check_parent(m, path);
        if (rv != 0)
            return rv;
        bool sw;
        rv = fault_hit(m, CAIRN_FS_MEM_META, &sw);
        if (rv != 0)
            return rv;
    }
    /* Find a free slot first, so that a failure leaves nothing behind. */
    size_t slot = m->nh;
    for (size_t i = 0; i < m->nh; i++) {
        if (!m->h[i].ino) {
            slot = i;
            break;
        }
    }
    if (slot == m->nh) {
        if (m->nh >= 1u << 20)
            return CAIRN_EBUSY; /* a bound on open handles */
        size_t nn = m->nh ? m->nh * 2 : 16;
        struct mem_handle *nh = cairn_realloc(m->h, nn * sizeof *nh);
        if (!nh)
            return CAIRN_ENOMEM;
        memset(nh + m->nh, 0, (nn - m->nh) * sizeof *nh);
        m->h = nh;
        m->nh = nn;
    }
    if (!ino) {
        ino = cairn_calloc(1, sizeof *ino);
        if (!ino)
            return CAIRN_ENOMEM;
        ino->refs = 1; /* the handle's, taken below as ours */
        int rv = names_set(&m->cur, path, ino);
        if (rv != 0) {
            cairn_free(ino);
            return rv;
        }
    } else {
        ino->refs++;
    }
    m->h[slot].ino = ino;
    m->h[slot].stale = false;
    m->h[slot].writable = (flags & CAIRN_FS_RDWR) != 0;
    *fd = (int)slot;
    return 0;
}

static int mem_close(struct cairn_fs *fs, int fd)
{
    struct mem_fs *m = M(fs);
    if (fd < 0 || (size_t)fd >= m->nh || !m->h[fd].ino)
        return CAIRN_EINVAL;
    ino_unref(m->h[fd].ino);
    m->h[fd].ino = NULL;
    return 0;
}

static void set_last_write(struct mem_fs *m, struct mem_inode *ino,
                           uint64_t off, uint64_t len)
{
    if (m->last_ino)
        ino_unref(m->last_ino);
    m->last_ino = ino;
    ino->refs++;
    m->last_off = off;
    m->last_len = len;
}

static int mem_pwritev(struct cairn_fs *fs, int fd,
                       const struct cairn_iovec *iov, size_t niov, uint64_t off)
{
    struct mem_fs *m = M(fs);
    struct mem_handle *h;
    int rv = handle_get(m, fd, &h);
    if (rv != 0)
        return rv;
    if (!h->writable)
        return CAIRN_EINVAL;
    size_t len = 0;
    for (size_t i = 0; i < niov; i++) {
        if (iov[i].len > SIZE_MAX - len)
            return CAIRN_ETOOBIG;
        len += iov[i].len;
    }
    if (off > SIZE_MAX - len)
        return CAIRN_ETOOBIG;
    bool short_write;
    int fault = fault_hit(m, CAIRN_FS_MEM_WRITE, &short_write);
    size_t n = len;
    if (fault != 0)
        n = short_write && len > 1 ? (size_t)prng_below(&m->rng, len) : 0;
    if (n > 0) {
        struct mem_inode *ino = h->ino;
        if (off + n > ino->data.len) {
            rv = buf_resize_zero(&ino->data, off + n);
            if (rv != 0)
                return rv;
        }
        /* Bounded by niov: the pieces in order, up to n bytes. */
        size_t done = 0;
        for (size_t i = 0; i < niov && done < n; i++) {
            size_t k = iov[i].len < n - done ? iov[i].len : n - done;
            if (k)
                memcpy(ino->data.data + off + done, iov[i].base, k);
            done += k;
        }
        mark_dirty(ino, off, off + n);
        set_last_write(m, ino, off, n);
    }
    return fault;
}

static int mem_pwrite(struct cairn_fs *fs, int fd, const void *data, size_t len,
                      uint64_t off)
{
    struct cairn_iovec one = {data, len};
    return mem_pwritev(fs, fd, &one, 1, off);
}

static int mem_pread(struct cairn_fs *fs, int fd, void *data, size_t len,
                     uint64_t off, size_t *nread)
{
    struct mem_fs *m = M(fs);
    struct mem_handle *h;
    int rv = handle_get(m, fd, &h);
    if (rv != 0)
        return rv;
    const struct buf *d = &h->ino->data;
    size_t n = 0;
    if (off < d->len) {
        n = d->len - (size_t)off;
        if (n > len)
            n = len;
        memcpy(data, d->data + off, n);
    }
    *nread = n;
    return 0;
}

static int ino_sync(struct mem_fs *m, struct mem_inode *ino)
{
    if (!ino->dirty && ino->synced.len == ino->data.len)
        return 0;
    int rv = buf_resize_zero(&ino->synced, ino->data.len);
    if (rv != 0)
        return rv;
    if (ino->dirty) {
        uint64_t hi =
            ino->dirty_hi < ino->data.len ? ino->dirty_hi : ino->data.len;
        if (ino->dirty_lo < hi)
            memcpy(ino->synced.data + ino->dirty_lo,
                   ino->data.data + ino->dirty_lo, hi - ino->dirty_lo);
        ino->dirty = false;
    }
    if (m->last_ino == ino) {
        ino_unref(ino);
        m->last_ino = NULL;
    }
    return 0;
}

static int mem_fdatasync(struct cairn_fs *fs, int fd)
{
    struct mem_fs *m = M(fs);
    struct mem_handle *h;
    int rv = handle_get(m, fd, &h);
    if (rv != 0)
        return rv;
    bool sw;
    rv = fault_hit(m, CAIRN_FS_MEM_SYNC, &sw);
    if (rv != 0)
        return rv;
    return ino_sync(m, h->ino);
}

/* Whether path lies directly in directory dir. */
static bool in_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    const char *rest;
    if (is_root(dir)) {
        rest = path + 1;
        if (path[0] != '/')
            return false;
    } else {
        if (strncmp(path, dir, n) != 0 || path[n] != '/')
            return false;
        rest = path + n + 1;
    }
    return rest[0] != '\0' && strchr(rest, '/') == NULL;
}

static int mem_fsync_dir(struct cairn_fs *fs, const char *path)
{
    struct mem_fs *m = M(fs);
    if (!is_root(path)) {
        struct mem_entry *e = names_find(&m->cur, path);
        if (!e)
            return CAIRN_ENOTFOUND;
        if (!e->ino->is_dir)
            return CAIRN_EINVAL;
    }
    bool sw;
    int rv = fault_hit(m, CAIRN_FS_MEM_SYNC, &sw);
    if (rv != 0)
        return rv;
    /* Durable names in dir that are gone now go; current ones are copied. */
    for (size_t i = 0; i < m->dur.n;) {
        if (in_dir(m->dur.e[i].path, path) &&
            !names_find(&m->cur, m->dur.e[i].path)) {
            cairn_free(m->dur.e[i].path);
            ino_unref(m->dur.e[i].ino);
            m->dur.e[i] = m->dur.e[--m->dur.n];
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < m->cur.n; i++) {
        if (!in_dir(m->cur.e[i].path, path))
            continue;
        rv = names_set(&m->dur, m->cur.e[i].path, m->cur.e[i].ino);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int mem_fallocate(struct cairn_fs *fs, int fd, uint64_t off,
                         uint64_t len)
{
    struct mem_fs *m = M(fs);
    struct mem_handle *h;
    int rv = handle_get(m, fd, &h);
    if (rv != 0)
        return rv;
    if (!h->writable || off > UINT64_MAX - len)
        return CAIRN_EINVAL;
    bool sw;
    rv = fault_hit(m, CAIRN_FS_MEM_ALLOC, &sw);
    if (rv != 0)
        return rv;
    struct mem_inode *ino = h->ino;
    if (off + len > ino->data.len) {
        uint64_t old = ino->data.len;
        rv = buf_resize_zero(&ino->data, off + len);
        if (rv != 0)
            return rv == CAIRN_ENOMEM ? CAIRN_ENOSPC : rv;
        mark_dirty(ino, old, off + len);
    }
    return 0;
}

static int mem_ftruncate(struct cairn_fs *fs, int fd, uint64_t size_bytes)
{
    struct mem_fs *m = M(fs);
    struct mem_handle *h;
    int rv = handle_get(m, fd, &h);
    if (rv != 0)
        return rv;
    if (!h->writable)
        return CAIRN_EINVAL;
    struct mem_inode *ino = h->ino;
    uint64_t old = ino->data.len;
    if (size_bytes > old) {
        bool sw;
        rv = fault_hit(m, CAIRN_FS_MEM_ALLOC, &sw);
        if (rv != 0)
            return rv;
    }
    rv = buf_resize_zero(&ino->data, size_bytes);
    if (rv != 0)
        return rv;
    mark_dirty(ino, size_bytes < old ? size_bytes : old,
               size_bytes < old ? old : size_bytes);
    return 0;
}

static int mem_rename(struct cairn_fs *fs, const char *from, const char *to)
{
    struct mem_fs *m = M(fs);
    struct mem_entry *e = names_find(&m->cur, from);
    if (!e)
        return CAIRN_ENOTFOUND;
    int rv = check_parent(m, to);
    if (rv != 0)
        return rv;
    struct mem_entry *t = names_find(&m->cur, to);
    if (e->ino->is_dir || (t && t->ino->is_dir))
        return CAIRN_EUNSUPPORTED; /* only files are renamed */
    if (strcmp(from, to) == 0)
        return 0;
    bool sw;
    rv = fault_hit(m, CAIRN_FS_MEM_META, &sw);
    if (rv != 0)
        return rv;
    struct mem_inode *ino = e->ino;
    rv = names_set(&m->cur, to, ino);
    if (rv != 0)
        return rv;
    return names_set(&m->cur, from, NULL);
}

static int mem_unlink(struct cairn_fs *fs, const char *path)
{
    struct mem_fs *m = M(fs);
    struct mem_entry *e = names_find(&m->cur, path);
    if (!e)
        return CAIRN_ENOTFOUND;
    if (e->ino->is_dir)
        return CAIRN_EINVAL;
    bool sw;
    int rv = fault_hit(m, CAIRN_FS_MEM_META, &sw);
    if (rv != 0)
        return rv;
    return names_set(&m->cur, path, NULL);
}

static int mem_mkdir(struct cairn_fs *fs, const char *path)
{
    struct mem_fs *m = M(fs);
    if (is_root(path) || names_find(&m->cur, path))
        return CAIRN_EEXISTS;
    int rv = check_parent(m, path);
    if (rv != 0)
        return rv;
    bool sw;
    rv = fault_hit(m, CAIRN_FS_MEM_META, &sw);
    if (rv != 0)
        return rv;
    struct mem_inode *ino = cairn_calloc(1, sizeof *ino);
    if (!ino)
        return CAIRN_ENOMEM;
    ino->is_dir = true;
    ino->refs = 1;
    rv = names_set(&m->cur, path, ino);
    ino_unref(ino);
    return rv;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int mem_list(struct cairn_fs *fs, const char *path,
                    struct cairn_fs_names *out)
{
    struct mem_fs *m = M(fs);
    out->names = NULL;
    out->count = 0;
    if (!is_root(path)) {
        struct mem_entry *e = names_find(&m->cur, path);
        if (!e)
            return CAIRN_ENOTFOUND;
        if (!e->ino->is_dir)
            return CAIRN_EINVAL;
    }
    size_t n = 0;
    for (size_t i = 0; i < m->cur.n; i++)
        n += in_dir(m->cur.e[i].path, path);
    if (n == 0)
        return 0;
    out->names = cairn_calloc(n, sizeof *out->names);
    if (!out->names)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < m->cur.n; i++) {
        if (!in_dir(m->cur.e[i].path, path))
            continue;
        const char *base = strrchr(m->cur.e[i].path, '/') + 1;
        char *s = cairn_strdup(base);
        if (!s) {
            cairn_fs_names_free(out);
            return CAIRN_ENOMEM;
        }
        out->names[out->count++] = s;
    }
    qsort(out->names, out->count, sizeof *out->names, str_cmp);
    return 0;
}

static int mem_stat(struct cairn_fs *fs, const char *path,
                    struct cairn_fs_stat *st)
{
    struct mem_fs *m = M(fs);
    if (is_root(path)) {
        st->is_dir = true;
        st->size_bytes = 0;
        return 0;
    }
    struct mem_entry *e = names_find(&m->cur, path);
    if (!e)
        return CAIRN_ENOTFOUND;
    st->is_dir = e->ino->is_dir;
    st->size_bytes = e->ino->is_dir ? 0 : e->ino->data.len;
    return 0;
}

static int mem_fsize(struct cairn_fs *fs, int fd, uint64_t *size_bytes)
{
    struct mem_fs *m = M(fs);
    struct mem_handle *h;
    int rv = handle_get(m, fd, &h);
    if (rv != 0)
        return rv;
    *size_bytes = h->ino->data.len;
    return 0;
}

int cairn_fs_mem_init(struct cairn_fs *fs, struct prng *rng)
{
    memset(fs, 0, sizeof *fs);
    struct mem_fs *m = cairn_calloc(1, sizeof *m);
    if (!m)
        return CAIRN_ENOMEM;
    prng_seed(&m->rng, prng_fork_seed(rng));
    for (int i = 0; i < CAIRN_FS_MEM_OP_COUNT; i++)
        m->faults[i].countdown = -1;
    fs->impl = m;
    fs->open = mem_open;
    fs->close = mem_close;
    fs->pwrite = mem_pwrite;
    fs->pwritev = mem_pwritev;
    fs->pread = mem_pread;
    fs->fdatasync = mem_fdatasync;
    fs->fsync_dir = mem_fsync_dir;
    fs->fallocate = mem_fallocate;
    fs->ftruncate = mem_ftruncate;
    fs->rename = mem_rename;
    fs->unlink = mem_unlink;
    fs->mkdir = mem_mkdir;
    fs->list = mem_list;
    fs->stat = mem_stat;
    fs->fsize = mem_fsize;
    return 0;
}

void cairn_fs_mem_close(struct cairn_fs *fs)
{
    struct mem_fs *m = M(fs);
    if (!m)
        return;
    for (size_t i = 0; i < m->nh; i++)
        if (m->h[i].ino)
            ino_unref(m->h[i].ino);
    cairn_free(m->h);
    if (m->last_ino)
        ino_unref(m->last_ino);
    names_clear(&m->cur);
    names_clear(&m->dur);
    cairn_free(m);
    fs->impl = NULL;
}

void cairn_fs_mem_fault(struct cairn_fs *fs, enum cairn_fs_mem_op op,
                        int countdown, int repeat, int code, bool short_write)
{
    struct mem_fs *m = M(fs);
    CAIRN_ASSERT(op < CAIRN_FS_MEM_OP_COUNT);
    CAIRN_ASSERT(countdown < 0 || (repeat > 0 && code < 0));
    m->faults[op].countdown = countdown;
    m->faults[op].repeat = repeat;
    m->faults[op].code = code;
    m->faults[op].short_write = short_write;
}

void cairn_fs_mem_fault_rate(struct cairn_fs *fs, enum cairn_fs_mem_op op,
                             double p, int code, bool short_write)
{
    struct mem_fs *m = M(fs);
    CAIRN_ASSERT(op < CAIRN_FS_MEM_OP_COUNT);
    CAIRN_ASSERT(p == 0 || code < 0);
    m->faults[op].rate = p;
    m->faults[op].rate_code = code;
    m->faults[op].rate_short = short_write;
}

/* Whether every directory above path exists in the durable names. */
static bool dur_parents_exist(struct mem_fs *m, const char *path)
{
    char parent[4096];
    /* Bounded by the depth of path: each turn drops one component. */
    for (size_t depth = 0; depth < 4096; depth++) {
        if (parent_of(path, parent, sizeof parent) != 0)
            return false;
        if (is_root(parent))
            return true;
        struct mem_entry *e = names_find(&m->dur, parent);
        if (!e || !e->ino->is_dir)
            return false;
        path = names_find(&m->dur, parent)->path;
    }
    return false;
}

/* Whether any current name refers to ino (a renamed file's old name). */
static bool ino_named(const struct mem_names *ns, const struct mem_inode *ino)
{
    for (size_t i = 0; i < ns->n; i++)
        if (ns->e[i].ino == ino)
            return true;
    return false;
}

/* A real file system may write back some directory changes before their
 * fsync and not others: each unsynced unlink of a file reached the disk or
 * not, by a draw from the seed (docs/sim.md). Renames stay atomic (the old
 * name goes only with the directory sync), so a file never loses every name
 * it had. Runs before the durable names replace the current ones. */
static void keep_some_unlinks(struct mem_fs *m)
{
    for (size_t i = 0; i < m->dur.n;) {
        struct mem_entry *e = &m->dur.e[i];
        if (e->ino->is_dir || names_find(&m->cur, e->path) ||
            ino_named(&m->cur, e->ino) || !prng_chance(&m->rng, 0.5)) {
            i++;
            continue;
        }
        cairn_free(e->path);
        ino_unref(e->ino);
        *e = m->dur.e[--m->dur.n];
    }
}

void cairn_fs_mem_crash(struct cairn_fs *fs, bool tear)
{
    struct mem_fs *m = M(fs);
    /* Which sectors of the last write reach the disk: chosen before any
     * state changes, and copied out of the current bytes. */
    struct buf torn = BUF_INIT;
    uint64_t t_off = 0, t_len = 0;
    struct mem_inode *t_ino = NULL;
    if (tear && m->last_ino && m->last_ino->dirty) {
        t_ino = m->last_ino;
        t_off = m->last_off;
        t_len = m->last_len;
        if (t_off + t_len > t_ino->data.len)
            t_len = t_off < t_ino->data.len ? t_ino->data.len - t_off : 0;
        if (t_len > 0 &&
            buf_append(&torn, t_ino->data.data + t_off, (size_t)t_len) != 0)
            t_len = 0;
    }
    /* Every inode reachable from a name or a handle goes back to its
     * durable state. */
    for (size_t pass = 0; pass < 2; pass++) {
        struct mem_names *ns = pass == 0 ? &m->cur : &m->dur;
        for (size_t i = 0; i < ns->n; i++) {
            struct mem_inode *ino = ns->e[i].ino;
            if (!ino->dirty && ino->data.len == ino->synced.len)
                continue;
            if (ino->dirty) {
                uint64_t hi = ino->dirty_hi < ino->synced.len ? ino->dirty_hi
                                                              : ino->synced.len;
                /* Growth back to the durable size can need memory; the
                 * simulation cannot go on without it. */
                int rv = buf_resize_zero(&ino->data, ino->synced.len);
                CAIRN_ASSERT(rv == 0);
                if (ino->dirty_lo < hi)
                    memcpy(ino->data.data + ino->dirty_lo,
                           ino->synced.data + ino->dirty_lo,
                           hi - ino->dirty_lo);
                ino->dirty = false;
            } else {
                int rv = buf_resize_zero(&ino->data, ino->synced.len);
                CAIRN_ASSERT(rv == 0);
            }
        }
    }
    if (t_ino && t_len > 0) {
        /* Keep each sector of the write with probability 1/2. */
        uint64_t first = t_off / SECTOR_BYTES;
        uint64_t last = (t_off + t_len - 1) / SECTOR_BYTES;
        for (uint64_t s = first; s <= last; s++) {
            if (!prng_chance(&m->rng, 0.5))
                continue;
            uint64_t lo = s * SECTOR_BYTES < t_off ? t_off : s * SECTOR_BYTES;
            uint64_t hi = (s + 1) * SECTOR_BYTES;
            if (hi > t_off + t_len)
                hi = t_off + t_len;
            if (hi > t_ino->data.len && buf_resize_zero(&t_ino->data, hi) != 0)
                break;
            memcpy(t_ino->data.data + lo, torn.data + (lo - t_off), hi - lo);
            mark_dirty(t_ino, lo, hi);
        }
        /* What reached the disk is durable now, as a later sync of nothing
         * would find it. */
        ino_sync(m, t_ino);
    }
    buf_free(&torn);
    if (m->last_ino) {
        ino_unref(m->last_ino);
        m->last_ino = NULL;
    }
    keep_some_unlinks(m);
    /* The names: the durable ones whose directories survived. */
    names_clear(&m->cur);
    for (size_t i = 0; i < m->dur.n;) {
        if (!dur_parents_exist(m, m->dur.e[i].path)) {
            cairn_free(m->dur.e[i].path);
            ino_unref(m->dur.e[i].ino);
            m->dur.e[i] = m->dur.e[--m->dur.n];
            i = 0; /* a removal may orphan names already looked at */
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < m->dur.n; i++) {
        /* Fails only when out of memory, which ends a simulation anyway. */
        int rv = names_set(&m->cur, m->dur.e[i].path, m->dur.e[i].ino);
        CAIRN_ASSERT(rv == 0);
    }
    for (size_t i = 0; i < m->nh; i++)
        if (m->h[i].ino)
            m->h[i].stale = true;
    for (int i = 0; i < CAIRN_FS_MEM_OP_COUNT; i++) {
        m->faults[i].countdown = -1;
        m->faults[i].repeat = 0;
    }
}

uint64_t cairn_fs_mem_unsynced_bytes(struct cairn_fs *fs)
{
    struct mem_fs *m = M(fs);
    uint64_t total = 0;
    for (size_t i = 0; i < m->cur.n; i++) {
        const struct mem_inode *ino = m->cur.e[i].ino;
        if (ino->dirty)
            total += ino->dirty_hi - ino->dirty_lo;
    }
    return total;
}

size_t cairn_fs_mem_open_handles(struct cairn_fs *fs)
{
    struct mem_fs *m = M(fs);
    size_t n = 0;
    for (size_t i = 0; i < m->nh; i++)
        n += m->h[i].ino != NULL;
    return n;
}
