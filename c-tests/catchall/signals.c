/*
 * catchall/signals.c: the program's own signal use keeps working while the
 * catch-all traps its system calls (SPEC sections 4 and 7), and errno survives
 * trapped calls. Each part runs while the main thread holds tokens (T
 * exclusively twice, S shared), so that every system call it makes traps;
 * after each part, a block in libc's own sem_wait must still release T
 * (ca_block_until_taken) -- the shim's SIGSYS handling still works -- and
 * T and S are held as before.
 *
 * 1. SIGSYS of the program's own: its sigaction(SIGSYS) handler is
 *    reported back by sigaction, and gets the SIGSYS raised by raise(),
 *    kill() and sigqueue() (with their si_code and value), not ours.
 * 2. Masks are the program's (SPEC section 7): the exported sigprocmask
 *    and pthread_sigmask block SIGSYS for real, holding tokens or not (the
 *    catch-all steps aside in the thread until SIGSYS is unblocked; a
 *    SIGSYS raised meanwhile stays pending); libc's own, trapped while
 *    tokens are held, block it as the program reads it back while the
 *    catch-all keeps working (a SIGSYS raised meanwhile waits for the
 *    unblock). Other signals asked for are blocked (a blocked SIGUSR2
 *    stays pending until unblocked).
 * 3. A program signal handler runs and returns while the thread holds
 *    tokens (its return through libc's restorer traps and must be re-run):
 *    asynchronous (another thread signals a spinning holder; registers and
 *    floating point survive), synchronous (raise), on an alternate signal
 *    stack, making a system call of its own, and left by siglongjmp.
 * 4. SA_RESTART: a handler interrupting a released block in libc's read
 *    restarts the read, which returns the data written later.
 * 5. errno: trapped calls that succeed leave errno alone; failing ones set
 *    it as libc would.
 * 6. setuid/setgid, which glibc carries out in every thread from a signal
 *    handler of its own (SIGSETXID), with token holders spinning and
 *    blocked.
 */
#include "catchall_util.h"

#include <setjmp.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(sig_T);
static struct lwkt_token S = LWKT_TOKEN_INITIALIZER(sig_S);

static void hold(void) {
    lwkt_gettoken(&T);
    lwkt_gettoken_shared(&S);
    lwkt_gettoken(&T);
}
static void check_held(const char *where) {
    if (!(lwkt_cnttoken(&T) == 2 && LWKT_TOKEN_HELD_EXCL(&T) && lwkt_cnttoken(&S) == 1 &&
          !LWKT_TOKEN_HELD_EXCL(&S))) {
        fprintf(stderr, "FAIL: %s: tokens not held as taken (T %d excl %d, S %d)\n", where,
                lwkt_cnttoken(&T), LWKT_TOKEN_HELD_EXCL(&T), lwkt_cnttoken(&S));
        _exit(1);
    }
}
static void unhold(void) {
    lwkt_reltoken(&T);
    lwkt_reltoken(&S);
    lwkt_reltoken(&T);
    ASSERT_NO_TOKENS_HELD();
}
/* After each part: the catch-all still releases T around a libc-internal
 * block, and gives the tokens back as they were. */
static void still_works(const char *where) {
    check_held(where);
    ca_block_until_taken(&T);
    check_held(where);
}

/* ---- 1. the program's own SIGSYS ---------------------------------------- */

static atomic_int sys_count, sys_code, sys_value, sys_held;
static void on_program_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)ctx;
    if (sig != SIGSYS)
        _exit(3);
    atomic_store(&sys_code, si->si_code);
    atomic_store(&sys_value, si->si_code == SI_QUEUE ? si->si_value.sival_int : 0);
    atomic_store(&sys_held, lwkt_cnttoken(&T));
    atomic_fetch_add(&sys_count, 1);
}

static void expect_sigsys(int n, int code, const char *how) {
    SPIN_UNTIL_COND(atomic_load(&sys_count) >= n);
    if (atomic_load(&sys_count) != n || atomic_load(&sys_code) != code) {
        fprintf(stderr, "FAIL: %s: the program's SIGSYS handler ran %d times (want %d), "
                        "si_code %d (want %d)\n",
                how, atomic_load(&sys_count), n, atomic_load(&sys_code), code);
        _exit(1);
    }
}

static void part_program_sigsys(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_program_sigsys;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
    memset(&old, 0, sizeof old);
    CHECK_EQ(sigaction(SIGSYS, NULL, &old), 0);
    CHECK(old.sa_sigaction == on_program_sigsys);
    CHECK(old.sa_flags & SA_SIGINFO);

    /* Without tokens first (no trap involved). */
    CHECK_EQ(raise(SIGSYS), 0);
    expect_sigsys(1, SI_TKILL, "raise(SIGSYS), no token held");

    hold();
    CHECK_EQ(raise(SIGSYS), 0);
    expect_sigsys(2, SI_TKILL, "raise(SIGSYS) holding tokens");
    /* The handler ran in this thread, which held T. */
    CHECK_EQ(atomic_load(&sys_held), 2);
    still_works("after raise(SIGSYS)");

    CHECK_EQ(CA(raise)(SIGSYS), 0);
    expect_sigsys(3, SI_TKILL, "libc's raise(SIGSYS) holding tokens");
    still_works("after libc's raise(SIGSYS)");

    /* Process-directed: any thread not blocking SIGSYS may take it. */
    CHECK_EQ(kill(getpid(), SIGSYS), 0);
    expect_sigsys(4, SI_USER, "kill(getpid(), SIGSYS) holding tokens");
    still_works("after kill(SIGSYS)");

    union sigval v = {.sival_int = 4711};
    CHECK_EQ(pthread_sigqueue(pthread_self(), SIGSYS, v), 0);
    expect_sigsys(5, SI_QUEUE, "pthread_sigqueue(self, SIGSYS) holding tokens");
    CHECK_EQ(atomic_load(&sys_value), 4711);
    still_works("after pthread_sigqueue(SIGSYS)");
    unhold();

    /* Back to the default, as the program sees it. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    CHECK_EQ(sigaction(SIGSYS, &sa, &old), 0);
    CHECK(old.sa_sigaction == on_program_sigsys);
    memset(&old, 0, sizeof old);
    CHECK_EQ(sigaction(SIGSYS, NULL, &old), 0);
    CHECK(old.sa_handler == SIG_DFL);
    printf("catchall/signals: the program's SIGSYS handler: ok\n");
}

/* ---- 2. masks ------------------------------------------------------------ */

static atomic_int usr2_count;
static void on_usr2(int sig) {
    (void)sig;
    atomic_fetch_add(&usr2_count, 1);
}

/* The mask as libc's own sigprocmask reads it (traps when tokens are
 * held, and must then answer as the program set it). */
static sigset_t current_mask(void) {
    sigset_t cur;
    sigemptyset(&cur);
    CHECK_EQ(CA(sigprocmask)(SIG_BLOCK, NULL, &cur), 0);
    return cur;
}
/* The kernel's own mask: a raw system call in the program. */
static int kernel_blocks(int sig) {
    unsigned long m = 0;
    CHECK_EQ(ca_raw4(SYS_rt_sigprocmask, SIG_BLOCK, 0, (long)&m, 8), 0);
    return (m >> (sig - 1)) & 1;
}

typedef int (*mask_fn)(int, const sigset_t *, sigset_t *);

static void install_program_sigsys(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_program_sigsys;
    sa.sa_flags = SA_SIGINFO;
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
}

/* The exported functions block SIGSYS for real, holding tokens or not: the
 * catch-all steps aside in this thread while it does (a trap then would
 * kill it), a SIGSYS raised meanwhile stays pending, and unblocking it
 * delivers that one and gives the thread its catch-all back. */
static void try_mask(const char *name, mask_fn fn, int holding) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    sigaddset(&set, SIGUSR2);
    if (holding)
        hold();
    CHECK_EQ(fn(SIG_BLOCK, &set, &old), 0);
    CHECK(!sigismember(&old, SIGSYS));
    CHECK(!sigismember(&old, SIGUSR2));
    sigset_t cur = current_mask();
    if (!sigismember(&cur, SIGSYS) || !sigismember(&cur, SIGUSR2) || !kernel_blocks(SIGSYS)) {
        fprintf(stderr, "FAIL: %s(SIG_BLOCK, {SIGSYS, SIGUSR2})%s: SIGSYS %s (kernel: %s), "
                        "SIGUSR2 %s\n", name, holding ? " holding tokens" : "",
                sigismember(&cur, SIGSYS) ? "blocked" : "not blocked",
                kernel_blocks(SIGSYS) ? "blocked" : "not blocked",
                sigismember(&cur, SIGUSR2) ? "blocked" : "not blocked");
        _exit(1);
    }
    CHECK(CA(getppid)() == getppid()); /* no trap: nothing to kill us */
    /* Both stay pending. */
    int before = atomic_load(&usr2_count), sys_before = atomic_load(&sys_count);
    CHECK_EQ(raise(SIGUSR2), 0);
    CHECK_EQ(raise(SIGSYS), 0);
    spin_for(0.02);
    CHECK_EQ(atomic_load(&usr2_count), before);
    CHECK_EQ(atomic_load(&sys_count), sys_before);
    sigset_t pend;
    CHECK_EQ(sigpending(&pend), 0);
    CHECK(sigismember(&pend, SIGUSR2));
    CHECK(sigismember(&pend, SIGSYS));

    /* Everything, SIGSYS included. */
    sigset_t all;
    sigfillset(&all);
    CHECK_EQ(fn(SIG_SETMASK, &all, NULL), 0);
    cur = current_mask();
    CHECK(sigismember(&cur, SIGSYS));
    CHECK(sigismember(&cur, SIGUSR1));

    /* Unblocking delivers both; the catch-all is back. */
    CHECK_EQ(fn(SIG_SETMASK, &old, NULL), 0);
    SPIN_UNTIL_COND(atomic_load(&usr2_count) == before + 1);
    expect_sigsys(sys_before + 1, SI_TKILL, name);
    cur = current_mask();
    CHECK(!sigismember(&cur, SIGUSR2));
    CHECK(!sigismember(&cur, SIGSYS));
    if (!holding)
        hold();
    still_works(name);
    unhold();
    printf("catchall/signals: %s blocks SIGSYS%s: ok\n", name, holding ? ", holding tokens" : "");
}

/* libc's own functions, while the thread holds tokens: their system call
 * traps. SIGSYS reads back blocked, the catch-all keeps working (libc
 * blocks everything for a moment around clone or tgkill), and a SIGSYS
 * raised meanwhile waits until it is unblocked. */
static void try_own_mask(const char *name, mask_fn fn) {
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGSYS);
    sigaddset(&set, SIGUSR2);
    hold();
    CHECK_EQ(fn(SIG_BLOCK, &set, &old), 0);
    sigset_t cur = current_mask();
    if (!sigismember(&cur, SIGSYS) || !sigismember(&cur, SIGUSR2)) {
        fprintf(stderr, "FAIL: %s(SIG_BLOCK, {SIGSYS, SIGUSR2}) holding tokens: reads back "
                        "SIGSYS %s, SIGUSR2 %s\n", name,
                sigismember(&cur, SIGSYS) ? "blocked" : "not blocked",
                sigismember(&cur, SIGUSR2) ? "blocked" : "not blocked");
        _exit(1);
    }
    CHECK(kernel_blocks(SIGUSR2));
    still_works(name);
    int sys_before = atomic_load(&sys_count);
    CHECK_EQ(raise(SIGSYS), 0);
    spin_for(0.02);
    CHECK_EQ(atomic_load(&sys_count), sys_before);
    still_works(name);
    CHECK_EQ(fn(SIG_SETMASK, &old, NULL), 0);
    expect_sigsys(sys_before + 1, SI_TKILL, name);
    cur = current_mask();
    CHECK(!sigismember(&cur, SIGSYS));
    CHECK(!sigismember(&cur, SIGUSR2));
    still_works(name);
    unhold();
    printf("catchall/signals: %s, holding tokens, blocks SIGSYS as seen: ok\n", name);
}

static void part_masks(void) {
    install_program_sigsys();
    try_mask("sigprocmask", sigprocmask, 0);
    try_mask("pthread_sigmask", pthread_sigmask, 0);
    try_mask("sigprocmask", sigprocmask, 1);
    try_mask("pthread_sigmask", pthread_sigmask, 1);
    try_own_mask("libc's own sigprocmask", (mask_fn)ca_sym("sigprocmask"));
    try_own_mask("libc's own pthread_sigmask", (mask_fn)ca_sym("pthread_sigmask"));
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    CHECK_EQ(sigaction(SIGSYS, &dfl, NULL), 0);
}

/* ---- 3. program handlers while holding tokens ---------------------------- */

static int sigpipe[2];
static atomic_int usr1_count, usr1_held, usr1_wrote;
static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    atomic_store(&usr1_held, lwkt_cnttoken(&T));
    /* A system call of its own (traps when the thread holds tokens). */
    atomic_store(&usr1_wrote, (int)write(sigpipe[1], "s", 1));
    /* Floating point of its own. */
    volatile double x = 1.0;
    for (int i = 0; i < 100; i++)
        x = x * 1.000001 + 0.5;
    errno = saved;
    atomic_fetch_add(&usr1_count, 1);
}

static void install(int sig, void (*fn)(int), int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(sig, &sa, NULL), 0);
}

static void expect_usr1(int n, const char *how) {
    SPIN_UNTIL_COND(atomic_load(&usr1_count) >= n);
    CHECK_EQ(atomic_load(&usr1_count), n);
    if (atomic_load(&usr1_held) != 2 || atomic_load(&usr1_wrote) != 1) {
        fprintf(stderr, "FAIL: %s: in the handler, T count %d (want 2), write returned %d\n",
                how, atomic_load(&usr1_held), atomic_load(&usr1_wrote));
        _exit(1);
    }
    char c;
    CHECK_EQ(read(sigpipe[0], &c, 1), 1);
}

static pthread_t main_thread;
static atomic_int stop_signalling;
static void *signaller(void *arg) {
    int sig = (int)(intptr_t)arg;
    while (!atomic_load(&stop_signalling)) {
        pthread_kill(main_thread, sig);
        double next = now_s() + 0.01;
        while (now_s() < next && !atomic_load(&stop_signalling))
            sched_yield();
    }
    return NULL;
}

static void part_handlers(void) {
    CHECK_EQ(pipe2(sigpipe, O_CLOEXEC), 0);
    install(SIGUSR1, on_usr1, 0);
    main_thread = pthread_self();
    int n = 0;

    /* Synchronous: raise() (its tgkill traps; the handler runs inside). */
    hold();
    CHECK_EQ(raise(SIGUSR1), 0);
    expect_usr1(++n, "raise(SIGUSR1)");
    still_works("after a handler for raise()");

    /* Asynchronous: the holder spins, computing, while another thread
     * signals it 20 times; registers and floating point survive. */
    atomic_store(&stop_signalling, 0);
    unhold(); /* pthread_create from a holder is catchall_process.c's */
    pthread_t t = hk_spawn(signaller, (void *)(intptr_t)SIGUSR1);
    hold();
    unsigned long x = 12345;
    double d = 1.0;
    long iters = 0;
    int target = n + 20;
    double end = now_s() + TEST_DEADLINE_S;
    while (atomic_load(&usr1_count) < target) {
        x = x * 6364136223846793005UL + 1442695040888963407UL;
        d = d * 1.0000001 + 1e-9;
        iters++;
        CHECK(now_s() < end);
    }
    atomic_store(&stop_signalling, 1);
    unsigned long x2 = 12345;
    double d2 = 1.0;
    for (long i = 0; i < iters; i++) {
        x2 = x2 * 6364136223846793005UL + 1442695040888963407UL;
        d2 = d2 * 1.0000001 + 1e-9;
    }
    CHECK(x == x2);
    CHECK(d == d2);
    check_held("after asynchronous handlers");
    unhold();
    join_thread(t);
    /* Any signal still on its way lands now, with no token held. */
    syscall(SYS_getpid);
    char drainbuf[64];
    int fl = fcntl(sigpipe[0], F_GETFL);
    fcntl(sigpipe[0], F_SETFL, fl | O_NONBLOCK);
    while (read(sigpipe[0], drainbuf, sizeof drainbuf) > 0) {
    }
    fcntl(sigpipe[0], F_SETFL, fl);
    n = atomic_load(&usr1_count);
    hold();
    still_works("after asynchronous handlers");

    /* On an alternate signal stack. */
    static char altstack[64 * 1024];
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    install(SIGUSR1, on_usr1, SA_ONSTACK);
    CHECK_EQ(raise(SIGUSR1), 0);
    expect_usr1(++n, "raise(SIGUSR1), SA_ONSTACK");
    still_works("after a handler on the alternate stack");
    ss.ss_flags = SS_DISABLE;
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    install(SIGUSR1, on_usr1, 0);
    unhold();
    printf("catchall/signals: handlers return while holding tokens: ok\n");
}

/* siglongjmp out of a handler, holding tokens: the mask saved by
 * sigsetjmp comes back (its rt_sigprocmask traps). */
static sigjmp_buf jb;
static atomic_int jumped;
static void on_usr1_jump(int sig) {
    (void)sig;
    atomic_store(&jumped, 1);
    siglongjmp(jb, 1);
}

static void part_siglongjmp(void) {
    install(SIGUSR1, on_usr1_jump, 0);
    hold();
    if (sigsetjmp(jb, 1) == 0) {
        CHECK_EQ(raise(SIGUSR1), 0);
        fprintf(stderr, "FAIL: the handler did not jump\n");
        _exit(1);
    }
    CHECK(atomic_load(&jumped));
    check_held("after siglongjmp");
    /* SIGUSR1 is no longer blocked (the handler's mask was undone). */
    sigset_t cur = current_mask();
    CHECK(!sigismember(&cur, SIGUSR1));
    CHECK(!sigismember(&cur, SIGSYS));
    still_works("after siglongjmp");
    unhold();
    cur = current_mask();
    CHECK(!sigismember(&cur, SIGUSR1));
    install(SIGUSR1, on_usr1, 0);
    printf("catchall/signals: siglongjmp out of a handler: ok\n");
}

/* ---- 4. SA_RESTART around a released block ------------------------------- */

static int rpipe[2];
static atomic_int restart_count, restart_armed, restart_took;
static void on_restart_sig(int sig) {
    (void)sig;
    atomic_fetch_add(&restart_count, 1);
}
static void *restart_helper(void *arg) {
    (void)arg;
    SPIN_UNTIL(restart_armed);
    /* The holder blocked in libc's read: T is free. */
    SPIN_UNTIL_COND(lwkt_trytoken(&T));
    atomic_store(&restart_took, 1);
    lwkt_reltoken(&T);
    /* Interrupt it 3 times (each one lands in the read, or just before). */
    for (int i = 1; i <= 3; i++) {
        double end = now_s() + TEST_DEADLINE_S;
        while (atomic_load(&restart_count) < i) {
            pthread_kill(main_thread, SIGUSR2);
            double next = now_s() + 0.02;
            while (now_s() < next && atomic_load(&restart_count) < i)
                sched_yield();
            CHECK(now_s() < end);
        }
    }
    CHECK_EQ(write(rpipe[1], "data", 4), 4);
    return NULL;
}

static void part_restart(void) {
    CHECK_EQ(pipe2(rpipe, O_CLOEXEC), 0);
    install(SIGUSR2, on_restart_sig, SA_RESTART);
    main_thread = pthread_self();
    pthread_t t = hk_spawn(restart_helper, NULL);
    hold();
    lwkt_mark_t m = lwkt_mark();
    atomic_store(&restart_armed, 1);
    char buf[8];
    errno = EDOM;
    ssize_t r = CA(read)(rpipe[0], buf, sizeof buf);
    int err = errno;
    check_held("after a restarted read");
    if (r != 4 || memcmp(buf, "data", 4) != 0) {
        fprintf(stderr, "FAIL: libc's read interrupted by SA_RESTART handlers returned %zd "
                        "(errno %d), want 4 bytes\n", r, err);
        _exit(1);
    }
    CHECK_EQ(err, EDOM);
    CHECK(atomic_load(&restart_took));
    CHECK(lwkt_lost_since(m));
    CHECK_EQ(atomic_load(&restart_count), 3);
    still_works("after a restarted read");
    unhold();
    join_thread(t);
    install(SIGUSR2, on_usr2, 0);
    printf("catchall/signals: SA_RESTART restarts a released read: ok\n");
}

/* ---- 5. errno ------------------------------------------------------------ */

static void part_errno(void) {
    hold();
    errno = EDOM;
    CHECK(CA(getpid)() == getpid());
    CHECK_EQ(errno, EDOM);
    errno = EDOM;
    CHECK(ca_raw3(SYS_getpid, 0, 0, 0) == getpid());
    CHECK_EQ(errno, EDOM);
    errno = EDOM;
    CHECK_EQ(CA(usleep)(1000), 0); /* blocks: released and retaken */
    CHECK_EQ(errno, EDOM);
    char c;
    errno = EDOM;
    CHECK_EQ(CA(read)(-1, &c, 1), -1);
    CHECK_EQ(errno, EBADF);
    errno = EDOM;
    CHECK_EQ(CA(close)(-1), -1);
    CHECK_EQ(errno, EBADF);
    /* A failing raw call: the kernel's -errno, errno untouched. */
    errno = EDOM;
    CHECK_EQ(ca_raw3(SYS_close, -1, 0, 0), -EBADF);
    CHECK_EQ(errno, EDOM);
    /* A blocking call that fails after the release: a wait with no child. */
    errno = EDOM;
    CHECK_EQ(CA(waitpid)(-1, NULL, 0), -1);
    CHECK_EQ(errno, ECHILD);
    errno = EDOM;
    still_works("errno");
    CHECK_EQ(errno, EDOM);
    unhold();
    printf("catchall/signals: errno across trapped calls: ok\n");
}

/* ---- 6. setuid/setgid: glibc's own signal to every thread ---------------- */

/* In a multithreaded process glibc makes every thread run setresuid and
 * setresgid in a SIGSETXID handler: here while the caller holds tokens, a
 * second thread holds a token and spins (its handler's system call and
 * rt_sigreturn trap) and a third holds one, blocked in libc's own sem_wait
 * (released). */
static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(sig_A);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(sig_B);
static atomic_int xid_stop, xid_ready;
static sem_t xid_sem;
static void *xid_spinner(void *arg) {
    (void)arg;
    lwkt_gettoken(&A);
    atomic_fetch_add(&xid_ready, 1);
    while (!atomic_load(&xid_stop)) {
    }
    CHECK_EQ(lwkt_cnttoken(&A), 1);
    lwkt_reltoken(&A);
    return NULL;
}
static void *xid_blocker(void *arg) {
    (void)arg;
    lwkt_gettoken(&B);
    atomic_fetch_add(&xid_ready, 1);
    CHECK_EQ(CA(sem_wait)(&xid_sem), 0);
    CHECK_EQ(lwkt_cnttoken(&B), 1);
    lwkt_reltoken(&B);
    return NULL;
}

static void part_setxid(void) {
    CHECK_EQ(sem_init(&xid_sem, 0, 0), 0);
    pthread_t t1 = hk_spawn(xid_spinner, NULL), t2 = hk_spawn(xid_blocker, NULL);
    SPIN_UNTIL_COND(atomic_load(&xid_ready) == 2);
    hold();
    for (int i = 0; i < 50; i++) {
        CHECK_EQ(setgid(getgid()), 0);
        CHECK_EQ(setuid(getuid()), 0);
    }
    check_held("after setuid/setgid");
    still_works("after setuid/setgid");
    unhold();
    atomic_store(&xid_stop, 1);
    CHECK_EQ(sem_post(&xid_sem), 0);
    join_thread(t1);
    join_thread(t2);
    printf("catchall/signals: setuid/setgid across token holders: ok\n");
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    start_watchdog(6 * TEST_DEADLINE_S);
    setvbuf(stdout, NULL, _IONBF, 0);
    install(SIGUSR2, on_usr2, 0);
    ca_taker_start();
    part_program_sigsys();
    part_masks();
    part_handlers();
    part_siglongjmp();
    part_restart();
    part_errno();
    part_setxid();
    printf("catchall/signals: ok\n");
    return 0;
}
