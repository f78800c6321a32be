/* Configuration pieces of a member: etcd's defaults, URL lists, the initial
 * cluster, etcd's member and cluster id derivation, data directory paths. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net.h"
#include "server/server.h"

void server_config_defaults(struct server_config *c)
{
    memset(c, 0, sizeof *c);
    c->name = "default";
    c->data_dir = NULL; /* "<name>.etcd", decided once the name is known */
    c->wal_dir = NULL;
    c->listen_client_urls.n = 1;
    snprintf(c->listen_client_urls.url[0], SERVER_URL_LEN_MAX, "%s",
             "http://localhost:2379");
    c->advertise_client_urls = c->listen_client_urls;
    c->listen_peer_urls.n = 1;
    snprintf(c->listen_peer_urls.url[0], SERVER_URL_LEN_MAX, "%s",
             "http://localhost:2380");
    c->initial_advertise_peer_urls = c->listen_peer_urls;
    c->initial_cluster = "default=http://localhost:2380";
    c->initial_cluster_existing = false;
    c->initial_cluster_token = "etcd-cluster";
    c->snapshot_count = 100000;
    c->snapshot_catchup_entries = 5000;
    c->heartbeat_interval_ms = 100;
    c->election_timeout_ms = 1000;
    c->quota_backend_bytes = 0;
    c->max_request_bytes = 1572864;
    c->max_concurrent_streams = UINT32_MAX;
    c->max_txn_ops = 128;
    c->bcrypt_cost = SERVER_BCRYPT_COST_DEFAULT;
    c->max_snapshots = 5;
    c->strict_reconfig_check = true;
    c->pre_vote = false;
    c->initial_election_tick_advance = true;
    c->force_new_cluster = false;
    c->auto_compaction_mode = SERVER_AUTO_COMPACTION_PERIODIC;
    c->auto_compaction_retention = 0;
    c->log_level = CAIRN_LOG_INFO;
}

/* Normalizes one URL into out (SERVER_URL_LEN_MAX bytes). */
static int url_normalize(const char *text, size_t len, char *out,
                         struct cairn_errmsg *m)
{
    char tmp[SERVER_URL_LEN_MAX];
    if (len >= sizeof tmp)
        return cairn_errmsg_code(m, CAIRN_EINVAL, "URL %.40s... is too long",
                                 text);
    memcpy(tmp, text, len);
    tmp[len] = '\0';
    struct net_url u;
    int rv = net_url_parse(tmp, &u, m);
    if (rv != 0) {
        cairn_errmsg_prefixf(m, "URL %s", tmp);
        return rv;
    }
    int n = net_url_format(&u, out, SERVER_URL_LEN_MAX);
    if (n < 0 || n >= SERVER_URL_LEN_MAX)
        return cairn_errmsg_code(m, CAIRN_EINVAL, "URL %s is too long", tmp);
    return 0;
}

int server_urls_parse(const char *text, struct server_urls *out,
                      struct cairn_errmsg *m)
{
    out->n = 0;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "empty URL in list \"%s\"", text);
        if (out->n == SERVER_URLS_MAX)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "more than %d URLs in \"%s\"",
                                     SERVER_URLS_MAX, text);
        int rv = url_normalize(p, len, out->url[out->n], m);
        if (rv != 0)
            return rv;
        out->n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

uint64_t server_member_id_derive(const struct server_urls *peer_urls,
                                 const char *token, const int64_t *now_s)
{
    const char *sorted[SERVER_URLS_MAX] = {NULL};
    CAIRN_ASSERT(peer_urls->n <= SERVER_URLS_MAX);
    for (size_t i = 0; i < peer_urls->n; i++)
        sorted[i] = peer_urls->url[i];
    qsort(sorted, peer_urls->n, sizeof sorted[0], cmp_str);
    /* Bounded input: the URLs by SERVER_URLS_MAX, the token by
     * SERVER_TOKEN_LEN_MAX (the flag parser refuses longer ones). */
    unsigned char
        in[SERVER_URLS_MAX * SERVER_URL_LEN_MAX + SERVER_TOKEN_LEN_MAX + 32];
    size_t len = 0;
    for (size_t i = 0; i < peer_urls->n; i++) {
        size_t l = strlen(sorted[i]);
        memcpy(in + len, sorted[i], l);
        len += l;
    }
    size_t tl = strlen(token);
    CAIRN_ASSERT(tl < SERVER_TOKEN_LEN_MAX);
    /* Bytes, not a C string: SHA-1 input has no terminator. */
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result) */
    memcpy(in + len, token, tl);
    len += tl;
    if (now_s != NULL)
        len +=
            (size_t)snprintf((char *)in + len, 32, "%lld", (long long)*now_s);
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(in, len, md);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | md[i];
    return id;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

uint64_t server_cluster_id_derive(const uint64_t *ids, size_t n)
{
    uint64_t sorted[SERVER_MEMBERS_MAX * 4];
    CAIRN_ASSERT(n <= sizeof sorted / sizeof sorted[0]);
    memcpy(sorted, ids, n * sizeof ids[0]);
    qsort(sorted, n, sizeof sorted[0], cmp_u64);
    uint8_t be[sizeof sorted];
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            be[8 * i + (size_t)k] = (uint8_t)(sorted[i] >> (56 - 8 * k));
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(be, 8 * n, md);
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id = (id << 8) | md[i];
    return id;
}

int server_initial_cluster_parse(const char *text, const char *token,
                                 struct server_initial_cluster *out,
                                 struct cairn_errmsg *m)
{
    memset(out, 0, sizeof *out);
    if (strlen(token) >= SERVER_TOKEN_LEN_MAX)
        return cairn_errmsg_code(m, CAIRN_EINVAL,
                                 "initial cluster token is too long");
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq == NULL)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "initial cluster: \"%.*s\" is not "
                                     "name=url",
                                     (int)len, p);
        size_t name_len = (size_t)(eq - p);
        if (name_len == 0 || name_len >= SERVER_NAME_LEN_MAX)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "initial cluster: bad member name in "
                                     "\"%.*s\"",
                                     (int)len, p);
        struct server_cluster_member *mem = NULL;
        for (size_t i = 0; i < out->n; i++)
            if (strlen(out->members[i].name) == name_len &&
                memcmp(out->members[i].name, p, name_len) == 0)
                mem = &out->members[i];
        if (mem == NULL) {
            if (out->n == SERVER_MEMBERS_MAX)
                return cairn_errmsg_code(m, CAIRN_EINVAL,
                                         "initial cluster: more than %d "
                                         "members",
                                         SERVER_MEMBERS_MAX);
            mem = &out->members[out->n++];
            memcpy(mem->name, p, name_len);
            mem->name[name_len] = '\0';
        }
        if (mem->peer_urls.n == SERVER_URLS_MAX)
            return cairn_errmsg_code(m, CAIRN_EINVAL,
                                     "initial cluster: too many URLs for %s",
                                     mem->name);
        int rv = url_normalize(eq + 1, len - name_len - 1,
                               mem->peer_urls.url[mem->peer_urls.n], m);
        if (rv != 0) {
            cairn_errmsg_prefixf(m, "initial cluster");
            return rv;
        }
        /* etcd refuses a URL given twice (types.NewURLsMap via
         * ValidateClusterAndAssignIDs: "duplicate url"). */
        const char *u = mem->peer_urls.url[mem->peer_urls.n];
        for (size_t i = 0; i < out->n; i++)
            for (size_t k = 0; k < out->members[i].peer_urls.n; k++)
                if (strcmp(out->members[i].peer_urls.url[k], u) == 0)
                    return cairn_errmsg_code(m, CAIRN_EINVAL,
                                             "initial cluster: duplicate "
                                             "URL %s",
                                             u);
        mem->peer_urls.n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    uint64_t ids[SERVER_MEMBERS_MAX];
    for (size_t i = 0; i < out->n; i++) {
        out->members[i].id =
            server_member_id_derive(&out->members[i].peer_urls, token, NULL);
        for (size_t k = 0; k < i; k++)
            if (out->members[k].id == out->members[i].id)
                return cairn_errmsg_code(m, CAIRN_EINVAL,
                                         "initial cluster: members %s and %s "
                                         "have the same id",
                                         out->members[k].name,
                                         out->members[i].name);
        ids[i] = out->members[i].id;
    }
    out->cluster_id = server_cluster_id_derive(ids, out->n);
    return 0;
}

int server_paths_init(struct server_paths *p, const char *data_dir,
                      const char *wal_dir)
{
    int n1 = snprintf(p->member, sizeof p->member, "%s/member", data_dir);
    int n2 = wal_dir != NULL
                 ? snprintf(p->wal, sizeof p->wal, "%s", wal_dir)
                 : snprintf(p->wal, sizeof p->wal, "%s/member/wal", data_dir);
    int n3 = snprintf(p->snap, sizeof p->snap, "%s/member/snap", data_dir);
    int n4 = snprintf(p->db, sizeof p->db, "%s/member/snap/db", data_dir);
    if (n1 < 0 || n2 < 0 || n3 < 0 || n4 < 0 ||
        (size_t)n1 >= sizeof p->member || (size_t)n2 >= sizeof p->wal ||
        (size_t)n3 >= sizeof p->snap || (size_t)n4 >= sizeof p->db)
        return CAIRN_ETOOBIG;
    return 0;
}
