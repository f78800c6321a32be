/* Tests of a whole one-member server in this process: it starts, serves
 * writes, stops gracefully, and recovers them from snapshot + WAL + LMDB on
 * restart; start-up refusals. The loop runs until each awaited event; no
 * assertion depends on timing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_until.h"
#include "server/server.h"
#include "tests.h"

struct fixture {
    char dir[64];
    char peer_url[160];
    char cluster[200];
    uv_loop_t loop;
    struct cairn_log log;
    struct server_config cfg;
    struct server *s;
    bool stopped;
    int stop_status;
    int done;
    int errors;
    int applied_calls;
    char last_value[64];
};

static void on_stopped(void *arg, int status)
{
    struct fixture *f = arg;
    f->stopped = true;
    f->stop_status = status;
}

/* Runs the loop until cond(f) says so; bounded, naming cond when not. */
#define run_until(f, cond) \
    LOOP_UNTIL_MS(&(f)->loop, (cond)(f), #cond, RU_WAIT_MS)

static bool is_ready(struct fixture *f)
{
    return server_ready(f->s);
}
static bool is_stopped(struct fixture *f)
{
    return f->stopped;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cairn-test-server-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->peer_url, sizeof f->peer_url, "unix://%s/peer.sock", f->dir);
    snprintf(f->cluster, sizeof f->cluster, "u=%s", f->peer_url);
    uv_loop_init(&f->loop);
    cairn_log_init(&f->log, "u", CAIRN_LOG_WARN);
    server_config_defaults(&f->cfg);
    struct cairn_errmsg m = {{0}};
    f->cfg.name = "u";
    f->cfg.data_dir = f->dir;
    f->cfg.initial_cluster = f->cluster;
    f->cfg.heartbeat_interval_ms = 10;
    f->cfg.election_timeout_ms = 100;
    f->cfg.snapshot_count = 8; /* snapshots and log compaction too */
    f->cfg.snapshot_catchup_entries = 2;
    assert_int_equal(
        server_urls_parse(f->peer_url, &f->cfg.listen_peer_urls, &m), 0);
    f->cfg.initial_advertise_peer_urls = f->cfg.listen_peer_urls;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(ru_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void start(struct fixture *f)
{
    struct cairn_errmsg m = {{0}};
    f->stopped = false;
    int rv = server_open(&f->loop, &f->cfg, &f->log, &f->s, &m);
    if (rv != 0)
        fail_msg("server_open: %s", m.text);
    server_on_stopped(f->s, f, on_stopped);
    run_until(f, is_ready);
}

static void stop(struct fixture *f)
{
    server_stop(f->s);
    run_until(f, is_stopped);
    assert_int_equal(f->stop_status, 0);
    server_close(f->s);
    f->s = NULL;
    /* Nothing of the server is left on the loop. */
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
}

static void on_applied(void *arg)
{
    struct fixture *f = arg;
    f->applied_calls++;
}

static void on_done(void *arg, const struct node_result *res)
{
    struct fixture *f = arg;
    f->done++;
    if (res->err != 0) {
        f->errors++;
        return;
    }
    if (res->type == NODE_REQ_RANGE && res->u.range.n_kvs == 1) {
        const struct mvcc_kv *kv = &res->u.range.kvs[0];
        snprintf(f->last_value, sizeof f->last_value, "%.*s",
                 (int)kv->value_len, (const char *)kv->value);
    } else if (res->type == NODE_REQ_RANGE) {
        f->last_value[0] = '\0';
    }
}

static int want_done;
static bool all_done(struct fixture *f)
{
    return f->done >= want_done;
}

static void put(struct fixture *f, const char *key, const char *value)
{
    struct mvcc_put_req r = {.key = (const uint8_t *)key,
                             .key_len = strlen(key),
                             .value = (const uint8_t *)value,
                             .value_len = strlen(value)};
    want_done = f->done + 1;
    assert_int_equal(server_put(f->s, &r, f, on_done), 0);
    run_until(f, all_done);
}

static void get(struct fixture *f, const char *key, bool serializable)
{
    struct mvcc_range_req r = {.key = (const uint8_t *)key,
                               .key_len = strlen(key)};
    want_done = f->done + 1;
    assert_int_equal(server_range(f->s, &r, serializable, f, on_done), 0);
    run_until(f, all_done);
}

static void test_serve_stop_recover(void **state)
{
    struct fixture *f = *state;
    start(f);
    struct server_initial_cluster ic;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(
        server_initial_cluster_parse(f->cluster, "etcd-cluster", &ic, &m), 0);
    assert_true(server_member_id(f->s) == ic.members[0].id);
    assert_true(server_cluster_id(f->s) == ic.cluster_id);
    assert_true(server_is_leader(f->s));
    assert_non_null(server_store(f->s));
    assert_ptr_equal(server_loop(f->s), &f->loop);
    server_on_applied(f->s, f, on_applied);
    char k[16], v[16];
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "k%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        put(f, k, v);
    }
    get(f, "k07", false);
    assert_string_equal(f->last_value, "v7");
    assert_int_equal(f->errors, 0);
    /* Each put was applied in some batch the watchers hear of. */
    assert_true(f->applied_calls >= 1);
    /* A second member on the same data directory is refused. */
    struct server *twin = NULL;
    assert_int_equal(server_open(&f->loop, &f->cfg, &f->log, &twin, &m),
                     CAIRN_EBUSY);
    assert_null(twin);
    assert_non_null(strstr(m.text, "in use"));
    stop(f);

    /* Restart: the initial-cluster flags are ignored (a bogus one here). */
    f->cfg.initial_cluster = "other=http://127.0.0.1:1";
    start(f);
    assert_true(server_member_id(f->s) == ic.members[0].id);
    for (int i = 0; i < 30; i++) {
        snprintf(k, sizeof k, "k%02d", i);
        snprintf(v, sizeof v, "v%d", i);
        get(f, k, true);
        assert_string_equal(f->last_value, v);
    }
    put(f, "after", "restart");
    get(f, "after", false);
    assert_string_equal(f->last_value, "restart");
    assert_int_equal(f->errors, 0);
    /* Requests after a stop began are refused. */
    server_stop(f->s);
    struct mvcc_put_req r = {.key = (const uint8_t *)"x", .key_len = 1};
    assert_int_equal(server_put(f->s, &r, f, on_done), CAIRN_ESHUTDOWN);
    run_until(f, is_stopped);
    server_close(f->s);
    f->s = NULL;
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    struct cairn_errmsg m = {{0}};
    struct server *s = NULL;
    f->cfg.name = "notthere";
    assert_int_equal(server_open(&f->loop, &f->cfg, &f->log, &s, &m),
                     CAIRN_EINVAL);
    assert_null(s);
    assert_non_null(strstr(m.text, "notthere"));
    f->cfg.name = "u";
    struct server_urls other;
    assert_int_equal(server_urls_parse("http://127.0.0.1:9", &other, &m), 0);
    f->cfg.initial_advertise_peer_urls = other;
    assert_int_equal(server_open(&f->loop, &f->cfg, &f->log, &s, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "--initial-advertise-peer-urls"));
    assert_null(s);
}

/* --wal-dir puts the segments elsewhere; a restart finds them there. */
static void test_wal_dir(void **state)
{
    struct fixture *f = *state;
    char wal_dir[128];
    snprintf(wal_dir, sizeof wal_dir, "%s/elsewhere/wal", f->dir);
    f->cfg.wal_dir = wal_dir;
    start(f);
    put(f, "w", "1");
    stop(f);
    char seg[200];
    snprintf(seg, sizeof seg, "%s/0000000000000000-0000000000000000.wal",
             wal_dir);
    assert_int_equal(access(seg, F_OK), 0);
    char def[128];
    snprintf(def, sizeof def, "%s/member/wal", f->dir);
    assert_int_not_equal(access(def, F_OK), 0);
    start(f);
    get(f, "w", true);
    assert_string_equal(f->last_value, "1");
    assert_int_equal(f->errors, 0);
    stop(f);
}

/* A member joining a running cluster waits for a leader's handshake; it
 * can be stopped meanwhile. */
static void test_join_waits(void **state)
{
    struct fixture *f = *state;
    struct cairn_errmsg m = {{0}};
    f->cfg.initial_cluster_existing = true;
    assert_int_equal(server_open(&f->loop, &f->cfg, &f->log, &f->s, &m), 0);
    server_on_stopped(f->s, f, on_stopped);
    for (int i = 0; i < 10; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_false(server_ready(f->s));
    struct mvcc_put_req r = {.key = (const uint8_t *)"x", .key_len = 1};
    assert_int_equal(server_put(f->s, &r, f, on_done), CAIRN_ESHUTDOWN);
    server_stop(f->s);
    run_until(f, is_stopped);
    server_close(f->s);
    f->s = NULL;
}

/* Ready means published: this member's record carries its client URLs
 * (what a follower forwards a keep-alive to); unknown ids and a short
 * buffer give false. */
static void test_publish(void **state)
{
    struct fixture *f = *state;
    start(f);
    char url[64];
    assert_true(server_member_client_url(f->s, server_member_id(f->s), url,
                                         sizeof url));
    assert_string_equal(url, f->cfg.advertise_client_urls.url[0]);
    assert_false(server_member_client_url(f->s, server_member_id(f->s) + 1, url,
                                          sizeof url));
    assert_false(
        server_member_client_url(f->s, server_member_id(f->s), url, 4));
    stop(f);
}

/* ---- auth: passwords hashed before proposing ---- */

static void auth(struct fixture *f, uint8_t op, const char *name,
                 const char *password, bool no_password)
{
    struct auth_req q = {.op = op,
                         .name = (const uint8_t *)name,
                         .name_len = strlen(name),
                         .password = (const uint8_t *)password,
                         .password_len = strlen(password),
                         .no_password = no_password};
    want_done = f->done + 1;
    assert_int_equal(server_auth(f->s, &q, f, on_done), 0);
    run_until(f, all_done);
}

/* Whether any file under dir holds needle (WAL segments, snapshots, the
 * LMDB file). */
static bool dir_holds(const char *dir, const char *needle)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -rqaF -- '%s' %s", needle, dir);
    return system(cmd) == 0;
}

/* A password is hashed with bcrypt at --bcrypt-cost before it is
 * proposed: the plaintext reaches neither the WAL nor the store, also when
 * it was given with no_password; a stop while a hash is on the thread pool
 * waits for it and answers the request. */
static void test_auth_hashed(void **state)
{
    struct fixture *f = *state;
    f->cfg.bcrypt_cost = 4; /* bcrypt's cheapest: a test needs no strength */
    /* LMDB's file is as large as its map (sparse): keep it small for grep */
    f->cfg.quota_backend_bytes = 1 << 20;
    start(f);
    auth(f, AUTH_OP_USER_ADD, "alice", "plaintext-secret-1", false);
    auth(f, AUTH_OP_USER_ADD, "bob", "plaintext-secret-2", true);
    auth(f, AUTH_OP_USER_CHANGE_PASSWORD, "alice", "plaintext-secret-3", false);
    auth(f, AUTH_OP_USER_ADD, "alice", "x", false);
    assert_int_equal(f->errors, 1); /* the second alice: already exists */
    stop(f);
    assert_true(dir_holds(f->dir, "alice"));
    assert_true(dir_holds(f->dir, "$2b$04$"));
    for (int i = 1; i <= 3; i++) {
        char secret[32];
        snprintf(secret, sizeof secret, "plaintext-secret-%d", i);
        assert_false(dir_holds(f->dir, secret));
    }
    start(f);
    struct auth_req q = {.op = AUTH_OP_USER_ADD,
                         .name = (const uint8_t *)"carol",
                         .name_len = 5,
                         .password = (const uint8_t *)"pw",
                         .password_len = 2};
    int done = f->done, errors = f->errors;
    assert_int_equal(server_auth(f->s, &q, f, on_done), 0);
    server_stop(f->s);
    run_until(f, is_stopped);
    assert_int_equal(f->done, done + 1);
    assert_int_equal(f->errors, errors + 1);
    server_close(f->s);
    f->s = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
}

/* ---- watch hubs ---- */

struct watch_seen {
    int events;    /* delivered events */
    int responses; /* responses of any kind */
    int refuse;    /* answer CAIRN_EAGAIN this many more times */
    char last[16]; /* value of the last PUT */
    bool after_close;
    bool closed;
};

static int on_watch(void *arg, const struct mvcc_watch_resp *resp)
{
    struct watch_seen *w = arg;
    if (w->closed)
        w->after_close = true;
    if (w->refuse > 0 && resp->n_events > 0) {
        w->refuse--;
        return CAIRN_EAGAIN;
    }
    w->responses++;
    for (size_t i = 0; i < resp->n_events; i++) {
        const struct mvcc_event *e = &resp->events[i];
        w->events++;
        if (!e->is_delete)
            snprintf(w->last, sizeof w->last, "%.*s", (int)e->kv.value_len,
                     (const char *)e->kv.value);
    }
    return 0;
}

static struct watch_seen *seen;
static int want_events;
static bool enough_events(struct fixture *f)
{
    (void)f;
    return seen->events >= want_events;
}

/* A watch from a past revision gets its history without a write, then new
 * writes; a paused watcher catches up on resume; the header carries the
 * store's revision; once the member stops the hub answers
 * CAIRN_ESHUTDOWN and calls back no more. */
static void test_watch(void **state)
{
    struct fixture *f = *state;
    start(f);
    put(f, "w", "1");
    put(f, "w", "2");
    put(f, "other", "x");

    struct watch_seen w = {0};
    seen = &w;
    struct server_watch *hub;
    assert_int_equal(server_watch_open(f->s, &w, on_watch, &hub), 0);
    struct mvcc_watch_req r = {
        .key = (const uint8_t *)"w", .key_len = 1, .start_rev = 1};
    int64_t id = -1;
    assert_int_equal(server_watch_create(f->s, hub, &r, &id), 0);
    assert_int_equal(id, 0);
    want_events = 2;
    run_until(f, enough_events);
    assert_int_equal(w.events, 2);
    assert_string_equal(w.last, "2");

    uint64_t cid, mid, term;
    int64_t rev;
    server_watch_header(f->s, &cid, &mid, &rev, &term);
    assert_int_equal(cid, server_cluster_id(f->s));
    assert_int_equal(mid, server_member_id(f->s));
    assert_int_equal(rev, 4); /* three puts after revision 1 */
    assert_true(term >= 1);

    /* Refused once: paused, then delivered after resume. */
    w.refuse = 1;
    put(f, "w", "3");
    RUN_UNTIL(f, w.refuse == 0);
    assert_int_equal(w.refuse, 0);
    assert_int_equal(w.events, 2);
    assert_int_equal(server_watch_resume(f->s, hub, id), 0);
    want_events = 3;
    run_until(f, enough_events);
    assert_string_equal(w.last, "3");

    /* A second watcher on a key range; the first is canceled. */
    int64_t id2 = -1;
    struct mvcc_watch_req r2 = {.key = (const uint8_t *)"o",
                                .key_len = 1,
                                .end = (const uint8_t *)"p",
                                .end_len = 1};
    assert_int_equal(server_watch_create(f->s, hub, &r2, &id2), 0);
    assert_int_equal(id2, 1);
    assert_int_equal(server_watch_cancel(f->s, hub, id), 0);
    assert_int_equal(server_watch_cancel(f->s, hub, id), CAIRN_ENOTFOUND);
    put(f, "w", "4");
    put(f, "other", "y");
    want_events = 4;
    run_until(f, enough_events);
    assert_string_equal(w.last, "y");

    /* Stopped: no more callbacks, every call refused, close still works. */
    server_stop(f->s);
    run_until(f, is_stopped);
    w.closed = true;
    int64_t id3 = -1;
    assert_int_equal(server_watch_create(f->s, hub, &r, &id3), CAIRN_ESHUTDOWN);
    assert_int_equal(server_watch_progress(f->s, hub, id2), CAIRN_ESHUTDOWN);
    assert_int_equal(server_watch_resume(f->s, hub, id2), CAIRN_ESHUTDOWN);
    struct server_watch *late;
    assert_int_equal(server_watch_open(f->s, &w, on_watch, &late),
                     CAIRN_ESHUTDOWN);
    server_watch_close(f->s, hub);
    assert_false(w.after_close);
    server_close(f->s);
    f->s = NULL;
    assert_int_equal(uv_run(&f->loop, UV_RUN_NOWAIT), 0);
}

int test_server_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_serve_stop_recover, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_join_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wal_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_hashed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch, setup, teardown),
    };
    return cmocka_run_group_tests_name("server", tests, NULL, NULL);
}
