/* The JSON gateway: the JSON mapping of any message (names, 64-bit
 * integers as strings, base64, enums, oneofs, defaults left out, unknown
 * fields skipped, bad input refused), and POST /v3/... through the loopback
 * connection to the fake member: answers byte for byte as etcd's gateway
 * writes them, errors, paths, methods, the /v3beta/ prefix and a client
 * stream's chunked answer. */
#include <stdio.h>
#include <string.h>

#include "api/gateway.h"
#include "fake.h"

/* Reads json as d, writes it back; the text in out (NUL-terminated). */
static int round_trip(const ProtobufCMessageDescriptor *d, const char *json,
                      struct buf *out, char *err)
{
    struct api_arena arena;
    api_arena_init(&arena);
    ProtobufCMessage *m = NULL;
    size_t used;
    int rv = api__json_read(d, (const uint8_t *)json, strlen(json), &used,
                            &arena, &m, err, 160);
    if (rv == 0) {
        assert_int_equal(api__json_write(m, out), 0);
        assert_int_equal(buf_append_u8(out, 0), 0);
    }
    api_arena_free(&arena);
    return rv;
}

static void expect_json(const ProtobufCMessageDescriptor *d, const char *in,
                        const char *want)
{
    struct buf b = BUF_INIT;
    char err[160];
    assert_int_equal(round_trip(d, in, &b, err), 0);
    assert_string_equal((const char *)b.data, want);
    buf_free(&b);
}

static void test_json_mapping(void **state)
{
    (void)state;
    /* camelCase and .proto names, enums by name or number, int64 quoted or
     * not, defaults left out, unknown fields skipped */
    expect_json(
        &etcdserverpb__range_request__descriptor,
        "{\"key\":\"Zm9v\",\"keysOnly\":true,\"sort_order\":\"DESCEND\","
        "\"limit\":5,\"revision\":\"-2\",\"bogus\":[1,{\"a\":null}],"
        "\"serializable\":false,\"range_end\":null}",
        "{\"key\":\"Zm9v\",\"limit\":\"5\",\"revision\":\"-2\","
        "\"sort_order\":\"DESCEND\",\"keys_only\":true}");
    /* oneofs: a set member shows even at its default; nested messages */
    expect_json(
        &etcdserverpb__txn_request__descriptor,
        "{\"compare\":[{\"key\":\"Zm9v\",\"target\":1,"
        "\"create_revision\":\"0\"}],\"success\":[{\"request_put\":"
        "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}},{\"requestRange\":{}}]}",
        "{\"compare\":[{\"target\":\"CREATE\",\"key\":\"Zm9v\","
        "\"create_revision\":\"0\"}],\"success\":[{\"request_put\":"
        "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}},{\"request_range\":{}}]}");
    /* bytes: URL-safe and unpadded base64 in, standard out; strings are
     * escaped as Go does (HTML-safe) */
    expect_json(&etcdserverpb__put_request__descriptor,
                "{\"key\":\"-_8\",\"value\":\"YQ\"}",
                "{\"key\":\"+/8=\",\"value\":\"YQ==\"}");
    expect_json(
        &etcdserverpb__auth_user_add_request__descriptor,
        "{\"name\":\"a\\\"<\\u00e9\\n\\ud83d\\ude00\",\"password\":\"\"}",
        "{\"name\":\"a\\\"\\u003c\xc3\xa9\\n\xf0\x9f\x98\x80\"}");
    /* uint64 and uint32 as etcd's answers carry them */
    expect_json(&etcdserverpb__hash_response__descriptor,
                "{\"header\":{\"cluster_id\":\"18446744073709551615\"},"
                "\"hash\":4294967295}",
                "{\"header\":{\"cluster_id\":\"18446744073709551615\"},"
                "\"hash\":4294967295}");
}

static void test_json_refused(void **state)
{
    (void)state;
    static const char *bad[] = {
        "notjson",
        "{\"key\":\"Zm9v\"",
        "{\"key\":\"!!\"}",              /* not base64 */
        "{\"limit\":\"x\"}",             /* not a number */
        "{\"limit\":1.5}",               /* not an integer */
        "{\"sort_order\":\"SIDEWAYS\"}", /* no such enum value */
        "{\"keys_only\":1}",             /* not a bool */
        "{\"key\":\"a\\q\"}",            /* bad escape */
        "[1]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct buf b = BUF_INIT;
        char err[160];
        assert_int_equal(round_trip(&etcdserverpb__range_request__descriptor,
                                    bad[i], &b, err),
                         CAIRN_EMALFORMED);
        assert_true(err[0] != 0);
        buf_free(&b);
    }
    /* nesting is bounded (no stack exhaustion on hostile input) */
    char deep[600];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "{\"x\":");
    for (int i = 0; i < 200; i++)
        deep[n++] = '[';
    deep[n] = 0;
    struct buf b = BUF_INIT;
    char err[160];
    assert_int_equal(
        round_trip(&etcdserverpb__range_request__descriptor, deep, &b, err),
        CAIRN_EMALFORMED);
    buf_free(&b);
}

/* POST path with body; the whole answer in out. */
static void post(struct fx *f, const char *path, const char *body,
                 struct buf *out)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    buf_init(out);
    fx_raw(f, req, (size_t)n, out);
}

static void expect_answer(struct fx *f, const char *path, const char *body,
                          const char *status, const char *want)
{
    struct buf out;
    post(f, path, body, &out);
    const char *text = (const char *)out.data;
    if (strncmp(text, status, strlen(status)) != 0 ||
        strstr(text, want) == NULL)
        fail_msg("POST %s %s: got\n%s", path, body, text);
    buf_free(&out);
}

#define HDR "{\"header\":{\"cluster_id\":\"193\",\"member_id\":\"161\","

static void test_gateway_unary(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    expect_answer(&f, "/v3/kv/put", "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}",
                  "HTTP/1.1 200",
                  "\r\n\r\n" HDR "\"revision\":\"2\",\"raft_term\":\"2\"}}");
    expect_answer(&f, "/v3/kv/range", "{\"key\":\"Zm9v\"}", "HTTP/1.1 200",
                  "\r\n\r\n" HDR "\"revision\":\"2\",\"raft_term\":\"2\"},"
                  "\"kvs\":[{\"key\":\"Zm9v\",\"create_revision\":\"2\","
                  "\"mod_revision\":\"2\",\"version\":\"1\","
                  "\"value\":\"YmFy\"}],\"count\":\"1\"}");
    expect_answer(&f, "/v3beta/kv/range", "{\"key\":\"Zm9v\"}", "HTTP/1.1 200",
                  "\"count\":\"1\"}");
    /* an empty body is an empty request: the member's check answers */
    expect_answer(&f, "/v3/kv/range", "", "HTTP/1.1 400",
                  "{\"error\":\"etcdserver: key is not provided\","
                  "\"message\":\"etcdserver: key is not provided\","
                  "\"code\":3}");
    expect_answer(&f, "/v3/election/proclaim", "{\"value\":\"djI=\"}",
                  "HTTP/1.1 500",
                  "{\"error\":\"\\\"leader\\\" field must be provided\","
                  "\"message\":\"\\\"leader\\\" field must be provided\","
                  "\"code\":2}");
    expect_answer(&f, "/v3/lease/revoke", "{\"ID\":\"12345\"}", "HTTP/1.1 404",
                  "\"code\":5}");
    expect_answer(&f, "/v3/kv/range", "notjson", "HTTP/1.1 400", "\"code\":3}");
    expect_answer(&f, "/v3/nosuch", "{}", "HTTP/1.1 404", "Not Found\n");
    expect_answer(&f, "/v3alpha/kv/range", "{}", "HTTP/1.1 404",
                  "404 page not found");
    struct buf out = BUF_INIT;
    fx_http_get(&f, "/v3/kv/range", &out);
    assert_non_null(strstr((const char *)out.data, "405 Method Not Allowed"));
    buf_free(&out);
    /* Lock through the gateway: the key in base64 */
    expect_answer(&f, "/v3/lock/lock", "{\"name\":\"bA==\"}", "HTTP/1.1 200",
                  "\"key\":\"");
    fx_close(&f);
}

static void test_gateway_stream(void **state)
{
    (void)state;
    struct fx f;
    fx_open(&f, NULL);
    expect_answer(&f, "/v3/lease/grant", "{\"ID\":\"7\",\"TTL\":\"30\"}",
                  "HTTP/1.1 200", "\"ID\":\"7\",\"TTL\":\"30\"}");
    /* two requests in one body: two lines, then the stream ends */
    struct buf out;
    post(&f, "/v3/lease/keepalive", "{\"ID\":7} {\"ID\":\"7\"}", &out);
    const char *text = (const char *)out.data;
    assert_non_null(strstr(text, "Transfer-Encoding: chunked"));
    const char *line = "{\"result\":" HDR "\"revision\":\"1\","
                       "\"raft_term\":\"2\"},\"ID\":\"7\",\"TTL\":\"30\"}}\n";
    const char *first = strstr(text, line);
    assert_non_null(first);
    assert_non_null(strstr(first + 1, line));
    assert_int_equal(f.fake.keepalives, 2);
    buf_free(&out);
    /* a stream's error: grpc-gateway's {"error":{...}} chunk */
    post(&f, "/v3/lease/keepalive", "{\"ID\":7} {\"ID\":\"x\"}", &out);
    assert_non_null(strstr((const char *)out.data, "HTTP/1.1 400"));
    buf_free(&out);
    fx_close(&f);
}

int test_gateway_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_mapping),
        cmocka_unit_test(test_json_refused),
        cmocka_unit_test(test_gateway_unary),
        cmocka_unit_test(test_gateway_stream),
    };
    return cmocka_run_group_tests_name("gateway", tests, NULL, NULL);
}
