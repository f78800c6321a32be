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
