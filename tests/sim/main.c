/* cairn-sim: runs seeds of the deterministic cluster simulation, one forked
 * process per seed (so a core assertion fails that seed, not the campaign),
 * up to --jobs at a time, and sums up the campaign in its last line. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "member.h"
#include "util/util.h"

#define JOBS_MAX 64
#define EXCLUDE_MAX 256
/* A seed takes well under a second, under ASan too: one still running
 * after this is in a livelock or a wait that never ends. Killing it names
 * the seed, where the campaign would otherwise run into CTest's timeout
 * with no word of which seed hung. */
#define SEED_WALL_S_DEFAULT 120

struct opts {
    uint64_t first_seed;
    uint64_t seeds;
    int jobs;
    int core_fault;
    bool members; /* --members: whole members (member.h) */
    const char *fault_name;
    bool single;      /* --seed: one seed, trace to stdout with --trace */
    bool trace;       /* print every trace line (single seed) */
    bool expect_fail; /* succeed iff some seed fails (fault tests) */
    bool quiet;
    unsigned seed_wall_s; /* a seed still running after this is killed */
    const char *trace_dir;
    const char *self;
    uint64_t exclude[EXCLUDE_MAX];
    int n_exclude;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cairn-sim [--members] [--seeds N] [--first-seed S]\n"
            "                 [--jobs J] [--seed S [--trace]] [--fault NAME]\n"
            "                 [--expect-failure] [--exclude S,S,...]\n"
            "                 [--trace-dir DIR] [--quiet] [--seed-wall-s N]\n"
            "Runs seeds of the Raft cluster simulation. Exit status 0 only\n"
            "if every seed passed (with --expect-failure: only if some seed\n"
            "failed). A seed still running after --seed-wall-s seconds of\n"
            "wall clock (default %u, 0: no limit) is killed and fails.\n"
            "Faults: local_reads (host), and the core's switches\n"
            "(CAIRN_FAULTS builds only):",
            SEED_WALL_S_DEFAULT);
    for (int i = 1; sim_core_fault_name(i) != NULL; i++)
        if (!sim_fault_is_host(i))
            fprintf(out, " %s", sim_core_fault_name(i));
    fprintf(out, "\n--members runs whole cairn members (node, WAL, mvcc, "
                 "lease); its faults\n(CAIRN_FAULTS builds only):");
    for (int i = 1; sim_member_fault_name(i) != NULL; i++)
        fprintf(out, " %s", sim_member_fault_name(i));
    fprintf(out, "\n");
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    o->first_seed = 1;
    o->seeds = 1;
    o->jobs = 1;
    o->trace_dir = ".";
    o->seed_wall_s = SEED_WALL_S_DEFAULT;
    o->self = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (strcmp(a, "--seeds") == 0 && v && parse_u64(v, &n)) {
            o->seeds = n;
            i++;
        } else if (strcmp(a, "--first-seed") == 0 && v && parse_u64(v, &n)) {
            o->first_seed = n;
            i++;
        } else if (strcmp(a, "--seed") == 0 && v && parse_u64(v, &n)) {
            o->first_seed = n;
            o->seeds = 1;
            o->single = true;
            i++;
        } else if (strcmp(a, "--jobs") == 0 && v && parse_u64(v, &n) &&
                   n >= 1 && n <= JOBS_MAX) {
            o->jobs = (int)n;
            i++;
        } else if (strcmp(a, "--fault") == 0 && v) {
            o->fault_name = v;
            i++;
        } else if (strcmp(a, "--members") == 0) {
            o->members = true;
        } else if (strcmp(a, "--exclude") == 0 && v) {
            char *copy = cairn_strdup(v);
            if (copy == NULL)
                return -1;
            for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
                if (o->n_exclude == EXCLUDE_MAX || !parse_u64(tok, &n)) {
                    cairn_free(copy);
                    return -1;
                }
                o->exclude[o->n_exclude++] = n;
            }
            cairn_free(copy);
            i++;
        } else if (strcmp(a, "--seed-wall-s") == 0 && v && parse_u64(v, &n) &&
                   n <= 86400) {
            o->seed_wall_s = (unsigned)n;
            i++;
        } else if (strcmp(a, "--trace-dir") == 0 && v) {
            o->trace_dir = v;
            i++;
        } else if (strcmp(a, "--trace") == 0) {
            o->trace = true;
        } else if (strcmp(a, "--expect-failure") == 0) {
            o->expect_fail = true;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

/* The fault named by --fault, in the mode chosen (any order of flags). */
static int parse_fault(struct opts *o)
{
    if (o->fault_name == NULL)
        return 0;
    const char *v = o->fault_name;
    o->core_fault =
        o->members ? sim_member_fault_parse(v) : sim_core_fault_parse(v);
    if (o->core_fault < 0) {
        fprintf(stderr, "cairn-sim: unknown fault %s%s\n", v,
                o->members ? " (with --members)" : "");
        return -1;
    }
    bool host = !o->members && sim_fault_is_host(o->core_fault);
    if (o->core_fault != 0 && !host && !sim_core_faults_available()) {
        fprintf(stderr, "cairn-sim: this build has no fault switches "
                        "(configure with -DCAIRN_FAULTS=ON)\n");
        return -1;
    }
    return 0;
}

static const char *fault_name(const struct opts *o)
{
    return o->members ? sim_member_fault_name(o->core_fault)
                      : sim_core_fault_name(o->core_fault);
}

static bool excluded(const struct opts *o, uint64_t seed)
{
    for (int i = 0; i < o->n_exclude; i++)
        if (o->exclude[i] == seed)
            return true;
    return false;
}

static void repro_line(const struct opts *o, uint64_t seed, char *out,
                       size_t size)
{
    const char *mode = o->members ? " --members" : "";
    if (o->core_fault)
        snprintf(out, size, "%s%s --seed %" PRIu64 " --fault %s --trace",
                 o->self, mode, seed, fault_name(o));
    else
        snprintf(out, size, "%s%s --seed %" PRIu64 " --trace", o->self, mode,
                 seed);
}

/* One seed in this process. Writes "seed verdict events" to fd. */
static int run_seed(const struct opts *o, uint64_t seed, int fd)
{
    struct sim_options so = {.seed = seed,
                             .core_fault = o->core_fault,
                             .echo = o->single && o->trace ? stdout : NULL,
                             .trace_lines = 4000};
    char path[512];
    snprintf(path, sizeof(path), "%s/cairn-sim-%" PRIu64 ".trace", o->trace_dir,
             seed);
    /* The trace file is opened only on failure: run into memory first. */
    char *mem = NULL;
    size_t mem_len = 0;
    FILE *tf = open_memstream(&mem, &mem_len);
    struct sim_result res;
    int rv = o->members ? sim_members_run(&so, &res, tf)
                        : sim_cluster_run(&so, &res, tf);
    if (tf != NULL)
        fclose(tf);
    if (rv != 0) {
        fprintf(stderr, "cairn-sim: seed %" PRIu64 ": %s\n", seed,
                cairn_strerror(rv));
        free(mem);
        return 2;
    }
    fflush(stdout); /* the echoed trace comes before the verdict */
    if (res.verdict != SIM_PASS) {
        char repro[600];
        repro_line(o, seed, repro, sizeof(repro));
        FILE *out = fopen(path, "w");
        if (out != NULL) {
            fwrite(mem, 1, mem_len, out);
            fclose(out);
        }
        if (!o->quiet || o->single)
            fprintf(stderr,
                    "FAIL seed %" PRIu64 " (%s): %s\n  mix: %s\n"
                    "  trace of the last events: %s\n  reproduce: %s\n",
                    seed, sim_verdict_name(res.verdict), res.reason, res.mix,
                    out ? path : "(could not write)", repro);
    } else if (o->single) {
        fprintf(stderr,
                "pass seed %" PRIu64 ": %s\n  %" PRIu64 " events, %" PRIu64
                " ms simulated, term %" PRIu64 ", %" PRIu64
                " committed, ops ok %" PRIu64 " failed %" PRIu64
                " unknown %" PRIu64 ", trace hash %016" PRIx64 "\n",
                seed, res.mix, res.events, res.sim_time_us / 1000, res.max_term,
                res.committed, res.ops_ok, res.ops_failed, res.ops_unknown,
                res.trace_hash);
    }
    free(mem);
    if (fd >= 0) {
        char rec[200];
        int n = snprintf(rec, sizeof(rec),
                         "%" PRIu64 " %d %" PRIu64 " %016" PRIx64 " %" PRIu64
                         " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 "\n",
                         seed, (int)res.verdict, res.events, res.trace_hash,
                         res.pauses, res.store_sync_failures,
                         res.store_full_failures, res.store_full_maint,
                         res.release_crashes);
        ssize_t w = write(fd, rec, (size_t)n);
        (void)w;
    }
    return res.verdict == SIM_PASS ? 0 : 1;
}

struct campaign {
    uint64_t run, failures, events;
    uint64_t first_failure;
    /* --members: faults injected */
    uint64_t pauses, store_sync_failures, store_full_failures;
    uint64_t store_full_maint, release_crashes;
};

static void drain(int fd, struct campaign *cp, char *acc, size_t *acc_len,
                  size_t acc_cap)
{
    for (;;) {
        ssize_t n = read(fd, acc + *acc_len, acc_cap - *acc_len - 1);
        if (n <= 0)
            break;
        *acc_len += (size_t)n;
        acc[*acc_len] = '\0';
        char *line = acc;
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            uint64_t seed, events, hash, pauses, syncs, fulls, maint, rel;
            int verdict;
            int k = sscanf(line,
                           "%" SCNu64 " %d %" SCNu64 " %" SCNx64 " %" SCNu64
                           " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                           &seed, &verdict, &events, &hash, &pauses, &syncs,
                           &fulls, &maint, &rel);
            if (k >= 3)
                cp->events += events;
            if (k == 9) {
                cp->pauses += pauses;
                cp->store_sync_failures += syncs;
                cp->store_full_failures += fulls;
                cp->store_full_maint += maint;
                cp->release_crashes += rel;
            }
            line = nl + 1;
        }
        size_t rest = *acc_len - (size_t)(line - acc);
        memmove(acc, line, rest);
        *acc_len = rest;
    }
}

/* SIGINT/SIGTERM end a campaign early: no new seeds, the running ones
 * finish, and the summary line still comes. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0 || parse_fault(&o) != 0)
        return 2;
    if (mkdir(o.trace_dir, 0755) != 0 && errno != EEXIST)
        fprintf(stderr, "cairn-sim: %s: %s\n", o.trace_dir, strerror(errno));
    if (o.single)
        return run_seed(&o, o.first_seed, -1);
    int fds[2];
    if (pipe(fds) != 0) {
        perror("cairn-sim: pipe");
        return 2;
    }
    fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct campaign cp = {0};
    struct {
        pid_t pid;
        uint64_t seed;
    } kids[JOBS_MAX];
    int running = 0;
    char acc[8192];
    size_t acc_len = 0;
    double t0 = now_s();
    uint64_t next = o.first_seed, end = o.first_seed + o.seeds;
    bool stop = false;
    while ((next < end && !stop) || running > 0) {
        if (interrupted)
            stop = true;
        while (running < o.jobs && next < end && !stop) {
            uint64_t seed = next++;
            if (excluded(&o, seed))
                continue;
            fflush(stdout);
            fflush(stderr);
            pid_t pid = fork();
            if (pid < 0) {
                perror("cairn-sim: fork");
                stop = true;
                break;
            }
            if (pid == 0) {
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGALRM, SIG_DFL);
                alarm(o.seed_wall_s); /* 0: none */
                close(fds[0]);
                _exit(run_seed(&o, seed, fds[1]));
            }
            kids[running].pid = pid;
            kids[running].seed = seed;
            running++;
        }
        if (running == 0)
            break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            perror("cairn-sim: waitpid");
            return 2;
        }
        int k = 0;
        while (k < running && kids[k].pid != pid)
            k++;
        if (k == running)
            continue;
        uint64_t seed = kids[k].seed;
        kids[k] = kids[--running];
        drain(fds[0], &cp, acc, &acc_len, sizeof(acc));
        cp.run++;
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) {
            if (cp.failures == 0)
                cp.first_failure = seed;
            cp.failures++;
            if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
                char repro[600];
                repro_line(&o, seed, repro, sizeof(repro));
                fprintf(stderr,
                        "FAIL seed %" PRIu64 " (still running after %u s of "
                        "wall clock: killed)\n  reproduce: %s\n",
                        seed, o.seed_wall_s, repro);
            } else if (WIFSIGNALED(status) || WEXITSTATUS(status) > 1) {
                char repro[600];
                repro_line(&o, seed, repro, sizeof(repro));
                fprintf(stderr,
                        "FAIL seed %" PRIu64 " (crashed: %s %d)\n"
                        "  reproduce: %s\n",
                        seed, WIFSIGNALED(status) ? "signal" : "exit",
                        WIFSIGNALED(status) ? WTERMSIG(status)
                                            : WEXITSTATUS(status),
                        repro);
            }
            if (o.expect_fail)
                stop = true;
        }
    }
    drain(fds[0], &cp, acc, &acc_len, sizeof(acc));
    double wall = now_s() - t0;
    char extra[256] = "";
    if (o.members)
        snprintf(extra, sizeof(extra),
                 " pauses=%" PRIu64 " lmdb_sync_failures=%" PRIu64
                 " lmdb_map_full=%" PRIu64 " lmdb_map_full_maint=%" PRIu64
                 " release_crashes=%" PRIu64,
                 cp.pauses, cp.store_sync_failures, cp.store_full_failures,
                 cp.store_full_maint, cp.release_crashes);
    printf("RESULT %s seeds=%" PRIu64 " failures=%" PRIu64 " events=%" PRIu64
           " events_per_s=%.0f wall_s=%.1f first_seed=%" PRIu64 "%s%s%s%s\n",
           o.members ? "sim-members" : "sim", cp.run, cp.failures, cp.events,
           wall > 0 ? (double)cp.events / wall : 0.0, wall, o.first_seed, extra,
           o.core_fault ? " fault=" : "", o.core_fault ? fault_name(&o) : "",
           interrupted ? " interrupted" : "");
    if (o.expect_fail) {
        if (cp.failures == 0)
            fprintf(
                stderr,
                "cairn-sim: expected a failure with fault %s within %" PRIu64
                " seeds, found none\n",
                fault_name(&o), cp.run);
        return cp.failures > 0 ? 0 : 1;
    }
    return cp.failures == 0 && cp.run > 0 ? 0 : 1;
}
