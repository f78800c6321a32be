/* etcd's flags and ETCD_* environment variables for `cairn`, parsed into a
 * server configuration; one table lists every flag etcd 3.4 has. */
#include "cmd/cairn_flags.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net/net.h"

enum flag_kind {
    F_STR,      /* const char * field */
    F_URLS,     /* struct server_urls field */
    F_U64,      /* uint64_t field */
    F_UINT,     /* unsigned field */
    F_U32,      /* uint32_t field */
    F_I64,      /* int64_t field */
    F_BOOL,     /* bool field */
    F_SPECIAL,  /* handled by name in set_special */
    F_REFUSED,  /* accepted only with its default value (text compare) */
    F_REFUSEDB, /* boolean, accepted only with its default value */
};

struct flag_def {
    const char *name;
    enum flag_kind kind;
    size_t off;        /* into struct server_config */
    const char *dflt;  /* default, for F_REFUSED* and the usage text */
    const char *usage; /* one line */
};

#define OFF(field) offsetof(struct server_config, field)

/* Every flag of etcd 3.4's etcdmain, in its order. */
static const struct flag_def flags[] = {
    {"config-file", F_REFUSED, 0, "", "Path to the server configuration file."},
    {"data-dir", F_STR, OFF(data_dir), "${name}.etcd",
     "Path to the data directory."},
    {"wal-dir", F_STR, OFF(wal_dir), "",
     "Path to the dedicated wal directory."},
    {"listen-peer-urls", F_URLS, OFF(listen_peer_urls), "http://localhost:2380",
     "List of URLs to listen on for peer traffic."},
    {"listen-client-urls", F_URLS, OFF(listen_client_urls),
     "http://localhost:2379", "List of URLs to listen on for client traffic."},
    {"listen-metrics-urls", F_URLS, OFF(listen_metrics_urls), "",
     "List of URLs to listen on for the metrics and health endpoints."},
    {"max-snapshots", F_UINT, OFF(max_snapshots), "5",
     "Maximum number of snapshot files to retain (0 is unlimited)."},
    {"max-wals", F_REFUSED, 0, "5",
     "Maximum number of wal files to retain (0 is unlimited)."},
    {"name", F_STR, OFF(name), "default",
     "Human-readable name for this member."},
    {"snapshot-count", F_U64, OFF(snapshot_count), "100000",
     "Number of committed transactions to trigger a snapshot to disk."},
    {"heartbeat-interval", F_UINT, OFF(heartbeat_interval_ms), "100",
     "Time (in milliseconds) of a heartbeat interval."},
    {"election-timeout", F_UINT, OFF(election_timeout_ms), "1000",
     "Time (in milliseconds) for an election to timeout."},
    {"initial-election-tick-advance", F_BOOL,
     OFF(initial_election_tick_advance), "true",
     "Whether to fast-forward initial election ticks on boot."},
    {"quota-backend-bytes", F_I64, OFF(quota_backend_bytes), "0",
     "Raise alarms when backend size exceeds the given quota (0: 2 GiB)."},
    {"backend-batch-interval", F_REFUSED, 0, "0s",
     "The maximum time before commit the backend transaction."},
    {"backend-batch-limit", F_REFUSED, 0, "0",
     "The maximum operations before commit the backend transaction."},
    {"max-txn-ops", F_UINT, OFF(max_txn_ops), "128",
     "Maximum number of operations permitted in a transaction."},
    {"max-request-bytes", F_U64, OFF(max_request_bytes), "1572864",
     "Maximum client request size in bytes the server will accept."},
    {"grpc-keepalive-min-time", F_REFUSED, 0, "5s",
     "Minimum interval a client should wait before pinging the server."},
    {"grpc-keepalive-interval", F_REFUSED, 0, "2h0m0s",
     "Frequency of server-to-client pings."},
    {"grpc-keepalive-timeout", F_REFUSED, 0, "20s",
     "Wait before closing a non-responsive connection."},
    {"max-concurrent-streams", F_U32, OFF(max_concurrent_streams), "4294967295",
     "Maximum concurrent streams that each client can open at a time."},
    {"initial-advertise-peer-urls", F_URLS, OFF(initial_advertise_peer_urls),
     "http://localhost:2380",
     "List of this member's peer URLs to advertise to the rest of the "
     "cluster."},
    {"advertise-client-urls", F_URLS, OFF(advertise_client_urls),
     "http://localhost:2379",
     "List of this member's client URLs to advertise to the public."},
    {"discovery", F_REFUSED, 0, "",
     "Discovery URL used to bootstrap the cluster."},
    {"discovery-fallback", F_REFUSED, 0, "proxy",
     "Expected behavior when discovery services fails."},
    {"discovery-proxy", F_REFUSED, 0, "",
     "HTTP proxy to use for traffic to discovery service."},
    {"discovery-srv", F_REFUSED, 0, "",
     "DNS domain used to bootstrap initial cluster."},
    {"discovery-srv-name", F_REFUSED, 0, "",
     "Service name to query when using DNS discovery."},
    {"initial-cluster", F_STR, OFF(initial_cluster),
     "default=http://localhost:2380",
     "Initial cluster configuration for bootstrapping."},
    {"initial-cluster-token", F_STR, OFF(initial_cluster_token), "etcd-cluster",
     "Initial cluster token for the etcd cluster."},
    {"initial-cluster-state", F_SPECIAL, 0, "new",
     "Initial cluster state ('new' or 'existing')."},
    {"strict-reconfig-check", F_BOOL, OFF(strict_reconfig_check), "true",
     "Reject reconfiguration requests that would cause quorum loss."},
    {"enable-v2", F_BOOL, OFF(enable_v2), "false",
     "Accept etcd V2 client requests."},
    {"pre-vote", F_BOOL, OFF(pre_vote), "false",
     "Enable to run an additional Raft election phase."},
    {"proxy", F_REFUSED, 0, "off", "Proxy mode ('off', 'readonly', 'on')."},
    {"proxy-failure-wait", F_REFUSED, 0, "5000",
     "Time (ms) an endpoint will be held in a failed state."},
    {"proxy-refresh-interval", F_REFUSED, 0, "30000",
     "Time (ms) of the endpoints refresh interval."},
    {"proxy-dial-timeout", F_REFUSED, 0, "1000",
     "Time (ms) for a dial to timeout."},
    {"proxy-write-timeout", F_REFUSED, 0, "5000",
     "Time (ms) for a write to timeout."},
    {"proxy-read-timeout", F_REFUSED, 0, "0",
     "Time (ms) for a read to timeout."},
    /* TLS (docs/tls.md). etcd 3.4 has no --ca-file/--peer-ca-file any
     * more: they are unknown flags there, and so here. */
    {"cert-file", F_STR, OFF(client_tls.cert_file), "",
     "Path to the client server TLS cert file."},
    {"key-file", F_STR, OFF(client_tls.key_file), "",
     "Path to the client server TLS key file."},
    {"client-cert-auth", F_BOOL, OFF(client_tls.client_cert_auth), "false",
     "Enable client cert authentication."},
    {"client-crl-file", F_STR, OFF(client_tls.crl_file), "",
     "Path to the client certificate revocation list file."},
    {"client-cert-allowed-hostname", F_STR, OFF(client_tls.allowed_hostname),
     "", "Allowed TLS hostname for client cert authentication."},
    {"trusted-ca-file", F_STR, OFF(client_tls.trusted_ca_file), "",
     "Path to the client server TLS trusted CA cert file."},
    {"auto-tls", F_BOOL, OFF(client_tls.auto_tls), "false",
     "Client TLS using generated certificates."},
    {"peer-cert-file", F_STR, OFF(peer_tls.cert_file), "",
     "Path to the peer server TLS cert file."},
    {"peer-key-file", F_STR, OFF(peer_tls.key_file), "",
     "Path to the peer server TLS key file."},
    {"peer-client-cert-auth", F_BOOL, OFF(peer_tls.client_cert_auth), "false",
     "Enable peer client cert authentication."},
    {"peer-trusted-ca-file", F_STR, OFF(peer_tls.trusted_ca_file), "",
     "Path to the peer server TLS trusted CA file."},
    {"peer-auto-tls", F_BOOL, OFF(peer_tls.auto_tls), "false",
     "Peer TLS using generated certificates."},
    {"peer-crl-file", F_STR, OFF(peer_tls.crl_file), "",
     "Path to the peer certificate revocation list file."},
    {"peer-cert-allowed-cn", F_STR, OFF(peer_tls.allowed_cn), "",
     "Allowed CN for inter peer authentication."},
    {"peer-cert-allowed-hostname", F_STR, OFF(peer_tls.allowed_hostname), "",
     "Allowed TLS hostname for inter peer authentication."},
    {"cipher-suites", F_SPECIAL, 0, "",
     "Comma-separated list of supported TLS cipher suites between "
     "client/server and peers."},
    {"experimental-peer-skip-client-san-verification", F_BOOL,
     OFF(peer_tls.skip_client_san_verify), "false",
     "Skip verification of SAN field in client certificate for peers."},
    {"cors", F_REFUSED, 0, "*",
     "Comma-separated white list of origins for CORS."},
    {"host-whitelist", F_REFUSED, 0, "*",
     "Comma-separated acceptable hostnames from HTTP client requests."},
    {"logger", F_SPECIAL, 0, "capnslog",
     "'zap' or 'capnslog' (cairn writes its own line format for both)."},
    {"log-output", F_SPECIAL, 0, "default",
     "[TO BE DEPRECATED IN v3.5] use '--log-outputs'."},
    {"log-outputs", F_SPECIAL, 0, "default",
     "'default', 'stderr' (cairn logs to stderr only)."},
    {"debug", F_SPECIAL, 0, "false",
     "[TO BE DEPRECATED IN v3.5] Enable debug-level logging."},
    {"log-level", F_SPECIAL, 0, "info",
     "Configures log level: debug, info, warn, error, panic, or fatal."},
    {"log-package-levels", F_REFUSED, 0, "",
     "[TO BE DEPRECATED IN v3.5] per-package log levels."},
    {"version", F_SPECIAL, 0, "false", "Print the version and exit."},
    {"auto-compaction-retention", F_SPECIAL, 0, "0",
     "Auto compaction retention (0 disables auto compaction)."},
    {"auto-compaction-mode", F_SPECIAL, 0, "periodic",
     "Interpret 'auto-compaction-retention' as periodic|revision."},
    {"enable-pprof", F_REFUSEDB, 0, "false",
     "Enable runtime profiling data via HTTP server."},
    {"metrics", F_REFUSED, 0, "basic",
     "Set level of detail for exported metrics."},
    {"auth-token", F_REFUSED, 0, "simple",
     "Specify auth token specific options."},
    {"bcrypt-cost", F_UINT, OFF(bcrypt_cost), "10",
     "Specify bcrypt algorithm cost factor for auth password hashing."},
    {"auth-token-ttl", F_REFUSED, 0, "300",
     "The lifetime in seconds of the auth token."},
    {"enable-grpc-gateway", F_REFUSEDB, 0, "true", "Enable GRPC gateway."},
    {"experimental-initial-corrupt-check", F_BOOL, OFF(initial_corrupt_check),
     "false", "Check data corruption before serving any client/peer traffic."},
    {"experimental-corrupt-check-time", F_REFUSED, 0, "0s",
     "Duration of time between cluster corruption check passes."},
    {"experimental-enable-v2v3", F_REFUSED, 0, "",
     "v3 prefix for serving emulated v2 state."},
    {"experimental-backend-bbolt-freelist-type", F_REFUSED, 0, "array",
     "The type of freelist that boltdb backend uses."},
    {"experimental-enable-lease-checkpoint", F_REFUSEDB, 0, "false",
     "Enable leader to send regular checkpoints of lease TTLs."},
    {"experimental-compaction-batch-limit", F_REFUSED, 0, "1000",
     "The maximum revisions deleted in each compaction batch."},
    {"experimental-watch-progress-notify-interval", F_REFUSED, 0, "10m0s",
     "Duration of periodic watch progress notifications."},
    /* etcd 3.5's name for the raft log tail kept after a snapshot. */
    {"experimental-snapshot-catchup-entries", F_U64,
     OFF(snapshot_catchup_entries), "5000",
     "Number of entries for a slow follower to catch up after compacting "
     "the raft storage entries."},
    {"force-new-cluster", F_BOOL, OFF(force_new_cluster), "false",
     "Force to create a new one member cluster."},
    {"unsafe-no-fsync", F_REFUSEDB, 0, "false",
     "Disables fsync, unsafe, will cause data loss."},
    {"help", F_SPECIAL, 0, "false", "Show this help and exit."},
};

#define N_FLAGS (sizeof flags / sizeof flags[0])

static const struct flag_def *flag_find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FLAGS; i++)
        if (strlen(flags[i].name) == len &&
            memcmp(flags[i].name, name, len) == 0)
            return &flags[i];
    if (len == 1 && name[0] == 'h')
        return flag_find("help", 4);
    return NULL;
}

static bool is_bool_flag(const struct flag_def *d)
{
    if (d->kind == F_BOOL || d->kind == F_REFUSEDB)
        return true;
    return d->kind == F_SPECIAL &&
           (strcmp(d->name, "debug") == 0 || strcmp(d->name, "version") == 0 ||
            strcmp(d->name, "help") == 0);
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(v, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(v, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return CAIRN_EINVAL;
}

/* Go's strconv.ParseUint(v, 0, 64) (decimal, 0x hex, 0 octal), bounded. */
static int parse_u64(const char *v, uint64_t max, uint64_t *out)
{
    if (*v == '\0' || *v == '-' || *v == '+' || isspace((unsigned char)*v))
        return CAIRN_EINVAL;
    errno = 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 0);
    if (errno != 0 || *end != '\0' || x > max)
        return CAIRN_EINVAL;
    *out = x;
    return 0;
}

static int parse_i64(const char *v, int64_t *out)
{
    if (*v == '\0' || isspace((unsigned char)*v))
        return CAIRN_EINVAL;
    errno = 0;
    char *end;
    long long x = strtoll(v, &end, 0);
    if (errno != 0 || *end != '\0')
        return CAIRN_EINVAL;
    *out = x;
    return 0;
}

/* Go's time.ParseDuration, to milliseconds (sub-millisecond parts are
 * dropped): "1h30m", "5m", "300ms", "1.5h", "0". */
static int parse_duration_ms(const char *v, int64_t *out)
{
    if (strcmp(v, "0") == 0) {
        *out = 0;
        return 0;
    }
    double total_ms = 0;
    const char *p = v;
    if (*p == '\0')
        return CAIRN_EINVAL;
    while (*p != '\0') {
        char *end;
        if (!isdigit((unsigned char)*p) && *p != '.')
            return CAIRN_EINVAL;
        double x = strtod(p, &end);
        if (end == p)
            return CAIRN_EINVAL;
        p = end;
        double unit_ms;
        if (strncmp(p, "ns", 2) == 0) {
            unit_ms = 1e-6;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            unit_ms = 1e-3;
            p += 2;
        } else if (strncmp(p, "\xc2\xb5s", 3) == 0) {
            unit_ms = 1e-3;
            p += 3;
        } else if (strncmp(p, "ms", 2) == 0) {
            unit_ms = 1;
            p += 2;
        } else if (*p == 's') {
            unit_ms = 1000;
            p++;
        } else if (*p == 'm') {
            unit_ms = 60000;
            p++;
        } else if (*p == 'h') {
            unit_ms = 3600000;
            p++;
        } else {
            return CAIRN_EINVAL;
        }
        total_ms += x * unit_ms;
        if (total_ms > 9.2e15)
            return CAIRN_EINVAL;
    }
    *out = (int64_t)total_ms;
    return 0;
}

struct parse_state {
    struct cairn_flags *f;
    const char *retention; /* resolved once the mode is known */
};

/* --cipher-suites: etcd's (Go's) names, comma separated; each is checked
 * here, as etcd checks them at start even with plaintext URLs only
 * (tlsutil.GetCipherSuites); net maps them when a context is opened. */
static int set_cipher_suites(struct parse_state *ps, const char *v,
                             struct cairn_errmsg *m)
{
    ps->f->config.cipher_suites = v[0] != '\0' ? v : NULL;
    for (const char *p = v; *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        char name[96];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        if (net_tls_cipher_openssl_name(name) == NULL)
            return cairn_errmsg_code(
                m, CAIRN_EINVAL, "unexpected TLS cipher suite \"%s\"", name);
        p += len + (comma != NULL);
    }
    return 0;
}

static int set_special(struct parse_state *ps, const struct flag_def *d,
                       const char *v, struct cairn_errmsg *m)
{
    struct server_config *c = &ps->f->config;
    const char *n = d->name;
    bool b;
    if (strcmp(n, "initial-cluster-state") == 0) {
        if (strcmp(v, "new") == 0)
            c->initial_cluster_existing = false;
        else if (strcmp(v, "existing") == 0)
            c->initial_cluster_existing = true;
        else
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "invalid value \"%s\" for flag "
                                     "-initial-cluster-state: valid values "
                                     "are \"new\" and \"existing\"",
                                     v);
        return 0;
    }
    if (strcmp(n, "auto-compaction-mode") == 0) {
        if (strcmp(v, "periodic") == 0)
            c->auto_compaction_mode = SERVER_AUTO_COMPACTION_PERIODIC;
        else if (strcmp(v, "revision") == 0)
            c->auto_compaction_mode = SERVER_AUTO_COMPACTION_REVISION;
        else
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "unknown auto-compaction-mode \"%s\": "
                                     "periodic or revision",
                                     v);
        return 0;
    }
    if (strcmp(n, "cipher-suites") == 0)
        return set_cipher_suites(ps, v, m);
    if (strcmp(n, "auto-compaction-retention") == 0) {
        ps->retention = v;
        return 0;
    }
    if (strcmp(n, "log-level") == 0) {
        enum cairn_log_level lvl;
        /* etcd also knows "panic"; it logs and panics at that level, which
         * for a server's own lines is the same as fatal. */
        if (strcmp(v, "panic") == 0)
            v = "fatal";
        if (cairn_log_level_parse(v, &lvl) != 0)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "invalid value \"%s\" for flag "
                                     "-log-level: debug, info, warn, error, "
                                     "panic or fatal",
                                     v);
        c->log_level = lvl;
        return 0;
    }
    if (strcmp(n, "debug") == 0) {
        if (parse_bool(v, &b) != 0)
            goto bad_bool;
        if (b)
            c->log_level = CAIRN_LOG_DEBUG;
        return 0;
    }
    if (strcmp(n, "version") == 0) {
        if (parse_bool(v, &b) != 0)
            goto bad_bool;
        ps->f->print_version = b;
        return 0;
    }
    if (strcmp(n, "help") == 0) {
        if (parse_bool(v, &b) != 0)
            goto bad_bool;
        ps->f->print_help = b;
        return 0;
    }
    if (strcmp(n, "logger") == 0) {
        if (strcmp(v, "capnslog") != 0 && strcmp(v, "zap") != 0)
            return cairn_errmsg_code(
                m, CAIRN_EINVAL, "unknown logger \"%s\": zap or capnslog", v);
        return 0;
    }
    if (strcmp(n, "log-output") == 0 || strcmp(n, "log-outputs") == 0) {
        if (strcmp(v, "default") != 0 && strcmp(v, "stderr") != 0)
            return cairn_errmsg_code(m, CAIRN_EUNSUPPORTED,
                                     "flag --%s=%s is not supported by cairn "
                                     "yet: it logs to stderr only",
                                     n, v);
        return 0;
    }
    CAIRN_UNREACHABLE();
bad_bool:
    return cairn_errmsg_code(m, CAIRN_EINVAL,
                             "invalid boolean value \"%s\" for -%s", v, n);
}

static int set_flag(struct parse_state *ps, const struct flag_def *d,
                    const char *v, struct cairn_errmsg *m)
{
    char *base = (char *)&ps->f->config;
    uint64_t u;
    int64_t i;
    bool b;
    int rv;
    switch (d->kind) {
    case F_STR:
        *(const char **)(base + d->off) = v;
        return 0;
    case F_URLS:
        if (v[0] == '\0' && d->dflt[0] == '\0') {
            /* an optional list given empty: none, as etcd */
            ((struct server_urls *)(base + d->off))->n = 0;
            return 0;
        }
        rv = server_urls_parse(v, (struct server_urls *)(base + d->off), m);
        if (rv != 0)
            cairn_errmsg_prefixf(m, "invalid value \"%s\" for flag -%s", v,
                                 d->name);
        return rv;
    case F_U64:
    case F_UINT:
    case F_U32: {
        uint64_t max = d->kind == F_U64    ? UINT64_MAX
                       : d->kind == F_UINT ? (uint64_t)~0u
                                           : (uint64_t)UINT32_MAX;
        if (parse_u64(v, max, &u) != 0)
            goto bad;
        if (d->kind == F_U64)
            *(uint64_t *)(base + d->off) = u;
        else if (d->kind == F_UINT)
            *(unsigned *)(base + d->off) = (unsigned)u;
        else
            *(uint32_t *)(base + d->off) = (uint32_t)u;
        return 0;
    }
    case F_I64:
        if (parse_i64(v, &i) != 0)
            goto bad;
        *(int64_t *)(base + d->off) = i;
        return 0;
    case F_BOOL:
        if (parse_bool(v, &b) != 0)
            goto bad;
        *(bool *)(base + d->off) = b;
        return 0;
    case F_SPECIAL:
        return set_special(ps, d, v, m);
    case F_REFUSED:
        if (strcmp(v, d->dflt) == 0)
            return 0;
        return cairn_errmsg_code(m, CAIRN_EUNSUPPORTED,
                                 "flag --%s is not supported by cairn yet "
                                 "(only its default \"%s\" is accepted; see "
                                 "docs/flags.md)",
                                 d->name, d->dflt);
    case F_REFUSEDB: {
        bool dflt = strcmp(d->dflt, "true") == 0;
        if (parse_bool(v, &b) != 0)
            goto bad;
        if (b == dflt)
            return 0;
        return cairn_errmsg_code(m, CAIRN_EUNSUPPORTED,
                                 "flag --%s=%s is not supported by cairn yet "
                                 "(see docs/flags.md)",
                                 d->name, v);
    }
    }
    CAIRN_UNREACHABLE();
bad:
    return cairn_errmsg_code(m, CAIRN_EINVAL,
                             "invalid value \"%s\" for flag -%s", v, d->name);
}

/* "ETCD_" + upper-case name with '-' as '_'. */
static void env_name(const struct flag_def *d, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "ETCD_%s", d->name);
    for (size_t k = 5; k < n && k < size; k++)
        out[k] = out[k] == '-' ? '_' : (char)toupper((unsigned char)out[k]);
}

static const char *env_get(char **envp, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
            return envp[i] + len + 1;
    return NULL;
}

static void warn(struct cairn_flags *f, const char *fmt, const char *arg)
{
    size_t used = strlen(f->warnings);
    if (used + 1 < sizeof f->warnings) {
        snprintf(f->warnings + used, sizeof f->warnings - used, fmt, arg);
        used = strlen(f->warnings);
        if (used + 1 < sizeof f->warnings) {
            f->warnings[used] = '\n';
            f->warnings[used + 1] = '\0';
        }
    }
}

static int finish(struct parse_state *ps, bool name_set, bool cluster_set,
                  struct cairn_errmsg *m)
{
    struct cairn_flags *f = ps->f;
    struct server_config *c = &f->config;
    if (c->name[0] == '\0' || strlen(c->name) >= SERVER_NAME_LEN_MAX)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "invalid value for flag -name");
    if (c->data_dir == NULL || c->data_dir[0] == '\0') {
        snprintf(f->data_dir_buf, sizeof f->data_dir_buf, "%s.etcd", c->name);
        c->data_dir = f->data_dir_buf;
    }
    if (c->wal_dir != NULL && c->wal_dir[0] == '\0')
        c->wal_dir = NULL;
    /* etcd: only a name given changes the default initial cluster to
     * name=<each advertised peer URL>. */
    if (name_set && !cluster_set && strcmp(c->name, "default") != 0) {
        size_t used = 0;
        f->initial_cluster_buf[0] = '\0';
        for (size_t k = 0; k < c->initial_advertise_peer_urls.n; k++)
            used += (size_t)snprintf(f->initial_cluster_buf + used,
                                     sizeof f->initial_cluster_buf - used,
                                     "%s%s=%s", k > 0 ? "," : "", c->name,
                                     c->initial_advertise_peer_urls.url[k]);
        c->initial_cluster = f->initial_cluster_buf;
    }
    if (strlen(c->initial_cluster_token) >= SERVER_TOKEN_LEN_MAX)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "invalid value for flag "
                                 "-initial-cluster-token: longer than %d "
                                 "bytes",
                                 SERVER_TOKEN_LEN_MAX - 1);
    if (c->heartbeat_interval_ms == 0)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "--heartbeat-interval must be >0 (set to "
                                 "%ums)",
                                 c->heartbeat_interval_ms);
    if (c->election_timeout_ms == 0)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "--election-timeout must be >0 (set to "
                                 "%ums)",
                                 c->election_timeout_ms);
    if ((uint64_t)5 * c->heartbeat_interval_ms > c->election_timeout_ms)
        return cairn_errmsg_code(
            m, CAIRN_EINVAL,
            "--election-timeout[%ums] should be at least as 5 times as "
            "--heartbeat-interval[%ums]",
            c->election_timeout_ms, c->heartbeat_interval_ms);
    if (c->election_timeout_ms > 50000)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "--election-timeout[%ums] is too long, and "
                                 "should be set less than 50000ms",
                                 c->election_timeout_ms);
    if (c->quota_backend_bytes < 0)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "invalid value for flag "
                                 "-quota-backend-bytes: negative");
    /* etcd 3.4: 0 means the default (the e2e suite passes it). */
    if (c->snapshot_count == 0)
        c->snapshot_count = 100000;
    if (c->max_request_bytes == 0)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "invalid value for flag -max-request-bytes: "
                                 "0");
    /* Retention (etcd's embed StartEtcd): an integer means hours in
     * periodic mode, revisions in revision mode; otherwise a duration
     * (periodic only). */
    const char *r = ps->retention != NULL ? ps->retention : "0";
    int64_t x;
    if (parse_i64(r, &x) == 0 && x >= 0) {
        c->auto_compaction_retention =
            c->auto_compaction_mode == SERVER_AUTO_COMPACTION_PERIODIC
                ? x * 3600000
                : x;
    } else if (c->auto_compaction_mode == SERVER_AUTO_COMPACTION_PERIODIC &&
               parse_duration_ms(r, &x) == 0) {
        c->auto_compaction_retention = x;
    } else {
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "invalid auto-compaction-retention \"%s\"", r);
    }
    return 0;
}

int cairn_flags_parse(int argc, char **argv, char **envp, struct cairn_flags *f,
                      struct cairn_errmsg *m)
{
    memset(f, 0, sizeof *f);
    server_config_defaults(&f->config);
    struct parse_state ps = {.f = f, .retention = NULL};
    bool set_on_cmdline[N_FLAGS];
    memset(set_on_cmdline, 0, sizeof set_on_cmdline);
    int rv;

    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        a++;
        if (a[0] == '-') {
            a++;
            if (a[0] == '\0') { /* "--" ends the flags */
                i++;
                break;
            }
        }
        if (a[0] == '-' || a[0] == '=')
            return cairn_errmsg_code(m, CAIRN_EINVAL, "bad flag syntax: %s",
                                     argv[i]);
        const char *eq = strchr(a, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        const struct flag_def *d = flag_find(a, name_len);
        if (d == NULL)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "flag provided but not defined: -%.*s",
                                     (int)name_len, a);
        const char *v;
        if (eq != NULL) {
            v = eq + 1;
        } else if (is_bool_flag(d)) {
            v = "true";
        } else {
            if (i + 1 >= argc)
                return cairn_errmsg_code(
                    m, CAIRN_EINVAL, "flag needs an argument: -%s", d->name);
            v = argv[++i];
        }
        rv = set_flag(&ps, d, v, m);
        if (rv != 0)
            return rv;
        set_on_cmdline[d - flags] = true;
    }
    if (i < argc)
        return cairn_errmsg_code(m, CAIRN_EINVAL, "'%s' is not a valid flag",
                                 argv[i]);
    if (f->print_help || f->print_version)
        return 0;

    /* The environment, for flags not given on the command line. */
    for (size_t k = 0; k < N_FLAGS; k++) {
        char name[96];
        env_name(&flags[k], name, sizeof name);
        const char *v = env_get(envp, name);
        if (v == NULL || v[0] == '\0')
            continue;
        if (set_on_cmdline[k])
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "conflicting environment variable \"%s\" "
                                     "is shadowed by corresponding "
                                     "command-line flag (either unset "
                                     "environment variable or disable flag)",
                                     name);
        rv = set_flag(&ps, &flags[k], v, m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "environment variable %s", name);
            return rv;
        }
        set_on_cmdline[k] = true;
    }
    for (size_t e = 0; envp != NULL && envp[e] != NULL; e++) {
        if (strncmp(envp[e], "ETCD_", 5) != 0)
            continue;
        const char *eq = strchr(envp[e], '=');
        size_t len = eq != NULL ? (size_t)(eq - envp[e]) : strlen(envp[e]);
        bool known = false;
        for (size_t k = 0; k < N_FLAGS && !known; k++) {
            char name[96];
            env_name(&flags[k], name, sizeof name);
            known = strlen(name) == len && memcmp(name, envp[e], len) == 0;
        }
        if (!known)
            warn(f, "unrecognized environment variable %s", envp[e]);
    }
    bool name_set = set_on_cmdline[flag_find("name", 4) - flags];
    bool cluster_set = set_on_cmdline[flag_find("initial-cluster", 15) - flags];
    return finish(&ps, name_set, cluster_set, m);
}

void cairn_flags_usage(FILE *out)
{
    fprintf(out,
            "usage: cairn [flags]\n"
            "       start a cairn member (etcd v3.4 compatible).\n\n"
            "  cairn --version\n  cairn -h | --help\n\n"
            "Every flag may also be set by the environment variable "
            "ETCD_<FLAG>\n(upper case, '-' as '_'). Flags marked * are "
            "accepted with their\ndefault value only (docs/flags.md).\n\n");
    for (size_t k = 0; k < N_FLAGS; k++) {
        if (flags[k].usage == NULL)
            continue;
        bool refused =
            flags[k].kind == F_REFUSED || flags[k].kind == F_REFUSEDB;
        fprintf(out, "  --%s%s\n      %s (default \"%s\")\n", flags[k].name,
                refused ? " *" : "", flags[k].usage, flags[k].dflt);
    }
}
