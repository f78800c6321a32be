/* The linearizability checker: per-key Wing–Gong/Lowe search over a linked
 * list of call and return entries, with a cache of (linearized set, value)
 * states already explored (Lowe's memoisation, as in Porcupine). */
#include "lincheck.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define LIN_DEFAULT_BUDGET 10000000ull
#define LIN_INFINITY UINT64_MAX

void lin_history_init(struct lin_history *h, size_t len_max)
{
    h->ops = NULL;
    h->len = 0;
    h->cap = 0;
    h->len_max = len_max;
}

void lin_history_free(struct lin_history *h)
{
    cairn_free(h->ops);
    h->ops = NULL;
    h->len = h->cap = 0;
}

int lin_history_invoke(struct lin_history *h, uint32_t client, uint32_t key,
                       enum lin_kind kind, int64_t value, int64_t expect,
                       uint64_t time, size_t *id)
{
    if (h->len >= h->len_max)
        return CAIRN_EFULL;
    if (h->len == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        if (cap > h->len_max)
            cap = h->len_max;
        struct lin_op *ops = cairn_realloc(h->ops, cap * sizeof(*ops));
        if (ops == NULL)
            return CAIRN_ENOMEM;
        h->ops = ops;
        h->cap = cap;
    }
    struct lin_op *op = &h->ops[h->len];
    memset(op, 0, sizeof(*op));
    op->client = client;
    op->key = key;
    op->kind = kind;
    op->outcome = LIN_PENDING;
    op->value = value;
    op->expect = expect;
    op->invoke = time;
    *id = h->len++;
    return 0;
}

void lin_history_complete(struct lin_history *h, size_t id,
                          enum lin_outcome outcome, int64_t read_value,
                          bool cas_swapped, uint64_t time)
{
    CAIRN_ASSERT(id < h->len);
    struct lin_op *op = &h->ops[id];
    CAIRN_ASSERT(op->outcome == LIN_PENDING);
    CAIRN_ASSERT(time >= op->invoke);
    op->outcome = outcome;
    op->complete = time;
    if (outcome == LIN_OK && op->kind == LIN_READ)
        op->value = read_value;
    if (outcome == LIN_OK && op->kind == LIN_CAS)
        op->cas_swapped = cas_swapped;
}

void lin_op_format(const struct lin_op *op, char *out, size_t size)
{
    static const char *const outcomes[] = {"pending", "ok", "failed",
                                           "unknown"};
    char what[96];
    switch (op->kind) {
    case LIN_WRITE:
        snprintf(what, sizeof(what), "write(%" PRId64 ")", op->value);
        break;
    case LIN_READ:
        if (op->outcome == LIN_OK)
            snprintf(what, sizeof(what), "read() -> %" PRId64, op->value);
        else
            snprintf(what, sizeof(what), "read()");
        break;
    case LIN_CAS:
        snprintf(what, sizeof(what), "cas(%" PRId64 " -> %" PRId64 ")%s",
                 op->expect, op->value,
                 op->outcome != LIN_OK ? ""
                 : op->cas_swapped     ? " -> swapped"
                                       : " -> not swapped");
        break;
    }
    if (op->outcome == LIN_OK || op->outcome == LIN_FAILED)
        snprintf(out, size,
                 "client %" PRIu32 " key %" PRIu32 " %s %s [%" PRIu64
                 ", %" PRIu64 "]",
                 op->client, op->key, what, outcomes[op->outcome], op->invoke,
                 op->complete);
    else
        snprintf(out, size,
                 "client %" PRIu32 " key %" PRIu32 " %s %s [%" PRIu64 ", -]",
                 op->client, op->key, what, outcomes[op->outcome], op->invoke);
}

/* Whether an op constrains the history at all. */
static bool op_relevant(const struct lin_op *op)
{
    if (op->outcome == LIN_FAILED)
        return false;
    if (op->kind == LIN_READ && op->outcome != LIN_OK)
        return false;
    return true;
}

static bool op_known(const struct lin_op *op)
{
    return op->outcome == LIN_OK;
}

/* The register model's step: whether op may take effect on `state` with its
 * recorded result, and the state after it. */
static bool model_step(const struct lin_op *op, int64_t state, int64_t *next)
{
    switch (op->kind) {
    case LIN_WRITE:
        *next = op->value;
        return true;
    case LIN_READ:
        *next = state;
        return state == op->value;
    case LIN_CAS: {
        bool match = state == op->expect;
        if (op_known(op) && match != op->cas_swapped)
            return false;
        *next = match ? op->value : state;
        return true;
    }
    }
    CAIRN_UNREACHABLE();
}

struct entry {
    uint64_t time;
    uint32_t op;   /* index into the key's op list */
    bool is_call;  /* a call entry, or the op's return entry */
    uint32_t prev; /* linked list over entries; 0 is the head sentinel */
    uint32_t next;
    uint32_t match; /* call: its return entry; return: its call entry */
};

/* The memo: a set of (bitset of linearized ops, register value). */
struct memo {
    size_t words;    /* uint64 words per bitset */
    uint64_t *items; /* count * (words + 1) */
    size_t count;
    size_t items_cap; /* in items */
    uint32_t *slots;  /* 1-based item index; 0 = empty */
    size_t nslots;    /* power of two */
};

static uint64_t memo_hash(const uint64_t *bits, size_t words, int64_t value)
{
    uint64_t h = 0x243F6A8885A308D3ull ^ (uint64_t)value;
    for (size_t i = 0; i < words; i++) {
        uint64_t st = h ^ bits[i];
        h = splitmix64(&st);
    }
    uint64_t st = h;
    return splitmix64(&st);
}

static int memo_init(struct memo *m, size_t words)
{
    memset(m, 0, sizeof(*m));
    m->words = words;
    m->nslots = 1024;
    m->slots = cairn_calloc(m->nslots, sizeof(*m->slots));
    return m->slots ? 0 : CAIRN_ENOMEM;
}

static void memo_free(struct memo *m)
{
    cairn_free(m->items);
    cairn_free(m->slots);
}

static const uint64_t *memo_item(const struct memo *m, size_t i)
{
    return &m->items[i * (m->words + 1)];
}

static int memo_grow(struct memo *m)
{
    size_t nslots = m->nslots * 2;
    uint32_t *slots = cairn_calloc(nslots, sizeof(*slots));
    if (slots == NULL)
        return CAIRN_ENOMEM;
    for (size_t i = 0; i < m->count; i++) {
        const uint64_t *it = memo_item(m, i);
        uint64_t h = memo_hash(it, m->words, (int64_t)it[m->words]);
        size_t s = h & (nslots - 1);
        while (slots[s] != 0)
            s = (s + 1) & (nslots - 1);
        slots[s] = (uint32_t)(i + 1);
    }
    cairn_free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

/* Adds (bits, value) unless present; *added tells which. */
static int memo_add(struct memo *m, const uint64_t *bits, int64_t value,
                    bool *added)
{
    uint64_t h = memo_hash(bits, m->words, value);
    size_t s = h & (m->nslots - 1);
    while (m->slots[s] != 0) {
        const uint64_t *it = memo_item(m, m->slots[s] - 1);
        if ((int64_t)it[m->words] == value &&
            memcmp(it, bits, m->words * sizeof(uint64_t)) == 0) {
            *added = false;
            return 0;
        }
        s = (s + 1) & (m->nslots - 1);
    }
    if (m->count == m->items_cap) {
        size_t cap = m->items_cap ? m->items_cap * 2 : 256;
        uint64_t *items =
            cairn_realloc(m->items, cap * (m->words + 1) * sizeof(uint64_t));
        if (items == NULL)
            return CAIRN_ENOMEM;
        m->items = items;
        m->items_cap = cap;
    }
    uint64_t *it = &m->items[m->count * (m->words + 1)];
    memcpy(it, bits, m->words * sizeof(uint64_t));
    it[m->words] = (uint64_t)value;
    m->count++;
    m->slots[s] = (uint32_t)m->count;
    *added = true;
    if (m->count * 2 > m->nslots)
        return memo_grow(m);
    return 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    /* Calls before returns at equal times: touching ops are concurrent. */
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op ? 1 : 0;
}

struct frame {
    uint32_t call; /* the call entry that was linearized */
    int64_t state; /* the value before it */
};

/* Checks one key's ops (indices into all[]); fills rep on violation. */
static int check_key(const struct lin_op *all, const size_t *idx, size_t n,
                     int64_t initial, uint64_t budget, struct lin_report *rep)
{
    int rv = CAIRN_ENOMEM;
    size_t nent = 2 * n + 1;
    size_t words = (n + 63) / 64;
    struct entry *ent = cairn_calloc(nent, sizeof(*ent));
    struct frame *stack = cairn_calloc(n ? n : 1, sizeof(*stack));
    uint64_t *bits = cairn_calloc(words ? words : 1, sizeof(uint64_t));
    struct memo memo;
    bool memo_ok = false;
    if (ent == NULL || stack == NULL || bits == NULL)
        goto err_after_alloc;
    if (memo_init(&memo, words ? words : 1) != 0)
        goto err_after_alloc;
    memo_ok = true;

    size_t known = 0;
    for (size_t i = 0; i < n; i++) {
        const struct lin_op *op = &all[idx[i]];
        ent[1 + 2 * i] = (struct entry){
            .time = op->invoke, .op = (uint32_t)i, .is_call = true};
        ent[2 + 2 * i] =
            (struct entry){.time = op_known(op) ? op->complete : LIN_INFINITY,
                           .op = (uint32_t)i,
                           .is_call = false};
        known += op_known(op);
    }
    qsort(ent + 1, nent - 1, sizeof(*ent), entry_cmp);
    /* Link the sorted entries and pair each call with its return. */
    uint32_t *ret_of = cairn_calloc(n ? n : 1, sizeof(uint32_t));
    uint32_t *call_of = cairn_calloc(n ? n : 1, sizeof(uint32_t));
    if (ret_of == NULL || call_of == NULL) {
        cairn_free(ret_of);
        cairn_free(call_of);
        goto err_after_alloc;
    }
    for (size_t e = 1; e < nent; e++) {
        ent[e].prev = (uint32_t)(e - 1);
        ent[e].next = e + 1 < nent ? (uint32_t)(e + 1) : 0;
        if (ent[e].is_call)
            call_of[ent[e].op] = (uint32_t)e;
        else
            ret_of[ent[e].op] = (uint32_t)e;
    }
    ent[0].next = nent > 1 ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        ent[call_of[i]].match = ret_of[i];
        ent[ret_of[i]].match = call_of[i];
    }
    cairn_free(ret_of);
    cairn_free(call_of);

    size_t depth = 0, known_done = 0;
    int64_t state = initial;
    uint32_t e = ent[0].next;
    uint64_t steps = 0;
    size_t deepest = 0;
    size_t blocking = n ? idx[0] : 0;
    rep->result = LIN_LINEARIZABLE;
    while (known_done < known) {
        if (++steps > budget) {
            rep->result = LIN_GAVE_UP;
            break;
        }
        CAIRN_ASSERT(e != 0); /* a return entry always precedes the end */
        struct entry *en = &ent[e];
        if (en->is_call) {
            const struct lin_op *op = &all[idx[en->op]];
            int64_t next;
            bool added = false;
            if (model_step(op, state, &next)) {
                bits[en->op / 64] |= 1ull << (en->op % 64);
                rv = memo_add(&memo, bits, next, &added);
                if (rv != 0)
                    goto err_after_memo;
                if (!added)
                    bits[en->op / 64] &= ~(1ull << (en->op % 64));
            }
            if (added) {
                stack[depth++] = (struct frame){.call = e, .state = state};
                state = next;
                known_done += op_known(op);
                /* Lift the call and its return out of the list. */
                struct entry *r = &ent[en->match];
                ent[en->prev].next = en->next;
                ent[en->next].prev = en->prev;
                ent[r->prev].next = r->next;
                if (r->next != 0)
                    ent[r->next].prev = r->prev;
                e = ent[0].next;
            } else {
                e = en->next;
            }
        } else {
            /* An op returned before being linearized: backtrack. */
            if (depth >= deepest) {
                deepest = depth;
                blocking = idx[en->op];
            }
            if (depth == 0) {
                rep->result = LIN_VIOLATION;
                break;
            }
            struct frame f = stack[--depth];
            struct entry *c = &ent[f.call];
            struct entry *r = &ent[c->match];
            const struct lin_op *op = &all[idx[c->op]];
            known_done -= op_known(op);
            state = f.state;
            bits[c->op / 64] &= ~(1ull << (c->op % 64));
            /* Unlift, in reverse order of lifting. */
            if (r->next != 0)
                ent[r->next].prev = c->match;
            ent[r->prev].next = c->match;
            ent[c->next].prev = f.call;
            ent[c->prev].next = f.call;
            e = c->next;
        }
    }
    rep->steps += steps;
    if (rep->result != LIN_LINEARIZABLE) {
        rep->key = n ? all[idx[0]].key : 0;
        rep->key_ops = n;
        rep->deepest = deepest;
        rep->blocking_op = blocking;
    }
    rv = 0;
err_after_memo:
err_after_alloc:
    if (memo_ok)
        memo_free(&memo);
    cairn_free(bits);
    cairn_free(stack);
    cairn_free(ent);
    return rv;
}

struct keyed {
    uint32_t key;
    size_t i;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i ? 1 : 0;
}

int lin_check(const struct lin_op *ops, size_t n, int64_t initial,
              uint64_t step_budget, struct lin_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->result = LIN_LINEARIZABLE;
    if (step_budget == 0)
        step_budget = LIN_DEFAULT_BUDGET;
    struct keyed *k = cairn_calloc(n ? n : 1, sizeof(*k));
    size_t *idx = cairn_calloc(n ? n : 1, sizeof(*idx));
    int rv = CAIRN_ENOMEM;
    if (k == NULL || idx == NULL)
        goto out;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (op_relevant(&ops[i]))
            k[m++] = (struct keyed){.key = ops[i].key, .i = i};
    qsort(k, m, sizeof(*k), keyed_cmp);
    rv = 0;
    for (size_t lo = 0; lo < m;) {
        size_t hi = lo;
        while (hi < m && k[hi].key == k[lo].key) {
            idx[hi - lo] = k[hi].i;
            hi++;
        }
        rep->keys_checked++;
        rv = check_key(ops, idx, hi - lo, initial, step_budget, rep);
        if (rv != 0 || rep->result != LIN_LINEARIZABLE)
            break;
        lo = hi;
    }
out:
    cairn_free(idx);
    cairn_free(k);
    return rv;
}
