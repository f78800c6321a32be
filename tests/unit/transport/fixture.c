/* The transport tests' fixture: members on one loop, hosts that record their
 * callbacks, raw connections and the run-until driver (fixture.h). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

/* ---- the host's callbacks ---- */

static void on_receive(void *arg, const struct raft_message *m)
{
    struct fx_member *mb = arg;
    assert_true(mb->open);
    if (mb->close_on_receive)
        fx_close(mb->f, (int)(mb - mb->f->m));
    if (m->type == RAFT_MSG_HEARTBEAT) {
        mb->n_heartbeats++;
        return;
    }
    assert_true(mb->n_got < FX_GOT_MAX);
    struct fx_got *g = &mb->got[mb->n_got++];
    g->from = m->from;
    g->type = m->type;
    g->index = m->index;
    g->ctx = m->ctx;
    g->n_entries = m->n_entries;
    g->data_crc = 0;
    for (size_t i = 0; i < m->n_entries; i++)
        g->data_crc =
            crc32c(g->data_crc, m->entries[i].data, m->entries[i].len);
}

static void on_snapshot(void *arg, const struct raft_message *m,
                        const char *path)
{
    struct fx_member *mb = arg;
    mb->n_snaps++;
    snprintf(mb->snap_path, sizeof(mb->snap_path), "%s", path);
    mb->snap_index = m->snapshot->meta.index;
    size_t n = m->snapshot->len < sizeof(mb->snap_desc) - 1
                   ? m->snapshot->len
                   : sizeof(mb->snap_desc) - 1;
    if (n > 0)
        memcpy(mb->snap_desc, m->snapshot->data, n);
    mb->snap_desc[n] = '\0';
    mb->heartbeats_at_snap = mb->n_heartbeats;
}

static void on_unreachable(void *arg, raft_id peer)
{
    struct fx_member *mb = arg;
    assert_true(mb->open);
    assert_true(peer < FX_MEMBERS + 8);
    mb->unreachable[peer]++;
    if (mb->remove_on_unreachable)
        assert_int_equal(transport_remove_peer(mb->t, peer), 0);
}

static void on_snapshot_status(void *arg, raft_id peer, raft_index index,
                               int status)
{
    (void)peer;
    struct fx_member *mb = arg;
    mb->n_snap_status++;
    mb->snap_status = status;
    mb->snap_status_index = index;
}

static void on_removed(void *arg, raft_id by)
{
    struct fx_member *mb = arg;
    assert_true(by < FX_MEMBERS + 8);
    mb->removed_by[by]++;
}

static const struct transport_cbs host_cbs = {
    on_receive, on_snapshot, on_unreachable, on_snapshot_status, on_removed};

const struct transport_cbs *fx_host_cbs(void)
{
    return &host_cbs;
}

static void log_sink(void *arg, enum cairn_log_level level, const char *line)
{
    (void)level;
    struct fx_member *mb = arg;
    if (strstr(line, "refused peer connection") != NULL)
        mb->log_refused_in++;
    if (strstr(line, "refused our connection") != NULL)
        mb->log_refused_out++;
    if (strstr(line, "malformed") != NULL)
        mb->log_malformed++;
    if (getenv("CAIRN_TEST_LOG") != NULL)
        fprintf(stderr, "%s\n", line);
}

/* ---- fixture ---- */

static void on_tick(uv_timer_t *h)
{
    (void)h;
}

void fx_init(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, on_tick, 5, 5);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/cairn-transport-XXXXXX",
             tmp != NULL ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->root));
    f->cfg.cluster_id = 0xc1c1c1c1ull;
    f->cfg.backoff_min_ms = 10;
    f->cfg.backoff_max_ms = 80;
    f->cfg.probe_interval_ms = 200;
    f->cfg.snap_chunk_bytes = 64 << 10;
    for (int i = 0; i < FX_MEMBERS; i++) {
        struct fx_member *mb = &f->m[i];
        mb->f = f;
        mb->id = (raft_id)i + 1;
        mb->cluster_id = f->cfg.cluster_id;
        snprintf(mb->name, sizeof(mb->name), "m%d", i + 1);
        snprintf(mb->snap_dir, sizeof(mb->snap_dir), "%s/m%d", f->root, i + 1);
        assert_int_equal(mkdir(mb->snap_dir, 0700), 0);
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void on_closed(void *arg)
{
    struct fx_member *mb = arg;
    mb->closing = false;
    mb->closed = true;
}

void fx_close(struct fixture *f, int i)
{
    struct fx_member *mb = &f->m[i];
    assert_true(mb->open);
    mb->open = false;
    mb->closed = false;
    mb->closing = true;
    transport_close(mb->t, mb, on_closed);
    mb->t = NULL;
}

static bool all_closed(struct fixture *f, void *arg)
{
    (void)arg;
    for (int i = 0; i < FX_MEMBERS; i++)
        if (f->m[i].closing)
            return false;
    return true;
}

static void on_tick_closed(uv_handle_t *h)
{
    (void)h;
}

void fx_fini(struct fixture *f)
{
    for (int i = 0; i < FX_MEMBERS; i++)
        if (f->m[i].open)
            fx_close(f, i);
    fx_run_until(f, all_closed, NULL);
    uv_close((uv_handle_t *)&f->tick, on_tick_closed);
    /* Whatever is left (closes in progress, file requests) ends now. */
    LOOP_DRAIN(&f->loop);
    assert_int_equal(ru_loop_close(&f->loop), 0);
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void fx_log_init(struct fx_member *mb)
{
    cairn_log_init(&mb->log, mb->name, CAIRN_LOG_DEBUG);
    mb->log.sink = log_sink;
    mb->log.sink_arg = mb;
}

void fx_open_url(struct fixture *f, int i, const char *url)
{
    struct fx_member *mb = &f->m[i];
    fx_log_init(mb);
    struct transport_config c = f->cfg;
    c.cluster_id = mb->cluster_id;
    c.self_id = mb->id;
    c.snap_dir = mb->snap_dir;
    c.seed = 1000 + (uint64_t)i;
    c.log = &mb->log;
    assert_int_equal(transport_open(&f->loop, &c, &host_cbs, mb, &mb->t), 0);
    struct cairn_errmsg msg;
    int rv = transport_listen(mb->t, url, &msg);
    if (rv != 0)
        fail_msg("listen %s: %s", url, msg.text);
    mb->port = transport_listen_port(mb->t, 0);
    snprintf(mb->url, sizeof(mb->url), "%s", url);
    mb->open = true;
    mb->closed = false;
}

void fx_open(struct fixture *f, int i, uint16_t port)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    fx_open_url(f, i, url);
    struct fx_member *mb = &f->m[i];
    assert_true(mb->port != 0);
    snprintf(mb->url, sizeof(mb->url), "http://127.0.0.1:%u",
             (unsigned)mb->port);
}

void fx_peer(struct fixture *f, int i, int j)
{
    const char *urls[1] = {f->m[j].url};
    struct cairn_errmsg msg;
    int rv = transport_add_peer(f->m[i].t, f->m[j].id, urls, 1, &msg);
    if (rv != 0)
        fail_msg("add peer: %s", msg.text);
}

void fx_mesh(struct fixture *f, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (i != j)
                fx_peer(f, i, j);
}

struct pair {
    int i, j;
};

static bool connected(struct fixture *f, void *arg)
{
    struct pair *p = arg;
    return fx_status(f, p->i, p->j).state == TRANSPORT_PEER_CONNECTED;
}

void fx_wait_connected(struct fixture *f, int i, int j)
{
    struct pair p = {i, j};
    fx_run_until(f, connected, &p);
}

struct transport_peer_status fx_status(struct fixture *f, int i, int j)
{
    struct transport_peer_status st;
    assert_int_equal(transport_peer_status(f->m[i].t, f->m[j].id, &st), 0);
    return st;
}

static void app_data(uint64_t seq, uint8_t *p, size_t len)
{
    struct prng r;
    prng_seed(&r, seq);
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)prng_next(&r);
}

uint32_t fx_app_crc(uint64_t seq, size_t len)
{
    uint8_t *p = malloc(len + 1);
    assert_non_null(p);
    app_data(seq, p, len);
    uint32_t crc = crc32c(0, p, len);
    free(p);
    return crc;
}

int fx_send_app(struct fixture *f, int i, int j, uint64_t seq, size_t len)
{
    uint8_t *p = malloc(len + 1);
    assert_non_null(p);
    app_data(seq, p, len);
    struct raft_entry e = {.term = 1, .index = seq + 1, .data = p, .len = len};
    struct raft_message m = {.type = RAFT_MSG_APP,
                             .from = f->m[i].id,
                             .to = f->m[j].id,
                             .term = 1,
                             .index = seq,
                             .log_term = 1,
                             .entries = &e,
                             .n_entries = 1};
    int rv = transport_send(f->m[i].t, &m);
    free(p);
    return rv;
}

int fx_send_heartbeat(struct fixture *f, int i, int j)
{
    struct raft_message m = {.type = RAFT_MSG_HEARTBEAT,
                             .from = f->m[i].id,
                             .to = f->m[j].id,
                             .term = 1};
    return transport_send(f->m[i].t, &m);
}

/* ---- raw connections ---- */

static void raw_read(void *arg, struct net_conn *c, const uint8_t *d, size_t n)
{
    (void)c;
    struct fx_raw *r = arg;
    assert_int_equal(buf_append(&r->got, d, n), 0);
}

static void raw_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    (void)status;
    struct fx_raw *r = arg;
    r->closed = true;
    r->conn = NULL;
}

static const struct net_conn_cbs raw_cbs = {raw_read, NULL, raw_closed};

static void raw_connected(void *arg, int status, struct net_conn *c)
{
    struct fx_raw *r = arg;
    assert_int_equal(status, 0);
    r->conn = c;
    r->connected = true;
    net_conn_start(c, &raw_cbs, r);
}

static bool raw_up(struct fixture *f, void *arg)
{
    (void)f;
    return ((struct fx_raw *)arg)->connected;
}

void fx_raw_connect(struct fixture *f, struct fx_raw *r, uint16_t port)
{
    memset(r, 0, sizeof(*r));
    struct net_url u;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
    assert_int_equal(net_url_parse(url, &u, NULL), 0);
    assert_int_equal(net_connect(&f->loop, &u, NULL, r, raw_connected), 0);
    fx_run_until(f, raw_up, r);
}

void fx_raw_write(struct fx_raw *r, const void *p, size_t n)
{
    assert_non_null(r->conn);
    assert_int_equal(net_conn_write(r->conn, p, n), 0);
}

static bool raw_gone(struct fixture *f, void *arg)
{
    (void)f;
    return ((struct fx_raw *)arg)->closed;
}

void fx_raw_close(struct fixture *f, struct fx_raw *r)
{
    if (r->conn != NULL)
        net_conn_close(r->conn, false);
    fx_run_until(f, raw_gone, r);
    buf_free(&r->got);
}

/* ---- mute peers ---- */

static void mute_read(void *arg, struct net_conn *c, const uint8_t *d, size_t n)
{
    (void)arg;
    (void)c;
    (void)d;
    (void)n;
}

static void mute_closed(void *arg, struct net_conn *c, int status)
{
    (void)status;
    struct fx_mute *m = arg;
    for (size_t i = 0; i < m->n; i++)
        if (m->conns[i] == c)
            m->conns[i] = NULL;
}

static const struct net_conn_cbs mute_cbs = {mute_read, NULL, mute_closed};

static void mute_accept(void *arg, struct net_conn *c)
{
    struct fx_mute *m = arg;
    if (m->n == 8) {
        net_conn_close(c, false);
        return;
    }
    m->conns[m->n++] = c;
    net_conn_start(c, &mute_cbs, m);
}

static bool mute_has_conn(struct fixture *f, void *arg)
{
    (void)f;
    return ((struct fx_mute *)arg)->n > 0;
}

static bool mute_all_closed(struct fixture *f, void *arg)
{
    (void)f;
    struct fx_mute *m = arg;
    for (size_t i = 0; i < m->n; i++)
        if (m->conns[i] != NULL)
            return false;
    return true;
}

void fx_mute_open(struct fixture *f, struct fx_mute *m)
{
    memset(m, 0, sizeof(*m));
    struct net_url u;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &u, NULL), 0);
    assert_int_equal(net_listener_open(&f->loop, &u, NULL, NULL, &m->l, m,
                                       mute_accept, NULL),
                     0);
    snprintf(m->url, sizeof(m->url), "http://127.0.0.1:%u",
             (unsigned)net_listener_port(m->l));
}

void fx_mute_wait_conn(struct fixture *f, struct fx_mute *m)
{
    fx_run_until(f, mute_has_conn, m);
}

void fx_mute_close(struct fixture *f, struct fx_mute *m)
{
    net_listener_close(m->l);
    for (size_t i = 0; i < m->n; i++)
        if (m->conns[i] != NULL)
            net_conn_close(m->conns[i], false);
    fx_run_until(f, mute_all_closed, m);
}
