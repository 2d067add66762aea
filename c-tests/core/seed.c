/*
 * core/seed.c: the seed example of SPEC section 1 (and the demonstration).
 *
 * Thread A holds T1 and iterates list1 under it. It then needs T2, which
 * thread C holds. While A waits for T2, it holds nothing (S4), so thread B
 * takes T1 and changes list1. A returns from lwkt_gettoken(&T2) holding both
 * tokens; lwkt_lost_since / lwkt_token_lost_since (S8) tell it that T1 was
 * taken meanwhile, so it refreshes its iterator, and finds B's change.
 *
 * The order is forced without sleeps: C releases T2 only after B has changed
 * the list, and B can only change it while A waits. If contention did not
 * release T1, B would never get it and the deadlines would fail the test.
 */
#include "check.h"

#include <pthread.h>

static struct lwkt_token T1 = LWKT_TOKEN_INITIALIZER(seed_T1);
static struct lwkt_token T2 = LWKT_TOKEN_INITIALIZER(seed_T2);
static struct lwkt_token T3 = LWKT_TOKEN_INITIALIZER(seed_T3);

/* list1, guarded by T1: a singly linked list of integers. */
struct node {
    int value;
    struct node *next;
};
static struct node nodes[8];
static struct node *list1;

static atomic_int c_holds_t2, a_iterated, b_changed, b_done;

static long sum_list(void) {
    long s = 0;
    for (struct node *n = list1; n != NULL; n = n->next)
        s += n->value;
    return s;
}

static void *thread_c(void *arg) {
    (void)arg;
    lwkt_gettoken(&T2);
    atomic_store(&c_holds_t2, 1);
    /* Keep T2 (spinning: a sleep would release it) until B has run. */
    SPIN_UNTIL(b_done);
    lwkt_reltoken(&T2);
    return NULL;
}

static void *thread_b(void *arg) {
    (void)arg;
    SPIN_UNTIL(a_iterated);
    /* A holds T1 now: this waits until A releases it by waiting for T2. */
    lwkt_gettoken(&T1);
    /* Insert a node at the head: A's iterator position is now stale. */
    nodes[7].value = 1000;
    nodes[7].next = list1;
    list1 = &nodes[7];
    atomic_store(&b_changed, 1);
    lwkt_reltoken(&T1);
    atomic_store(&b_done, 1);
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    for (int i = 0; i < 7; i++) {
        nodes[i].value = i + 1;
        nodes[i].next = i < 6 ? &nodes[i + 1] : NULL;
    }
    list1 = &nodes[0];

    /* Control: a mark with no contention reports no loss. */
    lwkt_gettoken(&T1);
    lwkt_mark_t quiet = lwkt_mark();
    lwkt_gettoken(&T3); /* free: no wait, nothing released */
    CHECK(!lwkt_lost_since(quiet));
    CHECK(!lwkt_token_lost_since(&T1, quiet));
    lwkt_reltoken(&T3);
    lwkt_reltoken(&T1);

    pthread_t c = start_thread(thread_c, NULL);
    SPIN_UNTIL(c_holds_t2);
    pthread_t b = start_thread(thread_b, NULL);

    /* Thread A is this thread. */
    lwkt_gettoken(&T1);
    long before = sum_list();
    CHECK_EQ(before, 28);
    struct node *iter = list1->next; /* an iterator taken under T1 */
    lwkt_mark_t mark = lwkt_mark();
    atomic_store(&a_iterated, 1);

    lwkt_gettoken(&T2); /* C holds it: A waits, holding nothing */

    /* A holds both again, as it asked. */
    CHECK(LWKT_TOKEN_HELD_EXCL(&T1));
    CHECK(LWKT_TOKEN_HELD_EXCL(&T2));
    CHECK_EQ(lwkt_cnttoken(&T1), 1);
    CHECK_EQ(lwkt_cnttoken(&T2), 1);
    /* B really ran while A waited (and C released T2 only after that). */
    CHECK(atomic_load(&b_changed));
    /* The loss is reported, for T1; T2 was not held before the mark. */
    CHECK(lwkt_lost_since(mark));
    CHECK(lwkt_token_lost_since(&T1, mark));
    CHECK(!lwkt_token_lost_since(&T2, mark));

    /* The iterator is stale; refresh it and see B's change. */
    (void)iter;
    iter = list1;
    CHECK_EQ(iter->value, 1000);
    CHECK_EQ(sum_list(), before + 1000);

    /* From a new mark, with nothing contended, there is no new loss. */
    lwkt_mark_t after = lwkt_mark();
    CHECK(!lwkt_lost_since(after));

    lwkt_reltoken(&T2);
    lwkt_reltoken(&T1);
    join_thread(b);
    join_thread(c);
    ASSERT_NO_TOKENS_HELD();
    printf("core/seed: ok\n");
    return 0;
}
