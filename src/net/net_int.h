/* net's private structures: the connection, and the connection-type table
 * through which every I/O operation on a connection goes, so that TLS
 * (issue 9) becomes another row without changing net's callers. */
#ifndef CAIRN_NET_NET_INT_H
#define CAIRN_NET_NET_INT_H

#include "net/net.h"

struct net__wreq;

struct net__conn_type {
    const char *name;
    /* Begin/stop reading from the transport. */
    int (*read_start)(struct net_conn *c);
    void (*read_stop)(struct net_conn *c);
    /* Hands one queued write to the transport; done() is called when it is
     * written (or failed). */
    int (*write)(struct net_conn *c, struct net__wreq *w);
    /* Closes the transport; ends in net__conn_closed(). */
    void (*close)(struct net_conn *c);
};

struct net__wreq {
    uv_write_t req;
    struct net_conn *conn;
    size_t len;  /* bytes in data, handed to the socket */
    size_t acct; /* caller bytes this write stands for in queued_bytes (TLS
                    writes ciphertext for plaintext; handshake writes 0) */
    uint8_t data[];
};

struct net_conn {
    const struct net__conn_type *type;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uv_loop_t *loop;
    const struct net_conn_cbs *cbs;
    void *arg;
    size_t queued_bytes;
    uint64_t direct_writes; /* writes the socket took whole or in part */
    size_t queue_max_bytes;
    uint8_t *rbuf;
    size_t rbuf_size;
    bool started;
    bool paused;
    bool reading;
    bool closing;
    bool close_after_flush;
    int close_status; /* handed to the closed callback */
    char peer[64];
    /* TLS state (tls.c); NULL for plaintext connections */
    struct net__tls_conn *tls;
    /* An accepted TLS connection still in its handshake is on its
     * listener's list, so closing the listener can abort it. */
    struct net_listener *hs_listener;
    struct net_conn *hs_prev, *hs_next;
    /* Waiting for its first byte on a listener serving plaintext and TLS
     * (sniff.c); NULL otherwise */
    struct net__sniff *sniff;
};

extern const struct net__conn_type net__stream_type;
extern const struct net__conn_type net__tls_type;
extern const struct net__conn_type net__sniff_type;

/* Fails the connection with status (once): closes it through its type. */
void net__conn_fail(struct net_conn *c, int status);
/* libuv's completion of a net__wreq: releases its acct bytes, drains. */
void net__on_write(uv_write_t *req, int status);
/* Frees the connection after its handles closed, calling `closed` first. */
void net__conn_finish(struct net_conn *c);

/* Turns the accepted (server) or connected (client) stream c into a TLS
 * connection and starts its handshake under a deadline. host is the name or
 * address the client dialed (NULL for servers and unix sockets), checked
 * against the server's certificate when verifying. On completion (success
 * or failure) the server side calls net__listener_hs_done and the client
 * side calls cb(arg, ...), as net_connect promises. Returns 0, or a cairn
 * code with c untouched (the caller closes it). */
int net__tls_start(struct net_conn *c, struct net_tls *tls, bool server,
                   const char *host, struct cairn_log *log, net_connect_cb cb,
                   void *arg);
/* Whether the context has a certificate to serve with. */
bool net__tls_can_serve(const struct net_tls *tls);
/* The context's handshake deadline. */
uint32_t net__tls_hs_timeout_ms(const struct net_tls *tls);

/* Waits, under a deadline of timeout_ms, for the accepted connection c's
 * first byte without consuming it, then calls net__listener_sniffed. On
 * failure (the client closed, timed out, an error, the listener closed) c
 * is closed and unlinked from its listener; nothing is called. Returns 0,
 * or CAIRN_ENOMEM with c untouched (the caller closes it). */
int net__sniff_start(struct net_conn *c, uint32_t timeout_ms,
                     struct cairn_log *log);
/* c's first byte is in: tls says whether it starts a TLS handshake. Hands
 * c to the TLS handshake or to the listener's accept callback. */
void net__listener_sniffed(struct net_conn *c, bool tls);
/* A server-side handshake ended: status 0 hands c to the listener's accept
 * callback; otherwise c is being freed. */
void net__listener_hs_done(struct net_conn *c, int status);

/* A zeroed connection with its buffers, not yet attached to a socket. */
struct net_conn *net__conn_alloc(uv_loop_t *loop,
                                 const struct net_conn_config *config);
/* Frees a connection that never got a socket. */
void net__conn_free(struct net_conn *c);
/* The cairn code for a libuv error. */
int net__uv_err(int uverr);
/* Fills c->peer from the socket's peer address. */
void net__conn_name_peer(struct net_conn *c, bool is_unix);

#endif
