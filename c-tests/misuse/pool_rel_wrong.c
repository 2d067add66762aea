/*
 * misuse/pool_rel_wrong.c: lwkt_relpooltoken of an object whose pool token
 * is not the most recent reference aborts, naming the pool token.
 */
// expect-stderr: lwkt_relpooltoken(pool token #
// expect-stderr: misuse_after_pool
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_after_pool);
static char object;

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    lwkt_getpooltoken(&object);
    lwkt_gettoken(&T);
    lwkt_relpooltoken(&object);
    fprintf(stderr, "FAIL: lwkt_relpooltoken not on top returned\n");
    return 1;
}
