/*
 * misuse/rel_not_top.c: S6/S10. Releasing a token that is not the thread's
 * most recent reference aborts, naming the call, the token released, the
 * thread, and the tokens it holds.
 */
// expect-stderr: lwkt_reltoken(misuse_first)
// expect-stderr: misuse_second
// expect-stderr: (misuser)
#include "check.h"

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(misuse_first);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(misuse_second);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    pthread_setname_np(pthread_self(), "misuser");
    lwkt_gettoken(&A);
    lwkt_gettoken(&B);
    lwkt_reltoken(&A); /* B is on top */
    fprintf(stderr, "FAIL: lwkt_reltoken of a token not on top returned\n");
    return 1;
}
