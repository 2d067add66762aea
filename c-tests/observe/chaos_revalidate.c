/*
 * chaos_revalidate.c: code that forgets to re-validate after a hooked call,
 * and code that does it right, for LWKT_CHAOS.
 *
 * `value` is guarded by token T. Thread B keeps trying to change it: a
 * trytoken loop (spinning, so that it catches T whenever T is free) that
 * increments it under T. Thread A, ITERATIONS times: take T, read value,
 * make a hooked call that does not block (nanosleep of zero: the library
 * keeps the tokens), and then:
 *
 *   buggy    check that value is unchanged, without re-validating. Without
 *            chaos T is never released in between, so this holds every time
 *            (exit 0). Under LWKT_CHAOS, the hook gives T away and lets B
 *            run: a stale read is found (exit 1, "stale read").
 *   correct  re-read value when lwkt_token_lost_since says T was taken
 *            meanwhile, then check: always right (exit 0), with or without
 *            chaos. Prints how many times it had to re-read.
 *
 * Usage: chaos_revalidate buggy|correct [ITERATIONS] (default 5000). A
 * gives up after a deadline of 20 s (exit 3) so that a run stays short
 * whatever happens: with a huge ITERATIONS, "buggy" under chaos runs until
 * it finds a stale read or the deadline passes.
 */
#include "check.h"

#include <pthread.h>
#include <sched.h>

/* Iterations unless the second argument says otherwise. */
#define ITERATIONS 5000

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(chaos_T);
static long value;         /* guarded by T */
static atomic_int stop, b_changes;

static void *changer(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        if (lwkt_trytoken(&T)) {
            value++;
            atomic_fetch_add(&b_changes, 1);
            lwkt_reltoken(&T);
        }
        /* Holding nothing: let A run (on one CPU, A would otherwise wait
         * for B's time slice to end at every hook under chaos). */
        sched_yield();
    }
    return NULL;
}

int main(int argc, char **argv) {
    start_watchdog(2 * TEST_DEADLINE_S);
    int buggy = argc > 1 && strcmp(argv[1], "buggy") == 0;
    int correct = argc > 1 && strcmp(argv[1], "correct") == 0;
    CHECK(buggy || correct);
    long iterations = argc > 2 ? atol(argv[2]) : ITERATIONS;
    CHECK(iterations > 0);

    pthread_t b = start_thread(changer, NULL);
    const struct timespec zero = {0, 0};
    long rereads = 0;
    double deadline = now_s() + TEST_DEADLINE_S;
    for (long i = 0; i < iterations; i++) {
        if (now_s() > deadline) {
            fprintf(stderr, "chaos_revalidate: deadline passed after %ld iterations\n", i);
            _exit(3);
        }
        lwkt_gettoken(&T);
        long seen = value;
        lwkt_mark_t mark = lwkt_mark();
        CHECK(nanosleep(&zero, NULL) == 0); /* hooked; does not block */
        if (correct && lwkt_token_lost_since(&T, mark)) {
            seen = value; /* re-validate */
            rereads++;
        }
        if (value != seen) {
            fprintf(stderr, "stale read at iteration %ld: read %ld under the token, now %ld\n", i, seen,
                   value);
            _exit(1);
        }
        lwkt_reltoken(&T);
    }
    atomic_store(&stop, 1);
    join_thread(b);
    printf("%s: ok, %ld iterations, %ld re-reads, %d changes by B\n", buggy ? "buggy" : "correct",
           iterations, rereads, atomic_load(&b_changes));
    return 0;
}
