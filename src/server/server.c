/* The member binding: start-up and recovery of the data directory, node/'s
 * environment on a libuv loop, the WAL and apply threads with their bounded
 * queues, the tick timer, the peer transport, and the graceful stop. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/server_int.h"

#define COMP "server"

static void finish_shutdown(struct server *s);

/* ------------------------------------------------------------------------ */
/* Done list: completions from the threads to the loop                      */

static void done_append(struct server *s, struct server__job *j)
{
    j->next = NULL;
    pthread_mutex_lock(&s->done_mu);
    if (s->done_tail != NULL)
        s->done_tail->next = j;
    else
        s->done_head = j;
    s->done_tail = j;
    pthread_mutex_unlock(&s->done_mu);
}

static void done_push(struct server *s, struct server__job *j)
{
    done_append(s, j);
    server__wake_send(&s->wake);
}

static void on_done_idle(uv_idle_t *h);

/* A job done on the loop itself: queued behind the threads' completions
 * (so they keep their order) and handed back from the idle phase, since
 * an env call may not call back into the node. No wake-up is written. */
static void done_push_local(struct server *s, struct server__job *j)
{
    done_append(s, j);
    uv_idle_start(&s->done_idle, on_done_idle);
}

/* ------------------------------------------------------------------------ */
/* WAL thread                                                                */

struct wal_acc {
    struct raft_entry *ents;
    size_t n, cap;
    const struct raft_hard_state *hs;
    struct server__job *jobs[SERVER__WAL_BATCH_MAX];
    size_t n_jobs;
};

/* Adds a persist's entries to the merged batch: later entries replace the
 * merged ones from their first index on, as they would in the log. */
static int acc_add(struct wal_acc *a, const struct node_persist *p)
{
    if (p->n_entries > 0 && a->n > 0) {
        raft_index first = p->entries[0].index;
        if (first <= a->ents[a->n - 1].index) {
            a->n = first > a->ents[0].index ? (size_t)(first - a->ents[0].index)
                                            : 0;
        }
    }
    if (a->n + p->n_entries > a->cap) {
        size_t cap =
            a->cap * 2 > a->n + p->n_entries ? a->cap * 2 : a->n + p->n_entries;
        struct raft_entry *e = cairn_realloc(a->ents, cap * sizeof *e);
        if (e == NULL)
            return CAIRN_ENOMEM;
        a->ents = e;
        a->cap = cap;
    }
    if (p->n_entries > 0) {
        memcpy(a->ents + a->n, p->entries, p->n_entries * sizeof *p->entries);
        a->n += p->n_entries;
    }
    if (p->hard_state != NULL)
        a->hs = p->hard_state;
    return 0;
}

/* Makes the merged batch durable with one wal_append and completes its
 * jobs. A failure is sticky in the WAL (CAIRN_ESYNC and write errors), so
 * every later persist fails too and the node stops the member. */
static void acc_flush(struct server *s, struct wal_acc *a, int status)
{
    if (a->n_jobs == 0)
        return;
    if (status == 0 && (a->n > 0 || a->hs != NULL)) {
        struct cairn_errmsg m = {{0}};
        /* A batch that only moves the commit index is not synced. */
        status = a->n == 0 ? wal_append_hard_state(s->wal, a->hs, &m)
                           : wal_append(s->wal, a->hs, a->ents, a->n, &m);
        if (status != 0)
            cairn_errorf(s->log, COMP, "wal append: %s", m.text);
    }
    for (size_t i = 0; i < a->n_jobs; i++) {
        a->jobs[i]->status = status;
        done_append(s, a->jobs[i]);
    }
    /* A leader of three usually hears a follower's answer after its own
     * sync: the loop says whether it waits on this completion, and takes
     * it after its next wake-up otherwise (node_waits_on_persist). A
     * failure always wakes it: the member stops. */
    if (status == 0)
        server__wake_send_quiet(&s->wake);
    else
        server__wake_send(&s->wake);
    a->n = 0;
    a->hs = NULL;
    a->n_jobs = 0;
}

/* Records a snapshot in member/snap, then in the WAL: in this order (etcd's)
 * a crash between the two leaves a file recovery ignores, where a record
 * without its file leaves a log that does not open (docs/wal.md). */
static int wal_record_snapshot(struct server *s,
                               const struct raft_snapshot_meta *meta)
{
    struct cairn_errmsg m = {{0}};
    int rv = wal_snap_save(&s->fs, s->paths.snap, meta, &m);
    if (rv == 0)
        rv = wal_snapshot(s->wal, meta->index, meta->term, &m);
    if (rv != 0)
        cairn_errorf(s->log, COMP, "record snapshot at %llu: %s",
                     (unsigned long long)meta->index, m.text);
    return rv;
}

static void wal_run_job(struct server *s, struct wal_acc *a,
                        struct server__job *j)
{
    int fatal = wal_fatal_error(s->wal);
    if (j->kind == SERVER__JOB_SNAPSHOT) {
        acc_flush(s, a, fatal);
        int rv = fatal != 0 ? fatal : wal_record_snapshot(s, j->snap);
        struct cairn_errmsg m = {{0}};
        if (rv == 0 && s->max_snapshots > 0)
            rv = wal_snap_purge(&s->fs, s->paths.snap, s->max_snapshots, &m);
        if (rv == 0)
            rv = wal_release(s->wal, j->snap->index, &m);
        if (rv != 0 && m.text[0] != '\0')
            cairn_errorf(s->log, COMP, "snapshot at %llu: %s",
                         (unsigned long long)j->snap->index, m.text);
        j->status = rv;
        done_push(s, j);
        return;
    }
    const struct node_persist *p = j->persist;
    if (p->snap != NULL) {
        acc_flush(s, a, fatal);
        if (fatal == 0)
            fatal = wal_record_snapshot(s, p->snap);
    }
    if (a->n_jobs == SERVER__WAL_BATCH_MAX)
        acc_flush(s, a, fatal);
    if (fatal == 0)
        fatal = acc_add(a, p);
    a->jobs[a->n_jobs++] = j;
    if (fatal != 0)
        acc_flush(s, a, fatal);
}

static void *wal_main(void *arg)
{
    struct server *s = arg;
    /* Named so that top -H, perf and /proc tell the threads apart. */
    pthread_setname_np(pthread_self(), "cairn-wal");
    struct wal_acc a;
    memset(&a, 0, sizeof a);
    void *items[SERVER__WAL_BATCH_MAX];
    for (;;) {
        size_t n = cairn_queue_pop_batch(&s->wal_q, items,
                                         SERVER__WAL_BATCH_MAX, false);
        if (n == 0) {
            /* Idle: prepare the next segment off the hot path. */
            struct cairn_errmsg m = {{0}};
            if (wal_fatal_error(s->wal) == 0 && wal_prepare(s->wal, &m) != 0)
                cairn_warnf(s->log, COMP, "wal prepare: %s", m.text);
            n = cairn_queue_pop_batch(&s->wal_q, items, SERVER__WAL_BATCH_MAX,
                                      true);
            if (n == 0)
                break;
        }
        for (size_t i = 0; i < n; i++)
            wal_run_job(s, &a, items[i]);
        acc_flush(s, &a, wal_fatal_error(s->wal));
    }
    cairn_free(a.ents);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Apply thread                                                              */

static void *apply_main(void *arg)
{
    struct server *s = arg;
    pthread_setname_np(pthread_self(), "cairn-apply");
    void *items[64];
    for (;;) {
        size_t n = cairn_queue_pop_batch(&s->apply_q, items, 64, true);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            struct server__job *j = items[i];
            if (j->kind == SERVER__JOB_APPLY) {
                j->status = node_applier_apply(s->applier, j->batch);
                done_push(s, j);
                continue;
            }
            /* A snapshot: LMDB durable first, then the WAL records it and
             * releases what it covers (DESIGN.md, durability contract). */
            j->status = node_applier_sync(s->applier);
            if (j->status != 0 ||
                (j->status = cairn_queue_push(&s->wal_q, j)) != 0)
                done_push(s, j);
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The node's environment (loop thread)                                      */

static int64_t env_now_ms(void *ctx)
{
    struct server *s = ctx;
    return (int64_t)uv_now(s->loop);
}

static void job_free(struct server__job *j)
{
    if (j != NULL)
        cairn_free(j->snap);
    cairn_free(j);
}

static struct server__job *job_new(struct server *s, enum server__job_kind k)
{
    struct server__job *j = cairn_calloc(1, sizeof *j);
    if (j == NULL) {
        /* The node cannot be told from inside an env call; stop the
         * member from the loop instead (the wake-up's callback sees it). */
        cairn_errorf(s->log, COMP, "out of memory queueing work: stopping");
        s->stop_status = CAIRN_ENOMEM;
        server__wake_send(&s->wake);
        return NULL;
    }
    j->kind = k;
    return j;
}

/* While stopping, after the threads have exited: the job's work done on
 * the loop thread (the WAL and the applier are free now), its completion
 * queued for the drain in free_state. */
static void run_inline(struct server *s, struct server__job *j)
{
    struct wal_acc a;
    memset(&a, 0, sizeof a);
    if (j->kind == SERVER__JOB_APPLY) {
        j->status = node_applier_apply(s->applier, j->batch);
        done_push(s, j);
        return;
    }
    if (j->kind == SERVER__JOB_SNAPSHOT) {
        j->status = node_applier_sync(s->applier);
        if (j->status != 0) {
            done_push(s, j);
            return;
        }
    }
    wal_run_job(s, &a, j);
    acc_flush(s, &a, wal_fatal_error(s->wal));
    cairn_free(a.ents);
}

static void env_persist(void *ctx, const struct node_persist *p)
{
    struct server *s = ctx;
    struct server__job *j = job_new(s, SERVER__JOB_PERSIST);
    if (j == NULL)
        return;
    j->persist = p;
    j->seq = p->seq;
    if (s->inline_work) {
        run_inline(s, j);
        return;
    }
    if (cairn_queue_push(&s->wal_q, j) != 0)
        job_free(j);
}

/* Pushes an apply or snapshot job to the apply thread. */
static void apply_push(struct server *s, struct server__job *j)
{
    if (cairn_queue_push(&s->apply_q, j) != 0) {
        job_free(j);
        return;
    }
    j->counted = true;
    s->apply_inflight++;
}

static void env_apply(void *ctx, struct node_apply_batch *b)
{
    struct server *s = ctx;
    struct server__job *j = job_new(s, SERVER__JOB_APPLY);
    if (j == NULL)
        return;
    j->batch = b;
    if (s->inline_work) {
        run_inline(s, j);
        return;
    }
    /* A few puts, with the apply thread idle (so not writing the store:
     * one LMDB writer at a time, batches in order): applied here. Waking
     * the apply thread and being woken back cost more than the apply, at
     * one put per batch (docs/server.md, "Light batches on the loop"). */
    if (s->apply_inflight == 0 && s->handles_ready &&
        !uv_is_closing((uv_handle_t *)&s->done_idle) &&
        node_apply_batch_light(b)) {
        j->status = node_applier_apply(s->applier, b);
        done_push_local(s, j);
        return;
    }
    apply_push(s, j);
}

static void env_snapshot(void *ctx, const struct raft_snapshot_meta *meta)
{
    struct server *s = ctx;
    struct server__job *j = job_new(s, SERVER__JOB_SNAPSHOT);
    if (j == NULL)
        return;
    j->snap = cairn_malloc(sizeof *j->snap);
    if (j->snap == NULL) {
        job_free(j);
        cairn_errorf(s->log, COMP, "out of memory queueing work: stopping");
        s->stop_status = CAIRN_ENOMEM;
        server__wake_send(&s->wake);
        return;
    }
    *j->snap = *meta;
    if (s->inline_work) {
        run_inline(s, j);
        return;
    }
    apply_push(s, j);
}

/* The proposals a loop turn gathers (every request read in one poll) go
 * to raft together from the idle phase: one entry batch, one persist and
 * one append per follower instead of one each. Idle, not prepare or check:
 * it runs before the rpc server's prepare-phase flush, so refusals it
 * answers leave in the same turn, and while active it keeps poll from
 * waiting. */
static void on_flush_proposals(uv_idle_t *h)
{
    struct server *s = h->data;
    uv_idle_stop(h);
    if (s->node != NULL && !s->shutting_down)
        node_flush_proposals(s->node);
}

static void env_proposals_queued(void *ctx)
{
    struct server *s = ctx;
    if (s->handles_ready && !uv_is_closing((uv_handle_t *)&s->prop_idle))
        uv_idle_start(&s->prop_idle, on_flush_proposals);
}

/* The leader tells followers a new commit index with the next append, or
 * from this timer when none goes out within SERVER__COMMIT_DELAY_MS: at
 * put-1 rates the next put's append carries it, and the append that
 * carried only the commit, and each follower's answer to it, are saved
 * (docs/raft.md, "Lazy commit"). */
static void on_commit_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    if (s->node != NULL && !s->shutting_down)
        node_send_commit(s->node);
}

static void env_commit_unsent(void *ctx, bool unsent)
{
    struct server *s = ctx;
    if (!s->handles_ready || uv_is_closing((uv_handle_t *)&s->commit_timer))
        return;
    if (!unsent)
        uv_timer_stop(&s->commit_timer);
    else if (!uv_is_active((uv_handle_t *)&s->commit_timer))
        uv_timer_start(&s->commit_timer, on_commit_timer,
                       SERVER__COMMIT_DELAY_MS, 0);
}

/* Sending a snapshot: the store's image is written to a file in the
 * thread pool, then streamed by the transport. */
struct snap_send {
    uv_work_t work;
    struct server *s;
    struct raft_message m;
    struct raft_snapshot snap;
    char path[4200];
    int status;
};

static void snap_send_work(uv_work_t *w)
{
    struct snap_send *ss = w->data;
    int fd = open(ss->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        ss->status = cairn_err_from_errno(errno);
        return;
    }
    struct cairn_errmsg m = {{0}};
    ss->status = mvcc_snapshot_write(ss->s->store, fd, &m);
    if (close(fd) != 0 && ss->status == 0)
        ss->status = CAIRN_EIO;
}

static void snap_send_after(uv_work_t *w, int uv_status)
{
    struct snap_send *ss = w->data;
    struct server *s = ss->s;
    s->pending_work--;
    int rv = uv_status != 0 ? CAIRN_ECANCELED : ss->status;
    if (rv == 0 && s->transport != NULL && !s->shutting_down) {
        struct cairn_errmsg m = {{0}};
        rv = transport_send_snapshot(s->transport, &ss->m, ss->path, &m);
        if (rv != 0)
            cairn_warnf(s->log, COMP, "send snapshot to %016llx: %s",
                        (unsigned long long)ss->m.to, m.text);
    } else if (rv == 0) {
        rv = CAIRN_ECANCELED;
    }
    unlink(ss->path);
    if (rv != 0 && s->node != NULL && !s->shutting_down)
        node_report_snapshot(s->node, ss->m.to, true);
    cairn_free(ss);
    if (s->shutting_down)
        finish_shutdown(s);
}

static void send_snapshot(struct server *s, const struct raft_message *m)
{
    struct snap_send *ss = cairn_calloc(1, sizeof *ss);
    if (ss == NULL) {
        node_report_snapshot(s->node, m->to, true);
        return;
    }
    ss->s = s;
    ss->m = *m;
    ss->m.entries = NULL;
    ss->m.n_entries = 0;
    ss->snap = *m->snapshot;
    ss->snap.data = NULL;
    ss->snap.len = 0;
    ss->m.snapshot = &ss->snap;
    snprintf(ss->path, sizeof ss->path, "%s/send-%016llx-%016llx.img",
             s->paths.snap, (unsigned long long)m->to,
             (unsigned long long)m->snapshot->meta.index);
    ss->work.data = ss;
    if (uv_queue_work(s->loop, &ss->work, snap_send_work, snap_send_after) !=
        0) {
        cairn_free(ss);
        node_report_snapshot(s->node, m->to, true);
        return;
    }
    s->pending_work++;
}

static void env_send(void *ctx, const struct raft_message *msgs, size_t n)
{
    struct server *s = ctx;
    if (s->transport == NULL || s->shutting_down)
        return;
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].type == RAFT_MSG_SNAP)
            send_snapshot(s, &msgs[i]);
        else
            transport_send(s->transport, &msgs[i]);
    }
}

/* ------------------------------------------------------------------------ */
/* Transport callbacks                                                       */

static bool node_usable(const struct server *s)
{
    return s->node != NULL && !s->shutting_down;
}

static void tr_receive(void *arg, const struct raft_message *m)
{
    struct server *s = arg;
    if (node_usable(s))
        node_receive(s->node, m);
}

static void tr_snapshot(void *arg, const struct raft_message *m,
                        const char *body_path)
{
    struct server *s = arg;
    if (!node_usable(s) || m->snapshot == NULL) {
        unlink(body_path);
        return;
    }
    /* node.h: a received MsgSnap's data is the path of the image file. */
    struct raft_snapshot snap = *m->snapshot;
    snap.data = (const uint8_t *)body_path;
    snap.len = strlen(body_path);
    struct raft_message copy = *m;
    copy.snapshot = &snap;
    node_receive(s->node, &copy);
}

static void tr_unreachable(void *arg, raft_id peer)
{
    struct server *s = arg;
    if (node_usable(s))
        node_report_unreachable(s->node, peer);
}

static void tr_snapshot_status(void *arg, raft_id peer, raft_index index,
                               int status)
{
    struct server *s = arg;
    (void)index;
    if (node_usable(s))
        node_report_snapshot(s->node, peer, status != 0);
}

/* A peer refused us as removed: etcd's member logs "the member has been
 * permanently removed from the cluster" and stops; so do we (the node
 * stops with CAIRN_EREMOVED, the next tick shuts the server down). Also
 * when this member missed the entry removing it. */
static void tr_removed(void *arg, raft_id by)
{
    struct server *s = arg;
    if (!node_usable(s))
        return;
    cairn_errorf(s->log, COMP,
                 "the member has been permanently removed from the cluster "
                 "(refused by peer %016llx)",
                 (unsigned long long)by);
    node_report_removed(s->node);
}

static const struct transport_cbs tr_cbs = {
    .receive = tr_receive,
    .snapshot = tr_snapshot,
    .unreachable = tr_unreachable,
    .snapshot_status = tr_snapshot_status,
    .removed = tr_removed,
};

/* The store's removed ids (etcd's members_removed) are refused by the
 * transport: from the first tick after start, after a snapshot restore
 * brought more, and as removals apply. The list only grows, so its length
 * says whether there is news. */
static void refuse_removed(struct server *s)
{
    uint64_t ids[256];
    size_t n = node_removed(s->node, ids, sizeof(ids) / sizeof(ids[0]));
    if (n == s->n_removed_marked)
        return;
    for (size_t i = 0; i < n && i < sizeof(ids) / sizeof(ids[0]); i++)
        transport_mark_removed(s->transport, ids[i]);
    s->n_removed_marked = n;
}

static uint32_t peer_urls_crc(const struct node_member *m)
{
    uint32_t crc = 0;
    for (uint32_t k = 0; k < m->n_peer_urls; k++)
        crc = crc32c(crc, m->peer_urls[k], strlen(m->peer_urls[k]) + 1);
    return crc;
}

/* Records m's URLs as the ones its transport peer has; true if they
 * differ from those recorded before (none recorded: false). */
static bool peer_urls_changed(struct server *s, const struct node_member *m)
{
    uint32_t crc = peer_urls_crc(m);
    for (size_t i = 0; i < s->n_peer_crcs; i++)
        if (s->peer_crcs[i].id == m->id) {
            bool changed = s->peer_crcs[i].crc != crc;
            s->peer_crcs[i].crc = crc;
            return changed;
        }
    if (s->n_peer_crcs < SERVER__MEMBERS_MAX) {
        s->peer_crcs[s->n_peer_crcs].id = m->id;
        s->peer_crcs[s->n_peer_crcs++].crc = crc;
    }
    return false;
}

/* A member update (v3 MemberUpdate, v2 PUT /v2/members/<id>) changed a
 * known peer's URLs: the transport dials the new ones. */
static void update_peer_urls(struct server *s, const struct node_member *mem)
{
    if (!peer_urls_changed(s, mem))
        return;
    const char *urls[NODE_MEMBER_URLS_MAX];
    for (uint32_t k = 0; k < mem->n_peer_urls; k++)
        urls[k] = mem->peer_urls[k];
    struct cairn_errmsg m = {{0}};
    if (transport_update_peer(s->transport, mem->id, urls, mem->n_peer_urls,
                              &m) != 0)
        cairn_warnf(s->log, COMP, "update peer %016llx: %s",
                    (unsigned long long)mem->id, m.text);
    else
        cairn_infof(s->log, COMP, "updated peer %016llx (%s)",
                    (unsigned long long)mem->id, urls[0]);
}

/* Keeps the transport's peers equal to the applied members: new members
 * are dialled, removed ones dropped, changed URLs updated. */
static void reconcile_peers(struct server *s)
{
    if (s->transport == NULL || s->shutting_down || !node_usable(s))
        return;
    refuse_removed(s);
    size_t n = node_members(s->node, s->members, SERVER__MEMBERS_MAX);
    if (n > SERVER__MEMBERS_MAX)
        n = SERVER__MEMBERS_MAX;
    raft_id have[TRANSPORT_PEERS_MAX];
    size_t n_have = transport_peer_ids(s->transport, have, TRANSPORT_PEERS_MAX);
    if (n_have > TRANSPORT_PEERS_MAX)
        n_have = TRANSPORT_PEERS_MAX;
    for (size_t i = 0; i < n; i++) {
        const struct node_member *mem = &s->members[i];
        if (mem->id == s->member_id || mem->n_peer_urls == 0)
            continue;
        bool known = false;
        for (size_t k = 0; k < n_have && !known; k++)
            known = have[k] == mem->id;
        if (known) {
            update_peer_urls(s, mem);
            continue;
        }
        const char *urls[NODE_MEMBER_URLS_MAX];
        for (uint32_t k = 0; k < mem->n_peer_urls; k++)
            urls[k] = mem->peer_urls[k];
        struct cairn_errmsg m = {{0}};
        int rv = transport_add_peer(s->transport, mem->id, urls,
                                    mem->n_peer_urls, &m);
        if (rv == 0)
            peer_urls_changed(s, mem);
        if (rv != 0)
            cairn_warnf(s->log, COMP, "add peer %016llx: %s",
                        (unsigned long long)mem->id, m.text);
        else
            cairn_infof(s->log, COMP, "added peer %016llx (%s)",
                        (unsigned long long)mem->id, urls[0]);
    }
    /* Until this member's own record is applied (a joining member before
     * the leader's snapshot) the list is not the cluster's: drop no one. */
    bool self_listed = false;
    for (size_t i = 0; i < n && !self_listed; i++)
        self_listed = s->members[i].id == s->member_id;
    for (size_t k = 0; self_listed && k < n_have; k++) {
        bool member = false;
        for (size_t i = 0; i < n && !member; i++)
            member = s->members[i].id == have[k];
        if (!member) {
            transport_remove_peer(s->transport, have[k]);
            cairn_infof(s->log, COMP, "removed peer %016llx",
                        (unsigned long long)have[k]);
        }
    }
}

static void check_ready(struct server *s);

/* Copies src into dst of size bytes; false if it does not fit. */
static bool copy_str(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);
    if (len >= size)
        return false;
    memcpy(dst, src, len + 1);
    return true;
}

/* Whether the applied record of this member carries our name and client
 * URLs already. */
static bool attributes_applied(const struct server *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct node_member *mem = &s->members[i];
        if (mem->id != s->member_id)
            continue;
        if (strcmp(mem->name, s->name) != 0 ||
            mem->n_client_urls != s->client_urls.n)
            return false;
        for (size_t k = 0; k < s->client_urls.n; k++)
            if (strcmp(mem->client_urls[k], s->client_urls.url[k]) != 0)
                return false;
        return true;
    }
    return false;
}

static void on_published(void *arg, const struct node_result *res)
{
    struct server *s = arg;
    if (res->err == 0 && !s->published) {
        s->published = true;
        check_ready(s);
    }
}

/* etcd's publish: once it knows a leader and has caught up (check_ready), this
 * member's name and client URLs go through raft into its member record, so that
 * every member lists them. Retried every two election timeouts until the record
 * carries them (a proposal may be lost to a leader change). */
static void publish_attributes(struct server *s)
{
    if (s->published || s->stopping || !node_usable(s))
        return;
    size_t n = node_members(s->node, s->members, SERVER__MEMBERS_MAX);
    if (n > SERVER__MEMBERS_MAX)
        n = SERVER__MEMBERS_MAX;
    if (attributes_applied(s, n)) {
        s->published = true;
        return;
    }
    uint64_t now = uv_now(s->loop);
    if (s->publish_tried && now - s->publish_ms < 2u * s->election_ms)
        return;
    if (s->client_urls.n > NODE_MEMBER_URLS_MAX)
        return;
    struct node_member *m = cairn_calloc(1, sizeof *m);
    if (m == NULL)
        return;
    m->id = s->member_id;
    bool fits = copy_str(m->name, sizeof m->name, s->name);
    m->n_client_urls = (uint32_t)s->client_urls.n;
    for (size_t k = 0; fits && k < s->client_urls.n; k++)
        fits = copy_str(m->client_urls[k], NODE_URL_MAX, s->client_urls.url[k]);
    if (!fits) {
        cairn_free(m);
        s->published = true; /* cannot be recorded: flags were checked */
        cairn_warnf(s->log, COMP, "name or client URLs too long to publish");
        return;
    }
    s->publish_tried = true;
    s->publish_ms = now;
    int rc = node_member_update(s->node, m, s, on_published);
    cairn_free(m);
    if (rc != 0)
        cairn_debugf(s->log, COMP, "publish refused: %s", cairn_strerror(rc));
}

/* Logs etcd's readiness lines once the member knows a leader and has
 * applied everything committed: tools wait for them. */
static void check_ready(struct server *s)
{
    if (s->ready || !node_usable(s) || s->stopping)
        return;
    if (node_leader(s->node) == 0)
        return;
    struct node_status st;
    node_status_get(s->node, &st);
    if (st.applied_index < st.commit_index)
        return;
    /* As etcd: ready (and its lines logged) once this member's attributes
     * are in the applied member list, so that a client that waited for
     * the lines finds every member's client URLs. */
    publish_attributes(s);
    if (!s->published)
        return;
    s->ready = true;
    char urls[SERVER_URLS_MAX * SERVER_URL_LEN_MAX];
    size_t used = 0;
    urls[0] = '\0';
    for (size_t i = 0; i < s->client_urls.n && used < sizeof urls; i++)
        used += (size_t)snprintf(urls + used, sizeof urls - used, "%s%s",
                                 i > 0 ? " " : "", s->client_urls.url[i]);
    cairn_infof(s->log, COMP,
                "published {Name:%s ClientURLs:[%s]} to cluster %016llx",
                s->name, urls, (unsigned long long)s->cluster_id);
    cairn_infof(s->log, COMP, "enabled capabilities for version %s",
                SERVER_CLUSTER_VERSION);
    cairn_infof(s->log, COMP, "ready to serve client requests");
}

static void check_node_stopped(struct server *s)
{
    int err = 0;
    if (s->node != NULL && !s->stopping && node_stopped(s->node, &err)) {
        cairn_errorf(s->log, COMP, "member stopped: %s", cairn_strerror(err));
        server__shutdown(s, err != 0 ? err : CAIRN_ESTOPPED);
    }
}

/* Hands one completion to the node and frees the job. */
static void dispatch(struct server *s, struct server__job *j)
{
    if (j->counted)
        s->apply_inflight--;
    switch (j->kind) {
    case SERVER__JOB_PERSIST:
        node_persisted(s->node, j->seq, j->status);
        break;
    case SERVER__JOB_APPLY:
        node_applied(s->node, j->batch);
        if (s->applied_cb != NULL && !s->stopping)
            s->applied_cb(s->applied_arg);
        if (!s->stopping)
            server__v2_applied(s);
        break;
    case SERVER__JOB_SNAPSHOT:
        node_snapshot_done(s->node, j->snap->index, j->status);
        break;
    }
    job_free(j);
}

static struct server__job *done_take(struct server *s)
{
    pthread_mutex_lock(&s->done_mu);
    struct server__job *j = s->done_head;
    s->done_head = s->done_tail = NULL;
    pthread_mutex_unlock(&s->done_mu);
    return j;
}

static void take_completions(struct server *s)
{
    struct server__job *j = done_take(s);
    /* Also while stopping: every batch lent to the node goes back to it. */
    while (j != NULL && s->node != NULL) {
        struct server__job *next = j->next;
        dispatch(s, j);
        j = next;
    }
    while (j != NULL) { /* the node is gone: nothing to hand back */
        struct server__job *next = j->next;
        job_free(j);
        j = next;
    }
    if (s->stop_status != 0 && !s->stopping)
        server__shutdown(s, s->stop_status);
    server__metrics_note_leader(s);
    check_node_stopped(s);
    check_ready(s);
    /* After applied batches, and when woken for a new or resumed watcher
     * (watch.c): a poll with nothing to deliver is cheap. */
    if (s->store != NULL && !s->state_freed)
        server__watch_poll(s);
}

static void on_wake(struct server__wake *w)
{
    take_completions(w->poll.data);
}

/* Before the loop waits: must the WAL's next completion wake it? Yes
 * unless the node would do nothing with it before another event. */
static bool on_wake_want(struct server__wake *w)
{
    struct server *s = w->poll.data;
    return !node_usable(s) || s->stopping || s->inline_work ||
           node_waits_on_persist(s->node);
}

static void on_done_idle(uv_idle_t *h)
{
    struct server *s = h->data;
    uv_idle_stop(h);
    take_completions(s);
}

/* etcd's adjustTicks: once at least two peers are connected (within 5 s
 * of start), fast-forward the election clock to two ticks before its
 * timeout, so a new or restarted cluster elects a leader quickly. */
static void advance_ticks(struct server *s)
{
    if ((int64_t)uv_now(s->loop) - s->start_ms > 5000) {
        s->advance_pending = false;
        return;
    }
    raft_id ids[TRANSPORT_PEERS_MAX];
    size_t n = transport_peer_ids(s->transport, ids, TRANSPORT_PEERS_MAX);
    size_t active = 0;
    for (size_t i = 0; i < n && i < TRANSPORT_PEERS_MAX; i++) {
        struct transport_peer_status st;
        if (transport_peer_status(s->transport, ids[i], &st) == 0 &&
            st.state == TRANSPORT_PEER_CONNECTED)
            active++;
    }
    if (active < 2)
        return;
    s->advance_pending = false;
    /* Already following a leader, there is no election to hasten: advanced
     * 8 of 10 ticks a tick after the leader's last message, and ticked
     * once more below, a follower whose randomized timeout was 10 stood
     * for election against the leader it had just published through
     * (cluster_auth: "no leader" right after every member was ready). */
    if (node_leader(s->node) != 0) {
        cairn_infof(s->log, COMP,
                    "%zu peers connected; following a leader already, no "
                    "election ticks fast-forwarded",
                    active);
        return;
    }
    unsigned ticks = s->election_ms / s->heartbeat_ms;
    ticks = ticks > 2 ? ticks - 2 : 0;
    cairn_infof(s->log, COMP,
                "%zu peers connected; fast-forwarding %u election ticks",
                active, ticks);
    for (unsigned i = 0; i < ticks && node_usable(s); i++)
        node_tick(s->node);
}

/* Gives free heap pages back to the kernel about once a second. A burst
 * (10,000 keep-alive streams, a trimmed log cache) leaves much of the heap
 * free but fragmented, and glibc by itself returns only its top: a member
 * kept 12-15 MB of anonymous memory after the keep-alive workload that
 * malloc_trim brought to 3.4-4.6 MB. */
static void trim_heap(struct server *s)
{
#ifdef __GLIBC__
    if (++s->trim_ticks < 1000 / s->heartbeat_ms)
        return;
    s->trim_ticks = 0;
    malloc_trim(0); /* 0.15-0.7 ms on the loop after a put-100 run */
#else
    (void)s;
#endif
}

static void on_tick(uv_timer_t *t)
{
    struct server *s = t->data;
    if (!node_usable(s))
        return;
    if (s->advance_pending && s->transport != NULL)
        advance_ticks(s);
    node_tick(s->node);
    server__v2_tick(s);
    server__metrics_note_leader(s);
    check_node_stopped(s);
    reconcile_peers(s);
    check_ready(s);
    trim_heap(s);
}

/* ------------------------------------------------------------------------ */
/* Start-up                                                                  */

/* mkdir -p with etcd's private permissions. */
static int mkdir_all(const char *path, struct cairn_errmsg *m)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return cairn_errmsg_code(m, CAIRN_ETOOBIG, "path %s", path);
    memcpy(buf, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return cairn_errmsg_code(m, cairn_err_from_errno(errno),
                                     "create directory %s", buf);
        buf[i] = c;
    }
    return 0;
}

/* One member per data directory: a second process on the same files
 * would interleave WAL writes (etcd locks its WAL files for the same
 * reason). The lock goes with the process, also on SIGKILL. */
static int lock_data_dir(struct server *s, struct cairn_errmsg *m)
{
    char path[sizeof s->paths.member + 8];
    snprintf(path, sizeof path, "%s/lock", s->paths.member);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0)
        return cairn_errmsg_code(m, cairn_err_from_errno(errno), "open %s",
                                 path);
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        close(s->lock_fd);
        s->lock_fd = -1;
        return cairn_errmsg_code(
            m, err == EWOULDBLOCK ? CAIRN_EBUSY : cairn_err_from_errno(err),
            "data directory %s is in use by another "
            "member (lock %s)",
            s->paths.member, path);
    }
    return 0;
}

static void unlock_data_dir(struct server *s)
{
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    s->lock_fd = -1;
}

/* Snapshot images being written for a follower when the member last
 * stopped are of no use now. */
static void remove_stale_images(struct server *s)
{
    struct cairn_fs_names names;
    if (s->fs.list(&s->fs, s->paths.snap, &names) != 0)
        return;
    for (size_t i = 0; i < names.count; i++) {
        if (strncmp(names.names[i], "send-", 5) != 0)
            continue;
        char path[sizeof s->paths.snap + 300];
        snprintf(path, sizeof path, "%s/%.256s", s->paths.snap, names.names[i]);
        s->fs.unlink(&s->fs, path);
    }
    cairn_fs_names_free(&names);
}

static bool urls_equal_sets(const struct server_urls *a,
                            const struct server_urls *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        bool found = false;
        for (size_t k = 0; k < b->n && !found; k++)
            found = strcmp(a->url[i], b->url[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

/* A new member: the initial cluster gives the ids and the members. */
static int bootstrap_members(struct server *s, const struct server_config *c,
                             struct server_initial_cluster *ic,
                             struct node_member **out, size_t *n_out,
                             struct cairn_errmsg *m)
{
    int rv = server_initial_cluster_parse(c->initial_cluster,
                                          c->initial_cluster_token, ic, m);
    if (rv != 0)
        return rv;
    const struct server_cluster_member *self = NULL;
    for (size_t i = 0; i < ic->n; i++)
        if (strcmp(ic->members[i].name, c->name) == 0)
            self = &ic->members[i];
    if (self == NULL)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "couldn't find local name \"%s\" in the "
                                 "initial cluster configuration",
                                 c->name);
    if (!urls_equal_sets(&self->peer_urls, &c->initial_advertise_peer_urls))
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "--initial-cluster has %s=%s but missing "
                                 "from --initial-advertise-peer-urls",
                                 self->name, self->peer_urls.url[0]);
    s->member_id = self->id;
    s->cluster_id = ic->cluster_id;
    struct node_member *mem = cairn_calloc(ic->n, sizeof *mem);
    if (mem == NULL)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "initial members");
    for (size_t i = 0; i < ic->n; i++) {
        const struct server_cluster_member *cm = &ic->members[i];
        mem[i].id = cm->id;
        bool fits = copy_str(mem[i].name, sizeof mem[i].name, cm->name) &&
                    cm->peer_urls.n <= NODE_MEMBER_URLS_MAX;
        for (size_t k = 0; fits && k < cm->peer_urls.n; k++)
            fits = copy_str(mem[i].peer_urls[mem[i].n_peer_urls++],
                            NODE_URL_MAX, cm->peer_urls.url[k]);
        /* No client URLs: every member must bootstrap the same records;
         * each publishes its own through raft once ready
         * (publish_attributes), as etcd does. */
        if (!fits) {
            cairn_free(mem);
            return cairn_errmsg_code(
                m, CAIRN_EINVAL,
                "member %s: a name of %d bytes or more, a URL of %d bytes "
                "or more, or more than %d URLs",
                cm->name, NODE_MEMBER_NAME_MAX, NODE_URL_MAX,
                NODE_MEMBER_URLS_MAX);
        }
    }
    *out = mem;
    *n_out = ic->n;
    return 0;
}

/* Whether this member is the only voter of the configuration in force. */
static bool sole_voter(struct server *s)
{
    struct raft_status *st = cairn_malloc(sizeof *st);
    if (st == NULL)
        return false;
    raft_status_get(node_raft(s->node), st);
    bool sole = st->conf.n_voters == 1 && st->conf.n_voters_outgoing == 0 &&
                st->conf.voters[0] == s->member_id;
    cairn_free(st);
    return sole;
}

static void stop_threads(struct server *s)
{
    if (!s->threads_started)
        return;
    cairn_queue_close(&s->apply_q);
    pthread_join(s->apply_thread, NULL);
    cairn_queue_close(&s->wal_q);
    pthread_join(s->wal_thread, NULL);
    s->threads_started = false;
}

static void free_state(struct server *s)
{
    stop_threads(s);
    if (s->node != NULL) {
        /* The threads drained their queues; hand their completions back
         * (batches and persists are the node's), running whatever work
         * that produces inline, until nothing is left. Bounded: without
         * ticks or messages the node only finishes what it started. */
        s->inline_work = true;
        for (int round = 0; round < 100000; round++) {
            struct server__job *j = done_take(s);
            if (j == NULL)
                break;
            while (j != NULL) {
                struct server__job *next = j->next;
                dispatch(s, j);
                j = next;
            }
        }
        node_free(s->node);
        s->node = NULL;
    }
    struct server__job *j = done_take(s);
    while (j != NULL) {
        struct server__job *next = j->next;
        job_free(j);
        j = next;
    }
    void *item;
    while (cairn_queue_pop_batch(&s->wal_q, &item, 1, false) == 1)
        cairn_free(item);
    while (cairn_queue_pop_batch(&s->apply_q, &item, 1, false) == 1)
        cairn_free(item);
    if (s->applier != NULL) {
        node_applier_free(s->applier);
        s->applier = NULL;
    }
    if (s->lessor != NULL) {
        lease_close(s->lessor);
        s->lessor = NULL;
    }
    server__watch_close_hubs(s);
    if (s->store != NULL) {
        mvcc_close(s->store);
        s->store = NULL;
    }
    if (s->wal != NULL) {
        wal_close(s->wal);
        s->wal = NULL;
    }
    wal_recovery_free(&s->rec);
}

/* The loop's handles: the env may signal the wake-up from the moment
 * the threads run. Only the wake-up can fail (no file descriptor left). */
static int init_handles(struct server *s)
{
    if (s->handles_ready)
        return 0;
    int rv = server__wake_init(s->loop, &s->wake, on_wake);
    if (rv != 0)
        return rv;
    s->wake.poll.data = s;
    server__wake_quiet_start(&s->wake, on_wake_want);
    uv_timer_init(s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_init(s->loop, &s->stop_timer);
    s->stop_timer.data = s;
    uv_idle_init(s->loop, &s->prop_idle);
    s->prop_idle.data = s;
    uv_timer_init(s->loop, &s->commit_timer);
    s->commit_timer.data = s;
    uv_idle_init(s->loop, &s->done_idle);
    s->done_idle.data = s;
    server__compactor_init_timer(s);
    s->handles_ready = true;
    return 0;
}

/* A joining member's first peers: the members that dialled it, at the
 * URLs --initial-cluster gives them (found by etcd's id derivation for
 * initial members; otherwise every listed URL not taken, which the
 * transport tries in turn until one answers as that member). The applied
 * member list takes over once the leader's snapshot is in. */
static void add_join_peers(struct server *s)
{
    const struct server_initial_cluster *ic = s->ic;
    bool taken[SERVER_MEMBERS_MAX] = {false};
    for (size_t i = 0; i < ic->n; i++)
        taken[i] = strcmp(ic->members[i].name, s->name) == 0;
    uint64_t unmatched[SERVER__JOIN_SENDERS_MAX];
    size_t n_unmatched = 0;
    for (size_t k = 0; k < s->n_join_senders; k++) {
        const char *urls[SERVER_URLS_MAX];
        size_t n = 0;
        for (size_t i = 0; i < ic->n && n == 0; i++) {
            if (taken[i] || ic->members[i].id != s->join_senders[k])
                continue;
            taken[i] = true;
            for (size_t u = 0; u < ic->members[i].peer_urls.n; u++)
                urls[n++] = ic->members[i].peer_urls.url[u];
        }
        struct cairn_errmsg m = {{0}};
        if (n == 0)
            unmatched[n_unmatched++] = s->join_senders[k];
        else if (transport_add_peer(s->transport, s->join_senders[k], urls, n,
                                    &m) != 0)
            cairn_warnf(s->log, COMP, "add peer %016llx: %s",
                        (unsigned long long)s->join_senders[k], m.text);
    }
    for (size_t k = 0; k < n_unmatched; k++) {
        const char *urls[SERVER_URLS_MAX];
        size_t n = 0;
        for (size_t i = 0; i < ic->n; i++)
            for (size_t u = 0; !taken[i] && u < ic->members[i].peer_urls.n &&
                               n < SERVER_URLS_MAX;
                 u++)
                urls[n++] = ic->members[i].peer_urls.url[u];
        struct cairn_errmsg m = {{0}};
        if (n == 0 ||
            transport_add_peer(s->transport, unmatched[k], urls, n, &m) != 0)
            cairn_warnf(s->log, COMP, "add peer %016llx: %s",
                        (unsigned long long)unmatched[k], m.text);
    }
}

/* A crash after a received snapshot's metadata was made durable and before
 * the store was restored from its image leaves the store behind the
 * snapshot: restore it now from the image the transport kept
 * (docs/transport.md: <snap>/snap-<from>-<index>-<seq>.body). Images of no
 * further use are removed. */
static int restore_received_image(struct server *s, struct cairn_errmsg *m)
{
    struct mvcc_status ms;
    int rv = mvcc_status_get(s->store, &ms);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "store status");
    bool behind = s->rec.has_snap && s->rec.snap.index > ms.consistent_index;
    char want[40];
    snprintf(want, sizeof want, "-%016llx-",
             (unsigned long long)s->rec.snap.index);
    struct cairn_fs_names names;
    rv = s->fs.list(&s->fs, s->paths.snap, &names);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "list %s", s->paths.snap);
    bool restored = false;
    for (size_t i = 0; i < names.count; i++) {
        const char *n = names.names[i];
        size_t len = strlen(n);
        if (strncmp(n, "snap-", 5) != 0 || len < 5 ||
            strcmp(n + len - 5, ".body") != 0)
            continue;
        char path[sizeof s->paths.snap + 300];
        snprintf(path, sizeof path, "%s/%.256s", s->paths.snap, n);
        if (behind && !restored && strstr(n, want) != NULL) {
            rv = mvcc_snapshot_restore(s->store, path, m);
            if (rv != 0) {
                cairn_errmsg_prefixf(m, "restore the store from %s", path);
                break;
            }
            restored = true;
            cairn_infof(s->log, COMP,
                        "restored the store from the received snapshot "
                        "image %s (index %llu)",
                        path, (unsigned long long)s->rec.snap.index);
            continue;
        }
        s->fs.unlink(&s->fs, path);
    }
    cairn_fs_names_free(&names);
    if (rv != 0)
        return rv;
    if (behind && !restored)
        return cairn_errmsg_code(m, CAIRN_ENOSNAP,
                                 "the store (index %llu) is behind the "
                                 "snapshot at %llu and its image is missing "
                                 "from %s",
                                 (unsigned long long)ms.consistent_index,
                                 (unsigned long long)s->rec.snap.index,
                                 s->paths.snap);
    return 0;
}

/* --experimental-initial-corrupt-check: the store as it is on disk (before
 * the log is replayed into it, as etcd checks its backend before starting
 * raft) against the peers the store lists, through the caller's hook. */
static int initial_check(struct server *s, struct cairn_errmsg *m)
{
    struct server_hash_check hc = {.member_id = s->member_id};
    mvcc_rev rev = 0, crev = 0;
    int rv = mvcc_hash_kv(s->store, 0, &hc.hash, &crev, &rev);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "%016llx failed to fetch hash",
                                 (unsigned long long)s->member_id);
    hc.revision = rev;
    hc.compact_revision = crev;
    hc.timeout_ms = 5000 + 2ull * s->cfg.election_timeout_ms;
    struct node_member *list = cairn_calloc(SERVER__MEMBERS_MAX, sizeof *list);
    if (list == NULL)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "initial corruption check");
    size_t n = node_store_members(s->store, list, SERVER__MEMBERS_MAX);
    if (n > SERVER__MEMBERS_MAX)
        n = SERVER__MEMBERS_MAX;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (list[i].id != s->member_id)
            list[k++] = list[i];
    hc.peers = list;
    hc.n_peers = k;
    rv = s->cfg.initial_check(s->cfg.initial_check_arg, &hc, m);
    cairn_free(list);
    return rv;
}

/* The second half of start-up, once the ids are known and the WAL is open:
 * store, lessor, applier, threads, node, transport, tick.
 * On an error the caller stops the server (server__shutdown). */
static int start_member(struct server *s, const struct node_member *initial,
                        size_t n_initial, struct cairn_errmsg *m)
{
    const struct server_config *c = &s->cfg;
    int rv;
    struct mvcc_options mo = {.dir = s->paths.db,
                              .log = s->log,
                              .commit_hist = &s->metrics.backend_commit};
    if (c->quota_backend_bytes > 0)
        mo.quota_bytes = (size_t)c->quota_backend_bytes;
    rv = mvcc_open(&mo, &s->store, m);
    if (rv != 0) {
        cairn_errmsg_prefixf(m, "open store %s", s->paths.db);
        return rv;
    }
    rv = restore_received_image(s, m);
    if (rv != 0)
        return rv;
    bool restart =
        s->rec.has_snap || s->rec.n_entries > 0 || s->rec.hard_state.term > 0;
    if (restart && c->initial_corrupt_check && c->initial_check != NULL) {
        rv = initial_check(s, m);
        if (rv != 0)
            return rv;
    }
    struct lease_options lo = {.min_ttl_s = 0};
    /* etcd's minimum TTL: 1.5 election timeouts, rounded up to seconds. */
    lo.min_ttl_s = ((int64_t)c->election_timeout_ms * 3 / 2 + 999) / 1000;
    rv = lease_open(s->store, &lo, &s->lessor);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "open lessor");
    rv = node_applier_new(s->store, s->lessor, &lo, s->log, &s->applier);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "applier");
    s->lessor = NULL; /* the applier's from now on */
    struct mvcc_status ms;
    rv = mvcc_status_get(s->store, &ms);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "store status");

    rv = init_handles(s);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "loop wake-up");
    /* Threads before the node: node_new may already persist. */
    if (pthread_create(&s->wal_thread, NULL, wal_main, s) != 0)
        return cairn_errmsg_code(m, CAIRN_EIO, "start the WAL thread");
    if (pthread_create(&s->apply_thread, NULL, apply_main, s) != 0) {
        cairn_queue_close(&s->wal_q);
        pthread_join(s->wal_thread, NULL);
        return cairn_errmsg_code(m, CAIRN_EIO, "start the apply thread");
    }
    s->threads_started = true;

    struct node_env env = {.ctx = s,
                           .now_ms = env_now_ms,
                           .send = env_send,
                           .persist = env_persist,
                           .apply = env_apply,
                           .snapshot = env_snapshot,
                           .proposals_queued = env_proposals_queued,
                           .commit_unsent = env_commit_unsent,
                           .log = s->log};
    struct node_config nc = {
        .id = s->member_id,
        .cluster_id = s->cluster_id,
        .tick_ms = c->heartbeat_interval_ms,
        .election_ticks = c->election_timeout_ms / c->heartbeat_interval_ms,
        .snapshot_count = c->snapshot_count,
        .snapshot_catchup_entries = c->snapshot_catchup_entries,
        .max_request_bytes = (size_t)c->max_request_bytes,
        .strict_reconfig_check = c->strict_reconfig_check,
        .pre_vote = c->pre_vote,
        .seed = s->member_id ^ uv_hrtime(),
        .initial_members = initial,
        .n_initial_members = n_initial,
        .recovery = restart ? &s->rec : NULL,
        /* etcd forces only a restart (haveWAL); a new member bootstraps */
        .force_new_cluster = restart && c->force_new_cluster,
        .applied_index = ms.consistent_index,
        .store = s->store,
        .applier = s->applier,
    };
    rv = node_new(&nc, &env, &s->node);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "start the member logic");

    /* The transport, listening on the peer URLs. */
    struct transport_config tc = {.cluster_id = s->cluster_id,
                                  .self_id = s->member_id,
                                  .snap_dir = s->paths.snap,
                                  .seed = s->member_id ^ uv_hrtime(),
                                  .log = s->log,
                                  .tls = s->peer_tls};
    rv = transport_open(s->loop, &tc, &tr_cbs, s, &s->transport);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "open the peer transport");
    for (size_t i = 0; i < s->listen_peer_urls.n; i++) {
        rv = transport_listen(s->transport, s->listen_peer_urls.url[i], m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "listen for peers on %s",
                                 s->listen_peer_urls.url[i]);
            return rv;
        }
        cairn_infof(s->log, COMP, "listening for peers on %s",
                    s->listen_peer_urls.url[i]);
    }
    if (s->n_join_senders > 0)
        add_join_peers(s);
    reconcile_peers(s);

    s->start_ms = (int64_t)uv_now(s->loop);
    s->advance_pending = c->initial_election_tick_advance;
    uv_timer_start(&s->tick, on_tick, s->heartbeat_ms, s->heartbeat_ms);
    server__compactor_start(s);
    /* A one-voter cluster need not wait an election timeout. */
    if (sole_voter(s))
        node_campaign(s->node);
    return 0;
}

void server__join_learned(struct server *s, uint64_t cluster_id,
                          uint64_t member_id, const uint64_t *senders,
                          size_t n_senders)
{
    struct cairn_errmsg m = {{0}};
    s->member_id = member_id;
    s->cluster_id = cluster_id;
    CAIRN_ASSERT(n_senders <= SERVER__JOIN_SENDERS_MAX);
    memcpy(s->join_senders, senders, n_senders * sizeof senders[0]);
    s->n_join_senders = n_senders;
    cairn_infof(s->log, COMP,
                "joining cluster %016llx as member %016llx (as %zu members "
                "addressed us)",
                (unsigned long long)cluster_id, (unsigned long long)member_id,
                n_senders);
    struct wal_options wo = {.fs = &s->fs,
                             .dir = s->paths.wal,
                             .log = s->log,
                             .fsync_hist = &s->metrics.wal_fsync};
    struct wal_metadata meta = {.member_id = member_id,
                                .cluster_id = cluster_id};
    int rv = 0;
    if (s->wal == NULL) {
        rv = wal_create(&wo, &meta, &s->wal, &m);
        if (rv != 0)
            cairn_errmsg_prefixf(&m, "create %s", s->paths.wal);
    } else if (s->rec.meta.member_id != member_id ||
               s->rec.meta.cluster_id != cluster_id) {
        /* Joining again after a stop: the WAL says who we are. */
        rv = cairn_errmsg_code(
            &m, CAIRN_EINVAL,
            "the WAL in %s belongs to member %016llx of "
            "cluster %016llx, but the cluster addresses "
            "this URL as %016llx of %016llx",
            s->paths.wal, (unsigned long long)s->rec.meta.member_id,
            (unsigned long long)s->rec.meta.cluster_id,
            (unsigned long long)member_id, (unsigned long long)cluster_id);
    }
    if (rv == 0)
        rv = start_member(s, NULL, 0, &m);
    if (rv != 0) {
        cairn_log_write(s->log, CAIRN_LOG_FATAL, COMP, "%s", m.text);
        server__shutdown(s, rv);
    }
}

int server_open(uv_loop_t *loop, const struct server_config *c,
                struct cairn_log *log, struct server **out,
                struct cairn_errmsg *m)
{
    int rv;
    struct server *s = cairn_calloc(1, sizeof *s);
    if (s == NULL)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "server");
    s->loop = loop;
    s->log = log;
    s->cfg = *c;
    snprintf(s->name, sizeof s->name, "%s", c->name);
    s->client_urls = c->advertise_client_urls;
    s->peer_urls = c->initial_advertise_peer_urls;
    s->listen_peer_urls = c->listen_peer_urls;
    s->max_txn_ops = c->max_txn_ops;
    s->enable_v2 = c->enable_v2;
    s->max_request_bytes = c->max_request_bytes;
    s->max_concurrent_streams = c->max_concurrent_streams;
    s->max_snapshots = c->max_snapshots;
    s->heartbeat_ms = c->heartbeat_interval_ms;
    s->election_ms = c->election_timeout_ms;
    cairn_fs_posix_init(&s->fs);
    server__metrics_init(s);
    pthread_mutex_init(&s->done_mu, NULL);
    s->lock_fd = -1;
    struct node_member *initial = NULL;
    size_t n_initial = 0;

    s->members = cairn_calloc(SERVER__MEMBERS_MAX, sizeof *s->members);
    s->ic = cairn_malloc(sizeof *s->ic);
    if (s->members == NULL || s->ic == NULL) {
        rv = cairn_errmsg_code(m, CAIRN_ENOMEM, "server");
        goto err_after_alloc;
    }
    rv = cairn_queue_init(&s->wal_q, SERVER__WAL_QUEUE_CAP);
    if (rv != 0)
        goto err_after_alloc;
    rv = cairn_queue_init(&s->apply_q, SERVER__APPLY_QUEUE_CAP);
    if (rv != 0)
        goto err_after_wal_q;

    rv = server_paths_init(&s->paths, c->data_dir, c->wal_dir);
    if (rv != 0) {
        cairn_errmsg_code(m, rv, "data directory %s", c->data_dir);
        goto err_after_queues;
    }
    rv = mkdir_all(s->paths.snap, m);
    if (rv != 0)
        goto err_after_queues;
    rv = lock_data_dir(s, m);
    if (rv != 0)
        goto err_after_queues;
    rv = server__tls_open(s, c, m);
    if (rv != 0)
        goto err_after_queues;
    remove_stale_images(s);

    /* The WAL: recover it, or create it for a new member. */
    struct wal_options wo = {.fs = &s->fs,
                             .dir = s->paths.wal,
                             .log = log,
                             .fsync_hist = &s->metrics.wal_fsync};
    bool joining = false;
    if (wal_exists(&s->fs, s->paths.wal)) {
        rv = wal_recover(&wo, s->paths.snap, &s->wal, &s->rec, m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "recover %s", s->paths.wal);
            goto err_after_queues;
        }
        s->member_id = s->rec.meta.member_id;
        s->cluster_id = s->rec.meta.cluster_id;
        cairn_infof(log, COMP,
                    "restarting member %016llx in cluster %016llx from %s "
                    "(snapshot %llu, %zu entries after it, commit %llu); "
                    "the initial-cluster flags are ignored",
                    (unsigned long long)s->member_id,
                    (unsigned long long)s->cluster_id, c->data_dir,
                    (unsigned long long)s->rec.snap.index, s->rec.n_entries,
                    (unsigned long long)s->rec.hard_state.commit);
        bool empty = !s->rec.has_snap && s->rec.n_entries == 0 &&
                     s->rec.hard_state.term == 0;
        if (empty && c->initial_cluster_existing) {
            /* A joining member that stopped before the leader's snapshot
             * reached it: join again (its peers are only learned so). */
            uint64_t mid = s->member_id, cid = s->cluster_id;
            rv = bootstrap_members(s, c, s->ic, &initial, &n_initial, m);
            if (rv != 0)
                goto err_after_state;
            s->member_id = mid;
            s->cluster_id = cid;
            joining = true;
        } else if (empty) {
            /* A crash between creating the WAL and persisting the
             * bootstrap: bootstrap again, from the same flags. (A joining
             * member's empty WAL just waits for the leader again.) */
            uint64_t mid = s->member_id, cid = s->cluster_id;
            rv = bootstrap_members(s, c, s->ic, &initial, &n_initial, m);
            if (rv == 0 && (mid != s->member_id || cid != s->cluster_id))
                rv = cairn_errmsg_code(m, CAIRN_EINVAL,
                                       "the WAL in %s belongs to member "
                                       "%016llx of cluster %016llx, not to "
                                       "the initial cluster given",
                                       s->paths.wal, (unsigned long long)mid,
                                       (unsigned long long)cid);
            if (rv != 0)
                goto err_after_state;
            cairn_infof(log, COMP, "the WAL is empty: bootstrapping again");
        }
    } else {
        rv = bootstrap_members(s, c, s->ic, &initial, &n_initial, m);
        if (rv != 0)
            goto err_after_queues;
        joining = c->initial_cluster_existing;
        if (!joining) {
            struct wal_metadata meta = {.member_id = s->member_id,
                                        .cluster_id = s->cluster_id};
            rv = wal_create(&wo, &meta, &s->wal, m);
            if (rv != 0) {
                cairn_errmsg_prefixf(m, "create %s", s->paths.wal);
                goto err_after_queues;
            }
            cairn_infof(log, COMP,
                        "starting new member %016llx in cluster %016llx "
                        "(%zu members) in %s",
                        (unsigned long long)s->member_id,
                        (unsigned long long)s->cluster_id, s->ic->n,
                        c->data_dir);
        }
    }

    /* From here on failures stop the server through the loop: the caller
     * runs it until it is empty, then calls server_close. */
    if (joining) {
        rv = init_handles(s);
        if (rv != 0)
            cairn_errmsg_code(m, rv, "loop wake-up");
        else
            rv = server__join_start(s, m);
    } else {
        rv = start_member(s, initial, n_initial, m);
    }
    cairn_free(initial);
    if (rv != 0)
        server__shutdown(s, rv);
    *out = s;
    return rv;

err_after_state:
    free_state(s);
err_after_queues:
    server__tls_close(s);
    unlock_data_dir(s);
    cairn_free(initial);
    cairn_queue_destroy(&s->apply_q);
err_after_wal_q:
    cairn_queue_destroy(&s->wal_q);
err_after_alloc:
    cairn_free(s->members);
    cairn_free(s->ic);
    pthread_mutex_destroy(&s->done_mu);
    cairn_free(s);
    *out = NULL;
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Stopping                                                                  */

bool server__serving(const struct server *s)
{
    return !s->stopping && node_usable(s);
}

static void maybe_finished(struct server *s)
{
    if (!s->state_freed || s->closing_handles > 0 || s->transport != NULL ||
        s->stopped)
        return;
    s->stopped = true;
    cairn_infof(s->log, COMP, "stopped (%s)",
                s->stop_status == 0 ? "gracefully"
                                    : cairn_strerror(s->stop_status));
    if (s->stopped_cb != NULL)
        s->stopped_cb(s->stopped_arg, s->stop_status);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct server *s = h->data;
    s->closing_handles--;
    maybe_finished(s);
}

static void on_transport_closed(void *arg)
{
    struct server *s = arg;
    s->transport = NULL;
    maybe_finished(s);
}

/* The second half of a stop, once no snapshot image is being written from
 * the store: join the threads, free the state, close the handles. */
static void finish_shutdown(struct server *s)
{
    if (s->pending_work > 0 || s->state_freed)
        return;
    s->state_freed = true;
    free_state(s);
    uv_handle_t *hs[] = {
        (uv_handle_t *)&s->tick,          (uv_handle_t *)&s->stop_timer,
        (uv_handle_t *)&s->compact_timer, (uv_handle_t *)&s->prop_idle,
        (uv_handle_t *)&s->commit_timer,  (uv_handle_t *)&s->done_idle};
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        if (hs[i]->loop != NULL && !uv_is_closing(hs[i])) {
            s->closing_handles++;
            uv_close(hs[i], on_handle_closed);
        }
    }
    if (s->handles_ready && !uv_is_closing((uv_handle_t *)&s->wake.poll)) {
        s->closing_handles += server__wake_close(&s->wake, on_handle_closed);
    }
    maybe_finished(s);
}

void server__work_done(struct server *s)
{
    s->pending_work--;
    if (s->shutting_down)
        finish_shutdown(s);
}

void server__shutdown(struct server *s, int status)
{
    if (!s->stopping) {
        s->stopping = true;
        s->stop_status = status;
    }
    if (s->shutting_down)
        return;
    /* Stop hearing from peers and clients, then free the state. */
    s->shutting_down = true;
    server__join_close(s);
    uv_timer_stop(&s->tick);
    uv_timer_stop(&s->stop_timer);
    if (s->handles_ready)
        uv_timer_stop(&s->compact_timer);
    if (s->transport != NULL)
        transport_close(s->transport, s, on_transport_closed);
    finish_shutdown(s);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct server *s = t->data;
    if (!s->transfer_done)
        cairn_warnf(s->log, COMP, "leadership transfer did not finish in time");
    server__shutdown(s, 0);
}

static void on_moved(void *arg, const struct node_result *res)
{
    struct server *s = arg;
    if (res->err != 0)
        cairn_warnf(s->log, COMP, "leadership transfer: %s",
                    cairn_strerror(res->err));
    else
        cairn_infof(s->log, COMP, "leadership transferred");
    /* Not from inside the node's callback: the stop frees the node. */
    s->transfer_done = true;
    if (!s->shutting_down)
        uv_timer_start(&s->stop_timer, on_stop_timer, 0, 0);
}

/* The most up-to-date voter other than this member (etcd's
 * longestConnected-then-highest-match choice, simplified to the highest
 * match). 0 when there is none. */
static uint64_t best_transferee(struct server *s)
{
    struct raft_status *st = cairn_malloc(sizeof *st);
    if (st == NULL)
        return 0;
    raft_status_get(node_raft(s->node), st);
    uint64_t best = 0;
    raft_index best_match = 0;
    for (uint32_t i = 0; i < st->n_progress; i++) {
        const struct raft_progress_status *p = &st->progress[i];
        if (p->id == s->member_id || p->learner)
            continue;
        if (best == 0 || p->match > best_match) {
            best = p->id;
            best_match = p->match;
        }
    }
    cairn_free(st);
    return best;
}

void server_stop(struct server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    s->stop_status = 0;
    uint64_t target = 0;
    if (node_usable(s) && node_is_leader(s->node))
        target = best_transferee(s);
    if (target != 0) {
        cairn_infof(s->log, COMP,
                    "stopping: transferring leadership to %016llx",
                    (unsigned long long)target);
        /* Bounded by two election timeouts' worth of ticks. */
        int rv = node_move_leader(s->node, target, s, on_moved);
        if (rv == 0) {
            uv_timer_start(&s->stop_timer, on_stop_timer, 2ull * s->election_ms,
                           0);
            return;
        }
        cairn_warnf(s->log, COMP, "leadership transfer refused: %s",
                    cairn_strerror(rv));
    }
    server__shutdown(s, 0);
}

void server_on_stopped(struct server *s, void *arg, server_stopped_cb cb)
{
    s->stopped_arg = arg;
    s->stopped_cb = cb;
}

void server_close(struct server *s)
{
    if (s == NULL)
        return;
    CAIRN_ASSERT(s->node == NULL && s->transport == NULL &&
                 s->closing_handles == 0);
    server__join_free(s);
    server__v2_free(s);
    server__tls_close(s);
    unlock_data_dir(s);
    cairn_queue_destroy(&s->apply_q);
    cairn_queue_destroy(&s->wal_q);
    pthread_mutex_destroy(&s->done_mu);
    cairn_free(s->members);
    cairn_free(s->ic);
    cairn_free(s);
}

/* ------------------------------------------------------------------------ */
/* Facts                                                                     */

bool server_member_client_url(struct server *s, uint64_t id, char *out,
                              size_t size)
{
    if (!node_usable(s))
        return false;
    size_t n = node_members(s->node, s->members, SERVER__MEMBERS_MAX);
    if (n > SERVER__MEMBERS_MAX)
        n = SERVER__MEMBERS_MAX;
    for (size_t i = 0; i < n; i++)
        if (s->members[i].id == id && s->members[i].n_client_urls > 0)
            return copy_str(out, size, s->members[i].client_urls[0]);
    return false;
}

uint64_t server_member_id(const struct server *s)
{
    return s->member_id;
}
uint64_t server_cluster_id(const struct server *s)
{
    return s->cluster_id;
}
const char *server_name(const struct server *s)
{
    return s->name;
}
const struct server_urls *server_client_urls(const struct server *s)
{
    return &s->client_urls;
}
const struct server_urls *server_peer_urls(const struct server *s)
{
    return &s->peer_urls;
}
unsigned server_max_txn_ops(const struct server *s)
{
    return s->max_txn_ops;
}
bool server_enable_v2(const struct server *s)
{
    return s->enable_v2;
}
uint64_t server_max_request_bytes(const struct server *s)
{
    return s->max_request_bytes;
}
uint32_t server_max_concurrent_streams(const struct server *s)
{
    return s->max_concurrent_streams;
}
uint64_t server_leader(const struct server *s)
{
    return node_usable(s) ? node_leader(s->node) : 0;
}
bool server_is_leader(const struct server *s)
{
    return node_usable(s) && node_is_leader(s->node);
}
uv_loop_t *server_loop(const struct server *s)
{
    return s->loop;
}
struct mvcc_store *server_store(const struct server *s)
{
    return s->stopping ? NULL : s->store;
}
void server_on_applied(struct server *s, void *arg, server_applied_cb cb)
{
    s->applied_arg = arg;
    s->applied_cb = cb;
}
bool server_ready(const struct server *s)
{
    return s->ready && !s->stopping;
}
