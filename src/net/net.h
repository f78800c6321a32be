/* net: libuv streams for everything in cairn that talks: etcd-style URLs
 * (http, https, unix, unixs), TCP and unix-socket listeners, outgoing
 * connections, and connections with a bounded write queue and a clean close.
 *
 * Connections reach their socket through a small connection-type table (as
 * redis does); TLS (OpenSSL 3 over memory BIOs, tls.c) is another row, so
 * callers read and write plaintext either way. https and unixs URLs need a
 * TLS context (struct net_tls, from net_tls_open) in net_conn_config.tls:
 * a TLS listener hands a connection to its accept callback only after the
 * handshake and etcd's checks succeeded, and net_connect calls back only
 * after the handshake; refusals are logged with their reason and never
 * reach the caller. See docs/tls.md.
 *
 * Threading: everything here runs on the thread of the uv_loop_t it was
 * opened on, and every callback is called on that thread. Nothing blocks:
 * only net_listener_open may resolve a host name with getaddrinfo (once, at
 * start-up, as a listen address is configured).
 *
 * Signals: libuv writes to sockets with write(2), so a peer that has gone
 * away raises SIGPIPE. Every program using net must ignore SIGPIPE
 * (signal(SIGPIPE, SIG_IGN) in main); the write then fails with EPIPE and
 * the connection closes with an error, as it should.
 *
 * Ownership: listeners and connections are handles. They are allocated here
 * and freed here, after their close completes; a caller's pointer stays valid
 * until net_listener_close returns (listener) or until the conn's closed
 * callback returns (connection). */
#ifndef CAIRN_NET_NET_H
#define CAIRN_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/util.h"

enum net_scheme {
    NET_SCHEME_HTTP = 0, /* TCP, plaintext */
    NET_SCHEME_HTTPS,    /* TCP, TLS */
    NET_SCHEME_UNIX,     /* unix socket, plaintext */
    NET_SCHEME_UNIXS,    /* unix socket, TLS */
};

#define NET_HOST_MAX 256
/* sun_path is 108 bytes on Linux, NUL included */
#define NET_UNIX_PATH_MAX 107

struct net_url {
    enum net_scheme scheme;
    bool tls;     /* https or unixs */
    bool is_unix; /* unix or unixs: `host` is the socket path */
    /* TCP: the host name or literal address, without IPv6 brackets.
     * unix: the socket path, which etcd forms as URL host + path, so that
     * "unix://localhost:2379" is the file "localhost:2379" and
     * "unix:///run/x.sock" is "/run/x.sock". */
    char host[NET_HOST_MAX];
    uint16_t port; /* TCP only; 0 lets the OS pick when listening */
};

/* Parses one URL as etcd accepts it for --listen-client-urls and the like:
 * scheme http, https, unix or unixs; TCP URLs need "host:port" (IPv6 as
 * "[::1]:2379") and no path; a trailing "/" is tolerated. Leading and
 * trailing spaces are trimmed. Returns 0, or CAIRN_EINVAL with the reason in
 * msg (may be NULL). */
int net_url_parse(const char *text, struct net_url *url,
                  struct cairn_errmsg *msg);
/* Writes the URL back as text ("http://127.0.0.1:2379", "http://[::1]:1",
 * "unix://path") into out (always NUL-terminated); returns the length it
 * needed, as snprintf does. */
int net_url_format(const struct net_url *url, char *out, size_t size);

struct net_tls;

/* Everything etcd's TLS flags say about one side (client or peer), below the
 * flag parser; docs/tls.md maps each flag onto a field. Strings are borrowed
 * for the duration of net_tls_open only; NULL or "" means unset. */
struct net_tls_config {
    const char *cert_file; /* --cert-file / --peer-cert-file */
    const char *key_file;  /* --key-file / --peer-key-file */
    const char
        *trusted_ca_file; /* --trusted-ca-file / --peer-trusted-ca-file */
    const char *crl_file; /* --client-crl-file / --peer-crl-file */
    /* --client-cert-auth / --peer-client-cert-auth. As in etcd, a trusted CA
     * file alone also makes the server require and verify client certs. */
    bool client_cert_auth;
    /* --auto-tls / --peer-auto-tls: when no cert/key file is given, a
     * self-signed certificate is made (or reused) in auto_tls_dir, for the
     * hosts of auto_tls_hosts (URLs' "host:port" or host), and peers are not
     * verified when dialing, as etcd does. */
    bool auto_tls;
    const char *auto_tls_dir;
    const char *const *auto_tls_hosts;
    size_t auto_tls_host_count;
    /* The peer side: its auto-TLS certificate also serves as a client
     * certificate (extended key usage clientAuth), and its listeners check
     * a client certificate's subjectAltNames against the connection's
     * remote IP, as etcd's peer listener does (see docs/tls.md), unless
     * skip_client_san_verify (etcd's
     * --experimental-peer-skip-client-san-verification). */
    bool peer;
    bool skip_client_san_verify;
    /* --cipher-suites: etcd's (Go's) names, comma separated; TLS 1.2 only,
     * as in Go, TLS 1.3 suites stay enabled. */
    const char *cipher_suites;
    /* --peer-cert-allowed-cn / --peer-cert-allowed-hostname (mutually
     * exclusive): the other side's certificate must carry this CN, or be
     * valid for this host name or IP. */
    const char *allowed_cn;
    const char *allowed_hostname;
    /* A connection whose handshake has not finished by then is closed.
     * 0 means NET_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS. */
    uint32_t handshake_timeout_ms;
};
#define NET_TLS_HANDSHAKE_TIMEOUT_DEFAULT_MS 10000u

/* Validates cfg and loads its files into a TLS context that serves both
 * listening (server) and dialing (client) sides. Errors name the file and
 * OpenSSL's reason in msg: CAIRN_EINVAL (bad settings, unknown cipher suite,
 * bad PEM, key not matching the certificate), CAIRN_EIO (unreadable file or
 * auto-TLS directory), CAIRN_ENOMEM. log may be NULL; it is borrowed and
 * must outlive the context (handshake refusals of dialed connections are
 * logged there). The context is immutable after loading and may be shared
 * by any number of listeners and connections on one loop; it must outlive
 * them all (close it after they are closed). */
int net_tls_open(const struct net_tls_config *cfg, struct cairn_log *log,
                 struct net_tls **out, struct cairn_errmsg *msg);
void net_tls_close(struct net_tls *tls);
/* The certificate and key files in use (the generated ones under auto-TLS). */
const char *net_tls_cert_file(const struct net_tls *tls);
const char *net_tls_key_file(const struct net_tls *tls);
/* Maps one etcd cipher-suite name ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
 * to OpenSSL's ("ECDHE-RSA-AES128-GCM-SHA256"); "" for TLS 1.3 suites, which
 * are accepted and not restricted, as in Go; NULL if the name is unknown. */
const char *net_tls_cipher_openssl_name(const char *etcd_name);

struct net_conn_config {
    /* TLS context for https and unixs URLs (borrowed, must outlive the
     * listener and its connections). NULL: such URLs are refused with
     * CAIRN_EUNSUPPORTED. Plaintext URLs ignore it. */
    struct net_tls *tls;
    /* Bytes a connection may hold queued for writing; a write beyond it is
     * refused with CAIRN_EFULL, so a peer that never reads costs at most this
     * much. 0 means NET_WRITE_QUEUE_DEFAULT. */
    size_t write_queue_max_bytes;
    /* Size of the connection's one read buffer. 0 means NET_READ_BUF_DEFAULT */
    size_t read_buf_bytes;
};
#define NET_WRITE_QUEUE_DEFAULT (4u << 20)
#define NET_READ_BUF_DEFAULT (64u << 10)

struct net_conn;
struct net_listener;

/* The callbacks of a connection, all on the loop thread. */
struct net_conn_cbs {
    /* Bytes arrived. `data` is borrowed, valid only during the call. The
     * callee may write, pause reading or close from inside. */
    void (*read)(void *arg, struct net_conn *conn, const uint8_t *data,
                 size_t len);
    /* The write queue became empty (after having held bytes). May be NULL. */
    void (*drain)(void *arg, struct net_conn *conn);
    /* Called exactly once when the connection is gone: the peer closed it
     * (status 0), an I/O error (negative code), or net_conn_close (status
     * CAIRN_ECANCELED). The conn is freed when this returns. */
    void (*closed)(void *arg, struct net_conn *conn, int status);
};

/* A new connection from a listener. The callee must call net_conn_start or
 * net_conn_close on it before returning. */
typedef void (*net_accept_cb)(void *arg, struct net_conn *conn);

/* Opens a listener on url and starts accepting; https/unixs need
 * config->tls (with a certificate). For a unix
 * URL a stale socket file is removed first and the file is removed again on
 * close, as etcd does. On success *out is the listener; errors are returned
 * with the reason in msg (may be NULL): CAIRN_EINVAL (unresolvable host),
 * CAIRN_EUNSUPPORTED (https/unixs without config->tls), CAIRN_EBUSY (address in
 * use), CAIRN_EIO. */
int net_listener_open(uv_loop_t *loop, const struct net_url *url,
                      const struct net_conn_config *config,
                      struct cairn_log *log, struct net_listener **out,
                      void *arg, net_accept_cb cb, struct cairn_errmsg *msg);
/* Whether url names the address l was opened on: the same network (TCP or
 * unix) and the same host and port, or socket path, as written (any
 * scheme), which is how etcd groups --listen-client-urls into listeners. */
bool net_listener_same_address(const struct net_listener *l,
                               const struct net_url *url);
/* Makes l, opened on url's address, serve url's scheme as well, as etcd
 * serves "http://h:p,https://h:p" on one port. Once a listener serves both
 * plaintext and TLS (http with https, unix with unixs), it waits for each
 * accepted connection's first byte without consuming it: a TLS handshake
 * record (0x16) makes the connection TLS (handshake first, as on an https
 * listener), anything else (an HTTP/2 preface, an HTTP/1.1 request line)
 * plaintext. A connection that sends nothing within the TLS context's
 * handshake timeout is closed. Listeners serving one kind only do not wait.
 * A scheme l serves already changes nothing. Returns 0, CAIRN_EINVAL
 * (another address, or TLS without a certificate) or CAIRN_EUNSUPPORTED
 * (TLS without config->tls), with the reason in msg (may be NULL). */
int net_listener_add_scheme(struct net_listener *l, const struct net_url *url,
                            const struct net_conn_config *config,
                            struct cairn_errmsg *msg);
/* The TCP port actually bound (the OS's pick when the URL said 0); 0 for
 * unix listeners. */
uint16_t net_listener_port(const struct net_listener *l);
/* Stops accepting and closes the listening socket. Connections already
 * accepted stay open. The listener's memory is released by the loop once the
 * close completes; the pointer must not be used after this call. */
void net_listener_close(struct net_listener *l);

/* Starts delivering reads to cbs; `cbs` is borrowed and must outlive the
 * connection, `arg` is passed back. */
void net_conn_start(struct net_conn *conn, const struct net_conn_cbs *cbs,
                    void *arg);
/* Queues a copy of len bytes for writing (a plain stream with nothing
 * queued first hands the socket what it takes at once, and queues only the
 * rest). Returns 0, CAIRN_EFULL when the queue would exceed its bound
 * (nothing is queued), CAIRN_ESHUTDOWN when the connection is closing, or
 * CAIRN_ENOMEM. */
int net_conn_write(struct net_conn *conn, const void *data, size_t len);
/* Bytes queued and not yet written to the socket. */
size_t net_conn_queued_bytes(const struct net_conn *conn);
/* Writes handed to the socket at once (nothing was queued before them),
 * without a copy or a queued request: a plain stream's common case. */
uint64_t net_conn_direct_writes(const struct net_conn *conn);
/* Room left in the write queue. */
size_t net_conn_write_room(const struct net_conn *conn);
/* Stops (paused) or resumes delivering reads; used for back-pressure. */
void net_conn_read_pause(struct net_conn *conn, bool paused);
/* Closes the connection. With flush, bytes already queued are written first
 * (reading stops at once); without, they are dropped. The closed callback
 * follows later, from the loop. Calling it again is harmless. */
void net_conn_close(struct net_conn *conn, bool flush);
/* "127.0.0.1:52344", "[::1]:2379" or "unix"; for log lines. */
const char *net_conn_peer(const struct net_conn *conn);
/* The type name of the connection ("tcp", "unix", "tls+tcp", "tls+unix"). */
const char *net_conn_type_name(const struct net_conn *conn);
/* The ALPN protocol agreed ("h2", "http/1.1") or "" (none, or plaintext). */
const char *net_conn_alpn(const struct net_conn *conn);

/* An outgoing connection is done: status 0 and a connection to start, or a
 * negative code and conn == NULL. */
typedef void (*net_connect_cb)(void *arg, int status, struct net_conn *conn);
/* Connects to url (the host must be a literal address or "localhost", since
 * resolving names would block the loop). https/unixs need config->tls; the
 * server's certificate is checked against the URL's host unless the context
 * is auto-TLS, and a refused handshake calls back with CAIRN_ETLS or
 * CAIRN_ETIMEOUT (the reason logged on the context's log). The callback
 * always runs later from the loop, never from inside this call. Returns 0,
 * or CAIRN_EINVAL/CAIRN_EUNSUPPORTED/CAIRN_ENOMEM without calling cb. */
int net_connect(uv_loop_t *loop, const struct net_url *url,
                const struct net_conn_config *config, void *arg,
                net_connect_cb cb);

#endif
