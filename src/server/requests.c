/* The request interface of server.h: each call checks that the member is
 * still serving, then hands the request to node/ unchanged; the requests
 * etcd proposes through Raft (etcd's processInternalRaftRequest: writes,
 * compaction, lease grant and revoke, alarms) are counted as proposals for
 * /metrics on the way (metrics.c). */
#include "server/server_int.h"

int server_range(struct server *s, const struct mvcc_range_req *req,
                 bool serializable, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_range(s->node, req, serializable, arg, cb);
}

int server_put(struct server *s, const struct mvcc_put_req *req, void *arg,
               node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_put(s->node, req, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_delete_range(struct server *s, const struct mvcc_delete_req *req,
                        void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_delete_range(s->node, req, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_txn(struct server *s, const struct mvcc_txn_req *req, void *arg,
               node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_txn(s->node, req, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_compact(struct server *s, mvcc_rev rev, bool physical, void *arg,
                   node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_compact(s->node, rev, physical, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_lease_grant(struct server *s, int64_t id, int64_t ttl_s, void *arg,
                       node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_lease_grant(s->node, id, ttl_s, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_lease_revoke(struct server *s, int64_t id, void *arg,
                        node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_lease_revoke(s->node, id, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_lease_keepalive(struct server *s, int64_t id, void *arg,
                           node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_lease_keepalive(s->node, id, arg, cb);
}

int server_lease_ttl(struct server *s, int64_t id, bool keys, void *arg,
                     node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_lease_ttl(s->node, id, keys, arg, cb);
}

int server_lease_list(struct server *s, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_lease_list(s->node, arg, cb);
}

int server_member_add(struct server *s, const struct node_member *m, void *arg,
                      node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_member_add(s->node, m, arg, cb);
}

int server_member_remove(struct server *s, uint64_t id, void *arg,
                         node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_member_remove(s->node, id, arg, cb);
}

int server_member_update(struct server *s, const struct node_member *m,
                         void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_member_update(s->node, m, arg, cb);
}

int server_member_promote(struct server *s, uint64_t id, void *arg,
                          node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_member_promote(s->node, id, arg, cb);
}

int server_member_list(struct server *s, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_member_list(s->node, arg, cb);
}

int server_status(struct server *s, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_status(s->node, arg, cb);
}

int server_hash(struct server *s, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_hash(s->node, arg, cb);
}

int server_hash_kv(struct server *s, mvcc_rev rev, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_hash_kv(s->node, rev, arg, cb);
}

int server_move_leader(struct server *s, uint64_t target, void *arg,
                       node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_move_leader(s->node, target, arg, cb);
}

int server_defragment(struct server *s, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_defragment(s->node, arg, cb);
}

int server_alarm(struct server *s, uint8_t action, uint64_t member_id,
                 uint8_t type, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_alarm(s->node, action, member_id, type, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_snapshot_export(struct server *s, int fd, void *arg, node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    return node_snapshot_export(s->node, fd, arg, cb);
}
