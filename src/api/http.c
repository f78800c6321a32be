/* http: the body of /metrics on the client port, in Prometheus' text
 * format with etcd's metric names (etcdserver/metrics.go, mvcc/metrics.go,
 * go-grpc-prometheus). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api/api.h"

static int appendf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CAIRN_ASSERT(n >= 0);
    uint8_t *p = buf_extend(b, (size_t)n + 1);
    if (p == NULL)
        return CAIRN_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len--; /* drop the NUL */
    return 0;
}

static int metric(struct buf *b, const char *name, const char *type,
                  const char *help, uint64_t value)
{
    return appendf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name,
                   help, name, type, name, value);
}

/* Nanoseconds as decimal seconds, trailing zeros dropped: the bounds
 * 100000 << i print as Go prints etcd's ExponentialBuckets (0.0001,
 * 0.0128, 3.2768), and sums exactly. out holds at least 32 bytes. */
static void seconds_text(uint64_t ns, char *out, size_t size)
{
    uint64_t whole = ns / 1000000000u, frac = ns % 1000000000u;
    if (frac == 0) {
        snprintf(out, size, "%" PRIu64, whole);
        return;
    }
    int digits = 9;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(out, size, "%" PRIu64 ".%0*" PRIu64, whole, digits, frac);
}

/* One Prometheus histogram series: cumulative _bucket{le=...} lines up to
 * +Inf, then _sum (seconds) and _count. label is "" or `To="1a2b",`, put
 * before le as Go's client orders label names ("To" < "le"). */
static int hist_series(struct buf *b, const char *name, const char *label,
                       const struct cairn_hist_snap *h)
{
    int rv = 0;
    char le[32];
    uint64_t cum = 0, bound = h->start_ns;
    for (unsigned i = 0; i < h->n_buckets; i++, bound <<= 1) {
        cum += h->counts[i];
        seconds_text(bound, le, sizeof le);
        rv |= appendf(b, "%s_bucket{%sle=\"%s\"} %" PRIu64 "\n", name, label,
                      le, cum);
    }
    cum += h->counts[h->n_buckets];
    rv |=
        appendf(b, "%s_bucket{%sle=\"+Inf\"} %" PRIu64 "\n", name, label, cum);
    char sum[32];
    seconds_text(h->sum_ns, sum, sizeof sum);
    size_t llen = strlen(label);
    /* _sum and _count carry the labels without le's trailing comma. */
    rv |= appendf(b, "%s_sum%s%.*s%s %s\n", name, llen > 0 ? "{" : "",
                  (int)(llen > 0 ? llen - 1 : 0), label, llen > 0 ? "}" : "",
                  sum);
    rv |= appendf(b, "%s_count%s%.*s%s %" PRIu64 "\n", name,
                  llen > 0 ? "{" : "", (int)(llen > 0 ? llen - 1 : 0), label,
                  llen > 0 ? "}" : "", cum);
    return rv;
}

static int hist_head(struct buf *b, const char *name, const char *help)
{
    return appendf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
}

/* mvcc's counters under etcd's names; etcd 3.4 still exports each under
 * etcd_debugging_ too (removed in 3.5). */
static int render_mvcc(struct buf *out, const struct mvcc_op_counts *c)
{
    static const char *const ns[2] = {"etcd", "etcd_debugging"};
    const struct {
        const char *name, *help;
        uint64_t v;
    } rows[] = {
        {"range_total", "Total number of ranges seen by this member.",
         c->ranges},
        {"put_total", "Total number of puts seen by this member.", c->puts},
        {"delete_total", "Total number of deletes seen by this member.",
         c->deletes},
        {"txn_total", "Total number of txns seen by this member.", c->txns},
    };
    int rv = 0;
    char name[64];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "%s_mvcc_%s", ns[k], rows[i].name);
            rv |= metric(out, name, "counter", rows[i].help, rows[i].v);
        }
    rv |= metric(out, "etcd_debugging_mvcc_keys_total", "gauge",
                 "Total number of keys.", c->keys > 0 ? (uint64_t)c->keys : 0);
    return rv;
}

/* The member's histograms, those it keeps (n_buckets > 0). */
static int render_hists(struct buf *out, const struct api_metrics *m)
{
    int rv = 0;
    static const char wal[] = "etcd_disk_wal_fsync_duration_seconds";
    static const char be[] = "etcd_disk_backend_commit_duration_seconds";
    static const char rtt[] = "etcd_network_peer_round_trip_time_seconds";
    if (m->wal_fsync.n_buckets > 0) {
        rv |= hist_head(out, wal,
                        "The latency distributions of fsync called by WAL.");
        rv |= hist_series(out, wal, "", &m->wal_fsync);
    }
    if (m->backend_commit.n_buckets > 0) {
        rv |= hist_head(out, be,
                        "The latency distributions of commit called by "
                        "backend.");
        rv |= hist_series(out, be, "", &m->backend_commit);
    }
    size_t n =
        m->n_peers < API_METRICS_PEERS_MAX ? m->n_peers : API_METRICS_PEERS_MAX;
    if (n > 0)
        rv |= hist_head(out, rtt, "Round-Trip-Time histogram between peers");
    for (size_t i = 0; i < n; i++) {
        char label[40];
        /* etcd's types.ID.String(): hex without padding. */
        snprintf(label, sizeof label, "To=\"%" PRIx64 "\",", m->peers[i].id);
        if (m->peers[i].rtt.n_buckets > 0)
            rv |= hist_series(out, rtt, label, &m->peers[i].rtt);
    }
    return rv;
}

/* Go's codes.Code.String(), which go-grpc-prometheus puts in grpc_code. */
static const char *const code_names[17] = {
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
};

int api_metrics_render(const struct node_status *st,
                       const struct api_metrics *m,
                       const struct api_grpc_counter *counters, size_t n,
                       struct buf *out)
{
    int rv = 0;
    rv |= metric(out, "etcd_server_has_leader", "gauge",
                 "Whether or not a leader exists. 1 is existence, 0 is not.",
                 st->leader != 0 ? 1 : 0);
    rv |= metric(out, "etcd_server_is_leader", "gauge",
                 "Whether or not this member is a leader. 1 if is, 0 "
                 "otherwise.",
                 st->leader != 0 && st->leader == st->member_id ? 1 : 0);
    rv |= metric(out, "etcd_server_is_learner", "gauge",
                 "Whether or not this member is a learner. 1 if is, 0 "
                 "otherwise.",
                 st->is_learner ? 1 : 0);
    if (m != NULL) {
        rv |= metric(out, "etcd_server_leader_changes_seen_total", "counter",
                     "The number of leader changes seen.",
                     m->leader_changes_seen);
        rv |= metric(out, "etcd_server_proposals_committed_total", "gauge",
                     "The total number of consensus proposals committed.",
                     m->proposals_committed);
        rv |= metric(out, "etcd_server_proposals_applied_total", "gauge",
                     "The total number of consensus proposals applied.",
                     m->proposals_applied);
        rv |= metric(out, "etcd_server_proposals_pending", "gauge",
                     "The current number of pending proposals to commit.",
                     m->proposals_pending);
        rv |= metric(out, "etcd_server_proposals_failed_total", "counter",
                     "The total number of failed proposals seen.",
                     m->proposals_failed);
        if (m->has_mvcc)
            rv |= render_mvcc(out, &m->mvcc);
        rv |= render_hists(out, m);
    }
    rv |= metric(out, "etcd_mvcc_db_total_size_in_bytes", "gauge",
                 "Total size of the underlying database physically allocated "
                 "in bytes.",
                 st->db_bytes);
    rv |= metric(out, "etcd_mvcc_db_total_size_in_use_in_bytes", "gauge",
                 "Total size of the underlying database logically in use in "
                 "bytes.",
                 st->db_in_use_bytes);
    rv |= appendf(out,
                  "# HELP etcd_server_version Which version is running. 1 for "
                  "'server_version' label with current version.\n"
                  "# TYPE etcd_server_version gauge\n"
                  "etcd_server_version{server_version=\"%s\"} 1\n",
                  API_ETCD_VERSION);
    rv |= appendf(out,
                  "# HELP etcd_cluster_version Which version is running. 1 for "
                  "'cluster_version' label with current cluster version\n"
                  "# TYPE etcd_cluster_version gauge\n"
                  "etcd_cluster_version{cluster_version=\"3.4\"} 1\n");
    if (n > 0) {
        rv |= appendf(out, "# HELP grpc_server_started_total Total number of "
                           "RPCs started on the server.\n"
                           "# TYPE grpc_server_started_total counter\n");
        for (size_t i = 0; i < n; i++)
            rv |= appendf(out,
                          "grpc_server_started_total{grpc_method=\"%s\","
                          "grpc_service=\"%s\",grpc_type=\"%s\"} %" PRIu64 "\n",
                          counters[i].method, counters[i].service,
                          counters[i].type, counters[i].started);
        rv |= appendf(out,
                      "# HELP grpc_server_handled_total Total number of RPCs "
                      "completed on the server, regardless of success or "
                      "failure.\n# TYPE grpc_server_handled_total counter\n");
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 17; c++)
                rv |= appendf(out,
                              "grpc_server_handled_total{grpc_code=\"%s\","
                              "grpc_method=\"%s\",grpc_service=\"%s\","
                              "grpc_type=\"%s\"} %" PRIu64 "\n",
                              code_names[c], counters[i].method,
                              counters[i].service, counters[i].type,
                              counters[i].handled[c]);
    }
    return rv != 0 ? CAIRN_ENOMEM : 0;
}
