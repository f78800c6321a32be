/* The Raft core's state machine: roles, elections (with PreVote and
 * CheckQuorum), replication and commit, ReadIndex, snapshots, leadership
 * transfer and membership, driven one event at a time by raft_step. The
 * behaviour follows the Raft thesis and etcd's raft package. */
#include "raft/raft_int.h"

#include <stdio.h>
#include <string.h>

#define COMP "raft"

/* ------------------------------------------------------------------------ */
/* Output vectors                                                            */

static void *vec_push(struct raft *r, struct vec *v, size_t elem)
{
    if (v->len == v->cap) {
        size_t cap = v->cap > 0 ? v->cap * 2 : 16;
        void *d = cairn_realloc(v->data, cap * elem);
        if (d == NULL) {
            r->nomem = CAIRN_ENOMEM;
            return NULL;
        }
        v->data = d;
        v->cap = cap;
    }
    void *p = (uint8_t *)v->data + v->len * elem;
    v->len++;
    memset(p, 0, elem);
    return p;
}

static bool faults_vote_before_persist(const struct raft *r)
{
#ifdef CAIRN_FAULTS
    return r->cfg.faults.vote_before_persist;
#else
    (void)r;
    return false;
#endif
}

static bool faults_skip_up_to_date(const struct raft *r)
{
#ifdef CAIRN_FAULTS
    return r->cfg.faults.skip_up_to_date_check;
#else
    (void)r;
    return false;
#endif
}

/* Queues m for sending, filling from and (for most types) term; decides
 * what must be durable before it goes out. */
static void send(struct raft *r, struct raft_message m)
{
    m.from = r->id;
    switch (m.type) {
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PRE_VOTE:
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP:
        CAIRN_ASSERT(m.term != 0); /* set by the caller */
        break;
    case RAFT_MSG_PROP:
    case RAFT_MSG_READ_INDEX:
    case RAFT_MSG_TRANSFER_LEADER:
        /* Forwarded requests carry no term: they are not Raft RPCs. */
        m.term = 0;
        break;
    default:
        m.term = r->term;
        break;
    }
    switch (m.type) {
    case RAFT_MSG_VOTE:
        /* Our self-vote and the new term must survive a crash, or we might
         * vote again in this term after a restart. */
        m.after_persist = true;
        break;
    case RAFT_MSG_VOTE_RESP:
        m.after_persist = !faults_vote_before_persist(r);
        break;
    case RAFT_MSG_APP_RESP:
        /* An acknowledgement counts towards commit: only what is durable
         * (etcd #14370). */
        m.after_persist = true;
        break;
    default:
        m.after_persist = false;
        break;
    }
    /* A leader whose term (its hard state) is not durable yet might, after
     * a crash, lead the same term again with another log: a single voter
     * wins without asking anyone. Its messages wait for the disk until the
     * entry opening its term is durable, which makes the term durable. */
    if (r->role == RAFT_LEADER &&
        raft__log_durable_index(&r->log) < r->term_start_index)
        m.after_persist = true;
    struct raft_message *slot = vec_push(r, &r->msgs, sizeof(m));
    if (slot != NULL)
        *slot = m;
}

/* ------------------------------------------------------------------------ */
/* Progress set                                                              */

static struct progress *progress_get(struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

static int progress_slot(const struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return (int)i;
    return -1;
}

/* Makes the progress set match r->conf: new members start probing from
 * the end of our log, removed ones are dropped, others keep their state. */
static void progress_add(struct raft *r, const struct raft_conf_state *cs,
                         raft_index last, bool must_fit)
{
    const raft_id *lists[4] = {cs->voters, cs->voters_outgoing, cs->learners,
                               cs->learners_next};
    uint32_t counts[4] = {cs->n_voters, cs->n_voters_outgoing, cs->n_learners,
                          cs->n_learners_next};
    for (int l = 0; l < 4; l++) {
        for (uint32_t i = 0; i < counts[l]; i++) {
            raft_id id = lists[l][i];
            if (progress_get(r, id) != NULL)
                continue;
            if (r->n_prs == RAFT_STATUS_PEERS_MAX) {
                CAIRN_ASSERT(!must_fit);
                return;
            }
            struct progress *pr = &r->prs[r->n_prs++];
            memset(pr, 0, sizeof(*pr));
            pr->id = id;
            pr->next = last + 1;
            pr->match = 0;
            pr->state = RAFT_PROGRESS_PROBE;
            /* A new member is given the benefit of the doubt by
             * CheckQuorum until the next check. */
            pr->recent_active = true;
            raft__inflights_init(&pr->ins, r->cfg.max_inflight_msgs,
                                 r->cfg.max_inflight_bytes);
        }
    }
}

/* Makes the progress set match the configuration in force, plus the members
 * of the last committed one: a member being removed keeps receiving the log
 * until its removal commits, so that it learns of it (and does not campaign
 * and disrupt, thesis §4.2.3). New members start probing from the end of our
 * log; others keep their state. Only the configuration in force counts for
 * quorums. */
static void progress_sync(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs;) {
        raft_id id = r->prs[i].id;
        if (!raft__conf_contains(&r->conf, id) &&
            !raft__conf_contains(&r->base_conf, id)) {
            raft__inflights_close(&r->prs[i].ins);
            r->prs[i] = r->prs[r->n_prs - 1];
            r->n_prs--;
            continue;
        }
        i++;
    }
    raft_index last = raft__log_last_index(&r->log);
    progress_add(r, &r->conf, last, true);
    progress_add(r, &r->base_conf, last, false);
    for (uint32_t i = 0; i < r->n_prs; i++)
        r->prs[i].learner = !raft__conf_is_voter(&r->conf, r->prs[i].id);
}

/* Who may campaign: a voter of the configuration in force, and also a voter
 * of the last committed configuration while a later, uncommitted one (in
 * which it is no voter) is in its log. Such a candidate is elected by a
 * majority of its latest configuration, like any other (thesis §4.2.2
 * allows a leader outside its configuration); without this, a demoted member
 * holding the only copy of the change could leave the others, still joint,
 * needing its vote while it refuses theirs (their logs are shorter). */
static bool promotable(const struct raft *r)
{
    return raft__conf_is_voter(&r->conf, r->id) ||
           (r->n_hist > 0 && raft__conf_is_voter(&r->base_conf, r->id));
}

/* ---- configurations in force (thesis §4.1: from the log, on append) ---- */

static void conf_set(struct raft *r, const struct raft_conf_state *cs)
{
    r->conf = *cs;
    progress_sync(r);
}

/* Applies the configuration entries among ents (just appended to the log)
 * to the configuration in force. An entry that cannot apply is a no-op on
 * every member alike, since all decide from the same log. */
static void conf_appended(struct raft *r, const struct raft_entry *ents,
                          size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ents[i].type == RAFT_ENTRY_NORMAL)
            continue;
        struct raft_conf_change cc;
        struct raft_conf_state next = r->conf;
        if (raft_conf_change_decode(ents[i].data, ents[i].len, &cc) != 0 ||
            raft__conf_apply(&next, &cc) != 0)
            continue;
        if (r->n_hist == r->cap_hist) {
            size_t cap = r->cap_hist > 0 ? r->cap_hist * 2 : 4;
            struct conf_hist *h = cairn_realloc(r->hist, cap * sizeof(*h));
            if (h == NULL) {
                r->nomem = CAIRN_ENOMEM;
                return;
            }
            r->hist = h;
            r->cap_hist = cap;
        }
        r->hist[r->n_hist].index = ents[i].index;
        r->hist[r->n_hist].cs = next;
        r->n_hist++;
        conf_set(r, &next);
    }
}

/* The log was truncated from index `from`: configurations appended there
 * are no longer in force (PITFALLS: a truncated log rolls them back). */
static void conf_truncate(struct raft *r, raft_index from)
{
    size_t n = r->n_hist;
    while (r->n_hist > 0 && r->hist[r->n_hist - 1].index >= from)
        r->n_hist--;
    if (r->n_hist != n)
        conf_set(r, r->n_hist > 0 ? &r->hist[r->n_hist - 1].cs : &r->base_conf);
}

/* Committed configuration entries can never be truncated: fold them into
 * the base, so the history holds only uncommitted ones. */
static void conf_fold(struct raft *r)
{
    size_t k = 0;
    while (k < r->n_hist && r->hist[k].index <= r->log.committed)
        k++;
    if (k == 0)
        return;
    r->base_conf = r->hist[k - 1].cs;
    memmove(r->hist, r->hist + k, (r->n_hist - k) * sizeof(*r->hist));
    r->n_hist -= k;
    progress_sync(r); /* members whose removal committed go */
}

/* The joint commit index: the smaller of the two majorities' (§4.3),
 * counting our own acknowledgement as self_match when that is not 0. */
static raft_index quorum_index_with(const struct raft *r, raft_index self_match)
{
    raft_index acked[RAFT_CONF_MAX];
    raft_index result = UINT64_MAX;
    const raft_id *halves[2] = {r->conf.voters, r->conf.voters_outgoing};
    uint32_t counts[2] = {r->conf.n_voters, r->conf.n_voters_outgoing};
    for (int h = 0; h < 2; h++) {
        for (uint32_t i = 0; i < counts[h]; i++) {
            int k = progress_slot(r, halves[h][i]);
            acked[i] = k >= 0 ? r->prs[k].match : 0;
            if (halves[h][i] == r->id && self_match != 0)
                acked[i] = self_match;
        }
        raft_index c = raft__quorum_committed(acked, counts[h]);
        if (c < result)
            result = c;
    }
    return result == UINT64_MAX ? 0 : result;
}

static raft_index quorum_committed_index(struct raft *r)
{
    return quorum_index_with(r, 0);
}

typedef int8_t (*voter_fn)(const struct raft *r, const struct progress *pr);

static enum vote_result quorum_result(const struct raft *r, voter_fn fn)
{
    int8_t votes[2][RAFT_CONF_MAX];
    const raft_id *halves[2] = {r->conf.voters, r->conf.voters_outgoing};
    uint32_t counts[2] = {r->conf.n_voters, r->conf.n_voters_outgoing};
    for (int h = 0; h < 2; h++) {
        for (uint32_t i = 0; i < counts[h]; i++) {
            const struct progress *pr = NULL;
            for (uint32_t k = 0; k < r->n_prs; k++)
                if (r->prs[k].id == halves[h][i])
                    pr = &r->prs[k];
            votes[h][i] = pr != NULL ? fn(r, pr) : 0;
        }
    }
    return raft__quorum_vote_joint(votes[0], counts[0], votes[1], counts[1]);
}

static int8_t vote_of(const struct raft *r, const struct progress *pr)
{
    return r->votes[pr - r->prs];
}

static int8_t active_of(const struct raft *r, const struct progress *pr)
{
    return (pr->id == r->id || pr->recent_active) ? 1 : -1;
}

/* ------------------------------------------------------------------------ */
/* Roles                                                                     */

static void reset_randomized_election_timeout(struct raft *r)
{
    unsigned t = r->cfg.election_ticks;
    r->randomized_election_timeout =
        t + (unsigned)prng_below(&r->prng, (uint64_t)t);
}

static void clear_reads(struct raft *r)
{
    r->n_reads = 0;
}

static void reset(struct raft *r, raft_term term)
{
    if (r->term != term) {
        r->term = term;
        r->vote = RAFT_NONE;
    }
    r->lead = RAFT_NONE;
    r->election_elapsed = 0;
    r->heartbeat_elapsed = 0;
    reset_randomized_election_timeout(r);
    r->lead_transferee = RAFT_NONE;
    memset(r->votes, 0, sizeof(r->votes));
    raft_index last = raft__log_last_index(&r->log);
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        raft__inflights_reset(&pr->ins);
        pr->match = 0;
        pr->next = last + 1;
        pr->state = RAFT_PROGRESS_PROBE;
        pr->probe_sent = false;
        pr->pending_snapshot = 0;
        pr->recent_active = false;
        pr->read_ack_round = 0;
        pr->sent_commit = 0;
        pr->want_commit = 0;
        if (pr->id == r->id)
            pr->match = raft__log_durable_index(&r->log);
    }
    r->pending_conf_index = 0;
    r->uncommitted_size = 0;
    clear_reads(r);
}

static void become_follower(struct raft *r, raft_term term, raft_id lead)
{
    reset(r, term);
    r->lead = lead;
    r->role = RAFT_FOLLOWER;
}

static void become_pre_candidate(struct raft *r)
{
    CAIRN_ASSERT(r->role != RAFT_LEADER);
    /* PreVote changes neither term nor vote (thesis §9.6). */
    memset(r->votes, 0, sizeof(r->votes));
    r->lead = RAFT_NONE;
    r->role = RAFT_PRE_CANDIDATE;
}

static void become_candidate(struct raft *r)
{
    CAIRN_ASSERT(r->role != RAFT_LEADER);
    reset(r, r->term + 1);
    r->vote = r->id;
    r->role = RAFT_CANDIDATE;
}

static int append_entries(struct raft *r, struct raft_entry *ents, size_t n);
static void bcast_append(struct raft *r);

static void become_leader(struct raft *r)
{
    CAIRN_ASSERT(r->role != RAFT_FOLLOWER);
    reset(r, r->term);
    r->lead = r->id;
    r->role = RAFT_LEADER;
    struct progress *self = progress_get(r, r->id);
    CAIRN_ASSERT(self != NULL);
    raft__progress_become_replicate(self);
    self->match = raft__log_durable_index(&r->log);
    /* Conservatively treat anything not yet applied as a pending change. */
    r->pending_conf_index = raft__log_last_index(&r->log);
    /* The empty entry lets the leader commit its term at once (§6.4;
     * PITFALLS: never commit earlier terms by counting). */
    struct raft_entry empty = {.type = RAFT_ENTRY_NORMAL};
    r->term_start_index = raft__log_last_index(&r->log) + 1;
    int rv = append_entries(r, &empty, 1);
    if (rv != 0)
        r->nomem = rv;
    cairn_infof(r->cfg.log, COMP, "%llu became leader at term %llu",
                (unsigned long long)r->id, (unsigned long long)r->term);
}

/* ------------------------------------------------------------------------ */
/* Sending appends and heartbeats                                            */

/* Sends a snapshot or entries to `to` if its progress allows. */
static bool maybe_send_append(struct raft *r, raft_id to, bool send_if_empty)
{
    struct progress *pr = progress_get(r, to);
    if (pr == NULL || raft__progress_is_paused(pr))
        return false;
    struct raft_message m = {.type = RAFT_MSG_APP, .to = to};
    raft_term prev_term;
    int trv = raft__log_term(&r->log, pr->next - 1, &prev_term);
    struct raft_entry *ents = NULL;
    size_t n = 0;
    int erv = CAIRN_ECOMPACTED;
    if (trv == 0) {
        raft_index last = raft__log_last_index(&r->log);
        erv = raft__log_slice(&r->log, pr->next, last + 1,
                              r->cfg.max_size_per_msg, &r->arena, &ents, &n);
        if (erv == CAIRN_ENOMEM) {
            r->nomem = erv;
            return false;
        }
    }
    if (trv != 0 || erv != 0) {
        /* What the follower needs is compacted: send the snapshot. */
        if (!pr->recent_active)
            return false;
        const struct raft_snapshot *snap;
        if (raft__log_snapshot(&r->log, &snap) != 0)
            return false; /* the host is preparing one */
        CAIRN_ASSERT(snap->meta.index != 0);
        struct raft_snapshot *copy =
            raft__arena_alloc(&r->arena, sizeof(*copy));
        uint8_t *data = raft__arena_alloc(&r->arena, snap->len);
        if (copy == NULL || data == NULL) {
            r->nomem = CAIRN_ENOMEM;
            return false;
        }
        *copy = *snap;
        if (snap->len > 0)
            memcpy(data, snap->data, snap->len);
        copy->data = snap->len > 0 ? data : NULL;
        raft__progress_become_snapshot(pr, snap->meta.index);
        m.type = RAFT_MSG_SNAP;
        m.snapshot = copy;
        send(r, m);
        return true;
    }
    if (n == 0 && !send_if_empty)
        return false;
    m.index = pr->next - 1;
    m.log_term = prev_term;
    m.entries = ents;
    m.n_entries = n;
    m.commit = r->log.committed;
    if (m.commit > pr->sent_commit)
        pr->sent_commit = m.commit;
    if (n > 0) {
        raft_index last = ents[n - 1].index;
        uint64_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += ents[i].len;
        switch (pr->state) {
        case RAFT_PROGRESS_REPLICATE:
            /* Pipelining: assume it arrives (§10.2.1). */
            pr->next = last + 1;
            if (raft__inflights_add(&pr->ins, last, bytes) != 0)
                r->nomem = CAIRN_ENOMEM;
            break;
        case RAFT_PROGRESS_PROBE:
            pr->probe_sent = true;
            break;
        default:
            CAIRN_UNREACHABLE();
        }
    } else if (pr->state == RAFT_PROGRESS_PROBE) {
        pr->probe_sent = true;
    }
    send(r, m);
    return true;
}

static void bcast_append(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id != r->id)
            maybe_send_append(r, r->prs[i].id, true);
}

/* The commit index moved. Without lazy_commit every follower gets an
 * append at once, an empty one if it has every entry; with it only those
 * with entries to send (lazy_commit_duties tells the waiting ones). */
static void bcast_commit(struct raft *r)
{
    if (!r->cfg.lazy_commit) {
        bcast_append(r);
        return;
    }
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id != r->id)
            maybe_send_append(r, r->prs[i].id, false);
}

/* lazy_commit, at the end of every step: followers waiting for a commit
 * index they were not told get an append now. Returns whether a follower
 * that could be sent an append has not been told the commit index. */
static bool lazy_commit_duties(struct raft *r)
{
    if (!r->cfg.lazy_commit || r->role != RAFT_LEADER)
        return false;
    raft_index c = r->log.committed;
    bool unsent = false;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id || pr->sent_commit >= c)
            continue;
        raft_index want = pr->want_commit < c ? pr->want_commit : c;
        if (want > pr->sent_commit)
            maybe_send_append(r, pr->id, true);
        if (pr->sent_commit < c && !raft__progress_is_paused(pr))
            unsent = true;
    }
    return unsent;
}

/* RAFT_EVENT_SEND_COMMIT: every follower not told the commit index gets
 * an append; one that cannot (paused, or needing a snapshot) counts as
 * told, so that the host is not asked again for it: it learns the commit
 * from the next append or heartbeat. */
static void send_commit(struct raft *r)
{
    if (!r->cfg.lazy_commit || r->role != RAFT_LEADER)
        return;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        struct progress *pr = &r->prs[i];
        if (pr->id == r->id || pr->sent_commit >= r->log.committed)
            continue;
        maybe_send_append(r, pr->id, true);
        pr->sent_commit = r->log.committed;
    }
}

static void send_heartbeat(struct raft *r, raft_id to, uint64_t ctx)
{
    struct progress *pr = progress_get(r, to);
    /* Never tell a follower to commit past what it is known to have. */
    raft_index commit =
        pr->match < r->log.committed ? pr->match : r->log.committed;
    if (commit > pr->sent_commit)
        pr->sent_commit = commit;
    struct raft_message m = {
        .type = RAFT_MSG_HEARTBEAT, .to = to, .commit = commit, .ctx = ctx};
    send(r, m);
}

static void bcast_heartbeat(struct raft *r, uint64_t ctx)
{
    for (uint32_t i = 0; i < r->n_prs; i++)
        if (r->prs[i].id != r->id)
            send_heartbeat(r, r->prs[i].id, ctx);
}

/* ------------------------------------------------------------------------ */
/* ReadIndex (thesis §6.4)                                                   */

static bool committed_in_term(const struct raft *r)
{
    return raft__log_term_or_zero(&r->log, r->log.committed) == r->term;
}

static void answer_read(struct raft *r, raft_id from, uint64_t ctx,
                        raft_index index)
{
    if (from == r->id) {
        struct raft_read_state *rs = vec_push(r, &r->read_states, sizeof(*rs));
        if (rs != NULL) {
            rs->ctx = ctx;
            rs->index = index;
        }
        return;
    }
    struct raft_message m = {.type = RAFT_MSG_READ_INDEX_RESP,
                             .to = from,
                             .ctx = ctx,
                             .index = index};
    send(r, m);
    /* The follower serves its read once it has applied index. */
    struct progress *pr = progress_get(r, from);
    if (pr != NULL && index > pr->want_commit)
        pr->want_commit = index;
}

static bool single_voter(const struct raft *r)
{
    return r->conf.n_voters == 1 && r->conf.n_voters_outgoing == 0 &&
           r->conf.voters[0] == r->id;
}

/* Starts a confirmation round for the read; answers at once where no
 * round is needed. */
static void start_read(struct raft *r, struct read_request *rq)
{
    rq->index = r->log.committed;
    if (single_voter(r) || r->cfg.read_only == RAFT_READ_ONLY_LEASE_BASED) {
        answer_read(r, rq->from, rq->ctx, rq->index);
        rq->round = UINT64_MAX; /* done; dropped by release */
        return;
    }
    rq->round = ++r->read_round;
    bcast_heartbeat(r, rq->round);
}

static int8_t read_acked(const struct raft *r, const struct progress *pr)
{
    if (pr->id == r->id)
        return 1;
    return pr->read_ack_round >= r->read_round ? 1 : 0;
}

/* Answers, in order, every request whose round a quorum has confirmed;
 * starts the rounds of requests that waited for a commit in our term. */
static void release_reads(struct raft *r)
{
    size_t done = 0;
    size_t i = 0;
    uint64_t saved = r->read_round;
    for (; i < r->n_reads; i++) {
        struct read_request *rq = &r->reads[i];
        if (rq->round == UINT64_MAX) {
            done = i + 1;
            continue;
        }
        if (rq->round == 0)
            break;
        /* Is round rq->round confirmed by a quorum? */
        r->read_round = rq->round;
        bool ok = quorum_result(r, read_acked) == VOTE_WON;
        r->read_round = saved;
        if (!ok)
            break;
        answer_read(r, rq->from, rq->ctx, rq->index);
        done = i + 1;
    }
    if (done > 0) {
        memmove(r->reads, r->reads + done,
                (r->n_reads - done) * sizeof(*r->reads));
        r->n_reads -= done;
    }
    if (!committed_in_term(r))
        return;
    for (i = 0; i < r->n_reads; i++)
        if (r->reads[i].round == 0)
            start_read(r, &r->reads[i]);
    /* Lease-based or single-voter reads were answered in start_read. */
    done = 0;
    while (done < r->n_reads && r->reads[done].round == UINT64_MAX)
        done++;
    if (done > 0) {
        memmove(r->reads, r->reads + done,
                (r->n_reads - done) * sizeof(*r->reads));
        r->n_reads -= done;
    }
}

/* Bound on queued reads: beyond it the oldest callers must retry. */
#define READS_MAX 65536

static int leader_read(struct raft *r, raft_id from, uint64_t ctx)
{
    if (r->n_reads >= READS_MAX)
        return CAIRN_EBUSY;
    if (r->n_reads == r->cap_reads) {
        size_t cap = r->cap_reads > 0 ? r->cap_reads * 2 : 16;
        struct read_request *n = cairn_realloc(r->reads, cap * sizeof(*n));
        if (n == NULL)
            return CAIRN_ENOMEM;
        r->reads = n;
        r->cap_reads = cap;
    }
    struct read_request *rq = &r->reads[r->n_reads++];
    memset(rq, 0, sizeof(*rq));
    rq->ctx = ctx;
    rq->from = from;
    /* TiKV #6340: not before an entry of our term is committed. */
    if (committed_in_term(r))
        start_read(r, rq);
    release_reads(r);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Appending and committing                                                  */

static int append_entries(struct raft *r, struct raft_entry *ents, size_t n)
{
    raft_index li = raft__log_last_index(&r->log);
    for (size_t i = 0; i < n; i++) {
        ents[i].term = r->term;
        ents[i].index = li + 1 + i;
    }
    return raft__log_append(&r->log, ents, n);
}

static bool maybe_commit(struct raft *r)
{
    raft_index mci = quorum_committed_index(r);
    if (!raft__log_maybe_commit(&r->log, mci, r->term))
        return false;
    release_reads(r);
    return true;
}

static void send_timeout_now(struct raft *r, raft_id to)
{
    struct raft_message m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
    send(r, m);
}

/* ------------------------------------------------------------------------ */
/* Elections                                                                 */

enum campaign_kind { CAMPAIGN_PRE, CAMPAIGN_ELECTION, CAMPAIGN_TRANSFER };

static void record_vote(struct raft *r, raft_id id, bool granted)
{
    int s = progress_slot(r, id);
    if (s >= 0 && r->votes[s] == 0)
        r->votes[s] = granted ? 1 : -1;
}

static void campaign(struct raft *r, enum campaign_kind kind);

static void hup(struct raft *r, enum campaign_kind kind)
{
    if (r->role == RAFT_LEADER || !promotable(r))
        return;
    campaign(r, kind);
}

static void campaign(struct raft *r, enum campaign_kind kind)
{
    raft_term term;
    uint8_t type;
    if (kind == CAMPAIGN_PRE) {
        become_pre_candidate(r);
        type = RAFT_MSG_PRE_VOTE;
        term = r->term + 1; /* the term we would campaign in */
    } else {
        become_candidate(r);
        type = RAFT_MSG_VOTE;
        term = r->term;
    }
    record_vote(r, r->id, true);
    enum vote_result res = quorum_result(r, vote_of);
    if (res == VOTE_WON) {
        /* A single voter wins at once. */
        if (kind == CAMPAIGN_PRE) {
            campaign(r, CAMPAIGN_ELECTION);
        } else {
            become_leader(r);
            bcast_append(r);
        }
        return;
    }
    raft_index last = raft__log_last_index(&r->log);
    raft_term last_term = raft__log_last_term(&r->log);
    const raft_id *halves[2] = {r->conf.voters, r->conf.voters_outgoing};
    uint32_t counts[2] = {r->conf.n_voters, r->conf.n_voters_outgoing};
    for (int h = 0; h < 2; h++) {
        for (uint32_t i = 0; i < counts[h]; i++) {
            raft_id id = halves[h][i];
            if (id == r->id)
                continue;
            bool dup = false;
            for (uint32_t k = 0; h == 1 && k < r->conf.n_voters; k++)
                dup = dup || r->conf.voters[k] == id;
            if (dup)
                continue;
            struct raft_message m = {.type = type,
                                     .to = id,
                                     .term = term,
                                     .index = last,
                                     .log_term = last_term,
                                     .transfer = kind == CAMPAIGN_TRANSFER};
            send(r, m);
        }
    }
}

static void poll_and_decide(struct raft *r, const struct raft_message *m)
{
    record_vote(r, m->from, !m->reject);
    switch (quorum_result(r, vote_of)) {
    case VOTE_WON:
        if (r->role == RAFT_PRE_CANDIDATE) {
            campaign(r, CAMPAIGN_ELECTION);
        } else {
            become_leader(r);
            bcast_append(r);
        }
        break;
    case VOTE_LOST:
        /* Back to follower in the current term; a PreVote loser never
         * raised its term. */
        become_follower(r, r->term, RAFT_NONE);
        break;
    case VOTE_PENDING:
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Follower handlers                                                         */

static void handle_append(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
    if (m->index < r->log.committed) {
        resp.index = r->log.committed;
        send(r, resp);
        return;
    }
    raft_index last_new = 0;
    raft_index written_from = 0;
    int rv = raft__log_maybe_append(&r->log, m->index, m->log_term, m->commit,
                                    m->entries, m->n_entries, &last_new,
                                    &written_from);
    if (rv < 0) {
        r->nomem = rv;
        return;
    }
    if (rv == 1) {
        if (written_from != 0) {
            /* Configurations come and go with the log. */
            conf_truncate(r, written_from);
            size_t off = (size_t)(written_from - (m->index + 1));
            conf_appended(r, m->entries + off, m->n_entries - off);
        }
        resp.index = last_new;
        send(r, resp);
        return;
    }
    /* Reject with a hint (fast backtracking): the last index of ours, at
     * or below the probed one, whose term is <= the probed term. The
     * leader then skips a whole term per round trip. */
    raft_index hint = m->index;
    raft_index last = raft__log_last_index(&r->log);
    if (hint > last)
        hint = last;
    raft_term hint_term = 0;
    hint =
        raft__log_find_conflict_by_term(&r->log, hint, m->log_term, &hint_term);
    resp.index = m->index;
    resp.reject = true;
    resp.reject_hint = hint;
    resp.log_term = hint_term;
    send(r, resp);
}

static void handle_heartbeat(struct raft *r, const struct raft_message *m)
{
    raft_index c = m->commit;
    raft_index last = raft__log_last_index(&r->log);
    if (c > last)
        c = last; /* only under fault switches can this be needed */
    raft__log_commit_to(&r->log, c);
    struct raft_message resp = {
        .type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from, .ctx = m->ctx};
    send(r, resp);
}

static bool restore(struct raft *r, const struct raft_snapshot *s)
{
    if (s->meta.index <= r->log.committed)
        return false;
    /* A snapshot whose configuration lacks us is still taken: a member
     * being added learns of its own addition from the entries after it. */
    if (raft__log_match_term(&r->log, s->meta.index, s->meta.term)) {
        /* We have the entries already: just learn the commit. */
        raft__log_commit_to(&r->log, s->meta.index);
        return false;
    }
    int rv = raft__log_restore(&r->log, s);
    if (rv != 0) {
        r->nomem = rv;
        return false;
    }
    r->n_hist = 0;
    r->base_conf = s->meta.conf;
    r->applied_conf = s->meta.conf;
    r->conf_changed = true;
    conf_set(r, &s->meta.conf);
    r->pending_conf_index = 0;
    return true;
}

static void handle_snapshot(struct raft *r, const struct raft_message *m)
{
    struct raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
    if (m->snapshot != NULL && restore(r, m->snapshot))
        resp.index = raft__log_last_index(&r->log);
    else
        resp.index = r->log.committed;
    send(r, resp);
}

/* ------------------------------------------------------------------------ */
/* Proposals                                                                 */

static int check_conf_proposal(struct raft *r, const struct raft_entry *e)
{
    struct raft_conf_change cc;
    if (raft_conf_change_decode(e->data, e->len, &cc) != 0)
        return CAIRN_EINVAL;
    /* One change at a time: the previous one must be committed (thesis
     * §4.1), and the leader must have committed an entry of its term. */
    if (r->pending_conf_index > r->log.committed || !committed_in_term(r))
        return CAIRN_ECONFCHANGEPENDING;
    struct raft_conf_state trial = r->conf;
    bool leave = cc.transition == RAFT_CC_TRANSITION_AUTO && cc.n_changes == 0;
    if (raft__conf_is_joint(&r->conf) && !leave)
        return CAIRN_EINVAL; /* must leave the joint configuration first */
    return raft__conf_apply(&trial, &cc);
}

static uint64_t payload_size(const struct raft_entry *ents, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += ents[i].len;
    return s;
}

/* The leader appends proposals (local or forwarded). ents are scratch
 * copies whose index and term get filled. */
static int leader_propose(struct raft *r, struct raft_entry *ents, size_t n,
                          bool forwarded)
{
    if (!raft__conf_is_voter(&r->conf, r->id))
        return CAIRN_EPROPOSALDROPPED; /* removed or demoted: handing over */
    if (r->lead_transferee != RAFT_NONE)
        return CAIRN_ETRANSFERRING;
    /* The size cap first: a refused batch must not leave a pending
     * configuration change behind. */
    uint64_t size = payload_size(ents, n);
    uint64_t max = r->cfg.max_uncommitted_entries_size;
    if (max > 0 && r->uncommitted_size > 0 && r->uncommitted_size + size > max)
        return CAIRN_EPROPOSALDROPPED;
    for (size_t i = 0; i < n; i++) {
        if (ents[i].type == RAFT_ENTRY_NORMAL)
            continue;
        int rv = check_conf_proposal(r, &ents[i]);
        if (rv != 0) {
            if (!forwarded)
                return rv;
            /* Forwarded: keep the batch, neutralise the change (etcd). */
            ents[i].type = RAFT_ENTRY_NORMAL;
            ents[i].data = NULL;
            ents[i].len = 0;
        } else {
            r->pending_conf_index = raft__log_last_index(&r->log) + 1 + i;
        }
    }
    int rv = append_entries(r, ents, n);
    if (rv != 0)
        return rv;
    r->uncommitted_size += size;
    /* New configurations are in force at once; the quorum may have
     * shrunk, and new members get probed by the broadcast. */
    conf_appended(r, ents, n);
    maybe_commit(r);
    bcast_append(r);
    return 0;
}

/* A proposal at any role: append, forward or refuse. */
static int propose(struct raft *r, struct raft_entry *ents, size_t n)
{
    switch (r->role) {
    case RAFT_LEADER:
        return leader_propose(r, ents, n, false);
    case RAFT_FOLLOWER: {
        if (r->lead == RAFT_NONE)
            return CAIRN_ENOLEADER;
        if (r->cfg.disable_proposal_forwarding)
            return CAIRN_EPROPOSALDROPPED;
        struct raft_entry *copy =
            raft__arena_alloc(&r->arena, n * sizeof(*copy));
        if (copy == NULL)
            return CAIRN_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            copy[i] = ents[i];
            copy[i].index = 0;
            copy[i].term = 0;
            if (ents[i].len > 0) {
                uint8_t *d = raft__arena_alloc(&r->arena, ents[i].len);
                if (d == NULL)
                    return CAIRN_ENOMEM;
                memcpy(d, ents[i].data, ents[i].len);
                copy[i].data = d;
            }
        }
        struct raft_message m = {.type = RAFT_MSG_PROP,
                                 .to = r->lead,
                                 .entries = copy,
                                 .n_entries = n};
        send(r, m);
        return 0;
    }
    default:
        return CAIRN_ENOLEADER;
    }
}

/* ------------------------------------------------------------------------ */
/* Leader transfer (thesis §3.10)                                            */

static void transfer_leadership(struct raft *r, raft_id target)
{
    struct progress *pr = progress_get(r, target);
    if (pr == NULL || pr->learner)
        return; /* learners cannot lead */
    if (r->lead_transferee == target)
        return; /* already on its way */
    if (target == r->id)
        return;
    r->lead_transferee = RAFT_NONE;
    /* The transfer must finish within one election timeout. */
    r->election_elapsed = 0;
    r->lead_transferee = target;
    if (pr->match == raft__log_last_index(&r->log))
        send_timeout_now(r, target);
    else
        maybe_send_append(r, target, true);
}

/* ------------------------------------------------------------------------ */
/* Message handling per role                                                 */

static void step_leader(struct raft *r, const struct raft_message *m)
{
    struct progress *pr = progress_get(r, m->from);
    switch (m->type) {
    case RAFT_MSG_PROP: {
        if (m->n_entries == 0)
            return;
        struct raft_entry *ents =
            raft__arena_alloc(&r->arena, m->n_entries * sizeof(*ents));
        if (ents == NULL) {
            r->nomem = CAIRN_ENOMEM;
            return;
        }
        memcpy(ents, m->entries, m->n_entries * sizeof(*ents));
        int rv = leader_propose(r, ents, m->n_entries, true);
        if (rv == CAIRN_ENOMEM)
            r->nomem = rv;
        /* Its waiters answer once it has applied them. */
        if (rv == 0 && pr != NULL)
            pr->want_commit = raft__log_last_index(&r->log);
        return;
    }
    case RAFT_MSG_READ_INDEX: {
        int rv = leader_read(r, m->from, m->ctx);
        if (rv == CAIRN_ENOMEM)
            r->nomem = rv;
        return;
    }
    case RAFT_MSG_TRANSFER_LEADER:
        if (pr != NULL)
            transfer_leadership(r, m->from);
        return;
    default:
        break;
    }
    if (pr == NULL)
        return;
    switch (m->type) {
    case RAFT_MSG_APP_RESP:
        pr->recent_active = true;
        if (m->reject) {
            raft_index next_probe = m->reject_hint;
            if (m->log_term > 0) {
                /* The follower's hint names its last entry of a term <=
                 * ours; find our last entry of a term <= that term. */
                raft_term t;
                next_probe = raft__log_find_conflict_by_term(
                    &r->log, m->reject_hint, m->log_term, &t);
            }
            if (raft__progress_maybe_decr_to(pr, m->index, next_probe)) {
                if (pr->state == RAFT_PROGRESS_REPLICATE)
                    raft__progress_become_probe(pr);
                maybe_send_append(r, m->from, true);
            }
            return;
        }
        {
            bool old_paused = raft__progress_is_paused(pr);
            if (!raft__progress_maybe_update(pr, m->index))
                return;
            if (pr->state == RAFT_PROGRESS_PROBE) {
                raft__progress_become_replicate(pr);
            } else if (pr->state == RAFT_PROGRESS_SNAPSHOT &&
                       pr->match + 1 >= raft__log_first_index(&r->log)) {
                /* The log reaches the follower again. */
                raft__progress_become_probe(pr);
                raft__progress_become_replicate(pr);
            } else if (pr->state == RAFT_PROGRESS_REPLICATE) {
                raft__inflights_free_le(&pr->ins, m->index);
            }
            bool moved = maybe_commit(r);
            if (moved)
                bcast_commit(r);
            if (old_paused && (!moved || r->cfg.lazy_commit))
                maybe_send_append(r, m->from, true);
            /* Fill the window: bounded by max_inflight_msgs. */
            for (unsigned i = 0; i < r->cfg.max_inflight_msgs + 1; i++)
                if (!maybe_send_append(r, m->from, false))
                    break;
            if (m->from == r->lead_transferee &&
                pr->match == raft__log_last_index(&r->log))
                send_timeout_now(r, m->from);
        }
        return;
    case RAFT_MSG_HEARTBEAT_RESP:
        pr->recent_active = true;
        pr->probe_sent = false;
        if (pr->state == RAFT_PROGRESS_REPLICATE &&
            raft__inflights_full(&pr->ins))
            raft__inflights_free_first_one(&pr->ins);
        if (pr->match < raft__log_last_index(&r->log))
            maybe_send_append(r, m->from, true);
        if (m->ctx != 0 && m->ctx <= r->read_round) {
            if (m->ctx > pr->read_ack_round)
                pr->read_ack_round = m->ctx;
            release_reads(r);
        }
        return;
    default:
        return;
    }
}

static void step_candidate(struct raft *r, const struct raft_message *m)
{
    uint8_t my_resp = r->role == RAFT_PRE_CANDIDATE ? RAFT_MSG_PRE_VOTE_RESP
                                                    : RAFT_MSG_VOTE_RESP;
    switch (m->type) {
    case RAFT_MSG_APP:
        become_follower(r, m->term, m->from);
        handle_append(r, m);
        return;
    case RAFT_MSG_HEARTBEAT:
        become_follower(r, m->term, m->from);
        handle_heartbeat(r, m);
        return;
    case RAFT_MSG_SNAP:
        become_follower(r, m->term, m->from);
        handle_snapshot(r, m);
        return;
    default:
        break;
    }
    if (m->type == my_resp)
        poll_and_decide(r, m);
}

static void step_follower(struct raft *r, const struct raft_message *m)
{
    switch (m->type) {
    case RAFT_MSG_PROP:
        if (r->lead != RAFT_NONE && !r->cfg.disable_proposal_forwarding) {
            struct raft_message f = *m;
            f.to = r->lead;
            send(r, f);
        }
        return;
    case RAFT_MSG_APP:
        r->election_elapsed = 0;
        r->lead = m->from;
        handle_append(r, m);
        return;
    case RAFT_MSG_HEARTBEAT:
        r->election_elapsed = 0;
        r->lead = m->from;
        handle_heartbeat(r, m);
        return;
    case RAFT_MSG_SNAP:
        r->election_elapsed = 0;
        r->lead = m->from;
        handle_snapshot(r, m);
        return;
    case RAFT_MSG_TIMEOUT_NOW:
        /* Campaign at once, past PreVote and the CheckQuorum lease. */
        hup(r, CAMPAIGN_TRANSFER);
        return;
    case RAFT_MSG_READ_INDEX_RESP: {
        struct raft_read_state *rs = vec_push(r, &r->read_states, sizeof(*rs));
        if (rs != NULL) {
            rs->ctx = m->ctx;
            rs->index = m->index;
        }
        return;
    }
    default:
        return;
    }
}

/* Term handling common to every role (§5.1 and §9.6), then per role. */
static void step_message(struct raft *r, const struct raft_message *m)
{
    if (m->from == RAFT_NONE || m->from == r->id || m->type == 0 ||
        m->type > RAFT_MSG_TYPE_MAX)
        return;
    bool is_vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;
    if (m->term == 0) {
        /* Forwarded requests: no term. */
    } else if (m->term > r->term) {
        if (is_vote) {
            bool in_lease = r->cfg.check_quorum && r->lead != RAFT_NONE &&
                            r->election_elapsed < r->cfg.election_ticks;
            if (!m->transfer && in_lease)
                return; /* we heard from a leader lately (§4.2.3) */
        }
        /* Never change term for a PreVote; a granted PreVote answer
         * carries the would-be term, and ours rises only when the real
         * election starts. */
        bool keep_term = m->type == RAFT_MSG_PRE_VOTE ||
                         (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject);
        if (keep_term) {
            /* nothing */
        } else if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT ||
                   m->type == RAFT_MSG_SNAP) {
            become_follower(r, m->term, m->from);
        } else {
            become_follower(r, m->term, RAFT_NONE);
        }
    } else if (m->term < r->term) {
        if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
            (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
            /* A stale leader (perhaps cut off and rejoined) learns our
             * term, so that it steps down; otherwise, with CheckQuorum or
             * PreVote, we would ignore it forever and it us (etcd #8243). */
            struct raft_message resp = {.type = RAFT_MSG_APP_RESP,
                                        .to = m->from};
            send(r, resp);
        } else if (m->type == RAFT_MSG_PRE_VOTE) {
            struct raft_message resp = {.type = RAFT_MSG_PRE_VOTE_RESP,
                                        .to = m->from,
                                        .term = r->term,
                                        .reject = true};
            send(r, resp);
        }
        return;
    }
    if (is_vote) {
        bool can_vote = r->vote == m->from ||
                        (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
                        (m->type == RAFT_MSG_PRE_VOTE && m->term > r->term);
        bool up_to_date =
            faults_skip_up_to_date(r) ||
            raft__log_is_up_to_date(&r->log, m->index, m->log_term);
        uint8_t resp_type = m->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP
                                                     : RAFT_MSG_PRE_VOTE_RESP;
        if (can_vote && up_to_date) {
            /* The answer carries the requested term, so a PreVote
             * candidate recognises it. */
            struct raft_message resp = {
                .type = resp_type, .to = m->from, .term = m->term};
            send(r, resp);
            if (m->type == RAFT_MSG_VOTE) {
                r->election_elapsed = 0;
                r->vote = m->from;
            }
        } else {
            struct raft_message resp = {.type = resp_type,
                                        .to = m->from,
                                        .term = r->term,
                                        .reject = true};
            send(r, resp);
        }
        return;
    }
    switch (r->role) {
    case RAFT_LEADER:
        step_leader(r, m);
        break;
    case RAFT_CANDIDATE:
    case RAFT_PRE_CANDIDATE:
        step_candidate(r, m);
        break;
    default:
        step_follower(r, m);
        break;
    }
}

/* ------------------------------------------------------------------------ */
/* Time                                                                      */

static void tick(struct raft *r)
{
    if (r->role != RAFT_LEADER) {
        r->election_elapsed++;
        if (promotable(r) &&
            r->election_elapsed >= r->randomized_election_timeout) {
            r->election_elapsed = 0;
            hup(r, r->cfg.pre_vote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
        }
        return;
    }
    r->heartbeat_elapsed++;
    r->election_elapsed++;
    if (r->election_elapsed >= r->cfg.election_ticks) {
        r->election_elapsed = 0;
        if (r->cfg.check_quorum) {
            bool ok = quorum_result(r, active_of) == VOTE_WON;
            for (uint32_t i = 0; i < r->n_prs; i++)
                if (r->prs[i].id != r->id)
                    r->prs[i].recent_active = false;
            if (!ok) {
                cairn_infof(r->cfg.log, COMP,
                            "%llu stepped down at term %llu: no quorum "
                            "active",
                            (unsigned long long)r->id,
                            (unsigned long long)r->term);
                become_follower(r, r->term, RAFT_NONE);
                return;
            }
        }
        /* A transfer that did not finish within an election timeout is
         * abandoned (§3.10); a leader that a committed change made a
         * non-voter steps down then, handed over or not. */
        r->lead_transferee = RAFT_NONE;
        if (!raft__conf_is_voter(&r->conf, r->id) && r->n_hist == 0) {
            become_follower(r, r->term, RAFT_NONE);
            return;
        }
    }
    if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
        r->heartbeat_elapsed = 0;
        bcast_heartbeat(r, 0);
    }
}

/* ------------------------------------------------------------------------ */
/* Applying configuration changes                                            */

/* A leader that the configuration no longer counts as a voter (removed, or
 * demoted to learner) hands over instead of stepping down at once: the
 * others may not know yet that the change committed, and in a joint
 * configuration they may need this member's vote, which it would refuse to a
 * shorter log. It keeps replicating, refuses proposals, and sends TimeoutNow
 * to the most advanced voter once that one has every entry (§3.10); tick()
 * makes it step down after an election timeout at the latest. */
static void hand_over(struct raft *r)
{
    raft_id best = RAFT_NONE;
    raft_index best_match = 0;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        const struct progress *pr = &r->prs[i];
        if (pr->id == r->id || !raft__conf_is_voter(&r->conf, pr->id))
            continue;
        if (best == RAFT_NONE || pr->match > best_match) {
            best = pr->id;
            best_match = pr->match;
        }
    }
    if (best != RAFT_NONE)
        transfer_leadership(r, best);
}

/* Hands out committed, locally durable entries and applies configuration
 * changes among them. */
static void collect_committed(struct raft *r, struct raft_update *up)
{
    struct raft_log *l = &r->log;
    if (l->u.snap != NULL)
        return; /* nothing applies until the snapshot is installed */
    raft_index hi = l->committed;
    raft_index durable = raft__log_durable_index(l);
    if (hi > durable)
        hi = durable;
    if (hi <= l->applied)
        return;
    uint64_t max = r->cfg.max_committed_size_per_update;
    struct raft_entry *ents;
    size_t n;
    int rv = raft__log_slice(l, l->applied + 1, hi + 1,
                             max > 0 ? max : UINT64_MAX, &r->arena, &ents, &n);
    if (rv != 0) {
        r->nomem = rv == CAIRN_ENOMEM ? rv : r->nomem;
        return;
    }
    up->committed = ents;
    up->n_committed = n;
    l->applied = ents[n - 1].index;
    uint64_t size = payload_size(ents, n);
    r->uncommitted_size =
        r->uncommitted_size > size ? r->uncommitted_size - size : 0;
    /* The configuration as of the applied index, for the host. */
    for (size_t i = 0; i < n; i++) {
        if (ents[i].type == RAFT_ENTRY_NORMAL)
            continue;
        struct raft_conf_change cc;
        struct raft_conf_state next = r->applied_conf;
        if (raft_conf_change_decode(ents[i].data, ents[i].len, &cc) == 0 &&
            raft__conf_apply(&next, &cc) == 0) {
            r->applied_conf = next;
            r->conf_changed = true;
        }
    }
}

/* What a leader does about its configuration after every step: leave a
 * joint configuration with auto_leave once it is committed; hand over once
 * a committed change removed or demoted it. */
static void leader_conf_duties(struct raft *r)
{
    if (r->role != RAFT_LEADER || r->n_hist > 0 ||
        r->pending_conf_index > r->log.committed ||
        r->lead_transferee != RAFT_NONE)
        return;
    if (!raft__conf_is_voter(&r->conf, r->id)) {
        hand_over(r);
        return;
    }
    if (r->conf.auto_leave && raft__conf_is_joint(&r->conf)) {
        uint8_t buf[16];
        struct raft_conf_change leave = {0};
        size_t len = raft_conf_change_encode(&leave, buf);
        struct raft_entry e = {
            .type = RAFT_ENTRY_CONF_CHANGE_V2, .data = buf, .len = len};
        int rv = leader_propose(r, &e, 1, false);
        if (rv == CAIRN_ENOMEM)
            r->nomem = rv;
    }
}

/* ------------------------------------------------------------------------ */
/* Events                                                                    */

static int event_propose(struct raft *r, const struct raft_event *ev)
{
    size_t n = ev->u.propose.n;
    if (n == 0)
        return 0;
    struct raft_entry *ents = raft__arena_alloc(&r->arena, n * sizeof(*ents));
    if (ents == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        ents[i] = (struct raft_entry){.type = RAFT_ENTRY_NORMAL,
                                      .data = ev->u.propose.items[i].data,
                                      .len = ev->u.propose.items[i].len};
    }
    return propose(r, ents, n);
}

static int event_conf_change(struct raft *r, const struct raft_event *ev)
{
    const struct raft_conf_change *cc = ev->u.conf_change;
    if (cc->n_changes > RAFT_CONF_MAX)
        return CAIRN_EINVAL;
    size_t len = raft_conf_change_encoded_size(cc);
    uint8_t *buf = raft__arena_alloc(&r->arena, len);
    if (buf == NULL)
        return CAIRN_ENOMEM;
    raft_conf_change_encode(cc, buf);
    bool single =
        cc->transition == RAFT_CC_TRANSITION_AUTO && cc->n_changes == 1;
    struct raft_entry e = {.type = single ? RAFT_ENTRY_CONF_CHANGE
                                          : RAFT_ENTRY_CONF_CHANGE_V2,
                           .data = buf,
                           .len = len};
    return propose(r, &e, 1);
}

static int event_read_index(struct raft *r, uint64_t ctx)
{
    if (r->role == RAFT_LEADER)
        return leader_read(r, r->id, ctx);
    if (r->role != RAFT_FOLLOWER || r->lead == RAFT_NONE)
        return CAIRN_ENOLEADER;
    struct raft_message m = {
        .type = RAFT_MSG_READ_INDEX, .to = r->lead, .ctx = ctx};
    send(r, m);
    return 0;
}

static int event_transfer(struct raft *r, raft_id target)
{
    if (r->role == RAFT_LEADER) {
        transfer_leadership(r, target);
        return 0;
    }
    if (r->lead == RAFT_NONE)
        return CAIRN_ENOLEADER;
    /* Forwarded: the leader reads the transferee from `from`, so only a
     * member can ask for itself; others are refused. */
    if (target != r->id)
        return CAIRN_ENOTLEADER;
    struct raft_message m = {.type = RAFT_MSG_TRANSFER_LEADER, .to = r->lead};
    send(r, m);
    return 0;
}

/* The leader's own acknowledgement, once what it holds is durable. */
static void self_ack(struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return;
    /* Our own acknowledgement, now that it is durable (etcd #14370). */
    raft_index durable = raft__log_durable_index(&r->log);
    struct progress *self = progress_get(r, r->id);
    if (self != NULL && raft__progress_maybe_update(self, durable)) {
        if (maybe_commit(r))
            bcast_commit(r);
    }
}

static void event_persisted(struct raft *r, raft_index index, raft_term term)
{
    raft__log_stable_to(&r->log, index, term);
    self_ack(r);
}

bool raft_waits_on_persist(const struct raft *r)
{
    const struct raft_log *l = &r->log;
    /* A follower's or candidate's answers wait for its disk. */
    if (r->role != RAFT_LEADER || l->u.snap != NULL)
        return true;
    raft_index durable = raft__log_durable_index(l);
    /* Messages held until the term is durable; committed entries held
     * until they are durable here (followers made them committed). */
    if (durable < r->term_start_index || l->committed > durable)
        return true;
    /* Our own acknowledgement of everything handed out would move the
     * commit index: the followers' are in, ours is what is missing. */
    return quorum_index_with(r, raft__log_last_index(l)) > l->committed;
}

static void event_snapshot_installed(struct raft *r, raft_index index)
{
    raft__log_stable_snap_to(&r->log, index);
    /* Entries reported persisted before the snapshot was installed count
     * as durable only now (a member may have won an election meanwhile). */
    self_ack(r);
}

static void event_report_snapshot(struct raft *r, raft_id id, bool failed)
{
    if (r->role != RAFT_LEADER)
        return;
    struct progress *pr = progress_get(r, id);
    if (pr == NULL || pr->state != RAFT_PROGRESS_SNAPSHOT)
        return;
    if (failed)
        pr->pending_snapshot = 0;
    raft__progress_become_probe(pr);
    /* Wait for the follower's answer (or a heartbeat's) before probing. */
    pr->probe_sent = true;
}

static int dispatch(struct raft *r, const struct raft_event *ev)
{
    switch (ev->type) {
    case RAFT_EVENT_TICK:
        tick(r);
        return 0;
    case RAFT_EVENT_RECEIVE:
        step_message(r, ev->u.message);
        return 0;
    case RAFT_EVENT_PROPOSE:
        return event_propose(r, ev);
    case RAFT_EVENT_PROPOSE_CONF_CHANGE:
        return event_conf_change(r, ev);
    case RAFT_EVENT_READ_INDEX:
        return event_read_index(r, ev->u.read_ctx);
    case RAFT_EVENT_TRANSFER_LEADERSHIP:
        return event_transfer(r, ev->u.transferee);
    case RAFT_EVENT_CAMPAIGN:
        hup(r, r->cfg.pre_vote ? CAMPAIGN_PRE : CAMPAIGN_ELECTION);
        return 0;
    case RAFT_EVENT_PERSISTED:
        event_persisted(r, ev->u.persisted.index, ev->u.persisted.term);
        return 0;
    case RAFT_EVENT_SNAPSHOT_INSTALLED:
        event_snapshot_installed(r, ev->u.snapshot_index);
        return 0;
    case RAFT_EVENT_REPORT_UNREACHABLE:
        if (r->role == RAFT_LEADER) {
            struct progress *pr = progress_get(r, ev->u.unreachable);
            if (pr != NULL && pr->state == RAFT_PROGRESS_REPLICATE)
                raft__progress_become_probe(pr);
        }
        return 0;
    case RAFT_EVENT_REPORT_SNAPSHOT:
        event_report_snapshot(r, ev->u.snapshot_report.id,
                              ev->u.snapshot_report.failed);
        return 0;
    case RAFT_EVENT_SEND_COMMIT:
        send_commit(r);
        return 0;
    default:
        return CAIRN_EINVAL;
    }
}

int raft_step(struct raft *r, const struct raft_event *ev,
              struct raft_update *up)
{
    memset(up, 0, sizeof(*up));
    raft__arena_reset(&r->arena);
    r->msgs.len = 0;
    r->read_states.len = 0;
    r->conf_changed = false;
    r->nomem = 0;

    int rv = dispatch(r, ev);
    conf_fold(r);
    leader_conf_duties(r);
    up->commit_unsent = lazy_commit_duties(r);
    collect_committed(r, up);

    struct unstable *u = &r->log.u;
    if (u->snap != NULL && !u->snap_handed_out) {
        up->snapshot = u->snap;
        u->snap_handed_out = true;
    }
    raft_index last = raft__log_last_index(&r->log);
    if (u->v.n > 0 && u->handed_out < last) {
        raft_index from = u->handed_out + 1;
        if (from < u->offset)
            from = u->offset;
        up->entries = &u->v.ents[from - u->offset];
        up->n_entries = (size_t)(last - from + 1);
        u->handed_out = last;
    }
    up->hard_state.term = r->term;
    up->hard_state.vote = r->vote;
    up->hard_state.commit = r->log.committed;
    up->hard_state_changed =
        memcmp(&up->hard_state, &r->prev_hs, sizeof(up->hard_state)) != 0;
    r->prev_hs = up->hard_state;
    up->soft_state.lead = r->lead;
    up->soft_state.role = r->role;
    up->soft_state_changed = up->soft_state.lead != r->prev_ss.lead ||
                             up->soft_state.role != r->prev_ss.role;
    r->prev_ss = up->soft_state;
    up->conf_changed = r->conf_changed;
    up->conf_state = r->applied_conf;
    up->messages = r->msgs.data;
    up->n_messages = r->msgs.len;
    up->read_states = r->read_states.data;
    up->n_read_states = r->read_states.len;
    if (r->nomem != 0)
        return r->nomem;
    return rv;
}

/* ------------------------------------------------------------------------ */
/* Life cycle                                                                */

static int check_config(const struct raft_config *c)
{
    if (c->id == RAFT_NONE || c->storage == NULL || c->heartbeat_ticks == 0 ||
        c->election_ticks <= c->heartbeat_ticks || c->max_inflight_msgs == 0)
        return CAIRN_EINVAL;
    if (c->read_only == RAFT_READ_ONLY_LEASE_BASED && !c->check_quorum)
        return CAIRN_EINVAL; /* a lease needs CheckQuorum (§6.4.1) */
    return 0;
}

/* The configurations from the log: the storage's configuration is the one
 * at its snapshot; every configuration entry after it is in force from its
 * append (the latest one rules), and those up to applied make the host's
 * applied configuration. */
static int replay_conf_changes(struct raft *r)
{
    r->base_conf = r->conf;
    r->applied_conf = r->conf;
    raft_index lo = raft__log_first_index(&r->log);
    raft_index hi = raft__log_last_index(&r->log) + 1;
    /* Bounded by the log's length. */
    while (lo < hi) {
        struct raft_entry *ents;
        size_t n;
        raft__arena_reset(&r->arena);
        int rv =
            raft__log_slice(&r->log, lo, hi, 1 << 20, &r->arena, &ents, &n);
        if (rv != 0)
            return rv;
        for (size_t i = 0; i < n; i++) {
            if (ents[i].type == RAFT_ENTRY_NORMAL)
                continue;
            struct raft_conf_change cc;
            if (raft_conf_change_decode(ents[i].data, ents[i].len, &cc) != 0)
                continue;
            if (ents[i].index <= r->log.applied) {
                struct raft_conf_state next = r->applied_conf;
                if (raft__conf_apply(&next, &cc) == 0)
                    r->applied_conf = next;
            }
        }
        conf_appended(r, ents, n);
        if (r->nomem != 0)
            return r->nomem;
        lo += n;
    }
    raft__arena_reset(&r->arena);
    conf_fold(r);
    return 0;
}

int raft_new(const struct raft_config *config, struct raft **out)
{
    int rv = check_config(config);
    if (rv != 0)
        return rv;
    struct raft *r = cairn_calloc(1, sizeof(*r));
    if (r == NULL)
        return CAIRN_ENOMEM;
    r->cfg = *config;
    r->id = config->id;
    raft__arena_init(&r->arena);
    prng_seed(&r->prng, config->seed);
    raft__log_init(&r->log, config->storage);
#ifdef CAIRN_FAULTS
    r->log.faults = &r->cfg.faults;
#endif
    struct raft_hard_state hs;
    rv = config->storage->initial_state(config->storage->ctx, &hs, &r->conf);
    if (rv != 0)
        goto err_after_alloc;
    raft_index first = raft__log_first_index(&r->log);
    raft_index last = raft__log_last_index(&r->log);
    /* A snapshot is committed by definition, even if the hard state
     * recorded with it lags. A commit beyond the log means the host lost
     * entries it had made durable. */
    if (hs.commit < first - 1)
        hs.commit = first - 1;
    if (hs.commit > last) {
        rv = CAIRN_ECORRUPT;
        goto err_after_alloc;
    }
    /* The state machine may have applied past the commit the hard state
     * recorded (it was not synced yet): applied entries were committed. */
    if (config->applied > hs.commit && config->applied <= last)
        hs.commit = config->applied;
    r->log.committed = hs.commit;
    if (config->applied > r->log.applied) {
        if (config->applied > hs.commit) {
            rv = CAIRN_EINVAL;
            goto err_after_alloc;
        }
        r->log.applied = config->applied;
    }
    rv = replay_conf_changes(r);
    if (rv != 0)
        goto err_after_alloc;
    progress_sync(r);
    become_follower(r, hs.term, RAFT_NONE);
    r->vote = hs.vote;
    r->prev_hs.term = r->term;
    r->prev_hs.vote = r->vote;
    r->prev_hs.commit = r->log.committed;
    r->prev_ss.lead = RAFT_NONE;
    r->prev_ss.role = RAFT_FOLLOWER;
    *out = r;
    return 0;

err_after_alloc:
    raft_free(r);
    return rv;
}

void raft_free(struct raft *r)
{
    if (r == NULL)
        return;
    for (uint32_t i = 0; i < r->n_prs; i++)
        raft__inflights_close(&r->prs[i].ins);
    raft__log_close(&r->log);
    raft__arena_free(&r->arena);
    cairn_free(r->msgs.data);
    cairn_free(r->read_states.data);
    cairn_free(r->reads);
    cairn_free(r->hist);
    cairn_free(r);
}

/* ------------------------------------------------------------------------ */
/* Wrappers and introspection                                                */

int raft_tick(struct raft *r, struct raft_update *update)
{
    struct raft_event ev = {.type = RAFT_EVENT_TICK};
    return raft_step(r, &ev, update);
}

int raft_receive(struct raft *r, const struct raft_message *m,
                 struct raft_update *update)
{
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = m};
    return raft_step(r, &ev, update);
}

int raft_propose(struct raft *r, const void *data, size_t len,
                 struct raft_update *update)
{
    struct raft_proposal p = {.data = data, .len = len};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                            .u.propose = {.items = &p, .n = 1}};
    return raft_step(r, &ev, update);
}

int raft_persisted(struct raft *r, raft_index index, raft_term term,
                   struct raft_update *update)
{
    struct raft_event ev = {.type = RAFT_EVENT_PERSISTED,
                            .u.persisted = {.index = index, .term = term}};
    return raft_step(r, &ev, update);
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "unknown";
    }
}

const char *raft_progress_state_name(int state)
{
    switch (state) {
    case RAFT_PROGRESS_PROBE:
        return "probe";
    case RAFT_PROGRESS_REPLICATE:
        return "replicate";
    case RAFT_PROGRESS_SNAPSHOT:
        return "snapshot";
    default:
        return "unknown";
    }
}

void raft_applied_conf(const struct raft *r, struct raft_conf_state *out)
{
    *out = r->applied_conf;
}

void raft_status_get(const struct raft *r, struct raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->id;
    st->hard_state.term = r->term;
    st->hard_state.vote = r->vote;
    st->hard_state.commit = r->log.committed;
    st->soft_state.lead = r->lead;
    st->soft_state.role = r->role;
    st->applied = r->log.applied;
    st->last_index = raft__log_last_index(&r->log);
    st->lead_transferee = r->lead_transferee;
    st->conf = r->conf;
    if (r->role != RAFT_LEADER)
        return;
    for (uint32_t i = 0; i < r->n_prs; i++) {
        const struct progress *pr = &r->prs[i];
        struct raft_progress_status *ps = &st->progress[st->n_progress++];
        ps->id = pr->id;
        ps->match = pr->match;
        ps->next = pr->next;
        ps->state = pr->state;
        ps->learner = pr->learner;
        ps->recent_active = pr->recent_active;
        ps->probe_sent = pr->probe_sent;
        ps->pending_snapshot = pr->pending_snapshot;
        ps->inflight_count = pr->ins.count;
        ps->inflight_bytes = pr->ins.bytes;
    }
}

size_t raft_describe(const struct raft *r, char *buf, size_t size)
{
    int n = snprintf(buf, size,
                     "%llu %s term=%llu vote=%llu commit=%llu applied=%llu "
                     "last=%llu lead=%llu",
                     (unsigned long long)r->id, raft_role_name(r->role),
                     (unsigned long long)r->term, (unsigned long long)r->vote,
                     (unsigned long long)r->log.committed,
                     (unsigned long long)r->log.applied,
                     (unsigned long long)raft__log_last_index(&r->log),
                     (unsigned long long)r->lead);
    return n < 0 ? 0 : (size_t)n;
}
