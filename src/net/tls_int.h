/* net's certificate maker (OpenSSL): the auto-TLS self-signed certificate
 * as etcd makes it, and the CAs, leaves and CRLs the tests need; and a
 * counter of the TLS write path for tests. */
#ifndef CAIRN_NET_TLS_INT_H
#define CAIRN_NET_TLS_INT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct net__cert_spec {
    const char *cn;  /* subject CN, may be NULL */
    const char *org; /* subject O, may be NULL */
    /* subjectAltNames: each "host:port", "[v6]:port" or a bare host; IP
     * literals become IP entries, anything else DNS entries. */
    const char *const *hosts;
    size_t host_count;
    bool is_ca;
    bool server_auth, client_auth;     /* extended key usages */
    int64_t not_before_s, not_after_s; /* offsets from now, in seconds */
    uint64_t serial;                   /* 0: a random 128-bit serial */
    const char *curve;                 /* "P-256", "P-521" */
    X509 *issuer;                      /* NULL: self-signed */
    EVP_PKEY *issuer_key;
};

/* Makes a fresh EC key and a certificate for it. Returns 0 with *cert and
 * *key owned by the caller, or CAIRN_EINVAL/CAIRN_ENOMEM with the reason in
 * msg. */
int net__cert_make(const struct net__cert_spec *spec, X509 **cert,
                   EVP_PKEY **key, struct cairn_errmsg *msg);
/* Writes cert (may be NULL) and key (may be NULL; as "EC PRIVATE KEY", mode
 * 0600) as PEM files. Returns 0 or CAIRN_EIO with the reason in msg. */
int net__pem_write(const char *cert_path, X509 *cert, const char *key_path,
                   EVP_PKEY *key, struct cairn_errmsg *msg);
/* The first reason in OpenSSL's error queue (which it clears), or dflt. */
const char *net__ssl_reason(char *buf, size_t size, const char *dflt);

struct net_conn;
/* SSL_write calls a TLS connection made (0 for plaintext): writes of one
 * loop turn are encrypted together, which the tests check by this. */
uint64_t net__tls_ssl_writes(const struct net_conn *c);

#endif
