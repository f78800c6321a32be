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
    size_t len;
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
};

extern const struct net__conn_type net__stream_type;

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
