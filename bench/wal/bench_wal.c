/* bench-wal: what the WAL costs over the disk's own limit. For each batch
 * shape it times write+fdatasync of the same bytes in a plain file in the
 * same directory (the raw cost), then WAL appends of those batches, and
 * prints
 *   RESULT wal batch=<entries> size=<bytes> entries_per_s=… mb_per_s=…
 *          ratio_to_raw=…
 *          ratio_p25=… ratio_p75=… pairs=… framing=…
 * where ratio_to_raw = raw time / WAL time for the same entries' bytes and
 * the same number of fdatasyncs (1.0: the WAL is as fast as the disk). The
 * disk is shared and noisy, so the two are measured in PAIRS short runs of
 * each, back to back, the order flipped every pair (raw-WAL, WAL-raw, ...)
 * so that neither always follows the other, and ratio_to_raw is the
 * median of the pairs' ratios (p25/p75 their quartiles). framing is the
 * WAL's bytes per payload byte (record headers, padding, the hard state):
 * the raw path writes only the payload. The raw file is preallocated and
 * zero-filled, like a WAL segment, so the raw path pays no file-size
 * updates nor extent conversions: it is the disk's limit, not a strawman.
 * Preparing the next segment (which the WAL thread does between batches)
 * is timed apart and printed as RESULT wal_prepare.
 * Usage: bench-wal [directory]   (default $TMPDIR, else /tmp); a temporary
 * folder is made inside it and removed at the end.
 * CAIRN_BENCH_WAL_SECONDS sets the time per measurement (default 1.0),
 * CAIRN_BENCH_WAL_SEGMENT_MB the segment size (default: the WAL's);
 * CAIRN_BENCH_WAL_BATCH and CAIRN_BENCH_WAL_SIZE pick one shape;
 * CAIRN_BENCH_WAL_NO_ZERO_FILL=1 prepares segments with fallocate only;
 * CAIRN_BENCH_WAL_PAIRS the number of pairs (default 20). */
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

/* Bounds on one measurement, whatever the disk's speed. */
#define ROUNDS_MIN 20
#define ROUNDS_MAX 200000
#define BYTES_MAX (512ull * 1024 * 1024)
#define PAIRS_DEFAULT 20
#define PAIRS_MAX 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

/* The raw path: a plain file preallocated (fallocate) and synced, so
 * that each round costs what the disk needs to make `bytes` durable and
 * nothing else: the physical limit the WAL is compared with. */
struct raw {
    int fd;
    uint64_t off;
};

static void raw_open(struct raw *r, const char *dir, uint64_t total)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/raw", dir);
    r->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (r->fd < 0)
        die(path, cairn_err_from_errno(errno), NULL);
    unlink(path);
    /* Reserved and written, as the WAL prepares its segments. */
    if (fallocate(r->fd, 0, 0, (off_t)total) != 0)
        die("raw preallocate", cairn_err_from_errno(errno), NULL);
    static const uint8_t zeros[1 << 16];
    for (uint64_t off = 0; off < total; off += sizeof zeros)
        if (pwrite(r->fd, zeros, sizeof zeros, (off_t)off) < 0)
            die("raw zero-fill", cairn_err_from_errno(errno), NULL);
    if (fsync(r->fd) != 0)
        die("raw fsync", cairn_err_from_errno(errno), NULL);
    r->off = 0;
}

/* `rounds` times: write `bytes` after the last ones, fdatasync. */
static double raw_run(struct raw *r, size_t bytes, uint64_t rounds,
                      const uint8_t *data)
{
    double t0 = now_s();
    for (uint64_t k = 0; k < rounds; k++) {
        size_t done = 0;
        while (done < bytes) {
            ssize_t n = pwrite(r->fd, data + done, bytes - done,
                               (off_t)(r->off + done));
            if (n <= 0)
                die("raw write", cairn_err_from_errno(errno), NULL);
            done += (size_t)n;
        }
        r->off += bytes;
        if (fdatasync(r->fd) != 0)
            die("raw fdatasync", cairn_err_from_errno(errno), NULL);
    }
    return now_s() - t0;
}

/* The WAL path: appends of `batch` entries of `size` bytes with the hard
 * state, preparing the next segment between appends as the WAL thread does
 * when idle (its cost is included). */
struct walrun {
    struct wal *w;
    char dir[2048];
    struct raft_entry *ents;
    raft_index next;
    double prepare_s;
    size_t segments_start;
};

static void wal_run_open(struct walrun *r, struct cairn_fs *fs, const char *dir,
                         size_t batch)
{
    snprintf(r->dir, sizeof r->dir, "%s/wal", dir);
    const char *seg_env = getenv("CAIRN_BENCH_WAL_SEGMENT_MB");
    uint64_t seg_mb = seg_env && *seg_env ? strtoull(seg_env, NULL, 0) : 0;
    const char *nz = getenv("CAIRN_BENCH_WAL_NO_ZERO_FILL");
    struct wal_options o = {
        .fs = fs,
        .dir = r->dir,
        .segment_size_bytes = seg_mb * 1024 * 1024,
        .no_zero_fill = nz && *nz && *nz != '0',
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
    r->prepare_s = 0;
    r->segments_start = wal_segment_count(r->w);
}

static double wal_run(struct walrun *r, size_t batch, size_t size,
                      uint64_t rounds, const uint8_t *data)
{
    struct cairn_errmsg m;
    struct raft_hard_state hs = {1, 1, 0};
    double t0 = now_s();
    for (uint64_t k = 0; k < rounds; k++) {
        for (size_t i = 0; i < batch; i++) {
            r->ents[i].index = r->next + i;
            r->ents[i].term = 1;
            r->ents[i].type = 0;
            r->ents[i].data = data + i * size;
            r->ents[i].len = size;
        }
        hs.commit = r->next - 1;
        int rv = wal_append(r->w, &hs, r->ents, batch, &m);
        if (rv != 0)
            die("wal_append", rv, m.text);
        r->next += batch;
        /* The WAL thread prepares the next segment between batches, off
         * the hot path: timed apart. */
        double p0 = now_s();
        rv = wal_prepare(r->w, &m);
        if (rv != 0)
            die("wal_prepare", rv, m.text);
        double p = now_s() - p0;
        r->prepare_s += p;
        t0 += p;
    }
    return now_s() - t0;
}

static void wal_run_close(struct walrun *r, struct cairn_fs *fs, size_t batch,
                          size_t size)
{
    size_t prepared = wal_segment_count(r->w) - r->segments_start;
    if (prepared > 0)
        printf("RESULT wal_prepare batch=%zu size=%zu segments=%zu "
               "ms_per_segment=%.1f\n",
               batch, size, prepared, r->prepare_s * 1e3 / (double)prepared);
    wal_close(r->w);
    cairn_free(r->ents);
    rm_tree(fs, r->dir);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    const char *sec_env = getenv("CAIRN_BENCH_WAL_SECONDS");
    double seconds = sec_env && *sec_env ? atof(sec_env) : 1.0;
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s/cairn-bench-wal-XXXXXX", base) >=
        (int)sizeof dir)
        die(base, CAIRN_ETOOBIG, NULL);
    if (!mkdtemp(dir))
        die(dir, cairn_err_from_errno(errno), NULL);
    struct cairn_fs fs;
    cairn_fs_posix_init(&fs);
    const char *ob = getenv("CAIRN_BENCH_WAL_BATCH");
    const char *os = getenv("CAIRN_BENCH_WAL_SIZE");
    size_t only_batch = ob && *ob ? (size_t)strtoull(ob, NULL, 0) : 0;
    size_t only_size = os && *os ? (size_t)strtoull(os, NULL, 0) : 0;
    const char *pe = getenv("CAIRN_BENCH_WAL_PAIRS");
    size_t pairs = pe && *pe ? (size_t)strtoull(pe, NULL, 0) : PAIRS_DEFAULT;
    if (pairs < 1 || pairs > PAIRS_MAX)
        pairs = PAIRS_DEFAULT;
    static double ratios[PAIRS_MAX];
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
            size_t batch = batches[b], size = sizes[s];
            if ((only_batch && batch != only_batch) ||
                (only_size && size != only_size))
                continue;
            size_t bytes = batch * size;
            /* Calibrate the round count on the raw path. */
            struct raw raw;
            raw_open(&raw, dir, (uint64_t)ROUNDS_MIN * bytes);
            double t = raw_run(&raw, bytes, ROUNDS_MIN, data);
            close(raw.fd);
            uint64_t rounds = t > 0
                                  ? (uint64_t)((double)ROUNDS_MIN * seconds / t)
                                  : ROUNDS_MAX;
            if (rounds > ROUNDS_MAX)
                rounds = ROUNDS_MAX;
            if (rounds * bytes > BYTES_MAX)
                rounds = BYTES_MAX / bytes;
            if (rounds < ROUNDS_MIN)
                rounds = ROUNDS_MIN;
            /* Pairs of short runs of the two, order flipped each pair, so
             * that the disk's drift hits both alike. */
            uint64_t chunk = rounds / pairs ? rounds / pairs : 1;
            uint64_t done = 0;
            double raw_s = 0, wal_s = 0;
            size_t n_ratios = 0;
            raw_open(&raw, dir, rounds * bytes + bytes);
            struct walrun wr;
            wal_run_open(&wr, &fs, dir, batch);
            for (size_t c = 0; c < pairs && done + chunk <= rounds; c++) {
                double r, w;
                if (c % 2 == 0) {
                    r = raw_run(&raw, bytes, chunk, data);
                    w = wal_run(&wr, batch, size, chunk, data);
                } else {
                    w = wal_run(&wr, batch, size, chunk, data);
                    r = raw_run(&raw, bytes, chunk, data);
                }
                raw_s += r;
                wal_s += w;
                ratios[n_ratios++] = w > 0 ? r / w : 1.0;
                done += chunk;
            }
            close(raw.fd);
            double framing = (double)wal_bytes_appended(wr.w) /
                             ((double)done * (double)bytes);
            wal_run_close(&wr, &fs, batch, size);
            double entries = (double)done * (double)batch;
            double p25 = quantile(ratios, n_ratios, 0.25);
            double p75 = quantile(ratios, n_ratios, 0.75);
            double med = quantile(ratios, n_ratios, 0.5);
            printf("RESULT wal batch=%zu size=%zu entries_per_s=%.0f "
                   "mb_per_s=%.2f ratio_to_raw=%.3f ratio_p25=%.3f "
                   "ratio_p75=%.3f pairs=%zu framing=%.3f\n",
                   batch, size, entries / wal_s,
                   entries * (double)size / wal_s / 1e6, med, p25, p75,
                   n_ratios, framing);
            printf("RESULT wal_raw batch=%zu size=%zu syncs_per_s=%.0f "
                   "mb_per_s=%.2f\n",
                   batch, size, (double)done / raw_s,
                   (double)done * (double)bytes / raw_s / 1e6);
            fflush(stdout);
        }
    }
    cairn_free(data);
    rm_tree(&fs, dir);
    return 0;
}
