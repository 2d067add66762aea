/*
 * check.h: shared helpers for the C tests in c-tests/.
 *
 * Each test file defines `int lwkt_test_main(int argc, char **argv)` and
 * returns 0 when every check passed (a test in c-tests/misuse/ must abort
 * instead, see c-tests/run.rs). The runner (c-tests/run.rs) links it
 * two ways: into a program with -llwkt, and into a plugin that a program
 * which does not link lwkt dlopen()s while liblwkt.so is preloaded.
 *
 * Concurrency rules for tests that never flake: wait with deadlines of
 * seconds (never sleeps of milliseconds), and a thread that must keep a
 * token spins (sleeping would release it).
 */
#ifndef LWKT_CHECK_H
#define LWKT_CHECK_H

#define _GNU_SOURCE 1
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lwkt.h>

/* Fail the test with a one-line reason naming file and line. */
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
            fflush(stderr);                                                      \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

#define CHECK_EQ(a, b)                                                           \
    do {                                                                         \
        long long _a = (long long)(a), _b = (long long)(b);                      \
        if (_a != _b) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__,   \
                    __LINE__, #a, #b, _a, _b);                                   \
            fflush(stderr);                                                      \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

/* Generous deadline for anything a test waits for. */
#define TEST_DEADLINE_S 20

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Spin (never sleep: that would release tokens) until *flag becomes
 * non-zero; fail the test after TEST_DEADLINE_S seconds. */
#define SPIN_UNTIL(flag)                                                         \
    do {                                                                         \
        double _end = now_s() + TEST_DEADLINE_S;                                 \
        while (!atomic_load(&(flag))) {                                          \
            if (now_s() > _end) {                                                \
                fprintf(stderr, "FAIL %s:%d: timed out waiting for %s\n",        \
                        __FILE__, __LINE__, #flag);                              \
                fflush(stderr);                                                  \
                _exit(1);                                                        \
            }                                                                    \
        }                                                                        \
    } while (0)


/* ---- Added for the core and misuse tests (c-tests/core/, c-tests/misuse/) */

#include <pthread.h>
#include <signal.h>

/* Spin until cond (an expression) holds; fail after TEST_DEADLINE_S. */
#define SPIN_UNTIL_COND(cond)                                                    \
    do {                                                                         \
        double _end = now_s() + TEST_DEADLINE_S;                                 \
        while (!(cond)) {                                                        \
            if (now_s() > _end) {                                                \
                fprintf(stderr, "FAIL %s:%d: timed out waiting for %s\n",        \
                        __FILE__, __LINE__, #cond);                              \
                fflush(stderr);                                                  \
                _exit(1);                                                        \
            }                                                                    \
        }                                                                        \
    } while (0)

/* Busy-wait for `seconds` without blocking (tokens stay held). Only to give
 * another thread a chance to do something that a check then looks for,
 * never as the synchronisation a check relies on. */
static inline void spin_for(double seconds) {
    double end = now_s() + seconds;
    while (now_s() < end) {
    }
}

static inline void check_watchdog_fired(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: watchdog: the test did not finish in time "
                              "(deadlock or lost wake-up?)\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

/* Fail the process (with a message saying why) if it is still running after
 * `seconds`: a deadlock then reports itself instead of waiting for the
 * runner's kill. A fork child must call it again (alarms are not
 * inherited). */
static inline void start_watchdog(unsigned seconds) {
    signal(SIGALRM, check_watchdog_fired);
    alarm(seconds);
}

/* pthread_create that fails the test when it fails. */
static inline pthread_t start_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    int e = pthread_create(&t, NULL, fn, arg);
    if (e != 0) {
        fprintf(stderr, "FAIL: pthread_create: %s\n", strerror(e));
        _exit(1);
    }
    return t;
}

/* pthread_join that fails the test when it fails; returns the result. */
static inline void *join_thread(pthread_t t) {
    void *ret = NULL;
    int e = pthread_join(t, &ret);
    if (e != 0) {
        fprintf(stderr, "FAIL: pthread_join: %s\n", strerror(e));
        _exit(1);
    }
    return ret;
}

/* ---- Asking another thread, without blocking, whether it can take a token.
 *
 * A test that holds tokens must not wait for a helper with pthread_join or
 * a condition variable: blocking releases its tokens (that is the point of
 * the library) and would spoil the answer. So one long-lived helper thread,
 * which holds nothing and may block, waits on a semaphore for a question;
 * the asker posts (never blocks) and spins for the answer. */

#include <semaphore.h>

static struct {
    pthread_once_t once;
    sem_t ask;
    lwkt_token_t tok;
    int shared;
    atomic_int asked, answered, got;
} check_prober = {PTHREAD_ONCE_INIT};

static inline void *check_prober_main(void *arg) {
    (void)arg;
    for (int n = 1;; n++) {
        while (sem_wait(&check_prober.ask) != 0) {
        }
        lwkt_token_t tok = check_prober.tok;
        int got = check_prober.shared ? lwkt_trytoken_shared(tok) : lwkt_trytoken(tok);
        if (got)
            lwkt_reltoken(tok);
        atomic_store(&check_prober.got, got);
        atomic_store(&check_prober.answered, n);
    }
    return NULL;
}

static inline void check_prober_start(void) {
    pthread_t t;
    CHECK(sem_init(&check_prober.ask, 0, 0) == 0);
    CHECK(pthread_create(&t, NULL, check_prober_main, NULL) == 0);
    CHECK(pthread_detach(t) == 0);
}

/* Could another thread take tok (shared when `shared`) right now? It takes
 * and releases it at once if so. The caller keeps running (and its tokens). */
static inline int other_thread_can_take(lwkt_token_t tok, int shared) {
    pthread_once(&check_prober.once, check_prober_start);
    check_prober.tok = tok;
    check_prober.shared = shared;
    int n = atomic_load(&check_prober.asked) + 1;
    atomic_store(&check_prober.asked, n);
    CHECK(sem_post(&check_prober.ask) == 0);
    SPIN_UNTIL_COND(atomic_load(&check_prober.answered) == n);
    return atomic_load(&check_prober.got);
}

int lwkt_test_main(int argc, char **argv);

#endif
