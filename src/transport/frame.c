/* The peer protocol's bytes: handshake, answer and CRC-checked frames, as
 * docs/transport.md lays them out. Pure functions over buffers. */
#include <string.h>

#include "transport/transport_int.h"

static const uint8_t hs_magic[4] = {'C', 'R', 'N', 'P'};
static const uint8_t ans_magic[4] = {'C', 'R', 'N', 'A'};

const char *tp__answer_text(int code)
{
    switch (code) {
    case TP_ANSWER_OK:
        return "accepted";
    case TP_ANSWER_VERSION:
        return "protocol version not supported";
    case TP_ANSWER_CLUSTER:
        return "cluster ID mismatch";
    case TP_ANSWER_RECEIVER:
        return "receiver is another member";
    case TP_ANSWER_UNKNOWN:
        return "sender is not a member";
    case TP_ANSWER_REMOVED:
        return "sender was removed from the cluster";
    case TP_ANSWER_KIND:
        return "unknown connection kind";
    default:
        return "unknown answer";
    }
}

void tp__handshake_encode(uint8_t out[TP_HANDSHAKE_BYTES],
                          const struct tp_handshake *hs)
{
    memcpy(out, hs_magic, 4);
    codec_put_u16(out + 4, hs->version);
    out[6] = hs->kind;
    out[7] = 0;
    codec_put_u64(out + 8, hs->cluster_id);
    codec_put_u64(out + 16, hs->from);
    codec_put_u64(out + 24, hs->to);
    codec_put_u32(out + 32, crc32c(0, out, 32));
}

int tp__handshake_decode(const uint8_t in[TP_HANDSHAKE_BYTES],
                         struct tp_handshake *hs)
{
    if (memcmp(in, hs_magic, 4) != 0)
        return CAIRN_EMALFORMED;
    if (codec_get_u32(in + 32) != crc32c(0, in, 32))
        return CAIRN_EMALFORMED;
    hs->version = codec_get_u16(in + 4);
    hs->kind = in[6];
    hs->cluster_id = codec_get_u64(in + 8);
    hs->from = codec_get_u64(in + 16);
    hs->to = codec_get_u64(in + 24);
    return 0;
}

void tp__answer_encode(uint8_t out[TP_ANSWER_BYTES], uint8_t code, raft_id self)
{
    memcpy(out, ans_magic, 4);
    codec_put_u16(out + 4, TRANSPORT_PROTOCOL_VERSION);
    out[6] = code;
    out[7] = 0;
    codec_put_u64(out + 8, self);
    codec_put_u32(out + 16, crc32c(0, out, 16));
}

int tp__answer_decode(const uint8_t in[TP_ANSWER_BYTES], uint8_t *code,
                      raft_id *self)
{
    if (memcmp(in, ans_magic, 4) != 0)
        return CAIRN_EMALFORMED;
    if (codec_get_u32(in + 16) != crc32c(0, in, 16))
        return CAIRN_EMALFORMED;
    *code = in[6];
    *self = codec_get_u64(in + 8);
    return 0;
}

static uint32_t frame_crc(uint8_t type, const uint8_t *payload, size_t len)
{
    return crc32c(crc32c(0, &type, 1), payload, len);
}

void tp__frame_header(uint8_t out[TP_FRAME_HEADER_BYTES], uint8_t type,
                      const uint8_t *payload, size_t len)
{
    CAIRN_ASSERT(len <= UINT32_MAX);
    codec_put_u32(out, (uint32_t)len);
    out[4] = type;
    codec_put_u32(out + 5, frame_crc(type, payload, len));
}

int tp__frame_append(struct buf *b, uint8_t type, const void *payload,
                     size_t len)
{
    if (buf_reserve(b, TP_FRAME_HEADER_BYTES + len) != 0)
        return CAIRN_ENOMEM;
    uint8_t *h = buf_extend(b, TP_FRAME_HEADER_BYTES);
    if (len > 0)
        memcpy(buf_extend(b, len), payload, len);
    tp__frame_header(h, type, h + TP_FRAME_HEADER_BYTES, len);
    return 0;
}

int tp__frame_append_msg(struct buf *b, uint8_t type,
                         const uint64_t *body_bytes_prefix,
                         const struct raft_message *m, size_t max)
{
    size_t start = b->len;
    if (buf_reserve(b, TP_FRAME_HEADER_BYTES + 8) != 0)
        return CAIRN_ENOMEM;
    buf_extend(b, TP_FRAME_HEADER_BYTES);
    if (body_bytes_prefix != NULL)
        codec_put_u64(buf_extend(b, 8), *body_bytes_prefix);
    if (raft_message_encode(m, b) != 0) {
        b->len = start;
        return CAIRN_ENOMEM;
    }
    size_t len = b->len - start - TP_FRAME_HEADER_BYTES;
    if (len > max) {
        b->len = start;
        return CAIRN_ETOOBIG;
    }
    uint8_t *h = b->data + start;
    tp__frame_header(h, type, h + TP_FRAME_HEADER_BYTES, len);
    return 0;
}

int tp__frame_parse(const uint8_t *p, size_t avail, size_t max, uint8_t *type,
                    const uint8_t **payload, size_t *len, size_t *total)
{
    if (avail < TP_FRAME_HEADER_BYTES)
        return 0;
    size_t n = codec_get_u32(p);
    uint8_t t = p[4];
    if (t < TP_FRAME_MSG || t > TP_FRAME_SNAP_ACK)
        return CAIRN_EMALFORMED;
    if (n > max)
        return CAIRN_EMALFORMED;
    if (avail - TP_FRAME_HEADER_BYTES < n)
        return 0;
    const uint8_t *pl = p + TP_FRAME_HEADER_BYTES;
    if (codec_get_u32(p + 5) != frame_crc(t, pl, n))
        return CAIRN_EMALFORMED;
    *type = t;
    *payload = pl;
    *len = n;
    *total = TP_FRAME_HEADER_BYTES + n;
    return 1;
}
