/* The member's two TLS contexts (client side, peer side) made from etcd's
 * flags, with the refusals and warnings of etcd's configurePeerListeners
 * and configureClientListeners (embed/etcd.go); docs/tls.md. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server/server_int.h"

#define COMP "tls"

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* etcd's TLSInfo.Empty(): neither a cert nor a key file. */
static bool files_empty(const struct server_tls_flags *f)
{
    return !set(f->cert_file) && !set(f->key_file);
}

static bool url_is_tls(const char *url)
{
    return strncmp(url, "https://", 8) == 0 || strncmp(url, "unixs://", 8) == 0;
}

static bool any_tls(const struct server_urls *u)
{
    for (size_t i = 0; i < u->n; i++)
        if (url_is_tls(u->url[i]))
            return true;
    return false;
}

/* etcd warns for http peer URLs, and for http and unix client URLs. */
static bool url_is_plain(const char *url, bool peer)
{
    return strncmp(url, "http://", 7) == 0 ||
           (!peer && strncmp(url, "unix://", 7) == 0);
}

/* "host:port" of each URL (etcd passes u.Host to SelfCert). */
static void auto_hosts(const struct server_urls *u, const char **hosts)
{
    for (size_t i = 0; i < u->n; i++) {
        const char *p = strstr(u->url[i], "://");
        hosts[i] = p != NULL ? p + 3 : u->url[i];
    }
}

/* One side's context. side is "client" or "peer". */
static int open_side(struct server *s, const struct server_config *c,
                     const struct server_tls_flags *f,
                     const struct server_urls *listen, bool peer,
                     struct net_tls **out, struct cairn_errmsg *m)
{
    const char *side = peer ? "peer" : "client";
    char dir[4096 + 32];
    const char *hosts[SERVER_URLS_MAX];
    bool self = f->auto_tls && files_empty(f);
    if (f->auto_tls && !self)
        cairn_warnf(s->log, COMP, "ignoring %s auto TLS since certs given",
                    side);
    if (self) {
        /* etcd's TouchDirAll(<data-dir>/fixtures/<side>), 0700. */
        snprintf(dir, sizeof dir, "%s/fixtures", c->data_dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            return cairn_errmsg_code(m, cairn_err_from_errno(errno),
                                     "create directory %s", dir);
        snprintf(dir, sizeof dir, "%s/fixtures/%s", c->data_dir, side);
        auto_hosts(listen, hosts);
    }
    struct net_tls_config tc = {
        .cert_file = f->cert_file,
        .key_file = f->key_file,
        .trusted_ca_file = f->trusted_ca_file,
        .crl_file = f->crl_file,
        .client_cert_auth = f->client_cert_auth,
        .auto_tls = self,
        .auto_tls_dir = self ? dir : NULL,
        .auto_tls_hosts = self ? hosts : NULL,
        .auto_tls_host_count = self ? listen->n : 0,
        .peer = peer,
        .skip_client_san_verify = peer && f->skip_client_san_verify,
        .cipher_suites = c->cipher_suites,
        .allowed_cn = peer ? f->allowed_cn : NULL,
        .allowed_hostname = f->allowed_hostname,
    };
    int rv = net_tls_open(&tc, s->log, out, m);
    if (rv != 0) {
        cairn_errmsg_prefixf(m, "%s TLS", side);
        return rv;
    }
    if (net_tls_cert_file(*out)[0] != '\0')
        cairn_infof(s->log, COMP,
                    "%s TLS: cert = %s, key = %s, trusted-ca = %s, "
                    "client-cert-auth = %s, crl-file = %s%s",
                    side, net_tls_cert_file(*out), net_tls_key_file(*out),
                    set(f->trusted_ca_file) ? f->trusted_ca_file : "",
                    f->client_cert_auth ? "true" : "false",
                    set(f->crl_file) ? f->crl_file : "",
                    self ? " (self-signed)" : "");
    return 0;
}

/* etcd warns for each plaintext URL when TLS settings are present. */
static void warn_plain(struct server *s, const struct server_urls *listen,
                       const struct server_tls_flags *f, bool peer,
                       bool has_cert)
{
    const char *what = peer ? "peer-url" : "client-url";
    const char *auth_flag =
        peer ? "--peer-client-cert-auth" : "--client-cert-auth";
    for (size_t i = 0; i < listen->n; i++) {
        if (!url_is_plain(listen->url[i], peer))
            continue;
        if (has_cert)
            cairn_warnf(s->log, COMP,
                        "scheme is HTTP while key and cert files are "
                        "present; ignoring key and cert files (%s %s)",
                        what, listen->url[i]);
        if (f->client_cert_auth)
            cairn_warnf(s->log, COMP,
                        "scheme is HTTP while %s is enabled; ignoring client "
                        "cert auth for this URL (%s %s)",
                        auth_flag, what, listen->url[i]);
    }
}

static int open_peer(struct server *s, const struct server_config *c,
                     struct cairn_errmsg *m)
{
    const struct server_tls_flags *f = &c->peer_tls;
    const struct server_urls *l = &c->listen_peer_urls;
    /* Dialing an https peer needs a context even without a certificate
     * (etcd dials with its empty TLSInfo); the initial cluster is text. */
    bool tls_url = any_tls(l) || any_tls(&c->initial_advertise_peer_urls) ||
                   (c->initial_cluster != NULL &&
                    (strstr(c->initial_cluster, "https://") != NULL ||
                     strstr(c->initial_cluster, "unixs://") != NULL));
    bool wanted = tls_url || !files_empty(f) || f->auto_tls ||
                  set(f->trusted_ca_file) || set(f->crl_file) ||
                  set(f->allowed_cn) || set(f->allowed_hostname);
    if (!wanted) {
        /* A member added later may advertise an https peer URL: etcd dials
         * it with its empty TLSInfo (the system's roots, the URL's host
         * checked, no certificate of ours), and so does this bare
         * context. It never serves: plaintext listeners ignore it. */
        struct net_tls_config bare = {.peer = true};
        return net_tls_open(&bare, s->log, &s->peer_tls, m);
    }
    int rv = open_side(s, c, f, l, true, &s->peer_tls, m);
    if (rv != 0)
        return rv;
    bool has_cert = net_tls_cert_file(s->peer_tls)[0] != '\0';
    warn_plain(s, l, f, true, has_cert);
    for (size_t i = 0; i < l->n; i++)
        if (url_is_tls(l->url[i]) && !has_cert)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "cannot listen on TLS for %s: KeyFile "
                                     "and CertFile are not presented",
                                     strstr(l->url[i], "://") + 3);
    return 0;
}

static int open_client(struct server *s, const struct server_config *c,
                       struct cairn_errmsg *m)
{
    const struct server_tls_flags *f = &c->client_tls;
    const struct server_urls *l = &c->listen_client_urls;
    for (size_t i = 0; i < l->n; i++)
        if (url_is_tls(l->url[i]) && files_empty(f) && !f->auto_tls)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "TLS key/cert (--cert-file, --key-file) "
                                     "must be provided for client url %s "
                                     "with HTTPS scheme",
                                     l->url[i]);
    /* A trusted CA alone (with plaintext URLs) serves nothing in etcd,
     * but dialing another member's https client URL uses it. */
    bool wanted = any_tls(l) || any_tls(&c->advertise_client_urls) ||
                  !files_empty(f) || f->auto_tls || set(f->trusted_ca_file);
    if (!wanted)
        return 0;
    int rv = open_side(s, c, f, l, false, &s->client_tls, m);
    if (rv != 0)
        return rv;
    warn_plain(s, l, f, false, net_tls_cert_file(s->client_tls)[0] != '\0');
    return 0;
}

int server__tls_open(struct server *s, const struct server_config *c,
                     struct cairn_errmsg *m)
{
    /* etcd configures the peer listeners first. */
    int rv = open_peer(s, c, m);
    if (rv == 0)
        rv = open_client(s, c, m);
    if (rv != 0)
        server__tls_close(s);
    return rv;
}

void server__tls_close(struct server *s)
{
    net_tls_close(s->client_tls);
    net_tls_close(s->peer_tls);
    s->client_tls = NULL;
    s->peer_tls = NULL;
}

struct net_tls *server_client_tls(const struct server *s)
{
    return s->client_tls;
}
