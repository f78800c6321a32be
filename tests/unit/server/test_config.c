/* Tests of a member's configuration pieces: etcd's id derivation (values
 * taken from etcd 3.4 itself: `etcd` with no flags reports member
 * 8e9e05c52164694d in cluster cdf818194e3a8c32), URL lists, initial
 * clusters and data directory paths. */
#include <string.h>

#include "server/server.h"
#include "tests.h"

static void test_default_ids(void **state)
{
    (void)state;
    struct server_initial_cluster ic;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(
        server_initial_cluster_parse("default=http://localhost:2380",
                                     "etcd-cluster", &ic, &m),
        0);
    assert_int_equal(ic.n, 1);
    assert_string_equal(ic.members[0].name, "default");
    assert_true(ic.members[0].id == 0x8e9e05c52164694dULL);
    assert_true(ic.cluster_id == 0xcdf818194e3a8c32ULL);
}

/* Three members: ids depend on the token, the cluster id on the sorted
 * member ids, so the order of the flag does not matter. Expected values
 * computed independently (SHA-1 in Python over etcd's byte layout). */
static void test_three_members(void **state)
{
    (void)state;
    struct server_initial_cluster a, b;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(server_initial_cluster_parse("a=http://127.0.0.1:12380,"
                                                  "b=http://127.0.0.1:22380,"
                                                  "c=http://127.0.0.1:32380",
                                                  "tok", &a, &m),
                     0);
    assert_int_equal(a.n, 3);
    assert_true(a.members[0].id == 0xd622127685879b3cULL);
    assert_true(a.members[1].id == 0x117b9266988c4966ULL);
    assert_true(a.members[2].id == 0xca7a34e16cff9c1bULL);
    assert_true(a.cluster_id == 0xf7d1d29ba4cd2368ULL);
    assert_int_equal(server_initial_cluster_parse("c=http://127.0.0.1:32380,"
                                                  "a=http://127.0.0.1:12380,"
                                                  "b=http://127.0.0.1:22380",
                                                  "tok", &b, &m),
                     0);
    assert_true(b.cluster_id == a.cluster_id);
    /* Another token: other ids, so clusters started apart refuse each
     * other. */
    assert_int_equal(server_initial_cluster_parse("a=http://127.0.0.1:12380,"
                                                  "b=http://127.0.0.1:22380,"
                                                  "c=http://127.0.0.1:32380",
                                                  "tok2", &b, &m),
                     0);
    assert_true(b.members[0].id != a.members[0].id);
    assert_true(b.cluster_id != a.cluster_id);
}

/* A member with two URLs (sorted before hashing) and a time, as a member
 * added at run time gets. */
static void test_member_id_with_time(void **state)
{
    (void)state;
    struct server_urls u;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(
        server_urls_parse("http://10.0.0.2:2380,http://10.0.0.1:2380", &u, &m),
        0);
    int64_t now = 1700000000;
    assert_true(server_member_id_derive(&u, "t", &now) ==
                0x91aa8fd2bb7380deULL);
    assert_true(server_member_id_derive(&u, "t", NULL) !=
                0x91aa8fd2bb7380deULL);
}

static void test_initial_cluster_errors(void **state)
{
    (void)state;
    struct server_initial_cluster ic;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(server_initial_cluster_parse("a", "t", &ic, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "name=url"));
    assert_int_equal(server_initial_cluster_parse("=http://h:1", "t", &ic, &m),
                     CAIRN_EINVAL);
    assert_int_equal(server_initial_cluster_parse("a=ftp://h:1", "t", &ic, &m),
                     CAIRN_EINVAL);
    assert_int_equal(
        server_initial_cluster_parse("a=http://h:1,b=http://h:1", "t", &ic, &m),
        CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "duplicate"));
    /* One name with two URLs is one member. */
    assert_int_equal(
        server_initial_cluster_parse("a=http://h:1,a=http://h:2,b=http://h:3",
                                     "t", &ic, &m),
        0);
    assert_int_equal(ic.n, 2);
    assert_int_equal(ic.members[0].peer_urls.n, 2);
}

static void test_urls(void **state)
{
    (void)state;
    struct server_urls u;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(
        server_urls_parse("http://127.0.0.1:2379/,unix://sock", &u, &m), 0);
    assert_int_equal(u.n, 2);
    assert_string_equal(u.url[0], "http://127.0.0.1:2379");
    assert_int_equal(server_urls_parse("", &u, &m), CAIRN_EINVAL);
    assert_int_equal(server_urls_parse("http://a:1,", &u, &m), CAIRN_EINVAL);
    assert_int_equal(server_urls_parse("http://a", &u, &m), CAIRN_EINVAL);
}

static void test_paths(void **state)
{
    (void)state;
    struct server_paths p;
    assert_int_equal(server_paths_init(&p, "default.etcd", NULL), 0);
    assert_string_equal(p.member, "default.etcd/member");
    assert_string_equal(p.wal, "default.etcd/member/wal");
    assert_string_equal(p.snap, "default.etcd/member/snap");
    assert_string_equal(p.db, "default.etcd/member/snap/db");
    assert_int_equal(server_paths_init(&p, "/d", "/w"), 0);
    assert_string_equal(p.wal, "/w");
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(server_paths_init(&p, big, NULL), CAIRN_ETOOBIG);
}

int test_config_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_ids),
        cmocka_unit_test(test_three_members),
        cmocka_unit_test(test_member_id_with_time),
        cmocka_unit_test(test_initial_cluster_errors),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_paths),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
