/*
 * repro_handoff_race.c: a reproducer for a hang that scripts/conformance
 * found (stress-ng --pthread with LWKT_HOLD=global). Not run by the script.
 *
 * Many threads take one token, spin a little under it and block briefly
 * (nanosleep releases and retakes the token), so that waiters lose races,
 * register for a direct handoff (t_handoff) and releasers get preempted.
 * A watchdog reports no progress for 5 s as a hang and prints the token.
 *
 *   cc -O2 -Iinclude scripts/conformance.d/repro_handoff_race.c \
 *      -Ltarget/release -llwkt -Wl,-rpath,$PWD/target/release -lpthread \
 *      -o /tmp/handoff && /tmp/handoff 512 20
 *
 * Expected: "ok: N iterations". Seen on 2 loaded cores (liblwkt at 5e21214),
 * intermittently (1 run in 6 of 15-20 s; loop it):
 *   HANG after 3567 iterations: T.t_word=0x6a59 t_waiters=0x200 t_handoff=27342
 * i.e. the word names thread 0x6a59 as the exclusive holder while all 512
 * threads, that one included, wait for the token. stress-ng --pthread 2
 * under LWKT_HOLD=global hung the same way (word = a waiting thread's id,
 * every thread in Token::acquire_slow).
 *
 * The race, as the code reads (shim/token.rs): release_exclusive_contended
 * clears t_handoff (compare-and-swap h -> 0) and only then stores h into
 * t_word. The registered waiter takes "t_handoff no longer mine" as "I own
 * the word" and returns at once. If the releaser is preempted between its
 * two steps, the waiter runs, releases (stores 0, or hands to the next
 * registered waiter), and then the releaser's delayed store writes the
 * waiter's id into t_word: a token held by a thread that does not hold it.
 * That thread's next lwkt_gettoken finds its own id in the word, which
 * try_acquire reports as busy (SelfExclusive), and it waits for itself;
 * every other thread waits behind it. (The dead-holder recheck does not
 * help: the named thread is alive.)
 */
#define _GNU_SOURCE
#include <lwkt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(T);
static atomic_long progress;

static void *worker(void *arg) {
    (void)arg;
    struct timespec ts = {0, 1000};
    for (;;) {
        lwkt_gettoken(&T);
        for (volatile int k = 0; k < 2000; k++)
            ;
        nanosleep(&ts, NULL); /* blocks: releases T, retakes it */
        lwkt_reltoken(&T);
        atomic_fetch_add(&progress, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 512, secs = argc > 2 ? atoi(argv[2]) : 20;
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_create(&t, NULL, worker, NULL);
    }
    long last = -1;
    int stuck = 0;
    for (int s = 0; s < secs; s++) {
        sleep(1);
        long p = atomic_load(&progress);
        if (p == last && ++stuck >= 5) {
            printf("HANG after %ld iterations: T.t_word=%#lx t_waiters=%#x t_handoff=%u\n",
                   p, (unsigned long)T.t_word, T.t_waiters, T.t_handoff);
            fflush(stdout);
            _exit(1);
        }
        if (p != last)
            stuck = 0;
        last = p;
    }
    printf("ok: %ld iterations\n", last);
    fflush(stdout);
    _exit(0);
}
