/*
 * misuse/assert_held.c: ASSERT_LWKT_TOKEN_HELD fails loudly when the token
 * is not held, naming the assertion, the token, the file and the line.
 */
// expect-stderr: ASSERT_LWKT_TOKEN_HELD(misuse_asserted)
// expect-stderr: misuse/assert_held.c
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_asserted);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_gettoken(&T);
    ASSERT_LWKT_TOKEN_HELD(&T); /* passes */
    lwkt_reltoken(&T);
    ASSERT_LWKT_TOKEN_HELD(&T);
    fprintf(stderr, "FAIL: ASSERT_LWKT_TOKEN_HELD on an unheld token returned\n");
    return 1;
}
