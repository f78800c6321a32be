/* The linearizability checker: hand-made good and bad histories, and random
 * histories generated from a sequential execution (always accepted) or
 * corrupted by a read of a never-written value (always rejected). */
#include <stdio.h>

#include "lincheck.h"
#include "sim_tests.h"
#include "util/util.h"

/* Builds histories tersely: each helper appends one completed op. */
struct hb {
    struct lin_history h;
};

static void hb_init(struct hb *b)
{
    lin_history_init(&b->h, 100000);
}

static size_t add(struct hb *b, uint32_t client, enum lin_kind kind,
                  int64_t value, int64_t expect, uint64_t t0)
{
    size_t id;
    assert_int_equal(
        lin_history_invoke(&b->h, client, 0, kind, value, expect, t0, &id), 0);
    return id;
}

static void w(struct hb *b, int64_t v, uint64_t t0, uint64_t t1)
{
    size_t id = add(b, 0, LIN_WRITE, v, 0, t0);
    lin_history_complete(&b->h, id, LIN_OK, 0, false, t1);
}

static void w_unknown(struct hb *b, int64_t v, uint64_t t0)
{
    size_t id = add(b, 0, LIN_WRITE, v, 0, t0);
    lin_history_complete(&b->h, id, LIN_UNKNOWN, 0, false, t0);
}

static void w_failed(struct hb *b, int64_t v, uint64_t t0, uint64_t t1)
{
    size_t id = add(b, 0, LIN_WRITE, v, 0, t0);
    lin_history_complete(&b->h, id, LIN_FAILED, 0, false, t1);
}

static void r(struct hb *b, int64_t v, uint64_t t0, uint64_t t1)
{
    size_t id = add(b, 1, LIN_READ, 0, 0, t0);
    lin_history_complete(&b->h, id, LIN_OK, v, false, t1);
}

static void cas(struct hb *b, int64_t expect, int64_t v, bool swapped,
                uint64_t t0, uint64_t t1)
{
    size_t id = add(b, 2, LIN_CAS, v, expect, t0);
    lin_history_complete(&b->h, id, LIN_OK, 0, swapped, t1);
}

static void cas_unknown(struct hb *b, int64_t expect, int64_t v, uint64_t t0)
{
    size_t id = add(b, 2, LIN_CAS, v, expect, t0);
    lin_history_complete(&b->h, id, LIN_UNKNOWN, 0, false, t0);
}

static enum lin_result check(struct hb *b)
{
    struct lin_report rep;
    assert_int_equal(lin_check(b->h.ops, b->h.len, 0, 0, &rep), 0);
    lin_history_free(&b->h);
    return rep.result;
}

static void good_histories(void **state)
{
    (void)state;
    struct hb b;
    /* Sequential write then read. */
    hb_init(&b);
    w(&b, 1, 0, 1);
    r(&b, 1, 2, 3);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* A read concurrent with a write may see either value. */
    hb_init(&b);
    w(&b, 1, 0, 10);
    r(&b, 0, 1, 2);
    r(&b, 1, 3, 4);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* Two concurrent writes, read sees the one ordered last. */
    hb_init(&b);
    w(&b, 1, 0, 10);
    w(&b, 2, 1, 9);
    r(&b, 1, 11, 12);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* An unknown write may take effect long after its invoke... */
    hb_init(&b);
    w_unknown(&b, 1, 0);
    w(&b, 2, 5, 6);
    r(&b, 2, 7, 8);
    r(&b, 1, 9, 10);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* ...or never. */
    hb_init(&b);
    w_unknown(&b, 1, 0);
    r(&b, 0, 7, 8);
    r(&b, 0, 9, 10);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* A failed write is ignored. */
    hb_init(&b);
    w_failed(&b, 9, 0, 1);
    r(&b, 0, 2, 3);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* CAS chain and a failed compare. */
    hb_init(&b);
    cas(&b, 0, 1, true, 0, 1);
    cas(&b, 0, 2, false, 2, 3);
    cas(&b, 1, 3, true, 4, 5);
    r(&b, 3, 6, 7);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* Two concurrent CAS from 0: exactly one wins. */
    hb_init(&b);
    cas(&b, 0, 1, true, 0, 10);
    cas(&b, 0, 2, false, 1, 9);
    r(&b, 1, 11, 12);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* An unknown CAS that took effect. */
    hb_init(&b);
    cas_unknown(&b, 0, 5, 0);
    r(&b, 5, 3, 4);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
    /* Touching intervals count as concurrent. */
    hb_init(&b);
    w(&b, 1, 0, 5);
    r(&b, 0, 5, 6);
    assert_int_equal(check(&b), LIN_LINEARIZABLE);
}

static void bad_histories(void **state)
{
    (void)state;
    struct hb b;
    /* Stale read after an acknowledged write. */
    hb_init(&b);
    w(&b, 1, 0, 1);
    w(&b, 2, 2, 3);
    r(&b, 1, 4, 5);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* A lost acknowledged write. */
    hb_init(&b);
    w(&b, 1, 0, 1);
    r(&b, 0, 2, 3);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* A read of a value nobody wrote. */
    hb_init(&b);
    w(&b, 1, 0, 1);
    r(&b, 7, 2, 3);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* Two sequential CAS from the same value both succeeding. */
    hb_init(&b);
    cas(&b, 0, 1, true, 0, 1);
    cas(&b, 0, 2, true, 2, 3);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* Two concurrent CAS from the same value both succeeding. */
    hb_init(&b);
    cas(&b, 0, 1, true, 0, 10);
    cas(&b, 0, 2, true, 1, 9);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* A CAS that reports a failed compare although the value matched. */
    hb_init(&b);
    w(&b, 5, 0, 1);
    cas(&b, 5, 6, false, 2, 3);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* A successful CAS whose effect a later read does not see. */
    hb_init(&b);
    cas(&b, 0, 4, true, 0, 1);
    r(&b, 0, 2, 3);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* A value that was seen, then un-seen: once an unknown write is
     * visible it stays in effect. */
    hb_init(&b);
    w_unknown(&b, 1, 0);
    r(&b, 1, 2, 3);
    r(&b, 0, 4, 5);
    assert_int_equal(check(&b), LIN_VIOLATION);
    /* A failed write must not be seen. */
    hb_init(&b);
    w_failed(&b, 9, 0, 1);
    r(&b, 9, 2, 3);
    assert_int_equal(check(&b), LIN_VIOLATION);
}

static void report_names_the_key(void **state)
{
    (void)state;
    struct lin_history h;
    lin_history_init(&h, 16);
    size_t id;
    /* Key 3 is fine, key 8 has a lost write. */
    assert_int_equal(lin_history_invoke(&h, 0, 3, LIN_WRITE, 1, 0, 0, &id), 0);
    lin_history_complete(&h, id, LIN_OK, 0, false, 1);
    assert_int_equal(lin_history_invoke(&h, 0, 8, LIN_WRITE, 1, 0, 2, &id), 0);
    lin_history_complete(&h, id, LIN_OK, 0, false, 3);
    assert_int_equal(lin_history_invoke(&h, 1, 8, LIN_READ, 0, 0, 4, &id), 0);
    lin_history_complete(&h, id, LIN_OK, 0, false, 5);
    assert_int_equal(lin_history_invoke(&h, 1, 3, LIN_READ, 0, 0, 4, &id), 0);
    lin_history_complete(&h, id, LIN_OK, 1, false, 5);
    struct lin_report rep;
    assert_int_equal(lin_check(h.ops, h.len, 0, 0, &rep), 0);
    assert_int_equal(rep.result, LIN_VIOLATION);
    assert_int_equal(rep.key, 8);
    assert_int_equal(rep.key_ops, 2);
    assert_int_equal(rep.blocking_op, 2);
    char line[256];
    lin_op_format(&h.ops[rep.blocking_op], line, sizeof(line));
    assert_non_null(strstr(line, "read() -> 0"));
    /* The bound on the history holds. */
    lin_history_free(&h);
    lin_history_init(&h, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(lin_history_invoke(&h, 0, 0, LIN_READ, 0, 0, 0, &id),
                         0);
    assert_int_equal(lin_history_invoke(&h, 0, 0, LIN_READ, 0, 0, 0, &id),
                     CAIRN_EFULL);
    lin_history_free(&h);
}

/* Generates a concurrent history from a real sequential execution: clients
 * invoke, take effect atomically at a random later moment, complete later
 * still. Some outcomes are hidden (unknown) or the op is dropped (failed). */
static void random_history(struct prng *rng, struct lin_history *h, int nkeys,
                           int nclients, int nops)
{
    int64_t reg[4] = {0, 0, 0, 0};
    struct pending {
        bool busy;
        size_t id;
        int stage; /* 0 invoked, 1 took effect */
        bool drop; /* fails: never takes effect */
        bool hide; /* unknown outcome */
        int64_t result;
        bool swapped;
    } cl[8];
    memset(cl, 0, sizeof(cl));
    int64_t next_value = 1;
    int issued = 0;
    for (uint64_t t = 1; t < 100000; t++) {
        int c = (int)prng_below(rng, (uint64_t)nclients);
        struct pending *p = &cl[c];
        if (!p->busy) {
            if (issued == nops)
                continue;
            issued++;
            uint32_t key = (uint32_t)prng_below(rng, (uint64_t)nkeys);
            enum lin_kind kind = (enum lin_kind)prng_below(rng, 3);
            int64_t v = next_value++;
            int64_t expect = prng_chance(rng, 0.5) ? reg[key] : v - 2;
            assert_int_equal(lin_history_invoke(h, (uint32_t)c, key, kind, v,
                                                expect, t, &p->id),
                             0);
            p->busy = true;
            p->stage = 0;
            p->drop = prng_chance(rng, 0.05);
            p->hide = !p->drop && prng_chance(rng, 0.1);
        } else if (p->stage == 0) {
            struct lin_op *op = &h->ops[p->id];
            if (!p->drop && !(p->hide && prng_chance(rng, 0.3))) {
                int64_t *cell = &reg[op->key];
                p->result = *cell;
                p->swapped = false;
                if (op->kind == LIN_WRITE) {
                    *cell = op->value;
                } else if (op->kind == LIN_CAS && *cell == op->expect) {
                    *cell = op->value;
                    p->swapped = true;
                }
            }
            p->stage = 1;
        } else {
            enum lin_outcome o = p->drop   ? LIN_FAILED
                                 : p->hide ? LIN_UNKNOWN
                                           : LIN_OK;
            lin_history_complete(h, p->id, o, p->result, p->swapped, t);
            p->busy = false;
        }
        bool idle = issued == nops;
        for (int i = 0; i < nclients; i++)
            idle = idle && !cl[i].busy;
        if (idle)
            break;
    }
}

static void random_histories_accepted(void **state)
{
    (void)state;
    uint64_t steps = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct prng rng;
        prng_seed(&rng, seed);
        struct lin_history h;
        lin_history_init(&h, 10000);
        int nkeys = 1 + (int)prng_below(&rng, 4);
        int nclients = 1 + (int)prng_below(&rng, 6);
        random_history(&rng, &h, nkeys, nclients, 200);
        struct lin_report rep;
        assert_int_equal(lin_check(h.ops, h.len, 0, 0, &rep), 0);
        if (rep.result != LIN_LINEARIZABLE)
            fprintf(stderr, "seed %llu: result %d on key %u\n",
                    (unsigned long long)seed, rep.result, rep.key);
        assert_int_equal(rep.result, LIN_LINEARIZABLE);
        steps += rep.steps;
        lin_history_free(&h);
    }
    assert_true(steps > 0);
}

static void random_corrupted_rejected(void **state)
{
    (void)state;
    int rejected = 0, tried = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct prng rng;
        prng_seed(&rng, seed);
        struct lin_history h;
        lin_history_init(&h, 10000);
        random_history(&rng, &h, 2, 4, 120);
        /* A successful read of a value no operation wrote can never be
         * linearized. */
        size_t victim = h.len;
        for (size_t i = 0; i < h.len; i++) {
            size_t j = (i + (size_t)prng_below(&rng, h.len)) % h.len;
            if (h.ops[j].kind == LIN_READ && h.ops[j].outcome == LIN_OK) {
                victim = j;
                break;
            }
        }
        if (victim < h.len) {
            tried++;
            h.ops[victim].value = -1000;
            struct lin_report rep;
            assert_int_equal(lin_check(h.ops, h.len, 0, 0, &rep), 0);
            assert_int_equal(rep.result, LIN_VIOLATION);
            rejected++;
        }
        lin_history_free(&h);
    }
    assert_true(tried > 100);
    assert_int_equal(rejected, tried);
}

static void budget_gives_up(void **state)
{
    (void)state;
    /* Many fully concurrent writes and an impossible read: the search must
     * explore many orders; a budget of 50 steps is too small. */
    struct hb b;
    hb_init(&b);
    for (int i = 0; i < 12; i++)
        w(&b, i + 1, 0, 100);
    r(&b, 999, 101, 102);
    struct lin_report rep;
    assert_int_equal(lin_check(b.h.ops, b.h.len, 0, 50, &rep), 0);
    assert_int_equal(rep.result, LIN_GAVE_UP);
    /* With the default budget memoisation makes it quick and it is caught. */
    assert_int_equal(lin_check(b.h.ops, b.h.len, 0, 0, &rep), 0);
    assert_int_equal(rep.result, LIN_VIOLATION);
    lin_history_free(&b.h);
}

int test_lincheck_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(good_histories),
        cmocka_unit_test(bad_histories),
        cmocka_unit_test(report_names_the_key),
        cmocka_unit_test(random_histories_accepted),
        cmocka_unit_test(random_corrupted_rejected),
        cmocka_unit_test(budget_gives_up),
    };
    return cmocka_run_group_tests_name("lincheck", tests, NULL, NULL);
}
