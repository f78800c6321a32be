/* The server's half of the Auth requests: a password is hashed with bcrypt
 * (libxcrypt's crypt_rn, "$2b$", --bcrypt-cost) on libuv's thread pool
 * before node proposes the request, so every member stores the same hash
 * and the loop never waits the ~100 ms a hash costs. */
#include <crypt.h>
#include <string.h>

#include "server/server_int.h"

/* bcrypt's cost bounds; etcd falls back to its default outside them. */
#define BCRYPT_COST_MIN 4
#define BCRYPT_COST_MAX 31

struct auth_work {
    uv_work_t work;
    struct server *s;
    struct auth_req req; /* its byte fields point into mem */
    uint8_t *mem;
    size_t password_len;
    char hash[CRYPT_OUTPUT_SIZE];
    unsigned cost;
    int status;
    void *arg;
    node_done_cb cb;
};

unsigned server__bcrypt_cost(unsigned cost)
{
    return cost < BCRYPT_COST_MIN || cost > BCRYPT_COST_MAX
               ? SERVER_BCRYPT_COST_DEFAULT
               : cost;
}

/* Thread pool: the hash, then the plaintext wiped. */
static void hash_work(uv_work_t *w)
{
    struct auth_work *aw = w->data;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd = cairn_calloc(1, sizeof(*cd));
    aw->status = CAIRN_ENOMEM;
    if (cd != NULL) {
        /* NULL random bytes: libxcrypt draws them from the kernel */
        const char *h = NULL;
        if (crypt_gensalt_rn("$2b$", aw->cost, NULL, 0, salt, sizeof salt))
            h = crypt_rn((const char *)aw->req.password, salt, cd, sizeof(*cd));
        aw->status = CAIRN_EIO;
        if (h != NULL && h[0] == '$' && strlen(h) < sizeof aw->hash) {
            strcpy(aw->hash, h);
            aw->status = 0;
        }
        explicit_bzero(cd, sizeof(*cd));
        cairn_free(cd);
    }
    explicit_bzero((void *)aw->req.password, aw->password_len);
}

static void answer_err(struct auth_work *aw, int err)
{
    struct node_result r;
    memset(&r, 0, sizeof r);
    r.type = NODE_REQ_AUTH;
    r.err = err;
    aw->cb(aw->arg, &r);
}

static void hash_after(uv_work_t *w, int uv_status)
{
    struct auth_work *aw = w->data;
    struct server *s = aw->s;
    int rv = uv_status != 0 ? CAIRN_ECANCELED : aw->status;
    if (rv == 0 && !server__serving(s))
        rv = CAIRN_ESTOPPED;
    if (rv == 0) {
        aw->req.password = (const uint8_t *)aw->hash;
        aw->req.password_len = strlen(aw->hash);
        /* accepted: node answers through cb; refused: we do */
        rv = node_auth(s->node, &aw->req, aw->arg, aw->cb);
    }
    if (rv != 0)
        answer_err(aw, rv);
    cairn_free(aw->mem);
    cairn_free(aw);
    server__work_done(s);
}

/* Copies req's bytes into one block owned by aw. */
static int copy_req(struct auth_work *aw, const struct auth_req *req)
{
    size_t n = req->name_len + req->role_len + req->password_len +
               req->perm.key_len + req->perm.end_len + 1;
    uint8_t *p = cairn_malloc(n);
    if (p == NULL)
        return CAIRN_ENOMEM;
    aw->mem = p;
    aw->req = *req;
#define COPY(field, len)                     \
    do {                                     \
        if (req->len)                        \
            memcpy(p, req->field, req->len); \
        aw->req.field = p;                   \
        p += req->len;                       \
    } while (0)
    COPY(name, name_len);
    COPY(role, role_len);
    COPY(perm.key, perm.key_len);
    COPY(perm.end, perm.end_len);
    COPY(password, password_len);
#undef COPY
    *p = 0; /* the password is a C string for crypt */
    aw->password_len = req->password_len;
    return 0;
}

int server_auth(struct server *s, const struct auth_req *req, void *arg,
                node_done_cb cb)
{
    if (!server__serving(s))
        return CAIRN_ESHUTDOWN;
    bool hash = (req->op == AUTH_OP_USER_ADD && !req->no_password) ||
                req->op == AUTH_OP_USER_CHANGE_PASSWORD;
    if (!hash) {
        /* a password given with no_password (or to any other op) is
         * ignored, as etcd does, and must never reach the log */
        struct auth_req q = *req;
        q.password = NULL;
        q.password_len = 0;
        return node_auth(s->node, &q, arg, cb);
    }
    int rv = auth_req_check(req);
    if (rv != 0)
        return rv;
    if (req->password_len > 0 &&
        memchr(req->password, 0, req->password_len) != NULL)
        return CAIRN_EINVAL;
    struct auth_work *aw = cairn_calloc(1, sizeof *aw);
    if (aw == NULL)
        return CAIRN_ENOMEM;
    if ((rv = copy_req(aw, req)) != 0) {
        cairn_free(aw);
        return rv;
    }
    aw->s = s;
    aw->arg = arg;
    aw->cb = cb;
    aw->cost = server__bcrypt_cost(s->cfg.bcrypt_cost);
    aw->work.data = aw;
    if (uv_queue_work(s->loop, &aw->work, hash_work, hash_after) != 0) {
        explicit_bzero(aw->mem, aw->password_len + 1);
        cairn_free(aw->mem);
        cairn_free(aw);
        return CAIRN_ENOMEM;
    }
    s->pending_work++;
    return 0;
}
