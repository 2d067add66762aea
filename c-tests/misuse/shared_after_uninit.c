/*
 * misuse/shared_after_uninit.c: S10, the shared and try paths: taking a
 * retired token shared aborts too (not only lwkt_gettoken).
 */
// expect-stderr: lwkt_trytoken_shared(misuse_retired_sh)
// expect-stderr: uninit
#include "check.h"

static struct lwkt_token T;

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_token_init(&T, "misuse_retired_sh");
    lwkt_token_uninit(&T);
    int r = lwkt_trytoken_shared(&T);
    fprintf(stderr, "FAIL: lwkt_trytoken_shared after uninit returned %d\n", r);
    return 1;
}
