/* cairn-mvcc-dump: prints an mvcc store's LMDB databases decoded, one record
 * a line (format in docs/mvcc.md), for debugging and for checking what a
 * member stored. Usage: cairn-mvcc-dump <dir> [kv|rev|meta|lkey|ext]... */
#include <lmdb.h>
#include <stdio.h>
#include <string.h>

#include "util/util.h"

static void print_bytes(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    putchar('"');
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void print_record(const char *db, const MDB_val *k, const MDB_val *v)
{
    const uint8_t *kp = k->mv_data, *vp = v->mv_data;
    if (strcmp(db, "kv") == 0 && k->mv_size >= 16) {
        size_t kl = k->mv_size - 16;
        printf("kv key=");
        print_bytes(kp, kl);
        printf(" rev=%llu.%llu", (unsigned long long)be64(kp + kl),
               (unsigned long long)be64(kp + kl + 8));
        struct codec_reader r;
        codec_reader_init(&r, vp, v->mv_size);
        uint8_t flags = codec_read_u8(&r);
        uint64_t sub = codec_read_varint(&r), create = codec_read_varint(&r),
                 version = codec_read_varint(&r), lease = codec_read_varint(&r);
        if (r.bad) {
            printf(" MALFORMED\n");
            return;
        }
        if (flags & 2) {
            /* A long key: the kv key holds its prefix, hash and sequence
             * number; the value starts with the full key. */
            uint64_t full = codec_read_varint(&r);
            if (r.bad || full > codec_reader_left(&r)) {
                printf(" MALFORMED\n");
                return;
            }
            printf(" long_key=");
            print_bytes(vp + r.off, (size_t)full);
            r.off += (size_t)full;
        }
        if (flags & 1) {
            printf(" tombstone\n");
            return;
        }
        printf(" sub=%llu create=%llu version=%llu lease=%lld value=",
               (unsigned long long)sub, (unsigned long long)create,
               (unsigned long long)version, (long long)lease);
        print_bytes(vp + r.off, v->mv_size - r.off);
        putchar('\n');
    } else if (strcmp(db, "rev") == 0 && k->mv_size == 16) {
        printf("rev %llu.%llu key=", (unsigned long long)be64(kp),
               (unsigned long long)be64(kp + 8));
        print_bytes(vp, v->mv_size);
        putchar('\n');
    } else if (strcmp(db, "meta") == 0) {
        printf("meta %.*s=", (int)k->mv_size, (const char *)kp);
        if (v->mv_size == 8)
            printf("%llu\n", (unsigned long long)codec_get_u64(vp));
        else {
            print_bytes(vp, v->mv_size);
            putchar('\n');
        }
    } else if (strcmp(db, "lkey") == 0 && k->mv_size >= 8) {
        printf("lkey lease=%lld key=", (long long)be64(kp));
        print_bytes(kp + 8, k->mv_size - 8);
        putchar('\n');
    } else {
        printf("%s key=", db);
        print_bytes(kp, k->mv_size);
        printf(" value=");
        print_bytes(vp, v->mv_size);
        putchar('\n');
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <dir> [kv|rev|meta|lkey|ext]...\n", argv[0]);
        return 2;
    }
    static const char *all[] = {"meta", "kv", "rev", "lkey", "ext"};
    const char **dbs = argc > 2 ? (const char **)argv + 2 : all;
    int ndbs = argc > 2 ? argc - 2 : 5;
    MDB_env *env;
    int rc = mdb_env_create(&env);
    if (rc == 0) {
        mdb_env_set_maxdbs(env, 8);
        rc = mdb_env_open(env, argv[1], MDB_RDONLY, 0644);
    }
    MDB_txn *t = NULL;
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
    for (int i = 0; rc == 0 && i < ndbs; i++) {
        MDB_dbi dbi;
        MDB_cursor *c;
        if ((rc = mdb_dbi_open(t, dbs[i], 0, &dbi)) != 0 ||
            (rc = mdb_cursor_open(t, dbi, &c)) != 0)
            break;
        MDB_val k, v;
        int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        /* Bounded by the database's size: each step moves forward. */
        while (mrc == 0) {
            print_record(dbs[i], &k, &v);
            mrc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
        mdb_cursor_close(c);
        if (mrc != MDB_NOTFOUND)
            rc = mrc;
    }
    if (t != NULL)
        mdb_txn_abort(t);
    mdb_env_close(env);
    if (rc != 0) {
        fprintf(stderr, "cairn-mvcc-dump: %s: %s\n", argv[1], mdb_strerror(rc));
        return 1;
    }
    return 0;
}
