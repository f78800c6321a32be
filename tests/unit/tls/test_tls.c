/* net's TLS layer: echo over https and unixs with client certificates, ALPN,
 * plaintext and TLS listeners side by side, and every refusal of issue 9
 * item 5 (plaintext, garbage, expired, revoked, wrong CA, wrong CN, a
 * handshake that never finishes), each logged while the server keeps
 * serving; configuration errors; auto TLS as etcd makes it. Certificates
 * are made at run time with OpenSSL in a mkdtemp folder. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* cmocka needs the includes above first */
#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "net/net.h"
#include "net/tls_int.h"
#include "run_until.h"
#include "util/prng.h"

/* ---- certificates ---- */

struct certs {
    char dir[64];
    char ca[128], server[128], server_key[128];
    char client[128], client_key[128];
    char expired[128], expired_key[128];
    char revoked[128], revoked_key[128], crl[128];
    char other_ca[128], stranger[128], stranger_key[128];
    char intruder[128], intruder_key[128];
    char far[128], far_key[128]; /* valid, but for 10.9.9.9 only */
};

static void path(char *out, const struct certs *c, const char *name)
{
    snprintf(out, 128, "%s/%s", c->dir, name);
}

static void make(const struct net__cert_spec *spec, const char *cert_path,
                 const char *key_path, X509 **cert_out, EVP_PKEY **key_out)
{
    X509 *cert;
    EVP_PKEY *key;
    struct cairn_errmsg m;
    assert_int_equal(net__cert_make(spec, &cert, &key, &m), 0);
    assert_int_equal(net__pem_write(cert_path, cert, key_path, key, &m), 0);
    if (cert_out) {
        *cert_out = cert;
        *key_out = key;
    } else {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
}

static const char *const local_hosts[] = {"127.0.0.1", "localhost", "::1"};

static void leaf(const struct certs *c, X509 *ca, EVP_PKEY *ca_key,
                 const char *cn, uint64_t serial, int64_t nb, int64_t na,
                 const char *cert_path, const char *key_path)
{
    struct net__cert_spec s = {
        .cn = cn,
        .hosts = local_hosts,
        .host_count = 3,
        .server_auth = true,
        .client_auth = true,
        .not_before_s = nb,
        .not_after_s = na,
        .serial = serial,
        .issuer = ca,
        .issuer_key = ca_key,
    };
    (void)c;
    make(&s, cert_path, key_path, NULL, NULL);
}

static void certs_make(struct certs *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->dir, sizeof(c->dir), "/tmp/cairn-tls-XXXXXX");
    assert_non_null(mkdtemp(c->dir));
    path(c->ca, c, "ca.pem");
    path(c->server, c, "server.pem");
    path(c->server_key, c, "server-key.pem");
    path(c->client, c, "client.pem");
    path(c->client_key, c, "client-key.pem");
    path(c->expired, c, "expired.pem");
    path(c->expired_key, c, "expired-key.pem");
    path(c->revoked, c, "revoked.pem");
    path(c->revoked_key, c, "revoked-key.pem");
    path(c->crl, c, "revoke.crl");
    path(c->other_ca, c, "other-ca.pem");
    path(c->stranger, c, "stranger.pem");
    path(c->stranger_key, c, "stranger-key.pem");
    path(c->intruder, c, "intruder.pem");
    path(c->intruder_key, c, "intruder-key.pem");
    path(c->far, c, "far.pem");
    path(c->far_key, c, "far-key.pem");
    char key_path[128];
    X509 *ca, *other;
    EVP_PKEY *ca_key, *other_key;
    struct net__cert_spec cas = {.cn = "cairn test CA",
                                 .is_ca = true,
                                 .not_before_s = -3600,
                                 .not_after_s = 86400,
                                 .serial = 1};
    path(key_path, c, "ca-key.pem");
    make(&cas, c->ca, key_path, &ca, &ca_key);
    cas.cn = "some other CA";
    path(key_path, c, "other-ca-key.pem");
    make(&cas, c->other_ca, key_path, &other, &other_key);
    leaf(c, ca, ca_key, "server", 10, -3600, 86400, c->server, c->server_key);
    leaf(c, ca, ca_key, "client", 11, -3600, 86400, c->client, c->client_key);
    leaf(c, ca, ca_key, "client", 12, -7200, -3600, c->expired, c->expired_key);
    leaf(c, ca, ca_key, "client", 77, -3600, 86400, c->revoked, c->revoked_key);
    leaf(c, ca, ca_key, "intruder", 13, -3600, 86400, c->intruder,
         c->intruder_key);
    leaf(c, other, other_key, "client", 14, -3600, 86400, c->stranger,
         c->stranger_key);
    static const char *const far_hosts[] = {"10.9.9.9"};
    struct net__cert_spec fs = {.cn = "client",
                                .hosts = far_hosts,
                                .host_count = 1,
                                .server_auth = true,
                                .client_auth = true,
                                .not_before_s = -3600,
                                .not_after_s = 86400,
                                .serial = 15,
                                .issuer = ca,
                                .issuer_key = ca_key};
    make(&fs, c->far, c->far_key, NULL, NULL);

    /* a CRL from the CA revoking serial 77 */
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME *t = X509_gmtime_adj(NULL, -60);
    X509_CRL_set1_lastUpdate(crl, t);
    X509_gmtime_adj(t, 86400);
    X509_CRL_set1_nextUpdate(crl, t);
    X509_REVOKED *rev = X509_REVOKED_new();
    ASN1_INTEGER *serial = ASN1_INTEGER_new();
    ASN1_INTEGER_set(serial, 77);
    X509_REVOKED_set_serialNumber(rev, serial);
    X509_gmtime_adj(t, -60);
    X509_REVOKED_set_revocationDate(rev, t);
    X509_CRL_add0_revoked(crl, rev);
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
    FILE *f = fopen(c->crl, "w");
    assert_non_null(f);
    assert_true(PEM_write_X509_CRL(f, crl));
    fclose(f);
    ASN1_INTEGER_free(serial);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    X509_free(ca);
    X509_free(other);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_key);
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- a log that keeps its lines ---- */

struct logbuf {
    struct cairn_log log;
    char text[16384];
    size_t len;
};

static void log_sink(void *arg, enum cairn_log_level level, const char *line)
{
    (void)level;
    struct logbuf *b = arg;
    int n = snprintf(b->text + b->len, sizeof(b->text) - b->len, "%s\n", line);
    if (n > 0 && (size_t)n < sizeof(b->text) - b->len)
        b->len += (size_t)n;
}

static void logbuf_init(struct logbuf *b)
{
    memset(b, 0, sizeof(*b));
    cairn_log_init(&b->log, "test", CAIRN_LOG_INFO);
    b->log.sink = log_sink;
    b->log.sink_arg = b;
}

/* ---- echo server, counting client ---- */

struct side {
    struct net_conn *conn;
    uint8_t got[1 << 16];
    size_t got_len;
    int closed;
    int close_status;
    bool echo;
    bool pause_each; /* pauses reading from inside each read callback */
};

struct fixture {
    uv_loop_t loop;
    struct certs certs;
    struct logbuf slog, clog;
    struct net_tls *stls;
    struct net_listener *l;
    int accepts;
    struct side server;
    struct side client;
    int connects;
    int connect_status;
    char alpn[16];
};

static void side_read(void *arg, struct net_conn *c, const uint8_t *d, size_t n)
{
    struct side *s = arg;
    size_t room = sizeof(s->got) - s->got_len;
    memcpy(s->got + s->got_len, d, n < room ? n : room);
    s->got_len += n < room ? n : room;
    if (s->echo)
        assert_int_equal(net_conn_write(c, d, n), 0);
    if (s->pause_each)
        net_conn_read_pause(c, true);
}
static void side_closed(void *arg, struct net_conn *c, int status)
{
    (void)c;
    struct side *s = arg;
    s->closed++;
    s->close_status = status;
    s->conn = NULL;
}
static int drains;
static void side_drain(void *arg, struct net_conn *c)
{
    (void)arg;
    (void)c;
    drains++;
}
static const struct net_conn_cbs side_cbs = {side_read, side_drain,
                                             side_closed};

static void on_accept(void *arg, struct net_conn *c)
{
    struct fixture *f = arg;
    f->accepts++;
    f->server.conn = c;
    f->server.got_len = 0;
    f->server.echo = true;
    net_conn_start(c, &side_cbs, &f->server);
}

static void on_connected(void *arg, int status, struct net_conn *c)
{
    struct fixture *f = arg;
    f->connects++;
    f->connect_status = status;
    if (status == 0) {
        snprintf(f->alpn, sizeof(f->alpn), "%s", net_conn_alpn(c));
        f->client.conn = c;
        f->client.got_len = 0;
        f->client.closed = 0;
        net_conn_start(c, &side_cbs, &f->client);
    }
}

/* Opens the fixture's server TLS context from cfg and listens on url. */
static void serve(struct fixture *f, const char *url_text,
                  const struct net_tls_config *cfg)
{
    struct cairn_errmsg m;
    assert_int_equal(net_tls_open(cfg, &f->slog.log, &f->stls, &m), 0);
    struct net_conn_config nc = {.tls = f->stls};
    struct net_url url;
    assert_int_equal(net_url_parse(url_text, &url, &m), 0);
    assert_int_equal(net_listener_open(&f->loop, &url, &nc, &f->slog.log, &f->l,
                                       f, on_accept, &m),
                     0);
}

static void fixture_open(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    certs_make(&f->certs);
    logbuf_init(&f->slog);
    logbuf_init(&f->clog);
}

static void fixture_close(struct fixture *f)
{
    if (f->l)
        net_listener_close(f->l);
    if (f->client.conn)
        net_conn_close(f->client.conn, false);
    if (f->server.conn)
        net_conn_close(f->server.conn, false);
    LOOP_DRAIN(&f->loop);
    assert_int_equal(ru_loop_close(&f->loop), 0);
    net_tls_close(f->stls);
    rm_rf(f->certs.dir);
}

/* The URL the fixture's listener serves, for dialing. */
static void listen_url(struct fixture *f, const char *scheme_host,
                       struct net_url *url)
{
    char text[300];
    snprintf(text, sizeof(text), "%s:%u", scheme_host,
             (unsigned)net_listener_port(f->l));
    assert_int_equal(net_url_parse(text, url, NULL), 0);
}

/* Dials url with a client TLS context (NULL: plaintext) and waits for the
 * connect callback; returns its status. */
static int dial(struct fixture *f, const struct net_url *url,
                struct net_tls *ctls)
{
    struct net_conn_config nc = {.tls = ctls};
    int before = f->connects;
    assert_int_equal(net_connect(&f->loop, url, &nc, f, on_connected), 0);
    RUN_UNTIL(f, f->connects == before + 1);
    return f->connect_status;
}

/* A client with cert/key trusting ca; NULL cert: none. */
static struct net_tls *client_tls(struct fixture *f, const char *cert,
                                  const char *key, const char *ca)
{
    struct net_tls_config cfg = {.cert_file = cert,
                                 .key_file = key,
                                 .trusted_ca_file = ca,
                                 .handshake_timeout_ms = 5000};
    struct net_tls *t = NULL;
    struct cairn_errmsg m;
    int rv = net_tls_open(&cfg, &f->clog.log, &t, &m);
    if (rv != 0)
        fail_msg("client tls: %s", m.text);
    return t;
}

/* A full round trip over a connected client: bytes out, echo back. */
static void round_trip(struct fixture *f, size_t len)
{
    static uint8_t data[60000];
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 7 + 3);
    f->client.got_len = 0;
    assert_int_equal(net_conn_write(f->client.conn, data, len), 0);
    RUN_UNTIL(f, f->client.got_len == len);
    assert_memory_equal(f->client.got, data, len);
}

static void close_client(struct fixture *f)
{
    if (f->client.conn) {
        net_conn_close(f->client.conn, false);
        RUN_UNTIL(f, f->client.conn == NULL);
    }
    if (f->server.conn) {
        RUN_UNTIL(f, f->server.conn == NULL);
    }
}

static struct net_tls_config server_cfg(const struct certs *c)
{
    struct net_tls_config cfg = {.cert_file = c->server,
                                 .key_file = c->server_key,
                                 .trusted_ca_file = c->ca,
                                 .client_cert_auth = true,
                                 .handshake_timeout_ms = 5000};
    return cfg;
}

/* ---- tests ---- */

static void https_echo_with_client_certs(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    assert_string_equal(f.alpn, "h2");
    assert_string_equal(net_conn_type_name(f.client.conn), "tls+tcp");
    round_trip(&f, 5);
    round_trip(&f, 60000); /* several TLS records */
    close_client(&f);
    assert_int_equal(f.accepts, 1);
    /* by name too: localhost is in the server's certificate */
    listen_url(&f, "https://localhost", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 100);
    /* the server closes: the client sees the end */
    net_conn_close(f.server.conn, true);
    RUN_UNTIL(&f, f.client.conn == NULL && f.server.conn == NULL);
    net_tls_close(ct);
    fixture_close(&f);
}

static void unixs_echo_and_plain_side_by_side(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    char text[200];
    snprintf(text, sizeof(text), "unixs://%s/c.sock", f.certs.dir);
    serve(&f, text, &cfg);
    /* a plaintext listener on the same loop, configured with the same TLS
     * context, stays plaintext */
    struct net_conn_config nc = {.tls = f.stls};
    struct net_url purl, url;
    struct net_listener *plain;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &purl, NULL), 0);
    assert_int_equal(net_listener_open(&f.loop, &purl, &nc, &f.slog.log, &plain,
                                       &f, on_accept, NULL),
                     0);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    assert_int_equal(net_url_parse(text, &url, NULL), 0);
    assert_int_equal(dial(&f, &url, ct), 0);
    assert_string_equal(net_conn_type_name(f.client.conn), "tls+unix");
    round_trip(&f, 1000);
    close_client(&f);
    purl.port = net_listener_port(plain);
    assert_int_equal(dial(&f, &purl, NULL), 0);
    assert_string_equal(net_conn_type_name(f.client.conn), "tcp");
    assert_string_equal(net_conn_alpn(f.client.conn), "");
    round_trip(&f, 1000);
    close_client(&f);
    net_listener_close(plain);
    net_tls_close(ct);
    fixture_close(&f);
}

/* After a refusal, the server still serves a good client. */
static void still_serving(struct fixture *f, const struct net_url *url)
{
    struct net_tls *ct =
        client_tls(f, f->certs.client, f->certs.client_key, f->certs.ca);
    int accepts = f->accepts;
    assert_int_equal(dial(f, url, ct), 0);
    round_trip(f, 10);
    close_client(f);
    assert_int_equal(f->accepts, accepts + 1);
    net_tls_close(ct);
}

static void plaintext_and_garbage_refused(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_url plain, tls;
    listen_url(&f, "http://127.0.0.1", &plain);
    listen_url(&f, "https://127.0.0.1", &tls);

    /* an HTTP/1.1 request to the TLS port */
    assert_int_equal(dial(&f, &plain, NULL), 0);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(net_conn_write(f.client.conn, req, sizeof(req) - 1), 0);
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_int_equal(f.accepts, 0);
    assert_non_null(strstr(f.slog.text, "refused: handshake:"));
    assert_non_null(strstr(f.slog.text, "http request"));
    still_serving(&f, &tls);

    /* a TLS record header followed by seeded random bytes */
    struct prng prng;
    prng_seed(&prng, 9);
    uint8_t junk[512] = {0x16, 0x03, 0x01, 0x01, 0xfb}; /* 507 bytes */
    for (size_t i = 5; i < sizeof(junk); i++)
        junk[i] = (uint8_t)prng_next(&prng);
    f.slog.len = 0;
    f.slog.text[0] = '\0';
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(net_conn_write(f.client.conn, junk, sizeof(junk)), 0);
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_non_null(strstr(f.slog.text, "refused: handshake:"));
    still_serving(&f, &tls);
    fixture_close(&f);
}

/* Dials with a client certificate the server must refuse; returns after
 * the client's connection is gone and the server logged why. */
static void refused_client(struct fixture *f, const struct net_url *url,
                           const char *cert, const char *key, const char *why)
{
    struct net_tls *ct = client_tls(f, cert, key, f->certs.ca);
    f->slog.len = 0;
    f->slog.text[0] = '\0';
    int accepts = f->accepts;
    int st = dial(f, url, ct);
    /* TLS 1.3 clients finish before the server has judged their
     * certificate: the refusal then arrives as the connection's end */
    if (st == 0)
        RUN_UNTIL(f, f->client.conn == NULL);
    RUN_UNTIL(f, strstr(f->slog.text, "refused") != NULL);
    if (strstr(f->slog.text, why) == NULL)
        fail_msg("expected \"%s\" in: %s", why, f->slog.text);
    assert_int_equal(f->accepts, accepts);
    net_tls_close(ct);
}

static void bad_client_certificates_refused(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    cfg.crl_file = f.certs.crl;
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    refused_client(&f, &url, f.certs.expired, f.certs.expired_key,
                   "certificate has expired");
    still_serving(&f, &url);
    refused_client(&f, &url, f.certs.revoked, f.certs.revoked_key,
                   "certificate serial 4D revoked");
    still_serving(&f, &url);
    refused_client(&f, &url, f.certs.stranger, f.certs.stranger_key,
                   "certificate verify failed");
    /* no certificate at all, while the server requires one */
    refused_client(&f, &url, NULL, NULL, "refused: handshake:");
    still_serving(&f, &url);
    fixture_close(&f);
}

static void allowed_cn_and_hostname(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    cfg.allowed_cn = "client";
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    refused_client(&f, &url, f.certs.intruder, f.certs.intruder_key,
                   "client certificate authentication failed (allowed CN "
                   "\"client\")");
    still_serving(&f, &url);
    net_listener_close(f.l);
    net_tls_close(f.stls);

    /* by host name: every test certificate is valid for 127.0.0.1, none
     * for example.com */
    cfg.allowed_cn = NULL;
    cfg.allowed_hostname = "127.0.0.1";
    serve(&f, "https://127.0.0.1:0", &cfg);
    listen_url(&f, "https://127.0.0.1", &url);
    still_serving(&f, &url);
    net_listener_close(f.l);
    net_tls_close(f.stls);
    cfg.allowed_hostname = "example.com";
    serve(&f, "https://127.0.0.1:0", &cfg);
    listen_url(&f, "https://127.0.0.1", &url);
    refused_client(&f, &url, f.certs.client, f.certs.client_key,
                   "allowed hostname \"example.com\"");
    fixture_close(&f);
}

/* etcd's peer listener checks a client certificate's SANs against the
 * remote address; client listeners and the skip switch do not. */
static void peer_client_san_checked(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    cfg.peer = true;
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    still_serving(&f, &url); /* 127.0.0.1 is in the client's SANs */
    refused_client(&f, &url, f.certs.far, f.certs.far_key,
                   "not valid for the remote address 127.0.0.1");
    net_listener_close(f.l);
    net_tls_close(f.stls);
    cfg.skip_client_san_verify = true;
    serve(&f, "https://127.0.0.1:0", &cfg);
    listen_url(&f, "https://127.0.0.1", &url);
    struct net_tls *ct =
        client_tls(&f, f.certs.far, f.certs.far_key, f.certs.ca);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 10);
    close_client(&f);
    net_tls_close(ct);
    fixture_close(&f);
}

static void client_refuses_untrusted_server(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    cfg.client_cert_auth = false;
    cfg.trusted_ca_file = NULL;
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    /* trusts another CA only */
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.other_ca);
    assert_int_equal(dial(&f, &url, ct), CAIRN_ETLS);
    assert_non_null(strstr(f.clog.text, "TLS connection to 127.0.0.1:"));
    assert_non_null(strstr(f.clog.text, "certificate verify failed"));
    net_tls_close(ct);
    /* the right CA but the wrong name: the server's certificate does not
     * cover 127.0.0.2 */
    ct = client_tls(&f, NULL, NULL, f.certs.ca);
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    close_client(&f);
    assert_int_equal(f.accepts, 1);
    f.clog.len = 0;
    struct net_listener *l2;
    struct net_conn_config nc = {.tls = f.stls};
    struct net_url u2;
    assert_int_equal(net_url_parse("https://127.0.0.2:0", &u2, NULL), 0);
    assert_int_equal(net_listener_open(&f.loop, &u2, &nc, &f.slog.log, &l2, &f,
                                       on_accept, NULL),
                     0);
    u2.port = net_listener_port(l2);
    assert_int_equal(dial(&f, &u2, ct), CAIRN_ETLS);
    assert_non_null(strstr(f.clog.text, "certificate verify failed"));
    net_listener_close(l2);
    net_tls_close(ct);
    fixture_close(&f);
}

static void handshake_deadline(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    cfg.handshake_timeout_ms = 30;
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_url plain, tls;
    listen_url(&f, "http://127.0.0.1", &plain);
    listen_url(&f, "https://127.0.0.1", &tls);
    /* connects and says nothing */
    assert_int_equal(dial(&f, &plain, NULL), 0);
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_non_null(
        strstr(f.slog.text, "refused: handshake did not finish within 30 ms"));
    /* a half handshake: the first bytes of a record, then silence */
    static const uint8_t half[] = {0x16, 0x03, 0x01, 0x00, 0x80, 0x01};
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(net_conn_write(f.client.conn, half, sizeof(half)), 0);
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_int_equal(f.accepts, 0);
    /* a listener closed while handshakes are pending aborts them */
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    net_listener_close(f.l);
    f.l = NULL;
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_int_equal(f.accepts, 0);
    (void)tls;
    fixture_close(&f);
}

/* Serves https on the fixture's listener and adds the plaintext scheme of
 * the same address, as etcd's "http://h:p,https://h:p". */
static void serve_both(struct fixture *f, const char *tls_url,
                       const char *plain_url, struct net_tls_config *cfg)
{
    serve(f, tls_url, cfg);
    struct net_url purl, other;
    assert_int_equal(net_url_parse(plain_url, &purl, NULL), 0);
    assert_true(net_listener_same_address(f->l, &purl));
    /* not its address: another port, or the other network */
    assert_int_equal(net_url_parse("http://127.0.0.1:1", &other, NULL), 0);
    assert_false(net_listener_same_address(f->l, &other));
    assert_int_equal(net_url_parse("unix://127.0.0.1:0", &other, NULL), 0);
    assert_false(net_listener_same_address(f->l, &other));
    struct cairn_errmsg m;
    assert_int_equal(net_listener_add_scheme(f->l, &other, NULL, &m),
                     CAIRN_EINVAL);
    struct net_conn_config nc = {.tls = f->stls};
    assert_int_equal(net_listener_add_scheme(f->l, &purl, &nc, &m), 0);
}

static void plain_and_tls_on_one_port(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve_both(&f, "https://127.0.0.1:0", "http://127.0.0.1:0", &cfg);
    struct net_url plain, tls;
    listen_url(&f, "http://127.0.0.1", &plain);
    listen_url(&f, "https://127.0.0.1", &tls);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    /* TLS, with --client-cert-auth still meaning a verified certificate */
    assert_int_equal(dial(&f, &tls, ct), 0);
    assert_string_equal(f.alpn, "h2");
    round_trip(&f, 60000);
    assert_string_equal(net_conn_type_name(f.server.conn), "tls+tcp");
    close_client(&f);
    /* plaintext: the first bytes reach the caller, none eaten by the wait */
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(
        net_conn_write(f.client.conn, preface, sizeof(preface) - 1), 0);
    RUN_UNTIL(&f, f.client.got_len == sizeof(preface) - 1);
    assert_memory_equal(f.client.got, preface, sizeof(preface) - 1);
    assert_string_equal(net_conn_type_name(f.server.conn), "tcp");
    round_trip(&f, 60000);
    close_client(&f);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(net_conn_write(f.client.conn, req, sizeof(req) - 1), 0);
    RUN_UNTIL(&f, f.client.got_len == sizeof(req) - 1);
    assert_memory_equal(f.client.got, req, sizeof(req) - 1);
    close_client(&f);
    assert_int_equal(f.accepts, 3);
    /* a TLS client without a certificate is still refused */
    struct net_tls *bare = client_tls(&f, NULL, NULL, f.certs.ca);
    dial(&f, &tls, bare);
    if (f.client.conn)
        RUN_UNTIL(&f, f.client.conn == NULL);
    RUN_UNTIL(&f, strstr(f.slog.text, "refused") != NULL);
    assert_int_equal(f.accepts, 3);
    still_serving(&f, &tls);
    net_tls_close(bare);
    net_tls_close(ct);
    fixture_close(&f);
}

static void one_port_garbage_and_silence(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    /* long enough for a real handshake on a loaded machine */
    cfg.handshake_timeout_ms = 500;
    serve_both(&f, "https://127.0.0.1:0", "http://127.0.0.1:0", &cfg);
    struct net_url plain, tls;
    listen_url(&f, "http://127.0.0.1", &plain);
    listen_url(&f, "https://127.0.0.1", &tls);

    /* a TLS record header followed by seeded random bytes: TLS refuses */
    struct prng prng;
    prng_seed(&prng, 9); /* refused at once, as above */
    uint8_t junk[512] = {0x16, 0x03, 0x01, 0x01, 0xfb};
    for (size_t i = 5; i < sizeof(junk); i++)
        junk[i] = (uint8_t)prng_next(&prng);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(net_conn_write(f.client.conn, junk, sizeof(junk)), 0);
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_int_equal(f.accepts, 0);
    assert_non_null(strstr(f.slog.text, "refused: handshake:"));

    /* connects and says nothing: closed at the deadline, never accepted */
    f.slog.len = 0;
    f.slog.text[0] = '\0';
    assert_int_equal(dial(&f, &plain, NULL), 0);
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_int_equal(f.accepts, 0);
    assert_non_null(
        strstr(f.slog.text, "closed: nothing received within 500 ms"));

    /* connects and leaves: quietly gone */
    f.slog.len = 0;
    f.slog.text[0] = '\0';
    assert_int_equal(dial(&f, &plain, NULL), 0);
    net_conn_close(f.client.conn, false);
    RUN_UNTIL(&f, f.client.conn == NULL);

    /* plaintext garbage is the plaintext side's to judge: it is handed on */
    uint8_t noise[300];
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)prng_next(&prng);
    noise[0] = 0x17; /* not a handshake record */
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(net_conn_write(f.client.conn, noise, sizeof(noise)), 0);
    RUN_UNTIL(&f, f.client.got_len == sizeof(noise));
    assert_memory_equal(f.client.got, noise, sizeof(noise));
    assert_int_equal(f.accepts, 1);
    close_client(&f);

    /* still serves both */
    still_serving(&f, &tls);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    round_trip(&f, 10);
    close_client(&f);

    /* a listener closed while connections wait for their first byte
     * aborts them */
    assert_int_equal(dial(&f, &plain, NULL), 0);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    net_listener_close(f.l);
    f.l = NULL;
    RUN_UNTIL(&f, f.client.conn == NULL);
    assert_int_equal(f.accepts, 3);
    fixture_close(&f);
}

static void unix_and_unixs_on_one_socket(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    char text[200], plain_text[200];
    snprintf(text, sizeof(text), "unixs://%s/both.sock", f.certs.dir);
    snprintf(plain_text, sizeof(plain_text), "unix://%s/both.sock",
             f.certs.dir);
    serve(&f, text, &cfg);
    struct net_conn_config nc = {.tls = f.stls};
    struct net_url url, purl;
    assert_int_equal(net_url_parse(text, &url, NULL), 0);
    assert_int_equal(net_url_parse(plain_text, &purl, NULL), 0);
    /* a scheme already served changes nothing */
    assert_int_equal(net_listener_add_scheme(f.l, &url, &nc, NULL), 0);
    assert_int_equal(net_listener_add_scheme(f.l, &purl, &nc, NULL), 0);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 1000);
    assert_string_equal(net_conn_type_name(f.server.conn), "tls+unix");
    close_client(&f);
    assert_int_equal(dial(&f, &purl, NULL), 0);
    round_trip(&f, 1000);
    assert_string_equal(net_conn_type_name(f.server.conn), "unix");
    close_client(&f);
    assert_int_equal(f.accepts, 2);
    net_tls_close(ct);
    fixture_close(&f);
}

/* Plaintext first, then TLS; and what cannot serve TLS is refused. */
static void add_tls_to_plain_listener(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    struct cairn_errmsg m;
    assert_int_equal(net_tls_open(&cfg, &f.slog.log, &f.stls, &m), 0);
    struct net_url purl, url;
    assert_int_equal(net_url_parse("http://127.0.0.1:0", &purl, NULL), 0);
    assert_int_equal(net_url_parse("https://127.0.0.1:0", &url, NULL), 0);
    assert_int_equal(net_listener_open(&f.loop, &purl, NULL, &f.slog.log, &f.l,
                                       &f, on_accept, &m),
                     0);
    assert_int_equal(net_listener_add_scheme(f.l, &url, NULL, &m),
                     CAIRN_EUNSUPPORTED);
    assert_non_null(strstr(m.text, "no TLS configured"));
    struct net_tls *bare = client_tls(&f, NULL, NULL, f.certs.ca);
    struct net_conn_config nc = {.tls = bare};
    assert_int_equal(net_listener_add_scheme(f.l, &url, &nc, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "TLS has no certificate"));
    struct net_url tls;
    listen_url(&f, "https://127.0.0.1", &tls);
    struct net_url plain;
    listen_url(&f, "http://127.0.0.1", &plain);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    round_trip(&f, 10);
    close_client(&f);
    nc.tls = f.stls;
    assert_int_equal(net_listener_add_scheme(f.l, &url, &nc, &m), 0);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    assert_int_equal(dial(&f, &tls, ct), 0);
    round_trip(&f, 10);
    close_client(&f);
    assert_int_equal(dial(&f, &plain, NULL), 0);
    round_trip(&f, 10);
    close_client(&f);
    net_tls_close(ct);
    net_tls_close(bare);
    fixture_close(&f);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* The write queue counts plaintext, so its bound holds over TLS; reading
 * paused with plaintext already decrypted resumes without losing any. */
static void write_queue_bounded_and_paused_reads(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 10);
    f.server.echo = false;
    f.client.got_len = 0;
    net_conn_read_pause(f.client.conn, true);
    static uint8_t chunk[4096];
    size_t written = 0;
    int rv = 0;
    /* 4 MiB queue: at most ~1100 chunks before it refuses */
    for (int i = 0; i < 2000 && rv == 0; i++) {
        memset(chunk, i & 0xff, sizeof(chunk));
        rv = net_conn_write(f.server.conn, chunk, sizeof(chunk));
        if (rv == 0)
            written += sizeof(chunk);
    }
    assert_int_equal(rv, CAIRN_EFULL);
    assert_true(net_conn_queued_bytes(f.server.conn) <=
                NET_WRITE_QUEUE_DEFAULT);
    /* the client reads in bounded pieces, pausing after each */
    drains = 0;
    size_t total = 0;
    f.client.pause_each = true;
    /* Resumed reading hands over what SSL already holds from a zero
     * timer; a UV_RUN_ONCE that ran it would then block in poll with
     * nothing else active. A ticking timer keeps each turn short. */
    uv_timer_t tick;
    uv_timer_init(&f.loop, &tick);
    uv_timer_start(&tick, on_tick, 1, 1);
    for (int turns = 0; turns < 100000 && total < written; turns++) {
        size_t before = f.client.got_len;
        net_conn_read_pause(f.client.conn, false);
        RUN_UNTIL(&f, f.client.got_len > before);
        if (f.client.got_len > 32768) {
            for (size_t k = 0; k < f.client.got_len; k++)
                assert_int_equal(f.client.got[k],
                                 ((total + k) / sizeof(chunk)) & 0xff);
            total += f.client.got_len;
            f.client.got_len = 0;
        }
        if (total + f.client.got_len >= written)
            break;
    }
    total += f.client.got_len;
    assert_int_equal(total, written);
    RUN_UNTIL(&f, net_conn_queued_bytes(f.server.conn) == 0);
    assert_true(drains >= 1);
    uv_close((uv_handle_t *)&tick, NULL);
    close_client(&f);
    net_tls_close(ct);
    fixture_close(&f);
}

/* Writes the client makes in pieces (outside the loop: one loop turn),
 * then checks they were encrypted in `calls` SSL_write calls and that the
 * echo brings back exactly the bytes, in order. */
static void gathered_round_trip(struct fixture *f, size_t piece, size_t total,
                                uint64_t calls)
{
    static uint8_t data[60000];
    for (size_t i = 0; i < total; i++)
        data[i] = (uint8_t)(i * 13 + 5);
    uint64_t before = net__tls_ssl_writes(f->client.conn);
    f->client.got_len = 0;
    for (size_t off = 0; off < total; off += piece) {
        size_t n = total - off < piece ? total - off : piece;
        assert_int_equal(net_conn_write(f->client.conn, data + off, n), 0);
    }
    RUN_UNTIL(f, f->client.got_len == total);
    assert_memory_equal(f->client.got, data, total);
    assert_int_equal(net__tls_ssl_writes(f->client.conn) - before, calls);
    RUN_UNTIL(f, net_conn_queued_bytes(f->client.conn) == 0);
}

/* Many small writes of one loop turn leave as few TLS records as fit (the
 * API answers each call in two writes, each its own record before). */
static void writes_of_a_turn_share_records(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    gathered_round_trip(&f, 10, 1000, 1);     /* 100 writes, one record */
    gathered_round_trip(&f, 100, 40000, 3);   /* 16 KiB, 16 KiB, the rest */
    gathered_round_trip(&f, 50000, 50000, 2); /* 3 whole records, the rest */
    gathered_round_trip(&f, 16384, 32768, 2); /* whole records go at once */
    /* gathered bytes still go out when the writer closes with flush */
    f.server.got_len = 0;
    assert_int_equal(net_conn_write(f.client.conn, "bye", 3), 0);
    net_conn_close(f.client.conn, true);
    RUN_UNTIL(&f, f.client.conn == NULL && f.server.got_len == 3);
    assert_memory_equal(f.server.got, "bye", 3);
    RUN_UNTIL(&f, f.server.conn == NULL);
    /* ... and a close that drops the queue still offers them to the
     * socket, which on loopback takes them at once (a GOAWAY before a
     * hard close) */
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 10);
    f.server.got_len = 0;
    f.server.echo = false;
    assert_int_equal(net_conn_write(f.client.conn, "last", 4), 0);
    net_conn_close(f.client.conn, false);
    RUN_UNTIL(&f, f.client.conn == NULL && f.server.conn == NULL);
    assert_int_equal(f.server.got_len, 4);
    assert_memory_equal(f.server.got, "last", 4);
    close_client(&f);
    net_tls_close(ct);
    fixture_close(&f);
}

struct prep_write {
    struct net_conn *conn;
    uv_prepare_t prep;
    uv_timer_t watchdog;
    bool fired;
};

static void on_prep_write(uv_prepare_t *h)
{
    struct prep_write *p = h->data;
    uv_prepare_stop(h);
    assert_int_equal(net_conn_write(p->conn, "ping", 4), 0);
}

static void on_watchdog(uv_timer_t *h)
{
    struct prep_write *p = h->data;
    p->fired = true;
}

/* A lone write made just before the loop polls (as the transport writes,
 * from a prepare handle) leaves without waiting for some other event: the
 * loop must not block in poll while bytes are gathered. */
static void lone_write_before_poll_not_delayed(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_tls *ct =
        client_tls(&f, f.certs.client, f.certs.client_key, f.certs.ca);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 10);
    struct prep_write p = {.conn = f.client.conn};
    uv_prepare_init(&f.loop, &p.prep);
    p.prep.data = &p;
    uv_timer_init(&f.loop, &p.watchdog);
    p.watchdog.data = &p;
    uv_timer_start(&p.watchdog, on_watchdog, 3000, 0);
    f.client.got_len = 0;
    uv_prepare_start(&p.prep, on_prep_write);
    RUN_UNTIL(&f, f.client.got_len == 4 || p.fired);
    assert_false(p.fired);
    assert_memory_equal(f.client.got, "ping", 4);
    uv_close((uv_handle_t *)&p.prep, NULL);
    uv_close((uv_handle_t *)&p.watchdog, NULL);
    close_client(&f);
    net_tls_close(ct);
    fixture_close(&f);
}

/* The allowed CN holds in both directions, as in etcd: a dialing peer
 * refuses a server whose certificate lacks it. */
static void dialer_checks_allowed_cn(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    struct net_tls_config cfg = server_cfg(&f.certs);
    serve(&f, "https://127.0.0.1:0", &cfg);
    struct net_tls_config cc = {.cert_file = f.certs.client,
                                .key_file = f.certs.client_key,
                                .trusted_ca_file = f.certs.ca,
                                .peer = true,
                                .allowed_cn = "server"};
    struct net_tls *ct;
    struct cairn_errmsg m;
    assert_int_equal(net_tls_open(&cc, &f.clog.log, &ct, &m), 0);
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 10);
    close_client(&f);
    net_tls_close(ct);
    cc.allowed_cn = "someone-else";
    assert_int_equal(net_tls_open(&cc, &f.clog.log, &ct, &m), 0);
    assert_int_equal(dial(&f, &url, ct), CAIRN_ETLS);
    assert_non_null(strstr(f.clog.text, "allowed CN \"someone-else\""));
    net_tls_close(ct);
    fixture_close(&f);
}

static void config_errors(void **state)
{
    (void)state;
    struct certs c;
    certs_make(&c);
    struct net_tls *t = NULL;
    struct cairn_errmsg m;
    struct net_tls_config cfg = {.cert_file = c.server,
                                 .key_file = "/nonexistent/key.pem"};
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "load key file /nonexistent/key.pem: "));
    assert_non_null(strstr(m.text, "No such file"));
    cfg.key_file = c.client_key; /* another certificate's key */
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, c.client_key));
    cfg.cert_file = c.crl; /* not a certificate */
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "load certificate file"));
    assert_non_null(strstr(m.text, c.crl));
    cfg.cert_file = c.server;
    cfg.key_file = NULL;
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "KeyFile and CertFile must both be"));
    cfg.key_file = c.server_key;
    cfg.trusted_ca_file = c.server_key;
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "load trusted CA file"));
    cfg.trusted_ca_file = c.ca;
    cfg.crl_file = c.ca;
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "parse CRL file"));
    cfg.crl_file = c.crl;
    cfg.allowed_cn = "a";
    cfg.allowed_hostname = "b";
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "mutually exclusive"));
    cfg.allowed_hostname = NULL;
    cfg.cipher_suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,NOPE";
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "unexpected TLS cipher suite NOPE"));
    cfg.cipher_suites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
                        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,"
                        "TLS_AES_128_GCM_SHA256";
    assert_int_equal(net_tls_open(&cfg, NULL, &t, &m), 0);
    assert_string_equal(net_tls_cert_file(t), c.server);
    net_tls_close(t);
    /* no certificate: it can dial, not serve */
    struct net_tls_config none = {0};
    assert_int_equal(net_tls_open(&none, NULL, &t, &m), 0);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct net_conn_config nc = {.tls = t};
    struct net_url url;
    struct net_listener *l;
    assert_int_equal(net_url_parse("https://127.0.0.1:0", &url, NULL), 0);
    assert_int_equal(
        net_listener_open(&loop, &url, &nc, NULL, &l, NULL, NULL, &m),
        CAIRN_EINVAL);
    assert_non_null(strstr(m.text, "TLS has no certificate"));
    assert_int_equal(ru_loop_close(&loop), 0);
    net_tls_close(t);

    assert_string_equal(
        net_tls_cipher_openssl_name("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        "ECDHE-RSA-AES128-GCM-SHA256");
    assert_string_equal(
        net_tls_cipher_openssl_name("TLS_RSA_WITH_AES_256_CBC_SHA"),
        "AES256-SHA");
    assert_string_equal(net_tls_cipher_openssl_name("TLS_AES_256_GCM_SHA384"),
                        "");
    assert_null(net_tls_cipher_openssl_name("TLS_FOO"));
    rm_rf(c.dir);
}

static void auto_tls_as_etcd(void **state)
{
    (void)state;
    struct fixture f;
    fixture_open(&f);
    char dir[200];
    snprintf(dir, sizeof(dir), "%s/fixtures-peer", f.certs.dir);
    static const char *const hosts[] = {"127.0.0.1:2380", "localhost:2380",
                                        "[::1]:2380"};
    struct net_tls_config cfg = {.auto_tls = true,
                                 .auto_tls_dir = dir,
                                 .auto_tls_hosts = hosts,
                                 .auto_tls_host_count = 3,
                                 .peer = true,
                                 .client_cert_auth = false};
    serve(&f, "https://127.0.0.1:0", &cfg);
    assert_non_null(strstr(f.slog.text, "auto TLS: created"));
    char cert_path[300];
    snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
    assert_string_equal(net_tls_cert_file(f.stls), cert_path);
    struct stat st;
    assert_int_equal(stat(net_tls_key_file(f.stls), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* what etcd's SelfCert puts in: O=etcd, P-521, SANs from the hosts,
     * server and client auth for peers, a year */
    FILE *fp = fopen(cert_path, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    char org[64] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName,
                              org, sizeof(org));
    assert_string_equal(org, "etcd");
    assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
    assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
    assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
    char group[32] = "";
    assert_true(EVP_PKEY_get_group_name(X509_get0_pubkey(x), group,
                                        sizeof(group), NULL));
    assert_string_equal(group, "secp521r1");
    int days, secs;
    assert_true(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                               X509_get0_notAfter(x)));
    assert_int_equal(days, 365);
    X509_free(x);

    /* a second start reuses the files; peers do not verify self-made
     * certificates, as etcd */
    struct net_tls *ct = NULL;
    struct cairn_errmsg m;
    f.slog.len = 0;
    assert_int_equal(net_tls_open(&cfg, &f.slog.log, &ct, &m), 0);
    assert_non_null(strstr(f.slog.text, "auto TLS: using"));
    struct net_url url;
    listen_url(&f, "https://127.0.0.1", &url);
    assert_int_equal(dial(&f, &url, ct), 0);
    round_trip(&f, 300);
    close_client(&f);
    net_tls_close(ct);
    fixture_close(&f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as net.h asks of every program */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_echo_with_client_certs),
        cmocka_unit_test(unixs_echo_and_plain_side_by_side),
        cmocka_unit_test(plaintext_and_garbage_refused),
        cmocka_unit_test(bad_client_certificates_refused),
        cmocka_unit_test(allowed_cn_and_hostname),
        cmocka_unit_test(client_refuses_untrusted_server),
        cmocka_unit_test(peer_client_san_checked),
        cmocka_unit_test(handshake_deadline),
        cmocka_unit_test(plain_and_tls_on_one_port),
        cmocka_unit_test(one_port_garbage_and_silence),
        cmocka_unit_test(unix_and_unixs_on_one_socket),
        cmocka_unit_test(add_tls_to_plain_listener),
        cmocka_unit_test(write_queue_bounded_and_paused_reads),
        cmocka_unit_test(writes_of_a_turn_share_records),
        cmocka_unit_test(lone_write_before_poll_not_delayed),
        cmocka_unit_test(dialer_checks_allowed_cn),
        cmocka_unit_test(config_errors),
        cmocka_unit_test(auto_tls_as_etcd),
    };
    return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
