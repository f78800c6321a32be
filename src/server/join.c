/* Joining a running cluster with an empty data directory
 * (--initial-cluster-state existing): once the member was added, every
 * member of the cluster dials its peer URL; the member learns its own id and
 * the cluster id from their handshakes (docs/transport.md, "Handshake"), and
 * the ids of the members that dialled, then starts as a member without
 * bootstrap, waiting for the leader's snapshot. etcd learns the same facts
 * by asking a peer for the member list; cairn's peer port has no such
 * request, and a handshake names exactly the id the cluster gave this URL.
 * Handshakes are collected until every other member listed in
 * --initial-cluster has dialled or two election timeouts have passed since
 * the first one. */
#include <string.h>

#include "server/server_int.h"

#define HANDSHAKE_BYTES 36
#define JOIN_CONNS_MAX 16

struct join_conn {
    struct server__join *join;
    struct net_conn *conn;
    size_t slot;
    size_t len;
    uint8_t buf[HANDSHAKE_BYTES];
};

struct server__join {
    struct server *s;
    struct net_listener *listeners[SERVER_URLS_MAX];
    size_t n_listeners;
    bool done;
    uint64_t cluster_id;
    uint64_t member_id;
    uint64_t senders[SERVER__JOIN_SENDERS_MAX];
    size_t n_senders;
    /* Connections not yet closed; each frees itself once closed. */
    struct join_conn *conns[JOIN_CONNS_MAX];
};

static void join_close_listeners(struct server__join *j)
{
    for (size_t i = 0; i < j->n_listeners; i++)
        net_listener_close(j->listeners[i]);
    j->n_listeners = 0;
}

/* Checks a dialler's handshake: magic, CRC, a messages or snapshot
 * connection, distinct non-zero ids. */
static bool handshake_parse(const uint8_t *b, uint64_t *cluster_id,
                            uint64_t *sender, uint64_t *receiver)
{
    if (memcmp(b, "CRNP", 4) != 0 ||
        codec_get_u32(b + 32) != crc32c(0, b, 32) || codec_get_u16(b + 4) < 1 ||
        (b[6] != 1 && b[6] != 2))
        return false;
    *cluster_id = codec_get_u64(b + 8);
    *sender = codec_get_u64(b + 16);
    *receiver = codec_get_u64(b + 24);
    return *cluster_id != 0 && *sender != 0 && *receiver != 0 &&
           *sender != *receiver;
}

static void join_finish(struct server__join *j)
{
    struct server *s = j->s;
    server__join_close(s);
    uv_timer_stop(&s->tick);
    server__join_learned(s, j->cluster_id, j->member_id, j->senders,
                         j->n_senders);
}

static void on_join_timeout(uv_timer_t *t)
{
    struct server *s = t->data;
    if (s->join != NULL && !s->join->done)
        join_finish(s->join);
}

static void on_read(void *arg, struct net_conn *conn, const uint8_t *data,
                    size_t len)
{
    struct join_conn *jc = arg;
    size_t take = HANDSHAKE_BYTES - jc->len;
    if (take > len)
        take = len;
    memcpy(jc->buf + jc->len, data, take);
    jc->len += take;
    if (jc->len < HANDSHAKE_BYTES)
        return;
    /* The dialler sees the connection close and redials with backoff; by
     * then the real transport listens here. */
    net_conn_close(conn, false);
    struct server__join *j = jc->join;
    if (j->done)
        return;
    uint64_t cluster_id, sender, receiver;
    if (!handshake_parse(jc->buf, &cluster_id, &sender, &receiver)) {
        cairn_warnf(j->s->log, "server",
                    "joining: ignored a connection from %s that is not a "
                    "peer handshake",
                    net_conn_peer(conn));
        return;
    }
    if (j->n_senders > 0 &&
        (cluster_id != j->cluster_id || receiver != j->member_id)) {
        cairn_warnf(j->s->log, "server",
                    "joining: member %016llx addresses us as %016llx of "
                    "cluster %016llx, but %016llx said %016llx of %016llx; "
                    "ignored",
                    (unsigned long long)sender, (unsigned long long)receiver,
                    (unsigned long long)cluster_id,
                    (unsigned long long)j->senders[0],
                    (unsigned long long)j->member_id,
                    (unsigned long long)j->cluster_id);
        return;
    }
    for (size_t i = 0; i < j->n_senders; i++)
        if (j->senders[i] == sender)
            return;
    if (j->n_senders == SERVER__JOIN_SENDERS_MAX)
        return;
    j->cluster_id = cluster_id;
    j->member_id = receiver;
    j->senders[j->n_senders++] = sender;
    struct server *s = j->s;
    size_t others = s->ic->n > 0 ? s->ic->n - 1 : 0;
    if (j->n_senders >= others) {
        join_finish(j);
        return;
    }
    if (j->n_senders == 1)
        uv_timer_start(&s->tick, on_join_timeout, 2ull * s->election_ms, 0);
}

static void on_closed(void *arg, struct net_conn *conn, int status)
{
    struct join_conn *jc = arg;
    (void)conn;
    (void)status;
    jc->join->conns[jc->slot] = NULL;
    cairn_free(jc);
}

static const struct net_conn_cbs join_conn_cbs = {
    .read = on_read, .drain = NULL, .closed = on_closed};

static void on_accept(void *arg, struct net_conn *conn)
{
    struct server__join *j = arg;
    size_t slot = 0;
    while (slot < JOIN_CONNS_MAX && j->conns[slot] != NULL)
        slot++;
    struct join_conn *jc =
        slot < JOIN_CONNS_MAX && !j->done ? cairn_calloc(1, sizeof *jc) : NULL;
    if (jc == NULL) {
        net_conn_close(conn, false);
        return;
    }
    jc->join = j;
    jc->conn = conn;
    jc->slot = slot;
    j->conns[slot] = jc;
    net_conn_start(conn, &join_conn_cbs, jc);
}

int server__join_start(struct server *s, struct cairn_errmsg *m)
{
    struct server__join *j = cairn_calloc(1, sizeof *j);
    if (j == NULL)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "join");
    j->s = s;
    s->join = j;
    for (size_t i = 0; i < s->listen_peer_urls.n; i++) {
        struct net_url url;
        int rv = net_url_parse(s->listen_peer_urls.url[i], &url, m);
        if (rv == 0)
            rv = net_listener_open(
                s->loop, &url, &(struct net_conn_config){.tls = s->peer_tls},
                s->log, &j->listeners[j->n_listeners], j, on_accept, m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "listen for peers on %s",
                                 s->listen_peer_urls.url[i]);
            join_close_listeners(j);
            return rv;
        }
        j->n_listeners++;
    }
    cairn_infof(s->log, "server",
                "joining a running cluster: waiting for its leader to "
                "contact %s (add this member first)",
                s->peer_urls.url[0]);
    return 0;
}

void server__join_close(struct server *s)
{
    struct server__join *j = s->join;
    if (j == NULL)
        return;
    j->done = true;
    join_close_listeners(j);
    for (size_t i = 0; i < JOIN_CONNS_MAX; i++)
        if (j->conns[i] != NULL)
            net_conn_close(j->conns[i]->conn, false);
}

void server__join_free(struct server *s)
{
    /* Called once the loop is empty: every connection has closed. */
    cairn_free(s->join);
    s->join = NULL;
}
