/*
 * catchall/seccomp.c: a program that runs under its own seccomp filter and
 * handles SIGSYS itself keeps getting the SIGSYS that are not the shim's
 * (SPEC sections 4 and 7). In a child process (a filter cannot be removed), the
 * program installs, through sigaction, a SIGSYS handler that emulates
 * getppid -- it writes 4242 into the interrupted context's rax -- and a
 * filter that traps getppid (SECCOMP_RET_TRAP) and fails uname with
 * EPERM (SECCOMP_RET_ERRNO). Then, with no token held and while holding
 * T: getppid() returns 4242 through the program's handler, which sees
 * si_code SYS_SECCOMP and the getppid number (when a token is held, libc's
 * getppid first traps into the shim, whose own getppid then meets the
 * filter: the handler must be given that inner context); uname() fails
 * with EPERM; and, holding T, a block in libc's own sem_wait still
 * releases T.
 */
#include "catchall_util.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/utsname.h>
#include <ucontext.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(seccomp_T);
static atomic_int emulated, bad_info;

static void on_sigsys(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    if (si->si_code != SYS_SECCOMP || si->si_syscall != SYS_getppid) {
        atomic_fetch_add(&bad_info, 1);
        return;
    }
    ucontext_t *uc = ctx;
    uc->uc_mcontext.gregs[REG_RAX] = 4242;
    atomic_fetch_add(&emulated, 1);
}

static void install_filter(void) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_uname, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    CHECK_EQ(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 0);
}

static void check_filtered(const char *how, int n) {
    errno = EDOM;
    pid_t p = getppid();
    if (p != 4242 || atomic_load(&emulated) != n || atomic_load(&bad_info) != 0) {
        fprintf(stderr, "FAIL: %s: getppid() = %d, the program's handler emulated %d times "
                        "(want %d), %d wrong siginfo\n",
                how, (int)p, atomic_load(&emulated), n, atomic_load(&bad_info));
        _exit(1);
    }
    CHECK_EQ(errno, EDOM);
    struct utsname u;
    CHECK_EQ(uname(&u), -1);
    CHECK_EQ(errno, EPERM);
}

static void child(void) {
    start_watchdog(2 * TEST_DEADLINE_S);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
    ca_taker_start();
    install_filter();

    check_filtered("no token held", 1);
    lwkt_gettoken(&T);
    check_filtered("holding T", 2);
    ca_block_until_taken(&T);
    check_filtered("holding T, after a released block", 3);
    lwkt_reltoken(&T);
    check_filtered("after releasing T", 4);
    _exit(0);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        child();
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "FAIL: the seccomp child %s\n",
                WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) : "failed a check");
        return 1;
    }
    printf("catchall/seccomp: ok\n");
    return 0;
}
