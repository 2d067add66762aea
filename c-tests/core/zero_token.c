/*
 * core/zero_token.c: S11. A zero-filled struct lwkt_token is a valid,
 * unnamed, free token, wherever the zeroes come from: static storage,
 * memset on the stack, calloc. It works in every mode and excludes between
 * threads like any other.
 */
#include "check.h"

static struct lwkt_token zero_static; /* zeroed by the loader */
static long counter;

static void *incrementer(void *arg) {
    lwkt_token_t t = arg;
    for (int i = 0; i < 100000; i++) {
        lwkt_gettoken(t);
        long v = counter;
        counter = v + 1;
        lwkt_reltoken(t);
    }
    return NULL;
}

static void exercise(lwkt_token_t t) {
    CHECK(!LWKT_TOKEN_HELD_ANY(t));
    lwkt_gettoken(t);
    CHECK(LWKT_TOKEN_HELD_EXCL(t));
    CHECK(!other_thread_can_take(t, 0));
    lwkt_gettoken(t);
    CHECK_EQ(lwkt_cnttoken(t), 2);
    lwkt_reltoken(t);
    lwkt_reltoken(t);
    CHECK(other_thread_can_take(t, 0));
    lwkt_gettoken_shared(t);
    CHECK(other_thread_can_take(t, 1));
    CHECK(!other_thread_can_take(t, 0));
    lwkt_reltoken(t);
    CHECK(lwkt_trytoken(t));
    lwkt_reltoken(t);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    exercise(&zero_static);

    struct lwkt_token on_stack;
    memset(&on_stack, 0, sizeof on_stack);
    exercise(&on_stack);

    struct lwkt_token *heap = calloc(1, sizeof *heap);
    CHECK(heap != NULL);
    exercise(heap);

    /* Contended, between threads. */
    pthread_t a = start_thread(incrementer, heap);
    pthread_t b = start_thread(incrementer, heap);
    join_thread(a);
    join_thread(b);
    CHECK_EQ(counter, 200000);
    free(heap);

    ASSERT_NO_TOKENS_HELD();
    printf("core/zero_token: ok\n");
    return 0;
}
