/* The transport handle and our side of each peer: the peer table, the
 * per-peer send queue and its batched writes, the dialled message
 * connection with its handshake, reconnect backoff and round-trip probes. */
#include <string.h>

#include "transport/transport_int.h"

static void peer_dial(struct tpeer *p);
static void peer_flush(struct tpeer *p);
static void peer_on_timer(uv_timer_t *h);

/* ---- bookkeeping ---- */

void tp__live_inc(struct transport *t)
{
    t->live++;
}

void tp__live_dec(struct transport *t)
{
    CAIRN_ASSERT(t->live > 0);
    t->live--;
    if (t->live > 0 || !t->closing)
        return;
    if (t->close_cb != NULL)
        t->close_cb(t->close_arg);
    cairn_free(t->snap_dir);
    cairn_free(t);
}

struct tpeer *tp__peer_find(const struct transport *t, raft_id id)
{
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i]->id == id)
            return t->peers[i];
    return NULL;
}

bool tp__is_removed(const struct transport *t, raft_id id)
{
    size_t n = t->n_removed < TP_REMOVED_MAX ? t->n_removed : TP_REMOVED_MAX;
    for (size_t i = 0; i < n; i++)
        if (t->removed[i] == id)
            return true;
    return false;
}

static void removed_forget(struct transport *t, raft_id id)
{
    size_t n = t->n_removed < TP_REMOVED_MAX ? t->n_removed : TP_REMOVED_MAX;
    for (size_t i = 0; i < n; i++)
        if (t->removed[i] == id)
            t->removed[i] = RAFT_NONE;
}

void tp__report_unreachable(struct tpeer *p)
{
    struct transport *t = p->t;
    if (p->unreachable_reported || p->removed || t->closing)
        return;
    p->unreachable_reported = true;
    p->st.unreachable_reports++;
    if (t->cbs->unreachable != NULL)
        t->cbs->unreachable(t->arg, p->id);
}

static void peer_unref(struct tpeer *p)
{
    CAIRN_ASSERT(p->refs > 0);
    if (--p->refs > 0)
        return;
    struct transport *t = p->t;
    buf_free(&p->q);
    buf_free(&p->rx);
    cairn_free(p);
    tp__live_dec(t);
}

static void peer_drop_queue(struct tpeer *p)
{
    p->st.msgs_dropped += p->q_msgs;
    p->q_msgs = 0;
    buf_reset(&p->q);
    p->ping_out = false;
}

/* ---- the flush once per loop turn ---- */

static void on_prepare(uv_prepare_t *h)
{
    struct transport *t = h->data;
    for (size_t i = 0; i < t->n_peers; i++)
        peer_flush(t->peers[i]);
    /* Peers that could not write now are flushed by their drain. */
    uv_prepare_stop(&t->prep);
    t->prep_active = false;
}

static void schedule_flush(struct transport *t)
{
    if (t->prep_active || t->closing)
        return;
    t->prep_active = true;
    uv_prepare_start(&t->prep, on_prepare);
}

/* Everything queued goes out as one write, once the previous one drained. */
static void peer_flush(struct tpeer *p)
{
    if (p->conn == NULL || !p->answered || p->q.len == 0)
        return;
    if (net_conn_queued_bytes(p->conn) > 0)
        return;
    int rv = net_conn_write(p->conn, p->q.data, p->q.len);
    if (rv != 0) {
        cairn_warnf(p->t->cfg.log, TP_COMPONENT,
                    "write to peer %016llx failed: %s",
                    (unsigned long long)p->id, cairn_strerror(rv));
        net_conn_close(p->conn, false);
        return;
    }
    p->st.msgs_sent += p->q_msgs;
    p->st.bytes_sent += p->q.len;
    p->st.writes++;
    p->q_msgs = 0;
    p->unreachable_reported = false;
    /* A one-off huge message must not pin its memory for good. */
    if (p->q.cap > p->t->cfg.queue_bytes_max)
        buf_free(&p->q);
    else
        buf_reset(&p->q);
}

/* ---- the dialled message connection ---- */

uint64_t tp__backoff_wait(struct prng *r, uint64_t *bound_ms, uint64_t max_ms)
{
    uint64_t b = *bound_ms;
    uint64_t wait = prng_range(r, b / 2, b);
    *bound_ms = b > max_ms / 2 ? max_ms : 2 * b;
    return wait;
}

/* Waits before the next dial. What was queued for the failed attempt is
 * dropped, as everything sent during the wait will be: delivered after the
 * reconnect it would only be stale. */
static void peer_backoff(struct tpeer *p)
{
    struct transport *t = p->t;
    p->state = TRANSPORT_PEER_BACKOFF;
    if (p->q_msgs > 0) {
        peer_drop_queue(p);
        tp__report_unreachable(p);
        /* The host may have removed the peer or closed us meanwhile. */
        if (p->removed || t->closing)
            return;
    }
    uint64_t wait =
        tp__backoff_wait(&t->prng, &p->backoff_ms, t->cfg.backoff_max_ms);
    uv_timer_start(&p->timer, peer_on_timer, wait, 0);
}

static void peer_conn_read(void *arg, struct net_conn *c, const uint8_t *data,
                           size_t len);
static void peer_conn_drain(void *arg, struct net_conn *c);
static void peer_conn_closed(void *arg, struct net_conn *c, int status);
static const struct net_conn_cbs peer_conn_cbs = {
    peer_conn_read, peer_conn_drain, peer_conn_closed};

static void on_peer_dial(void *arg, int status, struct net_conn *conn)
{
    struct tdial *d = arg;
    struct transport *t = d->t;
    struct tpeer *p = d->peer;
    cairn_free(d);
    if (p == NULL) {
        /* Abandoned: the peer was removed, re-addressed or timed out. */
        if (conn != NULL)
            net_conn_close(conn, false);
        tp__live_dec(t);
        return;
    }
    p->dial = NULL;
    if (status != 0) {
        cairn_debugf(t->cfg.log, TP_COMPONENT, "dial peer %016llx: %s",
                     (unsigned long long)p->id, cairn_strerror(status));
        p->url_next = (p->url_next + 1) % p->n_urls;
        peer_backoff(p);
        tp__live_dec(t);
        return;
    }
    p->conn = conn;
    p->refs++;
    p->answered = false;
    buf_reset(&p->rx);
    net_conn_start(conn, &peer_conn_cbs, p);
    uint8_t hs[TP_HANDSHAKE_BYTES];
    struct tp_handshake h = {TRANSPORT_PROTOCOL_VERSION, TP_KIND_MESSAGES,
                             t->cfg.cluster_id, t->cfg.self_id, p->id};
    tp__handshake_encode(hs, &h);
    if (net_conn_write(conn, hs, sizeof(hs)) != 0)
        net_conn_close(conn, false);
    tp__live_dec(t);
}

static void peer_dial(struct tpeer *p)
{
    struct transport *t = p->t;
    CAIRN_ASSERT(p->dial == NULL && p->conn == NULL);
    p->state = TRANSPORT_PEER_CONNECTING;
    struct tdial *d = cairn_calloc(1, sizeof(*d));
    if (d == NULL) {
        peer_backoff(p);
        return;
    }
    d->t = t;
    d->peer = p;
    int rv = net_connect(t->loop, &p->urls[p->url_next], &t->out_cfg, d,
                         on_peer_dial);
    if (rv != 0) {
        cairn_free(d);
        p->url_next = (p->url_next + 1) % p->n_urls;
        peer_backoff(p);
        return;
    }
    tp__live_inc(t);
    p->dial = d;
    p->dial_ms = uv_now(t->loop);
    /* Covers both the dial and the answer: a black hole must not keep the
     * peer "connecting" for the kernel's minutes-long SYN retries. */
    p->silent_ticks = 0;
    uv_timer_start(&p->timer, peer_on_timer, t->cfg.probe_interval_ms,
                   t->cfg.probe_interval_ms);
}

static void peer_abandon_dial(struct tpeer *p)
{
    if (p->dial != NULL) {
        p->dial->peer = NULL;
        p->dial = NULL;
    }
}

static void peer_on_timer(uv_timer_t *h)
{
    struct tpeer *p = h->data;
    struct transport *t = p->t;
    if (p->removed || t->closing)
        return;
    switch (p->state) {
    case TRANSPORT_PEER_BACKOFF:
        peer_dial(p);
        return;
    case TRANSPORT_PEER_CONNECTING:
        if (++p->silent_ticks < TP_DEAD_PROBES)
            return;
        uv_timer_stop(&p->timer);
        cairn_debugf(t->cfg.log, TP_COMPONENT,
                     "peer %016llx: no answer in time",
                     (unsigned long long)p->id);
        if (p->conn != NULL) {
            net_conn_close(p->conn, false); /* the closed cb backs off */
        } else {
            peer_abandon_dial(p);
            p->url_next = (p->url_next + 1) % p->n_urls;
            peer_backoff(p);
        }
        return;
    case TRANSPORT_PEER_CONNECTED: {
        uint64_t now_ns = uv_hrtime();
        if (p->ping_out) {
            if (++p->silent_ticks >= TP_DEAD_PROBES && p->conn != NULL) {
                cairn_warnf(t->cfg.log, TP_COMPONENT,
                            "peer %016llx: probe unanswered, reconnecting",
                            (unsigned long long)p->id);
                net_conn_close(p->conn, false);
            }
            return;
        }
        uint8_t tok[8];
        codec_put_u64(tok, now_ns);
        if (tp__frame_append(&p->q, TP_FRAME_PING, tok, sizeof(tok)) == 0) {
            p->ping_out = true;
            p->ping_token = now_ns;
            p->silent_ticks = 0;
            schedule_flush(t);
        }
        return;
    }
    default:
        CAIRN_UNREACHABLE();
    }
}

static void peer_answered(struct tpeer *p, uint8_t code, raft_id who)
{
    struct transport *t = p->t;
    if (code != TP_ANSWER_OK || who != p->id) {
        bool first = p->refusal_logged != code;
        if (first) {
            p->refusal_logged = code;
            cairn_warnf(t->cfg.log, TP_COMPONENT,
                        "peer %016llx refused our connection: %s",
                        (unsigned long long)p->id,
                        code == TP_ANSWER_OK ? "answered as another member"
                                             : tp__answer_text(code));
        }
        net_conn_close(p->conn, false);
        if (first && code == TP_ANSWER_REMOVED && !t->closing &&
            t->cbs->removed != NULL)
            t->cbs->removed(t->arg, p->id);
        return;
    }
    p->answered = true;
    p->refusal_logged = -1;
    p->state = TRANSPORT_PEER_CONNECTED;
    p->st.connected_ms = uv_now(t->loop);
    p->st.connects++;
    p->backoff_ms = t->cfg.backoff_min_ms;
    cairn_infof(t->cfg.log, TP_COMPONENT, "connected to peer %016llx (%s)",
                (unsigned long long)p->id, net_conn_peer(p->conn));
    uv_timer_start(&p->timer, peer_on_timer, 0, t->cfg.probe_interval_ms);
    peer_flush(p);
}

static void peer_conn_read(void *arg, struct net_conn *c, const uint8_t *data,
                           size_t len)
{
    struct tpeer *p = arg;
    struct transport *t = p->t;
    if (buf_append(&p->rx, data, len) != 0) {
        net_conn_close(c, false);
        return;
    }
    size_t off = 0;
    const char *bad = NULL;
    if (!p->answered) {
        if (p->rx.len < TP_ANSWER_BYTES)
            return;
        uint8_t code;
        raft_id who;
        if (tp__answer_decode(p->rx.data, &code, &who) != 0) {
            bad = "handshake answer";
            goto malformed;
        }
        off = TP_ANSWER_BYTES;
        peer_answered(p, code, who);
        if (!p->answered)
            return;
    }
    /* Only pongs come back on a message connection. */
    for (;;) {
        uint8_t type;
        const uint8_t *pl;
        size_t n, total;
        int rv = tp__frame_parse(p->rx.data + off, p->rx.len - off, 64, &type,
                                 &pl, &n, &total);
        if (rv == 0)
            break;
        if (rv < 0 || type != TP_FRAME_PONG || n != 8) {
            bad = "frame";
            goto malformed;
        }
        off += total;
        if (p->ping_out && codec_get_u64(pl) == p->ping_token) {
            uint64_t rtt_ns = uv_hrtime() - p->ping_token;
            uint64_t rtt_us = rtt_ns / 1000;
            p->st.rtt_us = rtt_us;
            if (rtt_us > p->st.rtt_us_max)
                p->st.rtt_us_max = rtt_us;
            cairn_hist_observe(&p->rtt, rtt_ns);
            p->ping_out = false;
        }
    }
    buf_consume(&p->rx, off);
    return;
malformed:
    cairn_warnf(t->cfg.log, TP_COMPONENT,
                "peer %016llx sent a malformed %s; closing",
                (unsigned long long)p->id, bad);
    net_conn_close(c, false);
}

static void peer_conn_drain(void *arg, struct net_conn *c)
{
    (void)c;
    peer_flush(arg);
}

static void peer_conn_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    struct tpeer *p = arg;
    struct transport *t = p->t;
    bool was_connected = p->answered;
    p->conn = NULL;
    p->answered = false;
    p->st.connected_ms = 0;
    size_t dropped = p->q_msgs;
    peer_drop_queue(p);
    if (!p->removed && !t->closing) {
        if (was_connected) {
            cairn_warnf(
                t->cfg.log, TP_COMPONENT, "lost connection to peer %016llx: %s",
                (unsigned long long)p->id,
                status == 0 ? "closed by peer" : cairn_strerror(status));
            p->unreachable_reported = false;
        }
        if (was_connected || dropped > 0)
            tp__report_unreachable(p);
        if (p->state == TRANSPORT_PEER_CONNECTING && !was_connected)
            p->url_next = (p->url_next + 1) % p->n_urls;
        if (p->removed || t->closing) {
            /* The host removed the peer or closed us from the report. */
        } else if (p->redial_now) {
            p->redial_now = false;
            peer_dial(p);
        } else {
            peer_backoff(p);
        }
    }
    peer_unref(p);
}

/* ---- the handle ---- */

static void on_prep_closed(uv_handle_t *h)
{
    tp__live_dec(h->data);
}

static void on_sweep(uv_timer_t *h)
{
    struct transport *t = h->data;
    tp__in_sweep(t);
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i]->snap != NULL)
            tp__snap_sweep(t->peers[i]->snap);
}

int transport_open(uv_loop_t *loop, const struct transport_config *config,
                   const struct transport_cbs *cbs, void *arg,
                   struct transport **out)
{
    if (config->self_id == RAFT_NONE || config->snap_dir == NULL ||
        config->snap_dir[0] == '\0')
        return CAIRN_EINVAL;
    struct transport *t = cairn_calloc(1, sizeof(*t));
    if (t == NULL)
        return CAIRN_ENOMEM;
    t->snap_dir = cairn_strdup(config->snap_dir);
    if (t->snap_dir == NULL) {
        cairn_free(t);
        return CAIRN_ENOMEM;
    }
    t->loop = loop;
    t->cfg = *config;
    t->cfg.snap_dir = t->snap_dir;
    struct transport_config *c = &t->cfg;
    if (c->queue_msgs_max == 0)
        c->queue_msgs_max = TRANSPORT_QUEUE_MSGS_DEFAULT;
    if (c->queue_bytes_max == 0)
        c->queue_bytes_max = TRANSPORT_QUEUE_BYTES_DEFAULT;
    if (c->frame_bytes_max == 0)
        c->frame_bytes_max = TRANSPORT_FRAME_BYTES_MAX_DEFAULT;
    if (c->backoff_min_ms == 0)
        c->backoff_min_ms = TRANSPORT_BACKOFF_MIN_MS_DEFAULT;
    if (c->backoff_max_ms == 0)
        c->backoff_max_ms = TRANSPORT_BACKOFF_MAX_MS_DEFAULT;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    if (c->probe_interval_ms == 0)
        c->probe_interval_ms = TRANSPORT_PROBE_INTERVAL_MS_DEFAULT;
    if (c->snap_chunk_bytes == 0)
        c->snap_chunk_bytes = TRANSPORT_SNAP_CHUNK_BYTES_DEFAULT;
    if (c->snap_stall_ms == 0)
        c->snap_stall_ms = TRANSPORT_SNAP_STALL_MS_DEFAULT;
    if (c->snap_chunk_bytes > c->frame_bytes_max)
        c->snap_chunk_bytes = c->frame_bytes_max;
    t->snap_stall_sweeps =
        (unsigned)((c->snap_stall_ms + c->probe_interval_ms - 1) /
                   c->probe_interval_ms);
    t->cbs = cbs;
    t->arg = arg;
    prng_seed(&t->prng, c->seed);
    /* One batch (the queue, or one message larger than it) plus a probe
     * must fit in net's write queue; snapshot connections hold at most two
     * chunks and the head frame. */
    t->out_cfg.write_queue_max_bytes = c->queue_bytes_max + c->frame_bytes_max +
                                       4 * TP_FRAME_HEADER_BYTES + 64;
    t->in_cfg.write_queue_max_bytes = 1u << 20;
    t->out_cfg.tls = c->tls;
    t->in_cfg.tls = c->tls;
    uv_prepare_init(loop, &t->prep);
    t->prep.data = t;
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    uv_timer_start(&t->sweep, on_sweep, c->probe_interval_ms,
                   c->probe_interval_ms);
    t->live = 2; /* the prepare handle and the sweep timer */
    *out = t;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    peer_unref(h->data);
}

/* Tears p down: shared by remove and close. */
static void peer_teardown(struct tpeer *p, int snap_status)
{
    struct transport *t = p->t;
    p->removed = true;
    peer_drop_queue(p);
    peer_abandon_dial(p);
    if (p->snap != NULL)
        tp__snap_cancel(p->snap, snap_status);
    if (p->conn != NULL)
        net_conn_close(p->conn, false);
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    tp__in_close_from(t, p->id);
    peer_unref(p); /* the table's reference */
}

void transport_close(struct transport *t, void *arg, transport_closed_cb cb)
{
    CAIRN_ASSERT(!t->closing);
    /* Snapshots in flight hear of their end before the callbacks stop. */
    for (size_t i = 0; i < t->n_peers; i++)
        if (t->peers[i]->snap != NULL)
            tp__snap_cancel(t->peers[i]->snap, CAIRN_ECANCELED);
    t->closing = true;
    t->close_arg = arg;
    t->close_cb = cb;
    for (size_t i = 0; i < t->n_listeners; i++)
        net_listener_close(t->listeners[i]);
    t->n_listeners = 0;
    while (t->n_peers > 0) {
        struct tpeer *p = t->peers[--t->n_peers];
        peer_teardown(p, CAIRN_ECANCELED);
    }
    tp__in_close_all(t);
    uv_prepare_stop(&t->prep);
    uv_close((uv_handle_t *)&t->prep, on_prep_closed);
    uv_timer_stop(&t->sweep);
    uv_close((uv_handle_t *)&t->sweep, on_prep_closed);
}

static void on_accept(void *arg, struct net_conn *conn)
{
    transport_adopt(arg, conn);
}

int transport_listen(struct transport *t, const char *url,
                     struct cairn_errmsg *msg)
{
    if (t->n_listeners == TP_LISTENERS_MAX) {
        if (msg != NULL)
            cairn_errmsg_setf(msg, "transport: too many peer listeners");
        return CAIRN_EFULL;
    }
    struct net_url u;
    int rv = net_url_parse(url, &u, msg);
    if (rv != 0)
        return rv;
    struct net_listener *l;
    rv = net_listener_open(t->loop, &u, &t->in_cfg, t->cfg.log, &l, t,
                           on_accept, msg);
    if (rv != 0)
        return rv;
    t->listeners[t->n_listeners++] = l;
    return 0;
}

uint16_t transport_listen_port(const struct transport *t, size_t i)
{
    if (i >= t->n_listeners)
        return 0;
    return net_listener_port(t->listeners[i]);
}

static int parse_urls(const char *const *urls, size_t n_urls,
                      struct net_url *out, struct cairn_errmsg *msg)
{
    if (n_urls == 0 || n_urls > TP_URLS_MAX) {
        if (msg != NULL)
            cairn_errmsg_setf(msg, "transport: a peer needs 1 to %d URLs",
                              TP_URLS_MAX);
        return CAIRN_EINVAL;
    }
    for (size_t i = 0; i < n_urls; i++) {
        int rv = net_url_parse(urls[i], &out[i], msg);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int transport_add_peer(struct transport *t, raft_id id, const char *const *urls,
                       size_t n_urls, struct cairn_errmsg *msg)
{
    CAIRN_ASSERT(!t->closing);
    if (id == RAFT_NONE || id == t->cfg.self_id) {
        if (msg != NULL)
            cairn_errmsg_setf(msg, "transport: bad peer id %016llx",
                              (unsigned long long)id);
        return CAIRN_EINVAL;
    }
    if (tp__peer_find(t, id) != NULL)
        return CAIRN_EEXISTS;
    if (t->n_peers == TRANSPORT_PEERS_MAX)
        return CAIRN_EFULL;
    struct net_url parsed[TP_URLS_MAX];
    int rv = parse_urls(urls, n_urls, parsed, msg);
    if (rv != 0)
        return rv;
    struct tpeer *p = cairn_calloc(1, sizeof(*p));
    if (p == NULL)
        return CAIRN_ENOMEM;
    p->t = t;
    p->id = id;
    p->st.id = id;
    cairn_hist_init(&p->rtt, TRANSPORT_RTT_HIST_START_NS,
                    TRANSPORT_RTT_HIST_BUCKETS);
    memcpy(p->urls, parsed, n_urls * sizeof(parsed[0]));
    p->n_urls = n_urls;
    p->refusal_logged = -1;
    p->backoff_ms = t->cfg.backoff_min_ms;
    p->refs = 2; /* the table and the timer */
    uv_timer_init(t->loop, &p->timer);
    p->timer.data = p;
    tp__live_inc(t);
    removed_forget(t, id);
    t->peers[t->n_peers++] = p;
    peer_dial(p);
    return 0;
}

int transport_update_peer(struct transport *t, raft_id id,
                          const char *const *urls, size_t n_urls,
                          struct cairn_errmsg *msg)
{
    struct tpeer *p = tp__peer_find(t, id);
    if (p == NULL)
        return CAIRN_ENOTFOUND;
    struct net_url parsed[TP_URLS_MAX];
    int rv = parse_urls(urls, n_urls, parsed, msg);
    if (rv != 0)
        return rv;
    memcpy(p->urls, parsed, n_urls * sizeof(parsed[0]));
    p->n_urls = n_urls;
    p->url_next = 0;
    p->backoff_ms = t->cfg.backoff_min_ms;
    if (p->conn != NULL) {
        p->redial_now = true; /* from the closed callback */
        net_conn_close(p->conn, false);
        return 0;
    }
    peer_abandon_dial(p);
    uv_timer_stop(&p->timer);
    peer_dial(p);
    return 0;
}

int transport_remove_peer(struct transport *t, raft_id id)
{
    for (size_t i = 0; i < t->n_peers; i++) {
        struct tpeer *p = t->peers[i];
        if (p->id != id)
            continue;
        t->peers[i] = t->peers[--t->n_peers];
        if (!tp__is_removed(t, id))
            t->removed[t->n_removed++ % TP_REMOVED_MAX] = id;
        cairn_infof(t->cfg.log, TP_COMPONENT, "removed peer %016llx",
                    (unsigned long long)id);
        peer_teardown(p, CAIRN_ECANCELED);
        return 0;
    }
    return CAIRN_ENOTFOUND;
}

void transport_mark_removed(struct transport *t, raft_id id)
{
    if (id == RAFT_NONE || id == t->cfg.self_id || tp__is_removed(t, id))
        return;
    if (transport_remove_peer(t, id) == 0)
        return;
    t->removed[t->n_removed++ % TP_REMOVED_MAX] = id;
}

int transport_send(struct transport *t, const struct raft_message *m)
{
    CAIRN_ASSERT(!t->closing);
    if (m->type == RAFT_MSG_SNAP)
        return CAIRN_EINVAL;
    struct tpeer *p = tp__peer_find(t, m->to);
    if (p == NULL)
        return CAIRN_ENOTFOUND;
    /* Backing off: the peer is known to be down, so the message goes now
     * rather than stale after the reconnect. */
    if (p->state == TRANSPORT_PEER_BACKOFF ||
        p->q_msgs >= t->cfg.queue_msgs_max)
        goto drop;
    size_t start = p->q.len;
    int rv = tp__frame_append_msg(&p->q, TP_FRAME_MSG, NULL, m,
                                  t->cfg.frame_bytes_max);
    if (rv == CAIRN_ETOOBIG) {
        p->st.msgs_dropped++;
        return rv;
    }
    if (rv != 0)
        return rv;
    if (start > 0 && p->q.len > t->cfg.queue_bytes_max) {
        p->q.len = start;
        goto drop;
    }
    p->q_msgs++;
    if (p->answered && net_conn_queued_bytes(p->conn) == 0)
        schedule_flush(t);
    return 0;
drop:
    p->st.msgs_dropped++;
    tp__report_unreachable(p);
    return CAIRN_EFULL;
}

int transport_peer_status(const struct transport *t, raft_id id,
                          struct transport_peer_status *out)
{
    struct tpeer *p = tp__peer_find(t, id);
    if (p == NULL)
        return CAIRN_ENOTFOUND;
    *out = p->st;
    cairn_hist_read(&p->rtt, &out->rtt_hist);
    out->state = p->state;
    out->queued_msgs = p->q_msgs;
    out->queued_bytes = p->q.len;
    return 0;
}

size_t transport_peer_ids(const struct transport *t, raft_id *ids, size_t max)
{
    for (size_t i = 0; i < t->n_peers && i < max; i++)
        ids[i] = t->peers[i]->id;
    return t->n_peers;
}

void transport_status(const struct transport *t, struct transport_status *out)
{
    *out = t->st;
    out->inbound_conns = t->n_ins;
}
