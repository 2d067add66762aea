/*
 * catchall/wait_masks.c: the temporary signal mask of sigsuspend, ppoll,
 * pselect and epoll_pwait cannot take SIGSYS away from the shim
 * (SPEC section 4). The classic "everything but the awaited signal" mask blocks
 * SIGSYS while the awaited signal's handler runs; a handler that takes a
 * token and makes a system call then traps with SIGSYS blocked, and the
 * kernel kills the process. Each case runs in a child process (a crash
 * names it): SIGUSR1 is pending, the call's mask unblocks only SIGUSR1,
 * the handler takes T, calls getppid() (a syscall instruction inside
 * libc: traps) and releases T; the call must return -1/EINTR. Once
 * holding nothing (the thread has used tokens) and once holding U across
 * the call (which the call releases; libc's own sigsuspend and ppoll,
 * reached through dlsym, only so: only then does the catch-all see them).
 */
#include "catchall_util.h"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(masks_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(masks_U);
static atomic_int handled;

static void on_usr1(int sig) {
    (void)sig;
    lwkt_gettoken(&T);
    CHECK(getppid() > 0);
    lwkt_reltoken(&T);
    atomic_store(&handled, 1);
}

static sigset_t wait_mask(void) {
    sigset_t m;
    sigfillset(&m);
    sigdelset(&m, SIGUSR1);
    return m;
}

static long do_sigsuspend(void) { sigset_t m = wait_mask(); return sigsuspend(&m); }
static long do_libc_sigsuspend(void) { sigset_t m = wait_mask(); return CA(sigsuspend)(&m); }
static long do_ppoll(void) { sigset_t m = wait_mask(); return ppoll(NULL, 0, NULL, &m); }
static long do_libc_ppoll(void) { sigset_t m = wait_mask(); return CA(ppoll)(NULL, 0, NULL, &m); }
static long do_pselect(void) { sigset_t m = wait_mask(); return pselect(0, NULL, NULL, NULL, NULL, &m); }
static long do_epoll_pwait(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ev;
    sigset_t m = wait_mask();
    return epoll_pwait(ep, &ev, 1, -1, &m);
}

/* libc's own functions are seen by the catch-all only while the thread
 * holds a token (holding nothing, no trap: nothing for the shim to fix). */
static const struct {
    const char *name;
    long (*call)(void);
    int only_holding;
} cases[] = {
    {"sigsuspend", do_sigsuspend, 0},
    {"libc's own sigsuspend", do_libc_sigsuspend, 1},
    {"ppoll", do_ppoll, 0},
    {"libc's own ppoll", do_libc_ppoll, 1},
    {"pselect", do_pselect, 0},
    {"epoll_pwait", do_epoll_pwait, 0},
};

static void run_case(long (*call)(void), int hold_u) {
    start_watchdog(TEST_DEADLINE_S);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    lwkt_gettoken(&T); /* this thread has used tokens */
    lwkt_reltoken(&T);
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &usr1, NULL), 0);
    CHECK_EQ(raise(SIGUSR1), 0); /* pending until the call's mask */
    if (hold_u)
        lwkt_gettoken(&U);
    errno = 0;
    long r = call();
    CHECK_EQ(r, -1);
    CHECK_EQ(errno, EINTR);
    CHECK(atomic_load(&handled));
    if (hold_u) {
        CHECK_EQ(lwkt_cnttoken(&U), 1);
        lwkt_reltoken(&U);
    }
    _exit(0);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int hold_u = cases[i].only_holding; hold_u < 2; hold_u++) {
            pid_t pid = fork();
            CHECK(pid >= 0);
            if (pid == 0)
                run_case(cases[i].call, hold_u);
            int st;
            CHECK_EQ(waitpid(pid, &st, 0), pid);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                fprintf(stderr, "FAIL: %s%s: the handler's trapped system call %s\n",
                        cases[i].name, hold_u ? " (holding U)" : "",
                        WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "failed");
                failed = 1;
            }
        }
    if (!failed)
        printf("catchall/wait_masks: ok\n");
    return failed;
}
