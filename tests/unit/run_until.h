/* Bounded waits for the unit tests: drive a libuv loop (or any step) until
 * a condition holds, for at most a wall-clock deadline. A wake-up that never
 * comes then fails the test at once, naming the condition and the line that
 * waited, instead of blocking in poll until CTest's timeout says nothing.
 * (A call that blocks by itself, with no loop to turn: watchdog.h.) */
#ifndef CAIRN_TEST_RUN_UNTIL_H
#define CAIRN_TEST_RUN_UNTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
/* cmocka needs the includes above first */
#include <cmocka.h>
#include <uv.h>

/* How long a wait lasts, in wall-clock ms: far beyond any wait of a passing
 * test on a loaded machine (or under ASan), well inside CTest's timeout. */
#define RU_WAIT_MS 30000
/* The longest one loop turn blocks, so that the deadline is checked even
 * when nothing at all happens. */
#define RU_TURN_MS 100

static inline uint64_t ru_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static inline void ru_on_wake(uv_timer_t *t)
{
    (void)t;
}

static inline void ru_free_wake(uv_handle_t *h)
{
    free(h);
}

/* The timer that bounds one wait's turns. Unreferenced, so that it keeps
 * no finished loop alive; one per wait, restarted every turn (a handle
 * closed every turn would keep libuv from sleeping at all). On the heap:
 * it is freed by its close callback, which runs in the loop's next turn,
 * after the wait has returned. */
static inline uv_timer_t *ru_wake_open(uv_loop_t *loop)
{
    uv_timer_t *t = malloc(sizeof(*t));
    assert_non_null(t);
    assert_int_equal(uv_timer_init(loop, t), 0);
    uv_unref((uv_handle_t *)t);
    t->data = t; /* marks it ours, for ru_loop_close */
    return t;
}

static inline void ru_wake_close(uv_timer_t *t)
{
    uv_close((uv_handle_t *)t, ru_free_wake);
}

/* One UV_RUN_ONCE turn that blocks for at most RU_TURN_MS, and never past
 * the deadline: UV_RUN_ONCE's own poll has no bound, and polling outside
 * uv_run instead would skip the prepare phase, where writes queued by the
 * last turn's callbacks go out. False once the loop has nothing left that
 * could ever change the condition. */
static inline bool ru_turn(uv_loop_t *loop, uv_timer_t *wake,
                           uint64_t deadline_ms)
{
    uint64_t now = ru_now_ms();
    uint64_t cap = deadline_ms > now ? deadline_ms - now : 0;
    if (cap > RU_TURN_MS)
        cap = RU_TURN_MS;
    uv_timer_start(wake, ru_on_wake, cap, 0);
    uv_run(loop, UV_RUN_ONCE);
    return uv_loop_alive(loop) != 0;
}

/* Fails the current test at file:line (cmocka reports that place, not
 * this header's). */
static inline void ru_failed(const char *what, const char *file, int line,
                             uint64_t ms, bool alive)
{
    if (alive)
        print_error("%s:%d: still not (%s) after %llu ms\n", file, line, what,
                    (unsigned long long)ms);
    else
        print_error("%s:%d: still not (%s), and the loop has nothing left to "
                    "run\n",
                    file, line, what);
    _fail(file, line);
}

/* Runs loop until cond holds, at most ms; cond is checked between turns. */
#define LOOP_UNTIL_MS(loop, cond, what, ms)                         \
    do {                                                            \
        uint64_t ru_end_ = ru_now_ms() + (ms);                      \
        bool ru_alive_ = true;                                      \
        uv_timer_t *ru_wake_ = NULL;                                \
        while (!(cond) && ru_alive_ && ru_now_ms() < ru_end_) {     \
            if (ru_wake_ == NULL)                                   \
                ru_wake_ = ru_wake_open((loop));                    \
            ru_alive_ = ru_turn((loop), ru_wake_, ru_end_);         \
        }                                                           \
        if (ru_wake_ != NULL)                                       \
            ru_wake_close(ru_wake_);                                \
        if (!(cond))                                                \
            ru_failed((what), __FILE__, __LINE__, (ms), ru_alive_); \
    } while (0)

/* The usual wait: loop is a uv_loop_t *. */
#define LOOP_UNTIL(loop, cond) LOOP_UNTIL_MS((loop), (cond), #cond, RU_WAIT_MS)

/* The same for a fixture f with a `loop` member. */
#define RUN_UNTIL(f, cond) LOOP_UNTIL(&(f)->loop, cond)

/* Repeats step until cond holds, at most RU_WAIT_MS: for waits that are not
 * a loop's (a simulated member stepped by hand, a loop that must be polled
 * without blocking). step is one statement or call. */
#define STEP_UNTIL(cond, step)                                      \
    do {                                                            \
        uint64_t ru_end_ = ru_now_ms() + RU_WAIT_MS;                \
        while (!(cond) && ru_now_ms() < ru_end_) {                  \
            step;                                                   \
        }                                                           \
        if (!(cond))                                                \
            ru_failed(#cond, __FILE__, __LINE__, RU_WAIT_MS, true); \
    } while (0)

/* Whether h is a wait's own timer (ru_wake_open). */
static inline bool ru_is_wake(const uv_handle_t *h)
{
    return h->type == UV_TIMER && h->data == h;
}

/* Names a live handle left on a loop that should have ended. */
static inline void ru_name_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (ru_is_wake(h))
        return;
    print_error("  live handle: %s%s%s\n", uv_handle_type_name(h->type),
                uv_is_active(h) ? " (active)" : "",
                uv_is_closing(h) ? " (closing)" : "");
}

/* Runs loop until nothing is alive on it (what UV_RUN_DEFAULT does, but
 * bounded, and not ended early by uv_stop); fails naming the handles still
 * open after RU_WAIT_MS. Close the loop with ru_loop_close after it. */
static inline void ru_drain(uv_loop_t *loop, const char *file, int line)
{
    uint64_t end = ru_now_ms() + RU_WAIT_MS;
    uv_timer_t *wake = ru_wake_open(loop);
    bool alive = true;
    while (alive && ru_now_ms() < end)
        alive = ru_turn(loop, wake, end);
    if (alive)
        uv_walk(loop, ru_name_handle, NULL);
    ru_wake_close(wake);
    if (alive)
        ru_failed("the loop ended", file, line, RU_WAIT_MS, true);
}
#define LOOP_DRAIN(loop) ru_drain((loop), __FILE__, __LINE__)

static inline void ru_find_others(uv_handle_t *h, void *arg)
{
    bool ours = ru_is_wake(h) && uv_is_closing(h);
    if (!ours)
        *(bool *)arg = true;
}

/* uv_loop_close for a loop a wait ran on: a wait's timer is still closing
 * until the loop's next turn, so when nothing but such timers is left, one
 * turn that only finishes their closes comes first. Anything else left
 * makes uv_loop_close refuse (UV_EBUSY), as it would have. */
static inline int ru_loop_close(uv_loop_t *loop)
{
    bool others = false;
    uv_walk(loop, ru_find_others, &others);
    if (!others)
        uv_run(loop, UV_RUN_NOWAIT);
    return uv_loop_close(loop);
}

#endif
