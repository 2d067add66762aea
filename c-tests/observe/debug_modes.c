/*
 * debug_modes.c: what LWKT_DEBUG reports; one behaviour per argument
 * (c-tests/observe.rs runs each with and without LWKT_DEBUG). Linked with
 * -rdynamic, so that backtraces and "taken at" name these functions.
 *
 *   plain        take and release a token; print "plain: ok"
 *   misuse       release a token that is not the most recent reference
 *                (from misuse_here(), holding dbg_A and dbg_B): aborts
 *   excl_shared  take dbg_S shared in take_shared_here(), then exclusively
 *                in take_excl_there(): aborts
 *   hold_long    hold dbg_H 300 ms spinning (no blocking call)
 *   hold_short   hold dbg_H briefly 100 times, then 1.2 s across a
 *                nanosleep (which releases it): never held long without
 *                blocking
 */
#include "check.h"

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(dbg_A);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(dbg_B);
static struct lwkt_token S = LWKT_TOKEN_INITIALIZER(dbg_S);
static struct lwkt_token H = LWKT_TOKEN_INITIALIZER(dbg_H);

__attribute__((noinline)) void misuse_here(void) {
    lwkt_reltoken(&A); /* B is on top */
    __asm__ volatile("");
}

__attribute__((noinline)) void take_shared_here(void) {
    lwkt_gettoken_shared(&S);
    __asm__ volatile("");
}

__attribute__((noinline)) void take_excl_there(void) {
    lwkt_gettoken(&S);
    __asm__ volatile("");
}

int main(int argc, char **argv) {
    start_watchdog(TEST_DEADLINE_S);
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "plain") == 0) {
        lwkt_gettoken(&A);
        lwkt_reltoken(&A);
        printf("plain: ok\n");
        return 0;
    }
    if (strcmp(mode, "misuse") == 0) {
        lwkt_gettoken(&A);
        lwkt_gettoken(&B);
        misuse_here();
        fprintf(stderr, "FAIL: releasing a reference not on top returned\n");
        return 1;
    }
    if (strcmp(mode, "excl_shared") == 0) {
        take_shared_here();
        take_excl_there();
        fprintf(stderr, "FAIL: exclusive on own shared hold returned\n");
        return 1;
    }
    if (strcmp(mode, "hold_long") == 0) {
        lwkt_gettoken(&H);
        spin_for(0.300);
        lwkt_reltoken(&H);
        printf("hold_long: ok\n");
        return 0;
    }
    if (strcmp(mode, "hold_short") == 0) {
        for (int i = 0; i < 100; i++) {
            lwkt_gettoken(&H);
            lwkt_reltoken(&H);
        }
        lwkt_gettoken(&H);
        struct timespec t = {1, 200000000};
        CHECK(nanosleep(&t, NULL) == 0);
        lwkt_reltoken(&H);
        printf("hold_short: ok\n");
        return 0;
    }
    fprintf(stderr, "FAIL: unknown mode '%s'\n", mode);
    return 1;
}
