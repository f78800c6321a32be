/* HTTP/1.1 on the client port: /health, /version, /metrics and (with
 * --enable-v2) the v2 keys API as etcd
 * answers them, and the Prometheus rendering. */
#include <stdlib.h>
#include <string.h>

#include "fake.h"
#include "util/prng.h"

static void test_metrics_render(void **state)
{
    (void)state;
    struct node_status st = {
        .member_id = 7, .leader = 7, .db_bytes = 4096, .db_in_use_bytes = 1024};
    struct api_metrics m = {
        .leader_changes_seen = 3,
        .proposals_committed = 10,
        .proposals_applied = 9,
        .proposals_pending = 1,
        .proposals_failed = 2,
        .has_mvcc = true,
        .mvcc = {.puts = 2, .deletes = 3, .ranges = 5, .txns = 1, .keys = 1}};
    struct api_grpc_counter c = {"etcdserverpb.KV", "Range", "unary", {0}, 4};
    c.handled[0] = 3;
    c.handled[11] = 1;
    struct buf b = BUF_INIT;
    assert_int_equal(api_metrics_render(&st, &m, &c, 1, &b), 0);
    assert_int_equal(buf_append_u8(&b, 0), 0);
    const char *t = (const char *)b.data;
    const char *want[] = {
        "\netcd_server_has_leader 1\n",
        "\netcd_server_leader_changes_seen_total 3\n",
        "\netcd_server_proposals_committed_total 10\n",
        "\netcd_server_proposals_applied_total 9\n",
        "\netcd_server_proposals_pending 1\n",
        "\netcd_server_proposals_failed_total 2\n",
        "\netcd_mvcc_db_total_size_in_bytes 4096\n",
        "\netcd_mvcc_db_total_size_in_use_in_bytes 1024\n",
        /* what etcd's e2e metricsTest reads */
        "\netcd_mvcc_put_total 2\n",
        "\netcd_debugging_mvcc_keys_total 1\n",
        "\netcd_mvcc_delete_total 3\n",
        "\netcd_mvcc_range_total 5\n",
        "\netcd_mvcc_txn_total 1\n",
        "\netcd_debugging_mvcc_put_total 2\n",
        "# TYPE etcd_mvcc_put_total counter\n",
        "# TYPE etcd_debugging_mvcc_keys_total gauge\n",
        "\netcd_server_is_leader 1\n",
        "# TYPE etcd_server_has_leader gauge\n",
        "etcd_server_version{server_version=\"3.4.23\"} 1\n",
        "etcd_cluster_version{cluster_version=\"3.4\"} 1\n",
        "grpc_server_started_total{grpc_method=\"Range\",grpc_service="
        "\"etcdserverpb.KV\",grpc_type=\"unary\"} 4\n",
        "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"Range\","
        "grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 3\n",
        "grpc_server_handled_total{grpc_code=\"OutOfRange\",grpc_method="
        "\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 1\n",
        "grpc_server_handled_total{grpc_code=\"Unauthenticated\",grpc_method="
        "\"Range\",grpc_service=\"etcdserverpb.KV\",grpc_type=\"unary\"} 0\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(t, want[i]) == NULL)
            fail_msg("missing %s", want[i]);
    /* every line is a comment or "name[{labels}] value" */
    for (const char *line = t; *line != 0;) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        if (line[0] != '#') {
            const char *sp = memchr(line, ' ', (size_t)(nl - line));
            assert_non_null(sp);
            assert_true(sp[1] >= '0' && sp[1] <= '9');
        }
        line = nl + 1;
    }
    buf_free(&b);
    /* without the member's counters, their lines are left out */
    struct buf b2 = BUF_INIT;
    assert_int_equal(api_metrics_render(&st, NULL, NULL, 0, &b2), 0);
    assert_int_equal(buf_append_u8(&b2, 0), 0);
    assert_null(strstr((char *)b2.data, "proposals"));
    assert_null(strstr((char *)b2.data, "put_total"));
    assert_non_null(strstr((char *)b2.data, "\netcd_server_has_leader 1\n"));
    buf_free(&b2);
}

/* Histograms in Prometheus' text format: cumulative _bucket lines with
 * etcd's bounds as Go prints them, +Inf, _sum in seconds, _count; the
 * peer label before le; a histogram the member does not keep is left out. */
static void test_metrics_histograms(void **state)
{
    (void)state;
    struct node_status st = {.member_id = 7, .leader = 7};
    struct api_metrics *m = calloc(1, sizeof *m);
    assert_non_null(m);
    struct cairn_hist h;
    cairn_hist_init(&h, 1000000, 14); /* etcd's disk buckets: 1 ms .. 8.192 s */
    cairn_hist_observe(&h, 500000);   /* 0.0005 s: le 0.001 */
    cairn_hist_observe(&h, 1000000);  /* 0.001 s: le 0.001 (bound in) */
    cairn_hist_observe(&h, 3000000);  /* le 0.004 */
    cairn_hist_observe(&h, 20000000000); /* 20 s: +Inf only */
    cairn_hist_read(&h, &m->wal_fsync);
    m->n_peers = 2;
    m->peers[0].id = 0x8e9e05c52164694dULL;
    cairn_hist_init(&h, 100000, 16); /* etcd's RTT buckets: 0.1 ms .. */
    cairn_hist_observe(&h, 150000);
    cairn_hist_read(&h, &m->peers[0].rtt);
    m->peers[1].id = 0x2a;
    cairn_hist_read(&h, &m->peers[1].rtt);
    struct buf b = BUF_INIT;
    assert_int_equal(api_metrics_render(&st, m, NULL, 0, &b), 0);
    assert_int_equal(buf_append_u8(&b, 0), 0);
    const char *t = (const char *)b.data;
    const char *wal =
        "# HELP etcd_disk_wal_fsync_duration_seconds The latency "
        "distributions of fsync called by WAL.\n"
        "# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 2\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.002\"} 2\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.004\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.008\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.016\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.032\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.064\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.128\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.256\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"0.512\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"1.024\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"2.048\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"4.096\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"8.192\"} 3\n"
        "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 4\n"
        "etcd_disk_wal_fsync_duration_seconds_sum 20.0045\n"
        "etcd_disk_wal_fsync_duration_seconds_count 4\n";
    if (strstr(t, wal) == NULL)
        fail_msg("wal histogram not as expected in:\n%s", t);
    assert_null(strstr(t, "backend_commit"));
    const char *want[] = {
        "# TYPE etcd_network_peer_round_trip_time_seconds histogram\n",
        "etcd_network_peer_round_trip_time_seconds_bucket{To="
        "\"8e9e05c52164694d\",le=\"0.0001\"} 0\n",
        "etcd_network_peer_round_trip_time_seconds_bucket{To="
        "\"8e9e05c52164694d\",le=\"0.0002\"} 1\n",
        "etcd_network_peer_round_trip_time_seconds_bucket{To="
        "\"8e9e05c52164694d\",le=\"3.2768\"} 1\n",
        "etcd_network_peer_round_trip_time_seconds_bucket{To="
        "\"8e9e05c52164694d\",le=\"+Inf\"} 1\n",
        "etcd_network_peer_round_trip_time_seconds_sum{To="
        "\"8e9e05c52164694d\"} 0.00015\n",
        "etcd_network_peer_round_trip_time_seconds_count{To=\"2a\"} 1\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(t, want[i]) == NULL)
            fail_msg("missing %s in:\n%s", want[i], t);
    /* one HELP/TYPE for the family, however many peers */
    const char *first = strstr(t, "# TYPE etcd_network_peer_round_trip");
    assert_null(strstr(first + 1, "# TYPE etcd_network_peer_round_trip"));
    buf_free(&b);
    free(m);
}

static void test_http_endpoints(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct buf b = BUF_INIT;
    fx_http_get(&f, "/health", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 200"));
    assert_non_null(strstr((char *)b.data, "\r\n\r\n{\"health\":\"true\"}"));
    /* the quorum read */
    assert_int_equal(f.fake.reads, 1);
    buf_reset(&b);
    /* unhealthy: an alarm, a failed read, a refused status, no leader */
    f.fake.nospace_alarm = true;
    fx_http_get(&f, "/health", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 503"));
    assert_non_null(strstr((char *)b.data, "{\"health\":\"false\"}"));
    buf_reset(&b);
    f.fake.nospace_alarm = false;
    f.fake.refuse_next = CAIRN_ENOLEADER;
    fx_http_get(&f, "/health", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 503"));
    buf_reset(&b);
    f.fake.refuse_status = true;
    fx_http_get(&f, "/health", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 503"));
    buf_reset(&b);
    f.fake.refuse_status = false;
    f.fake.leader = 0;
    fx_http_get(&f, "/health", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 503"));
    assert_non_null(strstr((char *)b.data, "{\"health\":\"false\"}"));
    buf_reset(&b);
    fx_http_get(&f, "/version", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 200"));
    assert_non_null(strstr(
        (char *)b.data,
        "\r\n\r\n{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}"));
    buf_reset(&b);
    /* a call first, so that its counter shows */
    Etcdserverpb__StatusRequest sr = ETCDSERVERPB__STATUS_REQUEST__INIT;
    struct result r;
    fx_unary(&f, "/etcdserverpb.Maintenance/Status", &sr.base, &r);
    assert_int_equal(r.code, RPC_OK);
    result_free(&r);
    RUN_UNTIL(&f, rpc_server_call_count(api_rpc_server(f.api)) == 0);
    fx_http_get(&f, "/metrics", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 200"));
    assert_non_null(strstr((char *)b.data, "\netcd_server_has_leader 0\n"));
    assert_non_null(strstr((char *)b.data,
                           "grpc_server_handled_total{grpc_code=\"OK\","
                           "grpc_method=\"Status\",grpc_service=\"etcdserverpb."
                           "Maintenance\",grpc_type=\"unary\"} 1\n"));
    buf_reset(&b);
    fx_http_get(&f, "/nope", &b);
    assert_non_null(strstr((char *)b.data, "HTTP/1.1 404"));
    assert_non_null(strstr((char *)b.data, "404 page not found"));
    buf_free(&b);
    fx_close(&f);
}

/* One raw HTTP/1.1 request; the whole answer in out. */
static void v2_http(struct fx *f, const char *method, const char *path,
                    const char *form, struct buf *out)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path,
                     form ? "Content-Type: application/x-www-form-urlencoded"
                            "\r\n"
                          : "",
                     form ? strlen(form) : 0, form ? form : "");
    buf_reset(out);
    fx_raw(f, req, (size_t)n, out);
}

#define HAS(b, s)                                          \
    do {                                                   \
        if (strstr((const char *)(b).data, (s)) == NULL)   \
            fail_msg("missing %s in:\n%s", (s), (b).data); \
    } while (0)

static void test_v2_disabled(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    struct buf b = BUF_INIT;
    v2_http(&f, "GET", "/v2/keys/foo", NULL, &b);
    HAS(b, "HTTP/1.1 404");
    HAS(b, "404 page not found");
    assert_int_equal(f.fake.v2_calls, 0);
    buf_free(&b);
    fx_close(&f);
}

struct later_put {
    uv_timer_t t;
    struct fake *fake;
};

static void noop_done(void *ctx, const struct node_result *res)
{
    (void)ctx;
    assert_int_equal(res->err, 0);
}

/* A write made while a watch waits (as another client's would be). */
static void on_later_put(uv_timer_t *t)
{
    struct later_put *lp = t->data;
    struct api_backend be = fake_backend(lp->fake);
    /* a hidden key first: a recursive watcher waiting is not told of it */
    struct v2_req h = {.op = V2_OP_PUT,
                       .path = (const uint8_t *)"/_h",
                       .path_len = 3,
                       .value = (const uint8_t *)"hidden",
                       .value_len = 6};
    assert_int_equal(be.v2(be.arg, &h, NULL, noop_done), 0);
    struct v2_req q = {.op = V2_OP_PUT,
                       .path = (const uint8_t *)"/w",
                       .path_len = 2,
                       .value = (const uint8_t *)"late",
                       .value_len = 4};
    assert_int_equal(be.v2(be.arg, &q, NULL, noop_done), 0);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_v2_keys(void **state)
{
    (void)state;
    struct fx f;
    struct api_config cfg = {.enable_v2 = true};
    fx_open(&f, &cfg);
    struct buf b = BUF_INIT;
    /* a form body, then the answer with etcd's headers */
    v2_http(&f, "PUT", "/v2/keys/foo", "value=a+b%20c", &b);
    HAS(b, "HTTP/1.1 201 Created");
    HAS(b, "X-Etcd-Index: 1\r\n");
    HAS(b, "X-Raft-Index: 1\r\n");
    HAS(b, "X-Etcd-Cluster-Id: c1\r\n");
    HAS(b, "Access-Control-Allow-Origin: *\r\n");
    HAS(b, "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":"
           "\"a b c\",\"modifiedIndex\":1,\"createdIndex\":1}}\n");
    /* the key is unescaped and cleaned; the query works for DELETE */
    v2_http(&f, "GET", "/v2/keys//x/../f%6Fo", NULL, &b);
    HAS(b, "HTTP/1.1 200");
    HAS(b, "\"key\":\"/foo\"");
    v2_http(&f, "PUT", "/v2/keys/nv?noValueOnSuccess=true", "value=1", &b);
    HAS(b, "\r\n\r\n{\"action\":\"set\"}\n");
    v2_http(&f, "DELETE", "/v2/keys/foo?prevValue=zz", NULL, &b);
    HAS(b, "HTTP/1.1 412");
    HAS(b, "\"cause\":\"[zz != a b c]\"");
    /* parseKeyRequest's refusals, with index 0 */
    static const struct {
        const char *method, *path, *form, *want;
    } bad[] = {
        {"GET", "/v2/keys/k?recursive=maybe", NULL,
         "{\"errorCode\":209,\"message\":\"Invalid field\",\"cause\":"
         "\"invalid value for \\\"recursive\\\"\",\"index\":0}"},
        {"PUT", "/v2/keys/k?prevIndex=x", "value=1",
         "{\"errorCode\":203,\"message\":\"The given index in POST form is "
         "not a number\""},
        {"PUT", "/v2/keys/k?ttl=-1", "value=1", "\"errorCode\":202"},
        {"PUT", "/v2/keys/k", "value=%zz",
         "{\"errorCode\":210,\"message\":\"Invalid POST form\",\"cause\":"
         "\"invalid URL escape \\\"%zz\\\"\",\"index\":0}"},
        {"PUT", "/v2/keys/k?prevValue=", "value=1", "\"errorCode\":201"},
        {"POST", "/v2/keys/k?wait=true", "value=1",
         "\"cause\":\"\\\"wait\\\" can only be used with GET requests\""},
        {"PUT", "/v2/keys/k?refresh=true&ttl=5", "value=1",
         "\"errorCode\":211"},
        {"PUT", "/v2/keys/k?refresh=true", NULL, "\"errorCode\":212"},
        {"PUT", "/v2/keys/k?prevExist=maybe", "value=1",
         "\"cause\":\"invalid value for prevExist\""},
    };
    int calls = f.fake.v2_calls;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v2_http(&f, bad[i].method, bad[i].path, bad[i].form, &b);
        HAS(b, "HTTP/1.1 400");
        HAS(b, "X-Etcd-Index: 0\r\n");
        HAS(b, bad[i].want);
    }
    assert_int_equal(f.fake.v2_calls, calls); /* none reached the member */
    v2_http(&f, "PATCH", "/v2/keys/k", NULL, &b);
    HAS(b, "HTTP/1.1 405");
    HAS(b, "Allow: HEAD,GET,PUT,POST,DELETE\r\n");
    v2_http(&f, "GET", "/v2/keysfoo", NULL, &b);
    HAS(b, "HTTP/1.1 404");
    /* a member failure: Raft Internal Error with etcd's text */
    f.fake.fail_next = CAIRN_ETIMEOUT;
    v2_http(&f, "GET", "/v2/keys/foo", NULL, &b);
    HAS(b, "HTTP/1.1 500");
    HAS(b, "{\"errorCode\":300,\"message\":\"Raft Internal Error\",\"cause\":"
           "\"etcdserver: request timed out\",\"index\":0}");
    /* a watch found in the history, then one that waits for a write */
    v2_http(&f, "GET", "/v2/keys/foo?wait=true&waitIndex=1", NULL, &b);
    HAS(b, "HTTP/1.1 200");
    HAS(b, "X-Etcd-Index: 2\r\n"); /* the current index, as etcd's */
    HAS(b, "{\"action\":\"set\",\"node\":{\"key\":\"/foo\"");
    struct later_put lp = {.fake = &f.fake};
    uv_timer_init(&f.loop, &lp.t);
    lp.t.data = &lp;
    uv_timer_start(&lp.t, on_later_put, 20, 0);
    f.fake.v2_raft_index = 77;
    v2_http(&f, "GET", "/v2/keys/?wait=true&recursive=true", NULL, &b);
    HAS(b, "HTTP/1.1 200");
    /* the watch's headers: the index and applied Raft index it began at */
    HAS(b, "X-Etcd-Index: 2\r\nX-Raft-Index: 77\r\nX-Raft-Term: ");
    HAS(b, "{\"action\":\"set\",\"node\":{\"key\":\"/w\",\"value\":"
           "\"late\"");
    /* members and machines */
    f.fake.n_members = 1;
    f.fake.members[0].id = 0xab;
    strcpy(f.fake.members[0].name, "m1");
    f.fake.members[0].n_peer_urls = 1;
    strcpy(f.fake.members[0].peer_urls[0], "http://127.0.0.1:2380");
    f.fake.members[0].n_client_urls = 2;
    strcpy(f.fake.members[0].client_urls[0], "http://b:2379");
    strcpy(f.fake.members[0].client_urls[1], "http://a:2379");
    v2_http(&f, "GET", "/v2/members", NULL, &b);
    HAS(b, "{\"members\":[{\"id\":\"ab\",\"name\":\"m1\",\"peerURLs\":["
           "\"http://127.0.0.1:2380\"],\"clientURLs\":[\"http://b:2379\","
           "\"http://a:2379\"]}]}\n");
    v2_http(&f, "GET", "/v2/machines", NULL, &b);
    HAS(b, "\r\n\r\nhttp://a:2379, http://b:2379");
    /* the leader and the stats: this member (a1) leads, then follows ab */
    f.fake.members[0].id = 0xa1;
    f.fake.leader = 0xa1;
    v2_http(&f, "GET", "/v2/members/leader", NULL, &b);
    HAS(b, "HTTP/1.1 200");
    HAS(b, "{\"id\":\"a1\",\"name\":\"m1\"");
    v2_http(&f, "GET", "/v2/stats/leader", NULL, &b);
    HAS(b, "{\"leader\":\"a1\",\"followers\":{}}");
    v2_http(&f, "GET", "/v2/stats/self", NULL, &b);
    HAS(b, "{\"name\":\"m1\",\"id\":\"a1\",\"state\":\"StateLeader\"");
    HAS(b, "\"recvAppendRequestCnt\":0,\"sendAppendRequestCnt\":0}");
    f.fake.leader = 0xab;
    v2_http(&f, "GET", "/v2/stats/leader", NULL, &b);
    HAS(b, "HTTP/1.1 403");
    HAS(b, "{\"message\":\"not current leader\"}");
    v2_http(&f, "GET", "/v2/members/leader", NULL, &b);
    HAS(b, "HTTP/1.1 503");
    HAS(b, "\r\n\r\n{\"message\":\"During election\"}");
    /* what this API answered: 2 sets (the late one bypassed it), 1 get
     * (the failed one is the member's, not counted), a failed
     * compare-and-delete */
    v2_http(&f, "GET", "/v2/stats/store", NULL, &b);
    HAS(b, "{\"getsSuccess\":1,\"getsFail\":0,\"setsSuccess\":2,");
    HAS(b, "\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":1,"
           "\"expireCount\":0,\"watchers\":0}");
    buf_free(&b);
    fx_close(&f);
}

/* Seeded random keys, query strings and form bodies (escapes cut short,
 * stray separators, bad numbers and booleans): every request gets an HTTP
 * answer, the server stays up, and a normal request works after them. */
static void test_v2_garbage(void **state)
{
    (void)state;
    struct fx f;
    struct api_config cfg = {.enable_v2 = true};
    fx_open(&f, &cfg);
    struct prng rng;
    prng_seed(&rng, 0x76325f67);
    static const char alphabet[] = "%+&=;?/._~ab0Z9";
    static const char *const names[] = {
        "value",  "ttl",       "prevIndex", "prevValue",       "prevExist",
        "dir",    "recursive", "wait",      "waitIndex",       "refresh",
        "sorted", "quorum",    "stream",    "noValueOnSuccess"};
    static const char *const methods[] = {"GET",    "PUT",  "POST",
                                          "DELETE", "HEAD", "PATCH"};
    struct buf b = BUF_INIT;
    for (int iter = 0; iter < 300; iter++) {
        char path[160] = "/v2/keys/";
        size_t n = strlen(path);
        size_t klen = (size_t)prng_below(&rng, 12);
        for (size_t i = 0; i < klen; i++)
            path[n++] = alphabet[prng_below(&rng, sizeof alphabet - 1)];
        path[n++] = '?';
        for (int p = 0; p < 3; p++) {
            const char *k = names[prng_below(&rng, 14)];
            n += (size_t)snprintf(path + n, sizeof path - n,
                                  "%s%s=", p ? "&" : "", k);
            size_t vlen = (size_t)prng_below(&rng, 6);
            for (size_t i = 0; i < vlen; i++)
                path[n++] = alphabet[prng_below(&rng, sizeof alphabet - 1)];
        }
        path[n] = 0;
        /* no waiting watches: they would hold the connection open */
        char *w = strstr(path, "wait=");
        if (w != NULL)
            w[0] = 'W';
        char form[32];
        size_t fl = (size_t)prng_below(&rng, sizeof form - 1);
        for (size_t i = 0; i < fl; i++)
            form[i] = alphabet[prng_below(&rng, sizeof alphabet - 1)];
        form[fl] = 0;
        v2_http(&f, methods[prng_below(&rng, 6)], path, form, &b);
        if (strncmp((const char *)b.data, "HTTP/1.1 ", 9) != 0)
            fail_msg("no answer to %s: %s", path, b.data);
    }
    v2_http(&f, "PUT", "/v2/keys/after", "value=ok", &b);
    HAS(b, "\"value\":\"ok\"");
    buf_free(&b);
    fx_close(&f);
}

/* One request with a body of the given Content-Type (NULL: none). */
static void v2_body(struct fx *f, const char *method, const char *path,
                    const char *ctype, const char *body, struct buf *out)
{
    char req[1024], ct[128] = "";
    if (ctype != NULL)
        snprintf(ct, sizeof ct, "Content-Type: %s\r\n", ctype);
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, ct, strlen(body), body);
    buf_reset(out);
    fx_raw(f, req, (size_t)n, out);
}

/* POST, DELETE and PUT on /v2/members go to the member's configuration
 * changes with etcd's statuses and {"message":...} errors; bad requests
 * never reach it. */
static void test_v2_member_changes(void **state)
{
    (void)state;
    struct fx f;
    struct api_config cfg = {.enable_v2 = true};
    fx_open(&f, &cfg);
    f.fake.n_members = 1;
    f.fake.members[0].id = 0xab;
    strcpy(f.fake.members[0].name, "m1");
    f.fake.members[0].n_peer_urls = 1;
    strcpy(f.fake.members[0].peer_urls[0], "http://127.0.0.1:2380");
    struct buf b = BUF_INIT;
    const char *json = "application/json";
    v2_body(&f, "POST", "/v2/members", json,
            "{\"peerURLs\":[\" http://10.0.0.2:2380\",\"http://10.0.0.1:2380\"]"
            ",\"other\":1}",
            &b);
    HAS(b, "HTTP/1.1 201 Created");
    HAS(b, "X-Etcd-Cluster-Id: c1\r\n");
    /* the fake numbers it 0x12; its URLs trimmed and sorted */
    HAS(b, "\r\n\r\n{\"id\":\"12\",\"name\":\"\",\"peerURLs\":["
           "\"http://10.0.0.1:2380\",\"http://10.0.0.2:2380\"],"
           "\"clientURLs\":[]}\n");
    assert_int_equal(f.fake.n_members, 2);
    v2_body(&f, "POST", "/v2/members", "Application/JSON; charset=utf-8",
            "{\"peerURLs\":[\"http://127.0.0.1:2380\"]}", &b);
    HAS(b, "HTTP/1.1 409");
    HAS(b, "\r\n\r\n{\"message\":\"membership: peerURL exists\"}");
    v2_body(&f, "PUT", "/v2/members/12", json,
            "{\"peerURLs\":[\"http://10.0.0.3:2380\"]}", &b);
    HAS(b, "HTTP/1.1 204 No Content");
    assert_string_equal(f.fake.members[1].peer_urls[0], "http://10.0.0.3:2380");
    v2_body(&f, "PUT", "/v2/members/77", json,
            "{\"peerURLs\":[\"http://10.0.0.4:2380\"]}", &b);
    HAS(b, "HTTP/1.1 404");
    HAS(b, "{\"message\":\"No such member: 77\"}");
    v2_body(&f, "DELETE", "/v2/members/12", NULL, "", &b);
    HAS(b, "HTTP/1.1 204 No Content");
    assert_int_equal(f.fake.n_members, 1);
    v2_body(&f, "DELETE", "/v2/members/12", NULL, "", &b);
    HAS(b, "HTTP/1.1 404");
    HAS(b, "{\"message\":\"No such member: 12\"}");
    /* refused before the member is asked */
    static const struct {
        const char *method, *path, *ctype, *body, *want;
    } bad[] = {
        {"POST", "/v2/members", "application/x-www-form-urlencoded", "a=1",
         "415 Unsupported Media Type\r\n"},
        {"POST", "/v2/members", "text/json; x=y", "{}",
         "{\"message\":\"Bad Content-Type text/json, accept "
         "application/json\"}"},
        {"POST", "/v2/members", "application/json", "",
         "{\"message\":\"unexpected end of JSON input\"}"},
        {"POST", "/v2/members", "application/json", "{\"peerURLs\":[\"a",
         "HTTP/1.1 400"},
        {"POST", "/v2/members", "application/json", "{} x", "HTTP/1.1 400"},
        {"POST", "/v2/members", "application/json", "{\"peerURLs\":[]}",
         "{\"message\":\"no valid URLs given\"}"},
        {"POST", "/v2/members", "application/json",
         "{\"peerURLs\":[\"ftp://a:1\"]}",
         "{\"message\":\"URL scheme must be http, https, unix, or unixs: "
         "ftp://a:1\"}"},
        {"POST", "/v2/members", "application/json",
         "{\"peerURLs\":[\"http://a\"]}",
         "does not have the form \\\"host:port\\\": http://a\"}"},
        {"PUT", "/v2/members/zz", "application/json",
         "{\"peerURLs\":[\"http://a:1\"]}",
         "{\"message\":\"No such member: zz\"}"},
        {"DELETE", "/v2/members/11112222333344445", NULL, "", "HTTP/1.1 404"},
        {"DELETE", "/v2/members", NULL, "", "405 Method Not Allowed\r\n"},
        {"GET", "/v2/members/nope", NULL, "", "{\"message\":\"Not found\"}"},
        {"PATCH", "/v2/members", NULL, "", "Allow: GET,POST,DELETE,PUT\r\n"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v2_body(&f, bad[i].method, bad[i].path, bad[i].ctype, bad[i].body, &b);
        HAS(b, bad[i].want);
        assert_int_equal(f.fake.n_members, 1);
    }
    /* a member failure other than membership's is etcd's plain 500 */
    f.fake.fail_next = CAIRN_ETIMEOUT;
    v2_body(&f, "DELETE", "/v2/members/ab", NULL, "", &b);
    HAS(b, "HTTP/1.1 500");
    HAS(b, "{\"message\":\"Internal Server Error\"}");
    buf_free(&b);
    fx_close(&f);
}

int test_http_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_metrics_histograms),
        cmocka_unit_test(test_http_endpoints),
        cmocka_unit_test(test_v2_disabled),
        cmocka_unit_test(test_v2_keys),
        cmocka_unit_test(test_v2_garbage),
        cmocka_unit_test(test_v2_member_changes),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
