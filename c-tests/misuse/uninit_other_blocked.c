/*
 * misuse/uninit_other_blocked.c: S10. A thread holds T and
 * blocks in read(), which releases T (S2); another thread then passes T to
 * lwkt_token_uninit. The blocked thread still holds T as far as the
 * program is concerned: either the uninit itself is reported, or the
 * holder's retake when read() returns is ("used after lwkt_token_uninit").
 * Either way the process aborts with a line naming T; it must not hang in
 * the retake, nor return from read() holding a retired token.
 */
// expect-stderr: (uninit_blocked_holder)
// expect-stderr: uninit
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(uninit_blocked_holder);
static int pipefd[2];
static atomic_int about_to_block;

static void *holder(void *arg) {
    (void)arg;
    char c;
    lwkt_gettoken(&T);
    atomic_store(&about_to_block, 1);
    ssize_t r = read(pipefd[0], &c, 1); /* releases T while blocked */
    fprintf(stderr, "FAIL: read returned %zd holding %d references to a retired token\n",
            r, lwkt_cnttoken(&T));
    _exit(1);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(TEST_DEADLINE_S);
    CHECK(pipe(pipefd) == 0);
    start_thread(holder, NULL);
    SPIN_UNTIL(about_to_block);
    /* Free only once the holder is blocked in read(). */
    SPIN_UNTIL_COND(lwkt_trytoken(&T));
    lwkt_reltoken(&T);
    lwkt_token_uninit(&T);
    CHECK(write(pipefd[1], "x", 1) == 1);
    spin_for(TEST_DEADLINE_S / 2);
    fprintf(stderr, "FAIL: the holder's retake of a retired token neither aborted nor "
                    "returned\n");
    return 1;
}
