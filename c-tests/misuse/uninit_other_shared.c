/*
 * misuse/uninit_other_shared.c: S10. lwkt_token_uninit of a token
 * that ANOTHER thread holds shared (and keeps: it spins) aborts with
 * a line naming the call and the token, instead of retiring it under the
 * holder's feet. (misuse/uninit_held.c: the caller itself holds it.)
 */
// expect-stderr: lwkt: lwkt_token_uninit(uninit_other_shared)
// expect-stderr: held
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(uninit_other_shared);
static atomic_int holds;

static void *holder(void *arg) {
    (void)arg;
    lwkt_gettoken_shared(&T);
    atomic_store(&holds, 1);
    spin_for(2 * TEST_DEADLINE_S); /* running, so it keeps T */
    fprintf(stderr, "FAIL: the process did not abort\n");
    _exit(1);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(TEST_DEADLINE_S);
    start_thread(holder, NULL);
    SPIN_UNTIL(holds);
    CHECK(!other_thread_can_take(&T, 0)); /* it really holds it */
    CHECK(other_thread_can_take(&T, 1));    /* ... shared */
    lwkt_token_uninit(&T);
    fprintf(stderr, "FAIL: lwkt_token_uninit of a token another thread holds returned\n");
    return 1;
}
