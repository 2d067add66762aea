/*
 * misuse/swap_one_ref.c: lwkt_token_swap needs two references; with one it
 * aborts rather than corrupting the reference stack.
 */
// expect-stderr: lwkt_token_swap
// expect-stderr: misuse_lonely
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_lonely);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_gettoken(&T);
    lwkt_token_swap();
    fprintf(stderr, "FAIL: lwkt_token_swap with one reference returned\n");
    return 1;
}
