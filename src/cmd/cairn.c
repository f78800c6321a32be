/* cairn: the member program — etcd's flags in, one member running on a
 * libuv loop until SIGTERM or SIGINT (graceful stop) or a fatal error. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "api/api.h"
#include "cmd/cairn_flags.h"
#include "cmd/corrupt_check.h"
#include "server/server.h"

#define CAIRN_PROGRAM_VERSION "0.1.0"

struct prog {
    uv_loop_t loop;
    uv_signal_t sigterm;
    uv_signal_t sigint;
    struct server *server;
    struct api *api;
    struct cairn_log log;
    int status;
};

static void on_stopped(void *arg, int status)
{
    struct prog *p = arg;
    p->status = status;
    /* The member has stopped: the API must not call it any more. */
    if (p->api != NULL) {
        api_close(p->api);
        p->api = NULL;
    }
    uv_close((uv_handle_t *)&p->sigterm, NULL);
    uv_close((uv_handle_t *)&p->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct prog *p = h->data;
    cairn_infof(&p->log, "main", "received %s, stopping",
                signum == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Stop taking client calls first (grpc's GracefulStop), so that none
     * reaches a member that is going away. */
    if (p->api != NULL)
        api_drain(p->api);
    server_stop(p->server);
}

/* etcd's --listen-metrics-urls: /metrics and /health on more listeners.
 * On failure the API is closed (nothing serves) and m says which URL. */
static int listen_metrics(struct prog *p, const struct server_urls *urls,
                          struct cairn_errmsg *m)
{
    for (size_t i = 0; i < urls->n; i++) {
        int rv = api_listen_metrics(p->api, urls->url[i], NULL, m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "api: listen for metrics on %s",
                                 urls->url[i]);
            api_close(p->api);
            p->api = NULL;
            return rv;
        }
        cairn_infof(&p->log, "main", "serving metrics on %s", urls->url[i]);
    }
    return 0;
}

int main(int argc, char **argv, char **envp)
{
    struct cairn_flags *f = cairn_calloc(1, sizeof *f);
    struct cairn_errmsg m = {{0}};
    if (f == NULL) {
        fprintf(stderr, "cairn: out of memory\n");
        return 1;
    }
    int rv = cairn_flags_parse(argc, argv, envp, f, &m);
    if (rv != 0) {
        fprintf(stderr, "cairn: %s\n", m.text);
        fprintf(stderr, "Try 'cairn --help' for more information.\n");
        cairn_free(f);
        return 2;
    }
    if (f->print_help) {
        cairn_flags_usage(stdout);
        cairn_free(f);
        return 0;
    }
    if (f->print_version) {
        printf("cairn Version: %s\netcd Version: %s\nAPI Version: %s\n",
               CAIRN_PROGRAM_VERSION, SERVER_ETCD_VERSION,
               SERVER_CLUSTER_VERSION);
        cairn_free(f);
        return 0;
    }
    /* net.h: writes to a vanished peer must fail with EPIPE, not kill us. */
    signal(SIGPIPE, SIG_IGN);

    struct prog p;
    memset(&p, 0, sizeof p);
    cairn_log_init(&p.log, f->config.name, f->config.log_level);
    if (f->warnings[0] != '\0') {
        char *save = NULL;
        for (char *l = strtok_r(f->warnings, "\n", &save); l != NULL;
             l = strtok_r(NULL, "\n", &save))
            cairn_warnf(&p.log, "main", "%s", l);
    }
    cairn_infof(&p.log, "main", "cairn %s (etcd API %s), data dir %s",
                CAIRN_PROGRAM_VERSION, SERVER_ETCD_VERSION, f->config.data_dir);
    if (f->config.force_new_cluster)
        cairn_infof(&p.log, "main", "force new cluster");
    f->config.initial_check = cairn_corrupt_check;
    f->config.initial_check_arg = &p.log;
    uv_loop_init(&p.loop);
    rv = server_open(&p.loop, &f->config, &p.log, &p.server, &m);
    if (rv != 0) {
        cairn_log_write(&p.log, CAIRN_LOG_FATAL, "main", "%s", m.text);
        uv_run(&p.loop, UV_RUN_DEFAULT);
        server_close(p.server);
        uv_loop_close(&p.loop);
        cairn_free(f);
        return 1;
    }
    const char *urls[SERVER_URLS_MAX];
    size_t n = f->config.listen_client_urls.n;
    for (size_t i = 0; i < n; i++)
        urls[i] = f->config.listen_client_urls.url[i];
    rv = api_serve(&p.loop, p.server, &p.log, urls, n, &p.api, &m);
    if (rv == 0)
        rv = listen_metrics(&p, &f->config.listen_metrics_urls, &m);
    if (rv != 0) {
        cairn_log_write(&p.log, CAIRN_LOG_FATAL, "main", "%s", m.text);
        server_stop(p.server);
        uv_run(&p.loop, UV_RUN_DEFAULT);
        server_close(p.server);
        uv_loop_close(&p.loop);
        cairn_free(f);
        return 1;
    }
    server_on_stopped(p.server, &p, on_stopped);
    uv_signal_init(&p.loop, &p.sigterm);
    p.sigterm.data = &p;
    uv_signal_start(&p.sigterm, on_signal, SIGTERM);
    uv_signal_init(&p.loop, &p.sigint);
    p.sigint.data = &p;
    uv_signal_start(&p.sigint, on_signal, SIGINT);

    uv_run(&p.loop, UV_RUN_DEFAULT);
    server_close(p.server);
    uv_loop_close(&p.loop);
    cairn_free(f);
    /* etcd exits 0 once its member was removed from the cluster: the stop
     * is the cluster's decision, not a failure. */
    if (p.status == CAIRN_EREMOVED) {
        cairn_infof(&p.log, "main",
                    "the member has been permanently removed from the "
                    "cluster; exiting");
        return 0;
    }
    if (p.status != 0) {
        cairn_log_write(&p.log, CAIRN_LOG_FATAL, "main", "stopped: %s",
                        cairn_strerror(p.status));
        return 1;
    }
    return 0;
}
