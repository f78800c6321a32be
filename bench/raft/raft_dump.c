/* raft-dump: prints raft's binary records (docs/raft-codec.md) in readable
 * form, for debugging the transport and the WAL:
 *   raft-dump message|entry|conf-state|conf-change FILE   (FILE - : stdin)
 * The file holds exactly one record. Exit status 1 if it does not decode. */
#include "raft/raft.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define DUMP_MAX (64u << 20)

static void print_ids(const char *name, const raft_id *ids, uint32_t n)
{
    printf(" %s=[", name);
    for (uint32_t i = 0; i < n; i++)
        printf("%s%" PRIu64, i ? " " : "", ids[i]);
    printf("]");
}

static void print_conf(const struct raft_conf_state *cs)
{
    print_ids("voters", cs->voters, cs->n_voters);
    print_ids("learners", cs->learners, cs->n_learners);
    print_ids("outgoing", cs->voters_outgoing, cs->n_voters_outgoing);
    print_ids("learners_next", cs->learners_next, cs->n_learners_next);
    printf(" auto_leave=%d", (int)cs->auto_leave);
}

static void print_entry(const struct raft_entry *e)
{
    printf("entry term=%" PRIu64 " index=%" PRIu64 " type=%u len=%zu\n",
           e->term, e->index, e->type, e->len);
}

static int dump(const char *kind, const uint8_t *p, size_t len)
{
    int rv;
    if (strcmp(kind, "message") == 0) {
        struct raft_message m;
        rv = raft_message_decode(p, len, &m);
        if (rv != 0)
            return rv;
        printf("%s from=%" PRIu64 " to=%" PRIu64 " term=%" PRIu64
               " log_term=%" PRIu64 " index=%" PRIu64 " commit=%" PRIu64
               " reject=%d hint=%" PRIu64 " transfer=%d ctx=%" PRIu64
               " entries=%zu\n",
               raft_msg_type_name(m.type), m.from, m.to, m.term, m.log_term,
               m.index, m.commit, (int)m.reject, m.reject_hint, (int)m.transfer,
               m.ctx, m.n_entries);
        for (size_t i = 0; i < m.n_entries; i++) {
            printf("  ");
            print_entry(&m.entries[i]);
        }
        if (m.snapshot != NULL) {
            printf("  snapshot index=%" PRIu64 " term=%" PRIu64,
                   m.snapshot->meta.index, m.snapshot->meta.term);
            print_conf(&m.snapshot->meta.conf);
            printf(" data=%zu\n", m.snapshot->len);
        }
        raft_message_decoded_free(&m);
        return 0;
    }
    if (strcmp(kind, "entry") == 0) {
        struct raft_entry e;
        rv = raft_entry_decode(p, len, &e);
        if (rv == 0)
            print_entry(&e);
        return rv;
    }
    if (strcmp(kind, "conf-state") == 0) {
        struct raft_conf_state cs;
        rv = raft_conf_state_decode(p, len, &cs);
        if (rv == 0) {
            printf("conf-state");
            print_conf(&cs);
            printf("\n");
        }
        return rv;
    }
    if (strcmp(kind, "conf-change") == 0) {
        struct raft_conf_change cc;
        rv = raft_conf_change_decode(p, len, &cc);
        if (rv != 0)
            return rv;
        printf("conf-change transition=%u", cc.transition);
        static const char *const types[] = {"add", "remove", "learner"};
        for (uint32_t i = 0; i < cc.n_changes; i++)
            printf(" %s:%" PRIu64, types[cc.changes[i].type],
                   cc.changes[i].node);
        printf(" context=%zu\n", cc.context_len);
        return 0;
    }
    return CAIRN_EINVAL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: raft-dump message|entry|conf-state|"
                        "conf-change FILE\n");
        return 2;
    }
    FILE *f = strcmp(argv[2], "-") == 0 ? stdin : fopen(argv[2], "rb");
    if (f == NULL) {
        perror(argv[2]);
        return 1;
    }
    struct buf b = BUF_INIT;
    uint8_t chunk[65536];
    size_t n;
    int rv = 0;
    while (rv == 0 && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rv = b.len + n > DUMP_MAX ? CAIRN_ETOOBIG : buf_append(&b, chunk, n);
    }
    if (f != stdin)
        fclose(f);
    if (rv == 0)
        rv = dump(argv[1], b.data, b.len);
    buf_free(&b);
    if (rv != 0) {
        fprintf(stderr, "raft-dump: %s: %s\n", argv[2], cairn_strerror(rv));
        return 1;
    }
    return 0;
}
