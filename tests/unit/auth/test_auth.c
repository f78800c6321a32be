/* Auth store tests: every operation's answers and errors as etcd 3.4's
 * auth store gives them with authentication disabled, reads inside the
 * batch that wrote, a role delete revoking it from its users, permission
 * grants (replace on the same range, sorted by key, no merging), records
 * surviving reopen, an aborted batch leaving nothing, and a model check
 * of random operations against a naive in-memory store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "auth/auth.h"
#include "util/util.h"

struct fx {
    char dir[64];
    struct mvcc_store *s;
    struct mvcc_arena a;
    uint64_t ci;
};

static void fx_open(struct fx *f)
{
    struct mvcc_options o = {.dir = f->dir, .quota_bytes = 64u << 20};
    struct cairn_errmsg em = {{0}};
    assert_int_equal(mvcc_open(&o, &f->s, &em), 0);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/cairn-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    fx_open(f);
    mvcc_arena_init(&f->a);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    mvcc_close(f->s);
    mvcc_arena_free(&f->a);
    char p[128];
    snprintf(p, sizeof(p), "%s/data.mdb", f->dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/lock.mdb", f->dir);
    unlink(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

#define S(x) (const uint8_t *)(x), strlen(x)

/* One request in its own batch (committed), as one applied entry. */
static int run(struct fx *f, const struct auth_req *q, struct auth_result *out)
{
    struct auth_result scratch;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    int rc = auth_apply(f->s, q, &f->a, out ? out : &scratch);
    assert_int_equal(mvcc_batch_commit(f->s, ++f->ci), 0);
    return rc;
}

static int op2(struct fx *f, uint8_t op, const char *name, const char *role)
{
    struct auth_req q = {.op = op};
    if (name) {
        q.name = (const uint8_t *)name;
        q.name_len = strlen(name);
    }
    if (role) {
        q.role = (const uint8_t *)role;
        q.role_len = strlen(role);
    }
    if (op == AUTH_OP_USER_ADD || op == AUTH_OP_USER_CHANGE_PASSWORD) {
        q.password = (const uint8_t *)"$2b$04$hash";
        q.password_len = 11;
    }
    return run(f, &q, NULL);
}

static int perm(struct fx *f, uint8_t op, const char *role, const char *key,
                const char *end, uint8_t type)
{
    struct auth_req q = {.op = op, .name = S(role)};
    q.perm = (struct auth_perm){type, S(key), S(end)};
    return run(f, &q, NULL);
}

/* The names of a list or a user's roles joined by ',' */
static void names(struct fx *f, uint8_t op, const char *name, int want_rc,
                  const char *want)
{
    struct auth_req q = {.op = op};
    if (name) {
        q.name = (const uint8_t *)name;
        q.name_len = strlen(name);
    }
    struct auth_result r;
    assert_int_equal(run(f, &q, &r), want_rc);
    char got[512] = "";
    for (size_t i = 0; i < r.n_names; i++) {
        if (i)
            strcat(got, ",");
        strcat(got, r.names[i]);
    }
    assert_string_equal(got, want);
}

/* A role's permissions as "type:key-end;..." */
static void perms(struct fx *f, const char *role, int want_rc, const char *want)
{
    struct auth_req q = {.op = AUTH_OP_ROLE_GET, .name = S(role)};
    struct auth_result r;
    assert_int_equal(run(f, &q, &r), want_rc);
    char got[512] = "";
    for (size_t i = 0; i < r.n_perms; i++) {
        const struct auth_perm *p = &r.perms[i];
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%u:%.*s-%.*s",
                 i ? ";" : "", p->type, (int)p->key_len, (const char *)p->key,
                 (int)p->end_len, (const char *)p->end);
    }
    assert_string_equal(got, want);
}

static void test_users(void **state)
{
    struct fx *f = *state;
    names(f, AUTH_OP_USER_LIST, NULL, 0, "");
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "", NULL), CAIRN_EUSEREMPTY);
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "bob", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "bob", NULL), CAIRN_EUSEREXISTS);
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "alice", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "al", NULL), 0);
    names(f, AUTH_OP_USER_LIST, NULL, 0, "al,alice,bob");
    names(f, AUTH_OP_USER_GET, "bob", 0, "");
    names(f, AUTH_OP_USER_GET, "carol", CAIRN_EUSERNOTFOUND, "");
    assert_int_equal(op2(f, AUTH_OP_USER_CHANGE_PASSWORD, "carol", NULL),
                     CAIRN_EUSERNOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_USER_CHANGE_PASSWORD, "bob", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_DELETE, "carol", NULL),
                     CAIRN_EUSERNOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_USER_DELETE, "al", NULL), 0);
    names(f, AUTH_OP_USER_LIST, NULL, 0, "alice,bob");
    /* root may be deleted while auth is disabled */
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "root", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_DELETE, "root", NULL), 0);
}

static void test_grant_revoke_role(void **state)
{
    struct fx *f = *state;
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "bob", "r1"),
                     CAIRN_EUSERNOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "bob", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "bob", "r1"),
                     CAIRN_EROLENOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_ROLE_ADD, "", NULL), CAIRN_EROLEEMPTY);
    assert_int_equal(op2(f, AUTH_OP_ROLE_ADD, "r1", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_ROLE_ADD, "r1", NULL), CAIRN_EROLEEXISTS);
    assert_int_equal(op2(f, AUTH_OP_ROLE_ADD, "r0", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "bob", "r1"), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "bob", "r1"), 0);
    /* root needs no role record to be granted */
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "bob", "root"), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "bob", "r0"), 0);
    names(f, AUTH_OP_USER_GET, "bob", 0, "r0,r1,root");
    names(f, AUTH_OP_ROLE_LIST, NULL, 0, "r0,r1");
    assert_int_equal(op2(f, AUTH_OP_USER_REVOKE_ROLE, "bob", "r9"),
                     CAIRN_EROLENOTGRANTED);
    assert_int_equal(op2(f, AUTH_OP_USER_REVOKE_ROLE, "eve", "r1"),
                     CAIRN_EUSERNOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_USER_REVOKE_ROLE, "bob", "root"), 0);
    names(f, AUTH_OP_USER_GET, "bob", 0, "r0,r1");
    /* deleting a role revokes it from every user */
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "amy", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "amy", "r1"), 0);
    assert_int_equal(op2(f, AUTH_OP_ROLE_DELETE, "r9", NULL),
                     CAIRN_EROLENOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_ROLE_DELETE, "r1", NULL), 0);
    names(f, AUTH_OP_USER_GET, "bob", 0, "r0");
    names(f, AUTH_OP_USER_GET, "amy", 0, "");
    names(f, AUTH_OP_ROLE_LIST, NULL, 0, "r0");
}

static void test_permissions(void **state)
{
    struct fx *f = *state;
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "a", "", 0),
                     CAIRN_EROLENOTFOUND);
    assert_int_equal(op2(f, AUTH_OP_ROLE_ADD, "r", NULL), 0);
    perms(f, "r", 0, "");
    perms(f, "x", CAIRN_EROLENOTFOUND, "");
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "m", "", 0),
                     0);
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "c", "f", 1),
                     0);
    /* overlapping ranges are kept apart, not merged */
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "d", "z", 2),
                     0);
    /* same key, another end: a new entry after the first */
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "c", "e", 0),
                     0);
    perms(f, "r", 0, "1:c-f;0:c-e;2:d-z;0:m-");
    /* same key and end: the type is replaced */
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "m", "", 2),
                     0);
    perms(f, "r", 0, "1:c-f;0:c-e;2:d-z;2:m-");
    assert_int_equal(perm(f, AUTH_OP_ROLE_REVOKE_PERMISSION, "r", "c", "z", 0),
                     CAIRN_EPERMNOTGRANTED);
    assert_int_equal(perm(f, AUTH_OP_ROLE_REVOKE_PERMISSION, "q", "c", "z", 0),
                     CAIRN_EROLENOTFOUND);
    assert_int_equal(perm(f, AUTH_OP_ROLE_REVOKE_PERMISSION, "r", "c", "f", 0),
                     0);
    perms(f, "r", 0, "0:c-e;2:d-z;2:m-");
    /* a bad permission type is refused before anything is stored */
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r", "a", "", 3),
                     CAIRN_EINVAL);
}

static void test_enable(void **state)
{
    struct fx *f = *state;
    assert_int_equal(op2(f, AUTH_OP_ENABLE, NULL, NULL),
                     CAIRN_EROOTUSERNOTEXIST);
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "root", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_ENABLE, NULL, NULL),
                     CAIRN_EROOTROLENOTEXIST);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "root", "root"), 0);
    assert_int_equal(op2(f, AUTH_OP_ENABLE, NULL, NULL), CAIRN_EUNIMPLEMENTED);
    assert_int_equal(op2(f, AUTH_OP_DISABLE, NULL, NULL), 0);
    /* still disabled: root may be deleted */
    assert_int_equal(op2(f, AUTH_OP_USER_DELETE, "root", NULL), 0);
}

static void test_limits(void **state)
{
    struct fx *f = *state;
    char big[AUTH_NAME_MAX + 2];
    memset(big, 'n', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, big, NULL), CAIRN_ETOOBIG);
    big[AUTH_NAME_MAX] = 0;
    assert_int_equal(op2(f, AUTH_OP_USER_ADD, big, NULL), 0);
    struct auth_req q = {
        .op = AUTH_OP_ROLE_ADD, .name = (const uint8_t *)"a\0b", .name_len = 3};
    assert_int_equal(run(f, &q, NULL), CAIRN_EINVAL);
    q.op = 0;
    assert_int_equal(auth_req_check(&q), CAIRN_EINVAL);
    q.op = AUTH_OP_MAX + 1;
    assert_int_equal(auth_req_check(&q), CAIRN_EINVAL);
}

/* Reads in the batch that wrote see its writes; an aborted batch leaves
 * nothing; records survive a reopen. */
static void test_batch_and_reopen(void **state)
{
    struct fx *f = *state;
    assert_int_equal(mvcc_batch_begin(f->s), 0);
    struct auth_result r;
    struct auth_req q = {.op = AUTH_OP_USER_ADD, .name = S("u1")};
    assert_int_equal(auth_apply(f->s, &q, &f->a, &r), 0);
    q = (struct auth_req){.op = AUTH_OP_USER_LIST};
    assert_int_equal(auth_apply(f->s, &q, &f->a, &r), 0);
    assert_int_equal(r.n_names, 1);
    mvcc_batch_abort(f->s);
    names(f, AUTH_OP_USER_LIST, NULL, 0, "");

    assert_int_equal(op2(f, AUTH_OP_USER_ADD, "u2", NULL), 0);
    assert_int_equal(op2(f, AUTH_OP_ROLE_ADD, "r2", NULL), 0);
    assert_int_equal(perm(f, AUTH_OP_ROLE_GRANT_PERMISSION, "r2", "k", "", 1),
                     0);
    assert_int_equal(op2(f, AUTH_OP_USER_GRANT_ROLE, "u2", "r2"), 0);
    mvcc_close(f->s);
    fx_open(f);
    names(f, AUTH_OP_USER_GET, "u2", 0, "r2");
    perms(f, "r2", 0, "1:k-");
}

/* ---- model: random operations against a naive store ---- */

#define M_NAMES 5
struct model {
    bool user[M_NAMES], role[M_NAMES];
    bool granted[M_NAMES][M_NAMES]; /* user x role */
    int perm[M_NAMES][M_NAMES];     /* role x key: -1 none, else type */
};
static const char *mname[M_NAMES] = {"a", "b", "root", "d", "e"};

static int model_apply(struct model *m, uint8_t op, int x, int y, int t)
{
    switch (op) {
    case AUTH_OP_USER_ADD:
        if (m->user[x])
            return CAIRN_EUSEREXISTS;
        m->user[x] = true;
        return 0;
    case AUTH_OP_USER_DELETE:
        if (!m->user[x])
            return CAIRN_EUSERNOTFOUND;
        m->user[x] = false;
        memset(m->granted[x], 0, sizeof(m->granted[x]));
        return 0;
    case AUTH_OP_USER_GRANT_ROLE:
        if (!m->user[x])
            return CAIRN_EUSERNOTFOUND;
        if (!m->role[y] && y != 2)
            return CAIRN_EROLENOTFOUND;
        m->granted[x][y] = true;
        return 0;
    case AUTH_OP_USER_REVOKE_ROLE:
        if (!m->user[x])
            return CAIRN_EUSERNOTFOUND;
        if (!m->granted[x][y])
            return CAIRN_EROLENOTGRANTED;
        m->granted[x][y] = false;
        return 0;
    case AUTH_OP_ROLE_ADD:
        if (m->role[x])
            return CAIRN_EROLEEXISTS;
        m->role[x] = true;
        for (int k = 0; k < M_NAMES; k++)
            m->perm[x][k] = -1;
        return 0;
    case AUTH_OP_ROLE_DELETE:
        if (!m->role[x])
            return CAIRN_EROLENOTFOUND;
        m->role[x] = false;
        for (int u = 0; u < M_NAMES; u++)
            m->granted[u][x] = false;
        return 0;
    case AUTH_OP_ROLE_GRANT_PERMISSION:
        if (!m->role[x])
            return CAIRN_EROLENOTFOUND;
        m->perm[x][y] = t;
        return 0;
    case AUTH_OP_ROLE_REVOKE_PERMISSION:
        if (!m->role[x])
            return CAIRN_EROLENOTFOUND;
        if (m->perm[x][y] < 0)
            return CAIRN_EPERMNOTGRANTED;
        m->perm[x][y] = -1;
        return 0;
    }
    CAIRN_UNREACHABLE();
}

/* mname in byte order: a, b, d, e, root */
static const int order[M_NAMES] = {0, 1, 3, 4, 2};

static void model_check(struct fx *f, const struct model *m)
{
    char want[256] = "";
    for (int i = 0; i < M_NAMES; i++)
        if (m->user[order[i]])
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
                     want[0] ? "," : "", mname[order[i]]);
    names(f, AUTH_OP_USER_LIST, NULL, 0, want);
    for (int u = 0; u < M_NAMES; u++) {
        if (!m->user[u])
            continue;
        want[0] = 0;
        for (int k = 0; k < M_NAMES; k++)
            if (m->granted[u][order[k]])
                snprintf(want + strlen(want), sizeof(want) - strlen(want),
                         "%s%s", want[0] ? "," : "", mname[order[k]]);
        names(f, AUTH_OP_USER_GET, mname[u], 0, want);
    }
    for (int r = 0; r < M_NAMES; r++) {
        if (!m->role[r])
            continue;
        want[0] = 0;
        for (int k = 0; k < M_NAMES; k++)
            if (m->perm[r][k] >= 0)
                snprintf(want + strlen(want), sizeof(want) - strlen(want),
                         "%s%d:k%d-", want[0] ? ";" : "", m->perm[r][k], k);
        perms(f, mname[r], 0, want);
    }
}

static void test_model(void **state)
{
    struct fx *f = *state;
    uint64_t seed = 1;
    const char *env = getenv("CAIRN_TEST_SEED");
    if (env)
        seed = strtoull(env, NULL, 0);
    struct prng rng;
    prng_seed(&rng, seed);
    struct model m;
    memset(&m, 0, sizeof(m));
    static const uint8_t ops[] = {AUTH_OP_USER_ADD,
                                  AUTH_OP_USER_DELETE,
                                  AUTH_OP_USER_GRANT_ROLE,
                                  AUTH_OP_USER_REVOKE_ROLE,
                                  AUTH_OP_ROLE_ADD,
                                  AUTH_OP_ROLE_DELETE,
                                  AUTH_OP_ROLE_GRANT_PERMISSION,
                                  AUTH_OP_ROLE_REVOKE_PERMISSION};
    for (int step = 0; step < 2000; step++) {
        uint8_t op = ops[prng_next(&rng) % sizeof(ops)];
        int x = (int)(prng_next(&rng) % M_NAMES);
        int y = (int)(prng_next(&rng) % M_NAMES);
        int t = (int)(prng_next(&rng) % 3);
        int want = model_apply(&m, op, x, y, t);
        int got;
        char key[8];
        snprintf(key, sizeof(key), "k%d", y);
        if (op == AUTH_OP_ROLE_GRANT_PERMISSION ||
            op == AUTH_OP_ROLE_REVOKE_PERMISSION)
            got = perm(f, op, mname[x], key, "", (uint8_t)t);
        else
            got = op2(f, op, mname[x], mname[y]);
        if (got != want)
            print_error("seed %llu step %d op %u: got %d want %d\n",
                        (unsigned long long)seed, step, op, got, want);
        assert_int_equal(got, want);
        if (step % 100 == 99) {
            model_check(f, &m);
            mvcc_arena_reset(&f->a);
        }
    }
    model_check(f, &m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grant_revoke_role, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_permissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
