/* Node tests of the user and role store: requests proposed on any member
 * and answered once applied, every member's store holding the same
 * records (also one caught up by snapshot and one restarted from its WAL),
 * and refusals before proposing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "harness.h"
#include "tests_node.h"

struct a_result {
    int calls;
    int err;
    uint8_t type;
    char names[256]; /* joined by ',' */
    size_t n_perms;
};

static void a_done(void *arg, const struct node_result *r)
{
    struct a_result *a = arg;
    a->calls++;
    a->err = r->err;
    a->type = r->type;
    a->names[0] = 0;
    if (r->err != 0)
        return;
    for (size_t i = 0; i < r->u.auth.n_names; i++)
        snprintf(a->names + strlen(a->names),
                 sizeof(a->names) - strlen(a->names), "%s%s", i ? "," : "",
                 r->u.auth.names[i]);
    a->n_perms = r->u.auth.n_perms;
}

/* One request on m, run to its answer; returns its error. */
static int a_req(struct h_cluster *c, struct h_member *m, uint8_t op,
                 const char *name, const char *role, struct a_result *out)
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
    q.password = (const uint8_t *)"$2b$04$hash";
    q.password_len = op == AUTH_OP_USER_ADD ? 11 : 0;
    struct a_result scratch;
    struct a_result *a = out ? out : &scratch;
    memset(a, 0, sizeof(*a));
    assert_int_equal(node_auth(m->n, &q, a, a_done), 0);
    h_run(c);
    assert_int_equal(a->calls, 1);
    assert_int_equal(a->type, NODE_REQ_AUTH);
    return a->err;
}

/* The user names in m's own store, joined by ','. */
static int scan_cb(void *arg, const uint8_t *key, size_t key_len,
                   const uint8_t *val, size_t val_len)
{
    (void)val;
    (void)val_len;
    char *s = arg;
    snprintf(s + strlen(s), 256 - strlen(s), "%s%.*s", s[0] ? "," : "",
             (int)key_len, (const char *)key);
    return 0;
}
static void stored_users(struct h_member *m, char out[256])
{
    out[0] = 0;
    assert_int_equal(mvcc_ext_scan(m->s, AUTH_TABLE_USER, out, scan_cb), 0);
}

static void test_auth_replicated(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *f = &c.m[1];
    struct a_result r;
    /* proposed on a follower, applied everywhere */
    assert_int_equal(a_req(&c, f, AUTH_OP_USER_ADD, "bob", NULL, NULL), 0);
    assert_int_equal(a_req(&c, l, AUTH_OP_USER_ADD, "bob", NULL, NULL),
                     CAIRN_EUSEREXISTS);
    assert_int_equal(a_req(&c, l, AUTH_OP_ROLE_ADD, "r1", NULL, NULL), 0);
    assert_int_equal(
        a_req(&c, c.m + 2, AUTH_OP_USER_GRANT_ROLE, "bob", "r1", NULL), 0);
    assert_int_equal(a_req(&c, f, AUTH_OP_USER_GET, "bob", NULL, &r), 0);
    assert_string_equal(r.names, "r1");
    assert_int_equal(a_req(&c, c.m + 2, AUTH_OP_USER_LIST, NULL, NULL, &r), 0);
    assert_string_equal(r.names, "bob");
    assert_int_equal(a_req(&c, l, AUTH_OP_ROLE_GET, "nope", NULL, &r),
                     CAIRN_EROLENOTFOUND);
    char users[256];
    for (size_t i = 0; i < 3; i++) {
        stored_users(&c.m[i], users);
        assert_string_equal(users, "bob");
    }
    /* Hash covers the store, HashKV only the key space (as etcd's), and
     * members hold the same bytes (the hash was made before proposing) */
    uint32_t kv0 = h_hash_kv(l), h0, h1;
    mvcc_rev rev;
    assert_int_equal(mvcc_hash(l->s, &h0, &rev), 0);
    assert_int_equal(mvcc_hash(f->s, &h1, &rev), 0);
    assert_true(h0 == h1);
    assert_int_equal(a_req(&c, l, AUTH_OP_USER_ADD, "carol", NULL, NULL), 0);
    assert_true(h_hash_kv(l) == kv0);
    assert_int_equal(mvcc_hash(l->s, &h1, &rev), 0);
    assert_true(h1 != h0);
    assert_int_equal(mvcc_hash(c.m[2].s, &h0, &rev), 0);
    assert_true(h1 == h0);
    /* refused before proposing: nothing to wait for */
    char big[AUTH_NAME_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    struct auth_req q = {.op = AUTH_OP_USER_ADD,
                         .name = (const uint8_t *)big,
                         .name_len = strlen(big)};
    assert_int_equal(node_auth(l->n, &q, &r, a_done), CAIRN_ETOOBIG);
    q = (struct auth_req){.op = 99};
    assert_int_equal(node_auth(l->n, &q, &r, a_done), CAIRN_EINVAL);
    h_cluster_free(&c);
}

/* A follower cut off while users are added catches up by snapshot and
 * holds them; members restarted from their WAL keep them. */
static void test_auth_snapshot_and_restart(void **state)
{
    (void)state;
    struct node_config base = {.snapshot_count = 10,
                               .snapshot_catchup_entries = 3};
    struct h_cluster c;
    h_cluster_init_wal(&c, 3, &base, true);
    struct h_member *l = h_elect(&c, 1);
    struct h_member *lag = &c.m[2];
    lag->cut = true;
    char name[16], want[256] = "";
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "u%02d", i);
        assert_int_equal(a_req(&c, l, AUTH_OP_USER_ADD, name, NULL, NULL), 0);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s",
                 i ? "," : "", name);
    }
    assert_true(l->snapshots_done >= 2);
    uint64_t snaps = l->sent_by_type[RAFT_MSG_SNAP];
    lag->cut = false;
    h_tick(&c, 10);
    assert_true(l->sent_by_type[RAFT_MSG_SNAP] > snaps);
    assert_true(node_applied_index(lag->n) == node_applied_index(l->n));
    char users[256];
    stored_users(lag, users);
    assert_string_equal(users, want);
    h_member_restart(lag);
    stored_users(lag, users);
    assert_string_equal(users, want);
    h_member_restart(l);
    struct h_member *nl = h_leader(&c);
    assert_non_null(nl);
    h_tick(&c, 3);
    struct a_result r;
    assert_int_equal(a_req(&c, nl, AUTH_OP_USER_LIST, NULL, NULL, &r), 0);
    assert_string_equal(r.names, want);
    stored_users(l, users);
    assert_string_equal(users, want);
    h_cluster_free(&c);
}

int node_test_auth(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth_replicated),
        cmocka_unit_test(test_auth_snapshot_and_restart),
    };
    return cmocka_run_group_tests_name("node auth", tests, NULL, NULL);
}
