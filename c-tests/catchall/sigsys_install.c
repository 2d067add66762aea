/*
 * catchall/sigsys_install.c: every way a program can install a SIGSYS
 * handler leaves the shim's own in place (SPEC sections 4 and 7): besides the
 * sigaction and signal hooks, libc's sigset, bsd_signal and sysv_signal
 * (exported functions that reach libc's internal sigaction, which no hook
 * sees), and libc's own sigaction through dlsym while the thread holds a
 * token (its rt_sigaction traps). After the installation, a thread holding
 * T makes a system call inside libc (getppid): it must run and return the
 * right value, not land in the program's handler; a raise(SIGSYS) must
 * reach the program's handler; and a block in libc's own sem_wait must
 * still release T. Each case runs in a child process (a crash names it).
 */
#include "catchall_util.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(install_T);
static atomic_int program_handler_ran;

static void on_sigsys(int sig) {
    (void)sig;
    atomic_fetch_add(&program_handler_ran, 1);
}

/* The exported function as the program's own call resolves it (the
 * shim's, should it define one): sigset and bsd_signal are deprecated or
 * undeclared, so look them up rather than call them by name. */
typedef __sighandler_t (*install_fn)(int, __sighandler_t);
static void via_global(const char *name) {
    install_fn f = (install_fn)dlsym(RTLD_DEFAULT, name);
    CHECK(f != NULL);
    CHECK(f(SIGSYS, on_sigsys) != SIG_ERR);
}
static void via_sigset(void) { via_global("sigset"); }
static void via_bsd_signal(void) { via_global("bsd_signal"); }
static void via_sysv_signal(void) { via_global("sysv_signal"); }
static void via_libc_sigaction_holding(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigsys;
    lwkt_gettoken(&T);
    CHECK_EQ(CA(sigaction)(SIGSYS, &sa, NULL), 0);
    lwkt_reltoken(&T);
}

static const struct {
    const char *name;
    void (*install)(void);
} cases[] = {
    {"sigset", via_sigset},
    {"bsd_signal", via_bsd_signal},
    {"sysv_signal", via_sysv_signal},
    {"libc's own sigaction, holding a token", via_libc_sigaction_holding},
};

static void run_case(void (*install)(void)) {
    start_watchdog(TEST_DEADLINE_S);
    ca_taker_start();
    install();
    pid_t want = getppid();
    lwkt_gettoken(&T);
    pid_t got = getppid(); /* a syscall instruction inside libc: traps */
    CHECK_EQ(got, want);
    CHECK_EQ(atomic_load(&program_handler_ran), 0);
    CHECK_EQ(raise(SIGSYS), 0);
    CHECK_EQ(atomic_load(&program_handler_ran), 1);
    ca_block_until_taken(&T);
    lwkt_reltoken(&T);
    _exit(0);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            run_case(cases[i].install);
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "FAIL: SIGSYS handler installed by %s: %s\n", cases[i].name,
                    WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "a check failed");
            failed = 1;
        }
    }
    if (!failed)
        printf("catchall/sigsys_install: ok\n");
    return failed;
}
