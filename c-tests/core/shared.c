/*
 * core/shared.c: S1 and S7 for shared holds.
 *
 * 1. Shared holders coexist: two threads are inside at the same time, each
 *    waiting (spinning, holding its shared hold) until it sees the other
 *    inside. If shared holds excluded each other, neither would ever see
 *    two and the deadline would fail the test.
 * 2. They exclude an exclusive taker: thread E asks for the token while
 *    both are inside; when E gets it, nobody may be inside.
 * 3. An exclusive waiter has priority over new shared requests (S7): while
 *    E waits, a new shared request from thread F does not get in (its
 *    lwkt_trytoken_shared fails although only shared holders hold the
 *    token), and F's lwkt_gettoken_shared is served after E.
 */
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(shared_T);

static atomic_int inside;      /* shared holders inside now */
static atomic_int both_seen;   /* holders that saw two inside */
static atomic_int e_waiting;   /* E is about to ask */
static atomic_int f_refused;   /* F's shared try failed while E waited */
static atomic_int order;       /* who got in after the holders, in order */
static atomic_int e_order, f_order;
static atomic_int release_holders;

static void *shared_holder(void *arg) {
    (void)arg;
    lwkt_gettoken_shared(&T);
    CHECK(LWKT_TOKEN_HELD_ANY(&T));
    CHECK(!LWKT_TOKEN_HELD_EXCL(&T));
    atomic_fetch_add(&inside, 1);
    SPIN_UNTIL_COND(atomic_load(&inside) == 2);
    atomic_fetch_add(&both_seen, 1);
    /* Stay inside (spinning: sleeping would release) until told. */
    SPIN_UNTIL(release_holders);
    atomic_fetch_sub(&inside, 1);
    lwkt_reltoken(&T);
    return NULL;
}

static void *exclusive_taker(void *arg) {
    (void)arg;
    atomic_store(&e_waiting, 1);
    lwkt_gettoken(&T);
    CHECK_EQ(atomic_load(&inside), 0);
    atomic_store(&e_order, atomic_fetch_add(&order, 1) + 1);
    CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    /* Hold a while, so that F (if it wrongly got in) would be seen. */
    spin_for(0.01);
    CHECK_EQ(atomic_load(&f_order), 0);
    lwkt_reltoken(&T);
    return NULL;
}

static void *late_shared(void *arg) {
    (void)arg;
    /* Wait (with a deadline) until E's exclusive request stops new shared
     * holds; meanwhile every successful try is a new shared hold that
     * got in before E asked, so it is given back at once. */
    double end = now_s() + TEST_DEADLINE_S;
    for (;;) {
        if (!lwkt_trytoken_shared(&T))
            break;
        lwkt_reltoken(&T);
        CHECK(now_s() < end && "an exclusive waiter must stop new shared holds");
    }
    atomic_store(&f_refused, 1);
    lwkt_gettoken_shared(&T);
    atomic_store(&f_order, atomic_fetch_add(&order, 1) + 1);
    lwkt_reltoken(&T);
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    pthread_t h1 = start_thread(shared_holder, NULL);
    pthread_t h2 = start_thread(shared_holder, NULL);
    SPIN_UNTIL_COND(atomic_load(&both_seen) == 2); /* 1: both inside at once */

    /* A third shared hold gets in, an exclusive one does not. */
    CHECK(other_thread_can_take(&T, 1));
    CHECK(!other_thread_can_take(&T, 0));
    CHECK(!lwkt_trytoken(&T));

    pthread_t e = start_thread(exclusive_taker, NULL);
    SPIN_UNTIL(e_waiting);
    pthread_t f = start_thread(late_shared, NULL);
    SPIN_UNTIL(f_refused); /* 3: E's request holds new shared requests back */
    CHECK_EQ(atomic_load(&e_order), 0); /* 2: E is still kept out */

    atomic_store(&release_holders, 1);
    join_thread(h1);
    join_thread(h2);
    join_thread(e);
    join_thread(f);
    CHECK_EQ(atomic_load(&e_order), 1);
    CHECK_EQ(atomic_load(&f_order), 2);
    printf("core/shared: ok\n");
    return 0;
}
