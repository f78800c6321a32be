/* Sending a snapshot: the body read from the host's file in chunks through
 * libuv's thread pool and streamed on a connection of its own, never more
 * than two chunks ahead of the socket, then the receiver's acknowledgement
 * reported to the host. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport/transport_int.h"

static void snap_pump(struct tsnap *s);

static void snap_unref(struct tsnap *s)
{
    CAIRN_ASSERT(s->refs > 0);
    if (--s->refs > 0)
        return;
    struct transport *t = s->t;
    if (s->fd >= 0)
        close(s->fd);
    buf_free(&s->head);
    buf_free(&s->rx);
    cairn_free(s->chunk);
    cairn_free(s);
    tp__live_dec(t);
}

/* The outcome, once: to the host, and the peer's slot freed. */
static void snap_report(struct tsnap *s, int status)
{
    if (s->reported)
        return;
    s->reported = true;
    struct transport *t = s->t;
    struct tpeer *p = s->peer;
    if (p != NULL) {
        p->snap = NULL;
        if (status == 0)
            p->st.snapshots_sent++;
        else
            p->st.snapshots_failed++;
        s->peer = NULL;
    }
    if (status == 0)
        cairn_infof(t->cfg.log, TP_COMPONENT,
                    "sent snapshot at index %llu to peer %016llx (%llu "
                    "bytes)",
                    (unsigned long long)s->index, (unsigned long long)s->to,
                    (unsigned long long)s->size);
    else
        cairn_warnf(t->cfg.log, TP_COMPONENT,
                    "snapshot at index %llu to peer %016llx failed: %s",
                    (unsigned long long)s->index, (unsigned long long)s->to,
                    cairn_strerror(status));
    if (!t->closing && t->cbs->snapshot_status != NULL)
        t->cbs->snapshot_status(t->arg, s->to, s->index, status);
    snap_unref(s); /* the peer's reference */
}

void tp__snap_cancel(struct tsnap *s, int status)
{
    struct net_conn *c = s->conn;
    snap_report(s, status);
    if (c != NULL)
        net_conn_close(c, false);
}

static void snap_read(void *arg, struct net_conn *c, const uint8_t *data,
                      size_t len)
{
    struct tsnap *s = arg;
    struct transport *t = s->t;
    if (s->reported)
        return;
    s->stall_sweeps = 0;
    if (buf_append(&s->rx, data, len) != 0) {
        tp__snap_cancel(s, CAIRN_ENOMEM);
        return;
    }
    size_t off = 0;
    if (!s->answered) {
        if (s->rx.len < TP_ANSWER_BYTES)
            return;
        uint8_t code;
        raft_id who;
        if (tp__answer_decode(s->rx.data, &code, &who) != 0 || who != s->to) {
            tp__snap_cancel(s, CAIRN_EPROTOCOL);
            return;
        }
        if (code != TP_ANSWER_OK) {
            cairn_warnf(t->cfg.log, TP_COMPONENT,
                        "peer %016llx refused our snapshot connection: %s",
                        (unsigned long long)s->to, tp__answer_text(code));
            tp__snap_cancel(s, code == TP_ANSWER_REMOVED ? CAIRN_EREMOVED
                                                         : CAIRN_EPROTOCOL);
            return;
        }
        off = TP_ANSWER_BYTES;
        s->answered = true;
        if (net_conn_write(c, s->head.data, s->head.len) != 0) {
            tp__snap_cancel(s, CAIRN_EIO);
            return;
        }
        if (s->peer != NULL)
            s->peer->st.bytes_sent += s->head.len;
        buf_free(&s->head);
        snap_pump(s);
        if (s->reported)
            return;
    }
    uint8_t type;
    const uint8_t *pl;
    size_t n, total;
    int rv = tp__frame_parse(s->rx.data + off, s->rx.len - off, 64, &type, &pl,
                             &n, &total);
    if (rv == 0) {
        buf_consume(&s->rx, off);
        return;
    }
    if (rv < 0 || type != TP_FRAME_SNAP_ACK || n != 4) {
        tp__snap_cancel(s, CAIRN_EPROTOCOL);
        return;
    }
    int status = (int32_t)codec_get_u32(pl);
    if (status > 0 || status < -(CAIRN__ERR_COUNT - 1))
        status = CAIRN_EPROTOCOL;
    if (status == 0 && !s->ended)
        status = CAIRN_EPROTOCOL; /* acknowledged what we never finished */
    tp__snap_cancel(s, status);
}

static void snap_drain(void *arg, struct net_conn *c)
{
    (void)c;
    struct tsnap *s = arg;
    s->stall_sweeps = 0;
    snap_pump(s);
}

void tp__snap_sweep(struct tsnap *s)
{
    if (s->reported || s->reading)
        return;
    if (++s->stall_sweeps <= s->t->snap_stall_sweeps)
        return;
    tp__snap_cancel(s, CAIRN_ETIMEOUT);
}

static void snap_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    struct tsnap *s = arg;
    s->conn = NULL;
    snap_report(s,
                status == 0 || status == CAIRN_ECANCELED ? CAIRN_EIO : status);
    snap_unref(s);
}

static const struct net_conn_cbs snap_cbs = {snap_read, snap_drain,
                                             snap_closed};

static void on_snap_fs_read(uv_fs_t *req)
{
    struct tsnap *s = req->data;
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    s->reading = false;
    if (s->reported || s->conn == NULL) {
        snap_unref(s);
        return;
    }
    if (n <= 0) {
        cairn_errorf(s->t->cfg.log, TP_COMPONENT,
                     "snapshot to peer %016llx: read body at %llu: %s",
                     (unsigned long long)s->to, (unsigned long long)s->sent,
                     n < 0 ? uv_strerror((int)n) : "file shrank");
        tp__snap_cancel(s, CAIRN_EIO);
        snap_unref(s);
        return;
    }
    uint8_t *payload = s->chunk + TP_FRAME_HEADER_BYTES;
    s->crc = crc32c(s->crc, payload, (size_t)n);
    tp__frame_header(s->chunk, TP_FRAME_SNAP_CHUNK, payload, (size_t)n);
    size_t total = TP_FRAME_HEADER_BYTES + (size_t)n;
    if (net_conn_write(s->conn, s->chunk, total) != 0) {
        tp__snap_cancel(s, CAIRN_EIO);
        snap_unref(s);
        return;
    }
    s->sent += (uint64_t)n;
    s->stall_sweeps = 0;
    if (s->peer != NULL)
        s->peer->st.bytes_sent += total;
    snap_pump(s);
    snap_unref(s);
}

/* Keeps at most two chunks queued on the socket: the drain callback calls
 * this again, so a slow receiver slows the file reads down. */
static void snap_pump(struct tsnap *s)
{
    struct transport *t = s->t;
    if (s->reported || s->conn == NULL || !s->answered || s->reading ||
        s->ended)
        return;
    if (s->sent == s->size) {
        uint8_t crc[4];
        codec_put_u32(crc, s->crc);
        struct buf b = BUF_INIT;
        int rv = tp__frame_append(&b, TP_FRAME_SNAP_END, crc, sizeof(crc));
        if (rv == 0)
            rv = net_conn_write(s->conn, b.data, b.len);
        buf_free(&b);
        if (rv != 0) {
            tp__snap_cancel(s, rv);
            return;
        }
        s->ended = true;
        return;
    }
    if (net_conn_queued_bytes(s->conn) >= 2 * t->cfg.snap_chunk_bytes)
        return;
    uint64_t left = s->size - s->sent;
    size_t n =
        left < t->cfg.snap_chunk_bytes ? (size_t)left : t->cfg.snap_chunk_bytes;
    uv_buf_t b =
        uv_buf_init((char *)s->chunk + TP_FRAME_HEADER_BYTES, (unsigned)n);
    s->req.data = s;
    if (uv_fs_read(t->loop, &s->req, s->fd, &b, 1, (int64_t)s->sent,
                   on_snap_fs_read) != 0) {
        tp__snap_cancel(s, CAIRN_EIO);
        return;
    }
    s->reading = true;
    s->refs++;
}

static void on_snap_dial(void *arg, int status, struct net_conn *conn)
{
    struct tdial *d = arg;
    struct tsnap *s = d->snap;
    struct transport *t = d->t;
    cairn_free(d);
    s->dial = NULL;
    if (s->reported) {
        if (conn != NULL)
            net_conn_close(conn, false);
    } else if (status != 0) {
        snap_report(s, status);
    } else {
        s->conn = conn;
        s->refs++;
        net_conn_start(conn, &snap_cbs, s);
        uint8_t hs[TP_HANDSHAKE_BYTES];
        struct tp_handshake h = {TRANSPORT_PROTOCOL_VERSION, TP_KIND_SNAPSHOT,
                                 t->cfg.cluster_id, t->cfg.self_id, s->to};
        tp__handshake_encode(hs, &h);
        if (net_conn_write(conn, hs, sizeof(hs)) != 0)
            tp__snap_cancel(s, CAIRN_EIO);
    }
    snap_unref(s); /* the dial's reference */
    tp__live_dec(t);
}

int transport_send_snapshot(struct transport *t, const struct raft_message *m,
                            const char *body_path, struct cairn_errmsg *msg)
{
    CAIRN_ASSERT(!t->closing);
    if (m->type != RAFT_MSG_SNAP || m->snapshot == NULL)
        return CAIRN_EINVAL;
    struct tpeer *p = tp__peer_find(t, m->to);
    if (p == NULL)
        return CAIRN_ENOTFOUND;
    if (p->snap != NULL)
        return CAIRN_EBUSY;
    int rv;
    struct tsnap *s = cairn_calloc(1, sizeof(*s));
    if (s == NULL)
        return CAIRN_ENOMEM;
    s->t = t;
    s->to = m->to;
    s->index = m->snapshot->meta.index;
    s->fd = open(body_path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) {
        rv = cairn_err_from_errno(errno);
        if (errno == ENOENT)
            rv = CAIRN_ENOTFOUND;
        if (msg != NULL)
            cairn_errmsg_setf(msg, "transport: open snapshot body %s: %s",
                              body_path, strerror(errno));
        goto err_after_alloc;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        rv = cairn_err_from_errno(errno);
        if (msg != NULL)
            cairn_errmsg_setf(msg, "transport: stat snapshot body %s: %s",
                              body_path, strerror(errno));
        goto err_after_open;
    }
    s->size = (uint64_t)st.st_size;
    rv = tp__frame_append_msg(&s->head, TP_FRAME_SNAP_HEAD, &s->size, m,
                              t->cfg.frame_bytes_max);
    if (rv != 0)
        goto err_after_open;
    s->chunk = cairn_malloc(TP_FRAME_HEADER_BYTES + t->cfg.snap_chunk_bytes);
    if (s->chunk == NULL) {
        rv = CAIRN_ENOMEM;
        goto err_after_head;
    }
    struct tdial *d = cairn_calloc(1, sizeof(*d));
    if (d == NULL) {
        rv = CAIRN_ENOMEM;
        goto err_after_chunk;
    }
    d->t = t;
    d->snap = s;
    rv = net_connect(t->loop, &p->urls[p->url_next], &t->out_cfg, d,
                     on_snap_dial);
    if (rv != 0) {
        if (msg != NULL)
            cairn_errmsg_setf(msg, "transport: dial peer %016llx: %s",
                              (unsigned long long)p->id, cairn_strerror(rv));
        cairn_free(d);
        goto err_after_chunk;
    }
    s->dial = d;
    s->refs = 2; /* the peer's pointer and the dial */
    s->peer = p;
    p->snap = s;
    tp__live_inc(t); /* the snapshot */
    tp__live_inc(t); /* the dial */
    return 0;

err_after_chunk:
    cairn_free(s->chunk);
err_after_head:
    buf_free(&s->head);
err_after_open:
    close(s->fd);
err_after_alloc:
    cairn_free(s);
    return rv;
}
