/*
 * misuse/rel_other_thread.c: S10. A thread releasing a token that another
 * thread holds (a habit from semaphores) aborts: it holds no reference.
 * The holder keeps spinning so that the token really is held meanwhile.
 */
// expect-stderr: lwkt_reltoken(misuse_not_mine)
// expect-stderr: holding no token
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_not_mine);
static atomic_int held;

static void *holder(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    atomic_store(&held, 1);
    for (;;) {
    } /* spin until the process aborts */
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_thread(holder, NULL);
    SPIN_UNTIL(held);
    lwkt_reltoken(&T);
    fprintf(stderr, "FAIL: releasing another thread's token returned\n");
    return 1;
}
