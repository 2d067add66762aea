/*
 * regress/handoff_race.c: S1, S7. A direct handoff to a waiter once lost a
 * race and hung every thread; scripts/conformance found it (stress-ng
 * --pthread under LWKT_HOLD=global), and this reproducer caught it about
 * one run in six of 15-20 s on 2 loaded cores.
 *
 * The race, as the code then read: the releaser cleared the waiter's
 * registration (t_handoff) and only then stored the waiter's id into
 * t_word. The registered waiter takes "t_handoff no longer mine" as "I own
 * the word" and returns at once. If the releaser was preempted between its
 * two steps, the waiter ran, released, and then the releaser's delayed
 * store wrote the waiter's id into t_word: a token held by a thread that
 * does not hold it. That thread's next lwkt_gettoken found its own id in
 * the word, took it as busy and waited for itself; every other thread
 * waited behind it (the named thread is alive, so no dead-holder recovery).
 * The same delayed store could also overwrite the word of a third thread
 * that had taken the token meanwhile: two holders at once.
 *
 * Many threads take one token, spin a little under it and block briefly
 * (nanosleep releases the token and retakes it), so that waiters lose
 * races, register for a handoff, and releasers get preempted. They do so
 * for RUN_SECONDS, then are told to stop. The test passes when:
 *   - no two threads were ever inside the token at once (checked at every
 *     entry, before and after the nanosleep), and
 *   - every thread then finishes (a deadline of TEST_DEADLINE_S: with the
 *     bug, threads wait for ever for a token nobody holds; the failure
 *     prints the token's words, as the hang was diagnosed).
 * RUN_SECONDS only bounds how long the race is given to happen; how many
 * rounds the threads make in it decides nothing.
 *
 * `prog THREADS SECONDS` runs it longer by hand (default 512 and 2).
 */
#include "check.h"

#define RUN_SECONDS 2

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(handoff_race_T);
static atomic_long rounds;
static atomic_int inside;   /* threads inside T right now: 0 or 1 */
static atomic_int stop;     /* main says: finish the current round, return */
static atomic_int finished; /* threads that returned */

static void enter(void) {
    int others = atomic_fetch_add(&inside, 1);
    if (others != 0) {
        fprintf(stderr, "FAIL: %d other thread(s) inside T at once (S1)\n", others);
        fflush(stderr);
        _exit(1);
    }
}

static void leave(void) { atomic_fetch_sub(&inside, 1); }

static void *worker(void *arg) {
    (void)arg;
    struct timespec ts = {0, 1000};
    while (!atomic_load(&stop)) {
        lwkt_gettoken(&T);
        enter();
        for (volatile int k = 0; k < 2000; k++)
            ;
        leave();
        nanosleep(&ts, NULL); /* blocks: releases T, retakes it */
        enter();
        leave();
        lwkt_reltoken(&T);
        atomic_fetch_add(&rounds, 1);
    }
    atomic_fetch_add(&finished, 1);
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 512;
    int secs = argc > 2 ? atoi(argv[2]) : RUN_SECONDS;
    CHECK(n > 0 && secs > 0);
    start_watchdog(secs + TEST_DEADLINE_S + 10);
    pthread_t *threads = calloc((size_t)n, sizeof *threads);
    CHECK(threads != NULL);
    for (int i = 0; i < n; i++)
        threads[i] = start_thread(worker, NULL);

    /* This thread holds no token: it may sleep. */
    double end = now_s() + secs;
    while (now_s() < end)
        usleep(10000);
    atomic_store(&stop, 1);
    double deadline = now_s() + TEST_DEADLINE_S;
    while (atomic_load(&finished) < n) {
        if (now_s() > deadline) {
            printf("FAIL: %d of %d threads still in their round %d s after the stop "
                   "(%ld rounds done): T.t_word=%#llx t_waiters=%#x t_handoff=%#x\n",
                   n - atomic_load(&finished), n, TEST_DEADLINE_S, atomic_load(&rounds),
                   (unsigned long long)T.t_word, (unsigned)T.t_waiters, (unsigned)T.t_handoff);
            fflush(stdout);
            _exit(1);
        }
        usleep(10000);
    }
    for (int i = 0; i < n; i++)
        join_thread(threads[i]);
    free(threads);
    printf("regress/handoff_race: ok (%d threads, %ld rounds in %d s)\n", n, atomic_load(&rounds),
           secs);
    return 0;
}
