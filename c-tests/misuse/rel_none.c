/*
 * misuse/rel_none.c: S10. Releasing while holding no token aborts, naming
 * the call and the token.
 */
// expect-stderr: lwkt_reltoken(misuse_unheld)
// expect-stderr: holding no token
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_unheld);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_reltoken(&T);
    fprintf(stderr, "FAIL: lwkt_reltoken with no token held returned\n");
    return 1;
}
