/* The user and role store: etcd 3.4's auth store rules (auth/store.go)
 * applied to records in mvcc's ext table inside the apply batch. */
#include "auth/auth.h"

#include <string.h>

/* Record format version, first byte of every user and role record. */
#define REC_V1 0x01
#define USER_NO_PASSWORD 1

/* A name as stored: bytes (not NUL-terminated in records). */
struct name {
    const uint8_t *p;
    size_t len;
};

/* A decoded user; every pointer in the arena (copied out of the map, which
 * the next write of the batch may move). */
struct user {
    bool no_password;
    const uint8_t *pw;
    size_t pw_len;
    struct name *roles;
    size_t n_roles;
};

struct role {
    struct auth_perm *perms;
    size_t n_perms;
};

/* ---- checks ---- */

static int name_check(const uint8_t *p, size_t len)
{
    if (len > AUTH_NAME_MAX)
        return CAIRN_ETOOBIG;
    if (len > 0 && memchr(p, 0, len) != NULL)
        return CAIRN_EINVAL;
    return 0;
}

int auth_req_check(const struct auth_req *req)
{
    if (req->op < AUTH_OP_USER_ADD || req->op > AUTH_OP_MAX)
        return CAIRN_EINVAL;
    if (req->op == AUTH_OP_ROLE_GRANT_PERMISSION &&
        req->perm.type > AUTH_PERM_READWRITE)
        return CAIRN_EINVAL;
    int rc = name_check(req->name, req->name_len);
    return rc ? rc : name_check(req->role, req->role_len);
}

/* Byte order, shorter first on a common prefix: Go's string and
 * bytes.Compare order, which etcd's sorted lists and bbolt's keys use. */
static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    size_t n = al < bl ? al : bl;
    int c = n ? memcmp(a, b, n) : 0;
    if (c != 0)
        return c;
    return al < bl ? -1 : (al > bl ? 1 : 0);
}

static bool name_eq(const struct name *n, const uint8_t *p, size_t len)
{
    return n->len == len && (len == 0 || memcmp(n->p, p, len) == 0);
}

static bool is_root(const uint8_t *p, size_t len)
{
    return name_eq(&(struct name){(const uint8_t *)AUTH_ROOT, 4}, p, len);
}

/* ---- records ---- */

static uint8_t *dup(struct mvcc_arena *a, const uint8_t *p, size_t n)
{
    uint8_t *d = mvcc_arena_alloc(a, n + 1); /* +1: NUL for names */
    if (d == NULL)
        return NULL;
    if (n)
        memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static int put_bytes(struct buf *b, const uint8_t *p, size_t n)
{
    int rc = buf_append_varint(b, n);
    return rc == 0 && n > 0 ? buf_append(b, p, n) : rc;
}

/* Bytes of a record, copied into the arena; NULL with r->bad or no memory
 * (*nomem). */
static const uint8_t *get_bytes(struct codec_reader *r, struct mvcc_arena *a,
                                size_t *n, bool *nomem)
{
    uint64_t len = codec_read_varint(r);
    if (r->bad || len > codec_reader_left(r)) {
        r->bad = true;
        return NULL;
    }
    *n = (size_t)len;
    const uint8_t *p = codec_read_bytes(r, (size_t)len);
    uint8_t *d = dup(a, p, (size_t)len);
    if (d == NULL)
        *nomem = true;
    return d;
}

static size_t get_count(struct codec_reader *r)
{
    uint64_t n = codec_read_varint(r);
    if (r->bad || n > codec_reader_left(r)) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}

static int user_encode(const struct user *u, struct buf *b)
{
    int rc = buf_append_u8(b, REC_V1);
    if (rc == 0)
        rc = buf_append_u8(b, u->no_password ? USER_NO_PASSWORD : 0);
    if (rc == 0)
        rc = put_bytes(b, u->pw, u->pw_len);
    if (rc == 0)
        rc = buf_append_varint(b, u->n_roles);
    for (size_t i = 0; rc == 0 && i < u->n_roles; i++)
        rc = put_bytes(b, u->roles[i].p, u->roles[i].len);
    return rc;
}

static int user_decode(const uint8_t *p, size_t len, struct mvcc_arena *a,
                       struct user *u)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    bool nomem = false;
    memset(u, 0, sizeof(*u));
    if (codec_read_u8(&r) != REC_V1)
        return CAIRN_ECORRUPT;
    uint8_t flags = codec_read_u8(&r);
    u->no_password = flags & USER_NO_PASSWORD;
    u->pw = get_bytes(&r, a, &u->pw_len, &nomem);
    u->n_roles = get_count(&r);
    if (!r.bad && u->n_roles > 0) {
        u->roles = mvcc_arena_alloc(a, u->n_roles * sizeof(*u->roles));
        nomem |= u->roles == NULL;
    }
    for (size_t i = 0; !r.bad && !nomem && i < u->n_roles; i++)
        u->roles[i].p = get_bytes(&r, a, &u->roles[i].len, &nomem);
    if (nomem)
        return CAIRN_ENOMEM;
    if (r.bad || (flags & ~USER_NO_PASSWORD) || codec_reader_left(&r) != 0)
        return CAIRN_ECORRUPT;
    return 0;
}

static int role_encode(const struct role *ro, struct buf *b)
{
    int rc = buf_append_u8(b, REC_V1);
    if (rc == 0)
        rc = buf_append_varint(b, ro->n_perms);
    for (size_t i = 0; rc == 0 && i < ro->n_perms; i++) {
        const struct auth_perm *pm = &ro->perms[i];
        rc = buf_append_u8(b, pm->type);
        if (rc == 0)
            rc = put_bytes(b, pm->key, pm->key_len);
        if (rc == 0)
            rc = put_bytes(b, pm->end, pm->end_len);
    }
    return rc;
}

/* Decodes into perms with room for one more (a grant appends). */
static int role_decode(const uint8_t *p, size_t len, struct mvcc_arena *a,
                       struct role *ro)
{
    struct codec_reader r;
    codec_reader_init(&r, p, len);
    bool nomem = false;
    memset(ro, 0, sizeof(*ro));
    if (codec_read_u8(&r) != REC_V1)
        return CAIRN_ECORRUPT;
    ro->n_perms = get_count(&r);
    if (r.bad)
        return CAIRN_ECORRUPT;
    ro->perms = mvcc_arena_alloc(a, (ro->n_perms + 1) * sizeof(*ro->perms));
    if (ro->perms == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; !r.bad && !nomem && i < ro->n_perms; i++) {
        struct auth_perm *pm = &ro->perms[i];
        pm->type = codec_read_u8(&r);
        if (pm->type > AUTH_PERM_READWRITE)
            r.bad = true;
        pm->key = get_bytes(&r, a, &pm->key_len, &nomem);
        pm->end = get_bytes(&r, a, &pm->end_len, &nomem);
    }
    if (nomem)
        return CAIRN_ENOMEM;
    if (r.bad || codec_reader_left(&r) != 0)
        return CAIRN_ECORRUPT;
    return 0;
}

/* 0, CAIRN_ENOTFOUND, or a failure. */
static int user_get(struct mvcc_store *s, const uint8_t *name, size_t len,
                    struct mvcc_arena *a, struct user *u)
{
    const uint8_t *v;
    size_t vl;
    int rc = mvcc_ext_get_batch(s, AUTH_TABLE_USER, name, len, &v, &vl);
    return rc ? rc : user_decode(v, vl, a, u);
}

static int role_get(struct mvcc_store *s, const uint8_t *name, size_t len,
                    struct mvcc_arena *a, struct role *ro)
{
    const uint8_t *v;
    size_t vl;
    int rc = mvcc_ext_get_batch(s, AUTH_TABLE_ROLE, name, len, &v, &vl);
    return rc ? rc : role_decode(v, vl, a, ro);
}

static int user_put(struct mvcc_store *s, const uint8_t *name, size_t len,
                    const struct user *u)
{
    struct buf b = BUF_INIT;
    int rc = user_encode(u, &b);
    if (rc == 0)
        rc = mvcc_ext_put(s, AUTH_TABLE_USER, name, len, b.data, b.len);
    buf_free(&b);
    return rc;
}

static int role_put(struct mvcc_store *s, const uint8_t *name, size_t len,
                    const struct role *ro)
{
    struct buf b = BUF_INIT;
    int rc = role_encode(ro, &b);
    if (rc == 0)
        rc = mvcc_ext_put(s, AUTH_TABLE_ROLE, name, len, b.data, b.len);
    buf_free(&b);
    return rc;
}

/* ---- lists ---- */

struct list_scan {
    struct mvcc_arena *a;
    const char **names;
    size_t n, cap;
};

static int list_cb(void *arg, const uint8_t *key, size_t key_len,
                   const uint8_t *val, size_t val_len)
{
    (void)val;
    (void)val_len;
    struct list_scan *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        const char **nn = mvcc_arena_alloc(l->a, cap * sizeof(*nn));
        if (nn == NULL)
            return CAIRN_ENOMEM;
        if (l->n)
            memcpy(nn, l->names, l->n * sizeof(*nn));
        l->names = nn;
        l->cap = cap;
    }
    const char *d = (const char *)dup(l->a, key, key_len);
    if (d == NULL)
        return CAIRN_ENOMEM;
    l->names[l->n++] = d;
    return 0;
}

/* Every name of table in key order: bbolt's order, which etcd lists in. */
static int list_names(struct mvcc_store *s, uint8_t table, struct mvcc_arena *a,
                      struct auth_result *out)
{
    struct list_scan l = {a, NULL, 0, 0};
    int rc = mvcc_ext_scan_batch(s, table, &l, list_cb);
    out->names = l.names;
    out->n_names = l.n;
    return rc;
}

/* ---- users ---- */

static int user_add(struct mvcc_store *s, const struct auth_req *q,
                    struct mvcc_arena *a)
{
    if (q->name_len == 0)
        return CAIRN_EUSEREMPTY;
    struct user u;
    int rc = user_get(s, q->name, q->name_len, a, &u);
    if (rc == 0)
        return CAIRN_EUSEREXISTS;
    if (rc != CAIRN_ENOTFOUND)
        return rc;
    memset(&u, 0, sizeof(u));
    u.no_password = q->no_password;
    if (!q->no_password) {
        u.pw = q->password;
        u.pw_len = q->password_len;
    }
    return user_put(s, q->name, q->name_len, &u);
}

static int user_read(struct mvcc_store *s, const struct auth_req *q,
                     struct mvcc_arena *a, struct auth_result *out)
{
    struct user u;
    int rc = user_get(s, q->name, q->name_len, a, &u);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EUSERNOTFOUND;
    if (rc != 0)
        return rc;
    const char **names = NULL;
    if (u.n_roles > 0 &&
        (names = mvcc_arena_alloc(a, u.n_roles * sizeof(*names))) == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < u.n_roles; i++)
        names[i] = (const char *)u.roles[i].p; /* NUL-terminated by dup */
    out->names = names;
    out->n_names = u.n_roles;
    return 0;
}

static int user_delete(struct mvcc_store *s, const struct auth_req *q)
{
    /* etcd refuses to delete root only while auth is enabled, which it
     * never is here. */
    int rc = mvcc_ext_del(s, AUTH_TABLE_USER, q->name, q->name_len);
    return rc == CAIRN_ENOTFOUND ? CAIRN_EUSERNOTFOUND : rc;
}

static int user_change_password(struct mvcc_store *s, const struct auth_req *q,
                                struct mvcc_arena *a)
{
    struct user u;
    int rc = user_get(s, q->name, q->name_len, a, &u);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EUSERNOTFOUND;
    if (rc != 0)
        return rc;
    /* etcd keeps the no-password option and stores the new hash anyway */
    u.pw = q->password;
    u.pw_len = q->password_len;
    return user_put(s, q->name, q->name_len, &u);
}

/* Where role goes in u's sorted roles; *found when it is there. */
static size_t role_index(const struct user *u, const uint8_t *role, size_t len,
                         bool *found)
{
    size_t i = 0;
    while (i < u->n_roles &&
           bytes_cmp(u->roles[i].p, u->roles[i].len, role, len) < 0)
        i++;
    *found = i < u->n_roles && name_eq(&u->roles[i], role, len);
    return i;
}

static int user_grant_role(struct mvcc_store *s, const struct auth_req *q,
                           struct mvcc_arena *a)
{
    struct user u;
    int rc = user_get(s, q->name, q->name_len, a, &u);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EUSERNOTFOUND;
    if (rc != 0)
        return rc;
    /* the root role may be granted before it exists (etcd) */
    if (!is_root(q->role, q->role_len)) {
        struct role ro;
        rc = role_get(s, q->role, q->role_len, a, &ro);
        if (rc == CAIRN_ENOTFOUND)
            return CAIRN_EROLENOTFOUND;
        if (rc != 0)
            return rc;
    }
    bool found;
    size_t at = role_index(&u, q->role, q->role_len, &found);
    if (found)
        return 0; /* already granted: etcd answers OK and changes nothing */
    struct name *roles = mvcc_arena_alloc(a, (u.n_roles + 1) * sizeof(*roles));
    if (roles == NULL)
        return CAIRN_ENOMEM;
    if (at)
        memcpy(roles, u.roles, at * sizeof(*roles));
    roles[at] = (struct name){q->role, q->role_len};
    if (u.n_roles > at)
        memcpy(roles + at + 1, u.roles + at, (u.n_roles - at) * sizeof(*roles));
    u.roles = roles;
    u.n_roles++;
    return user_put(s, q->name, q->name_len, &u);
}

static int user_revoke_role(struct mvcc_store *s, const struct auth_req *q,
                            struct mvcc_arena *a)
{
    struct user u;
    int rc = user_get(s, q->name, q->name_len, a, &u);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EUSERNOTFOUND;
    if (rc != 0)
        return rc;
    bool found;
    size_t at = role_index(&u, q->role, q->role_len, &found);
    if (!found || u.roles == NULL) /* found implies roles; said for tidy */
        return CAIRN_EROLENOTGRANTED;
    memmove(u.roles + at, u.roles + at + 1,
            (u.n_roles - at - 1) * sizeof(*u.roles));
    u.n_roles--;
    return user_put(s, q->name, q->name_len, &u);
}

/* ---- roles ---- */

static int role_add(struct mvcc_store *s, const struct auth_req *q,
                    struct mvcc_arena *a)
{
    if (q->name_len == 0)
        return CAIRN_EROLEEMPTY;
    struct role ro;
    int rc = role_get(s, q->name, q->name_len, a, &ro);
    if (rc == 0)
        return CAIRN_EROLEEXISTS;
    if (rc != CAIRN_ENOTFOUND)
        return rc;
    memset(&ro, 0, sizeof(ro));
    return role_put(s, q->name, q->name_len, &ro);
}

static int role_read(struct mvcc_store *s, const struct auth_req *q,
                     struct mvcc_arena *a, struct auth_result *out)
{
    struct role ro;
    int rc = role_get(s, q->name, q->name_len, a, &ro);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EROLENOTFOUND;
    if (rc != 0)
        return rc;
    out->perms = ro.perms;
    out->n_perms = ro.n_perms;
    return 0;
}

/* Removes role from every user holding it (etcd's RoleDelete). */
struct revoke_scan {
    struct mvcc_store *s;
    struct mvcc_arena *a;
    const struct auth_req *q;
    struct name *users; /* users to rewrite: collected, then written */
    size_t n, cap;
};

static int revoke_scan_cb(void *arg, const uint8_t *key, size_t key_len,
                          const uint8_t *val, size_t val_len)
{
    struct revoke_scan *r = arg;
    struct user u;
    int rc = user_decode(val, val_len, r->a, &u);
    if (rc != 0)
        return rc;
    bool found;
    role_index(&u, r->q->name, r->q->name_len, &found);
    if (!found)
        return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 8;
        struct name *nn = mvcc_arena_alloc(r->a, cap * sizeof(*nn));
        if (nn == NULL)
            return CAIRN_ENOMEM;
        if (r->n)
            memcpy(nn, r->users, r->n * sizeof(*nn));
        r->users = nn;
        r->cap = cap;
    }
    const uint8_t *k = dup(r->a, key, key_len);
    if (k == NULL)
        return CAIRN_ENOMEM;
    r->users[r->n++] = (struct name){k, key_len};
    return 0;
}

static int role_delete(struct mvcc_store *s, const struct auth_req *q,
                       struct mvcc_arena *a)
{
    /* etcd refuses to delete root only while auth is enabled */
    int rc = mvcc_ext_del(s, AUTH_TABLE_ROLE, q->name, q->name_len);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EROLENOTFOUND;
    if (rc != 0)
        return rc;
    /* Writing while a cursor walks the table is not safe: collect first. */
    struct revoke_scan r = {s, a, q, NULL, 0, 0};
    rc = mvcc_ext_scan_batch(s, AUTH_TABLE_USER, &r, revoke_scan_cb);
    struct auth_req rq = {.op = AUTH_OP_USER_REVOKE_ROLE,
                          .role = q->name,
                          .role_len = q->name_len};
    for (size_t i = 0; rc == 0 && i < r.n; i++) {
        rq.name = r.users[i].p;
        rq.name_len = r.users[i].len;
        rc = user_revoke_role(s, &rq, a);
    }
    return rc;
}

static bool perm_same_range(const struct auth_perm *p, const uint8_t *key,
                            size_t key_len, const uint8_t *end, size_t end_len)
{
    return bytes_cmp(p->key, p->key_len, key, key_len) == 0 &&
           bytes_cmp(p->end, p->end_len, end, end_len) == 0;
}

static int role_grant_permission(struct mvcc_store *s, const struct auth_req *q,
                                 struct mvcc_arena *a)
{
    struct role ro;
    int rc = role_get(s, q->name, q->name_len, a, &ro);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EROLENOTFOUND;
    if (rc != 0)
        return rc;
    const struct auth_perm *np = &q->perm;
    /* etcd: the first permission whose key is >= the new key; if it has
     * the same key and range end its type is replaced, otherwise the new
     * one is added and the list sorted by key only. No merging of
     * overlapping ranges (3.4 merges them only in its permission cache). */
    size_t at = 0;
    while (at < ro.n_perms && bytes_cmp(ro.perms[at].key, ro.perms[at].key_len,
                                        np->key, np->key_len) < 0)
        at++;
    if (at < ro.n_perms && perm_same_range(&ro.perms[at], np->key, np->key_len,
                                           np->end, np->end_len)) {
        ro.perms[at].type = np->type;
    } else {
        /* after the permissions of an equal key: where a stable sort of
         * the appended one puts it */
        while (at < ro.n_perms &&
               bytes_cmp(ro.perms[at].key, ro.perms[at].key_len, np->key,
                         np->key_len) == 0)
            at++;
        memmove(ro.perms + at + 1, ro.perms + at,
                (ro.n_perms - at) * sizeof(*ro.perms));
        ro.perms[at] = *np;
        ro.n_perms++;
    }
    return role_put(s, q->name, q->name_len, &ro);
}

static int role_revoke_permission(struct mvcc_store *s,
                                  const struct auth_req *q,
                                  struct mvcc_arena *a)
{
    struct role ro;
    int rc = role_get(s, q->name, q->name_len, a, &ro);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EROLENOTFOUND;
    if (rc != 0)
        return rc;
    size_t k = 0;
    for (size_t i = 0; i < ro.n_perms; i++)
        if (!perm_same_range(&ro.perms[i], q->perm.key, q->perm.key_len,
                             q->perm.end, q->perm.end_len))
            ro.perms[k++] = ro.perms[i];
    if (k == ro.n_perms)
        return CAIRN_EPERMNOTGRANTED;
    ro.n_perms = k;
    return role_put(s, q->name, q->name_len, &ro);
}

/* etcd enables authentication once root exists and holds the root role;
 * cairn checks the same, then says it cannot enforce it. */
static int auth_enable(struct mvcc_store *s, struct mvcc_arena *a)
{
    struct user u;
    int rc = user_get(s, (const uint8_t *)AUTH_ROOT, 4, a, &u);
    if (rc == CAIRN_ENOTFOUND)
        return CAIRN_EROOTUSERNOTEXIST;
    if (rc != 0)
        return rc;
    bool found;
    role_index(&u, (const uint8_t *)AUTH_ROOT, 4, &found);
    return found ? CAIRN_EUNIMPLEMENTED : CAIRN_EROOTROLENOTEXIST;
}

int auth_apply(struct mvcc_store *s, const struct auth_req *q,
               struct mvcc_arena *a, struct auth_result *out)
{
    memset(out, 0, sizeof(*out));
    int rc = auth_req_check(q);
    if (rc != 0)
        return rc;
    switch (q->op) {
    case AUTH_OP_USER_ADD:
        return user_add(s, q, a);
    case AUTH_OP_USER_GET:
        return user_read(s, q, a, out);
    case AUTH_OP_USER_LIST:
        return list_names(s, AUTH_TABLE_USER, a, out);
    case AUTH_OP_USER_DELETE:
        return user_delete(s, q);
    case AUTH_OP_USER_CHANGE_PASSWORD:
        return user_change_password(s, q, a);
    case AUTH_OP_USER_GRANT_ROLE:
        return user_grant_role(s, q, a);
    case AUTH_OP_USER_REVOKE_ROLE:
        return user_revoke_role(s, q, a);
    case AUTH_OP_ROLE_ADD:
        return role_add(s, q, a);
    case AUTH_OP_ROLE_GET:
        return role_read(s, q, a, out);
    case AUTH_OP_ROLE_LIST:
        return list_names(s, AUTH_TABLE_ROLE, a, out);
    case AUTH_OP_ROLE_DELETE:
        return role_delete(s, q, a);
    case AUTH_OP_ROLE_GRANT_PERMISSION:
        return role_grant_permission(s, q, a);
    case AUTH_OP_ROLE_REVOKE_PERMISSION:
        return role_revoke_permission(s, q, a);
    case AUTH_OP_ENABLE:
        return auth_enable(s, a);
    case AUTH_OP_DISABLE:
        return 0; /* disabling a disabled store is OK (etcd) */
    default:
        CAIRN_UNREACHABLE();
    }
}
