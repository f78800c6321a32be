/* What the leader tracks about its peers: the in-flight window and progress
 * states (etcd's tracker/), quorum arithmetic (etcd's quorum/) and the rules
 * for changing configurations (etcd's confchange/, thesis §4.3). */
#include "raft/raft_int.h"

#include <string.h>

/* ---- inflights ---- */

void raft__inflights_init(struct inflights *in, uint32_t size,
                          uint64_t max_bytes)
{
    memset(in, 0, sizeof(*in));
    in->size = size;
    in->max_bytes = max_bytes;
}

void raft__inflights_close(struct inflights *in)
{
    cairn_free(in->buf);
    in->buf = NULL;
    in->cap = 0;
    in->count = 0;
}

int raft__inflights_add(struct inflights *in, raft_index index, uint64_t bytes)
{
    CAIRN_ASSERT(!raft__inflights_full(in));
    if (in->count == in->cap) {
        /* Grow lazily, unrolling the ring into the new buffer. */
        uint32_t cap = in->cap == 0 ? 4 : in->cap * 2;
        if (cap > in->size)
            cap = in->size;
        struct inflight *b = cairn_malloc(cap * sizeof(*b));
        if (b == NULL)
            return CAIRN_ENOMEM;
        for (uint32_t i = 0; i < in->count; i++)
            b[i] = in->buf[(in->start + i) % in->cap];
        cairn_free(in->buf);
        in->buf = b;
        in->cap = cap;
        in->start = 0;
    }
    uint32_t slot = (in->start + in->count) % in->cap;
    in->buf[slot].index = index;
    in->buf[slot].bytes = bytes;
    in->count++;
    in->bytes += bytes;
    return 0;
}

void raft__inflights_free_le(struct inflights *in, raft_index index)
{
    while (in->count > 0 && in->buf[in->start].index <= index) {
        in->bytes -= in->buf[in->start].bytes;
        in->start = (in->start + 1) % in->cap;
        in->count--;
    }
    if (in->count == 0)
        in->start = 0;
}

void raft__inflights_free_first_one(struct inflights *in)
{
    if (in->count > 0)
        raft__inflights_free_le(in, in->buf[in->start].index);
}

bool raft__inflights_full(const struct inflights *in)
{
    return in->count >= in->size ||
           (in->max_bytes > 0 && in->bytes >= in->max_bytes);
}

void raft__inflights_reset(struct inflights *in)
{
    in->count = 0;
    in->start = 0;
    in->bytes = 0;
}

/* ---- progress ---- */

static void progress_reset_state(struct progress *pr, uint8_t state)
{
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->state = state;
    raft__inflights_reset(&pr->ins);
}

void raft__progress_become_probe(struct progress *pr)
{
    if (pr->state == RAFT_PROGRESS_SNAPSHOT) {
        /* Resume after the snapshot if it was sent, it may well have
         * arrived; a rejection brings next back down. */
        raft_index pending = pr->pending_snapshot;
        progress_reset_state(pr, RAFT_PROGRESS_PROBE);
        pr->next = (pr->match > pending ? pr->match : pending) + 1;
    } else {
        progress_reset_state(pr, RAFT_PROGRESS_PROBE);
        pr->next = pr->match + 1;
    }
}

void raft__progress_become_replicate(struct progress *pr)
{
    progress_reset_state(pr, RAFT_PROGRESS_REPLICATE);
    pr->next = pr->match + 1;
}

void raft__progress_become_snapshot(struct progress *pr, raft_index snapi)
{
    progress_reset_state(pr, RAFT_PROGRESS_SNAPSHOT);
    pr->pending_snapshot = snapi;
}

bool raft__progress_maybe_update(struct progress *pr, raft_index n)
{
    bool updated = false;
    if (pr->match < n) {
        pr->match = n;
        updated = true;
        pr->probe_sent = false;
    }
    if (pr->next < n + 1)
        pr->next = n + 1;
    return updated;
}

bool raft__progress_maybe_decr_to(struct progress *pr, raft_index rejected,
                                  raft_index match_hint)
{
    if (pr->state == RAFT_PROGRESS_REPLICATE) {
        /* A rejection of something already matched is stale. */
        if (rejected <= pr->match)
            return false;
        pr->next = pr->match + 1;
        return true;
    }
    /* In probe state only the answer to the last probe counts. */
    if (pr->next - 1 != rejected)
        return false;
    raft_index next = rejected < match_hint + 1 ? rejected : match_hint + 1;
    pr->next = next > pr->match + 1 ? next : pr->match + 1;
    if (pr->next < 1)
        pr->next = 1;
    pr->probe_sent = false;
    return true;
}

bool raft__progress_is_paused(const struct progress *pr)
{
    switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
        return pr->probe_sent;
    case RAFT_PROGRESS_REPLICATE:
        return raft__inflights_full(&pr->ins);
    default:
        return true;
    }
}

/* ---- quorum ---- */

raft_index raft__quorum_committed(const raft_index *acked, uint32_t n)
{
    if (n == 0)
        return UINT64_MAX;
    raft_index srt[RAFT_CONF_MAX] = {0};
    CAIRN_ASSERT(n <= RAFT_CONF_MAX);
    /* Insertion sort, descending: n is small. */
    for (uint32_t i = 0; i < n; i++) {
        raft_index v = acked[i];
        uint32_t j = i;
        while (j > 0 && srt[j - 1] < v) {
            srt[j] = srt[j - 1];
            j--;
        }
        srt[j] = v;
    }
    /* The (n/2+1)-th largest is acked by a majority. */
    return srt[n / 2];
}

enum vote_result raft__quorum_vote(const int8_t *votes, uint32_t n)
{
    if (n == 0)
        return VOTE_WON;
    uint32_t yes = 0, missing = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (votes[i] > 0)
            yes++;
        else if (votes[i] == 0)
            missing++;
    }
    uint32_t q = n / 2 + 1;
    if (yes >= q)
        return VOTE_WON;
    if (yes + missing >= q)
        return VOTE_PENDING;
    return VOTE_LOST;
}

enum vote_result raft__quorum_vote_joint(const int8_t *in, uint32_t n_in,
                                         const int8_t *out, uint32_t n_out)
{
    enum vote_result a = raft__quorum_vote(in, n_in);
    enum vote_result b = raft__quorum_vote(out, n_out);
    if (a == VOTE_LOST || b == VOTE_LOST)
        return VOTE_LOST;
    if (a == VOTE_WON && b == VOTE_WON)
        return VOTE_WON;
    return VOTE_PENDING;
}

/* ---- configurations ---- */

static bool ids_has(const raft_id *ids, uint32_t n, raft_id id)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

static void ids_remove(raft_id *ids, uint32_t *n, raft_id id)
{
    for (uint32_t i = 0; i < *n; i++) {
        if (ids[i] == id) {
            memmove(&ids[i], &ids[i + 1], (*n - i - 1) * sizeof(*ids));
            (*n)--;
            return;
        }
    }
}

static int ids_add(raft_id *ids, uint32_t *n, raft_id id)
{
    if (ids_has(ids, *n, id))
        return 0;
    if (*n >= RAFT_CONF_MAX)
        return CAIRN_EINVAL;
    ids[(*n)++] = id;
    return 0;
}

bool raft__conf_is_joint(const struct raft_conf_state *cs)
{
    return cs->n_voters_outgoing > 0;
}

bool raft__conf_is_voter(const struct raft_conf_state *cs, raft_id id)
{
    return ids_has(cs->voters, cs->n_voters, id) ||
           ids_has(cs->voters_outgoing, cs->n_voters_outgoing, id);
}

bool raft__conf_is_learner(const struct raft_conf_state *cs, raft_id id)
{
    return ids_has(cs->learners, cs->n_learners, id) ||
           ids_has(cs->learners_next, cs->n_learners_next, id);
}

bool raft__conf_contains(const struct raft_conf_state *cs, raft_id id)
{
    return raft__conf_is_voter(cs, id) || raft__conf_is_learner(cs, id);
}

static int apply_items(struct raft_conf_state *c,
                       const struct raft_conf_change *cc)
{
    for (uint32_t i = 0; i < cc->n_changes; i++) {
        raft_id id = cc->changes[i].node;
        int rv = 0;
        if (id == RAFT_NONE)
            return CAIRN_EINVAL;
        switch (cc->changes[i].type) {
        case RAFT_CC_ADD_NODE:
            ids_remove(c->learners, &c->n_learners, id);
            ids_remove(c->learners_next, &c->n_learners_next, id);
            rv = ids_add(c->voters, &c->n_voters, id);
            break;
        case RAFT_CC_ADD_LEARNER:
            ids_remove(c->voters, &c->n_voters, id);
            /* A voter of the outgoing half becomes a learner only when the
             * joint configuration is left: a node is never both. */
            if (ids_has(c->voters_outgoing, c->n_voters_outgoing, id))
                rv = ids_add(c->learners_next, &c->n_learners_next, id);
            else
                rv = ids_add(c->learners, &c->n_learners, id);
            break;
        case RAFT_CC_REMOVE_NODE:
            ids_remove(c->voters, &c->n_voters, id);
            ids_remove(c->learners, &c->n_learners, id);
            ids_remove(c->learners_next, &c->n_learners_next, id);
            break;
        default:
            return CAIRN_EINVAL;
        }
        if (rv != 0)
            return rv;
    }
    if (c->n_voters == 0)
        return CAIRN_EINVAL; /* removed all voters */
    return 0;
}

static uint32_t voters_symdiff(const struct raft_conf_state *a,
                               const struct raft_conf_state *b)
{
    uint32_t d = 0;
    for (uint32_t i = 0; i < a->n_voters; i++)
        d += !ids_has(b->voters, b->n_voters, a->voters[i]);
    for (uint32_t i = 0; i < b->n_voters; i++)
        d += !ids_has(a->voters, a->n_voters, b->voters[i]);
    return d;
}

int raft__conf_apply(struct raft_conf_state *cs,
                     const struct raft_conf_change *cc)
{
    struct raft_conf_state c = *cs;
    bool leave =
        cc->transition == RAFT_CC_TRANSITION_AUTO && cc->n_changes == 0;
    bool joint = cc->transition != RAFT_CC_TRANSITION_AUTO || cc->n_changes > 1;
    if (leave) {
        if (!raft__conf_is_joint(&c))
            return CAIRN_EINVAL;
        for (uint32_t i = 0; i < c.n_learners_next; i++)
            if (ids_add(c.learners, &c.n_learners, c.learners_next[i]) != 0)
                return CAIRN_EINVAL;
        c.n_learners_next = 0;
        c.n_voters_outgoing = 0;
        c.auto_leave = false;
    } else if (joint) {
        if (raft__conf_is_joint(&c) || c.n_voters == 0)
            return CAIRN_EINVAL;
        memcpy(c.voters_outgoing, c.voters, sizeof(c.voters));
        c.n_voters_outgoing = c.n_voters;
        int rv = apply_items(&c, cc);
        if (rv != 0)
            return rv;
        c.auto_leave = cc->transition != RAFT_CC_TRANSITION_JOINT_EXPLICIT;
    } else {
        if (raft__conf_is_joint(&c))
            return CAIRN_EINVAL;
        int rv = apply_items(&c, cc);
        if (rv != 0)
            return rv;
        /* More than one voter changed needs a joint configuration. */
        if (voters_symdiff(cs, &c) > 1)
            return CAIRN_EINVAL;
    }
    *cs = c;
    return 0;
}
