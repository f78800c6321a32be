/* v2 store tests: each operation's JSON answer and status as etcd 3.4's
 * v2 API prints them (compared with Debian's etcd by hand, see
 * docs/v2.md), every error code with its cause, in-order keys, TTL expiry
 * by SYNC, the watch history (recursive, deleted directories, the
 * 1,000-event window and its 401), records surviving reopen, an aborted
 * batch leaving nothing, path cleaning and Go's JSON escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "v2/v2.h"

struct fx {
    char dir[64];
    struct mvcc_store *s;
    struct mvcc_arena a;
    uint64_t ci;
};

static void fx_open(struct fx *f)
{
    struct mvcc_options o = {.dir = f->dir, .quota_bytes = 64u << 20};
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &f->s, &em), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/cairn-v2-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fx_open(f);
    mvcc_arena_init(&f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mvcc_close(f->s);
    mvcc_arena_free(&f->a);
    char p[128];
    snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

#define NOW 1700000000000000000LL /* 2023-11-14T22:13:20Z */
#define SEC 1000000000LL

/* Options of one request. */
struct o {
    const char *value, *prev_value;
    uint64_t prev_index;
    uint8_t prev_exist;
    bool dir, recursive, refresh;
    int64_t ttl_s; /* >0: expiration NOW + ttl */
    int64_t now;   /* 0: NOW */
};

/* One request in its own committed batch; checks status and body. */
static void req(struct fx *f, uint8_t op, const char *path, struct o o,
                int want_status, const char *want_body)
{
    struct v2_req q = {
        .op = op, .path = (const uint8_t *)path, .path_len = strlen(path)};
    q.now_ns = o.now ? o.now : NOW;
    if (o.value) {
        q.value = (const uint8_t *)o.value;
        q.value_len = strlen(o.value);
    }
    if (o.prev_value) {
        q.prev_value = (const uint8_t *)o.prev_value;
        q.prev_value_len = strlen(o.prev_value);
    }
    q.prev_index = o.prev_index;
    q.prev_exist = o.prev_exist;
    q.dir = o.dir;
    q.recursive = o.recursive;
    q.refresh = o.refresh;
    if (o.ttl_s > 0)
        q.expiration_ns = NOW + o.ttl_s * SEC;
    assert_int_equal(v2_req_check(&q), 0);
    struct v2_result r;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(v2_apply(f->s, &q, &f->a, &r), 0);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    if (want_body != NULL) {
        char want[2048];
        snprintf(want, sizeof want, "%s\n", want_body);
        assert_string_equal(r.body, want);
    }
    assert_int_equal(r.status, want_status);
    mvcc_arena_reset(&f->a);
}

#define PUT(f, p, st, body, ...) \
    req(f, V2_OP_PUT, p, (struct o){__VA_ARGS__}, st, body)
#define GET(f, p, st, body, ...) \
    req(f, V2_OP_GET, p, (struct o){__VA_ARGS__}, st, body)
#define DEL(f, p, st, body, ...) \
    req(f, V2_OP_DELETE, p, (struct o){__VA_ARGS__}, st, body)

static void test_set_get_delete(void **state)
{
    struct fx *f = *state;
    GET(f, "/", 200, "{\"action\":\"get\",\"node\":{\"dir\":true}}");
    PUT(f, "/foo", 201,
        "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
        "\"modifiedIndex\":1,\"createdIndex\":1}}",
        .value = "bar");
    GET(f, "/foo", 200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/foo\",\"value\":\"bar\","
        "\"modifiedIndex\":1,\"createdIndex\":1}}");
    PUT(f, "/foo", 200,
        "{\"action\":\"set\",\"node\":{\"key\":\"/foo\",\"value\":\"baz\","
        "\"modifiedIndex\":2,\"createdIndex\":2},\"prevNode\":{\"key\":"
        "\"/foo\",\"value\":\"bar\",\"modifiedIndex\":1,\"createdIndex\":1}}",
        .value = "baz");
    /* intermediate directories are made; listings are sorted and skip
     * hidden keys; recursive lists the whole tree */
    PUT(f, "/d/b/c", 201, NULL, .value = "1");
    PUT(f, "/d/a", 201, NULL, .value = "2");
    PUT(f, "/d/_h", 201, NULL, .value = "3");
    GET(f, "/d", 200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,\"nodes\":["
        "{\"key\":\"/d/a\",\"value\":\"2\",\"modifiedIndex\":4,"
        "\"createdIndex\":4},{\"key\":\"/d/b\",\"dir\":true,"
        "\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":3,"
        "\"createdIndex\":3}}");
    GET(f, "/d", 200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,\"nodes\":["
        "{\"key\":\"/d/a\",\"value\":\"2\",\"modifiedIndex\":4,"
        "\"createdIndex\":4},{\"key\":\"/d/b\",\"dir\":true,\"nodes\":[{"
        "\"key\":\"/d/b/c\",\"value\":\"1\",\"modifiedIndex\":3,"
        "\"createdIndex\":3}],\"modifiedIndex\":3,\"createdIndex\":3}],"
        "\"modifiedIndex\":3,\"createdIndex\":3}}",
        .recursive = true);
    DEL(f, "/d", 403,
        "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/d\","
        "\"index\":5}");
    DEL(f, "/d", 403,
        "{\"errorCode\":108,\"message\":\"Directory not empty\",\"cause\":"
        "\"/d\",\"index\":5}",
        .dir = true);
    DEL(f, "/d", 200,
        "{\"action\":\"delete\",\"node\":{\"key\":\"/d\",\"dir\":true,"
        "\"modifiedIndex\":6,\"createdIndex\":3},\"prevNode\":{\"key\":\"/d\","
        "\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3}}",
        .recursive = true);
    GET(f, "/d/a", 404,
        "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/d\","
        "\"index\":6}");
    DEL(f, "/foo", 200,
        "{\"action\":\"delete\",\"node\":{\"key\":\"/foo\",\"modifiedIndex\":"
        "7,\"createdIndex\":2},\"prevNode\":{\"key\":\"/foo\",\"value\":"
        "\"baz\",\"modifiedIndex\":2,\"createdIndex\":2}}");
}

static void test_errors(void **state)
{
    struct fx *f = *state;
    PUT(f, "/f", 201, NULL, .value = "v");
    PUT(f, "/f/x", 400,
        "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":\"/f\","
        "\"index\":1}",
        .value = "v");
    GET(f, "/f/x", 400,
        "{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":\"/f\","
        "\"index\":1}");
    PUT(f, "/f", 412,
        "{\"errorCode\":105,\"message\":\"Key already exists\",\"cause\":"
        "\"/f\",\"index\":1}",
        .value = "v", .prev_exist = V2_PREV_FALSE);
    PUT(f, "/", 400,
        "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":\"/\","
        "\"index\":1}",
        .value = "v");
    DEL(f, "/", 400,
        "{\"errorCode\":107,\"message\":\"Root is read only\",\"cause\":\"/\","
        "\"index\":1}",
        .recursive = true);
    PUT(f, "/dd", 201, NULL, .dir = true);
    PUT(f, "/dd", 403,
        "{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":\"/dd\","
        "\"index\":2}",
        .value = "x");
    PUT(f, "/nope", 404,
        "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\","
        "\"index\":2}",
        .value = "x", .prev_exist = V2_PREV_TRUE);
    /* failed requests leave the index where it was */
    GET(f, "/", 200, NULL);
}

static void test_compare(void **state)
{
    struct fx *f = *state;
    PUT(f, "/k", 201, NULL, .value = "a");
    PUT(f, "/k", 412,
        "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
        "\"[b != a]\",\"index\":1}",
        .value = "x", .prev_value = "b");
    PUT(f, "/k", 412,
        "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
        "\"[9 != 1]\",\"index\":1}",
        .value = "x", .prev_index = 9);
    PUT(f, "/k", 412,
        "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
        "\"[b != a] [9 != 1]\",\"index\":1}",
        .value = "x", .prev_value = "b", .prev_index = 9);
    PUT(f, "/k", 200,
        "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/k\",\"value\":"
        "\"c\",\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":"
        "\"/k\",\"value\":\"a\",\"modifiedIndex\":1,\"createdIndex\":1}}",
        .value = "c", .prev_value = "a", .prev_index = 1);
    PUT(f, "/k", 200,
        "{\"action\":\"update\",\"node\":{\"key\":\"/k\",\"value\":\"d\","
        "\"modifiedIndex\":3,\"createdIndex\":1},\"prevNode\":{\"key\":\"/k\","
        "\"value\":\"c\",\"modifiedIndex\":2,\"createdIndex\":1}}",
        .value = "d", .prev_exist = V2_PREV_TRUE);
    DEL(f, "/k", 412,
        "{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
        "\"[z != d]\",\"index\":3}",
        .prev_value = "z");
    DEL(f, "/k", 200,
        "{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/k\","
        "\"modifiedIndex\":4,\"createdIndex\":1},\"prevNode\":{\"key\":\"/k\","
        "\"value\":\"d\",\"modifiedIndex\":3,\"createdIndex\":1}}",
        .prev_index = 3);
}

static void test_post_in_order(void **state)
{
    struct fx *f = *state;
    req(f, V2_OP_POST, "/q", (struct o){.value = "1"}, 201,
        "{\"action\":\"create\",\"node\":{\"key\":\"/q/00000000000000000001\","
        "\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}}");
    req(f, V2_OP_POST, "/q", (struct o){.value = "2"}, 201,
        "{\"action\":\"create\",\"node\":{\"key\":\"/q/00000000000000000002\","
        "\"value\":\"2\",\"modifiedIndex\":2,\"createdIndex\":2}}");
    req(f, V2_OP_POST, "/", (struct o){.value = "r"}, 201,
        "{\"action\":\"create\",\"node\":{\"key\":\"/00000000000000000003\","
        "\"value\":\"r\",\"modifiedIndex\":3,\"createdIndex\":3}}");
}

static void test_ttl_and_sync(void **state)
{
    struct fx *f = *state;
    PUT(f, "/t", 201,
        "{\"action\":\"set\",\"node\":{\"key\":\"/t\",\"value\":\"v\","
        "\"expiration\":\"2023-11-14T22:13:25Z\",\"ttl\":5,"
        "\"modifiedIndex\":1,\"createdIndex\":1}}",
        .value = "v", .ttl_s = 5);
    assert_true(v2_has_ttl_keys(f->s));
    /* ttl rounds up what is left, at the reader's clock */
    GET(f, "/t", 200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/t\",\"value\":\"v\","
        "\"expiration\":\"2023-11-14T22:13:25Z\",\"ttl\":3,"
        "\"modifiedIndex\":1,\"createdIndex\":1}}",
        .now = NOW + 2 * SEC + 1);
    PUT(f, "/td/x", 201, NULL, .value = "in");
    PUT(f, "/td", 200, NULL, .dir = true, .prev_exist = V2_PREV_TRUE,
        .ttl_s = 10);
    /* a SYNC before the deadline changes nothing */
    req(f, V2_OP_SYNC, "", (struct o){.now = NOW + 4 * SEC}, 200, NULL);
    GET(f, "/t", 200, NULL);
    req(f, V2_OP_SYNC, "", (struct o){.now = NOW + 5 * SEC}, 200, NULL);
    GET(f, "/t", 404, NULL);
    struct buf b = BUF_INIT;
    struct v2_scan_pos pos;
    assert_int_equal(v2_history_scan(f->s, "/t", 2, false, false, 4, &b, &pos),
                     0);
    assert_int_equal(pos.index, 4);
    assert_int_equal(pos.found, 4);
    const char *want =
        "{\"action\":\"expire\",\"node\":{\"key\":\"/t\",\"modifiedIndex\":4,"
        "\"createdIndex\":1},\"prevNode\":{\"key\":\"/t\",\"value\":\"v\","
        "\"expiration\":\"2023-11-14T22:13:25Z\",\"modifiedIndex\":1,"
        "\"createdIndex\":1}}\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    /* the directory expires with its child; a watcher on the child hears */
    req(f, V2_OP_SYNC, "", (struct o){.now = NOW + 11 * SEC}, 200, NULL);
    GET(f, "/td/x", 404, NULL);
    assert_false(v2_has_ttl_keys(f->s));
    buf_reset(&b);
    assert_int_equal(
        v2_history_scan(f->s, "/td/x", 5, false, false, 5, &b, &pos), 0);
    assert_non_null(strstr((const char *)b.data, "\"action\":\"expire\""));
    buf_free(&b);
}

static void test_refresh(void **state)
{
    struct fx *f = *state;
    PUT(f, "/r", 201, NULL, .value = "keep", .ttl_s = 5);
    PUT(f, "/r", 200, NULL, .refresh = true, .ttl_s = 50,
        .prev_exist = V2_PREV_TRUE);
    GET(f, "/r", 200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/r\",\"value\":\"keep\","
        "\"expiration\":\"2023-11-14T22:14:10Z\",\"ttl\":50,"
        "\"modifiedIndex\":2,\"createdIndex\":1}}");
    /* a refresh is not shown to watchers */
    struct buf b = BUF_INIT;
    struct v2_scan_pos pos;
    assert_int_equal(v2_history_scan(f->s, "/r", 2, false, false, 2, &b, &pos),
                     CAIRN_ENOTFOUND);
    assert_int_equal(pos.index, 2);
    /* nor one through a plain set (no prevExist): etcd's Set marks it */
    PUT(f, "/r", 200, NULL, .refresh = true, .ttl_s = 60);
    assert_int_equal(v2_history_scan(f->s, "/r", 2, false, true, 2, &b, &pos),
                     CAIRN_ENOTFOUND);
    assert_int_equal(pos.index, 3);
    buf_free(&b);
    PUT(f, "/none", 404, NULL, .refresh = true, .ttl_s = 5);
}

static void test_history(void **state)
{
    struct fx *f = *state;
    struct buf b = BUF_INIT;
    struct v2_scan_pos pos;
    /* nothing yet: wait */
    assert_int_equal(v2_history_scan(f->s, "/a", 2, true, false, 0, &b, &pos),
                     CAIRN_ENOTFOUND);
    PUT(f, "/a/b", 201, NULL, .value = "1");
    PUT(f, "/c", 201, NULL, .value = "2");
    /* recursive sees the child; not recursive does not */
    assert_int_equal(v2_history_scan(f->s, "/a", 2, false, false, 1, &b, &pos),
                     CAIRN_ENOTFOUND);
    assert_int_equal(v2_history_scan(f->s, "/a", 2, true, false, 1, &b, &pos),
                     0);
    assert_non_null(strstr((const char *)b.data, "\"key\":\"/a/b\""));
    /* "/ab" is not under "/a" */
    PUT(f, "/ab", 201, NULL, .value = "3");
    buf_reset(&b);
    assert_int_equal(v2_history_scan(f->s, "/a", 2, true, false, 3, &b, &pos),
                     CAIRN_ENOTFOUND);
    /* deleting a directory tells the watchers of what was under it */
    DEL(f, "/a", 200, NULL, .recursive = true);
    assert_int_equal(
        v2_history_scan(f->s, "/a/b", 4, false, false, 4, &b, &pos), 0);
    /* the window: past 1,000 events the oldest are cleared */
    for (int i = 0; i < V2_HISTORY_MAX; i++)
        PUT(f, "/w", i == 0 ? 201 : 200, NULL, .value = "x");
    buf_reset(&b);
    assert_int_equal(v2_history_scan(f->s, "/c", 2, false, false, 2, &b, &pos),
                     CAIRN_ECOMPACTED);
    char want[256];
    snprintf(want, sizeof want,
             "{\"errorCode\":401,\"message\":\"The event in requested index "
             "is outdated and cleared\",\"cause\":\"the requested history has "
             "been cleared [5/2]\",\"index\":%d}\n",
             4 + V2_HISTORY_MAX);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_reset(&b);
    assert_int_equal(v2_history_scan(f->s, "/w", 2, false, false, 5, &b, &pos),
                     0);
    buf_free(&b);
}

/* Hidden keys ('_' starting an element): left out of listings; a
 * recursive watcher notified live (etcd's notifyWatchers) does not hear
 * of them, one served from the history does (etcd's scan has no such
 * check), and a watch on the hidden key itself always does. */
static void test_hidden(void **state)
{
    struct fx *f = *state;
    struct buf b = BUF_INIT;
    struct v2_scan_pos pos;
    PUT(f, "/d/_h", 201, NULL, .value = "1");
    PUT(f, "/d/_hd/x", 201, NULL, .value = "2");
    PUT(f, "/d/v", 201, NULL, .value = "3");
    PUT(f, "/_top", 201, NULL, .value = "4");
    GET(f, "/d", 200,
        "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,\"nodes\":["
        "{\"key\":\"/d/v\",\"value\":\"3\",\"modifiedIndex\":3,"
        "\"createdIndex\":3}],\"modifiedIndex\":1,\"createdIndex\":1}}",
        .recursive = true);
    /* from the history: the first event under /d, hidden or not */
    assert_int_equal(v2_history_scan(f->s, "/d", 2, true, false, 1, &b, &pos),
                     0);
    assert_non_null(strstr((const char *)b.data, "\"key\":\"/d/_h\""));
    /* live: /d/_h and /d/_hd/x are passed over for /d/v */
    buf_reset(&b);
    assert_int_equal(v2_history_scan(f->s, "/d", 2, true, true, 1, &b, &pos),
                     0);
    assert_non_null(strstr((const char *)b.data, "\"key\":\"/d/v\""));
    /* watching "/": an element right below it counts too */
    buf_reset(&b);
    assert_int_equal(v2_history_scan(f->s, "/", 1, true, true, 4, &b, &pos),
                     CAIRN_ENOTFOUND);
    /* the hidden key itself, and under a hidden directory watched */
    buf_reset(&b);
    assert_int_equal(
        v2_history_scan(f->s, "/d/_h", 5, false, true, 1, &b, &pos), 0);
    assert_non_null(strstr((const char *)b.data, "\"key\":\"/d/_h\""));
    buf_reset(&b);
    assert_int_equal(
        v2_history_scan(f->s, "/d/_hd", 6, true, true, 1, &b, &pos), 0);
    assert_non_null(strstr((const char *)b.data, "\"key\":\"/d/_hd/x\""));
    /* a hidden directory deleted still reaches a watcher below it */
    DEL(f, "/d/_hd", 200, NULL, .recursive = true);
    buf_reset(&b);
    assert_int_equal(
        v2_history_scan(f->s, "/d/_hd/x", 8, false, true, 5, &b, &pos), 0);
    assert_non_null(strstr((const char *)b.data, "\"action\":\"delete\""));
    buf_free(&b);
}

static void test_reopen_and_abort(void **state)
{
    struct fx *f = *state;
    PUT(f, "/p", 201, NULL, .value = "1");
    /* an internal write (a member change) moves the index, no event */
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(v2_bump_index(f->s), 0);
    /* etcd's /0/version write: counted the first time only, restarts
     * included */
    assert_int_equal(v2_cluster_version_set(f->s), 0);
    assert_int_equal(v2_cluster_version_set(f->s), 0);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    mvcc_close(f->s);
    fx_open(f);
    assert_int_equal(v2_current_index(f->s), 3);
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(v2_cluster_version_set(f->s), 0);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    assert_int_equal(v2_current_index(f->s), 3);
    PUT(f, "/p", 200,
        "{\"action\":\"set\",\"node\":{\"key\":\"/p\",\"value\":\"2\","
        "\"modifiedIndex\":4,\"createdIndex\":4},\"prevNode\":{\"key\":"
        "\"/p\",\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}}",
        .value = "2");
    /* an aborted batch leaves neither the node nor the index */
    struct v2_req q = {.op = V2_OP_PUT,
                       .path = (const uint8_t *)"/gone",
                       .path_len = 5,
                       .value = (const uint8_t *)"x",
                       .value_len = 1,
                       .now_ns = NOW};
    struct v2_result r;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    assert_int_equal(v2_apply(f->s, &q, &f->a, &r), 0);
    mvcc_batch_abort(f->s);
    GET(f, "/gone", 404,
        "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
        "\"/gone\",\"index\":4}");
}

/* A local read (etcd's GET without quorum) answers what a GET applied
 * from the log answers, outside any batch. */
static void test_local_read(void **state)
{
    struct fx *f = *state;
    PUT(f, "/l/a", 201, NULL, .value = "1", .ttl_s = 30);
    PUT(f, "/l/b/c", 201, NULL, .value = "2");
    static const struct {
        const char *path;
        bool recursive;
    } reads[] = {{"/", true},
                 {"/l", false},
                 {"/l/a", false},
                 {"/zz", false},
                 {"/l/a/x", false}};
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        struct v2_req q = {.op = V2_OP_GET,
                           .path = (const uint8_t *)reads[i].path,
                           .path_len = strlen(reads[i].path),
                           .recursive = reads[i].recursive,
                           .now_ns = NOW};
        struct v2_result local, applied;
        assert_int_equal(v2_read(f->s, &q, &f->a, &local), 0);
        assert_int_equal(mvcc_batch_begin(f->s), 0);
        assert_int_equal(v2_apply(f->s, &q, &f->a, &applied), 0);
        assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
        assert_string_equal(local.body, applied.body);
        assert_int_equal(local.status, applied.status);
        assert_int_equal(local.etcd_index, applied.etcd_index);
    }
    mvcc_arena_reset(&f->a);
}

static void test_paths_and_json(void **state)
{
    (void)state;
    char out[64];
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"", "/"},           {"/", "/"},         {"a", "/a"},
        {"//a//b/", "/a/b"}, {"/a/./b", "/a/b"}, {"/a/../b", "/b"},
        {"/../..", "/"},     {"a/b/..", "/a"},   {"/x/.", "/x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = v2_path_clean(cases[i].in, strlen(cases[i].in), out);
        out[n] = 0;
        assert_string_equal(out, cases[i].want);
    }
    struct buf b = BUF_INIT;
    const char in[] = "a\"\\\n\t<>&\x01\xff\xe2\x80\xa8\xc3\xa9";
    assert_int_equal(v2_json_string(&b, in, sizeof in - 1), 0);
    const char *want = "\"a\\\"\\\\\\n\\t\\u003c\\u003e\\u0026\\u0001\\ufffd"
                       "\\u2028\xc3\xa9\"";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
    struct v2_req q = {
        .op = V2_OP_GET, .path = (const uint8_t *)"/a/", .path_len = 3};
    assert_int_equal(v2_req_check(&q), CAIRN_EINVAL);
    q.op = 99;
    assert_int_equal(v2_req_check(&q), CAIRN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_get_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_and_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hidden, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_local_read, setup, teardown),
        cmocka_unit_test(test_paths_and_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
