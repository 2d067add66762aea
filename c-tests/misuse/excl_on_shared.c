/*
 * misuse/excl_on_shared.c: S5/S10. An exclusive request on a token the
 * thread holds shared can never succeed: it aborts instead of hanging.
 */
// expect-stderr: lwkt_gettoken(misuse_shared_held)
// expect-stderr: shared
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_shared_held);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(TEST_DEADLINE_S); /* a hang fails differently */
    lwkt_gettoken_shared(&T);
    lwkt_gettoken(&T);
    fprintf(stderr, "FAIL: exclusive on own shared hold returned\n");
    return 1;
}
