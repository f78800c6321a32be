/* The whole-member simulation's binding (member.h): each member is the
 * production node, applier, mvcc store and lessor, whose environment
 * (node_env) is the simulated world: persists go to a WAL on the faulty
 * in-memory file system after a simulated disk latency, apply batches and
 * snapshot requests run in order on a simulated apply thread, messages
 * travel over world.h's network in raft's wire encoding, and the clock is
 * the simulated one with per-member drift and jumps. A crash drops
 * everything volatile: the WAL's unsynced bytes (possibly torn), LMDB back
 * to the copy taken at its last explicit sync, pending requests.
 *
 * Threads: single-threaded (the "threads" are event sequences). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "member_int.h"

#define WAL_DIR "/member/wal"
#define SNAP_DIR "/member/snap"
#define QUOTA_BYTES (32u << 20)

void ms_fail(struct ms_run *r, enum sim_verdict v, const char *fmt, ...)
{
    if (r->failed)
        return;
    r->failed = true;
    r->verdict = v;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
    sim_tracef(&r->w, "FAIL %s", r->reason);
}

void *ms_grow(void *p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = cairn_realloc(p, n * size);
    CAIRN_ASSERT(q != NULL);
    memset((char *)q + *cap * size, 0, (n - *cap) * size);
    *cap = n;
    return q;
}

int64_t ms_now_ms(const struct ms_member *m)
{
    /* A monotonic clock that starts at an arbitrary point, drifts and may
     * jump forward (a paused VM), never back. */
    return 1000000 + (int64_t)((double)m->r->w.now_us * m->drift / 1000.0) +
           m->jump_ms;
}

bool ms_usable(const struct ms_member *m)
{
    return m->up && !m->removed && m->n != NULL && !node_stopped(m->n, NULL);
}

bool ms_paused(const struct ms_member *m)
{
    return m->paused_until_us > m->r->w.now_us;
}

/* A paused member runs nothing: an event of it waits and runs when the
 * member resumes, after the ones that waited before it (a timer that was
 * due long ago fires once, late, as libuv's does after a stop). */
bool ms_defer(struct ms_member *m, sim_event_cb fn, uint64_t a, uint64_t b)
{
    if (!ms_paused(m))
        return false;
    sim_world_schedule(&m->r->w, m->paused_until_us - m->r->w.now_us, fn, NULL,
                       m, a, b);
    return true;
}

/* Stops scheduling m (every thread of it: a stopped VM or process) for us;
 * it resumes by the time the run heals at the latest. Its clock goes on. */
void ms_pause(struct ms_member *m, uint64_t us)
{
    struct ms_run *r = m->r;
    uint64_t until = r->w.now_us + us;
    if (until > r->heal_us)
        until = r->heal_us;
    if (!m->up || until <= r->w.now_us || until <= m->paused_until_us)
        return;
    m->paused_until_us = until;
    r->pauses++;
    sim_tracef(&r->w, "m%d paused until %" PRIu64 " ms", m->slot + 1,
               until / 1000);
}

/* Whether m has applied the removal of id: node keeps removed ids in the
 * store (etcd's members_removed), so this survives restarts, comes with a
 * snapshot, and a store rolled back by a crash has not applied what it
 * lost. */
static bool applied_removal(struct ms_member *m, uint64_t id)
{
    return node_is_removed(m->n, id);
}

struct ms_member *ms_by_id(struct ms_run *r, uint64_t id)
{
    for (int i = 0; i < r->p.members; i++)
        if (r->m[i].id == id)
            return &r->m[i];
    return NULL;
}

/* A running (not paused) member that holds itself leader. */
struct ms_member *ms_leader(struct ms_run *r)
{
    for (int i = 0; i < r->p.members; i++)
        if (ms_usable(&r->m[i]) && !ms_paused(&r->m[i]) &&
            node_is_leader(r->m[i].n))
            return &r->m[i];
    return NULL;
}

/* ------------------------------------------------------------ files */

/* Copies a (sparse) file's data regions: LMDB's file is as large as its
 * map but mostly holes. */
static int copy_range(int in, int out, off_t from, off_t to)
{
    char buf[65536];
    while (from < to) {
        size_t want = (size_t)(to - from) < sizeof(buf) ? (size_t)(to - from)
                                                        : sizeof(buf);
        ssize_t n = pread(in, buf, want, from);
        if (n <= 0 || pwrite(out, buf, (size_t)n, from) != n)
            return CAIRN_EIO;
        from += n;
    }
    return 0;
}

static int copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return CAIRN_EIO;
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return CAIRN_EIO;
    }
    struct stat st;
    int rc =
        fstat(in, &st) == 0 && ftruncate(out, st.st_size) == 0 ? 0 : CAIRN_EIO;
    off_t pos = 0;
    while (rc == 0 && pos < st.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0)
            break; /* only a hole is left */
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        rc = copy_range(in, out, data, hole);
        pos = hole;
    }
    close(in);
    close(out);
    return rc;
}

/* LMDB was made durable (an explicit sync, a restore or a defragment):
 * keep a copy of its file, which is what a crash rolls back to. */
void ms_lmdb_synced(struct ms_member *m)
{
    char from[256], to[256];
    snprintf(from, sizeof(from), "%s/db/data.mdb", m->dir);
    snprintf(to, sizeof(to), "%s/durable.mdb", m->dir);
    CAIRN_ASSERT(copy_file(from, to) == 0);
}

/* A crash: LMDB (opened with MDB_NOSYNC) keeps only what was synced. */
static void lmdb_roll_back(struct ms_member *m)
{
    char db[256], lock[256], dur[256];
    snprintf(db, sizeof(db), "%s/db/data.mdb", m->dir);
    snprintf(lock, sizeof(lock), "%s/db/lock.mdb", m->dir);
    snprintf(dur, sizeof(dur), "%s/durable.mdb", m->dir);
    unlink(lock);
    if (access(dur, F_OK) == 0)
        CAIRN_ASSERT(copy_file(dur, db) == 0);
    else
        unlink(db);
}

/* The received image for a snapshot at index, or "" (as the server's
 * restore_received_image looks for it). */
static void image_for(const struct ms_member *m, raft_index index, char *out,
                      size_t size)
{
    out[0] = 0;
    char want[40];
    snprintf(want, sizeof(want), "img-%016" PRIx64 "-", index);
    DIR *d = opendir(m->dir);
    if (d == NULL)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, want, strlen(want)) == 0) {
            snprintf(out, size, "%s/%s", m->dir, e->d_name);
            break;
        }
    closedir(d);
}

/* ------------------------------------------------------------ environment */

static int64_t env_now(void *ctx)
{
    return ms_now_ms(ctx);
}

static void persist_fire(struct sim_world *w, void *arg, uint64_t inc,
                         uint64_t b);
static void work_fire(struct sim_world *w, void *arg, uint64_t inc, uint64_t b);

static uint64_t disk_latency(struct ms_member *m)
{
    struct ms_run *r = m->r;
    uint64_t us = prng_range(&r->w.rng, 100, 2000);
    /* Disks are healthy once the run heals: the checks after healing
     * (lease keys gone within an election timeout of their expiry, every
     * operation answered) bound the time a proposal takes to commit, and a
     * stall of the leader's disk delays every commit by its length. */
    if (r->p.slow_disk && !r->healed && prng_chance(&r->w.rng, 0.03)) {
        us += prng_range(&r->w.rng, 20000, 300000); /* a latency spike */
        sim_tracef(&r->w, "m%d disk stalls %" PRIu64 " ms", m->slot + 1,
                   us / 1000);
    }
    return us;
}

static void env_persist(void *ctx, const struct node_persist *p)
{
    struct ms_member *m = ctx;
    m->persists = ms_grow(m->persists, &m->cap_persists, m->n_persists + 1,
                          sizeof(*m->persists));
    m->persists[m->n_persists++] = p;
    if (m->persist_sched)
        return;
    struct ms_run *r = m->r;
    uint64_t at = r->w.now_us > m->disk_free_us ? r->w.now_us : m->disk_free_us;
    at += disk_latency(m);
    m->disk_free_us = at;
    m->persist_sched = true;
    sim_world_schedule(&r->w, at - r->w.now_us, persist_fire, NULL, m, m->inc,
                       0);
}

static void work_schedule(struct ms_member *m)
{
    if (m->work_sched || m->n_work == 0)
        return;
    m->work_sched = true;
    sim_world_schedule(&m->r->w, prng_range(&m->r->w.rng, 20, 600), work_fire,
                       NULL, m, m->inc, 0);
}

static void env_apply(void *ctx, struct node_apply_batch *b)
{
    struct ms_member *m = ctx;
    m->work = ms_grow(m->work, &m->cap_work, m->n_work + 1, sizeof(*m->work));
    m->work[m->n_work++] = (struct ms_work){.b = b};
    work_schedule(m);
}

/* The server gathers a loop turn's proposals and flushes them when the
 * turn ends (node_env.proposals_queued); here a turn ends after a random
 * 0-300 us, so that client operations close together go to raft as one
 * batch, as on a busy server. */
static void props_fire(struct sim_world *w, void *arg, uint64_t inc, uint64_t b)
{
    (void)w;
    struct ms_member *m = arg;
    if (inc != m->inc || !m->up || m->r->failed ||
        ms_defer(m, props_fire, inc, b))
        return;
    m->props_sched = false;
    node_flush_proposals(m->n);
}

static void env_proposals_queued(void *ctx)
{
    struct ms_member *m = ctx;
    if (m->props_sched)
        return;
    m->props_sched = true;
    sim_world_schedule(&m->r->w, prng_range(&m->r->w.rng, 0, 300), props_fire,
                       NULL, m, m->inc, 0);
}

/* The server's commit timer (SERVER__COMMIT_DELAY_MS: more than 1 ms,
 * at most 2): the leader tells followers a commit index no append
 * carried by then. Stopped when the node no longer asks. */
static void commit_fire(struct sim_world *w, void *arg, uint64_t inc,
                        uint64_t b)
{
    (void)w;
    struct ms_member *m = arg;
    if (inc != m->inc || !m->up || m->r->failed ||
        ms_defer(m, commit_fire, inc, b))
        return;
    m->commit_sched = false;
    if (m->commit_unsent)
        node_send_commit(m->n);
}

static void env_commit_unsent(void *ctx, bool unsent)
{
    struct ms_member *m = ctx;
    m->commit_unsent = unsent;
    if (!unsent || m->commit_sched)
        return;
    m->commit_sched = true;
    sim_world_schedule(&m->r->w, prng_range(&m->r->w.rng, 1001, 2000),
                       commit_fire, NULL, m, m->inc, 0);
}

static void env_snapshot(void *ctx, const struct raft_snapshot_meta *meta)
{
    struct ms_member *m = ctx;
    m->work = ms_grow(m->work, &m->cap_work, m->n_work + 1, sizeof(*m->work));
    m->work[m->n_work++] = (struct ms_work){.b = NULL, .meta = *meta};
    work_schedule(m);
}

/* A frame on the simulated wire: u16 image path length, the path (a
 * MsgSnap's image, written by the sender into the receiver's directory as
 * the transport streams it), raft's encoding of the message. */
static void send_one(struct ms_member *m, const struct raft_message *x)
{
    struct ms_run *r = m->r;
    struct ms_member *to = ms_by_id(r, x->to);
    if (to == NULL)
        return;
    char path[256] = "";
    if (x->type == RAFT_MSG_SNAP) {
        snprintf(path, sizeof(path), "%s/img-%016" PRIx64 "-%" PRIu64, to->dir,
                 x->snapshot ? x->snapshot->meta.index : 0, ++m->image_seq);
        int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
        CAIRN_ASSERT(fd >= 0);
        struct cairn_errmsg em = {{0}};
        int rc = mvcc_snapshot_write(m->s, fd, &em);
        close(fd);
        if (rc != 0) {
            ms_fail(r, SIM_ERROR, "m%d: snapshot image: %s", m->slot + 1,
                    em.text);
            return;
        }
    }
    struct buf b;
    buf_init(&b);
    size_t pl = strlen(path);
    CAIRN_ASSERT(buf_append_u8(&b, (uint8_t)(pl & 0xff)) == 0);
    CAIRN_ASSERT(buf_append_u8(&b, (uint8_t)(pl >> 8)) == 0);
    CAIRN_ASSERT(buf_append(&b, path, pl) == 0);
    CAIRN_ASSERT(raft_message_encode(x, &b) == 0);
    sim_net_send(&r->net, m->slot, to->slot, b.data, b.len);
    buf_free(&b);
}

static void env_send(void *ctx, const struct raft_message *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        send_one(ctx, &msgs[i]);
}

/* An armed crash point was reached: crash there, restart later. */
static void crash_point(struct ms_member *m, const char *where)
{
    ms_crash(m, where);
    ms_restart_later(m, prng_range(&m->r->w.rng, 10000, m->r->p.down_us_max));
}

/* ------------------------------------------------------------ WAL thread */

static int wal_write(struct ms_member *m, const struct node_persist *p)
{
    struct cairn_errmsg em = {{0}};
    int rc = 0;
    if (p->snap != NULL) {
        rc = wal_snap_save(&m->fs, SNAP_DIR, p->snap, &em);
        if (rc == 0)
            rc = wal_snapshot(m->wal, p->snap->index, p->snap->term, &em);
    }
    /* As the server: a commit index alone is written unsynced. */
    if (rc == 0 && p->n_entries == 0 && p->hard_state != NULL)
        rc = wal_append_hard_state(m->wal, p->hard_state, &em);
    else if (rc == 0 && p->n_entries > 0)
        rc = wal_append(m->wal, p->hard_state, p->entries, p->n_entries, &em);
    if (rc != 0)
        sim_tracef(&m->r->w, "m%d persist %" PRIu64 " fails: %s", m->slot + 1,
                   p->seq, em.text[0] ? em.text : cairn_strerror(rc));
    return rc;
}

/* A failed persist stops the member for good (never a retry); an operator
 * restarts it later. */
static void persist_failed(struct ms_member *m, uint64_t seq, int rc)
{
    struct ms_run *r = m->r;
    node_persisted(m->n, seq, rc);
    int why = 0;
    if (!node_stopped(m->n, &why)) {
        ms_fail(r, SIM_SAFETY, "m%d continued after persist %" PRIu64 " failed",
                m->slot + 1, seq);
        return;
    }
    r->fatal_stops++;
    sim_tracef(&r->w, "m%d stopped: %s", m->slot + 1, cairn_strerror(why));
    ms_restart_later(m, prng_range(&r->w.rng, 10000, 500000));
}

static void persist_fire(struct sim_world *w, void *arg, uint64_t inc,
                         uint64_t b)
{
    (void)w;
    (void)b;
    struct ms_member *m = arg;
    if (inc != m->inc || !m->up || m->r->failed ||
        ms_defer(m, persist_fire, inc, b))
        return;
    m->persist_sched = false;
    size_t k = m->n_persists;
    const struct node_persist **ps = cairn_malloc(k * sizeof(*ps));
    CAIRN_ASSERT(ps != NULL);
    memcpy(ps, m->persists, k * sizeof(*ps));
    m->n_persists = 0;
    uint64_t done = 0;
    int rc = 0;
    size_t i = 0;
    for (; i < k && rc == 0; i++) {
        rc = wal_write(m, ps[i]);
        if (rc == 0) {
            ms_log_persisted(m, ps[i]);
            done = ps[i]->seq;
        }
    }
    uint64_t failed_seq = rc != 0 ? ps[i - 1]->seq : 0;
    cairn_free(ps);
    if (rc == 0 && m->crash_point == MS_CP_AFTER_PERSIST) {
        crash_point(m, "after a persist, before telling the node");
        return;
    }
    if (done != 0 && !node_stopped(m->n, NULL))
        node_persisted(m->n, done, 0);
    if (rc != 0 && !node_stopped(m->n, NULL))
        persist_failed(m, failed_seq, rc);
    ms_raft_check(m);
}

/* ------------------------------------------------------------ apply thread */

/* Files in the member's WAL directory as the file system shows them now. */
static size_t wal_files(struct ms_member *m)
{
    struct cairn_fs_names names;
    if (m->fs.list(&m->fs, WAL_DIR, &names) != 0)
        return 0;
    size_t n = names.count;
    cairn_fs_names_free(&names);
    return n;
}

/* A crash part-way through a release: the power goes after `k` unlinks
 * (k drawn; 0 is before the release) and before the directory sync, so the
 * file system keeps any subset of those unlinks (util/fs.h). Recovery must
 * open whichever segments below the snapshot vanished (docs/wal.md). */
static void release_then_crash(struct ms_member *m, raft_index index)
{
    int k = (int)prng_below(&m->r->w.rng, 4);
    size_t before = wal_files(m);
    cairn_fs_mem_fault(&m->fs, CAIRN_FS_MEM_META, k, 1, CAIRN_EIO, false);
    cairn_fs_mem_fault(&m->fs, CAIRN_FS_MEM_SYNC, 0, 1, CAIRN_EIO, false);
    struct cairn_errmsg em = {{0}};
    (void)wal_release(m->wal, index, &em); /* fails: the power is going */
    size_t unlinked = before - wal_files(m);
    if (unlinked > 0)
        m->r->release_crashes++;
    char why[96];
    snprintf(why, sizeof why,
             "while releasing WAL segments (%zu of %zu files unlinked)",
             unlinked, before);
    crash_point(m, why);
    sim_tracef(&m->r->w, "m%d keeps %zu WAL files after the crash", m->slot + 1,
               wal_files(m));
}

static int snapshot_step(struct ms_member *m,
                         const struct raft_snapshot_meta *s)
{
    struct ms_run *r = m->r;
    int rc = node_applier_sync(m->ap);
    if (rc != 0)
        return rc;
    ms_lmdb_synced(m);
    if (m->crash_point == MS_CP_MID_SNAPSHOT) {
        crash_point(m, "while taking a snapshot (LMDB synced, WAL not told)");
        return 1;
    }
    struct cairn_errmsg em = {{0}};
    rc = wal_snap_save(&m->fs, SNAP_DIR, s, &em);
    if (rc != 0)
        return rc;
    if (m->crash_point == MS_CP_SNAP_FILE) {
        crash_point(m, "while taking a snapshot (file saved, WAL not told)");
        return 1;
    }
    rc = wal_snapshot(m->wal, s->index, s->term, &em);
    if (rc != 0)
        return rc;
    rc = wal_snap_purge(&m->fs, SNAP_DIR, 5, &em);
    if (rc == 0 && m->crash_point == MS_CP_MID_RELEASE) {
        release_then_crash(m, s->index);
        return 1;
    }
    if (rc == 0)
        rc = wal_release(m->wal, s->index, &em);
    r->snapshots++;
    sim_tracef(&r->w, "m%d snapshot at %" PRIu64 "%s%s", m->slot + 1, s->index,
               rc ? ": " : "", rc ? cairn_strerror(rc) : "");
    return rc;
}

/* A failed snapshot (LMDB sync, snapshot file, WAL record) stops the
 * member for good, as a failed persist does; an operator restarts it. */
static void snapshot_failed(struct ms_member *m, int rc)
{
    struct ms_run *r = m->r;
    int why = 0;
    if (!node_stopped(m->n, &why)) {
        ms_fail(r, SIM_SAFETY, "m%d continued after its snapshot failed: %s",
                m->slot + 1, cairn_strerror(rc));
        return;
    }
    r->fatal_stops++;
    sim_tracef(&r->w, "m%d stopped: %s", m->slot + 1, cairn_strerror(why));
    ms_restart_later(m, prng_range(&r->w.rng, 10000, 500000));
}

/* A failed apply batch (a full map, an I/O error) stops the member: the
 * batch was aborted, the store is as the previous batch left it, and the
 * WAL replays from there when an operator restarts it. */
static void apply_failed(struct ms_member *m, int rc)
{
    struct ms_run *r = m->r;
    int why = 0;
    if (!node_stopped(m->n, &why)) {
        ms_fail(r, SIM_SAFETY, "m%d continued after an apply failed: %s",
                m->slot + 1, cairn_strerror(rc));
        return;
    }
    r->fatal_stops++;
    sim_tracef(&r->w, "m%d stopped: %s", m->slot + 1, cairn_strerror(why));
    ms_restart_later(m, prng_range(&r->w.rng, 10000, 500000));
}

static void work_fire(struct sim_world *w, void *arg, uint64_t inc, uint64_t b)
{
    (void)w;
    (void)b;
    struct ms_member *m = arg;
    if (inc != m->inc || !m->up || m->r->failed ||
        ms_defer(m, work_fire, inc, b))
        return;
    m->work_sched = false;
    if (m->n_work == 0)
        return;
    struct ms_work it = m->work[0];
    memmove(m->work, m->work + 1, (m->n_work - 1) * sizeof(*m->work));
    m->n_work--;
    if (it.b != NULL) {
        bool restore = node_apply_batch_restore_path(it.b) != NULL;
        bool harmless = node_apply_batch_failure_harmless(it.b);
        bool was_stopped = node_stopped(m->n, NULL);
        int rc = node_applier_apply(m->ap, it.b);
        if (rc == 0 && restore) {
            m->l_gen++;        /* the applier reopened its lessor */
            ms_lmdb_synced(m); /* the image was renamed into place whole */
            m->r->restores++;
        }
        if (m->crash_point == MS_CP_AFTER_APPLY && !restore) {
            crash_point(m, "after applying a batch, before LMDB was synced");
            node_apply_batch_free(it.b); /* never handed back */
            return;
        }
        node_applied(m->n, it.b);
        if (rc != 0 && harmless && node_stopped(m->n, NULL) && !was_stopped)
            ms_fail(m->r, SIM_SAFETY, "m%d stopped after a failed %s: %s",
                    m->slot + 1, "defragmentation or export",
                    cairn_strerror(rc));
        else if (rc != 0 && !harmless && !was_stopped)
            apply_failed(m, rc);
    } else {
        int rc = snapshot_step(m, &it.meta);
        if (rc == 1)
            return; /* crashed */
        bool stopped = node_stopped(m->n, NULL);
        node_snapshot_done(m->n, it.meta.index, rc);
        if (rc != 0 && !stopped)
            snapshot_failed(m, rc);
    }
    if (!m->up)
        return;
    ms_watch_poll(m);
    ms_hash_check(m);
    ms_raft_check(m);
    work_schedule(m);
}

/* ------------------------------------------------------------ network */

static void snap_report_fire(struct sim_world *w, void *arg, uint64_t inc,
                             uint64_t to)
{
    (void)w;
    struct ms_member *m = arg;
    if (inc == m->inc && ms_usable(m) &&
        !ms_defer(m, snap_report_fire, inc, to))
        node_report_snapshot(m->n, to, true);
}

/* The transport tells the sender its snapshot arrived. */
static void snap_sent_fire(struct sim_world *w, void *arg, uint64_t inc,
                           uint64_t to)
{
    (void)w;
    struct ms_member *m = arg;
    if (inc == m->inc && ms_usable(m) && !ms_defer(m, snap_sent_fire, inc, to))
        node_report_snapshot(m->n, to, false);
}

static size_t frame_path(const uint8_t *bytes, size_t len, char *path,
                         size_t size)
{
    CAIRN_ASSERT(len >= 2);
    size_t pl = (size_t)bytes[0] | ((size_t)bytes[1] << 8);
    CAIRN_ASSERT(pl < size && 2 + pl <= len);
    memcpy(path, bytes + 2, pl);
    path[pl] = 0;
    return 2 + pl;
}

static void net_lost(void *arg, int from, int to, const uint8_t *bytes,
                     size_t len)
{
    struct ms_run *r = arg;
    char path[256];
    frame_path(bytes, len, path, sizeof(path));
    if (path[0] == 0 || r->closing)
        return;
    /* The transport tells the sender its snapshot did not arrive. */
    struct ms_member *m = &r->m[from];
    sim_world_schedule(&r->w, prng_range(&r->w.rng, 100, 5000),
                       snap_report_fire, NULL, m, m->inc, r->m[to].id);
}

static void removed_fire(struct sim_world *w, void *arg, uint64_t inc,
                         uint64_t b)
{
    (void)w;
    struct ms_member *m = arg;
    if (inc == m->inc && ms_usable(m) && !ms_defer(m, removed_fire, inc, b))
        node_report_removed(m->n);
}

/* A message for a paused member: its transport takes it when it resumes. */
struct ms_held {
    struct ms_run *r;
    int from, to;
    size_t len;
    uint8_t bytes[];
};

static void net_deliver(void *arg, int from, int to, const uint8_t *bytes,
                        size_t len);

static void held_fire(struct sim_world *w, void *arg, uint64_t a, uint64_t b)
{
    (void)w;
    (void)a;
    (void)b;
    struct ms_held *h = arg;
    net_deliver(h->r, h->from, h->to, h->bytes, h->len);
    cairn_free(h);
}

static void hold(struct ms_run *r, int from, int to, const uint8_t *bytes,
                 size_t len)
{
    struct ms_held *h = cairn_malloc(sizeof(*h) + len);
    CAIRN_ASSERT(h != NULL);
    *h = (struct ms_held){r, from, to, len};
    memcpy(h->bytes, bytes, len);
    sim_world_schedule(&r->w, r->m[to].paused_until_us - r->w.now_us, held_fire,
                       cairn_free, h, 0, 0);
}

static void net_deliver(void *arg, int from, int to, const uint8_t *bytes,
                        size_t len)
{
    struct ms_run *r = arg;
    struct ms_member *m = &r->m[to], *sender = &r->m[from];
    if (r->failed)
        return;
    if (!ms_usable(m)) {
        net_lost(r, from, to, bytes, len);
        return;
    }
    if (ms_paused(m)) {
        hold(r, from, to, bytes, len);
        return;
    }
    if (applied_removal(m, sender->id)) {
        /* As etcd's transport answers a removed member: it stops. */
        sim_world_schedule(&r->w, prng_range(&r->w.rng, 100, 5000),
                           removed_fire, NULL, sender, sender->inc, 0);
        net_lost(r, from, to, bytes, len);
        return;
    }
    char path[256];
    size_t off = frame_path(bytes, len, path, sizeof(path));
    struct raft_message msg;
    int rv = raft_message_decode(bytes + off, len - off, &msg);
    if (rv != 0) {
        ms_fail(r, SIM_SAFETY, "m%d could not decode a message from m%d: %s",
                to + 1, from + 1, cairn_strerror(rv));
        return;
    }
    if (msg.to != m->id) {
        raft_message_decoded_free(&msg);
        return;
    }
    const struct raft_snapshot *decoded = msg.snapshot;
    struct raft_snapshot snap;
    if (msg.type == RAFT_MSG_SNAP && decoded != NULL) {
        snap = *decoded;
        snap.data = (const uint8_t *)path;
        snap.len = strlen(path);
        msg.snapshot = &snap;
    }
    node_receive(m->n, &msg);
    if (msg.type == RAFT_MSG_SNAP && ms_usable(sender))
        snap_sent_fire(&r->w, sender, sender->inc, m->id);
    msg.snapshot = decoded;
    raft_message_decoded_free(&msg);
    ms_raft_check(m);
}

/* ------------------------------------------------------------ lifecycle */

/* etcd's members keep dialing their peers' streams, and a peer that applied
 * a member's removal refuses it: so a removed member learns of its removal
 * even when it sends nothing (a learner) and missed the entry. */
static void handshake(struct ms_member *m)
{
    struct ms_run *r = m->r;
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *p = &r->m[i];
        if (p != m && ms_usable(p) && !r->net.link[m->slot][i].blocked &&
            applied_removal(p, m->id)) {
            sim_world_schedule(&r->w, prng_range(&r->w.rng, 100, 5000),
                               removed_fire, NULL, m, m->inc, 0);
            return;
        }
    }
}

static void tick_fire(struct sim_world *w, void *arg, uint64_t inc, uint64_t b)
{
    (void)b;
    struct ms_member *m = arg;
    if (inc != m->inc || !m->up || m->r->failed ||
        ms_defer(m, tick_fire, inc, b))
        return;
    int why = 0;
    if (m->n != NULL && node_stopped(m->n, &why) && why == CAIRN_EREMOVED) {
        sim_tracef(w, "m%d (id %" PRIx64 ") removed: shuts down", m->slot + 1,
                   m->id);
        ms_crash(m, "(removed)");
        m->removed = true;
        return;
    }
    if (m->n != NULL && !node_stopped(m->n, NULL) && prng_chance(&w->rng, 0.1))
        handshake(m);
    if (m->n != NULL && !node_stopped(m->n, NULL)) {
        node_tick(m->n);
        ms_raft_check(m);
        if (m->hub != NULL && prng_chance(&w->rng, 0.05))
            (void)mvcc_watch_progress(m->hub, m->wid);
    }
    uint64_t period = (uint64_t)((double)m->r->p.tick_ms * 1000.0 / m->drift);
    sim_world_schedule(w, period, tick_fire, NULL, m, m->inc, 0);
}

/* mvcc's test hook: the armed LMDB failure, where LMDB would report it, so
 * that mvcc's and node's own error paths run. */
static int store_fault(void *arg, int site)
{
    struct ms_member *m = arg;
    struct ms_run *r = m->r;
    if (site == MVCC_FAULT_SYNC && m->store_sync_fails) {
        /* fdatasync fails (mvcc_sync answers CAIRN_ESYNC): nothing since
         * the last sync is known durable, so a crash rolls LMDB back to
         * it, and the member must stop. */
        m->store_sync_fails = false;
        r->store_sync_failures++;
        sim_tracef(&r->w, "m%d LMDB sync fails", m->slot + 1);
        return EIO;
    }
    /* A restore while the member starts (open_store) is left alone: a
     * failed start is the simulator's own error, not the member's. */
    if (m->store_full != 0 && site == m->store_full &&
        (site != MVCC_FAULT_RESTORE || m->ap != NULL)) {
        /* The disk under LMDB is full. A batch, a compaction step or a
         * restore fails (CAIRN_ENOSPC) and the member stops, as etcd
         * panics on a failed backend write; its WAL still holds
         * everything, replayed when an operator restarts it with space
         * freed. A defragmentation fails, the store stays as it was and
         * the member goes on. */
        static const char *const where[] = {
            [MVCC_FAULT_WRITE] = "record write",
            [MVCC_FAULT_COMPACT] = "compaction",
            [MVCC_FAULT_RESTORE] = "snapshot restore",
            [MVCC_FAULT_DEFRAG] = "defragmentation"};
        m->store_full = 0;
        r->store_full_failures++;
        if (site != MVCC_FAULT_WRITE)
            r->store_full_maint++;
        sim_tracef(&r->w, "m%d LMDB map full at a %s", m->slot + 1,
                   where[site]);
        return MDB_MAP_FULL;
    }
    return 0;
}

static int open_store(struct ms_member *m, const struct wal_recovery *rec)
{
    char db[256];
    snprintf(db, sizeof(db), "%s/db", m->dir);
    struct mvcc_options o = {.dir = db,
                             .quota_bytes = m->r->p.quota_bytes,
                             .fault = store_fault,
                             .fault_arg = m};
    struct cairn_errmsg em = {{0}};
    int rc = mvcc_open(&o, &m->s, &em);
    if (rc != 0)
        return rc;
    struct mvcc_status st;
    CAIRN_ASSERT(mvcc_status_get(m->s, &st) == 0);
    /* The bootstrap snapshot (index 1) holds no data: nothing to restore. */
    if (rec->has_snap && rec->snap.index > st.consistent_index &&
        rec->snap.index > 1) {
        /* Crashed between a received snapshot's persist and its restore:
         * restore from the image kept for it, as the server does. */
        char path[512];
        image_for(m, rec->snap.index, path, sizeof(path));
        if (path[0] == 0) {
            ms_fail(m->r, SIM_SAFETY,
                    "m%d: store at %" PRIu64 " behind the snapshot at %" PRIu64
                    " and no image kept",
                    m->slot + 1, st.consistent_index, rec->snap.index);
            return CAIRN_ENOSNAP;
        }
        rc = mvcc_snapshot_restore(m->s, path, &em);
        if (rc != 0)
            return rc;
        ms_lmdb_synced(m);
    }
    struct lease_options lo = {.min_ttl_s = 1};
    struct lessor *l;
    rc = lease_open(m->s, &lo, &l);
    if (rc == 0)
        rc = node_applier_new(m->s, l, &lo, NULL, &m->ap);
    m->l_gen++;
    return rc;
}

/* The cluster the run began with, as a member's --initial-cluster flags
 * name it for good: a member that lost everything unsynced before its
 * first persist bootstraps again with the same entries, even after a slot
 * was removed and re-added under a new id (using the slot's current id
 * wrote bootstrap entries that differ from the committed ones). */
static void initial_members(struct ms_run *r, struct node_member *list)
{
    memset(list, 0, sizeof(*list) * (size_t)r->p.members);
    for (int i = 0; i < r->p.members; i++) {
        list[i].id = (uint64_t)i + 1; /* as run_init numbers them */
        snprintf(list[i].name, sizeof(list[i].name), "m%d", i + 1);
        list[i].n_peer_urls = 1;
        snprintf(list[i].peer_urls[0], NODE_URL_MAX, "http://sim-%d:2380",
                 i + 1);
    }
}

static int open_wal(struct ms_member *m, struct wal_recovery *rec)
{
    struct wal_options o = {.fs = &m->fs,
                            .dir = WAL_DIR,
                            .segment_size_bytes =
                                m->r->p.small_segments ? 1024 : 64 * 1024,
                            .no_zero_fill = true};
    struct cairn_errmsg em = {{0}};
    memset(rec, 0, sizeof(*rec));
    int rc;
    if (!wal_exists(&m->fs, WAL_DIR)) {
        struct wal_metadata meta = {.member_id = m->id, .cluster_id = 0xc1};
        rc = wal_create(&o, &meta, &m->wal, &em);
    } else {
        rc = wal_recover(&o, SNAP_DIR, &m->wal, rec, &em);
    }
    if (rc != 0)
        ms_fail(m->r, SIM_SAFETY, "m%d: WAL does not open: %s", m->slot + 1,
                em.text);
    return rc;
}

static struct node_config node_config_for(struct ms_member *m)
{
    struct ms_run *r = m->r;
    struct node_config c = {
        .id = m->id,
        .cluster_id = 0xc1,
        .tick_ms = r->p.tick_ms,
        .election_ticks = r->p.election_ticks,
        .snapshot_count = r->p.snapshot_count,
        .snapshot_catchup_entries = r->p.catchup,
        /* Half the runs bound the log cache to a few dozen entries, so
         * that it is trimmed between snapshots; taken from the snapshot
         * count, not drawn, so every seed still picks what it did. */
        .log_cache_bytes =
            r->p.snapshot_count % 2 ? r->p.snapshot_count * 48 : 0,
        .pre_vote = true,
        .request_timeout_ms = 10ull * r->p.tick_ms * r->p.election_ticks,
        .seed = prng_fork_seed(&r->w.rng),
        .store = m->s,
        .applier = m->ap,
    };
#ifdef CAIRN_FAULTS
    c.faults.ack_before_persist = r->fault == SIM_MF_ACK_BEFORE_PERSIST;
    c.faults.read_before_applied = r->fault == SIM_MF_READ_BEFORE_APPLIED;
    c.faults.reuse_read_index = r->fault == SIM_MF_REUSE_READ_INDEX;
    c.faults.expire_leases_on_follower =
        r->fault == SIM_MF_EXPIRE_LEASES_ON_FOLLOWER;
#endif
    return c;
}

static void member_start(struct ms_member *m)
{
    struct ms_run *r = m->r;
    m->inc++;
    struct wal_recovery rec;
    if (open_wal(m, &rec) != 0)
        return;
    int rc = open_store(m, &rec);
    if (rc != 0) {
        ms_fail(r, SIM_ERROR, "m%d: store: %s", m->slot + 1,
                cairn_strerror(rc));
        wal_recovery_free(&rec);
        return;
    }
    struct mvcc_status st;
    CAIRN_ASSERT(mvcc_status_get(m->s, &st) == 0);
    struct node_config cfg = node_config_for(m);
    struct node_member list[MS_SLOTS_MAX];
    bool restart = rec.has_snap || rec.n_entries > 0 || rec.hard_state.term > 0;
    if (restart) {
        cfg.recovery = &rec;
        cfg.applied_index = st.consistent_index;
    } else if (!m->joiner) {
        initial_members(r, list);
        cfg.initial_members = list;
        cfg.n_initial_members = (size_t)r->p.members;
    }
    ms_log_reset(m, rec.has_snap ? rec.snap.index : 0);
    for (size_t i = 0; i < rec.n_entries; i++) {
        struct node_persist p = {.entries = &rec.entries[i], .n_entries = 1};
        ms_log_persisted(m, &p);
    }
    struct node_env env = {.ctx = m,
                           .now_ms = env_now,
                           .send = env_send,
                           .persist = env_persist,
                           .apply = env_apply,
                           .snapshot = env_snapshot,
                           .proposals_queued = env_proposals_queued,
                           .commit_unsent = env_commit_unsent};
    m->up = true;
    m->term = 0;
    m->commit = 0;
    rc = node_new(&cfg, &env, &m->n);
    wal_recovery_free(&rec);
    if (rc != 0) {
        m->up = false;
        ms_fail(r, SIM_ERROR, "m%d: node_new: %s", m->slot + 1,
                cairn_strerror(rc));
        return;
    }
    sim_tracef(&r->w,
               "m%d starts: store rev %" PRId64 " index %" PRIu64
               ", log %" PRIu64 "..%" PRIu64,
               m->slot + 1, st.rev, st.consistent_index, m->log_first,
               m->log_last);
    if (ms_watch_open(m) != 0)
        return;
    tick_fire(&r->w, m, m->inc, 0);
}

void ms_crash(struct ms_member *m, const char *why)
{
    struct ms_run *r = m->r;
    if (!m->up)
        return;
    uint64_t unsynced = cairn_fs_mem_unsynced_bytes(&m->fs);
    sim_tracef(&r->w, "m%d crashes %s (%" PRIu64 " unsynced WAL bytes)",
               m->slot + 1, why, unsynced);
    r->crashes++;
    m->up = false;
    m->inc++;
    if (m->hub != NULL)
        mvcc_watch_hub_close(m->hub);
    m->hub = NULL;
    struct node *n = m->n;
    m->n = NULL;
    for (size_t i = 0; i < m->n_work; i++)
        node_apply_batch_free(m->work[i].b); /* lost with the apply thread */
    m->n_work = 0;
    node_free(n); /* pending requests fail: their clients schedule on */
    node_applier_free(m->ap);
    m->ap = NULL;
    mvcc_close(m->s);
    m->s = NULL;
    lmdb_roll_back(m);
    wal_close(m->wal);
    m->wal = NULL;
    cairn_fs_mem_crash(&m->fs, r->p.torn && prng_chance(&r->w.rng, 0.5));
    m->n_persists = 0;
    m->n_work = 0;
    m->persist_sched = false;
    m->work_sched = false;
    m->props_sched = false;
    m->commit_unsent = false;
    m->commit_sched = false;
    m->crash_point = MS_CP_NONE;
    m->disk_free_us = 0;
    m->paused_until_us = 0; /* the restarted process runs */
}

static void restart_fire(struct sim_world *w, void *arg, uint64_t inc,
                         uint64_t b)
{
    (void)w;
    (void)b;
    struct ms_member *m = arg;
    if (inc != m->inc || m->r->failed || m->r->closing || m->removed)
        return;
    if (m->up)
        ms_crash(m, "(operator restart)");
    member_start(m);
}

void ms_restart_later(struct ms_member *m, uint64_t delay_us)
{
    sim_world_schedule(&m->r->w, delay_us, restart_fire, NULL, m, m->inc, 0);
}

static int rm_cb(const char *path, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A new member in slot m (down, removed): an empty disk and store, joining
 * by the leader's snapshot. */
int ms_join(struct ms_member *m, uint64_t id)
{
    struct ms_run *r = m->r;
    CAIRN_ASSERT(!m->up);
    cairn_fs_mem_close(&m->fs);
    if (cairn_fs_mem_init(&m->fs, &m->fs_rng) != 0)
        return CAIRN_ENOMEM;
    nftw(m->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(m->dir, 0700) != 0)
        return CAIRN_EIO;
    m->id = id;
    m->removed = false;
    m->joiner = true;
    m->learner = true;
    m->generation++;
    m->wnext = 0;
    m->wbookmark = 0;
    m->jump_ms = 0;
    sim_tracef(&r->w, "m%d joins as id %" PRIx64, m->slot + 1, id);
    member_start(m);
    return 0;
}

/* ------------------------------------------------------------ the run */

static void params_pick(struct ms_params *p, struct prng *r, int fault)
{
    memset(p, 0, sizeof(*p));
    p->members = 3 + (int)prng_below(r, 3);
    p->clients = 2 + (int)prng_below(r, 3);
    p->leasers = (int)prng_below(r, MS_LEASERS_MAX + 1);
    p->tick_ms = 10;
    p->election_ticks = 10;
    p->snapshot_count = prng_range(r, 8, 80);
    p->catchup = prng_range(r, 2, 20);
    p->crashes = prng_chance(r, 0.6);
    p->crash_points = p->crashes && prng_chance(r, 0.6);
    p->partitions = prng_chance(r, 0.5);
    p->lossy = prng_chance(r, 0.3);
    p->drift = prng_chance(r, 0.4);
    p->jumps = prng_chance(r, 0.2);
    p->slow_disk = prng_chance(r, 0.3);
    p->torn = prng_chance(r, 0.5);
    p->fsync_fail = prng_chance(r, 0.2);
    p->enospc = prng_chance(r, 0.2);
    p->transfers = prng_chance(r, 0.3);
    p->compaction = prng_chance(r, 0.4);
    p->defrag = prng_chance(r, 0.2);
    p->membership = prng_chance(r, 0.3);
    p->quota_bytes =
        prng_chance(r, 0.15) ? prng_range(r, 64, 160) << 10 : QUOTA_BYTES;
    p->fault_phase_us = prng_range(r, 1000000, 2500000);
    p->nemesis_gap_us_max = prng_range(r, 20000, 400000);
    p->down_us_max = prng_range(r, 50000, 1000000);
    p->link = (struct sim_link){.latency_us_min = 100,
                                .latency_us_max = prng_range(r, 300, 3000),
                                .tail_p = 0.02,
                                .tail_us = 20000,
                                .loss_p = p->lossy ? 0.05 * prng_double(r) : 0,
                                /* cairn's transport delivers in order,
                                 * at most once (docs/transport.md): a
                                 * duplicated MsgProp would be a second
                                 * proposal, which no peer ever sends. */
                                .dup_p = 0,
                                .reorder = false};
    /* Drawn last, so that every earlier choice of a seed stays. */
    p->pauses = prng_chance(r, 0.3);
    p->store_sync_fail = p->fsync_fail && prng_chance(r, 0.5);
    p->store_full = prng_chance(r, 0.15);
    /* Segments of 1 KiB: releases remove several, so a crash part-way
     * through one has something to leave behind. */
    p->small_segments = prng_chance(r, 0.5);
    if (fault != SIM_MF_NONE) {
        /* Fault tests: the mix that exposes the broken rules soonest. */
        p->members = 3;
        p->clients = 4;
        p->leasers = MS_LEASERS_MAX;
        p->crashes = true;
        p->partitions = true;
        p->crash_points = false;
        p->fsync_fail = p->enospc = false;
        p->pauses = p->store_sync_fail = p->store_full = false;
        p->membership = false;
        p->quota_bytes = QUOTA_BYTES;
        p->nemesis_gap_us_max = 150000;
        p->down_us_max = 300000;
    }
}

static void params_format(const struct ms_params *p, char *out, size_t size)
{
    const struct {
        bool on;
        const char *name;
    } f[] = {{p->crashes, "crash"},
             {p->crash_points, "crash-points"},
             {p->partitions, "split"},
             {p->lossy, "lossy"},
             {p->drift, "drift"},
             {p->jumps, "jumps"},
             {p->slow_disk, "slow"},
             {p->torn, "torn"},
             {p->fsync_fail, "eio"},
             {p->store_sync_fail, "lmdb-eio"},
             {p->store_full, "lmdb-full"},
             {p->small_segments, "small-segments"},
             {p->pauses, "pause"},
             {p->enospc, "enospc"},
             {p->transfers, "transfer"},
             {p->compaction, "compact"},
             {p->defrag, "defrag"},
             {p->membership, "membership"},
             {p->quota_bytes < QUOTA_BYTES, "small-quota"}};
    struct buf b;
    buf_init(&b);
    char head[96];
    int n = snprintf(head, sizeof(head),
                     "%d members, %d clients, %d leasers, "
                     "snapshot every %" PRIu64 ";",
                     p->members, p->clients, p->leasers, p->snapshot_count);
    CAIRN_ASSERT(buf_append(&b, head, (size_t)n) == 0);
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].on) {
            CAIRN_ASSERT(buf_append_u8(&b, ' ') == 0);
            CAIRN_ASSERT(buf_append(&b, f[i].name, strlen(f[i].name)) == 0);
        }
    size_t len = b.len < size - 1 ? b.len : size - 1;
    memcpy(out, b.data, len);
    out[len] = 0;
    buf_free(&b);
}

static int run_init(struct ms_run *r, const struct sim_options *opt)
{
    int rv = sim_world_init(&r->w, opt->seed, MS_EVENTS_MAX,
                            opt->trace_lines ? opt->trace_lines : 4000);
    if (rv != 0)
        return rv;
    r->w.trace.echo = opt->echo;
    r->fault = opt->core_fault;
    struct prng pr;
    prng_seed(&pr, opt->seed ^ 0x3e3be75eed5eedull);
    params_pick(&r->p, &pr, r->fault);
    snprintf(r->root, sizeof(r->root), "/dev/shm/cairn-sim-%d-%" PRIu64,
             (int)getpid(), opt->seed);
    if (mkdir(r->root, 0700) != 0) {
        snprintf(r->root, sizeof(r->root), "/tmp/cairn-sim-%d-%" PRIu64,
                 (int)getpid(), opt->seed);
        if (mkdir(r->root, 0700) != 0)
            return CAIRN_EIO;
    }
    sim_net_init(&r->net, &r->w, r->p.members, &r->p.link, 100000, net_deliver,
                 r);
    sim_net_on_lost(&r->net, net_lost);
    lin_history_init(&r->hist, MS_HISTORY_MAX);
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *m = &r->m[i];
        m->r = r;
        m->slot = i;
        m->id = (uint64_t)i + 1;
        m->drift = r->p.drift ? 0.9 + 0.2 * prng_double(&r->w.rng) : 1.0;
        snprintf(m->dir, sizeof(m->dir), "%s/m%d", r->root, i + 1);
        if (mkdir(m->dir, 0700) != 0)
            return CAIRN_EIO;
        prng_seed(&m->fs_rng, prng_fork_seed(&r->w.rng));
        if (cairn_fs_mem_init(&m->fs, &m->fs_rng) != 0)
            return CAIRN_ENOMEM;
    }
    return 0;
}

static void run_free(struct ms_run *r)
{
    r->closing = true;
    for (int i = 0; i < r->p.members; i++) {
        struct ms_member *m = &r->m[i];
        if (m->up)
            ms_crash(m, "(end of run)");
        cairn_fs_mem_close(&m->fs);
        cairn_free(m->persists);
        cairn_free(m->work);
        cairn_free(m->log);
    }
    sim_world_close(&r->w);
    lin_history_free(&r->hist);
    for (size_t i = 0; i < r->revs_cap; i++)
        cairn_free(r->revs[i].evs);
    cairn_free(r->revs);
    cairn_free(r->clog);
    cairn_free(r->leader_of);
    cairn_free(r->leader_changes_us);
    cairn_free(r->hash_at);
    cairn_free(r->hash_set);
    cairn_free(r->sreads);
    cairn_free(r->acks);
    cairn_free(r->leases);
    for (int i = 0; i < MS_WATCHERS_MAX; i++)
        cairn_free(r->wt[i].evs);
    nftw(r->root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

int sim_members_run(const struct sim_options *opt, struct sim_result *res,
                    FILE *trace_out)
{
    memset(res, 0, sizeof(*res));
    struct ms_run *r = cairn_calloc(1, sizeof(*r));
    if (r == NULL)
        return CAIRN_ENOMEM;
    int rv = run_init(r, opt);
    if (rv != 0) {
        run_free(r);
        cairn_free(r);
        return rv;
    }
    params_format(&r->p, res->mix, sizeof(res->mix));
    sim_tracef(&r->w, "seed %" PRIu64 " members: %s%s%s", opt->seed, res->mix,
               r->fault ? " fault " : "",
               r->fault ? sim_member_fault_name(r->fault) : "");
    uint64_t e = (uint64_t)r->p.tick_ms * r->p.election_ticks * 1000;
    r->heal_us = r->p.fault_phase_us;
    r->end_us = r->heal_us + 30 * e;
    for (int i = 0; i < r->p.members && !r->failed; i++)
        member_start(&r->m[i]);
    ms_clients_start(r);
    ms_watchers_start(r);
    ms_nemesis_start(r);
    while (!r->failed && sim_world_step(&r->w, r->end_us))
        ;
    /* Let the members settle (equal applied indexes) for at most 3 s. */
    for (uint64_t t = r->end_us;
         !r->failed && t < r->end_us + 3000000 && !ms_settled(r); t += 10000)
        while (!r->failed && sim_world_step(&r->w, t + 10000))
            ;
    if (!r->failed)
        ms_final_checks(r);
    for (size_t i = 0; i < r->hist.len; i++) {
        enum lin_outcome o = r->hist.ops[i].outcome;
        res->ops_ok += o == LIN_OK;
        res->ops_failed += o == LIN_FAILED;
        res->ops_unknown += o == LIN_UNKNOWN || o == LIN_PENDING;
    }
    res->verdict = r->failed ? r->verdict : SIM_PASS;
    snprintf(res->reason, sizeof(res->reason), "%s", r->reason);
    res->events = r->w.events_run;
    res->sim_time_us = r->w.now_us;
    res->trace_hash = r->w.trace.hash;
    res->max_term = r->max_term;
    res->committed = r->clog_len;
    res->pauses = r->pauses;
    res->store_sync_failures = r->store_sync_failures;
    res->store_full_failures = r->store_full_failures;
    res->store_full_maint = r->store_full_maint;
    res->release_crashes = r->release_crashes;
    if (r->failed && trace_out != NULL)
        sim_trace_dump(&r->w, trace_out);
    run_free(r);
    cairn_free(r);
    return 0;
}

static const char *const fault_names[] = {
    "none",
    "ack_before_persist",
    "read_before_applied",
    "reuse_read_index",
    "expire_leases_on_follower",
    "watch_deliver_twice",
};

const char *sim_member_fault_name(int fault)
{
    if (fault < 0 || fault >= SIM_MF_COUNT)
        return NULL;
    return fault_names[fault];
}

int sim_member_fault_parse(const char *name)
{
    for (int i = 0; i < SIM_MF_COUNT; i++)
        if (strcmp(name, fault_names[i]) == 0)
            return i;
    return -1;
}
