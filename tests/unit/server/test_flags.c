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
    /* The test-only flags of old are gone: unknown like any other. */
    assert_int_equal(parse(ARGC("--cairn-test-control=/x.sock"),
                           ARGV("--cairn-test-control=/x.sock"), NULL, &f, &m),
                     CAIRN_EINVAL);
    assert_int_equal(parse(ARGC("--cairn-test-wal-segment-bytes=1048576"),
                           ARGV("--cairn-test-wal-segment-bytes=1048576"), NULL,
                           &f, &m),
                     CAIRN_EINVAL);
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
    assert_int_equal(parse(ARGC("--metrics=extensive"),
                           ARGV("--metrics=extensive"), NULL, &f, &m),
                     CAIRN_EUNSUPPORTED);
    assert_non_null(strstr(m.text, "--metrics is not supported"));
    assert_int_equal(parse(ARGC("--force-new-cluster"),
                           ARGV("--force-new-cluster"), NULL, &f, &m),
                     0);
    assert_true(f.config.force_new_cluster);
    /* The default value of a refused flag changes nothing: accepted. */
    assert_int_equal(
        parse(ARGC("--enable-grpc-gateway=true", "--metrics=basic"),
              ARGV("--enable-grpc-gateway=true", "--metrics=basic"), NULL, &f,
              &m),
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

/* Every TLS flag lands in its side's fields, ETCD_* variables too; etcd
 * 3.4 no longer knows --ca-file; cipher suites are checked at parse. */
static void test_tls(void **state)
{
    (void)state;
    struct cairn_flags f;
    struct cairn_errmsg m = {{0}};
    char *env[] = {"ETCD_PEER_AUTO_TLS=true", "ETCD_PEER_CERT_ALLOWED_CN=p",
                   NULL};
    assert_int_equal(
        parse(ARGC("--cert-file=c.pem", "--key-file", "k.pem",
                   "--trusted-ca-file=ca.pem", "--client-cert-auth",
                   "--client-crl-file=crl.pem", "--auto-tls",
                   "--client-cert-allowed-hostname=h", "--peer-cert-file=pc",
                   "--peer-key-file=pk", "--peer-trusted-ca-file=pca",
                   "--peer-client-cert-auth=true", "--peer-crl-file=pcrl",
                   "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                   "--experimental-peer-skip-client-san-verification"),
              ARGV("--cert-file=c.pem", "--key-file", "k.pem",
                   "--trusted-ca-file=ca.pem", "--client-cert-auth",
                   "--client-crl-file=crl.pem", "--auto-tls",
                   "--client-cert-allowed-hostname=h", "--peer-cert-file=pc",
                   "--peer-key-file=pk", "--peer-trusted-ca-file=pca",
                   "--peer-client-cert-auth=true", "--peer-crl-file=pcrl",
                   "--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                   "--experimental-peer-skip-client-san-verification"),
              env, &f, &m),
        0);
    const struct server_tls_flags *c = &f.config.client_tls;
    const struct server_tls_flags *p = &f.config.peer_tls;
    assert_string_equal(c->cert_file, "c.pem");
    assert_string_equal(c->key_file, "k.pem");
    assert_string_equal(c->trusted_ca_file, "ca.pem");
    assert_string_equal(c->crl_file, "crl.pem");
    assert_string_equal(c->allowed_hostname, "h");
    assert_true(c->client_cert_auth && c->auto_tls);
    assert_string_equal(p->cert_file, "pc");
    assert_string_equal(p->key_file, "pk");
    assert_string_equal(p->trusted_ca_file, "pca");
    assert_string_equal(p->crl_file, "pcrl");
    assert_string_equal(p->allowed_cn, "p");
    assert_true(p->client_cert_auth && p->auto_tls &&
                p->skip_client_san_verify);
    assert_false(c->skip_client_san_verify);
    assert_string_equal(f.config.cipher_suites,
                        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
    assert_int_equal(
        parse(ARGC("--ca-file=x"), ARGV("--ca-file=x"), NULL, &f, &m),
        CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "flag provided but not defined: -ca-file"));
    assert_int_equal(
        parse(ARGC("--peer-ca-file=x"), ARGV("--peer-ca-file=x"), NULL, &f, &m),
        CAIRN_EINVAL);
    assert_int_equal(
        parse(ARGC("--cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA,NOPE"),
              ARGV("--cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA,NOPE"), NULL,
              &f, &m),
        CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "unexpected TLS cipher suite \"NOPE\""));
}

int test_flags_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),     cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_e2e_flags),    cmocka_unit_test(test_errors),
        cmocka_unit_test(test_refused),      cmocka_unit_test(test_env),
        cmocka_unit_test(test_version_help), cmocka_unit_test(test_tls),
    };
    return cmocka_run_group_tests_name("flags", tests, NULL, NULL);
}
