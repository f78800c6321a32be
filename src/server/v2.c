/* The server's half of the v2 keys API: requests go to node_v2, the
 * leader proposes etcd's SYNC every 500 ms while some key has a TTL, and
 * watchers waiting on the v2 history are woken after each applied batch
 * (they then rescan: v2_history_scan). */
#include <string.h>
#include <time.h>

#include "server/server_int.h"

/* etcd's syncTicker. */
#define V2_SYNC_MS 500

struct server_v2_waiter {
    struct server_v2_waiter *next;
    void *arg;
    server_v2_wake_cb cb;
};

int server_v2(struct server *s, const struct v2_req *req, void *arg,
              node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    if (req->op == V2_OP_GET && !req->quorum)
        return node_v2(s->node, req, arg, cb); /* local: not a proposal */
    int rv = server__propose_begin(s, &arg, &cb);
    if (rv != 0)
        return rv;
    rv = node_v2(s->node, req, arg, cb);
    server__propose_end(s, arg, rv);
    return rv;
}

int server_v2_scan(struct server *s, const char *path, size_t len,
                   bool recursive, bool live, uint64_t since, struct buf *out,
                   struct v2_scan_pos *pos)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    int rc =
        v2_history_scan(s->store, path, len, recursive, live, since, out, pos);
    pos->raft_index = node_applied_index(s->node);
    return rc;
}

uint64_t server_v2_index(struct server *s)
{
    return s->store != NULL ? v2_current_index(s->store) : 0;
}

int server_v2_wait(struct server *s, void *arg, server_v2_wake_cb cb,
                   struct server_v2_waiter **out)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    struct server_v2_waiter *w = cairn_calloc(1, sizeof(*w));
    if (w == NULL)
        return CAIRN_ENOMEM;
    w->arg = arg;
    w->cb = cb;
    w->next = s->v2_waiters;
    s->v2_waiters = w;
    *out = w;
    return 0;
}

void server_v2_wait_cancel(struct server *s, struct server_v2_waiter *w)
{
    for (struct server_v2_waiter **pp = &s->v2_waiters; *pp != NULL;
         pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            cairn_free(w);
            return;
        }
}

void server__v2_applied(struct server *s)
{
    if (s->v2_waiters == NULL)
        return;
    /* a waiter scanned at an index >= the last one seen here: if the
     * index has not moved since, there is nothing new for anyone */
    uint64_t idx = v2_current_index(s->store);
    if (idx == s->v2_woken_index)
        return;
    s->v2_woken_index = idx;
    /* one-shot: a callback may wait again, on the new list */
    struct server_v2_waiter *w = s->v2_waiters;
    s->v2_waiters = NULL;
    while (w != NULL) {
        struct server_v2_waiter *next = w->next;
        w->cb(w->arg);
        cairn_free(w);
        w = next;
    }
}

void server__v2_free(struct server *s)
{
    while (s->v2_waiters != NULL) {
        struct server_v2_waiter *w = s->v2_waiters;
        s->v2_waiters = w->next;
        cairn_free(w);
    }
}

void server__v2_tick(struct server *s)
{
    uint64_t now = uv_now(s->loop);
    if (now - s->v2_sync_ms < V2_SYNC_MS)
        return;
    s->v2_sync_ms = now;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* the leader's wall clock decides expiry, for every member */
    node_v2_sync(s->node, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}
