/* server_backend: the API over a running member: the backend table that
 * calls server.h's request interface, and api_serve for the `cairn`
 * binary. Kept apart from the services so that tests over a fake member
 * link without the server. */
#include "api/api.h"

static int b_range(void *arg, const struct mvcc_range_req *req,
                   bool serializable, void *ctx, node_done_cb cb)
{
    return server_range(arg, req, serializable, ctx, cb);
}
static int b_put(void *arg, const struct mvcc_put_req *req, void *ctx,
                 node_done_cb cb)
{
    return server_put(arg, req, ctx, cb);
}
static int b_delete_range(void *arg, const struct mvcc_delete_req *req,
                          void *ctx, node_done_cb cb)
{
    return server_delete_range(arg, req, ctx, cb);
}
static int b_txn(void *arg, const struct mvcc_txn_req *req, void *ctx,
                 node_done_cb cb)
{
    return server_txn(arg, req, ctx, cb);
}
static int b_compact(void *arg, mvcc_rev rev, bool physical, void *ctx,
                     node_done_cb cb)
{
    return server_compact(arg, rev, physical, ctx, cb);
}
static int b_status(void *arg, void *ctx, node_done_cb cb)
{
    return server_status(arg, ctx, cb);
}
static int b_alarm(void *arg, uint8_t action, uint64_t member_id, uint8_t type,
                   void *ctx, node_done_cb cb)
{
    return server_alarm(arg, action, member_id, type, ctx, cb);
}

static int b_hash(void *arg, void *ctx, node_done_cb cb)
{
    return server_hash(arg, ctx, cb);
}
static int b_hash_kv(void *arg, mvcc_rev rev, void *ctx, node_done_cb cb)
{
    return server_hash_kv(arg, rev, ctx, cb);
}
static int b_move_leader(void *arg, uint64_t target, void *ctx, node_done_cb cb)
{
    return server_move_leader(arg, target, ctx, cb);
}
static int b_defragment(void *arg, void *ctx, node_done_cb cb)
{
    return server_defragment(arg, ctx, cb);
}
static int b_snapshot_export(void *arg, int fd, void *ctx, node_done_cb cb)
{
    return server_snapshot_export(arg, fd, ctx, cb);
}
static int b_lease_grant(void *arg, int64_t id, int64_t ttl_s, void *ctx,
                         node_done_cb cb)
{
    return server_lease_grant(arg, id, ttl_s, ctx, cb);
}
static int b_lease_revoke(void *arg, int64_t id, void *ctx, node_done_cb cb)
{
    return server_lease_revoke(arg, id, ctx, cb);
}
static int b_lease_keepalive(void *arg, int64_t id, void *ctx, node_done_cb cb)
{
    return server_lease_keepalive(arg, id, ctx, cb);
}
static int b_lease_ttl(void *arg, int64_t id, bool keys, void *ctx,
                       node_done_cb cb)
{
    return server_lease_ttl(arg, id, keys, ctx, cb);
}
static int b_lease_list(void *arg, void *ctx, node_done_cb cb)
{
    return server_lease_list(arg, ctx, cb);
}
static int b_member_add(void *arg, const struct node_member *m, void *ctx,
                        node_done_cb cb)
{
    return server_member_add(arg, m, ctx, cb);
}
static int b_member_remove(void *arg, uint64_t id, void *ctx, node_done_cb cb)
{
    return server_member_remove(arg, id, ctx, cb);
}
static int b_member_update(void *arg, const struct node_member *m, void *ctx,
                           node_done_cb cb)
{
    return server_member_update(arg, m, ctx, cb);
}
static int b_member_promote(void *arg, uint64_t id, void *ctx, node_done_cb cb)
{
    return server_member_promote(arg, id, ctx, cb);
}
static int b_member_list(void *arg, void *ctx, node_done_cb cb)
{
    return server_member_list(arg, ctx, cb);
}

/* Watch: the server's hubs (server.h), one per Watch stream. */
static int b_watch_open(void *arg, void *ctx, mvcc_watch_cb cb, void **hub)
{
    struct server_watch *w;
    int rc = server_watch_open(arg, ctx, cb, &w);
    if (rc == 0)
        *hub = w;
    return rc;
}
static void b_watch_close(void *arg, void *hub)
{
    server_watch_close(arg, hub);
}
static int b_watch_create(void *arg, void *hub,
                          const struct mvcc_watch_req *req, int64_t *id)
{
    return server_watch_create(arg, hub, req, id);
}
static int b_watch_cancel(void *arg, void *hub, int64_t id)
{
    return server_watch_cancel(arg, hub, id);
}
static int b_watch_progress(void *arg, void *hub, int64_t id)
{
    return server_watch_progress(arg, hub, id);
}
static int b_watch_resume(void *arg, void *hub, int64_t id)
{
    return server_watch_resume(arg, hub, id);
}
static void b_watch_header(void *arg, struct api_header *h)
{
    server_watch_header(arg, &h->cluster_id, &h->member_id, &h->revision,
                        &h->raft_term);
}

struct api_backend api_backend_server(struct server *s)
{
    return (struct api_backend){
        .arg = s,
        .range = b_range,
        .put = b_put,
        .delete_range = b_delete_range,
        .txn = b_txn,
        .compact = b_compact,
        .status = b_status,
        .alarm = b_alarm,
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
        /* the server keeps no proposal counters yet */
        .metrics = NULL,
    };
}

int api_serve(uv_loop_t *loop, struct server *s, struct cairn_log *log,
              const char *const *client_urls, size_t n, struct api **out,
              struct cairn_errmsg *m)
{
    struct api_backend be = api_backend_server(s);
    struct api_config cfg = {
        .max_txn_ops = server_max_txn_ops(s),
        .max_request_bytes = (size_t)server_max_request_bytes(s),
        .rpc = {.max_concurrent_streams = server_max_concurrent_streams(s)},
    };
    struct api *a;
    int rv = api_open(loop, &be, &cfg, log, &a);
    if (rv != 0)
        return cairn_errmsg_code(m, rv, "api: open");
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
