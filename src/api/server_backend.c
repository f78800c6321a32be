/* server_backend: the API over a running member: the backend table that
 * calls server.h's request interface, and api_serve for the `cairn`
 * binary. Kept apart from the services so that tests over a fake member
 * link without the server. */
#include <string.h>

#include "api/api.h"

struct fwd_conn;

/* The table's arg: the member, and the connection over which a follower
 * forwards keep-alives to the leader. */
struct sb {
    struct server *s;
    struct fwd_conn *conn; /* NULL: none yet, or dropped */
};

static struct server *srv(void *arg)
{
    return ((struct sb *)arg)->s;
}

static int b_range(void *arg, const struct mvcc_range_req *req,
                   bool serializable, void *ctx, node_done_cb cb)
{
    return server_range(srv(arg), req, serializable, ctx, cb);
}
static int b_put(void *arg, const struct mvcc_put_req *req, void *ctx,
                 node_done_cb cb)
{
    return server_put(srv(arg), req, ctx, cb);
}
static int b_delete_range(void *arg, const struct mvcc_delete_req *req,
                          void *ctx, node_done_cb cb)
{
    return server_delete_range(srv(arg), req, ctx, cb);
}
static int b_txn(void *arg, const struct mvcc_txn_req *req, void *ctx,
                 node_done_cb cb)
{
    return server_txn(srv(arg), req, ctx, cb);
}
static int b_compact(void *arg, mvcc_rev rev, bool physical, void *ctx,
                     node_done_cb cb)
{
    return server_compact(srv(arg), rev, physical, ctx, cb);
}
static int b_status(void *arg, void *ctx, node_done_cb cb)
{
    return server_status(srv(arg), ctx, cb);
}
static int b_alarm(void *arg, uint8_t action, uint64_t member_id, uint8_t type,
                   void *ctx, node_done_cb cb)
{
    return server_alarm(srv(arg), action, member_id, type, ctx, cb);
}

static int b_auth(void *arg, const struct auth_req *req, void *ctx,
                  node_done_cb cb)
{
    return server_auth(srv(arg), req, ctx, cb);
}

static int b_v2(void *arg, const struct v2_req *req, void *ctx, node_done_cb cb)
{
    return server_v2(srv(arg), req, ctx, cb);
}
static int b_v2_scan(void *arg, const char *path, size_t len, bool recursive,
                     bool live, uint64_t since, struct buf *out,
                     struct v2_scan_pos *pos)
{
    return server_v2_scan(srv(arg), path, len, recursive, live, since, out,
                          pos);
}
static int b_v2_wait(void *arg, void *ctx, void (*cb)(void *ctx), void **handle)
{
    return server_v2_wait(srv(arg), ctx, cb,
                          (struct server_v2_waiter **)handle);
}
static void b_v2_wait_cancel(void *arg, void *handle)
{
    server_v2_wait_cancel(srv(arg), handle);
}

static int b_hash(void *arg, void *ctx, node_done_cb cb)
{
    return server_hash(srv(arg), ctx, cb);
}
static int b_hash_kv(void *arg, mvcc_rev rev, void *ctx, node_done_cb cb)
{
    return server_hash_kv(srv(arg), rev, ctx, cb);
}
static int b_move_leader(void *arg, uint64_t target, void *ctx, node_done_cb cb)
{
    return server_move_leader(srv(arg), target, ctx, cb);
}
static int b_defragment(void *arg, void *ctx, node_done_cb cb)
{
    return server_defragment(srv(arg), ctx, cb);
}
static int b_snapshot_export(void *arg, int fd, void *ctx, node_done_cb cb)
{
    return server_snapshot_export(srv(arg), fd, ctx, cb);
}
static int b_lease_grant(void *arg, int64_t id, int64_t ttl_s, void *ctx,
                         node_done_cb cb)
{
    return server_lease_grant(srv(arg), id, ttl_s, ctx, cb);
}
static int b_lease_revoke(void *arg, int64_t id, void *ctx, node_done_cb cb)
{
    return server_lease_revoke(srv(arg), id, ctx, cb);
}
/* ---- a follower's keep-alive and promote, forwarded to the leader ----
 *
 * Keep-alive is leader-only (node.h), and only the leader knows whether a
 * learner caught up. etcd's follower forwards LeaseRenew and PromoteMember
 * to the leader over the peer port; we forward them over the leader's
 * published client URL instead: one gRPC connection to the leader, kept
 * while that member leads and shared by every forwarded request, each a
 * call of one request, half-closed, its one answer taken as the result. One
 * connection per keep-alive (the first design) cost the leader a connection's
 * buffers per keep-alive in flight: under 10,000 leases that was thousands of
 * connections and most of its peak memory. Each keep-alive is bounded by its
 * call's deadline (or, while the connection is still being made, by its own
 * timer); the result always comes, as the backend contract asks. */

#define FWD_TIMEOUT_MS 5000
#define FWD_URL_MAX 256

struct fwd {
    uint8_t type; /* NODE_REQ_LEASE_KEEPALIVE or NODE_REQ_MEMBER_PROMOTE */
    int64_t id;   /* the lease, or the member to promote */
    void *ctx;
    node_done_cb cb;
    uv_timer_t timer; /* deadline while waiting, then the deferred free */
    struct fwd_conn *waiting; /* on its wait list until connected */
    struct fwd *prev, *next;
    bool calling; /* a call is open: its done comes before f goes */
    bool answered;
    bool got;
    int64_t ttl;
    struct node_member *list; /* promote: the leader's member list */
    size_t n_list;
    uint64_t cluster_id, member_id, raft_term;
    int64_t revision;
};

/* One connection to one leader. Dropping it answers its waiting
 * keep-alives and closes the client (which ends open calls) from a timer,
 * outside rpc's callbacks, where a drop may begin; it is freed after. */
struct fwd_conn {
    struct sb *sb; /* NULL once dropped */
    uint64_t leader;
    struct rpc_client *cl;
    uv_timer_t close_timer;
    bool connecting;
    struct fwd *wait_head, *wait_tail; /* keep-alives for the connect */
};

static void fwd_freed(uv_handle_t *h)
{
    cairn_free(h->data);
}

static void fwd_request_freed(uv_handle_t *h)
{
    struct fwd *f = h->data;
    cairn_free(f->list);
    cairn_free(f);
}

static void fwd_on_free_timer(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, fwd_request_freed);
}

static void fwd_unwait(struct fwd *f)
{
    struct fwd_conn *fc = f->waiting;
    if (fc == NULL)
        return;
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        fc->wait_head = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    else
        fc->wait_tail = f->prev;
    f->waiting = NULL;
    f->prev = f->next = NULL;
}

/* Gives the result to the API once, then frees f from the loop (not
 * inside the rpc callback that may have brought the result). */
static void fwd_finish(struct fwd *f, int err)
{
    if (f->answered)
        return;
    f->answered = true;
    fwd_unwait(f);
    struct node_result res;
    memset(&res, 0, sizeof res);
    res.type = f->type;
    res.err = err;
    res.cluster_id = f->cluster_id;
    res.member_id = f->member_id;
    res.revision = f->revision;
    res.raft_term = f->raft_term;
    if (err == 0 && f->type == NODE_REQ_LEASE_KEEPALIVE) {
        res.u.lease_keepalive.id = f->id;
        res.u.lease_keepalive.ttl_s = f->ttl;
    } else if (err == 0) {
        for (size_t i = 0; i < f->n_list; i++)
            if (f->list[i].id == (uint64_t)f->id)
                res.u.members.member = &f->list[i];
        res.u.members.list = f->list;
        res.u.members.n = f->n_list;
    }
    f->cb(f->ctx, &res);
    uv_timer_start(&f->timer, fwd_on_free_timer, 0, 0);
}

/* Still waiting for the connection by then: answered "not leader" (the
 * client retries). Once its call is open, the call's own deadline
 * (shorter) ends it. */
static void fwd_on_deadline(uv_timer_t *t)
{
    struct fwd *f = t->data;
    if (!f->calling)
        fwd_finish(f, CAIRN_ENOTLEADER);
}

static void fwd_header(struct fwd *f, const Etcdserverpb__ResponseHeader *h)
{
    if (h == NULL)
        return;
    f->cluster_id = h->cluster_id;
    f->member_id = h->member_id;
    f->revision = h->revision;
    f->raft_term = h->raft_term;
}

static void copy_urls(char *const *in, size_t n, uint32_t *n_out,
                      char out[][NODE_URL_MAX])
{
    *n_out = 0;
    for (size_t i = 0; i < n && i < NODE_MEMBER_URLS_MAX; i++)
        snprintf(out[(*n_out)++], NODE_URL_MAX, "%s", in[i]);
}

/* The leader's list after the promote, as node's result carries one. */
static void fwd_promoted(struct fwd *f, const uint8_t *data, size_t len)
{
    Etcdserverpb__MemberPromoteResponse *in =
        etcdserverpb__member_promote_response__unpack(NULL, len, data);
    if (in == NULL)
        return;
    fwd_header(f, in->header);
    f->list = cairn_calloc(in->n_members + 1, sizeof *f->list);
    for (size_t i = 0; f->list != NULL && i < in->n_members; i++) {
        const Etcdserverpb__Member *pm = in->members[i];
        struct node_member *m = &f->list[i];
        m->id = pm->id;
        snprintf(m->name, sizeof m->name, "%s", pm->name);
        copy_urls(pm->peerurls, pm->n_peerurls, &m->n_peer_urls, m->peer_urls);
        copy_urls(pm->clienturls, pm->n_clienturls, &m->n_client_urls,
                  m->client_urls);
        m->is_learner = pm->islearner;
    }
    f->n_list = f->list != NULL ? in->n_members : 0;
    f->got = f->list != NULL;
    etcdserverpb__member_promote_response__free_unpacked(in, NULL);
}

static void fwd_message(void *arg, struct rpc_call *call, const uint8_t *data,
                        size_t len)
{
    (void)call;
    struct fwd *f = arg;
    if (f->got)
        return;
    if (f->type == NODE_REQ_MEMBER_PROMOTE) {
        fwd_promoted(f, data, len);
        return;
    }
    Etcdserverpb__LeaseKeepAliveResponse *in =
        etcdserverpb__lease_keep_alive_response__unpack(NULL, len, data);
    if (in == NULL)
        return;
    f->got = true;
    f->ttl = in->ttl;
    fwd_header(f, in->header);
    etcdserverpb__lease_keep_alive_response__free_unpacked(in, NULL);
}

static void fwd_done(void *arg, struct rpc_call *call, int code,
                     const char *message)
{
    (void)call;
    struct fwd *f = arg;
    f->calling = false;
    if (f->type == NODE_REQ_MEMBER_PROMOTE) {
        /* the leader's refusal (not ready, not a learner, ...) is ours;
         * no answer at all: "not leader", the client may retry */
        if (code != RPC_OK)
            fwd_finish(f, api_err_from_status(code, message));
        else
            fwd_finish(f, f->got ? 0 : CAIRN_ENOTLEADER);
        return;
    }
    /* TTL 0 is the leader's "lease not found" (etcd answers so). Without
     * an answer the client retries: "not leader" ends its stream. */
    if (!f->got)
        fwd_finish(f, CAIRN_ENOTLEADER);
    else
        fwd_finish(f, f->ttl > 0 ? 0 : CAIRN_ELEASENOTFOUND);
}

static const struct rpc_call_cbs fwd_cbs = {
    .message = fwd_message,
    .done = fwd_done,
};

/* Opens f's call on the connected client. */
static void fwd_call(struct fwd *f, struct rpc_client *cl)
{
    uint8_t buf[32];
    size_t n;
    const char *method;
    if (f->type == NODE_REQ_MEMBER_PROMOTE) {
        Etcdserverpb__MemberPromoteRequest req;
        etcdserverpb__member_promote_request__init(&req);
        req.id = (uint64_t)f->id;
        n = etcdserverpb__member_promote_request__get_packed_size(&req);
        CAIRN_ASSERT(n <= sizeof buf);
        etcdserverpb__member_promote_request__pack(&req, buf);
        method = "/etcdserverpb.Cluster/MemberPromote";
    } else {
        Etcdserverpb__LeaseKeepAliveRequest req;
        etcdserverpb__lease_keep_alive_request__init(&req);
        req.id = f->id;
        n = etcdserverpb__lease_keep_alive_request__get_packed_size(&req);
        CAIRN_ASSERT(n <= sizeof buf);
        etcdserverpb__lease_keep_alive_request__pack(&req, buf);
        method = "/etcdserverpb.Lease/LeaseKeepAlive";
    }
    struct rpc_call *call;
    f->calling = true;
    int rc =
        rpc_client_call(cl, method, FWD_TIMEOUT_MS, NULL, &fwd_cbs, f, &call);
    if (rc != 0) {
        f->calling = false;
        fwd_finish(f, CAIRN_ENOTLEADER);
        return;
    }
    /* done follows whatever happens to the call */
    if (rpc_call_send(call, buf, n) != 0)
        rpc_call_cancel(call);
    else
        rpc_call_close_send(call);
}

static void fwd_conn_on_close_timer(uv_timer_t *t)
{
    struct fwd_conn *fc = t->data;
    if (fc->cl != NULL)
        rpc_client_close(fc->cl);
    fc->cl = NULL;
    uv_close((uv_handle_t *)t, fwd_freed);
}

/* Ends fc's use: waiting keep-alives are answered "not leader" now, the
 * client is closed from the timer (once connected), which ends its open
 * calls the same way. */
static void fwd_conn_drop(struct fwd_conn *fc)
{
    if (fc->sb == NULL)
        return;
    if (fc->sb->conn == fc)
        fc->sb->conn = NULL;
    fc->sb = NULL;
    while (fc->wait_head != NULL)
        fwd_finish(fc->wait_head, CAIRN_ENOTLEADER);
    if (!fc->connecting)
        uv_timer_start(&fc->close_timer, fwd_conn_on_close_timer, 0, 0);
}

static void fwd_connected(void *arg, int status, struct rpc_client *cl)
{
    struct fwd_conn *fc = arg;
    fc->connecting = false;
    fc->cl = cl; /* NULL on failure */
    if (status != 0 || fc->sb == NULL) {
        if (fc->sb != NULL)
            fwd_conn_drop(fc);
        else
            uv_timer_start(&fc->close_timer, fwd_conn_on_close_timer, 0, 0);
        return;
    }
    /* A call may answer at once, and its answer may bring a keep-alive
     * that drops fc: stop then (the drop answered the rest). */
    while (fc->sb != NULL && fc->wait_head != NULL) {
        struct fwd *f = fc->wait_head;
        fwd_unwait(f);
        fwd_call(f, cl);
    }
}

/* The connection to leader, made when there is none or the one there is
 * talks to another member or has died. NULL: no memory, or the dial was
 * refused. */
static struct fwd_conn *fwd_conn_get(struct sb *sb, uint64_t leader,
                                     const struct net_url *url)
{
    struct fwd_conn *fc = sb->conn;
    if (fc != NULL && fc->leader == leader &&
        (fc->connecting || rpc_client_alive(fc->cl)))
        return fc;
    if (fc != NULL)
        fwd_conn_drop(fc);
    fc = cairn_calloc(1, sizeof *fc);
    if (fc == NULL)
        return NULL;
    fc->sb = sb;
    fc->leader = leader;
    fc->connecting = true;
    uv_timer_init(server_loop(sb->s), &fc->close_timer);
    fc->close_timer.data = fc;
    /* The leader's client URL may be https: dial it as a client of the
     * client port would, with our client-side TLS context. */
    struct rpc_client_config cc = {.net = {.tls = server_client_tls(sb->s)}};
    if (rpc_client_connect(server_loop(sb->s), url, &cc, NULL, fc,
                           fwd_connected) != 0) {
        uv_close((uv_handle_t *)&fc->close_timer, fwd_freed);
        return NULL;
    }
    sb->conn = fc;
    return fc;
}

/* Forwards a request of type (with its lease or member id) to the leader;
 * 1 when there is no other leader to forward to (the member answers). */
static int forward(struct sb *sb, uint8_t type, int64_t id, void *ctx,
                   node_done_cb cb)
{
    struct server *s = sb->s;
    uint64_t leader = server_leader(s);
    char url_text[FWD_URL_MAX];
    struct net_url url;
    if (leader == 0 || leader == server_member_id(s) ||
        !server_member_client_url(s, leader, url_text, sizeof url_text) ||
        net_url_parse(url_text, &url, NULL) != 0) {
        if (sb->conn != NULL)
            fwd_conn_drop(sb->conn); /* no one, or we, lead now */
        return 1;
    }
    struct fwd_conn *fc = fwd_conn_get(sb, leader, &url);
    if (fc == NULL)
        return CAIRN_ENOTLEADER;
    struct fwd *f = cairn_calloc(1, sizeof *f);
    if (f == NULL)
        return CAIRN_ENOMEM;
    f->type = type;
    f->id = id;
    f->ctx = ctx;
    f->cb = cb;
    uv_timer_init(server_loop(s), &f->timer);
    f->timer.data = f;
    if (!fc->connecting) {
        fwd_call(f, fc->cl);
        return 0;
    }
    f->waiting = fc;
    f->prev = fc->wait_tail;
    if (fc->wait_tail != NULL)
        fc->wait_tail->next = f;
    else
        fc->wait_head = f;
    fc->wait_tail = f;
    uv_timer_start(&f->timer, fwd_on_deadline, FWD_TIMEOUT_MS + 1000, 0);
    return 0;
}

static int b_lease_keepalive(void *arg, int64_t id, void *ctx, node_done_cb cb)
{
    int rc = forward(arg, NODE_REQ_LEASE_KEEPALIVE, id, ctx, cb);
    return rc == 1 ? server_lease_keepalive(srv(arg), id, ctx, cb) : rc;
}

/* api_close's hook: the forwarding connection goes with the API. */
static void b_close(void *arg)
{
    struct sb *sb = arg;
    if (sb->conn != NULL)
        fwd_conn_drop(sb->conn);
    cairn_free(sb);
}

static int b_lease_ttl(void *arg, int64_t id, bool keys, void *ctx,
                       node_done_cb cb)
{
    return server_lease_ttl(srv(arg), id, keys, ctx, cb);
}
static int b_lease_list(void *arg, void *ctx, node_done_cb cb)
{
    return server_lease_list(srv(arg), ctx, cb);
}
static int b_member_add(void *arg, const struct node_member *m, void *ctx,
                        node_done_cb cb)
{
    return server_member_add(srv(arg), m, ctx, cb);
}
static int b_member_remove(void *arg, uint64_t id, void *ctx, node_done_cb cb)
{
    return server_member_remove(srv(arg), id, ctx, cb);
}
static int b_member_update(void *arg, const struct node_member *m, void *ctx,
                           node_done_cb cb)
{
    return server_member_update(srv(arg), m, ctx, cb);
}
/* etcd's PromoteMember: a follower that cannot tell whether the learner
 * caught up asks the leader. */
static int b_member_promote(void *arg, uint64_t id, void *ctx, node_done_cb cb)
{
    int rc = server_member_promote(srv(arg), id, ctx, cb);
    if (rc != CAIRN_ENOTLEADER)
        return rc;
    rc = forward(arg, NODE_REQ_MEMBER_PROMOTE, (int64_t)id, ctx, cb);
    return rc == 1 ? CAIRN_ENOTLEADER : rc;
}
static int b_member_list(void *arg, void *ctx, node_done_cb cb)
{
    return server_member_list(srv(arg), ctx, cb);
}

/* Watch: the server's hubs (server.h), one per Watch stream. */
static int b_watch_open(void *arg, void *ctx, mvcc_watch_cb cb, void **hub)
{
    struct server_watch *w;
    int rc = server_watch_open(srv(arg), ctx, cb, &w);
    if (rc == 0)
        *hub = w;
    return rc;
}
static void b_watch_close(void *arg, void *hub)
{
    server_watch_close(srv(arg), hub);
}
static int b_watch_create(void *arg, void *hub,
                          const struct mvcc_watch_req *req, int64_t *id)
{
    return server_watch_create(srv(arg), hub, req, id);
}
static int b_watch_cancel(void *arg, void *hub, int64_t id)
{
    return server_watch_cancel(srv(arg), hub, id);
}
static int b_watch_progress(void *arg, void *hub, int64_t id)
{
    return server_watch_progress(srv(arg), hub, id);
}
static int b_watch_resume(void *arg, void *hub, int64_t id)
{
    return server_watch_resume(srv(arg), hub, id);
}
static void b_watch_header(void *arg, struct api_header *h)
{
    server_watch_header(srv(arg), &h->cluster_id, &h->member_id, &h->revision,
                        &h->raft_term);
}

static void b_metrics(void *arg, struct api_metrics *m)
{
    struct server_metrics sm;
    server_metrics(srv(arg), &sm);
    memset(m, 0, sizeof *m);
    m->leader_changes_seen = sm.leader_changes_seen;
    m->proposals_committed = sm.proposals_committed;
    m->proposals_applied = sm.proposals_applied;
    m->proposals_pending = sm.proposals_pending;
    m->proposals_failed = sm.proposals_failed;
    m->has_mvcc = true;
    m->mvcc = sm.mvcc;
    m->wal_fsync = sm.wal_fsync;
    m->backend_commit = sm.backend_commit;
    for (size_t i = 0; i < sm.n_peers && i < API_METRICS_PEERS_MAX; i++) {
        m->peers[i].id = sm.peers[i].id;
        m->peers[i].rtt = sm.peers[i].rtt;
        m->n_peers++;
    }
}

int api_backend_server(struct server *s, struct api_backend *out)
{
    struct sb *sb = cairn_calloc(1, sizeof *sb);
    if (sb == NULL)
        return CAIRN_ENOMEM;
    sb->s = s;
    *out = (struct api_backend){
        .arg = sb,
        .close = b_close,
        .range = b_range,
        .put = b_put,
        .delete_range = b_delete_range,
        .txn = b_txn,
        .compact = b_compact,
        .status = b_status,
        .alarm = b_alarm,
        .auth = b_auth,
        .v2 = b_v2,
        .v2_scan = b_v2_scan,
        .v2_wait = b_v2_wait,
        .v2_wait_cancel = b_v2_wait_cancel,
        .hash = b_hash,
        .hash_kv = b_hash_kv,
        .move_leader = b_move_leader,
        .defragment = b_defragment,
        .snapshot_export = b_snapshot_export,
        .lease_grant = b_lease_grant,
        .lease_revoke = b_lease_revoke,
        .lease_keepalive = b_lease_keepalive,
        .lease_ttl = b_lease_ttl,
        .lease_list = b_lease_list,
        .member_add = b_member_add,
        .member_remove = b_member_remove,
        .member_update = b_member_update,
        .member_promote = b_member_promote,
        .member_list = b_member_list,
        .watch_open = b_watch_open,
        .watch_close = b_watch_close,
        .watch_create = b_watch_create,
        .watch_cancel = b_watch_cancel,
        .watch_progress = b_watch_progress,
        .watch_resume = b_watch_resume,
        .watch_header = b_watch_header,
        .metrics = b_metrics,
    };
    return 0;
}

int api_serve(uv_loop_t *loop, struct server *s, struct cairn_log *log,
              const char *const *client_urls, size_t n, struct api **out,
              struct cairn_errmsg *m)
{
    struct api_backend be;
    int rv = api_backend_server(s, &be);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "api: open");
    struct api_config cfg = {
        .max_txn_ops = server_max_txn_ops(s),
        .max_request_bytes = (size_t)server_max_request_bytes(s),
        .enable_v2 = server_enable_v2(s),
        .rpc = {.max_concurrent_streams = server_max_concurrent_streams(s),
                /* https and unixs client URLs (docs/tls.md) */
                .net = {.tls = server_client_tls(s)}},
    };
    struct api *a;
    rv = api_open(loop, &be, &cfg, log, &a);
    if (rv != 0) {
        b_close(be.arg);
        return cairn_errmsg_code(m, rv, "api: open");
    }
    for (size_t i = 0; i < n; i++) {
        rv = api_listen(a, client_urls[i], NULL, m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "api: listen on %s", client_urls[i]);
            api_close(a);
            return rv;
        }
    }
    *out = a;
    return 0;
}
