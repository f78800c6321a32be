/* Certificate making with OpenSSL: etcd's auto-TLS self-signed certificate
 * (pkg/transport SelfCert) and the CA-signed ones the tests build. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/tls_int.h"

const char *net__ssl_reason(char *buf, size_t size, const char *dflt)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, size, "%s", dflt);
    } else {
        ERR_error_string_n(e, buf, size);
    }
    ERR_clear_error();
    return buf;
}

/* Splits "host:port" / "[v6]:port" / "host" into its host. */
static void host_of(const char *in, char *out, size_t size)
{
    const char *end = in + strlen(in);
    if (in[0] == '[') {
        const char *close = strchr(in, ']');
        if (close) {
            in++;
            end = close;
        }
    } else {
        const char *colon = strrchr(in, ':');
        /* one colon: host:port; more: a bare IPv6 literal */
        if (colon && strchr(in, ':') == colon)
            end = colon;
    }
    size_t n = (size_t)(end - in);
    if (n >= size)
        n = size - 1;
    memcpy(out, in, n);
    out[n] = '\0';
}

static bool is_ip(const char *h)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, h, bin) == 1 || inet_pton(AF_INET6, h, bin) == 1;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

static int san_text(const struct net__cert_spec *s, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->host_count; i++) {
        char h[256];
        host_of(s->hosts[i], h, sizeof(h));
        if (h[0] == '\0')
            continue;
        bool ip = is_ip(h);
        int n = snprintf(out + used, size - used, "%s%s:%s", used ? "," : "",
                         ip ? "IP" : "DNS", h);
        if (n < 0 || (size_t)n >= size - used)
            return -1;
        used += (size_t)n;
    }
    return 0;
}

static int fail(struct cairn_errmsg *msg, int code, const char *what)
{
    char r[256];
    if (msg)
        cairn_errmsg_setf(msg, "%s: %s", what,
                          net__ssl_reason(r, sizeof(r), "failed"));
    return code;
}

int net__cert_make(const struct net__cert_spec *s, X509 **cert_out,
                   EVP_PKEY **key_out, struct cairn_errmsg *msg)
{
    ERR_clear_error();
    EVP_PKEY *key = EVP_EC_gen(s->curve ? s->curve : "P-256");
    if (key == NULL)
        return fail(msg, CAIRN_EINVAL, "generate EC key");
    X509 *cert = X509_new();
    if (cert == NULL) {
        EVP_PKEY_free(key);
        return CAIRN_ENOMEM;
    }
    X509 *issuer = s->issuer ? s->issuer : cert;
    EVP_PKEY *ikey = s->issuer ? s->issuer_key : key;
    const char *what = "make certificate";
    X509_set_version(cert, 2);
    BIGNUM *bn = BN_new();
    if (bn == NULL)
        goto err;
    if (s->serial) {
        if (!BN_set_word(bn, s->serial)) {
            BN_free(bn);
            goto err;
        }
    } else {
        /* etcd: uniformly random below 2^128 */
        unsigned char r[16];
        if (RAND_bytes(r, sizeof(r)) != 1 || !BN_bin2bn(r, sizeof(r), bn)) {
            BN_free(bn);
            goto err;
        }
    }
    ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    if (serial == NULL)
        goto err;
    X509_set_serialNumber(cert, serial);
    ASN1_INTEGER_free(serial);
    X509_gmtime_adj(X509_getm_notBefore(cert), (long)s->not_before_s);
    X509_gmtime_adj(X509_getm_notAfter(cert), (long)s->not_after_s);
    X509_NAME *name = X509_get_subject_name(cert);
    if (s->org)
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   (const unsigned char *)s->org, -1, -1, 0);
    if (s->cn)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)s->cn, -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(issuer));
    if (!X509_set_pubkey(cert, key))
        goto err;
    what = "certificate extensions";
    if (s->is_ca) {
        if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:TRUE") ||
            add_ext(cert, issuer, NID_key_usage,
                    "critical,keyCertSign,cRLSign,digitalSignature"))
            goto err;
    } else {
        if (add_ext(cert, issuer, NID_basic_constraints, "critical,CA:FALSE") ||
            add_ext(cert, issuer, NID_key_usage,
                    "critical,digitalSignature,keyEncipherment"))
            goto err;
    }
    if (s->server_auth || s->client_auth) {
        char eku[64];
        snprintf(eku, sizeof(eku), "%s%s%s", s->server_auth ? "serverAuth" : "",
                 s->server_auth && s->client_auth ? "," : "",
                 s->client_auth ? "clientAuth" : "");
        if (add_ext(cert, issuer, NID_ext_key_usage, eku))
            goto err;
    }
    char san[4096];
    if (san_text(s, san, sizeof(san)) != 0)
        goto err;
    if (san[0] && add_ext(cert, issuer, NID_subject_alt_name, san))
        goto err;
    if (s->is_ca && add_ext(cert, issuer, NID_subject_key_identifier, "hash"))
        goto err;
    what = "sign certificate";
    if (X509_sign(cert, ikey, EVP_sha256()) <= 0)
        goto err;
    *cert_out = cert;
    *key_out = key;
    return 0;
err:
    X509_free(cert);
    EVP_PKEY_free(key);
    return fail(msg, CAIRN_EINVAL, what);
}

int net__pem_write(const char *cert_path, X509 *cert, const char *key_path,
                   EVP_PKEY *key, struct cairn_errmsg *msg)
{
    if (cert) {
        FILE *f = fopen(cert_path, "w");
        if (f == NULL) {
            if (msg)
                cairn_errmsg_setf(msg, "create %s: %s", cert_path,
                                  strerror(errno));
            return CAIRN_EIO;
        }
        int ok = PEM_write_X509(f, cert);
        if (fclose(f) != 0 || !ok)
            return fail(msg, CAIRN_EIO, cert_path);
    }
    if (key) {
        int fd = open(key_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (f == NULL) {
            if (msg)
                cairn_errmsg_setf(msg, "create %s: %s", key_path,
                                  strerror(errno));
            if (fd >= 0)
                close(fd);
            return CAIRN_EIO;
        }
        BIO *b = BIO_new_fp(f, BIO_NOCLOSE);
        int ok = b != NULL && PEM_write_bio_PrivateKey_traditional(
                                  b, key, NULL, NULL, 0, NULL, NULL);
        BIO_free(b);
        if (fclose(f) != 0 || !ok)
            return fail(msg, CAIRN_EIO, key_path);
    }
    return 0;
}
