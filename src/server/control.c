/* TEST ONLY: the control socket that tests/cluster drives members through
 * until the gRPC API exists (enabled by the hidden --cairn-test-control
 * flag; protocol in docs/server.md). One request at a time per connection,
 * one line in, one line out; it calls the same request interface the API
 * layer will call. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#define CONTROL_LINE_MAX 4096
#define CONTROL_REPLY_MAX 65536

struct control_conn {
    struct server__control *ctl; /* NULL once the control socket closed */
    struct net_conn *conn;       /* NULL once the connection closed */
    struct control_conn *next;
    struct control_conn **prev_next;
    bool busy; /* a request is in flight */
    size_t len;
    char buf[CONTROL_LINE_MAX];
};

struct server__control {
    struct server *s;
    struct net_listener *listener;
    struct control_conn *conns;
};

static void conn_unlink(struct control_conn *c)
{
    if (c->prev_next != NULL) {
        *c->prev_next = c->next;
        if (c->next != NULL)
            c->next->prev_next = c->prev_next;
        c->prev_next = NULL;
        c->next = NULL;
    }
}

static void conn_maybe_free(struct control_conn *c)
{
    if (c->conn == NULL && !c->busy) {
        conn_unlink(c);
        cairn_free(c);
    }
}

static void reply(struct control_conn *c, const char *text)
{
    if (c->conn != NULL) {
        net_conn_write(c->conn, text, strlen(text));
        net_conn_write(c->conn, "\n", 1);
    }
}

static void reply_err(struct control_conn *c, int err)
{
    char line[256];
    snprintf(line, sizeof line, "ERR %s %s", cairn_errname(err),
             cairn_strerror(err));
    reply(c, line);
}

static void process(struct control_conn *c);

static void on_result(void *arg, const struct node_result *res)
{
    struct control_conn *c = arg;
    char *out = cairn_malloc(CONTROL_REPLY_MAX);
    c->busy = false;
    if (out == NULL) {
        reply_err(c, CAIRN_ENOMEM);
        goto done;
    }
    if (res->err != 0) {
        reply_err(c, res->err);
        goto done;
    }
    size_t used = 0;
#define OUT(...)                                                           \
    do {                                                                   \
        if (used < CONTROL_REPLY_MAX)                                      \
            used += (size_t)snprintf(out + used, CONTROL_REPLY_MAX - used, \
                                     __VA_ARGS__);                         \
    } while (0)
    switch (res->type) {
    case NODE_REQ_PUT:
    case NODE_REQ_DELETE:
    case NODE_REQ_COMPACT:
    case NODE_REQ_MEMBER_REMOVE:
    case NODE_REQ_MOVE_LEADER:
        OUT("OK rev=%lld", (long long)res->revision);
        break;
    case NODE_REQ_RANGE:
        if (res->u.range.n_kvs == 0 && res->u.range.count > 0) {
            OUT("COUNT %lld rev=%lld", (long long)res->u.range.count,
                (long long)res->revision);
        } else if (res->u.range.n_kvs == 0) {
            OUT("NONE rev=%lld", (long long)res->revision);
        } else {
            const struct mvcc_kv *kv = &res->u.range.kvs[0];
            OUT("VALUE %.*s mod=%lld rev=%lld", (int)kv->value_len,
                (const char *)kv->value, (long long)kv->mod_rev,
                (long long)res->revision);
        }
        break;
    case NODE_REQ_HASH_KV:
        OUT("HASHKV %" PRIu32 " rev=%lld compact=%lld", res->u.hash.hash,
            (long long)res->revision, (long long)res->u.hash.compact_rev);
        break;
    case NODE_REQ_STATUS: {
        const struct node_status *st = &res->u.status;
        OUT("STATUS id=%016llx leader=%016llx term=%llu index=%llu "
            "applied=%llu commit=%llu",
            (unsigned long long)st->member_id, (unsigned long long)st->leader,
            (unsigned long long)st->raft_term,
            (unsigned long long)st->raft_index,
            (unsigned long long)st->applied_index,
            (unsigned long long)st->commit_index);
        break;
    }
    case NODE_REQ_MEMBER_ADD:
    case NODE_REQ_MEMBER_PROMOTE:
    case NODE_REQ_MEMBER_LIST:
        if (res->type != NODE_REQ_MEMBER_LIST && res->u.members.member != NULL)
            OUT("MEMBER %016llx",
                (unsigned long long)res->u.members.member->id);
        else
            OUT("MEMBERS");
        for (size_t i = 0; i < res->u.members.n; i++) {
            const struct node_member *m = &res->u.members.list[i];
            OUT(" %016llx:%s:%s%s", (unsigned long long)m->id,
                m->name[0] != '\0' ? m->name : "-",
                m->n_peer_urls > 0 ? m->peer_urls[0] : "-",
                m->is_learner ? ":learner" : "");
        }
        break;
    default:
        OUT("OK");
        break;
    }
#undef OUT
    reply(c, out);
done:
    cairn_free(out);
    if (c->conn == NULL) {
        conn_maybe_free(c);
        return;
    }
    process(c);
}

/* Splits the line into at most max space-separated words. */
static size_t split(char *line, char **w, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " ", &save); t != NULL && n < max;
         t = strtok_r(NULL, " ", &save))
        w[n++] = t;
    return n;
}

static int run(struct control_conn *c, char *line)
{
    struct server *s = c->ctl->s;
    char *w[4];
    size_t n = split(line, w, 4);
    if (n == 0)
        return CAIRN_EINVAL;
    static const uint8_t all[] = {0};
    if (strcmp(w[0], "put") == 0 && n == 3) {
        struct mvcc_put_req r = {.key = (const uint8_t *)w[1],
                                 .key_len = strlen(w[1]),
                                 .value = (const uint8_t *)w[2],
                                 .value_len = strlen(w[2])};
        return server_put(s, &r, c, on_result);
    }
    if ((strcmp(w[0], "get") == 0 || strcmp(w[0], "sget") == 0) && n == 2) {
        struct mvcc_range_req r = {.key = (const uint8_t *)w[1],
                                   .key_len = strlen(w[1])};
        return server_range(s, &r, w[0][0] == 's', c, on_result);
    }
    if ((strcmp(w[0], "count") == 0 || strcmp(w[0], "scount") == 0) && n == 1) {
        struct mvcc_range_req r = {.key = all,
                                   .key_len = 1,
                                   .end = all,
                                   .end_len = 1,
                                   .count_only = true};
        return server_range(s, &r, w[0][0] == 's', c, on_result);
    }
    if (strcmp(w[0], "del") == 0 && n == 2) {
        struct mvcc_delete_req r = {.key = (const uint8_t *)w[1],
                                    .key_len = strlen(w[1])};
        return server_delete_range(s, &r, c, on_result);
    }
    if (strcmp(w[0], "hashkv") == 0 && n <= 2)
        return server_hash_kv(s, n == 2 ? strtoll(w[1], NULL, 10) : 0, c,
                              on_result);
    if (strcmp(w[0], "status") == 0 && n == 1)
        return server_status(s, c, on_result);
    if (strcmp(w[0], "compact") == 0 && n == 2)
        return server_compact(s, strtoll(w[1], NULL, 10), false, c, on_result);
    if (strcmp(w[0], "members") == 0 && n == 1)
        return server_member_list(s, c, on_result);
    if ((strcmp(w[0], "member-add") == 0 ||
         strcmp(w[0], "member-add-learner") == 0) &&
        n == 2) {
        struct node_member m;
        memset(&m, 0, sizeof m);
        if (strlen(w[1]) >= NODE_URL_MAX)
            return CAIRN_EINVAL;
        snprintf(m.peer_urls[0], NODE_URL_MAX, "%s", w[1]);
        m.n_peer_urls = 1;
        m.is_learner = strcmp(w[0], "member-add-learner") == 0;
        return server_member_add(s, &m, c, on_result);
    }
    if (strcmp(w[0], "member-promote") == 0 && n == 2)
        return server_member_promote(s, strtoull(w[1], NULL, 16), c, on_result);
    if (strcmp(w[0], "member-remove") == 0 && n == 2)
        return server_member_remove(s, strtoull(w[1], NULL, 16), c, on_result);
    if (strcmp(w[0], "move-leader") == 0 && n == 2)
        return server_move_leader(s, strtoull(w[1], NULL, 16), c, on_result);
    return CAIRN_EINVAL;
}

/* Runs the complete lines in the buffer, one request at a time. */
static void process(struct control_conn *c)
{
    while (!c->busy && c->conn != NULL && c->ctl != NULL) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl == NULL)
            return;
        *nl = '\0';
        char line[CONTROL_LINE_MAX];
        size_t ll = (size_t)(nl - c->buf);
        memcpy(line, c->buf, ll + 1);
        memmove(c->buf, nl + 1, c->len - ll - 1);
        c->len -= ll + 1;
        c->busy = true;
        int rv = run(c, line);
        if (rv != 0) {
            c->busy = false;
            reply_err(c, rv);
        }
    }
}

static void on_read(void *arg, struct net_conn *conn, const uint8_t *data,
                    size_t len)
{
    struct control_conn *c = arg;
    if (c->len + len > sizeof c->buf) {
        net_conn_close(conn, false);
        return;
    }
    memcpy(c->buf + c->len, data, len);
    c->len += len;
    process(c);
}

static void on_closed(void *arg, struct net_conn *conn, int status)
{
    struct control_conn *c = arg;
    (void)conn;
    (void)status;
    c->conn = NULL;
    conn_maybe_free(c);
}

static const struct net_conn_cbs conn_cbs = {
    .read = on_read, .drain = NULL, .closed = on_closed};

static void on_accept(void *arg, struct net_conn *conn)
{
    struct server__control *ctl = arg;
    struct control_conn *c = cairn_calloc(1, sizeof *c);
    if (c == NULL) {
        net_conn_close(conn, false);
        return;
    }
    c->ctl = ctl;
    c->conn = conn;
    c->next = ctl->conns;
    if (c->next != NULL)
        c->next->prev_next = &c->next;
    c->prev_next = &ctl->conns;
    ctl->conns = c;
    net_conn_start(conn, &conn_cbs, c);
}

int server__control_open(struct server *s, const char *path,
                         struct cairn_errmsg *m)
{
    struct server__control *ctl = cairn_calloc(1, sizeof *ctl);
    if (ctl == NULL)
        return cairn_errmsg_code(m, CAIRN_ENOMEM, "control socket");
    ctl->s = s;
    char text[NET_UNIX_PATH_MAX + 16];
    snprintf(text, sizeof text, "unix://%s", path);
    struct net_url url;
    int rv = net_url_parse(text, &url, m);
    if (rv == 0)
        rv = net_listener_open(s->loop, &url, NULL, s->log, &ctl->listener, ctl,
                               on_accept, m);
    if (rv != 0) {
        cairn_errmsg_prefixf(m, "test control socket %s", path);
        cairn_free(ctl);
        return rv;
    }
    cairn_warnf(s->log, "server",
                "TEST ONLY: control socket on %s (--cairn-test-control)", path);
    s->control = ctl;
    return 0;
}

void server__control_close(struct server *s)
{
    struct server__control *ctl = s->control;
    if (ctl == NULL)
        return;
    s->control = NULL;
    net_listener_close(ctl->listener);
    /* Connections close through the loop; each frees itself once closed
     * and no request of it is in flight. */
    for (struct control_conn *c = ctl->conns; c != NULL; c = c->next) {
        c->ctl = NULL;
        c->prev_next = NULL;
        if (c->conn != NULL)
            net_conn_close(c->conn, true);
    }
    ctl->conns = NULL;
    cairn_free(ctl);
}
