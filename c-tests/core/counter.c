/*
 * core/counter.c: four threads increment a plain, non-atomic counter under
 * one token (S1: exclusion across timeslicing and across CPUs). The total
 * must be exact. Each increment is a read, some work, then a write, so that
 * a token that let two threads in at once would lose updates quickly.
 */
#include "check.h"

#include <pthread.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(counter_T);

#define THREADS 4
#define PER_THREAD 200000

static long counter; /* plain: only the token protects it */

static void *worker(void *arg) {
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        lwkt_gettoken(&T);
        long v = counter;
        if ((i & 63) == 0) {
            /* Now and then a longer critical section: more contention,
             * and more chances of a timeslice ending inside it (which
             * must not release the token). */
            for (volatile int k = 0; k < 200; k++) {
            }
        }
        counter = v + 1;
        lwkt_reltoken(&T);
    }
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        t[i] = start_thread(worker, NULL);
    for (int i = 0; i < THREADS; i++)
        join_thread(t[i]);
    CHECK_EQ(counter, (long)THREADS * PER_THREAD);
    printf("core/counter: ok (%ld)\n", counter);
    return 0;
}
