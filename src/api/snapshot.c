/* snapshot: etcd's Maintenance.Snapshot stream (v3rpc/maintenance.go): the
 * member writes its store's image to a temporary file, which goes to the
 * client in 32 KiB messages with the bytes remaining, padded with zeros to
 * a multiple of 512 bytes, followed by one message holding the SHA-256 of
 * everything sent, which `etcdctl snapshot save` checks (its file must be
 * 512n + 32 bytes long). */
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_int.h"

#define SNAP_CHUNK ((size_t)32 << 10)

struct snap_stream {
    struct api__slot *slot;
    struct rpc_call *call; /* NULL once done */
    FILE *file;            /* the image, unlinked */
    bool exporting;        /* the member is writing it */
    bool started, finished;
    uint64_t size, sent; /* padded size, bytes sent */
    uint64_t data_size;  /* the image's own size */
    EVP_MD_CTX *sha;
};

static void snap_free_if_done(struct snap_stream *s)
{
    if (s->call != NULL || s->exporting)
        return;
    if (s->file != NULL)
        fclose(s->file);
    EVP_MD_CTX_free(s->sha);
    cairn_free(s);
}

static void snap_finish(struct snap_stream *s, int err)
{
    if (s->finished || s->call == NULL)
        return;
    s->finished = true;
    struct api_status st = api_status_from_err(err);
    rpc_call_finish(s->call, st.code, st.message);
}

static int snap_send(struct snap_stream *s, const uint8_t *blob, size_t n,
                     uint64_t remaining)
{
    Etcdserverpb__SnapshotResponse out;
    etcdserverpb__snapshot_response__init(&out);
    out.remaining_bytes = remaining;
    out.blob = (ProtobufCBinaryData){n, (uint8_t *)blob};
    size_t len = etcdserverpb__snapshot_response__get_packed_size(&out);
    uint8_t *p = cairn_malloc(len);
    if (p == NULL)
        return CAIRN_ENOMEM;
    etcdserverpb__snapshot_response__pack(&out, p);
    int rv = rpc_call_send(s->call, p, len);
    cairn_free(p);
    return rv;
}

/* Sends chunks until the queue is full (writable resumes) or all is out.
 * Reading the file blocks the loop for one chunk at a time (the page cache
 * holds a just-written image). */
static void snap_pump(struct snap_stream *s)
{
    uint8_t buf[SNAP_CHUNK];
    /* bounded by the file's size in chunks */
    while (s->call != NULL && !s->finished && s->sent < s->size) {
        if (rpc_call_send_queued_bytes(s->call) >= RPC_SEND_QUEUE_DEFAULT / 2)
            return; /* writable comes when it drains */
        size_t want =
            (size_t)(s->size - s->sent < SNAP_CHUNK ? s->size - s->sent
                                                    : SNAP_CHUNK);
        size_t got = 0;
        if (s->sent < s->data_size) {
            uint64_t left = s->data_size - s->sent;
            size_t rd = want < left ? want : (size_t)left;
            got = fread(buf, 1, rd, s->file);
            if (got != rd) {
                snap_finish(s, CAIRN_EIO);
                return;
            }
        }
        /* padding to a multiple of 512 */
        memset(buf + got, 0, want - got);
        if (EVP_DigestUpdate(s->sha, buf, want) != 1) {
            snap_finish(s, CAIRN_ENOMEM);
            return;
        }
        s->sent += want;
        int rv = snap_send(s, buf, want, s->size - s->sent);
        if (rv != 0) {
            snap_finish(s, rv);
            return;
        }
    }
    if (s->call == NULL || s->finished)
        return;
    uint8_t sum[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (EVP_DigestFinal_ex(s->sha, sum, &n) != 1) {
        snap_finish(s, CAIRN_ENOMEM);
        return;
    }
    int rv = snap_send(s, sum, n, 0);
    if (rv != 0) {
        snap_finish(s, rv);
        return;
    }
    s->finished = true;
    rpc_call_finish(s->call, RPC_OK, NULL);
}

static void snap_exported(void *ctx, const struct node_result *res)
{
    struct snap_stream *s = ctx;
    s->exporting = false;
    if (s->call == NULL) {
        snap_free_if_done(s);
        return;
    }
    if (res->err != 0) {
        snap_finish(s, res->err);
        return;
    }
    struct stat st;
    if (fflush(s->file) != 0 || fstat(fileno(s->file), &st) != 0 ||
        fseek(s->file, 0, SEEK_SET) != 0) {
        snap_finish(s, CAIRN_EIO);
        return;
    }
    s->data_size = (uint64_t)st.st_size;
    s->size = (s->data_size + 511) / 512 * 512;
    snap_pump(s);
}

static void snap_half_close(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct snap_stream *s = rpc_call_user(call);
    if (s == NULL || s->started || s->finished)
        return;
    s->started = true;
    struct api *a = s->slot->api;
    s->file = tmpfile();
    s->sha = EVP_MD_CTX_new();
    if (s->file == NULL || s->sha == NULL ||
        EVP_DigestInit_ex(s->sha, EVP_sha256(), NULL) != 1) {
        snap_finish(s, s->file == NULL ? cairn_err_from_errno(errno)
                                       : CAIRN_ENOMEM);
        return;
    }
    s->exporting = true;
    int rv =
        a->be.snapshot_export(a->be.arg, fileno(s->file), s, snap_exported);
    if (rv != 0) {
        s->exporting = false;
        snap_finish(s, rv);
    }
}

static void snap_message(void *arg, struct rpc_call *call, const uint8_t *data,
                         size_t len)
{
    (void)arg;
    struct snap_stream *s = rpc_call_user(call);
    if (s == NULL)
        return;
    Etcdserverpb__SnapshotRequest *in =
        etcdserverpb__snapshot_request__unpack(NULL, len, data);
    if (in == NULL)
        snap_finish(s, CAIRN_EMALFORMED);
    else
        etcdserverpb__snapshot_request__free_unpacked(in, NULL);
}

static void snap_writable(void *arg, struct rpc_call *call)
{
    (void)arg;
    struct snap_stream *s = rpc_call_user(call);
    if (s != NULL && !s->exporting && s->started)
        snap_pump(s);
}

static void snap_start(void *arg, struct rpc_call *call)
{
    struct api__slot *slot = arg;
    api__count_start(slot);
    struct snap_stream *s = cairn_calloc(1, sizeof(*s));
    if (s == NULL) {
        struct api_status st = api_status_from_err(CAIRN_ENOMEM);
        rpc_call_finish(call, st.code, st.message);
        return;
    }
    s->slot = slot;
    s->call = call;
    rpc_call_set_user(call, s);
}

static void snap_done(void *arg, struct rpc_call *call, int code,
                      const char *message)
{
    (void)message;
    struct api__slot *slot = arg;
    api__count_done(slot, code);
    struct snap_stream *s = rpc_call_user(call);
    if (s != NULL) {
        s->call = NULL;
        snap_free_if_done(s);
    }
    api__unref(slot->api);
}

const struct rpc_call_cbs api__snapshot_cbs = {
    .start = snap_start,
    .message = snap_message,
    .half_close = snap_half_close,
    .writable = snap_writable,
    .done = snap_done,
};
