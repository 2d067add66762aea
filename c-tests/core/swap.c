/*
 * core/swap.c: S6. lwkt_reltoken releases the most recent reference;
 * lwkt_token_swap exchanges the two most recent ones, so that the token
 * taken first can be released first. Checked from outside: after the swap
 * and one release, another thread can take the first token but not the
 * second.
 */
#include "check.h"

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(swap_A);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(swap_B);
static struct lwkt_token C = LWKT_TOKEN_INITIALIZER(swap_C);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    /* A then B; swap; now A is on top and is released first. */
    lwkt_gettoken(&A);
    lwkt_gettoken(&B);
    lwkt_token_swap();
    CHECK(LWKT_TOKEN_HELD_EXCL(&A) && LWKT_TOKEN_HELD_EXCL(&B));
    lwkt_reltoken(&A);
    CHECK_EQ(lwkt_cnttoken(&A), 0);
    CHECK_EQ(lwkt_cnttoken(&B), 1);
    CHECK(other_thread_can_take(&A, 0));
    CHECK(!other_thread_can_take(&B, 0));
    lwkt_reltoken(&B);
    CHECK(other_thread_can_take(&B, 0));

    /* Only the top two move: with A, B, C, a swap makes the order A, C, B. */
    lwkt_gettoken(&A);
    lwkt_gettoken_shared(&B);
    lwkt_gettoken(&C);
    lwkt_token_swap();
    lwkt_reltoken(&B);
    CHECK(!LWKT_TOKEN_HELD_ANY(&B));
    CHECK(other_thread_can_take(&B, 0));
    CHECK(!other_thread_can_take(&C, 0));
    lwkt_reltoken(&C);
    lwkt_reltoken(&A);
    ASSERT_NO_TOKENS_HELD();

    /* Two swaps restore the order. */
    lwkt_gettoken(&A);
    lwkt_gettoken(&B);
    lwkt_token_swap();
    lwkt_token_swap();
    lwkt_reltoken(&B);
    lwkt_reltoken(&A);

    /* Two references to one token: after a swap and a release, one
     * reference remains and still keeps exclusive takers out. */
    lwkt_gettoken(&A);
    lwkt_gettoken_shared(&A);
    lwkt_token_swap();
    lwkt_reltoken(&A);
    CHECK_EQ(lwkt_cnttoken(&A), 1);
    CHECK(!other_thread_can_take(&A, 0));
    lwkt_reltoken(&A);
    CHECK(other_thread_can_take(&A, 0));

    ASSERT_NO_TOKENS_HELD();
    printf("core/swap: ok\n");
    return 0;
}
