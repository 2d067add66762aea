/*
 * catchall/sigsys_aside.c: a thread that blocks SIGSYS keeps it blocked,
 * and the catch-all steps aside there instead of breaking the program
 * (SPEC section 7); it comes back once SIGSYS is unblocked, also when no
 * hook saw the unblock. Each case in a child process (a crash names it).
 *
 * 1. born_blocked: a thread started with SIGSYS blocked takes a token and
 *    makes system calls inside libc (a trap now would kill it: the kernel
 *    kills a thread that traps with SIGSYS blocked), collects a SIGSYS
 *    with sigwait while holding it, then unblocks SIGSYS: from then on a
 *    block in libc's own sem_wait releases the token.
 * 2. first_in_handler: the thread's very first token is taken in a SIGUSR1
 *    handler whose mask blocks SIGSYS (installed before any token); the
 *    handler's return unblocks it, which no hook sees. Holding a token
 *    again, one hooked call later, the catch-all releases it in libc.
 * 3. longjmp: the program's SIGSYS handler (SIGSYS blocked while it runs,
 *    so the catch-all steps aside) leaves by siglongjmp while the thread
 *    holds a token: one hooked call later, the catch-all is back.
 * 4. own_dispatch_fork: a token holder switches Syscall User Dispatch on
 *    itself (the catch-all steps aside) and forks: the kernel does not
 *    pass dispatch on to the child, where the catch-all is back.
 */
#include "catchall_util.h"

#include <setjmp.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(aside_T);

/* A hooked call, cheap and harmless: a write to /dev/null. */
static void hooked_call(void) {
    static int fd = -1;
    if (fd < 0)
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "x", 1), 1);
}

/* ---- 1 ------------------------------------------------------------------- */

static void *born_blocked(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    CHECK(CA(getppid)() == getppid());
    struct timespec ms = {0, 1000000};
    CHECK_EQ(CA(nanosleep)(&ms, NULL), 0);
    /* SIGSYS is the thread's: sent now, collected by sigwait. */
    CHECK_EQ(pthread_kill(pthread_self(), SIGSYS), 0);
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    int sig = 0;
    CHECK_EQ(sigwait(&sys, &sig), 0);
    CHECK_EQ(sig, SIGSYS);
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &sys, NULL), 0);
    ca_block_until_taken(&T);
    lwkt_reltoken(&T);
    return NULL;
}

static void case_born_blocked(void) {
    ca_taker_start();
    sigset_t sys, old;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &sys, &old), 0);
    pthread_t t = start_thread(born_blocked, NULL);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    join_thread(t);
}

/* ---- 2 ------------------------------------------------------------------- */

static atomic_int in_handler_took;
static void on_usr1_take(int sig) {
    (void)sig;
    lwkt_gettoken(&T);
    lwkt_reltoken(&T);
    atomic_store(&in_handler_took, 1);
}

static void case_first_in_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1_take;
    sigfillset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK(atomic_load(&in_handler_took));
    ca_taker_start();
    lwkt_gettoken(&T);
    hooked_call();
    ca_block_until_taken(&T);
    lwkt_reltoken(&T);
}

/* ---- 3 ------------------------------------------------------------------- */

static sigjmp_buf jb;
static void on_sigsys_jump(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    (void)ctx;
    siglongjmp(jb, 1);
}

static void case_longjmp(void) {
    ca_taker_start();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys_jump;
    sa.sa_flags = SA_SIGINFO;
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
    lwkt_gettoken(&T);
    if (sigsetjmp(jb, 1) == 0) {
        raise(SIGSYS);
        fprintf(stderr, "FAIL: the SIGSYS handler did not jump\n");
        _exit(1);
    }
    CHECK_EQ(lwkt_cnttoken(&T), 1);
    hooked_call();
    ca_block_until_taken(&T);
    lwkt_reltoken(&T);
}

/* ---- 4 ------------------------------------------------------------------- */

static volatile char own_selector;

static void case_own_dispatch_fork(void) {
    lwkt_gettoken(&T);
    CHECK_EQ(prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &own_selector), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* The kernel did not pass the dispatch on: the catch-all's again. */
        ca_taker_start();
        ca_block_until_taken(&T);
        lwkt_reltoken(&T);
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0), 0);
    lwkt_reltoken(&T);
}

static const struct {
    const char *name;
    void (*run)(void);
} cases[] = {
    {"born_blocked", case_born_blocked},
    {"first_in_handler", case_first_in_handler},
    {"longjmp", case_longjmp},
    {"own_dispatch_fork", case_own_dispatch_fork},
};

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            start_watchdog(2 * TEST_DEADLINE_S);
            cases[i].run();
            _exit(0);
        }
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "FAIL: %s: %s\n", cases[i].name,
                    WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "a check failed");
            failed = 1;
        }
    }
    if (!failed)
        printf("catchall/sigsys_aside: ok\n");
    return failed;
}
