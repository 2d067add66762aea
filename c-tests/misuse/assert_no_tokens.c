/*
 * misuse/assert_no_tokens.c: ASSERT_NO_TOKENS_HELD fails while a token is
 * held, and the message names the assertion (not a "NULL token": it takes
 * none), where it failed, and the tokens held (SPEC S10).
 */
// expect-stderr: lwkt: ASSERT_NO_TOKENS_HELD(): assertion failed at
// expect-stderr: misuse/assert_no_tokens.c:
// expect-stderr: holding: misuse_still_held [excl]; aborting
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_still_held);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ASSERT_NO_TOKENS_HELD(); /* passes */
    lwkt_gettoken(&T);
    ASSERT_NO_TOKENS_HELD();
    fprintf(stderr, "FAIL: ASSERT_NO_TOKENS_HELD while holding returned\n");
    return 1;
}
