/* The binary encoding: round trips of random messages, entries,
 * configurations and changes, and malformed input rejected without a
 * crash (every truncation, random corruption). */
#include "tests.h"

#include <string.h>

static void random_conf(struct prng *p, struct raft_conf_state *cs)
{
    memset(cs, 0, sizeof(*cs));
    cs->n_voters = (uint32_t)prng_below(p, 6);
    for (uint32_t i = 0; i < cs->n_voters; i++)
        cs->voters[i] = 1 + prng_below(p, 1000000);
    cs->n_learners = (uint32_t)prng_below(p, 3);
    for (uint32_t i = 0; i < cs->n_learners; i++)
        cs->learners[i] = 1 + prng_below(p, 1u << 30);
    cs->n_voters_outgoing = (uint32_t)prng_below(p, 3);
    for (uint32_t i = 0; i < cs->n_voters_outgoing; i++)
        cs->voters_outgoing[i] = 1 + prng_next(p) / 2;
    cs->n_learners_next = (uint32_t)prng_below(p, 2);
    for (uint32_t i = 0; i < cs->n_learners_next; i++)
        cs->learners_next[i] = 7;
    cs->auto_leave = prng_chance(p, 0.5);
}

static uint8_t payload[4096];

static void random_message(struct prng *p, struct raft_message *m,
                           struct raft_entry *ents, struct raft_snapshot *s)
{
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)(1 + prng_below(p, RAFT_MSG_TYPE_MAX));
    m->reject = prng_chance(p, 0.3);
    m->transfer = prng_chance(p, 0.2);
    m->from = prng_next(p);
    m->to = prng_below(p, 10);
    m->term = prng_below(p, 1000);
    m->log_term = prng_next(p);
    m->index = prng_below(p, 1u << 20);
    m->commit = prng_below(p, 300);
    m->reject_hint = prng_below(p, 5);
    m->ctx = prng_next(p);
    m->n_entries = (size_t)prng_below(p, 5);
    for (size_t i = 0; i < m->n_entries; i++) {
        ents[i].term = prng_below(p, 100);
        ents[i].index = m->index + i + 1;
        ents[i].type = (uint8_t)prng_below(p, 3);
        ents[i].len = (size_t)prng_below(p, 300);
        ents[i].data = ents[i].len ? payload + prng_below(p, 1000) : NULL;
    }
    m->entries = ents;
    if (prng_chance(p, 0.3)) {
        s->meta.index = prng_next(p);
        s->meta.term = prng_below(p, 99);
        random_conf(p, &s->meta.conf);
        s->len = (size_t)prng_below(p, 100);
        s->data = s->len ? payload + 7 : NULL;
        m->snapshot = s;
    }
}

static void assert_same_message(const struct raft_message *a,
                                const struct raft_message *b)
{
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->reject, b->reject);
    assert_int_equal(a->transfer, b->transfer);
    assert_true(a->from == b->from && a->to == b->to && a->term == b->term);
    assert_true(a->log_term == b->log_term && a->index == b->index);
    assert_true(a->commit == b->commit && a->reject_hint == b->reject_hint);
    assert_true(a->ctx == b->ctx);
    assert_int_equal(a->n_entries, b->n_entries);
    for (size_t i = 0; i < a->n_entries; i++) {
        assert_true(a->entries[i].term == b->entries[i].term);
        assert_true(a->entries[i].index == b->entries[i].index);
        assert_int_equal(a->entries[i].type, b->entries[i].type);
        assert_int_equal(a->entries[i].len, b->entries[i].len);
        if (a->entries[i].len)
            assert_memory_equal(a->entries[i].data, b->entries[i].data,
                                a->entries[i].len);
    }
    assert_int_equal(a->snapshot != NULL, b->snapshot != NULL);
    if (a->snapshot != NULL) {
        assert_true(a->snapshot->meta.index == b->snapshot->meta.index);
        assert_true(a->snapshot->meta.term == b->snapshot->meta.term);
        assert_true(raft_conf_state_equal(&a->snapshot->meta.conf,
                                          &b->snapshot->meta.conf));
        assert_int_equal(a->snapshot->len, b->snapshot->len);
        if (a->snapshot->len)
            assert_memory_equal(a->snapshot->data, b->snapshot->data,
                                a->snapshot->len);
    }
}

static void test_message_round_trip(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 10);
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)prng_next(&p);
    int iters = test_scale(3000);
    for (int it = 0; it < iters; it++) {
        struct raft_message m, d;
        struct raft_entry ents[8];
        struct raft_snapshot s;
        random_message(&p, &m, ents, &s);
        struct buf b = BUF_INIT;
        assert_int_equal(raft_message_encode(&m, &b), 0);
        assert_int_equal(raft_message_decode(b.data, b.len, &d), 0);
        assert_same_message(&m, &d);
        raft_message_decoded_free(&d);
        /* Every strict prefix is malformed; every extension too. */
        for (size_t cut = 0; cut < b.len; cut += 1 + b.len / 40)
            assert_int_equal(raft_message_decode(b.data, cut, &d),
                             CAIRN_EMALFORMED);
        assert_int_equal(buf_append_u8(&b, 0), 0);
        assert_int_equal(raft_message_decode(b.data, b.len, &d),
                         CAIRN_EMALFORMED);
        buf_free(&b);
    }
}

static void test_message_corruption(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 11);
    int iters = test_scale(3000);
    int accepted = 0;
    for (int it = 0; it < iters; it++) {
        struct raft_message m, d;
        struct raft_entry ents[8];
        struct raft_snapshot s;
        random_message(&p, &m, ents, &s);
        struct buf b = BUF_INIT;
        assert_int_equal(raft_message_encode(&m, &b), 0);
        int flips = 1 + (int)prng_below(&p, 4);
        for (int f = 0; f < flips; f++)
            b.data[prng_below(&p, b.len)] = (uint8_t)prng_next(&p);
        /* Any answer is fine but a crash or a leak (ASan checks those); a
         * decoded message must be self-consistent. */
        int rv = raft_message_decode(b.data, b.len, &d);
        assert_true(rv == 0 || rv == CAIRN_EMALFORMED);
        if (rv == 0) {
            accepted++;
            for (size_t i = 0; i < d.n_entries; i++)
                assert_true(
                    d.entries[i].data == NULL ||
                    (d.entries[i].data >= b.data &&
                     d.entries[i].data + d.entries[i].len <= b.data + b.len));
            raft_message_decoded_free(&d);
        }
        buf_free(&b);
    }
    /* Some corruptions hit only values, and decode fine. */
    assert_true(accepted > 0);
    /* Pure garbage too. */
    uint8_t junk[64];
    for (int it = 0; it < test_scale(5000); it++) {
        size_t len = (size_t)prng_below(&p, sizeof(junk));
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)prng_next(&p);
        struct raft_message d;
        if (raft_message_decode(junk, len, &d) == 0)
            raft_message_decoded_free(&d);
    }
}

static void test_huge_counts_rejected(void **state)
{
    (void)state;
    /* A message claiming 2^60 entries must not allocate for them. */
    uint8_t b[64];
    size_t off = 0;
    b[off++] = RAFT_MSG_APP;
    b[off++] = 0;
    for (int i = 0; i < 8; i++)
        b[off++] = 1;
    off += varint_put(b + off, 1ull << 60);
    struct raft_message d;
    assert_int_equal(raft_message_decode(b, off, &d), CAIRN_EMALFORMED);
    /* Unknown type and unknown flags. */
    b[0] = 0;
    assert_int_equal(raft_message_decode(b, off, &d), CAIRN_EMALFORMED);
    b[0] = RAFT_MSG_TYPE_MAX + 1;
    assert_int_equal(raft_message_decode(b, off, &d), CAIRN_EMALFORMED);
    b[0] = RAFT_MSG_APP;
    b[1] = 0x80;
    assert_int_equal(raft_message_decode(b, off, &d), CAIRN_EMALFORMED);
}

static void test_entry_round_trip(void **state)
{
    (void)state;
    uint8_t data[5] = {1, 2, 3, 4, 5};
    struct raft_entry e = {
        .term = 7, .index = 1ull << 40, .type = 2, .data = data, .len = 5};
    struct buf b = BUF_INIT;
    assert_int_equal(raft_entry_encode(&e, &b), 0);
    struct raft_entry d;
    assert_int_equal(raft_entry_decode(b.data, b.len, &d), 0);
    assert_true(d.term == 7 && d.index == (1ull << 40) && d.type == 2);
    assert_int_equal(d.len, 5);
    assert_memory_equal(d.data, data, 5);
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(raft_entry_decode(b.data, cut, &d), CAIRN_EMALFORMED);
    b.data[7] = 9; /* the type byte: after term (1) and index (6) */
    assert_int_equal(raft_entry_decode(b.data, b.len, &d), CAIRN_EMALFORMED);
    buf_free(&b);
}

static void test_conf_state_round_trip(void **state)
{
    (void)state;
    struct prng p;
    prng_seed(&p, test_seed() + 12);
    for (int it = 0; it < test_scale(2000); it++) {
        struct raft_conf_state cs, d;
        random_conf(&p, &cs);
        uint8_t b[RAFT_CONF_STATE_ENCODED_MAX];
        size_t len = raft_conf_state_encode(&cs, b);
        assert_true(len <= sizeof(b));
        assert_int_equal(raft_conf_state_decode(b, len, &d), 0);
        assert_true(raft_conf_state_equal(&cs, &d));
        assert_int_equal(d.n_voters, cs.n_voters);
        for (size_t cut = 0; cut < len; cut++)
            assert_int_equal(raft_conf_state_decode(b, cut, &d),
                             CAIRN_EMALFORMED);
    }
    /* The largest configuration fits the documented bound. */
    struct raft_conf_state big = {.n_voters = RAFT_CONF_MAX,
                                  .n_learners = RAFT_CONF_MAX,
                                  .n_voters_outgoing = RAFT_CONF_MAX,
                                  .n_learners_next = RAFT_CONF_MAX};
    for (int i = 0; i < RAFT_CONF_MAX; i++)
        big.voters[i] = big.learners[i] = big.voters_outgoing[i] =
            big.learners_next[i] = UINT64_MAX;
    uint8_t b[RAFT_CONF_STATE_ENCODED_MAX];
    assert_true(raft_conf_state_encode(&big, b) <= sizeof(b));
    /* Too many ids, a zero id. */
    uint8_t bad[4] = {0, RAFT_CONF_MAX + 1, 0, 0};
    struct raft_conf_state d;
    assert_int_equal(raft_conf_state_decode(bad, 4, &d), CAIRN_EMALFORMED);
    uint8_t zero[6] = {0, 1, 0, 0, 0, 0};
    assert_int_equal(raft_conf_state_decode(zero, 6, &d), CAIRN_EMALFORMED);
}

static void test_conf_change_round_trip(void **state)
{
    (void)state;
    struct raft_conf_change cc = {
        .transition = RAFT_CC_TRANSITION_JOINT_EXPLICIT, .n_changes = 3};
    cc.changes[0] = (struct raft_conf_change_item){RAFT_CC_ADD_NODE, 4};
    cc.changes[1] = (struct raft_conf_change_item){RAFT_CC_REMOVE_NODE, 1};
    cc.changes[2] = (struct raft_conf_change_item){RAFT_CC_ADD_LEARNER, 9};
    cc.context = (const uint8_t *)"http://x";
    cc.context_len = 8;
    uint8_t b[128];
    size_t len = raft_conf_change_encode(&cc, b);
    assert_int_equal(len, raft_conf_change_encoded_size(&cc));
    struct raft_conf_change d;
    assert_int_equal(raft_conf_change_decode(b, len, &d), 0);
    assert_int_equal(d.transition, cc.transition);
    assert_int_equal(d.n_changes, 3);
    assert_true(d.changes[1].node == 1 &&
                d.changes[1].type == RAFT_CC_REMOVE_NODE);
    assert_int_equal(d.context_len, 8);
    assert_memory_equal(d.context, "http://x", 8);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(raft_conf_change_decode(b, cut, &d), CAIRN_EMALFORMED);
    b[0] = 3; /* unknown transition */
    assert_int_equal(raft_conf_change_decode(b, len, &d), CAIRN_EMALFORMED);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(raft_msg_type_name(RAFT_MSG_APP), "MsgApp");
    assert_string_equal(raft_msg_type_name(RAFT_MSG_TRANSFER_LEADER),
                        "MsgTransferLeader");
    assert_string_equal(raft_msg_type_name(99), "MsgUnknown");
    assert_string_equal(raft_role_name(RAFT_PRE_CANDIDATE), "pre-candidate");
    assert_string_equal(raft_progress_state_name(RAFT_PROGRESS_SNAPSHOT),
                        "snapshot");
}

int test_codec_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_round_trip),
        cmocka_unit_test(test_message_corruption),
        cmocka_unit_test(test_huge_counts_rejected),
        cmocka_unit_test(test_entry_round_trip),
        cmocka_unit_test(test_conf_state_round_trip),
        cmocka_unit_test(test_conf_change_round_trip),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("raft_codec", tests, NULL, NULL);
}
