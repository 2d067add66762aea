/*
 * misuse/use_after_uninit.c: S10. Taking a token after lwkt_token_uninit
 * aborts, naming the call and the token.
 */
// expect-stderr: lwkt_gettoken(misuse_retired)
// expect-stderr: uninit
#include "check.h"

static struct lwkt_token T;

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_token_init(&T, "misuse_retired");
    lwkt_gettoken(&T);
    lwkt_reltoken(&T);
    lwkt_token_uninit(&T);
    lwkt_gettoken(&T);
    fprintf(stderr, "FAIL: lwkt_gettoken after uninit returned\n");
    return 1;
}
