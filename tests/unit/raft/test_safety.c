/* The paper's five guarantees (Figure 3) checked after every step of
 * random runs: election safety, leader append-only, log matching, leader
 * completeness, state machine safety; with message loss, duplication,
 * reordering, partitions, restarts, compaction, membership changes and
 * transfers; and liveness once everything heals. */
#include "tests.h"

#include <stdio.h>
#include <string.h>

struct leader_view {
    raft_term term;
    raft_index last;
    raft_term terms[H_MAX_APPLIED];
};

static struct leader_view views[H_MAX_NODES + 1];

static void check_leaders(struct h_net *net)
{
    raft_index max_committed = 0;
    for (raft_index i = 1; i < H_MAX_APPLIED; i++)
        if (net->committed_term[i] != 0)
            max_committed = i;
    for (int k = 1; k <= net->n; k++) {
        struct h_node *nd = &net->nodes[k];
        if (!nd->up || nd->r->role != RAFT_LEADER) {
            views[k].term = 0;
            continue;
        }
        const struct raft_log *l = &nd->r->log;
        raft_index last = raft__log_last_index(l);
        raft_index first = raft__log_first_index(l);
        struct leader_view *v = &views[k];
        /* Leader append-only: within its term, nothing it had changes. */
        if (v->term == nd->r->term) {
            assert_true(last >= v->last);
            for (raft_index i = first; i <= v->last; i++)
                assert_int_equal(raft__log_term_or_zero(l, i), v->terms[i]);
        }
        v->term = nd->r->term;
        v->last = last;
        assert_true(last < H_MAX_APPLIED);
        for (raft_index i = first; i <= last; i++)
            v->terms[i] = raft__log_term_or_zero(l, i);
        /* Leader completeness: every entry committed in an earlier term
         * is in this leader's log (a stale leader of an older term may
         * lack entries committed since). */
        for (raft_index i = first; i <= max_committed; i++) {
            raft_term ct = net->committed_term[i];
            if (ct != 0 && net->committed_by[i] < nd->r->term)
                assert_int_equal(raft__log_term_or_zero(l, i), ct);
        }
    }
}

static void random_run(uint64_t seed, int steps, bool verbose_fail)
{
    (void)verbose_fail;
    struct prng p;
    prng_seed(&p, seed);
    struct raft_config c;
    h_default_config(&c);
    c.seed = seed;
    c.pre_vote = prng_chance(&p, 0.5);
    c.check_quorum = prng_chance(&p, 0.5);
    c.max_size_per_msg = prng_chance(&p, 0.5) ? 0 : 64;
    c.max_inflight_msgs = 1 + (unsigned)prng_below(&p, 8);
    int n = 3 + (int)prng_below(&p, 3);
    static struct h_net net;
    h_init(&net, n, n, &c);
    /* Some members have a lazy disk: writes wait for a sync, a crash
     * loses what was not synced. */
    for (int k = 1; k <= n; k++)
        net.nodes[k].lazy = prng_chance(&p, 0.5);
    /* Some report a received snapshot's entries before the snapshot. */
    for (int k = 1; k <= n; k++)
        net.nodes[k].entries_first = prng_chance(&p, 0.5);
    memset(views, 0, sizeof(views));
    int proposals = 0;
    char val[32];
    for (int step = 0; step < steps; step++) {
        uint64_t what = prng_below(&p, 100);
        raft_id id = 1 + prng_below(&p, (uint64_t)net.n);
        /* Requests (proposals, reads, changes) go to the leader most of
         * the time, as clients learn where it is. */
        raft_id lead = h_leader(&net);
        bool request = (what >= 61 && what < 76) || (what >= 95 && what < 99);
        if (request && lead != RAFT_NONE && prng_chance(&p, 0.7))
            id = lead;
        struct h_node *nd = &net.nodes[id];
        if (what < 30) {
            /* One message, in any order; sometimes lost or duplicated. */
            if (net.nq > 0) {
                size_t i = (size_t)prng_below(&p, net.nq);
                uint64_t fate = prng_below(&p, 20);
                if (fate == 0)
                    h_drop_at(&net, i);
                else
                    h_deliver_at(&net, i, fate == 1);
            }
        } else if (what < 40) {
            h_deliver(&net, 20);
        } else if (what < 41) {
            h_deliver(&net, 100000);
        } else if (what < 56) {
            /* Time passes for everyone... */
            for (int k = 1; k <= net.n; k++)
                if (net.nodes[k].up)
                    h_tick(&net, (raft_id)k, 1);
        } else if (what < 61) {
            /* ...or for one member (clock skew). */
            if (nd->up)
                h_tick(&net, id, 1);
        } else if (what < 73) {
            if (nd->up && proposals < 1500) {
                snprintf(val, sizeof(val), "v%d", proposals++);
                h_propose(&net, id, val);
            }
        } else if (what < 76) {
            if (nd->up)
                h_read(&net, id, (uint64_t)step + 1);
        } else if (what < 79) {
            raft_id b = 1 + prng_below(&p, (uint64_t)net.n);
            if (b != id)
                h_cut(&net, id, b);
        } else if (what < 82) {
            h_heal(&net);
        } else if (what < 84) {
            /* Crashes are brief: a member that is down restarts first. */
            raft_id down = RAFT_NONE;
            for (int k = 1; k <= net.n; k++)
                if (!net.nodes[k].up)
                    down = (raft_id)k;
            if (down != RAFT_NONE)
                h_start(&net, down);
            else
                h_crash(&net, id);
        } else if (what < 92) {
            h_sync(&net, id);
        } else if (what < 95) {
            if (nd->up)
                h_compact(&net, id);
        } else if (what < 96) {
            raft_id to = 1 + prng_below(&p, (uint64_t)net.n);
            if (nd->up)
                h_transfer(&net, id, to);
        } else if (what < 99) {
            /* Demote or promote someone, or swap a voter and a learner
             * jointly; followers forward, the leader decides if it may. */
            raft_id who = 1 + prng_below(&p, (uint64_t)net.n);
            const struct raft_conf_state *cs = nd->up ? &nd->r->conf : NULL;
            if (cs != NULL && raft__conf_is_joint(cs)) {
                /* Leave an explicit joint configuration. */
                h_conf(&net, id, RAFT_CC_TRANSITION_AUTO, 0);
            } else if (cs != NULL && cs->n_learners > 0 &&
                       prng_chance(&p, 0.6) && raft__conf_is_voter(cs, who)) {
                uint8_t tr = prng_chance(&p, 0.5)
                                 ? RAFT_CC_TRANSITION_JOINT_EXPLICIT
                                 : RAFT_CC_TRANSITION_AUTO;
                h_conf(&net, id, tr, 2, RAFT_CC_ADD_LEARNER, (int)who,
                       RAFT_CC_ADD_NODE, (int)cs->learners[0]);
            } else if (cs != NULL) {
                bool learner = raft__conf_is_learner(cs, who);
                if (learner || cs->n_voters > 2)
                    h_conf(&net, id, RAFT_CC_TRANSITION_AUTO, 1,
                           learner ? RAFT_CC_ADD_NODE : RAFT_CC_ADD_LEARNER,
                           (int)who);
            }
        } else {
            if (nd->up)
                h_campaign(&net, id);
        }
        check_leaders(&net);
        if (step % 16 == 0)
            h_check_safety(&net);
    }
    /* Liveness: heal everything, restart everyone down; a leader emerges
     * and a new proposal commits everywhere within a bound. */
    h_heal(&net);
    for (int k = 1; k <= net.n; k++) {
        if (!net.nodes[k].up)
            h_start(&net, (raft_id)k);
        /* Not lazy first: the sync reports every installation. */
        net.nodes[k].lazy = false;
        h_sync(&net, (raft_id)k);
    }
    /* Without PreVote a member with a stale log may disrupt a few
     * elections before a good candidate times out first: the bound is in
     * election rounds, not one. */
    raft_id l = RAFT_NONE;
    bool proposed = false;
    for (int rounds = 0; rounds < 600; rounds++) {
        for (int k = 1; k <= net.n; k++)
            h_tick(&net, (raft_id)k, 1);
        h_deliver(&net, 100000);
        check_leaders(&net);
        l = h_leader(&net);
        if (l == RAFT_NONE)
            continue;
        if (!proposed) {
            proposed = h_propose(&net, l, "final") == 0;
            continue;
        }
        bool all = true;
        for (int k = 1; all && k <= net.n; k++)
            all = h_commit(&net, (raft_id)k) == h_last(&net, l) &&
                  h_term(&net, (raft_id)k) == h_term(&net, l);
        if (all && h_commit(&net, l) == h_last(&net, l))
            break;
    }
    bool converged = l != RAFT_NONE;
    for (int k = 1; converged && k <= net.n; k++)
        converged = h_commit(&net, (raft_id)k) == h_last(&net, l);
    if (!converged) {
        /* Say what the members look like before failing. */
        for (int k = 1; k <= net.n; k++) {
            char line[256];
            raft_describe(net.nodes[k].r, line, sizeof(line));
            const struct raft_conf_state *cs = &net.nodes[k].r->conf;
            print_message("seed %llu: %s voters=%u learners=%u joint=%d\n",
                          (unsigned long long)seed, line, cs->n_voters,
                          cs->n_learners, (int)raft__conf_is_joint(cs));
        }
        if (l != RAFT_NONE) {
            struct raft_status st;
            raft_status_get(net.nodes[l].r, &st);
            for (uint32_t i = 0; i < st.n_progress; i++)
                print_message("  pr %llu match=%llu next=%llu state=%s "
                              "paused=%d active=%d infl=%u\n",
                              (unsigned long long)st.progress[i].id,
                              (unsigned long long)st.progress[i].match,
                              (unsigned long long)st.progress[i].next,
                              raft_progress_state_name(st.progress[i].state),
                              (int)st.progress[i].probe_sent,
                              (int)st.progress[i].recent_active,
                              st.progress[i].inflight_count);
        }
    }
    assert_true(converged);
    h_check_safety(&net);
    h_close(&net);
}

static void test_random_runs(void **state)
{
    (void)state;
    uint64_t base = test_seed();
    int runs = test_scale(40);
    for (int i = 0; i < runs; i++) {
        uint64_t seed = base + (uint64_t)i;
        print_message("safety run seed %llu\n", (unsigned long long)seed);
        random_run(seed, 1500, true);
    }
}

static void test_determinism(void **state)
{
    (void)state;
    /* Same config, storage and events: byte-identical updates. */
    uint64_t hashes[2];
    for (int rep = 0; rep < 2; rep++) {
        struct h_net net;
        struct raft_config c;
        h_default_config(&c);
        c.seed = 99;
        c.pre_vote = true;
        h_init(&net, 3, 3, &c);
        uint64_t h = 0;
        for (int step = 0; step < 300; step++) {
            for (raft_id k = 1; k <= 3; k++)
                h_tick(&net, k, 1);
            if (step % 7 == 0 && h_leader(&net) != RAFT_NONE)
                h_propose(&net, h_leader(&net), "d");
            for (size_t i = 0; i < net.nq; i++)
                for (size_t b = 0; b < net.q[i].bytes.len; b++)
                    h = (h ^ net.q[i].bytes.data[b]) * 0x100000001b3ull;
            h_deliver(&net, 100000);
        }
        hashes[rep] = h;
        h_close(&net);
    }
    assert_true(hashes[0] == hashes[1]);
}

int test_safety_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_runs),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests_name("raft_safety", tests, NULL, NULL);
}
