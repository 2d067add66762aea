/*
 * core/trytoken.c: lwkt_trytoken (token(9)) and lwkt_trytoken_shared.
 * They succeed on a free token and recursively on one's own, fail when
 * another thread holds the token, and never block or release the caller's
 * other tokens: while this thread fails on T thousands of times, a helper
 * keeps trying to take U (which this thread holds) and must never succeed.
 */
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(try_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(try_U);

static atomic_int holder_mode; /* 1 exclusive, 2 shared */
static atomic_int holder_has, holder_release;
static atomic_int snoop_go, snoop_stop, snoop_stole, snoop_tries;

static void *holder(void *arg) {
    (void)arg;
    if (atomic_load(&holder_mode) == 1)
        lwkt_gettoken(&T);
    else
        lwkt_gettoken_shared(&T);
    atomic_store(&holder_has, 1);
    SPIN_UNTIL(holder_release); /* spin: keep T */
    lwkt_reltoken(&T);
    return NULL;
}

/* Tries to take U all along; succeeds only if the main thread let go. */
static void *snoop(void *arg) {
    (void)arg;
    SPIN_UNTIL(snoop_go);
    while (!atomic_load(&snoop_stop)) {
        if (lwkt_trytoken(&U)) {
            atomic_store(&snoop_stole, 1);
            lwkt_reltoken(&U);
        }
        atomic_fetch_add(&snoop_tries, 1);
    }
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    /* Free: success; recursion: success; counts follow. */
    CHECK(lwkt_trytoken(&T));
    CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    CHECK(lwkt_trytoken(&T));
    CHECK(lwkt_trytoken_shared(&T));
    CHECK_EQ(lwkt_cnttoken(&T), 3);
    CHECK(!other_thread_can_take(&T, 0));
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
    CHECK(lwkt_trytoken_shared(&T));
    CHECK(lwkt_trytoken_shared(&T));
    CHECK(!LWKT_TOKEN_HELD_EXCL(&T));
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
    ASSERT_NO_TOKENS_HELD();

    /* Another thread holds T exclusively: both tries fail, U stays ours. */
    atomic_store(&holder_mode, 1);
    pthread_t h = start_thread(holder, NULL);
    pthread_t s = start_thread(snoop, NULL);
    SPIN_UNTIL(holder_has);
    lwkt_gettoken(&U);
    lwkt_mark_t mark = lwkt_mark();
    atomic_store(&snoop_go, 1);
    SPIN_UNTIL_COND(atomic_load(&snoop_tries) > 0);
    for (int i = 0; i < 20000; i++) {
        CHECK(!lwkt_trytoken(&T));
        CHECK(!lwkt_trytoken_shared(&T));
    }
    CHECK_EQ(lwkt_cnttoken(&T), 0);
    CHECK(LWKT_TOKEN_HELD_EXCL(&U));
    CHECK(!lwkt_lost_since(mark));
    CHECK(!lwkt_token_lost_since(&U, mark));
    atomic_store(&snoop_stop, 1);
    CHECK(!atomic_load(&snoop_stole));
    lwkt_reltoken(&U);
    atomic_store(&holder_release, 1);
    join_thread(h);
    join_thread(s);

    /* Released: the try succeeds. */
    CHECK(lwkt_trytoken(&T));
    lwkt_reltoken(&T);

    /* Another thread holds T shared: a shared try succeeds, an exclusive
     * one fails. */
    atomic_store(&holder_mode, 2);
    atomic_store(&holder_has, 0);
    atomic_store(&holder_release, 0);
    h = start_thread(holder, NULL);
    SPIN_UNTIL(holder_has);
    CHECK(!lwkt_trytoken(&T));
    CHECK(lwkt_trytoken_shared(&T));
    CHECK(!LWKT_TOKEN_HELD_EXCL(&T));
    lwkt_reltoken(&T);
    atomic_store(&holder_release, 1);
    join_thread(h);
    CHECK(lwkt_trytoken(&T));
    lwkt_reltoken(&T);

    ASSERT_NO_TOKENS_HELD();
    printf("core/trytoken: ok\n");
    return 0;
}
