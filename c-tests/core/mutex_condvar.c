/*
 * core/mutex_condvar.c: tokens mixed with a pthread mutex and a condition
 * variable (S2, S4).
 *
 * 1. A token holder waiting on a condition variable lets another thread
 *    take its token; that thread changes the guarded value and signals;
 *    the waiter returns holding its token and the mutex, and is told (S8)
 *    that the token was taken meanwhile.
 * 2. ABBA of a token and a mutex: one thread takes T then M, the other M
 *    then T, many times. With two mutexes this deadlocks; here the thread
 *    that blocks on M releases T.
 * 3. Ping-pong: two threads keep T "held" throughout and hand a turn back
 *    and forth through the condition variable; each wait releases T, so
 *    the other can run; nobody is ever inside at the same time.
 */
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(mix_T);
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t CV = PTHREAD_COND_INITIALIZER;

/* ---- 1 */
static int value;  /* guarded by T */
static int go;     /* guarded by M */
static atomic_int waiter_ready;

static void *cond_waiter(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    value = 1;
    pthread_mutex_lock(&M); /* free: T is kept */
    lwkt_mark_t mark = lwkt_mark();
    atomic_store(&waiter_ready, 1);
    while (!go)
        pthread_cond_wait(&CV, &M); /* releases T while waiting */
    CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    CHECK_EQ(lwkt_cnttoken(&T), 1);
    CHECK(lwkt_token_lost_since(&T, mark));
    CHECK_EQ(value, 42); /* the other thread's change, seen on re-validation */
    pthread_mutex_unlock(&M);
    lwkt_reltoken(&T);
    return NULL;
}

static void *changer(void *arg) {
    (void)arg;
    SPIN_UNTIL(waiter_ready);
    lwkt_gettoken(&T); /* gets it once the waiter is in pthread_cond_wait */
    CHECK_EQ(value, 1);
    value = 42;
    pthread_mutex_lock(&M);
    go = 1;
    pthread_cond_signal(&CV);
    pthread_mutex_unlock(&M);
    lwkt_reltoken(&T);
    return NULL;
}

/* ---- 2 */
#define ABBA_ROUNDS 20000
static long abba_counter; /* guarded by T and M both */
static atomic_int abba_inside;

static void *token_then_mutex(void *arg) {
    (void)arg;
    for (int i = 0; i < ABBA_ROUNDS; i++) {
        lwkt_gettoken(&T);
        pthread_mutex_lock(&M);
        CHECK(LWKT_TOKEN_HELD_EXCL(&T));
        CHECK_EQ(atomic_fetch_add(&abba_inside, 1), 0);
        abba_counter++;
        atomic_fetch_sub(&abba_inside, 1);
        pthread_mutex_unlock(&M);
        lwkt_reltoken(&T);
    }
    return NULL;
}

static void *mutex_then_token(void *arg) {
    (void)arg;
    for (int i = 0; i < ABBA_ROUNDS; i++) {
        pthread_mutex_lock(&M);
        lwkt_gettoken(&T);
        CHECK_EQ(atomic_fetch_add(&abba_inside, 1), 0);
        abba_counter++;
        atomic_fetch_sub(&abba_inside, 1);
        lwkt_reltoken(&T);
        pthread_mutex_unlock(&M);
    }
    return NULL;
}

/* ---- 3 */
#define PING_ROUNDS 2000
static int turn;               /* guarded by M */
static long ping_count;        /* guarded by T */
static atomic_int ping_inside;

static void *ping(void *arg) {
    int me = *(int *)arg;
    lwkt_gettoken(&T); /* held for the whole loop, except while blocked */
    for (int i = 0; i < PING_ROUNDS; i++) {
        pthread_mutex_lock(&M);
        while (turn != me)
            pthread_cond_wait(&CV, &M);
        CHECK(LWKT_TOKEN_HELD_EXCL(&T));
        CHECK_EQ(atomic_fetch_add(&ping_inside, 1), 0);
        ping_count++;
        atomic_fetch_sub(&ping_inside, 1);
        turn = !me;
        pthread_cond_broadcast(&CV);
        pthread_mutex_unlock(&M);
    }
    lwkt_reltoken(&T);
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    pthread_t a = start_thread(cond_waiter, NULL);
    pthread_t b = start_thread(changer, NULL);
    join_thread(a);
    join_thread(b);
    printf("core/mutex_condvar: condition wait releases the token: ok\n");

    a = start_thread(token_then_mutex, NULL);
    b = start_thread(mutex_then_token, NULL);
    join_thread(a);
    join_thread(b);
    CHECK_EQ(abba_counter, 2 * ABBA_ROUNDS);
    printf("core/mutex_condvar: token/mutex ABBA: ok\n");

    int zero = 0, one = 1;
    a = start_thread(ping, &zero);
    b = start_thread(ping, &one);
    join_thread(a);
    join_thread(b);
    CHECK_EQ(ping_count, 2 * PING_ROUNDS);
    printf("core/mutex_condvar: ping-pong: ok\n");
    return 0;
}
