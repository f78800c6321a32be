/* bench-wal: what the WAL costs over the disk's own limit. For each batch
 * shape (1, 16, 256 entries of 256 B and 4 KiB) it compares WAL appends
 * (the entries and a hard state, one fdatasync) with the raw cost: pwrite +
 * fdatasync of the same payload bytes after the previous ones in a plain
 * file in the same directory. It prints
 *   RESULT wal batch=<entries> size=<bytes> entries_per_s=… mb_per_s=…
 *          ratio_to_raw=… ratio_p25=… ratio_p75=… ratio_mean=… pairs=…
 *          ratio_raw_first=… ratio_wal_first=… framing=… raw_cpu_us=…
 *          wal_cpu_us=…
 * The disk is shared with other work and its speed swings by 10x within
 * seconds, so the two are measured as PAIRS adjacent operations, one raw
 * write+fdatasync and one WAL append, the order flipped every pair (raw
 * first, WAL first, ...): both members of a pair see the same disk.
 * ratio_to_raw is the median over pairs of raw time / WAL time (1.0: the
 * WAL costs nothing over the disk), p25/p75 its quartiles; ratio_mean is the
 * whole run's raw time / WAL time (the throughput ratio, at the mercy of
 * the slowest syncs). framing is the WAL's bytes per payload byte (record
 * headers, padding, the hard state): the raw path writes only the payload.
 * raw_cpu_us and wal_cpu_us are the thread's CPU time per operation.
 * ratio_raw_first and ratio_wal_first are the medians of the pairs of each
 * order. The raw file is preallocated and zero-filled, as WAL segments are,
 * so the raw path pays no file-size updates nor extent conversions: it is
 * the disk's limit, not a strawman; it is written at advancing offsets and
 * replaced by a fresh one when full, as the WAL's segments are. What the WAL
 * thread does between batches (preparing the next segment; here also recording
 * a snapshot and releasing old segments) is timed apart and printed per segment
 * prepared as RESULT wal_idle; RESULT wal_raw has the raw path's own figures.
 * Usage: bench-wal [directory]   (default $TMPDIR, else /tmp); a temporary
 * folder is made inside it and removed at the end.
 * CAIRN_BENCH_WAL_SECONDS sets the time per shape (default 2.0; at least
 * PAIRS_MIN pairs are run whatever it takes),
 * CAIRN_BENCH_WAL_PAIRS a fixed number of pairs instead,
 * CAIRN_BENCH_WAL_SEGMENT_MB the segment size (default: the WAL's);
 * CAIRN_BENCH_WAL_BATCH and CAIRN_BENCH_WAL_SIZE pick one shape;
 * CAIRN_BENCH_WAL_NO_ZERO_FILL=1 prepares segments with fallocate only;
 * CAIRN_BENCH_WAL_DUMP=<file> appends every pair's two times to file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wal/wal.h"

/* Bounds on the pairs of one shape, whatever the disk's speed. */
#define PAIRS_MIN 1000
#define PAIRS_MAX 100000
#define WARMUP_ROUNDS 10

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

static double cpu_s(void)
{
    return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of v[0..n), n > 0, by the nearest rank; sorts v. */
static double quantile(double *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void die(const char *what, int code, const char *text)
{
    fprintf(stderr, "bench-wal: %s: %s\n", what,
            text ? text : cairn_strerror(code));
    exit(1);
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static void rm_tree(struct cairn_fs *fs, const char *dir)
{
    struct cairn_fs_names names;
    if (fs->list(fs, dir, &names) != 0)
        return;
    for (size_t i = 0; i < names.count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names.names[i]);
        struct cairn_fs_stat st;
        if (fs->stat(fs, path, &st) == 0 && st.is_dir)
            rm_tree(fs, path);
        else
            fs->unlink(fs, path);
    }
    cairn_fs_names_free(&names);
    rmdir(dir);
}

/* The raw path: a plain file preallocated (fallocate), zero-filled and
 * synced, so that each round costs what the disk needs to make `bytes`
 * durable and nothing else: the physical limit the WAL is compared with.
 * Like the WAL, it never writes a byte twice: writes go at advancing
 * offsets, and when a file (the size of a WAL segment) is full the next
 * round goes to a fresh one prepared between pairs, as the WAL thread
 * prepares segments, while the full one is closed and its space freed, as
 * the WAL releases segments. */
struct raw {
    char dir[2048];
    int fd;
    uint64_t off, size;
    size_t bytes;
    bool full;
    size_t files; /* prepared after the first */
    double idle_s;
};

static uint64_t segment_bytes(void)
{
    uint64_t mb = env_u64("CAIRN_BENCH_WAL_SEGMENT_MB", 0);
    return mb ? mb * 1024 * 1024 : WAL_SEGMENT_SIZE_DEFAULT;
}

/* A fresh file of a whole number of `bytes` rounds (at least one), at
 * least a segment's size; unlinked at once, so closing it frees it. */
static void raw_new_file(struct raw *r)
{
    uint64_t total = segment_bytes();
    total = (total + r->bytes - 1) / r->bytes * r->bytes;
    char path[2100];
    snprintf(path, sizeof path, "%s/raw", r->dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        die(path, cairn_err_from_errno(errno), NULL);
    unlink(path);
    /* Reserved and written, as the WAL prepares its segments. */
    if (fallocate(fd, 0, 0, (off_t)total) != 0)
        die("raw preallocate", cairn_err_from_errno(errno), NULL);
    static const uint8_t zeros[1 << 16];
    for (uint64_t off = 0; off < total; off += sizeof zeros)
        if (pwrite(fd, zeros, sizeof zeros, (off_t)off) < 0)
            die("raw zero-fill", cairn_err_from_errno(errno), NULL);
    if (fsync(fd) != 0)
        die("raw fsync", cairn_err_from_errno(errno), NULL);
    if (r->fd >= 0)
        close(r->fd);
    r->fd = fd;
    r->off = 0;
    r->size = total;
    r->full = false;
}

static void raw_open(struct raw *r, const char *dir, size_t bytes)
{
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    r->fd = -1;
    r->bytes = bytes;
    r->files = 0;
    r->idle_s = 0;
    raw_new_file(r);
}

/* One round: write `bytes` after the last ones, fdatasync. */
static void raw_op(struct raw *r, const uint8_t *data)
{
    size_t done = 0, bytes = r->bytes;
    while (done < bytes) {
        ssize_t n =
            pwrite(r->fd, data + done, bytes - done, (off_t)(r->off + done));
        if (n <= 0)
            die("raw write", cairn_err_from_errno(errno), NULL);
        done += (size_t)n;
    }
    r->off += bytes;
    r->full = r->off + bytes > r->size;
    if (fdatasync(r->fd) != 0)
        die("raw fdatasync", cairn_err_from_errno(errno), NULL);
}

/* Between pairs: a full file is replaced by a fresh one. */
static void raw_idle(struct raw *r)
{
    if (!r->full)
        return;
    double t0 = now_s();
    raw_new_file(r);
    r->files++;
    r->idle_s += now_s() - t0;
}

/* The WAL path: appends of `batch` entries of `size` bytes with the hard
 * state, preparing the next segment between appends as the WAL thread does
 * when idle (timed apart). */
struct walrun {
    struct wal *w;
    char dir[2048];
    struct raft_entry *ents;
    struct raft_hard_state hs;
    raft_index next;
    double idle_s;
    size_t prepared;
    uint64_t bytes; /* written by the timed appends */
};

static void wal_run_open(struct walrun *r, struct cairn_fs *fs, const char *dir,
                         size_t batch)
{
    snprintf(r->dir, sizeof r->dir, "%s/wal", dir);
    struct wal_options o = {
        .fs = fs,
        .dir = r->dir,
        .segment_size_bytes = segment_bytes(),
        .no_zero_fill = env_u64("CAIRN_BENCH_WAL_NO_ZERO_FILL", 0) != 0,
    };
    struct wal_metadata meta = {1, 1};
    struct cairn_errmsg m;
    int rv = wal_create(&o, &meta, &r->w, &m);
    if (rv != 0)
        die("wal_create", rv, m.text);
    r->ents = cairn_calloc(batch, sizeof *r->ents);
    if (!r->ents)
        die("alloc", CAIRN_ENOMEM, NULL);
    r->next = 1;
    r->idle_s = 0;
    r->prepared = 0;
    r->bytes = 0;
}

/* One append of `batch` entries with the hard state. */
/* The caller's part (Raft hands the WAL thread its entries ready), kept
 * out of the timing as the raw path prepares nothing either. */
static void wal_fill(struct walrun *r, size_t batch, size_t size,
                     const uint8_t *data)
{
    for (size_t i = 0; i < batch; i++) {
        r->ents[i].index = r->next + i;
        r->ents[i].term = 1;
        r->ents[i].type = 0;
        r->ents[i].data = data + i * size;
        r->ents[i].len = size;
    }
    r->hs = (struct raft_hard_state){1, 1, r->next - 1};
}

/* One append of the filled batch. */
static void wal_op(struct walrun *r, size_t batch)
{
    struct cairn_errmsg m;
    uint64_t b0 = wal_bytes_appended(r->w);
    int rv = wal_append(r->w, &r->hs, r->ents, batch, &m);
    if (rv != 0)
        die("wal_append", rv, m.text);
    r->bytes += wal_bytes_appended(r->w) - b0;
    r->next += batch;
}

/* What the WAL thread does when idle: prepares the next segment, and
 * once segments pile up records a snapshot at the end of the log and
 * releases what it covers (as the server does after a snapshot). */
static void wal_idle(struct walrun *r)
{
    struct cairn_errmsg m;
    double p0 = now_s();
    size_t before = wal_segment_count(r->w);
    int rv = wal_prepare(r->w, &m);
    if (rv != 0)
        die("wal_prepare", rv, m.text);
    if (wal_segment_count(r->w) > before)
        r->prepared++;
    if (wal_segment_count(r->w) > 3) {
        raft_index last = wal_last_index(r->w);
        rv = wal_snapshot(r->w, last, 1, &m);
        if (rv == 0)
            rv = wal_release(r->w, last, &m);
        if (rv != 0)
            die("wal release", rv, m.text);
    }
    r->idle_s += now_s() - p0;
}

static void wal_run_close(struct walrun *r, struct cairn_fs *fs, size_t batch,
                          size_t size)
{
    if (r->prepared > 0)
        printf("RESULT wal_idle batch=%zu size=%zu segments=%zu "
               "ms_per_segment=%.1f\n",
               batch, size, r->prepared, r->idle_s * 1e3 / (double)r->prepared);
    wal_close(r->w);
    cairn_free(r->ents);
    rm_tree(fs, r->dir);
}

/* Per-operation times of one shape's pairs. */
struct samples {
    size_t n, cap;
    double *raw, *wal;       /* wall seconds of pair k */
    double raw_cpu, wal_cpu; /* summed thread CPU seconds */
};

static void samples_grow(struct samples *s)
{
    if (s->n < s->cap)
        return;
    s->cap = s->cap ? 2 * s->cap : 1024;
    s->raw = cairn_realloc(s->raw, s->cap * sizeof *s->raw);
    s->wal = cairn_realloc(s->wal, s->cap * sizeof *s->wal);
    if (!s->raw || !s->wal)
        die("alloc", CAIRN_ENOMEM, NULL);
}

/* Runs pairs for `seconds` (at least PAIRS_MIN, at most PAIRS_MAX), or
 * CAIRN_BENCH_WAL_PAIRS of them: raw then WAL for even k, WAL then raw for
 * odd k, each operation timed alone. */
static void run_pairs(struct samples *s, struct raw *raw, struct walrun *wr,
                      size_t batch, size_t size, double seconds,
                      const uint8_t *data)
{
    size_t fixed = (size_t)env_u64("CAIRN_BENCH_WAL_PAIRS", 0);
    double end = now_s() + seconds;
    for (size_t k = 0;; k++) {
        if (fixed ? k >= fixed
                  : k >= PAIRS_MAX || (k >= PAIRS_MIN && now_s() >= end))
            break;
        samples_grow(s);
        s->n = k + 1;
        for (int half = 0; half < 2; half++) {
            bool do_raw = (half == 0) == (k % 2 == 0);
            if (!do_raw)
                wal_fill(wr, batch, size, data);
            double t0 = now_s(), c0 = cpu_s();
            if (do_raw)
                raw_op(raw, data);
            else
                wal_op(wr, batch);
            double c = cpu_s() - c0, t = now_s() - t0;
            if (do_raw) {
                s->raw[k] = t;
                s->raw_cpu += c;
            } else {
                s->wal[k] = t;
                s->wal_cpu += c;
            }
        }
        /* Between pairs, so that a preparation's writes precede a raw and
         * a WAL operation alike. */
        wal_idle(wr);
        raw_idle(raw);
    }
}

static void report(struct samples *s, struct walrun *wr, struct raw *raw,
                   size_t batch, size_t size)
{
    size_t bytes = batch * size;
    double raw_s = 0, wal_s = 0;
    double *ratios = cairn_calloc(s->n, sizeof *ratios);
    if (!ratios)
        die("alloc", CAIRN_ENOMEM, NULL);
    const char *dump = getenv("CAIRN_BENCH_WAL_DUMP");
    FILE *df = dump && *dump ? fopen(dump, "a") : NULL;
    for (size_t k = 0; k < s->n; k++) {
        if (df)
            fprintf(df, "%zu %zu %.9f %.9f\n", batch, size, s->raw[k],
                    s->wal[k]);
        raw_s += s->raw[k];
        wal_s += s->wal[k];
        ratios[k] = s->wal[k] > 0 ? s->raw[k] / s->wal[k] : 1.0;
    }
    if (df)
        fclose(df);
    /* The medians of each order apart: the second operation of a pair
     * tends to be the slower one, which the alternation cancels in the
     * median of all pairs; printed so that a run shows how much. */
    double *order = cairn_calloc(s->n / 2 + 1, sizeof *order);
    if (!order)
        die("alloc", CAIRN_ENOMEM, NULL);
    double by_order[2];
    for (size_t first = 0; first < 2; first++) {
        size_t m = 0;
        for (size_t k = first; k < s->n; k += 2)
            order[m++] = ratios[k];
        by_order[first] = m ? quantile(order, m, 0.5) : 0;
    }
    cairn_free(order);
    double p25 = quantile(ratios, s->n, 0.25);
    double p75 = quantile(ratios, s->n, 0.75);
    double med = quantile(ratios, s->n, 0.5);
    cairn_free(ratios);
    double n = (double)s->n;
    double entries = n * (double)batch;
    double framing = (double)wr->bytes / (n * (double)bytes);
    printf("RESULT wal batch=%zu size=%zu entries_per_s=%.0f mb_per_s=%.2f "
           "ratio_to_raw=%.3f ratio_p25=%.3f ratio_p75=%.3f ratio_mean=%.3f "
           "pairs=%zu ratio_raw_first=%.3f ratio_wal_first=%.3f "
           "framing=%.3f raw_cpu_us=%.1f wal_cpu_us=%.1f\n",
           batch, size, entries / wal_s, entries * (double)size / wal_s / 1e6,
           med, p25, p75, raw_s / wal_s, s->n, by_order[0], by_order[1],
           framing, s->raw_cpu * 1e6 / n, s->wal_cpu * 1e6 / n);
    printf("RESULT wal_raw batch=%zu size=%zu syncs_per_s=%.0f "
           "mb_per_s=%.2f files=%zu ms_per_file=%.1f\n",
           batch, size, n / raw_s, n * (double)bytes / raw_s / 1e6, raw->files,
           raw->files ? raw->idle_s * 1e3 / (double)raw->files : 0);
    fflush(stdout);
}

static void bench_shape(struct cairn_fs *fs, const char *dir, size_t batch,
                        size_t size, double seconds, const uint8_t *data)
{
    struct samples s = {0};
    struct raw raw;
    raw_open(&raw, dir, batch * size);
    struct walrun wr;
    wal_run_open(&wr, fs, dir, batch);
    /* Both paths once through their first syncs before timing. */
    for (int k = 0; k < WARMUP_ROUNDS; k++) {
        raw_op(&raw, data);
        wal_fill(&wr, batch, size, data);
        wal_op(&wr, batch);
        wal_idle(&wr);
        raw_idle(&raw);
    }
    raw.files = 0;
    raw.idle_s = 0;
    wr.idle_s = 0;
    wr.prepared = 0;
    wr.bytes = 0;
    run_pairs(&s, &raw, &wr, batch, size, seconds, data);
    close(raw.fd);
    report(&s, &wr, &raw, batch, size);
    wal_run_close(&wr, fs, batch, size);
    cairn_free(s.raw);
    cairn_free(s.wal);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    const char *sec_env = getenv("CAIRN_BENCH_WAL_SECONDS");
    double seconds = sec_env && *sec_env ? atof(sec_env) : 2.0;
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s/cairn-bench-wal-XXXXXX", base) >=
        (int)sizeof dir)
        die(base, CAIRN_ETOOBIG, NULL);
    if (!mkdtemp(dir))
        die(dir, cairn_err_from_errno(errno), NULL);
    struct cairn_fs fs;
    cairn_fs_posix_init(&fs);
    size_t only_batch = (size_t)env_u64("CAIRN_BENCH_WAL_BATCH", 0);
    size_t only_size = (size_t)env_u64("CAIRN_BENCH_WAL_SIZE", 0);
    static const size_t batches[] = {1, 16, 256};
    static const size_t sizes[] = {256, 4096};
    size_t max_bytes = 256 * 4096;
    uint8_t *data = cairn_malloc(max_bytes);
    if (!data)
        die("alloc", CAIRN_ENOMEM, NULL);
    struct prng rng;
    prng_seed(&rng, 42);
    for (size_t i = 0; i < max_bytes; i++)
        data[i] = (uint8_t)prng_next(&rng);
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            if ((only_batch && batches[b] != only_batch) ||
                (only_size && sizes[s] != only_size))
                continue;
            bench_shape(&fs, dir, batches[b], sizes[s], seconds, data);
        }
    }
    cairn_free(data);
    rm_tree(&fs, dir);
    return 0;
}
