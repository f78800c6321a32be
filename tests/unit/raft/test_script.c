/* Data-driven interaction scripts (as etcd's raft testdata): each file in
 * testdata/ is a sequence of commands, each followed by "----" and the
 * output it must produce, ended by a blank line. CAIRN_REWRITE=1 rewrites
 * the expected outputs from what the core does (then review the diff).
 *
 * Commands (ids are members 1..n):
 *   init <n> [voters=<v>] [prevote] [checkquorum] [maxmsg=<bytes>]
 *   campaign <id> | tick <id> [count] | propose <id> <text>
 *   read <id> <ctx> | transfer <id> <to> | compact <id>
 *   conf <id> <add|remove|learner> <node> | add-empty <id>
 *   isolate <id> | cut <a> <b> | heal | crash <id> | restart <id>
 *   deliver [count]   delivers from the head, printing each message
 *   stabilize         delivers until nothing is queued, printing each
 *   drop              drops everything queued
 *   queue             prints what is queued
 *   status <id>       the member's one-line description
 *   reads <id>        read states the member received, in order
 *   progress <id>     the leader's view of its peers
 */
#include "tests.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OUT_MAX 65536

struct script {
    struct h_net net;
    bool have_net;
    char out[OUT_MAX];
    size_t len;
};

static void emit(struct script *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(struct script *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->out + s->len, OUT_MAX - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len +=
            (size_t)n < OUT_MAX - s->len ? (size_t)n : OUT_MAX - s->len - 1;
}

static void emit_error(struct script *s, int rv)
{
    if (rv != 0)
        emit(s, "error: %s\n", cairn_errname(rv));
}

static void deliver_printing(struct script *s, int max)
{
    for (int i = 0; i < max && s->net.nq > 0; i++) {
        struct raft_message m;
        assert_int_equal(raft_message_decode(s->net.q[0].bytes.data,
                                             s->net.q[0].bytes.len, &m),
                         0);
        char line[512];
        h_render_msg(&m, line, sizeof(line));
        raft_message_decoded_free(&m);
        bool dropped = s->net.cut[s->net.q[0].from][s->net.q[0].to] ||
                       !s->net.nodes[s->net.q[0].to].up;
        emit(s, "%s%s\n", line, dropped ? " (dropped)" : "");
        h_deliver_one(&s->net);
    }
}

static int arg_int(char **argv, int argc, int i)
{
    assert_true(i < argc);
    return atoi(argv[i]);
}

/* Runs one command line; its output goes to s->out. */
static void run_command(struct script *s, char *line)
{
    char *argv[16];
    int argc = 0;
    for (char *tok = strtok(line, " \t"); tok != NULL && argc < 16;
         tok = strtok(NULL, " \t"))
        argv[argc++] = tok;
    if (argc == 0)
        return;
    const char *cmd = argv[0];
    struct h_net *net = &s->net;
    if (strcmp(cmd, "init") == 0) {
        struct raft_config c;
        h_default_config(&c);
        int n = arg_int(argv, argc, 1), voters = n;
        for (int i = 2; i < argc; i++) {
            if (strncmp(argv[i], "voters=", 7) == 0)
                voters = atoi(argv[i] + 7);
            else if (strcmp(argv[i], "prevote") == 0)
                c.pre_vote = true;
            else if (strcmp(argv[i], "checkquorum") == 0)
                c.check_quorum = true;
            else if (strncmp(argv[i], "maxmsg=", 7) == 0)
                c.max_size_per_msg = strtoull(argv[i] + 7, NULL, 10);
            else
                fail_msg("init: unknown option %s", argv[i]);
        }
        if (s->have_net)
            h_close(net);
        h_init(net, n, voters, &c);
        s->have_net = true;
        return;
    }
    assert_true(s->have_net);
    raft_id id = argc > 1 ? (raft_id)atoi(argv[1]) : 0;
    if (strcmp(cmd, "campaign") == 0) {
        emit_error(s, h_campaign(net, id));
    } else if (strcmp(cmd, "tick") == 0) {
        emit_error(s, h_tick(net, id, argc > 2 ? atoi(argv[2]) : 1));
    } else if (strcmp(cmd, "propose") == 0) {
        emit_error(s, h_propose(net, id, argc > 2 ? argv[2] : ""));
    } else if (strcmp(cmd, "read") == 0) {
        emit_error(s, h_read(net, id, strtoull(argv[2], NULL, 10)));
    } else if (strcmp(cmd, "transfer") == 0) {
        emit_error(s, h_transfer(net, id, (raft_id)arg_int(argv, argc, 2)));
    } else if (strcmp(cmd, "compact") == 0) {
        h_compact(net, id);
    } else if (strcmp(cmd, "conf") == 0) {
        const char *what = argv[2];
        int type = strcmp(what, "add") == 0      ? RAFT_CC_ADD_NODE
                   : strcmp(what, "remove") == 0 ? RAFT_CC_REMOVE_NODE
                                                 : RAFT_CC_ADD_LEARNER;
        emit_error(s, h_conf(net, id, RAFT_CC_TRANSITION_AUTO, 1, type,
                             arg_int(argv, argc, 3)));
    } else if (strcmp(cmd, "add-empty") == 0) {
        h_add_empty(net, id);
    } else if (strcmp(cmd, "isolate") == 0) {
        h_isolate(net, id);
    } else if (strcmp(cmd, "cut") == 0) {
        h_cut(net, id, (raft_id)arg_int(argv, argc, 2));
    } else if (strcmp(cmd, "heal") == 0) {
        h_heal(net);
    } else if (strcmp(cmd, "crash") == 0) {
        h_crash(net, id);
    } else if (strcmp(cmd, "restart") == 0) {
        h_start(net, id);
    } else if (strcmp(cmd, "deliver") == 0) {
        deliver_printing(s, argc > 1 ? atoi(argv[1]) : 1);
    } else if (strcmp(cmd, "stabilize") == 0) {
        deliver_printing(s, 100000);
    } else if (strcmp(cmd, "drop") == 0) {
        h_drop_queue(net);
    } else if (strcmp(cmd, "queue") == 0) {
        static char q[OUT_MAX];
        emit(s, "%s", h_render_queue(net, q, sizeof(q)));
    } else if (strcmp(cmd, "status") == 0) {
        char d[256];
        raft_describe(h_r(net, id), d, sizeof(d));
        emit(s, "%s\n", d);
    } else if (strcmp(cmd, "reads") == 0) {
        struct h_node *nd = &net->nodes[id];
        for (size_t i = 0; i < nd->n_reads; i++)
            emit(s, "ctx=%llu index=%llu\n",
                 (unsigned long long)nd->reads[i].ctx,
                 (unsigned long long)nd->reads[i].index);
    } else if (strcmp(cmd, "progress") == 0) {
        struct raft_status st;
        raft_status_get(h_r(net, id), &st);
        for (uint32_t i = 0; i < st.n_progress; i++) {
            const struct raft_progress_status *p = &st.progress[i];
            emit(s, "%llu: %s match=%llu next=%llu%s%s inflight=%u\n",
                 (unsigned long long)p->id, raft_progress_state_name(p->state),
                 (unsigned long long)p->match, (unsigned long long)p->next,
                 p->learner ? " learner" : "", p->probe_sent ? " paused" : "",
                 p->inflight_count);
        }
    } else {
        fail_msg("unknown command %s", cmd);
    }
    h_check_safety(net);
}

/* Reads the whole file; NULL if it cannot. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    struct buf b = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    assert_int_equal(buf_append_u8(&b, 0), 0);
    return (char *)b.data;
}

static int run_file(const char *path)
{
    char *text = slurp(path);
    assert_non_null(text);
    bool rewrite = getenv("CAIRN_REWRITE") != NULL;
    struct buf rewritten = BUF_INIT;
    struct script *s = cairn_calloc(1, sizeof(*s));
    assert_non_null(s);
    int failures = 0;
    int lineno = 0;
    char *p = text;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        lineno++;
        char line[1024];
        assert_true(len < sizeof(line));
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        if (len == 0 || line[0] == '#') {
            buf_append(&rewritten, line, len);
            buf_append_u8(&rewritten, '\n');
            continue;
        }
        /* A command, "----", then the expected output up to a blank line
         * (or the end). */
        buf_append(&rewritten, line, len);
        buf_append_u8(&rewritten, '\n');
        int cmd_line = lineno;
        char cmd[1024];
        memcpy(cmd, line, len + 1);
        nl = strchr(p, '\n');
        assert_true(nl != NULL && strncmp(p, "----\n", 5) == 0);
        p += 5;
        lineno++;
        char *end = strstr(p, "\n\n");
        size_t exp_len;
        if (*p == '\n') {
            exp_len = 0;
        } else if (end != NULL) {
            exp_len = (size_t)(end - p) + 1;
        } else {
            exp_len = strlen(p);
        }
        for (size_t i = 0; i < exp_len; i++)
            lineno += p[i] == '\n';
        s->len = 0;
        s->out[0] = '\0';
        run_command(s, cmd);
        if (s->len != exp_len || memcmp(s->out, p, exp_len) != 0) {
            if (!rewrite) {
                print_error("%s:%d: %s\nwant:\n%.*sgot:\n%s\n", path, cmd_line,
                            cmd, (int)exp_len, p, s->out);
                failures++;
            }
        }
        buf_append(&rewritten, "----\n", 5);
        buf_append(&rewritten, s->out, s->len);
        p += exp_len;
        if (*p == '\n') {
            p++;
            lineno++;
        }
        buf_append_u8(&rewritten, '\n');
    }
    if (rewrite) {
        /* Drop the final blank line the loop added. */
        while (rewritten.len > 1 && rewritten.data[rewritten.len - 1] == '\n' &&
               rewritten.data[rewritten.len - 2] == '\n')
            rewritten.len--;
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        fwrite(rewritten.data, 1, rewritten.len, f);
        fclose(f);
    }
    if (s->have_net)
        h_close(&s->net);
    cairn_free(s);
    buf_free(&rewritten);
    cairn_free(text);
    return failures;
}

static void test_scripts(void **state)
{
    (void)state;
    DIR *d = opendir(RAFT_TESTDATA);
    assert_non_null(d);
    /* Files in name order, so failures reproduce in the same order. */
    char names[64][256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".txt") == 0 && l < 256)
            memcpy(names[n++], e->d_name, l + 1);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(names[0]),
          (int (*)(const void *, const void *))strcmp);
    assert_true(n > 0);
    int failures = 0;
    for (int i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof(path), "%s/%.200s", RAFT_TESTDATA, names[i]);
        failures += run_file(path);
    }
    assert_int_equal(failures, 0);
}

int test_script_group(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripts),
    };
    return cmocka_run_group_tests_name("raft_script", tests, NULL, NULL);
}
