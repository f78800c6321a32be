/* TLS over net's streams with OpenSSL 3 and memory BIOs: the TLS row of the
 * connection-type table, the handshake under a deadline with etcd's extra
 * checks (CRL serials, allowed CN / host name), and net_tls, the context
 * loaded from etcd's TLS settings (with auto-TLS and cipher-suite names). */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/net_int.h"
#include "net/tls_int.h"

#define TLS_PATH_MAX 4096
#define TLS_PLAIN_BUF (16u << 10)
/* The largest TLS record's plaintext: writes are gathered up to this. */
#define TLS_RECORD_MAX (16u << 10)

struct net_tls {
    SSL_CTX *ctx;
    struct cairn_log *log;
    X509_CRL *crl;
    bool server_verify; /* require and verify client certificates */
    bool client_verify; /* verify servers we dial (not under auto-TLS) */
    bool san_verify;    /* peer listeners: client cert SANs vs remote IP */
    /* No trusted CA file: the system's roots, loaded at the first dial
     * that verifies (about 1 MB that a member dialing no https URL, or
     * only under auto-TLS, never needs). */
    bool roots_pending;
    uint32_t hs_timeout_ms;
    char cert_file[TLS_PATH_MAX];
    char key_file[TLS_PATH_MAX];
    char allowed_cn[256];
    char allowed_host[256];
};

struct net__tls_conn {
    struct net_tls *t;
    SSL *ssl;
    BIO *rbio;        /* ciphertext in: we write into it, SSL reads */
    BIO *wbio;        /* ciphertext out: SSL writes, we drain to the socket */
    uv_timer_t timer; /* handshake deadline, then "plaintext is pending" */
    /* Writes of one loop turn are gathered into out (one record's worth at
     * most) and encrypted together: by the check handle right after the
     * I/O callbacks that wrote, or by the idle handle (whose being active
     * also keeps the loop from blocking in poll meanwhile) for writes made
     * after the check phase or before poll (timers, prepare handles). */
    uv_check_t check;
    uv_idle_t idle;
    uint8_t *out; /* TLS_RECORD_MAX bytes, while it holds any */
    size_t out_len;
    uint64_t ssl_writes; /* SSL_write calls, for tests */
    struct cairn_log *log;
    bool server;
    bool handshaking;
    int open_handles;
    net_connect_cb ccb; /* client side: told once the handshake ends */
    void *carg;
    /* Why etcd's extra checks refused the other side's certificate during
     * the handshake (verify_cb), or "". */
    char why[320];
    uint8_t plain[TLS_PLAIN_BUF];
};

/* ---- cipher suites ---- */

static const struct {
    const char *etcd, *openssl;
} ciphers[] = {
    {"TLS_RSA_WITH_RC4_128_SHA", "RC4-SHA"},
    {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "DES-CBC3-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_CBC_SHA256", "AES128-SHA256"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_RC4_128_SHA", "ECDHE-ECDSA-RC4-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_RC4_128_SHA", "ECDHE-RSA-RC4-SHA"},
    {"TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", "ECDHE-RSA-DES-CBC3-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
     "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
     "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
     "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
     "ECDHE-ECDSA-CHACHA20-POLY1305"},
    /* TLS 1.3: Go accepts the names and does not restrict by them */
    {"TLS_AES_128_GCM_SHA256", ""},
    {"TLS_AES_256_GCM_SHA384", ""},
    {"TLS_CHACHA20_POLY1305_SHA256", ""},
};

const char *net_tls_cipher_openssl_name(const char *etcd_name)
{
    for (size_t i = 0; i < sizeof(ciphers) / sizeof(ciphers[0]); i++)
        if (strcmp(ciphers[i].etcd, etcd_name) == 0)
            return ciphers[i].openssl;
    return NULL;
}

/* "A,B" in etcd's names -> "X:Y" in OpenSSL's. */
static int cipher_list(const char *in, char *out, size_t size,
                       struct cairn_errmsg *msg)
{
    size_t used = 0;
    out[0] = '\0';
    const char *p = in;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char name[128];
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n >= sizeof(name) || n == 0) {
            if (msg)
                cairn_errmsg_setf(msg, "unexpected TLS cipher suite \"%.*s\"",
                                  (int)(n < 100 ? n : 100), p);
            return CAIRN_EINVAL;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        const char *o = net_tls_cipher_openssl_name(name);
        if (o == NULL) {
            if (msg)
                cairn_errmsg_setf(msg, "unexpected TLS cipher suite %s", name);
            return CAIRN_EINVAL;
        }
        if (o[0]) {
            int w =
                snprintf(out + used, size - used, "%s%s", used ? ":" : "", o);
            if (w < 0 || (size_t)w >= size - used)
                return CAIRN_EINVAL;
            used += (size_t)w;
        }
        p += n;
        while (*p == ' ')
            p++;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* ---- loading ---- */

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int file_fail(struct cairn_errmsg *msg, const char *what,
                     const char *path)
{
    char r[256];
    net__ssl_reason(r, sizeof(r), "unknown error");
    if (msg)
        cairn_errmsg_setf(msg, "%s %s: %s", what, path, r);
    return CAIRN_EINVAL;
}

static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    /* gRPC clients offer h2 alone and get it. A client offering http/1.1
     * too (curl, browsers) gets HTTP/1.1: rpc serves the HTTP endpoints
     * (/health, /version, /metrics, the JSON gateway) over HTTP/1.1 only,
     * while Go's server, preferring h2, serves them over both. */
    static const unsigned char ours[] = "\x08http/1.1\x02h2";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof(ours) - 1, in,
                              inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* Makes or reuses the auto-TLS certificate, as etcd's SelfCert. */
static int auto_cert(const struct net_tls_config *cfg, struct net_tls *t,
                     struct cairn_errmsg *msg)
{
    if (!set(cfg->auto_tls_dir)) {
        if (msg)
            cairn_errmsg_setf(msg, "auto TLS needs a directory");
        return CAIRN_EINVAL;
    }
    if (mkdir(cfg->auto_tls_dir, 0700) != 0 && errno != EEXIST) {
        if (msg)
            cairn_errmsg_setf(msg, "cannot create cert directory %s: %s",
                              cfg->auto_tls_dir, strerror(errno));
        return CAIRN_EIO;
    }
    snprintf(t->cert_file, sizeof(t->cert_file), "%s/cert.pem",
             cfg->auto_tls_dir);
    snprintf(t->key_file, sizeof(t->key_file), "%s/key.pem", cfg->auto_tls_dir);
    if (access(t->cert_file, F_OK) == 0 && access(t->key_file, F_OK) == 0) {
        cairn_infof(t->log, "net", "auto TLS: using %s", t->cert_file);
        return 0;
    }
    struct net__cert_spec spec = {
        .org = "etcd",
        .hosts = cfg->auto_tls_hosts,
        .host_count = cfg->auto_tls_host_count,
        .server_auth = true,
        .client_auth = cfg->peer,
        .not_before_s = 0,
        .not_after_s = 365 * 24 * 3600,
        .curve = "P-521", /* etcd 3.4's SelfCert */
    };
    X509 *cert;
    EVP_PKEY *key;
    int rv = net__cert_make(&spec, &cert, &key, msg);
    if (rv != 0)
        return rv;
    rv = net__pem_write(t->cert_file, cert, t->key_file, key, msg);
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rv == 0)
        cairn_infof(t->log, "net", "auto TLS: created %s and %s", t->cert_file,
                    t->key_file);
    return rv;
}

static int load_crl(struct net_tls *t, const char *path,
                    struct cairn_errmsg *msg)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (msg)
            cairn_errmsg_setf(msg, "open CRL file %s: %s", path,
                              strerror(errno));
        return CAIRN_EIO;
    }
    ERR_clear_error();
    t->crl = PEM_read_X509_CRL(f, NULL, NULL, NULL);
    if (t->crl == NULL) {
        /* etcd's parser takes PEM or DER */
        ERR_clear_error();
        rewind(f);
        t->crl = d2i_X509_CRL_fp(f, NULL);
    }
    fclose(f);
    if (t->crl == NULL)
        return file_fail(msg, "parse CRL file", path);
    return 0;
}

static int tls_setup(const struct net_tls_config *cfg, struct net_tls *t,
                     struct cairn_errmsg *msg)
{
    if (set(cfg->allowed_cn) && set(cfg->allowed_hostname)) {
        if (msg)
            cairn_errmsg_setf(msg,
                              "AllowedCN and AllowedHostname are mutually "
                              "exclusive (cn=\"%s\", hostname=\"%s\")",
                              cfg->allowed_cn, cfg->allowed_hostname);
        return CAIRN_EINVAL;
    }
    if (set(cfg->cert_file) != set(cfg->key_file)) {
        if (msg)
            cairn_errmsg_setf(msg,
                              "KeyFile and CertFile must both be present"
                              "[key: %s, cert: %s]",
                              set(cfg->key_file) ? cfg->key_file : "",
                              set(cfg->cert_file) ? cfg->cert_file : "");
        return CAIRN_EINVAL;
    }
    bool self = false;
    int rv;
    if (set(cfg->cert_file)) {
        snprintf(t->cert_file, sizeof(t->cert_file), "%s", cfg->cert_file);
        snprintf(t->key_file, sizeof(t->key_file), "%s", cfg->key_file);
    } else if (cfg->auto_tls) {
        rv = auto_cert(cfg, t, msg);
        if (rv != 0)
            return rv;
        self = true;
    }
    if (cfg->allowed_cn)
        snprintf(t->allowed_cn, sizeof(t->allowed_cn), "%s", cfg->allowed_cn);
    if (cfg->allowed_hostname)
        snprintf(t->allowed_host, sizeof(t->allowed_host), "%s",
                 cfg->allowed_hostname);
    t->hs_timeout_ms = cfg->handshake_timeout_ms
                           ? cfg->handshake_timeout_ms
                           : NET_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS;

    ERR_clear_error();
    t->ctx = SSL_CTX_new(TLS_method());
    if (t->ctx == NULL)
        return CAIRN_ENOMEM;
    /* etcd: TLS 1.2 at least */
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(t->ctx, SSL_MODE_RELEASE_BUFFERS);
    /* a session cache would be per-context memory without a bound here */
    SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(t->ctx, 0);
    /* A renegotiation would make SSL_write wait for reads, which the write
     * path (encrypt at once into the memory BIO) does not allow. */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
    /* Without a certificate the context can only dial, as etcdctl with just
     * --cacert does; listeners refuse it. */
    if (t->cert_file[0]) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, t->cert_file) != 1)
            return file_fail(msg, "load certificate file", t->cert_file);
        if (SSL_CTX_use_PrivateKey_file(t->ctx, t->key_file,
                                        SSL_FILETYPE_PEM) != 1)
            return file_fail(msg, "load key file", t->key_file);
        if (SSL_CTX_check_private_key(t->ctx) != 1)
            return file_fail(msg, "key file does not match certificate",
                             t->key_file);
    }
    if (set(cfg->trusted_ca_file)) {
        if (SSL_CTX_load_verify_locations(t->ctx, cfg->trusted_ca_file, NULL) !=
            1)
            return file_fail(msg, "load trusted CA file", cfg->trusted_ca_file);
    } else {
        t->roots_pending = true;
    }
    if (set(cfg->crl_file)) {
        rv = load_crl(t, cfg->crl_file, msg);
        if (rv != 0)
            return rv;
    }
    if (set(cfg->cipher_suites)) {
        char list[2048];
        rv = cipher_list(cfg->cipher_suites, list, sizeof(list), msg);
        if (rv != 0)
            return rv;
        if (list[0] && SSL_CTX_set_cipher_list(t->ctx, list) != 1)
            return file_fail(msg, "cipher suites not available in OpenSSL",
                             cfg->cipher_suites);
    }
    SSL_CTX_set_alpn_select_cb(t->ctx, alpn_select, NULL);
    /* etcd: a trusted CA file alone also asks for client certificates */
    t->server_verify = cfg->client_cert_auth || set(cfg->trusted_ca_file);
    t->san_verify = cfg->peer && !cfg->skip_client_san_verify;
    /* etcd skips verifying servers when its own certificate is self-made */
    t->client_verify = !self;
    if (t->roots_pending && t->server_verify) {
        /* --client-cert-auth without a CA file: clients against the
         * system's roots, from the first connection on */
        SSL_CTX_set_default_verify_paths(t->ctx);
        ERR_clear_error();
        t->roots_pending = false;
    }
    return 0;
}

int net_tls_open(const struct net_tls_config *cfg, struct cairn_log *log,
                 struct net_tls **out, struct cairn_errmsg *msg)
{
    struct net_tls *t = cairn_calloc(1, sizeof(*t));
    if (t == NULL)
        return CAIRN_ENOMEM;
    t->log = log;
    int rv = tls_setup(cfg, t, msg);
    if (rv != 0) {
        net_tls_close(t);
        return rv;
    }
    *out = t;
    return 0;
}

void net_tls_close(struct net_tls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    X509_CRL_free(t->crl);
    cairn_free(t);
}

bool net__tls_can_serve(const struct net_tls *t)
{
    return t->cert_file[0] != '\0';
}

uint32_t net__tls_hs_timeout_ms(const struct net_tls *t)
{
    return t->hs_timeout_ms;
}

const char *net_tls_cert_file(const struct net_tls *t)
{
    return t->cert_file;
}

const char *net_tls_key_file(const struct net_tls *t)
{
    return t->key_file;
}

/* ---- the connection row ---- */

/* Moves what SSL wrote into wbio onto the socket; acct is the caller's
 * plaintext bytes this stands for. */
static int tls_flush(struct net_conn *c, size_t acct)
{
    struct net__tls_conn *tc = c->tls;
    size_t n = BIO_ctrl_pending(tc->wbio);
    if (n == 0)
        return 0;
    struct net__wreq *w = cairn_malloc(sizeof(*w) + n);
    if (w == NULL)
        return UV_ENOMEM;
    int got = BIO_read(tc->wbio, w->data, (int)n);
    CAIRN_ASSERT(got == (int)n);
    w->conn = c;
    w->len = n;
    w->acct = acct;
    w->req.data = w;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    int rv = uv_write(&w->req, &c->u.stream, &b, 1, net__on_write);
    if (rv != 0)
        cairn_free(w);
    return rv;
}

static void refuse(struct net_conn *c, int status, const char *why)
{
    struct net__tls_conn *tc = c->tls;
    cairn_warnf(tc->log, "net", "TLS %s %s refused: %s",
                tc->server ? "connection from" : "connection to", c->peer, why);
    net__conn_fail(c, status);
}

/* etcd's checkCertSAN for peer listeners: a client certificate naming IPs
 * must name the remote IP; one naming only DNS names must name a host that
 * resolves to it. Resolving would block the loop, so only "localhost" for a
 * loopback address is accepted by name. Unix sockets have no address to
 * check. */
static const char *san_check(struct net_conn *c, X509 *peer, char *why,
                             size_t size)
{
    if (c->u.handle.type != UV_TCP)
        return NULL;
    char ip[64];
    const char *p = c->peer, *end;
    if (p[0] == '[') {
        p++;
        end = strchr(p, ']');
    } else {
        end = strrchr(p, ':');
    }
    if (end == NULL || (size_t)(end - p) >= sizeof(ip))
        return NULL;
    memcpy(ip, p, (size_t)(end - p));
    ip[end - p] = '\0';
    GENERAL_NAMES *names =
        X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    int n = names ? sk_GENERAL_NAME_num(names) : 0;
    bool has_ip = false, has_dns = false, ok = false;
    char dns_list[200] = "";
    for (int i = 0; i < n; i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_IPADD)
            has_ip = true;
        if (g->type == GEN_DNS) {
            has_dns = true;
            const char *d = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
            size_t used = strlen(dns_list);
            snprintf(dns_list + used, sizeof(dns_list) - used, "%s%s",
                     used ? " " : "", d);
            if (strcmp(d, "localhost") == 0 &&
                (strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0))
                ok = true;
        }
    }
    GENERAL_NAMES_free(names);
    if ((!has_ip && !has_dns) || ok)
        return NULL;
    if (has_ip && X509_check_ip_asc(peer, ip, 0) == 1)
        return NULL;
    if (has_dns)
        snprintf(why, size, "tls: \"%s\" does not match any of DNSNames [%s]",
                 ip, dns_list);
    else
        snprintf(why, size,
                 "x509: certificate is not valid for the remote address %s",
                 ip);
    return why;
}

/* etcd's checks of a verified chain: CRL serials (server side, as etcd's
 * listener does), the SANs of a peer's client certificate, and the allowed
 * CN or host name (both sides). peer is the other side's certificate (may
 * be NULL), chain what else it presented (may be NULL), verified whether
 * the chain verified. */
static const char *extra_checks(struct net_conn *c, X509 *peer,
                                STACK_OF(X509) * chain, bool verified,
                                char *why, size_t size)
{
    struct net__tls_conn *tc = c->tls;
    struct net_tls *t = tc->t;
    if (tc->server && t->crl && peer) {
        int n = chain ? sk_X509_num(chain) : 0;
        for (int i = -1; i < n; i++) {
            X509 *x = i < 0 ? peer : sk_X509_value(chain, i);
            X509_REVOKED *rev;
            if (X509_CRL_get0_by_serial(t->crl, &rev,
                                        X509_get0_serialNumber(x)) == 1) {
                BIGNUM *bn =
                    ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
                char *hex = bn ? BN_bn2hex(bn) : NULL;
                snprintf(why, size, "certificate serial %s revoked",
                         hex ? hex : "?");
                OPENSSL_free(hex);
                BN_free(bn);
                return why;
            }
        }
    }
    if (tc->server && t->san_verify && peer &&
        san_check(c, peer, why, size) != NULL)
        return why;
    if (t->allowed_cn[0] || t->allowed_host[0]) {
        bool ok = false;
        if (peer && verified) {
            if (t->allowed_cn[0]) {
                char cn[256] = "";
                X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
                                          NID_commonName, cn, sizeof(cn));
                ok = strcmp(cn, t->allowed_cn) == 0;
            } else {
                ok = X509_check_host(peer, t->allowed_host, 0, 0, NULL) == 1 ||
                     X509_check_ip_asc(peer, t->allowed_host, 0) == 1;
            }
        }
        if (!ok) {
            snprintf(why, size,
                     "client certificate authentication failed (allowed "
                     "%s \"%s\")",
                     t->allowed_cn[0] ? "CN" : "hostname",
                     t->allowed_cn[0] ? t->allowed_cn : t->allowed_host);
            return why;
        }
    }
    return NULL;
}

/* OpenSSL's verify callback, on a verifying side only: once the chain
 * has verified (depth 0), etcd's extra checks run here, inside the
 * handshake, so that a refusal reaches the other side as an alert
 * (bad_certificate, as Go's VerifyPeerCertificate failing sends; etcd's
 * e2e suite reads "remote error: tls: bad certificate" on that side). */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    if (!ok || X509_STORE_CTX_get_error_depth(x) != 0)
        return ok;
    SSL *ssl =
        X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct net_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    if (c == NULL)
        return ok;
    struct net__tls_conn *tc = c->tls;
    if (extra_checks(c, X509_STORE_CTX_get0_cert(x),
                     X509_STORE_CTX_get0_untrusted(x), true, tc->why,
                     sizeof(tc->why)) == NULL)
        return 1;
    X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
    return 0;
}

/* Go's names of TLS alerts (crypto/tls alert.go), by OpenSSL's: a refusal
 * the other side sent is logged as Go logs it ("remote error: tls: bad
 * certificate"), which etcd's e2e suite looks for. */
static const char *go_alert_name(const char *openssl)
{
    static const struct {
        const char *openssl, *go;
    } names[] = {
        {"bad certificate", "bad certificate"},
        {"unknown ca", "unknown certificate authority"},
        {"certificate expired", "expired certificate"},
        {"certificate revoked", "revoked certificate"},
        {"certificate unknown", "unknown certificate"},
        {"unsupported certificate", "unsupported certificate"},
        {"certificate required", "certificate required"},
        {"handshake failure", "handshake failure"},
        {"decrypt error", "error decrypting message"},
        {"decode error", "error decoding message"},
        {"protocol version", "protocol version not supported"},
        {"internal error", "internal error"},
        {"illegal parameter", "illegal parameter"},
        {"access denied", "access denied"},
        {"unexpected message", "unexpected message"},
        {"no application protocol", "no application protocol"},
        {"insufficient security", "insufficient security level"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(openssl, names[i].openssl) == 0)
            return names[i].go;
    return openssl;
}

static void hs_fail(struct net_conn *c)
{
    struct net__tls_conn *tc = c->tls;
    char why[400], r[256];
    long vr = SSL_get_verify_result(tc->ssl);
    if (tc->why[0] != '\0') {
        snprintf(why, sizeof(why), "%s", tc->why);
        ERR_clear_error();
    } else if (vr != X509_V_OK) {
        snprintf(why, sizeof(why), "certificate verify failed: %s",
                 X509_verify_cert_error_string(vr));
        ERR_clear_error();
    } else {
        net__ssl_reason(r, sizeof(r), "connection closed");
        const char *alert = strstr(r, " alert ");
        if (alert != NULL)
            snprintf(why, sizeof(why), "handshake: remote error: tls: %s (%s)",
                     go_alert_name(alert + 7), r);
        else
            snprintf(why, sizeof(why), "handshake: %s", r);
    }
    refuse(c, CAIRN_ETLS, why);
}

static void hs_step(struct net_conn *c)
{
    struct net__tls_conn *tc = c->tls;
    ERR_clear_error();
    int r = SSL_do_handshake(tc->ssl);
    int rv = tls_flush(c, 0);
    if (rv != 0) {
        net__conn_fail(c, net__uv_err(rv));
        return;
    }
    if (r != 1) {
        int e = SSL_get_error(tc->ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            return;
        hs_fail(c);
        return;
    }
    /* The checks again, for a side that does not verify (the callback
     * is not decisive there) or a client that presented nothing. */
    char why[400];
    X509 *peer = SSL_get0_peer_certificate(tc->ssl);
    if (extra_checks(c, peer, SSL_get_peer_cert_chain(tc->ssl),
                     SSL_get_verify_result(tc->ssl) == X509_V_OK, why,
                     sizeof(why)) != NULL) {
        refuse(c, CAIRN_ETLS, why);
        return;
    }
    uv_timer_stop(&tc->timer);
    uv_read_stop(&c->u.stream);
    tc->handshaking = false;
    if (tc->server)
        net__listener_hs_done(c, 0);
    else
        tc->ccb(tc->carg, 0, c);
}

/* Feeds ciphertext into SSL. */
static void tls_feed(struct net_conn *c, const uint8_t *data, size_t n)
{
    int w = BIO_write(c->tls->rbio, data, (int)n);
    CAIRN_ASSERT(w == (int)n); /* memory BIOs grow */
}

/* Hands the caller what plaintext SSL holds, while it reads. */
static void tls_deliver(struct net_conn *c)
{
    struct net__tls_conn *tc = c->tls;
    while (!c->closing && c->reading && !c->close_after_flush) {
        ERR_clear_error();
        int n = SSL_read(tc->ssl, tc->plain, sizeof(tc->plain));
        if (n > 0) {
            c->cbs->read(c->arg, c, tc->plain, (size_t)n);
            continue;
        }
        int e = SSL_get_error(tc->ssl, n);
        if (e == SSL_ERROR_WANT_READ)
            break;
        if (e == SSL_ERROR_ZERO_RETURN) {
            net__conn_fail(c, 0); /* the peer's close_notify */
            return;
        }
        char r[256];
        cairn_warnf(tc->log, "net", "TLS read from %s: %s", c->peer,
                    net__ssl_reason(r, sizeof(r), "error"));
        net__conn_fail(c, CAIRN_EIO);
        return;
    }
    if (!c->closing) {
        int rv = tls_flush(c, 0); /* SSL_read may answer (key updates) */
        if (rv != 0)
            net__conn_fail(c, net__uv_err(rv));
    }
}

static void on_tls_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct net_conn *c = h->data;
    buf->base = (char *)c->rbuf;
    buf->len = c->rbuf_size;
}

static void on_tls_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct net_conn *c = s->data;
    struct net__tls_conn *tc = c->tls;
    if (n == 0 || c->closing)
        return;
    if (n < 0) {
        if (tc->handshaking)
            refuse(c, CAIRN_ETLS,
                   n == UV_EOF ? "closed during the handshake"
                               : uv_strerror((int)n));
        else
            net__conn_fail(c, n == UV_EOF ? 0 : net__uv_err((int)n));
        return;
    }
    tls_feed(c, c->rbuf, (size_t)n);
    if (tc->handshaking)
        hs_step(c);
    else
        tls_deliver(c);
}

static void on_timer(uv_timer_t *timer)
{
    struct net_conn *c = timer->data;
    struct net__tls_conn *tc = c->tls;
    if (c->closing)
        return;
    if (tc->handshaking) {
        char why[80];
        snprintf(why, sizeof(why), "handshake did not finish within %u ms",
                 (unsigned)tc->t->hs_timeout_ms);
        refuse(c, CAIRN_ETIMEOUT, why);
        return;
    }
    tls_deliver(c);
}

static int tls_read_start(struct net_conn *c)
{
    struct net__tls_conn *tc = c->tls;
    int rv = uv_read_start(&c->u.stream, on_tls_alloc, on_tls_read);
    /* Plaintext that arrived with the handshake or while paused is already
     * inside SSL: deliver it from the loop, not from inside this call. */
    if (rv == 0 && (SSL_pending(tc->ssl) > 0 || BIO_ctrl_pending(tc->rbio) > 0))
        uv_timer_start(&tc->timer, on_timer, 0, 0);
    return rv;
}

static void tls_read_stop(struct net_conn *c)
{
    uv_read_stop(&c->u.stream);
    uv_timer_stop(&c->tls->timer);
}

/* Encrypts len plaintext bytes (records of at most 16 KiB) and hands the
 * ciphertext to the socket, standing for len of the caller's bytes. */
static int tls_encrypt(struct net_conn *c, const uint8_t *data, size_t len)
{
    struct net__tls_conn *tc = c->tls;
    ERR_clear_error();
    tc->ssl_writes++;
    int n = SSL_write(tc->ssl, data, (int)len);
    if (n != (int)len) {
        ERR_clear_error();
        return UV_EIO;
    }
    return tls_flush(c, len);
}

static void gather_stop(struct net__tls_conn *tc)
{
    uv_check_stop(&tc->check);
    uv_idle_stop(&tc->idle);
}

/* Encrypts what the loop turn gathered. */
static int gather_flush(struct net_conn *c)
{
    struct net__tls_conn *tc = c->tls;
    gather_stop(tc);
    if (tc->out_len == 0)
        return 0;
    int rv = tls_encrypt(c, tc->out, tc->out_len);
    tc->out_len = 0;
    /* Idle connections keep no buffer. */
    cairn_free(tc->out);
    tc->out = NULL;
    return rv;
}

static void gather_flush_or_fail(struct net_conn *c)
{
    if (c->closing)
        return;
    int rv = gather_flush(c);
    if (rv != 0)
        net__conn_fail(c, net__uv_err(rv));
}

static void on_gather_check(uv_check_t *h)
{
    gather_flush_or_fail(h->data);
}

static void on_gather_idle(uv_idle_t *h)
{
    gather_flush_or_fail(h->data);
}

/* Appends to the loop turn's gathered plaintext; full records go out at
 * once, as waiting would not make them fewer. */
static int gather(struct net_conn *c, const uint8_t *data, size_t len)
{
    struct net__tls_conn *tc = c->tls;
    while (len > 0) {
        if (tc->out_len == 0 && len >= TLS_RECORD_MAX) {
            /* whole records straight from the caller's bytes */
            size_t whole = len - len % TLS_RECORD_MAX;
            int rv = tls_encrypt(c, data, whole);
            if (rv != 0)
                return rv;
            data += whole;
            len -= whole;
            continue;
        }
        if (tc->out == NULL) {
            tc->out = cairn_malloc(TLS_RECORD_MAX);
            if (tc->out == NULL)
                return UV_ENOMEM;
        }
        size_t k = TLS_RECORD_MAX - tc->out_len;
        if (k > len)
            k = len;
        memcpy(tc->out + tc->out_len, data, k);
        tc->out_len += k;
        data += k;
        len -= k;
        if (tc->out_len == TLS_RECORD_MAX) {
            int rv = gather_flush(c);
            if (rv != 0)
                return rv;
        }
    }
    if (tc->out_len > 0 && !uv_is_active((uv_handle_t *)&tc->idle)) {
        uv_check_start(&tc->check, on_gather_check);
        uv_idle_start(&tc->idle, on_gather_idle);
    }
    return 0;
}

static int tls_write(struct net_conn *c, struct net__wreq *w)
{
    int rv = gather(c, w->data, w->len);
    if (rv != 0)
        return rv;
    cairn_free(w);
    return 0;
}

uint64_t net__tls_ssl_writes(const struct net_conn *c)
{
    return c->tls ? c->tls->ssl_writes : 0;
}

static void on_tls_handle_closed(uv_handle_t *h)
{
    struct net_conn *c = h->data;
    struct net__tls_conn *tc = c->tls;
    if (--tc->open_handles > 0)
        return;
    if (tc->handshaking) {
        /* never handed out: tell whoever waits for the handshake */
        int st = c->close_status < 0 ? c->close_status : CAIRN_ETLS;
        if (tc->server)
            net__listener_hs_done(c, st);
        else
            tc->ccb(tc->carg, st, NULL);
    }
    SSL_free(tc->ssl);
    cairn_free(tc->out); /* gathered bytes of a connection not flushed */
    cairn_free(tc);
    c->tls = NULL;
    net__conn_finish(c);
}

static void tls_close(struct net_conn *c)
{
    struct net__tls_conn *tc = c->tls;
    /* A close that drops the queue still hands what this turn gathered
     * to the socket, which takes it at once if it has room, as it took
     * each write at once before writes were gathered (a GOAWAY written
     * just before a hard close). */
    if (tc->out_len > 0)
        (void)gather_flush(c);
    tc->open_handles = 4;
    uv_close((uv_handle_t *)&tc->timer, on_tls_handle_closed);
    uv_close((uv_handle_t *)&tc->check, on_tls_handle_closed);
    uv_close((uv_handle_t *)&tc->idle, on_tls_handle_closed);
    uv_close(&c->u.handle, on_tls_handle_closed);
}

const struct net__conn_type net__tls_type = {
    .name = "tls",
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .close = tls_close,
};

static bool is_ip_literal(const char *h)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, h, bin) == 1 || inet_pton(AF_INET6, h, bin) == 1;
}

int net__tls_start(struct net_conn *c, struct net_tls *t, bool server,
                   const char *host, struct cairn_log *log, net_connect_cb cb,
                   void *arg)
{
    struct net__tls_conn *tc = cairn_calloc(1, sizeof(*tc));
    if (tc == NULL)
        return CAIRN_ENOMEM;
    ERR_clear_error();
    tc->ssl = SSL_new(t->ctx);
    tc->rbio = BIO_new(BIO_s_mem());
    tc->wbio = BIO_new(BIO_s_mem());
    if (tc->ssl == NULL || tc->rbio == NULL || tc->wbio == NULL) {
        BIO_free(tc->rbio);
        BIO_free(tc->wbio);
        SSL_free(tc->ssl);
        cairn_free(tc);
        ERR_clear_error();
        return CAIRN_ENOMEM;
    }
    SSL_set_bio(tc->ssl, tc->rbio, tc->wbio);
    SSL_set_app_data(tc->ssl, c);
    tc->t = t;
    tc->log = log ? log : t->log;
    tc->server = server;
    tc->handshaking = true;
    tc->ccb = cb;
    tc->carg = arg;
    if (server) {
        SSL_set_accept_state(tc->ssl);
        SSL_set_verify(tc->ssl,
                       t->server_verify
                           ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
                           : SSL_VERIFY_NONE,
                       t->server_verify ? verify_cb : NULL);
    } else {
        if (t->client_verify && t->roots_pending) {
            /* once, on the loop thread that owns the context */
            SSL_CTX_set_default_verify_paths(t->ctx);
            ERR_clear_error();
            t->roots_pending = false;
        }
        SSL_set_connect_state(tc->ssl);
        /* every cairn client speaks HTTP/2 (gRPC, peers) */
        static const unsigned char protos[] = "\x02h2";
        SSL_set_alpn_protos(tc->ssl, protos, sizeof(protos) - 1);
        if (host && host[0] && !is_ip_literal(host))
            SSL_set_tlsext_host_name(tc->ssl, host);
        SSL_set_verify(tc->ssl,
                       t->client_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                       t->client_verify ? verify_cb : NULL);
        if (t->client_verify && host && host[0]) {
            X509_VERIFY_PARAM *p = SSL_get0_param(tc->ssl);
            if (is_ip_literal(host))
                X509_VERIFY_PARAM_set1_ip_asc(p, host);
            else
                X509_VERIFY_PARAM_set1_host(p, host, 0);
        }
    }
    uv_timer_init(c->loop, &tc->timer);
    tc->timer.data = c;
    uv_check_init(c->loop, &tc->check);
    tc->check.data = c;
    uv_idle_init(c->loop, &tc->idle);
    tc->idle.data = c;
    c->tls = tc;
    c->type = &net__tls_type;
    c->u.handle.data = c;
    uv_timer_start(&tc->timer, on_timer, t->hs_timeout_ms, 0);
    int rv = uv_read_start(&c->u.stream, on_tls_alloc, on_tls_read);
    if (rv != 0) {
        net__conn_fail(c, net__uv_err(rv));
        return 0; /* the close path reports the failure */
    }
    if (!server)
        hs_step(c); /* the ClientHello */
    return 0;
}

const char *net_conn_alpn(const struct net_conn *c)
{
    static const char none[] = "";
    if (c->tls == NULL)
        return none;
    const unsigned char *p;
    unsigned int n;
    SSL_get0_alpn_selected(c->tls->ssl, &p, &n);
    if (n == 2 && memcmp(p, "h2", 2) == 0)
        return "h2";
    if (n == 8 && memcmp(p, "http/1.1", 8) == 0)
        return "http/1.1";
    return none;
}
