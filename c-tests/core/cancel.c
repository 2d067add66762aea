/*
 * core/cancel.c: a thread holding token T blocks in a hooked call (read,
 * sleep, pthread_cond_wait), which releases T; another thread takes T
 * meanwhile (which also proves the hook released it) and then cancels the
 * blocked thread. After the join, the token state is consistent: T is free
 * and can be taken, whether the cancelled thread's cleanup handler
 * released its reference (read, cond_wait) or not (sleep: thread exit
 * does, S9). The cleanup handler of the cond_wait case also unlocks the
 * mutex that cancellation re-acquired.
 */
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(cancel_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(cancel_U);

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int pipefd[2];
static atomic_int about_to_block, returned, cleanups;

static void cleanup_rel_tokens(void *arg) {
    (void)arg;
    /* LIFO, as taken: U on top of T. */
    lwkt_reltoken(&U);
    lwkt_reltoken(&T);
    atomic_fetch_add(&cleanups, 1);
}

static void cleanup_unlock_and_rel(void *arg) {
    (void)arg;
    pthread_mutex_unlock(&m);
    lwkt_reltoken(&T);
    atomic_fetch_add(&cleanups, 1);
}

static void *blocks_in_read(void *arg) {
    (void)arg;
    char c;
    pthread_cleanup_push(cleanup_rel_tokens, NULL);
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    atomic_store(&about_to_block, 1);
    ssize_t r = read(pipefd[0], &c, 1); /* no writer ever writes */
    (void)r;
    atomic_store(&returned, 1);
    pthread_cleanup_pop(1);
    return NULL;
}

static void *blocks_in_sleep(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    atomic_store(&about_to_block, 1);
    sleep(1000); /* no cleanup handler: thread exit releases */
    atomic_store(&returned, 1);
    lwkt_reltoken(&T);
    return NULL;
}

static void *blocks_in_cond_wait(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    pthread_mutex_lock(&m);
    pthread_cleanup_push(cleanup_unlock_and_rel, NULL);
    atomic_store(&about_to_block, 1);
    for (;;)
        pthread_cond_wait(&cv, &m); /* nobody signals */
    pthread_cleanup_pop(1);
    return NULL;
}

static void cancel_while_blocked(const char *what, void *(*fn)(void *), int expect_cleanups) {
    atomic_store(&about_to_block, 0);
    atomic_store(&returned, 0);
    atomic_store(&cleanups, 0);
    pthread_t t = start_thread(fn, NULL);
    SPIN_UNTIL(about_to_block);
    /* Succeeds only once the thread has blocked and so released T. */
    lwkt_gettoken(&T);
    CHECK(!atomic_load(&returned));
    lwkt_reltoken(&T);

    CHECK(pthread_cancel(t) == 0);
    void *ret = join_thread(t);
    if (ret != PTHREAD_CANCELED) {
        fprintf(stderr, "FAIL: %s: the thread was not cancelled\n", what);
        _exit(1);
    }
    CHECK(!atomic_load(&returned));
    CHECK_EQ(atomic_load(&cleanups), expect_cleanups);

    /* Consistent: T (and U) free, no reference left with us. */
    ASSERT_NO_TOKENS_HELD();
    CHECK(lwkt_trytoken(&T));
    CHECK(lwkt_trytoken(&U));
    lwkt_reltoken(&U);
    lwkt_reltoken(&T);
    /* The mutex too, after the cond_wait case. */
    CHECK(pthread_mutex_trylock(&m) == 0);
    pthread_mutex_unlock(&m);
    printf("core/cancel: %s: ok\n", what);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    CHECK(pipe(pipefd) == 0);
    cancel_while_blocked("read", blocks_in_read, 1);
    cancel_while_blocked("sleep", blocks_in_sleep, 0);
    cancel_while_blocked("pthread_cond_wait", blocks_in_cond_wait, 1);
    printf("core/cancel: ok\n");
    return 0;
}
