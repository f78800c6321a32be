/* The Raft core's state machine: placeholder entry points while the core is
 * being written; every call reports CAIRN_EUNSUPPORTED. */
#include "raft/raft.h"

#include <stdio.h>
#include <string.h>

int raft_new(const struct raft_config *config, struct raft **out)
{
    (void)config;
    *out = NULL;
    return CAIRN_EUNSUPPORTED;
}

void raft_free(struct raft *r)
{
    (void)r;
}

int raft_step(struct raft *r, const struct raft_event *event,
              struct raft_update *update)
{
    (void)r;
    (void)event;
    memset(update, 0, sizeof(*update));
    return CAIRN_EUNSUPPORTED;
}

int raft_tick(struct raft *r, struct raft_update *update)
{
    struct raft_event ev = {.type = RAFT_EVENT_TICK};
    return raft_step(r, &ev, update);
}

int raft_receive(struct raft *r, const struct raft_message *m,
                 struct raft_update *update)
{
    struct raft_event ev = {.type = RAFT_EVENT_RECEIVE, .u.message = m};
    return raft_step(r, &ev, update);
}

int raft_propose(struct raft *r, const void *data, size_t len,
                 struct raft_update *update)
{
    struct raft_proposal p = {.data = data, .len = len};
    struct raft_event ev = {.type = RAFT_EVENT_PROPOSE,
                            .u.propose = {.items = &p, .n = 1}};
    return raft_step(r, &ev, update);
}

int raft_persisted(struct raft *r, raft_index index, raft_term term,
                   struct raft_update *update)
{
    struct raft_event ev = {.type = RAFT_EVENT_PERSISTED,
                            .u.persisted = {.index = index, .term = term}};
    return raft_step(r, &ev, update);
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "unknown";
    }
}

const char *raft_progress_state_name(int state)
{
    switch (state) {
    case RAFT_PROGRESS_PROBE:
        return "probe";
    case RAFT_PROGRESS_REPLICATE:
        return "replicate";
    case RAFT_PROGRESS_SNAPSHOT:
        return "snapshot";
    default:
        return "unknown";
    }
}

void raft_status_get(const struct raft *r, struct raft_status *st)
{
    (void)r;
    memset(st, 0, sizeof(*st));
}

size_t raft_describe(const struct raft *r, char *buf, size_t size)
{
    (void)r;
    int n = snprintf(buf, size, "(core not implemented)");
    return n < 0 ? 0 : (size_t)n;
}
