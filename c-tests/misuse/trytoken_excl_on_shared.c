/*
 * misuse/trytoken_excl_on_shared.c: S5/S10 through lwkt_trytoken: an
 * exclusive try on one's own shared hold is the same misuse (it could
 * never succeed), reported, not answered "busy".
 */
// expect-stderr: lwkt_trytoken(misuse_try_shared_held)
// expect-stderr: shared
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_try_shared_held);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_gettoken_shared(&T);
    int r = lwkt_trytoken(&T);
    fprintf(stderr, "FAIL: exclusive try on own shared hold returned %d\n", r);
    return 1;
}
