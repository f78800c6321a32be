/* Peers over TLS: the transport on https and unixs peer URLs with peer
 * auto-TLS (as etcd's e2e clusters run), messages in order both ways and a
 * snapshot stream, and a plaintext dial to a TLS peer port refused. */
#include <stdio.h>
#include <string.h>

#include "fixture.h"
#include "net/net.h"
#include "tests.h"

static bool got_both(struct fixture *f, void *arg)
{
    size_t want = *(size_t *)arg;
    return f->m[0].n_got >= want && f->m[1].n_got >= want;
}

static void in_order(struct fixture *f, int i, int from, size_t n)
{
    size_t next = 0;
    for (size_t k = 0; k < f->m[i].n_got; k++) {
        struct fx_got *g = &f->m[i].got[k];
        if (g->from != f->m[from].id)
            continue;
        assert_int_equal(g->index, next);
        assert_int_equal(g->data_crc, fx_app_crc(next, 200));
        next++;
    }
    assert_int_equal(next, n);
}

static bool snap_status_heard(struct fixture *f, void *arg)
{
    (void)arg;
    return f->m[0].n_snap_status > 0;
}

static bool raw_refused(struct fixture *f, void *arg)
{
    (void)f;
    return ((struct fx_raw *)arg)->closed;
}

static struct net_tls *peer_auto_tls(struct fixture *f)
{
    char dir[300];
    snprintf(dir, sizeof(dir), "%s/fixtures-peer", f->root);
    static const char *const hosts[] = {"127.0.0.1:0"};
    struct net_tls_config cfg = {.auto_tls = true,
                                 .auto_tls_dir = dir,
                                 .auto_tls_hosts = hosts,
                                 .auto_tls_host_count = 1,
                                 .peer = true};
    struct net_tls *t = NULL;
    struct cairn_errmsg m;
    if (net_tls_open(&cfg, NULL, &t, &m) != 0)
        fail_msg("peer TLS: %s", m.text);
    return t;
}

static void exchange(struct fixture *f)
{
    fx_mesh(f, 2);
    for (uint64_t s = 0; s < 200; s++) {
        assert_int_equal(fx_send_app(f, 0, 1, s, 200), 0);
        assert_int_equal(fx_send_app(f, 1, 0, s, 200), 0);
    }
    size_t want = 200;
    fx_run_until(f, got_both, &want);
    in_order(f, 1, 0, 200);
    in_order(f, 0, 1, 200);
}

static void https_peers(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    struct net_tls *tls = peer_auto_tls(&f);
    f.cfg.tls = tls;
    for (int i = 0; i < 2; i++) {
        fx_open_url(&f, i, "https://127.0.0.1:0");
        snprintf(f.m[i].url, sizeof(f.m[i].url), "https://127.0.0.1:%u",
                 (unsigned)f.m[i].port);
    }
    exchange(&f);

    /* a snapshot streams over its own TLS connection */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/body", f.root);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 3000; i++)
        fprintf(fp, "snapshot line %d\n", i);
    fclose(fp);
    struct raft_snapshot snap = {.meta = {.index = 77, .term = 2},
                                 .data = (const uint8_t *)"desc",
                                 .len = 4};
    snap.meta.conf.n_voters = 2;
    snap.meta.conf.voters[0] = 1;
    snap.meta.conf.voters[1] = 2;
    struct raft_message m = {.type = RAFT_MSG_SNAP,
                             .from = f.m[0].id,
                             .to = f.m[1].id,
                             .term = 2,
                             .snapshot = &snap};
    struct cairn_errmsg msg;
    assert_int_equal(transport_send_snapshot(f.m[0].t, &m, path, &msg), 0);
    fx_run_until(&f, snap_status_heard, NULL);
    assert_int_equal(f.m[0].snap_status, 0);
    assert_int_equal(f.m[1].n_snaps, 1);

    /* a plaintext dial to a TLS peer port gets nowhere */
    struct fx_raw raw;
    memset(&raw, 0, sizeof(raw));
    fx_raw_connect(&f, &raw, f.m[1].port);
    fx_raw_write(&raw, "GET /raft HTTP/1.1\r\n\r\n", 22);
    fx_run_until(&f, raw_refused, &raw);
    fx_raw_close(&f, &raw);
    fx_fini(&f);
    net_tls_close(tls);
}

static void unixs_peers(void **state)
{
    (void)state;
    struct fixture f;
    fx_init(&f);
    struct net_tls *tls = peer_auto_tls(&f);
    f.cfg.tls = tls;
    for (int i = 0; i < 2; i++) {
        char url[300];
        snprintf(url, sizeof(url), "unixs://%s/m%d.sock", f.root, i + 1);
        fx_open_url(&f, i, url);
    }
    exchange(&f);
    fx_fini(&f);
    net_tls_close(tls);
}

int test_tls_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_peers),
        cmocka_unit_test(unixs_peers),
    };
    return cmocka_run_group_tests_name("transport_tls", tests, NULL, NULL);
}
