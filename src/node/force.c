/* --force-new-cluster: the entries that turn a recovered log into a
 * one-member configuration, as etcd 3.4's restartAsStandaloneNode does
 * (etcdserver/raft.go): uncommitted entries are dropped, then conf changes
 * that keep only this member are appended and taken as committed. */
#include <stdio.h>
#include <string.h>

#include "node/node_int.h"

/* The members of the configuration in force at the end of the kept log: the
 * snapshot's, then every configuration change entry after it. Learners are
 * kept apart so that a learner forced alone is promoted (etcd 3.4 reads only
 * the snapshot's voters and would leave it a learner that never leads). */
struct conf_ids {
    size_t n;
    uint64_t id[RAFT_CONF_MAX * 4];
    bool learner[RAFT_CONF_MAX * 4];
    bool joint; /* a joint configuration not yet left */
};

static void ids_put(struct conf_ids *c, uint64_t id, bool learner)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->id[i] == id) {
            c->learner[i] = learner;
            return;
        }
    if (c->n < RAFT_CONF_MAX * 4) {
        c->id[c->n] = id;
        c->learner[c->n++] = learner;
    }
}

static void ids_del(struct conf_ids *c, uint64_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->id[i] == id) {
            c->id[i] = c->id[--c->n];
            c->learner[i] = c->learner[c->n];
            return;
        }
}

static void ids_from_snapshot(struct conf_ids *c,
                              const struct raft_conf_state *cs)
{
    for (uint32_t i = 0; i < cs->n_voters; i++)
        ids_put(c, cs->voters[i], false);
    for (uint32_t i = 0; i < cs->n_voters_outgoing; i++)
        ids_put(c, cs->voters_outgoing[i], false);
    for (uint32_t i = 0; i < cs->n_learners; i++)
        ids_put(c, cs->learners[i], true);
    for (uint32_t i = 0; i < cs->n_learners_next; i++)
        ids_put(c, cs->learners_next[i], true);
    c->joint = cs->n_voters_outgoing > 0;
}

static void ids_apply(struct conf_ids *c, const struct raft_entry *e)
{
    struct raft_conf_change cc;
    if ((e->type != RAFT_ENTRY_CONF_CHANGE &&
         e->type != RAFT_ENTRY_CONF_CHANGE_V2) ||
        raft_conf_change_decode(e->data, e->len, &cc) != 0)
        return;
    if (cc.transition == RAFT_CC_TRANSITION_AUTO && cc.n_changes == 0) {
        c->joint = false;
        return;
    }
    if (cc.transition != RAFT_CC_TRANSITION_AUTO || cc.n_changes > 1)
        c->joint = true;
    for (uint32_t i = 0; i < cc.n_changes; i++) {
        const struct raft_conf_change_item *it = &cc.changes[i];
        if (it->type == RAFT_CC_REMOVE_NODE)
            ids_del(c, it->node);
        else
            ids_put(c, it->node, it->type == RAFT_CC_ADD_LEARNER);
    }
}

/* Appends one conf change entry (term, next index) to f. */
static int push(struct node__forced *f, raft_term term, uint8_t entry_type,
                const struct raft_conf_change *cc)
{
    size_t len = raft_conf_change_encoded_size(cc);
    uint8_t *data = cairn_malloc(len);
    if (data == NULL)
        return CAIRN_ENOMEM;
    raft_conf_change_encode(cc, data);
    f->commit++;
    f->ents[f->n_ents++] = (struct raft_entry){.term = term,
                                               .index = f->commit,
                                               .type = entry_type,
                                               .data = data,
                                               .len = len};
    return 0;
}

static int push_change(struct node__forced *f, raft_term term, uint8_t type,
                       uint64_t id, const struct buf *ctx)
{
    struct raft_conf_change cc;
    memset(&cc, 0, sizeof(cc));
    cc.transition = RAFT_CC_TRANSITION_AUTO;
    cc.n_changes = 1;
    cc.changes[0].type = type;
    cc.changes[0].node = id;
    if (ctx != NULL) {
        cc.context = ctx->data;
        cc.context_len = ctx->len;
    }
    return push(f, term, RAFT_ENTRY_CONF_CHANGE, &cc);
}

int node__force_plan(const struct wal_recovery *rec, uint64_t self,
                     uint64_t applied, const struct node_member *self_record,
                     struct node__forced *f)
{
    memset(f, 0, sizeof(*f));
    /* Committed: what the hard state says, and also what the store already
     * applied (the hard state's commit may be written lazily). */
    raft_index commit = rec->hard_state.commit;
    if (applied > commit)
        commit = applied;
    raft_index first = rec->has_snap ? rec->snap.index + 1 : 1;
    if (commit < first - 1)
        commit = first - 1;
    size_t keep = 0;
    while (keep < rec->n_entries && rec->entries[keep].index <= commit)
        keep++;
    f->n_keep = keep;
    f->n_dropped = rec->n_entries - keep;
    f->commit = keep ? rec->entries[keep - 1].index : first - 1;

    struct conf_ids *c = cairn_calloc(1, sizeof(*c));
    if (c == NULL)
        return CAIRN_ENOMEM;
    if (rec->has_snap)
        ids_from_snapshot(c, &rec->snap.conf);
    for (size_t i = 0; i < keep; i++)
        ids_apply(c, &rec->entries[i]);
    f->ents = cairn_calloc(c->n + 2, sizeof(*f->ents));
    int rc = f->ents ? 0 : CAIRN_ENOMEM;
    raft_term term = rec->hard_state.term;
    if (rc == 0 && c->joint) {
        struct raft_conf_change leave;
        memset(&leave, 0, sizeof(leave));
        rc = push(f, term, RAFT_ENTRY_CONF_CHANGE_V2, &leave);
    }
    /* This member first, as a voter: the voters must never be empty. */
    bool voter = false;
    for (size_t i = 0; i < c->n; i++)
        if (c->id[i] == self)
            voter = !c->learner[i];
    if (rc == 0 && !voter) {
        /* etcd records a member it never knew with its default peer URL. */
        struct node_member m;
        memset(&m, 0, sizeof(m));
        if (self_record != NULL) {
            m = *self_record;
        } else {
            m.n_peer_urls = 1;
            snprintf(m.peer_urls[0], sizeof(m.peer_urls[0]),
                     "http://localhost:2380");
        }
        m.id = self;
        m.is_learner = false;
        struct buf ctx = BUF_INIT;
        rc = node__member_encode(0, &m, &ctx);
        if (rc == 0)
            rc = push_change(f, term, RAFT_CC_ADD_NODE, self, &ctx);
        buf_free(&ctx);
    }
    for (size_t i = 0; rc == 0 && i < c->n; i++)
        if (c->id[i] != self) {
            rc = push_change(f, term, RAFT_CC_REMOVE_NODE, c->id[i], NULL);
            f->n_removed++;
        }
    cairn_free(c);
    if (rc != 0)
        node__force_plan_free(f);
    return rc;
}

void node__force_plan_free(struct node__forced *f)
{
    for (size_t i = 0; f->ents != NULL && i < f->n_ents; i++)
        cairn_free((void *)f->ents[i].data);
    cairn_free(f->ents);
    memset(f, 0, sizeof(*f));
}
