/* sync: the blocking interface, each call run to its end on the client's
 * private loop, and the helpers built on it (leader discovery, snapshot to a
 * file). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "client/client_int.h"

struct sync_result {
    bool done;
    struct client_status st;
    ProtobufCMessage *resp;
    struct client *cl;
};

static void sync_cb(void *arg, const struct client_status *st,
                    ProtobufCMessage *resp)
{
    struct sync_result *r = arg;
    r->done = true;
    r->st = *st;
    /* the message text lives in the op, freed after this returns */
    snprintf(r->cl->last_msg, sizeof(r->cl->last_msg), "%s", st->message);
    r->st.message = r->cl->last_msg;
    r->resp = resp;
    /* a callback run from the timer phase must not leave uv_run blocked
     * in poll: a stop flag makes the poll not wait */
    uv_stop(r->cl->loop);
}

/* Runs the private loop until *flag; the calls it waits for all end (by
 * their deadline at the latest), so the bound is a guard only. */
static void run_until(struct client *cl, const bool *flag)
{
    for (long i = 0; i < 100000000 && !*flag; i++)
        uv_run(cl->loop, UV_RUN_ONCE);
    CAIRN_ASSERT(*flag);
}

int client_call_sync(struct client *cl, enum client_method m,
                     const ProtobufCMessage *req, ProtobufCMessage **resp,
                     struct client_status *st)
{
    CAIRN_ASSERT(cl->blocking);
    *resp = NULL;
    struct sync_result r = {.cl = cl};
    int rv = client_call(cl, m, req, &r, sync_cb);
    if (rv != 0) {
        if (st) {
            st->status = rv;
            st->grpc_code = RPC_UNKNOWN;
            st->message = cairn_strerror(rv);
        }
        return rv;
    }
    run_until(cl, &r.done);
    if (st)
        *st = r.st;
    *resp = r.resp;
    return r.st.status;
}

int client_put_sync(struct client *cl, const void *key, size_t key_len,
                    const void *val, size_t val_len, int64_t lease,
                    int64_t *revision)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    req.value.data = (uint8_t *)val;
    req.value.len = val_len;
    req.lease = lease;
    ProtobufCMessage *resp;
    int rv = client_call_sync(cl, CLIENT_KV_PUT, &req.base, &resp, NULL);
    if (rv != 0)
        return rv;
    Etcdserverpb__PutResponse *pr = (Etcdserverpb__PutResponse *)resp;
    if (revision)
        *revision = pr->header ? pr->header->revision : 0;
    client_msg_free(resp);
    return 0;
}

int client_get_sync(struct client *cl, const void *key, size_t key_len,
                    Etcdserverpb__RangeResponse **out)
{
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    ProtobufCMessage *resp;
    int rv = client_call_sync(cl, CLIENT_KV_RANGE, &req.base, &resp, NULL);
    *out = (Etcdserverpb__RangeResponse *)resp;
    return rv;
}

int client_delete_sync(struct client *cl, const void *key, size_t key_len,
                       int64_t *deleted)
{
    Etcdserverpb__DeleteRangeRequest req =
        ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)key;
    req.key.len = key_len;
    ProtobufCMessage *resp;
    int rv =
        client_call_sync(cl, CLIENT_KV_DELETE_RANGE, &req.base, &resp, NULL);
    if (rv != 0)
        return rv;
    if (deleted)
        *deleted = ((Etcdserverpb__DeleteRangeResponse *)resp)->deleted;
    client_msg_free(resp);
    return 0;
}

int client_leader_sync(struct client *cl, size_t *index)
{
    int last = CAIRN_ENOLEADER;
    for (size_t i = 0; i < cl->n_eps; i++) {
        client_endpoint_use(cl, i);
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        ProtobufCMessage *resp;
        int rv =
            client_call_sync(cl, CLIENT_MAINT_STATUS, &req.base, &resp, NULL);
        if (rv != 0) {
            last = rv;
            continue;
        }
        Etcdserverpb__StatusResponse *sr = (Etcdserverpb__StatusResponse *)resp;
        bool leader = sr->header && sr->leader != 0 &&
                      sr->leader == sr->header->member_id;
        client_msg_free(resp);
        if (leader) {
            /* the call may have failed over; i answered as leader only if
             * it was still the current endpoint */
            if (cl->cur == i) {
                if (index)
                    *index = i;
                return 0;
            }
        }
        last = CAIRN_ENOLEADER;
    }
    return last;
}

struct snap_ctx {
    uv_loop_t *loop;
    int fd;
    int err;
    uint64_t size;
    bool done;
    struct client_status st;
    char msg[CLIENT__MSG_MAX];
};

static void snap_message(void *arg, struct client_stream *s,
                         const ProtobufCMessage *m)
{
    struct snap_ctx *c = arg;
    const Etcdserverpb__SnapshotResponse *r =
        (const Etcdserverpb__SnapshotResponse *)m;
    if (c->err)
        return;
    size_t off = 0;
    /* bounded by the blob's length; each write makes progress or fails */
    while (off < r->blob.len) {
        ssize_t n = write(c->fd, r->blob.data + off, r->blob.len - off);
        if (n <= 0) {
            c->err = CAIRN_EIO;
            client_stream_cancel(s);
            return;
        }
        off += (size_t)n;
    }
    c->size += r->blob.len;
}

static void snap_done(void *arg, struct client_stream *s,
                      const struct client_status *st)
{
    (void)s;
    struct snap_ctx *c = arg;
    c->done = true;
    c->st = *st;
    snprintf(c->msg, sizeof(c->msg), "%s", st->message);
    c->st.message = c->msg;
    uv_stop(c->loop);
}

int client_snapshot_sync(struct client *cl, const char *path, uint64_t *size,
                         struct cairn_errmsg *msg)
{
    CAIRN_ASSERT(cl->blocking);
    char part[4096];
    snprintf(part, sizeof(part), "%s.part", path);
    struct snap_ctx c = {.loop = cl->loop,
                         .fd = open(part, O_WRONLY | O_CREAT | O_TRUNC, 0600)};
    if (c.fd < 0)
        return cairn_errmsg_code(msg, CAIRN_EIO, "client: open %s", part);
    static const struct client_stream_cbs cbs = {snap_message, snap_done};
    struct client_stream *s;
    int rv = client_stream_open(cl, CLIENT_MAINT_SNAPSHOT, &cbs, &c, &s);
    if (rv == 0) {
        Etcdserverpb__SnapshotRequest req =
            ETCDSERVERPB__SNAPSHOT_REQUEST__INIT;
        rv = client_stream_send(s, &req.base);
        client_stream_close_send(s);
        if (rv != 0)
            client_stream_cancel(s);
        run_until(cl, &c.done);
        if (rv == 0)
            rv = c.err ? c.err : c.st.status;
    }
    if (rv == 0 && fdatasync(c.fd) != 0)
        rv = CAIRN_EIO;
    close(c.fd);
    if (rv == 0 && rename(part, path) != 0)
        rv = CAIRN_EIO;
    if (rv != 0) {
        unlink(part);
        return cairn_errmsg_code(msg, rv, "client: snapshot to %s%s%s", path,
                                 c.msg[0] ? ": " : "", c.msg);
    }
    if (size)
        *size = c.size;
    return 0;
}

struct poll_ctx {
    bool fired;
};

static void poll_timer(uv_timer_t *t)
{
    ((struct poll_ctx *)t->data)->fired = true;
    uv_stop(t->loop);
}

int client_poll(struct client *cl, int64_t timeout_ms)
{
    CAIRN_ASSERT(cl->blocking);
    uint64_t before = cl->stream_events;
    uv_timer_t t;
    struct poll_ctx p = {false};
    uv_timer_init(cl->loop, &t);
    t.data = &p;
    uv_timer_start(&t, poll_timer, timeout_ms > 0 ? (uint64_t)timeout_ms : 0,
                   0);
    for (long i = 0; i < 100000000 && !p.fired && cl->stream_events == before;
         i++)
        uv_run(cl->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(cl->loop, UV_RUN_NOWAIT);
    return (int)(cl->stream_events - before);
}

int client_authenticate_sync(struct client *cl, const char *name,
                             const char *password)
{
    Etcdserverpb__AuthenticateRequest req =
        ETCDSERVERPB__AUTHENTICATE_REQUEST__INIT;
    req.name = (char *)name;
    req.password = (char *)password;
    ProtobufCMessage *resp;
    int rv =
        client_call_sync(cl, CLIENT_AUTH_AUTHENTICATE, &req.base, &resp, NULL);
    if (rv != 0)
        return rv;
    rv = client_token_set(cl,
                          ((Etcdserverpb__AuthenticateResponse *)resp)->token);
    client_msg_free(resp);
    return rv;
}
