/* metrics: the member's counters behind server_metrics, with etcd's
 * meanings (etcdserver/raft.go counts leader changes on a new non-empty
 * leader; etcdserver/v3_server.go counts a proposal pending from its
 * proposal to its result, and failed when it could not commit). */
#include <string.h>

#include "server/server_int.h"

void server__metrics_init(struct server *s)
{
    cairn_hist_init(&s->metrics.wal_fsync, SERVER_DISK_HIST_START_NS,
                    SERVER_DISK_HIST_BUCKETS);
    cairn_hist_init(&s->metrics.backend_commit, SERVER_DISK_HIST_START_NS,
                    SERVER_DISK_HIST_BUCKETS);
}

void server__metrics_note_leader(struct server *s)
{
    if (s->node == NULL || s->state_freed)
        return;
    uint64_t leader = node_leader(s->node);
    if (leader != 0 && leader != s->metrics.leader)
        s->metrics.leader_changes++;
    s->metrics.leader = leader;
}

/* The outcomes etcd counts in proposals_failed_total: the proposal was
 * dropped or never committed (no leader, timeout, stop), as opposed to an
 * answer of the applied request (key not found, compacted...). */
static bool proposal_failed(int err)
{
    switch (err) {
    case CAIRN_ETIMEOUT:
    case CAIRN_EDEADLINE:
    case CAIRN_ENOLEADER:
    case CAIRN_ENOTLEADER:
    case CAIRN_EPROPOSALDROPPED:
    case CAIRN_ELEADERCHANGED:
    case CAIRN_ETRANSFERRING:
    case CAIRN_ESTEPPEDDOWN:
    case CAIRN_ESTOPPED:
    case CAIRN_ESHUTDOWN:
    case CAIRN_ECANCELED:
        return true;
    default:
        return false;
    }
}

/* The caller's callback, wrapped while the proposal is pending. */
struct proposal {
    struct server *s;
    void *arg;
    node_done_cb cb;
};

static void proposal_done(void *arg, const struct node_result *res)
{
    struct proposal *p = arg;
    struct server *s = p->s;
    void *cb_arg = p->arg;
    node_done_cb cb = p->cb;
    cairn_free(p);
    s->metrics.proposals_pending--;
    if (proposal_failed(res->err))
        s->metrics.proposals_failed++;
    cb(cb_arg, res);
}

int server__propose_begin(struct server *s, void **arg, node_done_cb *cb)
{
    struct proposal *p = cairn_malloc(sizeof *p);
    if (p == NULL)
        return CAIRN_ENOMEM;
    p->s = s;
    p->arg = *arg;
    p->cb = *cb;
    *arg = p;
    *cb = proposal_done;
    s->metrics.proposals_pending++;
    return 0;
}

void server__propose_end(struct server *s, void *arg, int rv)
{
    /* Accepted: proposal_done frees it (perhaps it already has). */
    if (rv == 0)
        return;
    cairn_free(arg);
    s->metrics.proposals_pending--;
    if (proposal_failed(rv))
        s->metrics.proposals_failed++;
}

void server_metrics(struct server *s, struct server_metrics *out)
{
    out->leader_changes_seen = s->metrics.leader_changes;
    out->proposals_pending = s->metrics.proposals_pending;
    out->proposals_failed = s->metrics.proposals_failed;
    out->proposals_committed = 0;
    out->proposals_applied = 0;
    if (s->node != NULL && !s->state_freed) {
        struct node_status st;
        node_status_get(s->node, &st);
        out->proposals_committed = st.commit_index;
        out->proposals_applied = st.applied_index;
    }
    memset(&out->mvcc, 0, sizeof out->mvcc);
    if (s->store != NULL && !s->state_freed)
        mvcc_op_counts_get(s->store, &out->mvcc);
    cairn_hist_read(&s->metrics.wal_fsync, &out->wal_fsync);
    cairn_hist_read(&s->metrics.backend_commit, &out->backend_commit);
    out->n_peers = 0;
    if (s->transport == NULL)
        return;
    raft_id ids[TRANSPORT_PEERS_MAX];
    size_t n = transport_peer_ids(s->transport, ids, TRANSPORT_PEERS_MAX);
    for (size_t i = 0; i < n && out->n_peers < SERVER_METRICS_PEERS_MAX; i++) {
        struct transport_peer_status st;
        if (transport_peer_status(s->transport, ids[i], &st) != 0)
            continue;
        out->peers[out->n_peers].id = ids[i];
        out->peers[out->n_peers].rtt = st.rtt_hist;
        out->n_peers++;
    }
}
