/*
 * misuse/null_token.c: S10. A NULL token aborts with a message (not a
 * segmentation fault).
 */
// expect-stderr: lwkt_gettoken(NULL token)
#include "check.h"

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    volatile lwkt_token_t none = NULL; /* hide it from the compiler */
    lwkt_gettoken(none);
    fprintf(stderr, "FAIL: lwkt_gettoken(NULL) returned\n");
    return 1;
}
