/* cairn-proto-dump: prints etcd wire messages as text, for reading captures
 * and debugging: one protobuf message, or a gRPC message stream (5-byte
 * prefixes), of a type named like "etcdserverpb.RangeRequest". It walks
 * protobuf-c's descriptors, so every type of src/proto is known without a
 * list to keep. */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define MAX_TYPES 512
#define DUMP_INPUT_MAX (64u << 20)
#define MAX_DEPTH 32

struct registry {
    const ProtobufCMessageDescriptor *types[MAX_TYPES];
    size_t n;
};

static void add_type(struct registry *r, const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->types[i] == d)
            return;
    if (r->n == MAX_TYPES)
        return;
    r->types[r->n++] = d;
    /* Types reached through fields: bounded by MAX_TYPES. */
    for (unsigned f = 0; f < d->n_fields; f++)
        if (d->fields[f].type == PROTOBUF_C_TYPE_MESSAGE)
            add_type(r, d->fields[f].descriptor);
}

static void registry_fill(struct registry *r)
{
    static const ProtobufCServiceDescriptor *const services[] = {
        &etcdserverpb__kv__descriptor,
        &etcdserverpb__watch__descriptor,
        &etcdserverpb__lease__descriptor,
        &etcdserverpb__cluster__descriptor,
        &etcdserverpb__maintenance__descriptor,
        &etcdserverpb__auth__descriptor,
        &v3lockpb__lock__descriptor,
        &v3electionpb__election__descriptor,
    };
    r->n = 0;
    for (size_t s = 0; s < sizeof(services) / sizeof(services[0]); s++)
        for (unsigned m = 0; m < services[s]->n_methods; m++) {
            add_type(r, services[s]->methods[m].input);
            add_type(r, services[s]->methods[m].output);
        }
    /* stored, never sent: etcd keeps these in its auth bucket */
    add_type(r, &authpb__user__descriptor);
    add_type(r, &authpb__role__descriptor);
}

static void indent(int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", stdout);
}

static void print_bytes(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\')
            printf("\\%c", p[i]);
        else if (isprint(p[i]))
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    putchar('"');
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 8;
    }
}

static void print_message(const ProtobufCMessage *m, int depth);

/* Prints one value of field f at p. */
static void print_value(const ProtobufCFieldDescriptor *f, const void *p,
                        int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        printf("%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        printf("%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        printf("%" PRId64, *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        printf("%" PRIu64, *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        printf("%g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        printf("%g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        fputs(*(const protobuf_c_boolean *)p ? "true" : "false", stdout);
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
            (const ProtobufCEnumDescriptor *)f->descriptor, v);
        if (ev)
            fputs(ev->name, stdout);
        else
            printf("%d", v);
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        print_bytes((const uint8_t *)(s ? s : ""), s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        print_bytes(b->data, b->len);
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        fputs("{\n", stdout);
        if (sub && depth < MAX_DEPTH)
            print_message(sub, depth + 1);
        indent(depth);
        putchar('}');
        break;
    }
    }
}

/* Whether a proto3 scalar holds its default (then it is not on the wire). */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return s == NULL || *s == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, type_size(f->type)) == 0;
    }
    }
}

static void print_message(const ProtobufCMessage *m, int depth)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const char *arr = *(char *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                indent(depth);
                printf("%s: ", f->name);
                print_value(f, arr + k * type_size(f->type), depth);
                putchar('\n');
            }
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            if (which != f->id)
                continue;
        } else if (is_default(f, base + f->offset)) {
            continue;
        }
        indent(depth);
        printf("%s: ", f->name);
        print_value(f, base + f->offset, depth);
        putchar('\n');
    }
}

static int dump_one(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                    size_t n)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, n, p);
    if (m == NULL) {
        fprintf(stderr, "cairn-proto-dump: %zu bytes do not parse as %s\n", n,
                d->name);
        return 1;
    }
    print_message(m, 0);
    protobuf_c_message_free_unpacked(m, NULL);
    return 0;
}

static int usage(void)
{
    fputs("usage: cairn-proto-dump [--grpc] <package.Message> < input\n"
          "       cairn-proto-dump --list\n"
          "Prints one protobuf message (or, with --grpc, a stream of gRPC\n"
          "length-prefixed messages) of an etcd v3 type as text.\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    static struct registry reg;
    registry_fill(&reg);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < reg.n; i++)
            puts(reg.types[i]->name);
        return 0;
    }
    bool grpc = argc == 3 && strcmp(argv[1], "--grpc") == 0;
    if (argc != 2 + grpc)
        return usage();
    const char *name = argv[1 + grpc];
    const ProtobufCMessageDescriptor *d = NULL;
    for (size_t i = 0; i < reg.n && d == NULL; i++)
        if (strcmp(reg.types[i]->name, name) == 0)
            d = reg.types[i];
    if (d == NULL) {
        fprintf(stderr, "cairn-proto-dump: unknown type %s (see --list)\n",
                name);
        return 2;
    }
    uint8_t *in = malloc(DUMP_INPUT_MAX);
    if (in == NULL)
        return 1;
    size_t n = fread(in, 1, DUMP_INPUT_MAX, stdin);
    int rv = 0;
    if (!grpc) {
        rv = dump_one(d, in, n);
    } else {
        size_t off = 0;
        for (int k = 0; off < n; k++) {
            if (n - off < 5) {
                fprintf(stderr, "cairn-proto-dump: %zu stray bytes at %zu\n",
                        n - off, off);
                rv = 1;
                break;
            }
            uint32_t len = (uint32_t)in[off + 1] << 24 |
                           (uint32_t)in[off + 2] << 16 |
                           (uint32_t)in[off + 3] << 8 | in[off + 4];
            printf("# message %d at %zu: %" PRIu32 " bytes%s\n", k, off, len,
                   in[off] ? " (compressed: not decoded)" : "");
            if ((size_t)len > n - off - 5) {
                fprintf(stderr, "cairn-proto-dump: message %d is cut short\n",
                        k);
                rv = 1;
                break;
            }
            if (in[off] == 0 && dump_one(d, in + off + 5, len) != 0)
                rv = 1;
            off += 5 + (size_t)len;
        }
    }
    free(in);
    return rv;
}
