/*
 * core/fork.c: S9 across fork. In the parent, thread H holds PX
 * (exclusive) and PS (shared) and keeps spinning; the main thread holds its
 * own MX (exclusive) and MS (shared), and forks. In the child only the
 * forking thread exists:
 *  - its own tokens are still held, in their modes (and exclude a thread
 *    the child starts);
 *  - PX and PS, held by a thread that does not exist in the child, are
 *    recovered: lwkt_gettoken on them succeeds, at once (well under the
 *    0.5 s period at which a sleeping waiter re-checks its holder).
 * The parent is unaffected: H still holds PX there.
 */
#include "check.h"

#include <sys/resource.h>
#include <sys/wait.h>

static struct lwkt_token PX = LWKT_TOKEN_INITIALIZER(fork_parent_excl);
static struct lwkt_token PS = LWKT_TOKEN_INITIALIZER(fork_parent_shared);
static struct lwkt_token MX = LWKT_TOKEN_INITIALIZER(fork_mine_excl);
static struct lwkt_token MS = LWKT_TOKEN_INITIALIZER(fork_mine_shared);

static atomic_int h_holds, h_release;

static void *parent_holder(void *arg) {
    (void)arg;
    lwkt_gettoken(&PX);
    lwkt_gettoken_shared(&PS);
    atomic_store(&h_holds, 1);
    SPIN_UNTIL(h_release); /* spin: keep both */
    lwkt_reltoken(&PS);
    lwkt_reltoken(&PX);
    return NULL;
}

/* In the child: can a thread of the child take tok exclusively? Answered
 * by a thread that the child starts, without the child blocking (joining
 * would release the child's tokens). */
static atomic_int c_done, c_got;
static void *child_probe(void *arg) {
    lwkt_token_t tok = arg;
    int got = lwkt_trytoken(tok);
    if (got)
        lwkt_reltoken(tok);
    atomic_store(&c_got, got);
    atomic_store(&c_done, 1);
    return NULL;
}
static int child_other_can_take(lwkt_token_t tok) {
    atomic_store(&c_done, 0);
    pthread_t t = start_thread(child_probe, tok);
    SPIN_UNTIL(c_done);
    CHECK(pthread_detach(t) == 0);
    return atomic_load(&c_got);
}

static void child(void) {
    start_watchdog(TEST_DEADLINE_S);
    /* The forking thread's tokens survived, in their modes. */
    CHECK_EQ(lwkt_cnttoken(&MX), 1);
    CHECK_EQ(lwkt_cnttoken(&MS), 1);
    CHECK(LWKT_TOKEN_HELD_EXCL(&MX));
    CHECK(!LWKT_TOKEN_HELD_EXCL(&MS));
    CHECK(!child_other_can_take(&MX));

    /* Tokens of a thread that is gone: recovered. The child knows that
     * it forked, so it recovers them at once, without sleeping: a sleeping
     * waiter would only find its holder gone at its periodic dead-holder
     * recheck (every 0.5 s, shim/token.rs). "Slept" is a voluntary context
     * switch of this thread (a futex wait); preemption under load does not
     * count, so the check holds on a busy machine. */
    struct rusage r0, r1, r2;
    CHECK(getrusage(RUSAGE_THREAD, &r0) == 0);
    double t0 = now_s();
    lwkt_gettoken(&PX);
    double waited_px = now_s() - t0;
    CHECK(getrusage(RUSAGE_THREAD, &r1) == 0);
    t0 = now_s();
    lwkt_gettoken(&PS);
    double waited_ps = now_s() - t0;
    CHECK(getrusage(RUSAGE_THREAD, &r2) == 0);
    double waited = waited_px + waited_ps;
    CHECK(LWKT_TOKEN_HELD_EXCL(&PX));
    CHECK(LWKT_TOKEN_HELD_EXCL(&PS));
    long slept_px = r1.ru_nvcsw - r0.ru_nvcsw, slept_ps = r2.ru_nvcsw - r1.ru_nvcsw;
    if ((slept_px > 0 && waited_px > 0.4) || (slept_ps > 0 && waited_ps > 0.4)) {
        fprintf(stderr,
                "FAIL: recovery after fork slept: exclusive %.3f s (%ld sleeps), "
                "shared %.3f s (%ld sleeps)\n",
                waited_px, slept_px, waited_ps, slept_ps);
        _exit(1);
    }
    /* ... and they are real tokens of the child now. */
    CHECK(!child_other_can_take(&PX));
    CHECK(!child_other_can_take(&PS));
    lwkt_reltoken(&PS);
    lwkt_reltoken(&PX);
    CHECK(child_other_can_take(&PX));
    lwkt_reltoken(&MS);
    lwkt_reltoken(&MX);
    CHECK(child_other_can_take(&MX));
    ASSERT_NO_TOKENS_HELD();
    printf("core/fork child: recovered in %.3f s\n", waited);
    _exit(0);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    pthread_t h = start_thread(parent_holder, NULL);
    SPIN_UNTIL(h_holds);

    lwkt_gettoken(&MX);
    lwkt_gettoken_shared(&MS);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        child();

    /* Parent: nothing changed here. */
    CHECK(LWKT_TOKEN_HELD_EXCL(&MX));
    CHECK(!lwkt_trytoken(&PX));
    lwkt_reltoken(&MS);
    lwkt_reltoken(&MX);

    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: the fork child failed (status %#x)\n", status);
        _exit(1);
    }
    CHECK(!lwkt_trytoken(&PX)); /* H still holds it in the parent */
    atomic_store(&h_release, 1);
    join_thread(h);
    CHECK(lwkt_trytoken(&PX));
    lwkt_reltoken(&PX);
    printf("core/fork: ok\n");
    return 0;
}
