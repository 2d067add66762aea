/*
 * core/abba.c: two threads take two tokens in opposite orders, many times
 * (S4: tokens never deadlock, whatever the order). With mutexes this is the
 * textbook deadlock; with tokens, the thread that finds its second token
 * taken releases its first while it waits.
 *
 * Both tokens still exclude: a plain counter changed only while holding
 * both must end exact, and nobody else may be inside while one thread is.
 */
#include "check.h"

#include <pthread.h>

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(abba_A);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(abba_B);

#define ROUNDS 20000

static long counter;    /* changed only with A and B held */
static atomic_int inside; /* threads between taking both and releasing */
static atomic_int started;

static void *abba(void *arg) {
    int reversed = *(int *)arg;
    lwkt_token_t first = reversed ? &B : &A;
    lwkt_token_t second = reversed ? &A : &B;
    atomic_fetch_add(&started, 1);
    SPIN_UNTIL_COND(atomic_load(&started) == 2); /* overlap as much as possible */
    for (int i = 0; i < ROUNDS; i++) {
        lwkt_gettoken(first);
        /* Widen the window in which the other thread holds its first. */
        for (volatile int k = 0; k < 50; k++) {
        }
        lwkt_gettoken(second);
        CHECK(LWKT_TOKEN_HELD_EXCL(&A) && LWKT_TOKEN_HELD_EXCL(&B));
        CHECK_EQ(atomic_fetch_add(&inside, 1), 0);
        long v = counter;
        for (volatile int k = 0; k < 10; k++) {
        }
        counter = v + 1;
        atomic_fetch_sub(&inside, 1);
        lwkt_reltoken(second);
        lwkt_reltoken(first);
    }
    ASSERT_NO_TOKENS_HELD();
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    int fwd = 0, rev = 1;
    pthread_t t1 = start_thread(abba, &fwd);
    pthread_t t2 = start_thread(abba, &rev);
    join_thread(t1);
    join_thread(t2);
    CHECK_EQ(counter, 2 * ROUNDS);
    CHECK(lwkt_trytoken(&A) && lwkt_trytoken(&B)); /* both free at the end */
    lwkt_reltoken(&B);
    lwkt_reltoken(&A);
    printf("core/abba: ok (%d rounds each way)\n", ROUNDS);
    return 0;
}
