/* Connections peers dialled to us: the handshake check and its refusals,
 * message frames delivered to the host, probes answered, and snapshot
 * bodies written to a file, fsynced and handed over. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "transport/transport_int.h"

enum tin_stage {
    TIN_STAGE_NONE = 0,
    TIN_STAGE_WRITE,
    TIN_STAGE_FSYNC,
    TIN_STAGE_DIRSYNC,
};

static void in_process(struct tin *in);

static void in_unref(struct tin *in)
{
    CAIRN_ASSERT(in->refs > 0);
    if (--in->refs > 0)
        return;
    struct transport *t = in->t;
    if (in->fd >= 0)
        close(in->fd);
    if (in->snap_started && !in->snap_done) {
        unlink(in->part_path);
        if (in->final_path[0] != '\0')
            unlink(in->final_path);
    }
    if (in->prev != NULL)
        in->prev->next = in->next;
    else
        t->ins = in->next;
    if (in->next != NULL)
        in->next->prev = in->prev;
    t->n_ins--;
    buf_free(&in->rx);
    buf_free(&in->head);
    buf_free(&in->wbuf);
    cairn_free(in);
    tp__live_dec(t);
}

static void in_stop(struct tin *in, bool flush)
{
    in->state = TIN_REFUSED;
    in->waiting = false;
    if (in->conn != NULL)
        net_conn_close(in->conn, flush);
}

static void in_malformed(struct tin *in, const char *what)
{
    struct transport *t = in->t;
    t->st.inbound_malformed++;
    if (in->state == TIN_SNAPSHOT && in->snap_started && !in->snap_done)
        t->st.snapshots_receive_failed++;
    cairn_warnf(t->cfg.log, TP_COMPONENT,
                "closing peer connection from %s (member %016llx): "
                "malformed %s",
                in->conn ? net_conn_peer(in->conn) : "?",
                (unsigned long long)in->from, what);
    in_stop(in, false);
}

/* Logged once per sender and reason: a refused member redials forever. */
static void log_refusal(struct tin *in, const struct tp_handshake *hs,
                        uint8_t code)
{
    struct transport *t = in->t;
    size_t n = t->n_refusals < TP_REFUSALS_LOGGED_MAX ? t->n_refusals
                                                      : TP_REFUSALS_LOGGED_MAX;
    for (size_t i = 0; i < n; i++)
        if (t->refusals[i].from == hs->from && t->refusals[i].code == code)
            return;
    size_t slot = t->n_refusals++ % TP_REFUSALS_LOGGED_MAX;
    t->refusals[slot].from = hs->from;
    t->refusals[slot].code = code;
    cairn_warnf(t->cfg.log, TP_COMPONENT,
                "refused peer connection from %s: %s (version %u, cluster "
                "%016llx, sender %016llx, receiver %016llx)",
                in->conn ? net_conn_peer(in->conn) : "?", tp__answer_text(code),
                hs->version, (unsigned long long)hs->cluster_id,
                (unsigned long long)hs->from, (unsigned long long)hs->to);
}

static void in_handshake(struct tin *in, const uint8_t *p)
{
    struct transport *t = in->t;
    struct tp_handshake hs;
    if (tp__handshake_decode(p, &hs) != 0) {
        in_malformed(in, "handshake");
        return;
    }
    uint8_t code = TP_ANSWER_OK;
    if (hs.version != TRANSPORT_PROTOCOL_VERSION)
        code = TP_ANSWER_VERSION;
    else if (hs.cluster_id != t->cfg.cluster_id)
        code = TP_ANSWER_CLUSTER;
    else if (hs.to != t->cfg.self_id)
        code = TP_ANSWER_RECEIVER;
    else if (tp__is_removed(t, hs.from))
        code = TP_ANSWER_REMOVED;
    else if (tp__peer_find(t, hs.from) == NULL)
        code = TP_ANSWER_UNKNOWN;
    else if (hs.kind != TP_KIND_MESSAGES && hs.kind != TP_KIND_SNAPSHOT)
        code = TP_ANSWER_KIND;
    uint8_t ans[TP_ANSWER_BYTES];
    tp__answer_encode(ans, code, t->cfg.self_id);
    int rv = net_conn_write(in->conn, ans, sizeof(ans));
    in->from = hs.from;
    if (code != TP_ANSWER_OK) {
        t->st.inbound_refused++;
        log_refusal(in, &hs, code);
        in_stop(in, true);
        return;
    }
    if (rv != 0) {
        in_stop(in, false);
        return;
    }
    t->st.inbound_accepted++;
    in->state = hs.kind == TP_KIND_MESSAGES ? TIN_MESSAGES : TIN_SNAPSHOT;
    cairn_debugf(t->cfg.log, TP_COMPONENT,
                 "accepted %s connection from peer %016llx (%s)",
                 hs.kind == TP_KIND_MESSAGES ? "message" : "snapshot",
                 (unsigned long long)hs.from, net_conn_peer(in->conn));
}

static void in_count(struct tin *in, size_t bytes, bool msg)
{
    struct tpeer *p = tp__peer_find(in->t, in->from);
    if (p == NULL)
        return;
    p->st.bytes_received += bytes;
    if (msg)
        p->st.msgs_received++;
}

static void in_message(struct tin *in, const uint8_t *pl, size_t len,
                       size_t total)
{
    struct transport *t = in->t;
    struct raft_message m;
    int rv = raft_message_decode(pl, len, &m);
    if (rv == CAIRN_ENOMEM) {
        in_stop(in, false); /* the sender's next connection retries */
        return;
    }
    if (rv != 0) {
        in_malformed(in, "raft message");
        return;
    }
    if (m.from != in->from || m.to != t->cfg.self_id ||
        m.type == RAFT_MSG_SNAP) {
        raft_message_decoded_free(&m);
        in_malformed(in, "raft message (sender, receiver or type)");
        return;
    }
    in_count(in, total, true);
    if (!t->closing && t->cbs->receive != NULL)
        t->cbs->receive(t->arg, &m);
    raft_message_decoded_free(&m);
}

/* ---- snapshot reception ---- */

/* Sends the receiver's verdict; a verdict that cannot be sent closes the
 * connection, so the sender hears a failure rather than waiting for it. */
static void in_ack(struct tin *in, int status)
{
    uint8_t st[4];
    codec_put_u32(st, (uint32_t)(int32_t)status);
    struct buf b = BUF_INIT;
    int rv = tp__frame_append(&b, TP_FRAME_SNAP_ACK, st, sizeof(st));
    if (rv == 0 && in->conn != NULL)
        rv = net_conn_write(in->conn, b.data, b.len);
    buf_free(&b);
    if (rv != 0)
        in_stop(in, false);
}

static void in_snap_fail(struct tin *in, int status, const char *what)
{
    struct transport *t = in->t;
    t->st.snapshots_receive_failed++;
    cairn_errorf(t->cfg.log, TP_COMPONENT,
                 "snapshot from peer %016llx failed: %s: %s",
                 (unsigned long long)in->from, what, cairn_strerror(status));
    in_ack(in, status);
    in_stop(in, true);
}

static void on_in_fs(uv_fs_t *req);

static void in_fs_start(struct tin *in, int stage)
{
    in->stage = stage;
    in->waiting = true;
    in->refs++;
    in->req.data = in;
    int rv;
    if (stage == TIN_STAGE_WRITE) {
        uv_buf_t b = uv_buf_init((char *)in->wbuf.data, (unsigned)in->wbuf.len);
        rv = uv_fs_write(in->t->loop, &in->req, in->fd, &b, 1,
                         (int64_t)in->body_got, on_in_fs);
    } else {
        rv = uv_fs_fsync(in->t->loop, &in->req, in->fd, on_in_fs);
    }
    if (rv != 0) {
        in->refs--;
        in->waiting = false;
        in_snap_fail(in, CAIRN_EIO, "start file request");
        return;
    }
    if (in->conn != NULL)
        net_conn_read_pause(in->conn, true);
}

static void in_snap_deliver(struct tin *in)
{
    struct transport *t = in->t;
    struct raft_message m;
    /* Decoded when it arrived: cannot fail now but for memory. */
    if (raft_message_decode(in->head.data, in->head.len, &m) != 0) {
        in_snap_fail(in, CAIRN_ENOMEM, "decode");
        return;
    }
    in->snap_done = true;
    t->st.snapshots_received++;
    cairn_infof(t->cfg.log, TP_COMPONENT,
                "received snapshot at index %llu from peer %016llx "
                "(%llu bytes): %s",
                (unsigned long long)m.snapshot->meta.index,
                (unsigned long long)in->from,
                (unsigned long long)in->body_bytes, in->final_path);
    if (!t->closing && t->cbs->snapshot != NULL)
        t->cbs->snapshot(t->arg, &m, in->final_path);
    raft_message_decoded_free(&m);
    in_ack(in, 0);
}

static void on_in_fs(uv_fs_t *req)
{
    struct tin *in = req->data;
    ssize_t result = req->result;
    uv_fs_req_cleanup(req);
    in->waiting = false;
    in->silent_sweeps = 0; /* the disk's progress counts too */
    if (in->conn == NULL || in->state == TIN_REFUSED) {
        in_unref(in);
        return;
    }
    switch (in->stage) {
    case TIN_STAGE_WRITE:
        if (result < 0) {
            in_snap_fail(in, cairn_err_from_errno((int)-result), "write");
            break;
        }
        in->body_got += (uint64_t)result;
        if ((size_t)result < in->wbuf.len) {
            buf_consume(&in->wbuf, (size_t)result);
            in->refs--; /* in_fs_start takes it again */
            in_fs_start(in, TIN_STAGE_WRITE);
            in->refs++;
            break;
        }
        break;
    case TIN_STAGE_FSYNC: {
        if (result < 0) {
            in_snap_fail(in, CAIRN_ESYNC, "fsync");
            break;
        }
        close(in->fd);
        in->fd = -1;
        if (rename(in->part_path, in->final_path) != 0) {
            in->final_path[0] = '\0';
            in_snap_fail(in, cairn_err_from_errno(errno), "rename");
            break;
        }
        in->fd = open(in->t->snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (in->fd < 0) {
            in_snap_fail(in, cairn_err_from_errno(errno), "open directory");
            break;
        }
        in->refs--;
        in_fs_start(in, TIN_STAGE_DIRSYNC);
        in->refs++;
        break;
    }
    case TIN_STAGE_DIRSYNC:
        close(in->fd);
        in->fd = -1;
        if (result < 0) {
            in_snap_fail(in, CAIRN_ESYNC, "fsync directory");
            break;
        }
        in_snap_deliver(in);
        break;
    default:
        CAIRN_UNREACHABLE();
    }
    if (!in->waiting && in->state != TIN_REFUSED && in->conn != NULL) {
        in_process(in);
        if (!in->waiting && in->conn != NULL)
            net_conn_read_pause(in->conn, false);
    }
    in_unref(in);
}

static void in_snap_head(struct tin *in, const uint8_t *pl, size_t len)
{
    struct transport *t = in->t;
    if (in->snap_started || len < 8) {
        in_malformed(in, "snapshot head");
        return;
    }
    in->body_bytes = codec_get_u64(pl);
    buf_reset(&in->head);
    if (buf_append(&in->head, pl + 8, len - 8) != 0) {
        in_snap_fail(in, CAIRN_ENOMEM, "head");
        return;
    }
    struct raft_message m;
    int rv = raft_message_decode(in->head.data, in->head.len, &m);
    if (rv == CAIRN_ENOMEM) {
        in_snap_fail(in, rv, "decode head");
        return;
    }
    if (rv != 0) {
        in_malformed(in, "snapshot message");
        return;
    }
    bool ok = m.type == RAFT_MSG_SNAP && m.snapshot != NULL &&
              m.from == in->from && m.to == t->cfg.self_id;
    raft_index index = ok ? m.snapshot->meta.index : 0;
    raft_message_decoded_free(&m);
    if (!ok) {
        in_malformed(in, "snapshot message (type, sender or receiver)");
        return;
    }
    uint64_t seq = t->snap_seq++;
    snprintf(in->part_path, sizeof(in->part_path),
             "%s/snap-%016llx-%016llx-%llu.part", t->snap_dir,
             (unsigned long long)in->from, (unsigned long long)index,
             (unsigned long long)seq);
    snprintf(in->final_path, sizeof(in->final_path),
             "%s/snap-%016llx-%016llx-%llu.body", t->snap_dir,
             (unsigned long long)in->from, (unsigned long long)index,
             (unsigned long long)seq);
    in->fd =
        open(in->part_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in->fd < 0) {
        in_snap_fail(in, cairn_err_from_errno(errno), "create body file");
        return;
    }
    in->snap_started = true;
    in->body_got = 0;
    in->body_crc = 0;
}

static void in_snap_frame(struct tin *in, uint8_t type, const uint8_t *pl,
                          size_t len)
{
    if (in->snap_done) {
        in_malformed(in, "frame after the snapshot");
        return;
    }
    switch (type) {
    case TP_FRAME_SNAP_HEAD:
        in_snap_head(in, pl, len);
        return;
    case TP_FRAME_SNAP_CHUNK:
        /* body_got counts what is on disk; the frames behind a write wait
         * for it, so it is also what arrived. */
        if (!in->snap_started || len > in->body_bytes - in->body_got) {
            in_malformed(in, "snapshot chunk");
            return;
        }
        if (len == 0)
            return;
        in->body_crc = crc32c(in->body_crc, pl, len);
        buf_reset(&in->wbuf);
        if (buf_append(&in->wbuf, pl, len) != 0) {
            in_snap_fail(in, CAIRN_ENOMEM, "chunk");
            return;
        }
        in_fs_start(in, TIN_STAGE_WRITE);
        return;
    case TP_FRAME_SNAP_END:
        if (!in->snap_started || len != 4) {
            in_malformed(in, "snapshot end");
            return;
        }
        if (in->body_got != in->body_bytes ||
            codec_get_u32(pl) != in->body_crc) {
            in_snap_fail(in, CAIRN_ECORRUPT, "body size or checksum");
            return;
        }
        in_fs_start(in, TIN_STAGE_FSYNC);
        return;
    default:
        in_malformed(in, "frame type on a snapshot connection");
        return;
    }
}

/* Handles every whole frame in rx, stopping while a file request is in
 * flight (the frames behind it wait, and reading is paused). */
static void in_process(struct tin *in)
{
    struct transport *t = in->t;
    while (in->conn != NULL && !in->waiting && in->state != TIN_REFUSED) {
        const uint8_t *p = in->rx.data + in->rx_off;
        size_t avail = in->rx.len - in->rx_off;
        if (in->state == TIN_HANDSHAKE) {
            if (avail < TP_HANDSHAKE_BYTES)
                break;
            in->rx_off += TP_HANDSHAKE_BYTES;
            in_handshake(in, p);
            continue;
        }
        uint8_t type;
        const uint8_t *pl;
        size_t len, total;
        int rv = tp__frame_parse(p, avail, t->cfg.frame_bytes_max, &type, &pl,
                                 &len, &total);
        if (rv == 0)
            break;
        if (rv < 0) {
            in_malformed(in, "frame");
            break;
        }
        in->rx_off += total;
        if (in->state == TIN_SNAPSHOT) {
            in_count(in, total, false);
            in_snap_frame(in, type, pl, len);
            continue;
        }
        switch (type) {
        case TP_FRAME_MSG:
            in_message(in, pl, len, total);
            break;
        case TP_FRAME_PING: {
            struct buf b = BUF_INIT;
            if (len == 8 && tp__frame_append(&b, TP_FRAME_PONG, pl, len) == 0)
                (void)net_conn_write(in->conn, b.data, b.len);
            buf_free(&b);
            if (len != 8)
                in_malformed(in, "probe");
            break;
        }
        default:
            in_malformed(in, "frame type on a message connection");
            break;
        }
    }
    if (in->rx_off > 0) {
        buf_consume(&in->rx, in->rx_off);
        in->rx_off = 0;
    }
}

static void in_read(void *arg, struct net_conn *c, const uint8_t *data,
                    size_t len)
{
    struct tin *in = arg;
    (void)c;
    if (in->state == TIN_REFUSED)
        return;
    in->silent_sweeps = 0;
    if (buf_append(&in->rx, data, len) != 0) {
        in_stop(in, false);
        return;
    }
    if (!in->waiting)
        in_process(in);
}

static void in_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    (void)status;
    struct tin *in = arg;
    struct transport *t = in->t;
    if (in->state == TIN_SNAPSHOT && in->snap_started && !in->snap_done) {
        t->st.snapshots_receive_failed++;
        cairn_warnf(t->cfg.log, TP_COMPONENT,
                    "snapshot from peer %016llx cut off after %llu of %llu "
                    "bytes",
                    (unsigned long long)in->from,
                    (unsigned long long)in->body_got,
                    (unsigned long long)in->body_bytes);
    }
    in->conn = NULL;
    in->state = TIN_REFUSED;
    in_unref(in);
}

static const struct net_conn_cbs in_cbs = {in_read, NULL, in_closed};

void transport_adopt(struct transport *t, struct net_conn *conn)
{
    if (t->closing || t->n_ins >= TP_INBOUND_MAX) {
        cairn_warnf(t->cfg.log, TP_COMPONENT,
                    "refusing peer connection from %s: %s", net_conn_peer(conn),
                    t->closing ? "closing" : "too many connections");
        net_conn_close(conn, false);
        return;
    }
    struct tin *in = cairn_calloc(1, sizeof(*in));
    if (in == NULL) {
        net_conn_close(conn, false);
        return;
    }
    in->t = t;
    in->conn = conn;
    in->refs = 1;
    in->fd = -1;
    in->next = t->ins;
    if (t->ins != NULL)
        t->ins->prev = in;
    t->ins = in;
    t->n_ins++;
    tp__live_inc(t);
    net_conn_start(conn, &in_cbs, in);
}

void tp__in_close_from(struct transport *t, raft_id from)
{
    for (struct tin *in = t->ins; in != NULL; in = in->next)
        if (in->from == from && in->conn != NULL && in->state != TIN_HANDSHAKE)
            in_stop(in, false);
}

void tp__in_close_all(struct transport *t)
{
    for (struct tin *in = t->ins; in != NULL; in = in->next)
        if (in->conn != NULL)
            in_stop(in, false);
}

void tp__in_sweep(struct transport *t)
{
    for (struct tin *in = t->ins; in != NULL; in = in->next) {
        if (in->conn == NULL || in->waiting || in->state == TIN_REFUSED)
            continue;
        /* Sweeps, not time: a stalled loop is not a silent peer. */
        unsigned limit =
            in->state == TIN_SNAPSHOT ? t->snap_stall_sweeps : TP_DEAD_PROBES;
        if (++in->silent_sweeps <= limit)
            continue;
        cairn_warnf(t->cfg.log, TP_COMPONENT,
                    "closing peer connection from %s (member %016llx): "
                    "silent for %u probe intervals",
                    net_conn_peer(in->conn), (unsigned long long)in->from,
                    in->silent_sweeps);
        if (in->state == TIN_SNAPSHOT && in->snap_started && !in->snap_done)
            t->st.snapshots_receive_failed++;
        in_stop(in, false);
    }
}
