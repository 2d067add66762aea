/*
 * misuse/uninit_held.c: S10. Retiring a token that is held aborts.
 */
// expect-stderr: lwkt_token_uninit(misuse_busy)
// expect-stderr: held
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_busy);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_gettoken(&T);
    lwkt_token_uninit(&T);
    fprintf(stderr, "FAIL: lwkt_token_uninit of a held token returned\n");
    return 1;
}
