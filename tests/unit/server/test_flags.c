/* Tests of `cairn`'s flag parsing: etcd's defaults, Go flag syntax, ETCD_*
 * variables, refusals of bad values and of flags not implemented yet. */
#include <string.h>

#include "cmd/cairn_flags.h"
#include "tests.h"

#define ARGV(...) ((char *[]){"cairn", __VA_ARGS__, NULL})
#define ARGC(...) \
    ((int)(sizeof((char *[]){"cairn", __VA_ARGS__}) / sizeof(char *)))

static int parse(int argc, char **argv, char **envp, struct cairn_flags *f,
                 struct cairn_errmsg *m)
{
    return cairn_flags_parse(argc, argv, envp, f, m);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    char *argv[] = {"cairn", NULL};
    assert_int_equal(parse(1, argv, NULL, &f, &m), 0);
    const struct server_config *c = &f.config;
    assert_string_equal(c->name, "default");
    assert_string_equal(c->data_dir, "default.etcd");
    assert_null(c->wal_dir);
    assert_string_equal(c->listen_client_urls.url[0], "http://localhost:2379");
    assert_string_equal(c->listen_peer_urls.url[0], "http://localhost:2380");
    assert_string_equal(c->initial_cluster, "default=http://localhost:2380");
    assert_string_equal(c->initial_cluster_token, "etcd-cluster");
    assert_false(c->initial_cluster_existing);
    assert_int_equal(c->snapshot_count, 100000);
    assert_int_equal(c->heartbeat_interval_ms, 100);
    assert_int_equal(c->election_timeout_ms, 1000);
    assert_int_equal(c->max_request_bytes, 1572864);
    assert_true(c->strict_reconfig_check);
    assert_int_equal(c->log_level, CAIRN_LOG_INFO);
    assert_null(c->test_control_path);
}

static void test_syntax(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(
        parse(ARGC("-name", "n1", "--data-dir=/tmp/d", "--snapshot-count",
                   "0x10", "--strict-reconfig-check=false", "--pre-vote",
                   "--initial-cluster-state", "existing", "--log-level=debug"),
              ARGV("-name", "n1", "--data-dir=/tmp/d", "--snapshot-count",
                   "0x10", "--strict-reconfig-check=false", "--pre-vote",
                   "--initial-cluster-state", "existing", "--log-level=debug"),
              NULL, &f, &m),
        0);
    assert_string_equal(f.config.name, "n1");
    assert_string_equal(f.config.data_dir, "/tmp/d");
    assert_int_equal(f.config.snapshot_count, 16);
    assert_false(f.config.strict_reconfig_check);
    assert_true(f.config.pre_vote);
    assert_true(f.config.initial_cluster_existing);
    assert_int_equal(f.config.log_level, CAIRN_LOG_DEBUG);
    /* A name alone makes the initial cluster name=<advertised peer URLs>,
     * as etcd does. */
    assert_string_equal(f.config.initial_cluster, "n1=http://localhost:2380");
}

/* The flags etcd's e2e suite passes: --snapshot-count 0 is etcd 3.4's
 * default, --experimental-initial-corrupt-check is accepted. */
static void test_e2e_flags(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(parse(ARGC("--snapshot-count", "0",
                                "--experimental-initial-corrupt-check"),
                           ARGV("--snapshot-count", "0",
                                "--experimental-initial-corrupt-check"),
                           NULL, &f, &m),
                     0);
    assert_int_equal(f.config.snapshot_count, 100000);
    assert_true(f.config.initial_corrupt_check);
    assert_int_equal(parse(ARGC("--snapshot-count=7"),
                           ARGV("--snapshot-count=7"), NULL, &f, &m),
                     0);
    assert_int_equal(f.config.snapshot_count, 7);
    assert_false(f.config.initial_corrupt_check);
}

static void test_errors(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(parse(ARGC("--no-such"), ARGV("--no-such"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "not defined: -no-such"));
    assert_int_equal(parse(ARGC("--snapshot-count=x"),
                           ARGV("--snapshot-count=x"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_int_equal(parse(ARGC("--heartbeat-interval"),
                           ARGV("--heartbeat-interval"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "needs an argument"));
    assert_int_equal(parse(ARGC("stray"), ARGV("stray"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "'stray' is not a valid flag"));
    assert_int_equal(parse(ARGC("--initial-cluster-state=old"),
                           ARGV("--initial-cluster-state=old"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_int_equal(parse(ARGC("--heartbeat-interval=300"),
                           ARGV("--heartbeat-interval=300"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "5 times"));
    assert_int_equal(parse(ARGC("--listen-client-urls=ftp://x:1"),
                           ARGV("--listen-client-urls=ftp://x:1"), NULL, &f,
                           &m),
                     CAIRN_EINVAL);
    assert_int_equal(parse(ARGC("--strict-reconfig-check", "false"),
                           ARGV("--strict-reconfig-check", "false"), NULL, &f,
                           &m),
                     CAIRN_EINVAL);
}

static void test_refused(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(parse(ARGC("--cert-file=/x.pem"),
                           ARGV("--cert-file=/x.pem"), NULL, &f, &m),
                     CAIRN_EUNSUPPORTED);
    assert_non_null(strstr(m.text, "--cert-file is not supported"));
    assert_int_equal(parse(ARGC("--force-new-cluster"),
                           ARGV("--force-new-cluster"), NULL, &f, &m),
                     CAIRN_EUNSUPPORTED);
    /* The default value of a refused flag changes nothing: accepted. */
    assert_int_equal(parse(ARGC("--enable-grpc-gateway=true", "--cert-file="),
                           ARGV("--enable-grpc-gateway=true", "--cert-file="),
                           NULL, &f, &m),
                     0);
    /* Retention as etcd reads it: hours or a duration (periodic), a
     * revision count (revision). */
    assert_int_equal(parse(ARGC("--auto-compaction-retention=1h30m"),
                           ARGV("--auto-compaction-retention=1h30m"), NULL, &f,
                           &m),
                     0);
    assert_int_equal(f.config.auto_compaction_retention, 5400000);
    assert_int_equal(parse(ARGC("--auto-compaction-retention=2"),
                           ARGV("--auto-compaction-retention=2"), NULL, &f, &m),
                     0);
    assert_int_equal(f.config.auto_compaction_retention, 7200000);
    assert_int_equal(parse(ARGC("--auto-compaction-mode=revision",
                                "--auto-compaction-retention=100"),
                           ARGV("--auto-compaction-mode=revision",
                                "--auto-compaction-retention=100"),
                           NULL, &f, &m),
                     0);
    assert_int_equal(f.config.auto_compaction_retention, 100);
    assert_int_equal(f.config.auto_compaction_mode,
                     SERVER_AUTO_COMPACTION_REVISION);
    assert_int_equal(parse(ARGC("--auto-compaction-retention=1x"),
                           ARGV("--auto-compaction-retention=1x"), NULL, &f,
                           &m),
                     CAIRN_EINVAL);
}

static void test_env(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    char *env[] = {"PATH=/bin",
                   "ETCD_NAME=e1",
                   "ETCD_INITIAL_CLUSTER_TOKEN=tk",
                   "ETCD_ELECTION_TIMEOUT=2000",
                   "ETCD_BOGUS=1",
                   NULL};
    char *argv[] = {"cairn", NULL};
    assert_int_equal(parse(1, argv, env, &f, &m), 0);
    assert_string_equal(f.config.name, "e1");
    assert_string_equal(f.config.data_dir, "e1.etcd");
    assert_string_equal(f.config.initial_cluster_token, "tk");
    assert_int_equal(f.config.election_timeout_ms, 2000);
    assert_non_null(strstr(f.warnings, "unrecognized environment variable "
                                       "ETCD_BOGUS=1"));
    /* Flag and variable both set: refused, as etcd does. */
    assert_int_equal(parse(ARGC("--name=x"), ARGV("--name=x"), env, &f, &m),
                     CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "ETCD_NAME"));
    char *bad[] = {"ETCD_SNAPSHOT_COUNT=many", NULL};
    assert_int_equal(parse(1, argv, bad, &f, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "ETCD_SNAPSHOT_COUNT"));
}

static void test_version_help(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    assert_int_equal(parse(ARGC("--version"), ARGV("--version"), NULL, &f, &m),
                     0);
    assert_true(f.print_version);
    assert_int_equal(parse(ARGC("-h"), ARGV("-h"), NULL, &f, &m), 0);
    assert_true(f.print_help);
}

int test_flags_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_e2e_flags),    cmocka_unit_test(test_errors),
        cmocka_unit_test(test_refused),      cmocka_unit_test(test_env),
        cmocka_unit_test(test_version_help),
    };
    return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}
