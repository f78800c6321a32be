/* The decoded text of one direction of a peer connection (handshake or
 * answer, then frames, raft messages summarized), for cairn-transport-dump
 * and the tests; docs/transport.md is the format it reads. */
#include <inttypes.h>
#include <stdio.h>

#include "transport/transport_int.h"

static const char *frame_name(int type)
{
    switch (type) {
    case TP_FRAME_MSG:
        return "MSG";
    case TP_FRAME_PING:
        return "PING";
    case TP_FRAME_PONG:
        return "PONG";
    case TP_FRAME_SNAP_HEAD:
        return "SNAP_HEAD";
    case TP_FRAME_SNAP_CHUNK:
        return "SNAP_CHUNK";
    case TP_FRAME_SNAP_END:
        return "SNAP_END";
    case TP_FRAME_SNAP_ACK:
        return "SNAP_ACK";
    default:
        return "?";
    }
}

static void dump_message(FILE *out, const uint8_t *p, size_t len)
{
    struct raft_message m;
    if (raft_message_decode(p, len, &m) != 0) {
        fprintf(out, " (not a raft message)");
        return;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < m.n_entries; i++)
        bytes += m.entries[i].len;
    fprintf(out,
            " %s from=%016" PRIx64 " to=%016" PRIx64 " term=%" PRIu64
            " log_term=%" PRIu64 " index=%" PRIu64 " commit=%" PRIu64,
            raft_msg_type_name(m.type), m.from, m.to, m.term, m.log_term,
            m.index, m.commit);
    if (m.reject)
        fprintf(out, " reject hint=%" PRIu64, m.reject_hint);
    if (m.ctx != 0)
        fprintf(out, " ctx=%" PRIu64, m.ctx);
    if (m.n_entries > 0)
        fprintf(out, " entries=%zu (%zu bytes)", m.n_entries, bytes);
    if (m.snapshot != NULL)
        fprintf(out,
                " snapshot index=%" PRIu64 " term=%" PRIu64
                " voters=%u data=%zu bytes",
                m.snapshot->meta.index, m.snapshot->meta.term,
                m.snapshot->meta.conf.n_voters, m.snapshot->len);
    raft_message_decoded_free(&m);
}

int tp__dump(FILE *out, const uint8_t *p, size_t len)
{
    size_t off = 0;
    if (len >= 4 && p[0] == 'C' && p[1] == 'R' && p[2] == 'N' && p[3] == 'P') {
        struct tp_handshake hs;
        if (len < TP_HANDSHAKE_BYTES || tp__handshake_decode(p, &hs) != 0) {
            fprintf(out, "0: bad or truncated handshake\n");
            return CAIRN_EMALFORMED;
        }
        fprintf(out,
                "0: handshake version=%u kind=%s cluster=%016" PRIx64
                " from=%016" PRIx64 " to=%016" PRIx64 "\n",
                hs.version,
                hs.kind == TP_KIND_MESSAGES   ? "messages"
                : hs.kind == TP_KIND_SNAPSHOT ? "snapshot"
                                              : "?",
                hs.cluster_id, hs.from, hs.to);
        off = TP_HANDSHAKE_BYTES;
    } else if (len >= 4 && p[0] == 'C' && p[1] == 'R' && p[2] == 'N' &&
               p[3] == 'A') {
        uint8_t code;
        raft_id who;
        if (len < TP_ANSWER_BYTES || tp__answer_decode(p, &code, &who) != 0) {
            fprintf(out, "0: bad or truncated answer\n");
            return CAIRN_EMALFORMED;
        }
        fprintf(out, "0: answer code=%u (%s) member=%016" PRIx64 "\n", code,
                tp__answer_text(code), who);
        off = TP_ANSWER_BYTES;
    }
    while (off < len) {
        uint8_t type;
        const uint8_t *pl;
        size_t n, total;
        int rv = tp__frame_parse(p + off, len - off, UINT32_MAX, &type, &pl, &n,
                                 &total);
        if (rv == 0) {
            fprintf(out, "%zu: truncated frame (%zu bytes left)\n", off,
                    len - off);
            return CAIRN_EMALFORMED;
        }
        if (rv < 0) {
            fprintf(out, "%zu: bad frame (unknown type or checksum)\n", off);
            return CAIRN_EMALFORMED;
        }
        fprintf(out, "%zu: %s len=%zu", off, frame_name(type), n);
        switch (type) {
        case TP_FRAME_MSG:
            dump_message(out, pl, n);
            break;
        case TP_FRAME_SNAP_HEAD:
            if (n >= 8) {
                fprintf(out, " body=%" PRIu64, codec_get_u64(pl));
                dump_message(out, pl + 8, n - 8);
            }
            break;
        case TP_FRAME_PING:
        case TP_FRAME_PONG:
            if (n == 8)
                fprintf(out, " token=%" PRIu64, codec_get_u64(pl));
            break;
        case TP_FRAME_SNAP_END:
            if (n == 4)
                fprintf(out, " crc=%08x", codec_get_u32(pl));
            break;
        case TP_FRAME_SNAP_ACK:
            if (n == 4)
                fprintf(out, " status=%s",
                        cairn_errname((int)(int32_t)codec_get_u32(pl)));
            break;
        default:
            break;
        }
        fprintf(out, "\n");
        off += total;
    }
    return 0;
}
