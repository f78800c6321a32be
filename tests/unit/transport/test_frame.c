/* The peer protocol's bytes: handshake and answer round trips, frames
 * parsed whole, in pieces and corrupted, as docs/transport.md lays out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "tests.h"
#include "transport/transport_int.h"

static void handshake_roundtrip(void **state)
{
    (void)state;
    struct tp_handshake hs = {TRANSPORT_PROTOCOL_VERSION, TP_KIND_SNAPSHOT,
                              0x1122334455667788ull, 7, 9};
    uint8_t b[TP_HANDSHAKE_BYTES];
    tp__handshake_encode(b, &hs);
    /* The layout the document shows: magic, then little-endian fields. */
    assert_memory_equal(b, "CRNP", 4);
    assert_int_equal(b[4], 1);
    assert_int_equal(b[6], TP_KIND_SNAPSHOT);
    assert_int_equal(b[8], 0x88);
    assert_int_equal(b[16], 7);
    assert_int_equal(b[24], 9);
    struct tp_handshake out;
    assert_int_equal(tp__handshake_decode(b, &out), 0);
    assert_int_equal(out.version, hs.version);
    assert_int_equal(out.kind, hs.kind);
    assert_true(out.cluster_id == hs.cluster_id);
    assert_int_equal(out.from, 7);
    assert_int_equal(out.to, 9);
    /* Any flipped bit is caught: in the magic or by the checksum. */
    for (size_t i = 0; i < sizeof(b) * 8; i++) {
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(tp__handshake_decode(b, &out), CAIRN_EMALFORMED);
        b[i / 8] ^= (uint8_t)(1u << (i % 8));
    }

    uint8_t a[TP_ANSWER_BYTES];
    tp__answer_encode(a, TP_ANSWER_REMOVED, 42);
    uint8_t code;
    raft_id who;
    assert_int_equal(tp__answer_decode(a, &code, &who), 0);
    assert_int_equal(code, TP_ANSWER_REMOVED);
    assert_int_equal(who, 42);
    a[10] ^= 1;
    assert_int_equal(tp__answer_decode(a, &code, &who), CAIRN_EMALFORMED);
    assert_string_equal(tp__answer_text(TP_ANSWER_CLUSTER),
                        "cluster ID mismatch");
}

static void frames_whole_split_and_corrupt(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    struct raft_entry e = {
        .term = 3, .index = 11, .data = (uint8_t *)"xyz", .len = 3};
    struct raft_message m = {.type = RAFT_MSG_APP,
                             .from = 1,
                             .to = 2,
                             .term = 3,
                             .index = 10,
                             .log_term = 3,
                             .commit = 9,
                             .entries = &e,
                             .n_entries = 1};
    assert_int_equal(tp__frame_append_msg(&b, TP_FRAME_MSG, NULL, &m, 1024), 0);
    size_t first = b.len;
    assert_int_equal(tp__frame_append(&b, TP_FRAME_PING, "12345678", 8), 0);

    uint8_t type;
    const uint8_t *pl;
    size_t len, total;
    /* Every prefix of the first frame asks for more. */
    for (size_t n = 0; n < first; n++)
        assert_int_equal(
            tp__frame_parse(b.data, n, 1024, &type, &pl, &len, &total), 0);
    assert_int_equal(
        tp__frame_parse(b.data, b.len, 1024, &type, &pl, &len, &total), 1);
    assert_int_equal(type, TP_FRAME_MSG);
    assert_int_equal(total, first);
    assert_int_equal(len, first - TP_FRAME_HEADER_BYTES);
    struct raft_message d;
    assert_int_equal(raft_message_decode(pl, len, &d), 0);
    assert_int_equal(d.type, RAFT_MSG_APP);
    assert_int_equal(d.commit, 9);
    assert_int_equal(d.n_entries, 1);
    assert_memory_equal(d.entries[0].data, "xyz", 3);
    raft_message_decoded_free(&d);
    assert_int_equal(tp__frame_parse(b.data + first, b.len - first, 1024, &type,
                                     &pl, &len, &total),
                     1);
    assert_int_equal(type, TP_FRAME_PING);
    assert_memory_equal(pl, "12345678", 8);

    /* A payload over the bound is refused from its header alone. */
    assert_int_equal(tp__frame_parse(b.data, TP_FRAME_HEADER_BYTES, 4, &type,
                                     &pl, &len, &total),
                     CAIRN_EMALFORMED);
    /* So is a message too large to send. */
    size_t before = b.len;
    assert_int_equal(tp__frame_append_msg(&b, TP_FRAME_MSG, NULL, &m, 4),
                     CAIRN_ETOOBIG);
    assert_int_equal(b.len, before);
    /* Any flipped payload or type bit fails the checksum or the type. */
    for (size_t i = 4 * 8; i < first * 8; i++) {
        b.data[i / 8] ^= (uint8_t)(1u << (i % 8));
        int rv = tp__frame_parse(b.data, b.len, 1024, &type, &pl, &len, &total);
        assert_int_equal(rv, CAIRN_EMALFORMED);
        b.data[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    /* An unknown type. */
    b.data[4] = 99;
    assert_int_equal(
        tp__frame_parse(b.data, b.len, 1024, &type, &pl, &len, &total),
        CAIRN_EMALFORMED);
    buf_free(&b);
}

static void dump_decodes_a_stream(void **state)
{
    (void)state;
    struct buf b = BUF_INIT;
    uint8_t hs[TP_HANDSHAKE_BYTES];
    struct tp_handshake h = {TRANSPORT_PROTOCOL_VERSION, TP_KIND_MESSAGES, 5, 1,
                             2};
    tp__handshake_encode(hs, &h);
    assert_int_equal(buf_append(&b, hs, sizeof(hs)), 0);
    struct raft_entry e[2] = {
        {.term = 4, .index = 8, .data = (uint8_t *)"ab", .len = 2},
        {.term = 4, .index = 9, .data = (uint8_t *)"c", .len = 1}};
    struct raft_message m = {.type = RAFT_MSG_APP,
                             .from = 1,
                             .to = 2,
                             .term = 4,
                             .log_term = 4,
                             .index = 7,
                             .commit = 6,
                             .entries = e,
                             .n_entries = 2};
    assert_int_equal(tp__frame_append_msg(&b, TP_FRAME_MSG, NULL, &m, 1024), 0);
    assert_int_equal(
        tp__frame_append(&b, TP_FRAME_PING, "\x2a\0\0\0\0\0\0\0", 8), 0);
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    assert_non_null(out);
    assert_int_equal(tp__dump(out, b.data, b.len), 0);
    fclose(out);
    assert_non_null(strstr(text, "0: handshake version=1 kind=messages "
                                 "cluster=0000000000000005 "
                                 "from=0000000000000001 "
                                 "to=0000000000000002\n"));
    assert_non_null(strstr(text, "36: MSG len="));
    assert_non_null(strstr(text, "MsgApp"));
    assert_non_null(strstr(text, "index=7 commit=6 entries=2 (3 bytes)"));
    assert_non_null(strstr(text, "PING len=8 token=42\n"));
    free(text);

    /* Cut inside the last frame: said, and an error. */
    out = open_memstream(&text, &text_len);
    assert_int_equal(tp__dump(out, b.data, b.len - 3), CAIRN_EMALFORMED);
    fclose(out);
    assert_non_null(strstr(text, "truncated frame"));
    free(text);

    /* An answer opens the other direction. */
    uint8_t a[TP_ANSWER_BYTES];
    tp__answer_encode(a, TP_ANSWER_CLUSTER, 2);
    out = open_memstream(&text, &text_len);
    assert_int_equal(tp__dump(out, a, sizeof(a)), 0);
    fclose(out);
    assert_non_null(strstr(text, "answer code=2 (cluster ID mismatch)"));
    free(text);
    buf_free(&b);
}

static void backoff_doubles_with_jitter_up_to_the_cap(void **state)
{
    (void)state;
    struct prng r, again;
    prng_seed(&r, 11);
    prng_seed(&again, 11);
    uint64_t b = TRANSPORT_BACKOFF_MIN_MS_DEFAULT, b2 = b;
    uint64_t expect = b;
    bool varied = false;
    uint64_t first = 0;
    for (int i = 0; i < 40; i++) {
        uint64_t w = tp__backoff_wait(&r, &b, TRANSPORT_BACKOFF_MAX_MS_DEFAULT);
        /* Same seed, same waits. */
        assert_int_equal(
            w, tp__backoff_wait(&again, &b2, TRANSPORT_BACKOFF_MAX_MS_DEFAULT));
        assert_true(w >= expect / 2 && w <= expect);
        expect = expect * 2 > TRANSPORT_BACKOFF_MAX_MS_DEFAULT
                     ? TRANSPORT_BACKOFF_MAX_MS_DEFAULT
                     : expect * 2;
        assert_int_equal(b, expect);
        if (i == 10)
            first = w;
        if (i > 10 && w != first)
            varied = true;
    }
    /* Capped at 5 s, and jittered there rather than in lockstep. */
    assert_int_equal(b, TRANSPORT_BACKOFF_MAX_MS_DEFAULT);
    assert_true(varied);
}

int test_frame_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(handshake_roundtrip),
        cmocka_unit_test(frames_whole_split_and_corrupt),
        cmocka_unit_test(dump_decodes_a_stream),
        cmocka_unit_test(backoff_doubles_with_jitter_up_to_the_cap),
    };
    return cmocka_run_group_tests_name("transport_frame", tests, NULL, NULL);
}
