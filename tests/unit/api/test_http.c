/* HTTP/1.1 on the client port: /health, /version and /metrics as etcd
 * answers them, and the Prometheus rendering. */
#include <string.h>

#include "fake.h"

static void test_metrics_render(void **state)
{
    (void)state;
    struct node_status st = {
        .member_id = 7, .leader = 7, .db_bytes = 4096, .db_in_use_bytes = 1024};
    struct api_metrics m = {.leader_changes_seen = 3,
                            .proposals_committed = 10,
                            .proposals_applied = 9,
                            .proposals_pending = 1,
                            .proposals_failed = 2};
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
    assert_non_null(strstr((char *)b2.data, "\netcd_server_has_leader 1\n"));
    buf_free(&b2);
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

int test_http_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_http_endpoints),
    };
    return cmocka_run_group_tests_name("http", tests, NULL, NULL);
}
