/* Node tests of the less travelled requests: lease TTL checkpoints, the
 * NOSPACE alarm, strict reconfiguration checks, learners and their
 * promotion, compaction, and the maintenance calls (status, hashes,
 * defragment, snapshot export, alarms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka needs setjmp.h and stdarg.h first. */
#include <cmocka.h>

#include "harness.h"
#include "tests_node.h"

/* The leader checkpoints remaining TTLs, so a follower (and a future
 * leader) knows a lease is partly spent. */
static void test_lease_checkpoints(void **state)
{
    (void)state;
    struct h_opts o = {.checkpoint_interval_ms = 2000};
    struct h_cluster c;
    h_cluster_init_opts(&c, 3, NULL, false, &o);
    struct h_member *l = h_elect(&c, 1);
    struct h_result g = {0};
    assert_int_equal(node_lease_grant(l->n, 0, 100, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, 0);
    struct h_result t = {0};
    assert_int_equal(node_lease_ttl(c.m[2].n, g.lease_id, false, &t, h_done),
                     0);
    assert_int_equal(t.ttl_s, 100);
    h_tick(&c, 60); /* 6 s */
    assert_int_equal(node_lease_ttl(c.m[2].n, g.lease_id, false, &t, h_done),
                     0);
    assert_true(t.ttl_s < 100);
    assert_true(t.ttl_s >= 90);
    /* Keys attached are listed. */
    struct mvcc_put_req p = {
        .key = (const uint8_t *)"a", .key_len = 1, .lease = g.lease_id};
    struct h_result pr = {0};
    assert_int_equal(node_put(l->n, &p, &pr, h_done), 0);
    h_run(&c);
    assert_int_equal(pr.err, 0);
    assert_int_equal(node_lease_ttl(l->n, g.lease_id, true, &t, h_done), 0);
    assert_int_equal(t.n_keys, 1);
    /* Answers that change nothing carry the current revision, as etcd's. */
    assert_true(pr.rev > 0);
    assert_int_equal(t.rev, pr.rev);
    struct h_result ls = {0};
    assert_int_equal(node_lease_list(c.m[1].n, &ls, h_done), 0);
    assert_int_equal(ls.count, 1);
    assert_int_equal(ls.rev, pr.rev);
    /* Revoke by request. */
    struct h_result rv = {0};
    assert_int_equal(node_lease_revoke(c.m[1].n, g.lease_id, &rv, h_done), 0);
    h_run(&c);
    assert_int_equal(rv.err, 0);
    assert_int_equal(node_lease_revoke(l->n, g.lease_id, &rv, h_done), 0);
    h_run(&c);
    assert_int_equal(rv.err, CAIRN_ELEASENOTFOUND);
    h_cluster_free(&c);
}

/* Past the quota a put is refused and the NOSPACE alarm raised on every
 * member; disarming it lets writes in again once space is there. */
static void test_nospace_alarm(void **state)
{
    (void)state;
    struct h_opts o = {.quota_bytes = 256 * 1024};
    struct h_cluster c;
    h_cluster_init_opts(&c, 1, NULL, false, &o);
    struct h_member *m = h_elect(&c, 1);
    char *v = malloc(40000);
    memset(v, 'x', 39999);
    v[39999] = 0;
    int refused = 0;
    char k[16];
    for (int i = 0; i < 40 && !refused; i++) {
        struct h_result p;
        snprintf(k, sizeof(k), "k%d", i);
        int rc = h_put(m, k, v, &p);
        if (rc == CAIRN_EQUOTA) {
            refused = 1;
            break;
        }
        assert_int_equal(rc, 0);
        h_run(&c);
        if (p.err == CAIRN_EQUOTA)
            refused = 1;
        else
            assert_int_equal(p.err, 0);
    }
    assert_true(refused);
    h_run(&c);
    struct h_result al = {0};
    assert_int_equal(node_alarm(m->n, NODE_ALARM_GET, 0, 0, &al, h_done), 0);
    assert_int_equal(al.n_alarms, 1);
    /* While the alarm is on, even a small put is refused when applied. */
    struct h_result p;
    int rc = h_put(m, "small", "1", &p);
    if (rc == 0) {
        h_run(&c);
        assert_int_equal(p.err, CAIRN_EQUOTA);
    } else {
        assert_int_equal(rc, CAIRN_EQUOTA);
    }
    /* A second member's NOSPACE alarm: as etcd, writes stay capped until
     * the last one is cleared, and each answer lists the alarm it raised
     * or cleared (etcdctl alarm disarm prints them). */
    struct h_result a2 = {0};
    assert_int_equal(node_alarm(m->n, NODE_ALARM_ACTIVATE, 2,
                                NODE_ALARM_NOSPACE, &a2, h_done),
                     0);
    h_run(&c);
    assert_int_equal(a2.err, 0);
    assert_int_equal(a2.n_alarms, 1);
    struct h_result d = {0};
    assert_int_equal(node_alarm(m->n, NODE_ALARM_DEACTIVATE, 1,
                                NODE_ALARM_NOSPACE, &d, h_done),
                     0);
    h_run(&c);
    assert_int_equal(d.err, 0);
    assert_int_equal(d.n_alarms, 1);
    assert_true(mvcc_alarm_active(m->s));
    struct h_result d2 = {0};
    assert_int_equal(node_alarm(m->n, NODE_ALARM_DEACTIVATE, 1,
                                NODE_ALARM_NOSPACE, &d2, h_done),
                     0);
    h_run(&c);
    assert_int_equal(d2.err, 0);
    assert_int_equal(d2.n_alarms, 0); /* was not raised */
    struct h_result d3 = {0};
    assert_int_equal(node_alarm(m->n, NODE_ALARM_DEACTIVATE, 2,
                                NODE_ALARM_NOSPACE, &d3, h_done),
                     0);
    h_run(&c);
    assert_int_equal(d3.err, 0);
    assert_int_equal(d3.n_alarms, 1);
    assert_false(mvcc_alarm_active(m->s));
    assert_int_equal(node_alarm(m->n, NODE_ALARM_GET, 0, 0, &al, h_done), 0);
    assert_int_equal(al.n_alarms, 0);
    free(v);
    h_cluster_free(&c);
}

/* With --strict-reconfig-check, a removal that would leave the active
 * voters short of a quorum is refused. */
static void test_strict_reconfig(void **state)
{
    (void)state;
    struct node_config base = {.strict_reconfig_check = true};
    struct h_cluster c;
    h_cluster_init(&c, 3, &base);
    struct h_member *l = h_elect(&c, 1);
    c.m[2].cut = true;
    /* Long enough for the leader to see member 3 inactive. */
    h_tick(&c, 25);
    assert_true(node_is_leader(l->n));
    struct h_result r = {0};
    assert_int_equal(node_member_remove(l->n, 2, &r, h_done),
                     CAIRN_EUNHEALTHYCLUSTER);
    struct node_member nm = {.n_peer_urls = 1};
    strcpy(nm.peer_urls[0], "http://127.0.0.1:7777");
    assert_int_equal(node_member_add(l->n, &nm, &r, h_done),
                     CAIRN_EUNHEALTHYCLUSTER);
    /* Removing the inactive one is fine. */
    assert_int_equal(node_member_remove(l->n, 3, &r, h_done), 0);
    h_run(&c);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.n_members, 2);
    h_cluster_free(&c);
}

/* A learner joins, catches up, and is promoted; promoting a voter, a
 * second learner and moving leadership to a learner are refused. */
static void test_learner_promote(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct node_member nm = {.n_peer_urls = 1, .is_learner = true};
    strcpy(nm.peer_urls[0], "http://127.0.0.1:8888");
    struct h_result a = {0};
    assert_int_equal(node_member_add(l->n, &nm, &a, h_done), 0);
    h_run(&c);
    assert_int_equal(a.err, 0);
    assert_true(a.is_learner);
    struct h_result pr = {0};
    assert_int_equal(node_member_promote(l->n, 2, &pr, h_done),
                     CAIRN_EMEMBERNOTLEARNER);
    /* Not caught up yet: it has not even started. */
    assert_int_equal(node_member_promote(l->n, a.member_id, &pr, h_done),
                     CAIRN_ELEARNERNOTREADY);
    /* etcd allows one learner (membership's maxLearners). */
    struct node_member nm2 = {.n_peer_urls = 1, .is_learner = true};
    strcpy(nm2.peer_urls[0], "http://127.0.0.1:8887");
    assert_int_equal(node_member_add(l->n, &nm2, &pr, h_done),
                     CAIRN_ETOOMANYLEARNERS);
    /* Nor can leadership move to a learner (or a stranger). */
    assert_int_equal(node_move_leader(l->n, a.member_id, &pr, h_done),
                     CAIRN_EBADLEADERTRANSFEREE);
    assert_int_equal(node_move_leader(l->n, 12345, &pr, h_done),
                     CAIRN_EBADLEADERTRANSFEREE);
    assert_int_equal(pr.calls, 0);
    struct h_member *j = h_member_add(&c, a.member_id);
    h_member_start(j, false);
    h_tick(&c, 5);
    struct node_status st;
    node_status_get(j->n, &st);
    assert_true(st.is_learner);
    assert_int_equal(node_member_promote(l->n, a.member_id, &pr, h_done), 0);
    h_run(&c);
    assert_int_equal(pr.err, 0);
    assert_false(pr.is_learner);
    assert_int_equal(pr.n_members, 4);
    h_tick(&c, 2);
    node_status_get(j->n, &st);
    assert_false(st.is_learner);
    /* Member update: new peer URLs. */
    struct node_member up = {.id = a.member_id, .n_peer_urls = 1};
    strcpy(up.peer_urls[0], "http://127.0.0.1:8889");
    struct h_result u = {0};
    assert_int_equal(node_member_update(j->n, &up, &u, h_done), 0);
    h_run(&c);
    assert_int_equal(u.err, 0);
    struct node_member list[8];
    size_t k = node_members(c.m[1].n, list, 8);
    assert_int_equal(k, 4);
    bool seen = false;
    for (size_t i = 0; i < k; i++)
        if (list[i].id == a.member_id) {
            assert_string_equal(list[i].peer_urls[0], "http://127.0.0.1:8889");
            assert_false(list[i].is_learner);
            seen = true;
        }
    assert_true(seen);
    h_cluster_free(&c);
}

static void test_maintenance(void **state)
{
    (void)state;
    struct h_cluster c;
    h_cluster_init(&c, 3, NULL);
    struct h_member *l = h_elect(&c, 1);
    struct h_result p;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(h_put(l, "k", "v", &p), 0);
        h_run(&c);
        assert_int_equal(p.err, 0);
    }
    /* Compact below the last revision: older reads fail. */
    struct h_result cr = {0};
    assert_int_equal(node_compact(c.m[1].n, p.rev - 1, false, &cr, h_done), 0);
    h_run(&c);
    assert_int_equal(cr.err, 0);
    struct mvcc_range_req q = {
        .key = (const uint8_t *)"k", .key_len = 1, .revision = p.rev - 2};
    struct h_result g = {0};
    assert_int_equal(node_range(c.m[2].n, &q, false, &g, h_done), 0);
    h_run(&c);
    assert_int_equal(g.err, CAIRN_EREVCOMPACTED);
    /* Status. */
    struct h_result st = {0};
    assert_int_equal(node_status(c.m[2].n, &st, h_done), 0);
    assert_int_equal(st.calls, 1);
    struct node_status s;
    node_status_get(c.m[2].n, &s);
    assert_true(s.leader == 1);
    assert_true(s.applied_index == node_applied_index(l->n));
    assert_true(s.db_bytes > 0);
    /* Hashes agree on every member. */
    struct h_result h1 = {0}, h2 = {0};
    assert_int_equal(node_hash(l->n, &h1, h_done), 0);
    assert_int_equal(node_hash(c.m[1].n, &h2, h_done), 0);
    assert_int_equal(h1.err, 0);
    assert_true(h_hash_kv(l) == h_hash_kv(&c.m[1]));
    /* Defragment runs on the apply side, between batches. */
    struct h_result df = {0};
    assert_int_equal(node_defragment(c.m[1].n, &df, h_done), 0);
    assert_int_equal(df.calls, 0);
    h_run(&c);
    assert_int_equal(df.calls, 1);
    assert_int_equal(df.err, 0);
    assert_true(h_hash_kv(l) == h_hash_kv(&c.m[1]));
    /* Snapshot export into a file. */
    char path[256];
    snprintf(path, sizeof(path), "%s/export.db", c.root);
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    assert_true(fd >= 0);
    struct h_result ex = {0};
    assert_int_equal(node_snapshot_export(l->n, fd, &ex, h_done), 0);
    h_run(&c);
    close(fd);
    assert_int_equal(ex.calls, 1);
    assert_int_equal(ex.err, 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_true(sb.st_size > 0);
    /* Alarms: activate CORRUPT for member 2 and list it everywhere. */
    struct h_result a = {0};
    assert_int_equal(node_alarm(l->n, NODE_ALARM_ACTIVATE, 2,
                                NODE_ALARM_CORRUPT, &a, h_done),
                     0);
    h_run(&c);
    assert_int_equal(a.err, 0);
    struct h_result al = {0};
    assert_int_equal(node_alarm(c.m[2].n, NODE_ALARM_GET, 0, 0, &al, h_done),
                     0);
    assert_int_equal(al.n_alarms, 1);
    assert_int_equal(node_alarm(l->n, 9, 2, NODE_ALARM_CORRUPT, &a, h_done),
                     CAIRN_EINVAL);
    h_cluster_free(&c);
}

/* Every allocation on the way of a put, a linearizable read and a lease
 * grant fails in turn: the node never crashes, every accepted request is
 * answered exactly once, and a member that did not stop serves a write
 * afterwards. */
static void test_allocation_failures(void **state)
{
    (void)state;
    int stopped = 0, clean = 0;
    for (int k = 0; k < 400; k++) {
        struct h_cluster c;
        h_cluster_init(&c, 1, NULL);
        c.tolerate_apply_errors = true;
        struct h_member *m = h_elect(&c, 1);
        struct h_result p, g, l;
        memset(&l, 0, sizeof(l));
        cairn_mem_fault_set(k, 1);
        int rp = h_put(m, "k", "v", &p);
        int rg = h_get(m, "k", false, &g);
        int rl = node_lease_grant(m->n, 0, 10, &l, h_done);
        h_run(&c);
        h_tick(&c, 2);
        cairn_mem_fault_set(-1, 0);
        /* Past the request timeout: a result lost to a failed allocation
         * on the apply side ends as CAIRN_ETIMEOUT. */
        h_tick(&c, 80);
        if (rp == 0)
            assert_int_equal(p.calls, 1);
        else
            assert_int_equal(p.calls, 0);
        if (rg == 0)
            assert_int_equal(g.calls, 1);
        if (rl == 0)
            assert_int_equal(l.calls, 1);
        if (node_stopped(m->n, NULL)) {
            stopped++;
        } else {
            struct h_result q;
            assert_int_equal(h_put(m, "after", "1", &q), 0);
            h_run(&c);
            assert_int_equal(q.calls, 1);
            assert_int_equal(q.err, 0);
            if (rp == 0 && rg == 0 && rl == 0 && p.err == 0 && g.err == 0 &&
                l.err == 0)
                clean++;
        }
        h_cluster_free(&c);
    }
    /* Some failures stopped the member, and late ones hit nothing. */
    assert_true(stopped > 0);
    assert_true(clean > 0);
}

/* Gathered proposals (the server's per-turn batching): nothing reaches
 * raft before node_flush_proposals; then the three puts leave as one
 * persist of three entries and one append per follower, and each is
 * answered with its own revision. A refusal at the flush (a leadership
 * transfer under way) answers every gathered waiter with it, once. */
static void test_gathered_proposals(void **state)
{
    (void)state;
    struct h_cluster c;
    struct h_opts o = {.gather_proposals = true};
    h_cluster_init_opts(&c, 3, NULL, false, &o);
    struct h_member *l = h_leader(&c);
    assert_non_null(l);
    struct h_member *f = &c.m[l == &c.m[0] ? 1 : 0];
    uint64_t persists = l->persists_issued;
    uint64_t entries = l->entries_persisted;
    uint64_t apps = l->sent_by_type[RAFT_MSG_APP];
    struct h_result r[3];
    const char *keys[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(h_put(l, keys[i], "v", &r[i]), 0);
    assert_int_equal(l->proposals_queued, 1);
    assert_int_equal(l->persists_issued, persists);
    assert_int_equal(l->sent_by_type[RAFT_MSG_APP], apps);
    assert_int_equal(node_flush_proposals(l->n), 0);
    assert_int_equal(l->persists_issued, persists + 1);
    assert_int_equal(l->entries_persisted, entries + 3);
    assert_int_equal(l->sent_by_type[RAFT_MSG_APP], apps + 2);
    h_run(&c);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].err, 0);
        if (i > 0)
            assert_int_equal(r[i].rev, r[i - 1].rev + 1);
    }
    /* Nothing gathered: a flush does nothing. */
    assert_int_equal(node_flush_proposals(l->n), 0);
    assert_int_equal(l->persists_issued, persists + 1);

    /* Gathered on the leader, which then starts handing leadership to a
     * follower cut off (so the transfer stays pending): raft refuses
     * proposals meanwhile, and the flush answers both with that, once. */
    struct h_result q[2], mv;
    assert_int_equal(h_put(l, "d", "v", &q[0]), 0);
    assert_int_equal(h_put(l, "e", "v", &q[1]), 0);
    assert_int_equal(l->proposals_queued, 2);
    f->cut = true;
    memset(&mv, 0, sizeof(mv));
    assert_int_equal(node_move_leader(l->n, f->id, &mv, h_done), 0);
    assert_int_equal(q[0].calls, 0);
    assert_int_equal(node_flush_proposals(l->n), 0);
    h_run(&c);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(q[i].calls, 1);
        assert_int_equal(q[i].err, CAIRN_ETRANSFERRING);
    }
    h_cluster_free(&c);
}

int node_test_ops(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lease_checkpoints),
        cmocka_unit_test(test_nospace_alarm),
        cmocka_unit_test(test_strict_reconfig),
        cmocka_unit_test(test_learner_promote),
        cmocka_unit_test(test_maintenance),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_gathered_proposals),
    };
    return cmocka_run_group_tests_name("node ops", tests, NULL, NULL);
}
