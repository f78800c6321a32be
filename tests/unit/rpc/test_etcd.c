/* Our client against the real thing (plaintext, and TLS on unixs with
 * client certificates): Debian's etcd 3.4 server, started on unix sockets
 * in the test's folder (no ports to race for), answers our
 * Put, Range, Status and Watch; its error texts reach us intact; and for an
 * unknown method it says exactly what our server says. etcd runs as a child
 * on the test's loop and is stopped by pid, also when the test fails. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "proto/proto.h"

struct proc {
    uv_process_t h;
    int exited;
    int closed;
};

static void proc_exit(uv_process_t *p, int64_t status, int sig)
{
    (void)status;
    (void)sig;
    struct proc *pr = p->data;
    pr->exited = 1;
    uv_close((uv_handle_t *)p, NULL);
}

/* Runs `sh -c cmd` as a child; its pid is pr->h.pid. */
static void spawn_sh(uv_loop_t *loop, struct proc *pr, const char *cmd)
{
    memset(pr, 0, sizeof(*pr));
    char *args[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    uv_process_options_t o;
    memset(&o, 0, sizeof(o));
    o.file = "/bin/sh";
    o.args = args;
    o.env = env;
    o.exit_cb = proc_exit;
    pr->h.data = pr;
    assert_int_equal(uv_spawn(loop, &pr->h, &o), 0);
}

struct conn_try {
    int done;
    int status;
    struct rpc_client *cl;
};
static void on_try(void *arg, int status, struct rpc_client *cl)
{
    struct conn_try *t = arg;
    t->done = 1;
    t->status = status;
    t->cl = cl;
}
static void on_tick(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* Runs the loop for about ms milliseconds. */
static void wait_ms(struct fx *f, uint64_t ms)
{
    uv_timer_t t;
    int ticks = 0;
    uv_timer_init(&f->loop, &t);
    t.data = &ticks;
    uv_timer_start(&t, on_tick, ms, 0);
    RUN_UNTIL(f, ticks == 1);
    fx_close_handle(f, (uv_handle_t *)&t);
}

/* One unary call: packs nothing itself; returns the result. */
static void unary(struct fx *f, struct rpc_client *cl, const char *path,
                  const uint8_t *req, size_t len, struct result *r)
{
    result_init(r);
    fx_call(cl, path, 10000, r, req, len, 1, true);
    RUN_UNTIL(f, r->done);
}

static void put(struct fx *f, struct rpc_client *cl, const char *k,
                const char *v, struct result *r)
{
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key.data = (uint8_t *)k;
    p.key.len = strlen(k);
    p.value.data = (uint8_t *)v;
    p.value.len = strlen(v);
    uint8_t buf[256];
    size_t n = etcdserverpb__put_request__pack(&p, buf);
    unary(f, cl, "/etcdserverpb.KV/Put", buf, n, r);
}

/* What the teardown must clean up even when an assertion failed midway:
 * the etcd child (by pid) and its folder. */
static int etcd_pid;
static int etcd_running;
static char dir[64];

static int etcd_teardown(void **state)
{
    (void)state;
    if (etcd_running && etcd_pid > 0)
        kill(etcd_pid, SIGKILL);
    etcd_running = 0;
    if (dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = '\0';
    }
    return 0;
}

static void against_etcd(void **state)
{
    (void)state;
    if (access("/usr/bin/etcd", X_OK) != 0)
        skip();
    struct fx f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    char cmd[1024], url[96];
    snprintf(dir, sizeof(dir), "cairn-test-etcd-%d", (int)getpid());
    /* etcd wants host:port even for unix URLs: the file is "c.sock:1" */
    snprintf(cmd, sizeof(cmd),
             "rm -rf %s && mkdir %s && cd %s && exec etcd --name t "
             "--data-dir data --listen-client-urls unix://c.sock:1 "
             "--advertise-client-urls unix://c.sock:1 "
             "--listen-peer-urls unix://p.sock:2 "
             "--initial-advertise-peer-urls unix://p.sock:2 "
             "--initial-cluster t=unix://p.sock:2 > etcd.log 2>&1",
             dir, dir, dir);
    static struct proc etcd;
    spawn_sh(&f.loop, &etcd, cmd);
    etcd_pid = etcd.h.pid;
    etcd_running = 1;
    snprintf(url, sizeof(url), "unix://%s/c.sock:1", dir);
    assert_int_equal(net_url_parse(url, &f.url, NULL), 0);

    /* connect once the socket is there: up to 20 s, every 50 ms */
    struct rpc_client *cl = NULL;
    for (int i = 0; i < 400 && cl == NULL && !etcd.exited; i++) {
        struct conn_try t = {0, 0, NULL};
        assert_int_equal(
            rpc_client_connect(&f.loop, &f.url, NULL, NULL, &t, on_try), 0);
        RUN_UNTIL(&f, t.done);
        if (t.status == 0)
            cl = t.cl;
        else
            wait_ms(&f, 50);
    }
    assert_non_null(cl);

    /* Put, then Range it back; etcd may still be electing itself, so the
     * first Put is retried while it says so */
    struct result r;
    for (int i = 0; i < 100; i++) {
        put(&f, cl, "cairn", "rpc", &r);
        if (r.code == RPC_OK)
            break;
        result_free(&r);
        wait_ms(&f, 100);
    }
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__PutResponse *pr =
        etcdserverpb__put_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(pr);
    assert_non_null(pr->header);
    int64_t rev = pr->header->revision;
    assert_true(rev >= 2);
    etcdserverpb__put_response__free_unpacked(pr, NULL);
    result_free(&r);

    Etcdserverpb__RangeRequest rq = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rq.key.data = (uint8_t *)"cairn";
    rq.key.len = 5;
    uint8_t buf[256];
    size_t n = etcdserverpb__range_request__pack(&rq, buf);
    unary(&f, cl, "/etcdserverpb.KV/Range", buf, n, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__RangeResponse *rr =
        etcdserverpb__range_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(rr);
    assert_int_equal(rr->n_kvs, 1);
    assert_int_equal(rr->kvs[0]->value.len, 3);
    assert_memory_equal(rr->kvs[0]->value.data, "rpc", 3);
    assert_int_equal(rr->kvs[0]->mod_revision, rev);
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    result_free(&r);

    /* etcd's error text, percent-decoded as etcd's clients see it */
    rq.revision = rev + 1000;
    n = etcdserverpb__range_request__pack(&rq, buf);
    unary(&f, cl, "/etcdserverpb.KV/Range", buf, n, &r);
    assert_int_equal(r.code, RPC_OUT_OF_RANGE);
    assert_string_equal(r.msg,
                        "etcdserver: mvcc: required revision is a future "
                        "revision");
    result_free(&r);

    /* Status: an empty request */
    unary(&f, cl, "/etcdserverpb.Maintenance/Status", NULL, 0, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__StatusResponse *sr =
        etcdserverpb__status_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(sr);
    assert_true(strncmp(sr->version, "3.4.", 4) == 0);
    etcdserverpb__status_response__free_unpacked(sr, NULL);
    result_free(&r);

    /* the texts for unknown methods and services are grpc-go's, and ours
     * must be the same (test_calls.c checks ours) */
    unary(&f, cl, "/etcdserverpb.KV/Nope", NULL, 0, &r);
    assert_int_equal(r.code, RPC_UNIMPLEMENTED);
    assert_string_equal(r.msg, "unknown method Nope for service "
                               "etcdserverpb.KV");
    result_free(&r);
    unary(&f, cl, "/no.Such/Thing", NULL, 0, &r);
    assert_int_equal(r.code, RPC_UNIMPLEMENTED);
    assert_string_equal(r.msg, "unknown service no.Such");
    result_free(&r);

    /* Watch: a bidirectional stream; a Put on another call shows up */
    struct result w;
    result_init(&w);
    assert_int_equal(rpc_client_call(cl, "/etcdserverpb.Watch/Watch", -1, NULL,
                                     &result_cbs, &w, &w.call),
                     0);
    Etcdserverpb__WatchCreateRequest cr =
        ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key.data = (uint8_t *)"w";
    cr.key.len = 1;
    Etcdserverpb__WatchRequest wr = ETCDSERVERPB__WATCH_REQUEST__INIT;
    wr.request_union_case =
        ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    wr.create_request = &cr;
    n = etcdserverpb__watch_request__pack(&wr, buf);
    assert_int_equal(rpc_call_send(w.call, buf, n), 0);
    RUN_UNTIL(&f, w.n_msgs == 1); /* created */
    put(&f, cl, "w", "1", &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    RUN_UNTIL(&f, w.n_msgs == 2);
    Etcdserverpb__WatchResponse *ev =
        etcdserverpb__watch_response__unpack(NULL, w.last.len, w.last.data);
    assert_non_null(ev);
    assert_int_equal(ev->n_events, 1);
    assert_int_equal(ev->events[0]->type, MVCCPB__EVENT__EVENT_TYPE__PUT);
    assert_memory_equal(ev->events[0]->kv->value.data, "1", 1);
    etcdserverpb__watch_response__free_unpacked(ev, NULL);
    rpc_call_cancel(w.call);
    assert_int_equal(w.code, RPC_CANCELLED);
    result_free(&w);

    rpc_client_close(cl);
    kill(etcd.h.pid, SIGTERM); /* by pid, never by name */
    RUN_UNTIL(&f, etcd.exited);
    etcd_running = 0;
    fx_loop_close(&f);
}

/* etcd's integration fixtures: valid until 2031 */
#define ETCD_FIXTURES \
    "/usr/share/gocode/src/go.etcd.io/etcd/integration/fixtures"

/* Our TLS client against etcd serving clients on unixs with client
 * certificates required. */
static void against_etcd_tls(void **state)
{
    (void)state;
    if (access("/usr/bin/etcd", X_OK) != 0 ||
        access(ETCD_FIXTURES "/server.crt", R_OK) != 0)
        skip();
    struct fx f;
    memset(&f, 0, sizeof(f));
    assert_int_equal(uv_loop_init(&f.loop), 0);
    char cmd[2048], url[96];
    snprintf(dir, sizeof(dir), "cairn-test-etcd-tls-%d", (int)getpid());
    snprintf(cmd, sizeof(cmd),
             "rm -rf %s && mkdir %s && cd %s && exec etcd --name t "
             "--data-dir data --listen-client-urls unixs://c.sock:1 "
             "--advertise-client-urls unixs://c.sock:1 "
             "--cert-file " ETCD_FIXTURES "/server.crt "
             "--key-file " ETCD_FIXTURES "/server.key.insecure "
             "--trusted-ca-file " ETCD_FIXTURES "/ca.crt --client-cert-auth "
             "--listen-peer-urls unix://p.sock:2 "
             "--initial-advertise-peer-urls unix://p.sock:2 "
             "--initial-cluster t=unix://p.sock:2 > etcd.log 2>&1",
             dir, dir, dir);
    static struct proc etcd;
    spawn_sh(&f.loop, &etcd, cmd);
    etcd_pid = etcd.h.pid;
    etcd_running = 1;
    snprintf(url, sizeof(url), "unixs://%s/c.sock:1", dir);
    assert_int_equal(net_url_parse(url, &f.url, NULL), 0);
    struct net_tls_config tc = {.cert_file = ETCD_FIXTURES "/server.crt",
                                .key_file =
                                    ETCD_FIXTURES "/server.key.insecure",
                                .trusted_ca_file = ETCD_FIXTURES "/ca.crt"};
    struct net_tls *tls;
    struct cairn_errmsg m;
    assert_int_equal(net_tls_open(&tc, NULL, &tls, &m), 0);
    struct rpc_client_config rc = {.net = {.tls = tls}};

    struct rpc_client *cl = NULL;
    for (int i = 0; i < 400 && cl == NULL && !etcd.exited; i++) {
        struct conn_try t = {0, 0, NULL};
        assert_int_equal(
            rpc_client_connect(&f.loop, &f.url, &rc, NULL, &t, on_try), 0);
        RUN_UNTIL(&f, t.done);
        if (t.status == 0)
            cl = t.cl;
        else
            wait_ms(&f, 50);
    }
    assert_non_null(cl);
    struct result r;
    for (int i = 0; i < 100; i++) {
        put(&f, cl, "cairn", "tls", &r);
        if (r.code == RPC_OK)
            break;
        result_free(&r);
        wait_ms(&f, 100);
    }
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    Etcdserverpb__RangeRequest rq = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rq.key.data = (uint8_t *)"cairn";
    rq.key.len = 5;
    uint8_t buf[256];
    size_t n = etcdserverpb__range_request__pack(&rq, buf);
    unary(&f, cl, "/etcdserverpb.KV/Range", buf, n, &r);
    assert_int_equal(r.code, RPC_OK);
    Etcdserverpb__RangeResponse *rr =
        etcdserverpb__range_response__unpack(NULL, r.last.len, r.last.data);
    assert_non_null(rr);
    assert_int_equal(rr->n_kvs, 1);
    assert_memory_equal(rr->kvs[0]->value.data, "tls", 3);
    etcdserverpb__range_response__free_unpacked(rr, NULL);
    result_free(&r);
    rpc_client_close(cl);

    kill(etcd.h.pid, SIGTERM); /* by pid, never by name */
    RUN_UNTIL(&f, etcd.exited);
    etcd_running = 0;
    fx_loop_close(&f);
    net_tls_close(tls);
}

int test_etcd_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(against_etcd, etcd_teardown),
        cmocka_unit_test_teardown(against_etcd_tls, etcd_teardown),
    };
    return cmocka_run_group_tests_name("rpc client against etcd", tests, NULL,
                                       NULL);
}
