/*
 * misuse/assert_held_excl.c: ASSERT_LWKT_TOKEN_HELD_EXCL fails on a shared
 * hold.
 */
// expect-stderr: ASSERT_LWKT_TOKEN_HELD_EXCL(misuse_asserted_excl)
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_asserted_excl);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_gettoken_shared(&T);
    ASSERT_LWKT_TOKEN_HELD(&T); /* passes: held shared */
    ASSERT_LWKT_TOKEN_HELD_EXCL(&T);
    fprintf(stderr, "FAIL: ASSERT_LWKT_TOKEN_HELD_EXCL on a shared hold returned\n");
    return 1;
}
