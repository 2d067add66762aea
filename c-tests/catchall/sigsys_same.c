/*
 * catchall/sigsys_same.c: SIGSYS stays the program's (SPEC section 7).
 * Each case uses SIGSYS the way a program may, and prints what it saw;
 * c-tests/run.rs also links this file WITHOUT the library and checks that
 * a plain run and a preloaded one print the same. Run here (linked, or as
 * a plugin under the preload), every case also checks itself against what
 * the kernel does.
 *
 * Every case runs three ways, each in a fresh child process: "none" never
 * takes a token (nothing of the library may show), "after" takes and
 * releases one first (the thread is armed, the handler installed), "held"
 * holds one throughout (its system calls trap). Tokens come through
 * dlsym, so the same object links and runs without the library, where
 * taking one does nothing.
 *
 * Cases:
 *  sigwait, signalfd: SIGSYS blocked with pthread_sigmask (reads back
 *    blocked, in the kernel too), raised, collected -- twice.
 *  samask: sigaction(SIGSYS) with sa_mask {SIGUSR1, SIGKILL} reads back as
 *    the kernel keeps it; in the handler the mask is the interrupted one
 *    plus sa_mask plus SIGSYS; afterwards, as before. Another signal's
 *    sa_mask with SIGSYS in it reads back with it.
 *  onstack, onstack_nodefer, autodisarm: an SA_ONSTACK handler runs on
 *    the alternate stack (and an SS_AUTODISARM one finds it disarmed).
 *  resethand: SA_RESETHAND runs the handler once, the action reads back
 *    SIG_DFL, and the next SIGSYS kills the process.
 *  nodefer, defer: a SIGSYS raised in the handler runs at once (nested)
 *    with SA_NODEFER, after the handler returns without.
 *  dfl: SIG_DFL kills with SIGSYS. ign: an ignored raise(SIGSYS) does
 *    nothing.
 *  seccomp_dfl, seccomp_ign: a seccomp SECCOMP_RET_TRAP with SIGSYS at its
 *    default or ignored kills the process with SIGSYS.
 *  restart, norestart: a SIGSYS whose handler has SA_RESTART restarts the
 *    read it interrupted; without, the read fails with EINTR.
 *  untouched: a process that never took a token has the kernel's SIGSYS
 *    action and mask as they were.
 *  own_dispatch: a thread that switches Syscall User Dispatch on itself
 *    gets its own traps in its own handler (which emulates getppid), also
 *    after (and while) it uses tokens.
 *
 * Arguments: none (every case, every way), or CASE WAY.
 */
#include "check.h"

#include <dlfcn.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <ucontext.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_OFF 0
#define PR_SYS_DISPATCH_ON 1
#define SYSCALL_DISPATCH_FILTER_ALLOW 0
#define SYSCALL_DISPATCH_FILTER_BLOCK 1
#endif
#ifndef SYS_USER_DISPATCH
#define SYS_USER_DISPATCH 2
#endif
#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1
#endif
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31) /* linux/signal.h, Linux 4.7 */
#endif

/* ---- tokens, when the library is there ------------------------------- */

static struct lwkt_token T; /* zero-filled: a valid free token */
static void (*get_token)(lwkt_token_t);
static void (*rel_token)(lwkt_token_t);

static void find_library(void) {
    get_token = (void (*)(lwkt_token_t))dlsym(RTLD_DEFAULT, "lwkt_gettoken");
    rel_token = (void (*)(lwkt_token_t))dlsym(RTLD_DEFAULT, "lwkt_reltoken");
}
static void take(void) {
    if (get_token)
        get_token(&T);
}
static void give(void) {
    if (rel_token)
        rel_token(&T);
}

enum way { NONE, AFTER, HELD };
static const char *const way_names[] = {"none", "after", "held"};
static enum way way;
static const char *case_name;

/* Before a case's body, in the thread that runs it. */
static void prepare(void) {
    if (way != NONE)
        take();
    if (way == AFTER)
        give();
}

#define SAY(...)                                                                 \
    do {                                                                         \
        printf("%s/%s: ", case_name, way_names[way]);                            \
        printf(__VA_ARGS__);                                                     \
        printf("\n");                                                            \
    } while (0)

/* ---- the kernel's view --------------------------------------------------- */

/* The thread's mask as the kernel has it (a raw system call of ours; it
 * traps when a token is held, and must still tell the truth). */
static unsigned long kernel_mask(void) {
    unsigned long m = 0;
    long r = syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
    CHECK_EQ(r, 0);
    return m;
}
static int kernel_blocks(int sig) { return (kernel_mask() >> (sig - 1)) & 1; }
/* The mask as pthread_sigmask reads it. */
static int seen_blocked(int sig) {
    sigset_t m;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &m), 0);
    return sigismember(&m, sig);
}

static void block_sigsys(int how) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGSYS);
    CHECK_EQ(pthread_sigmask(how, &s, NULL), 0);
}

static void install(void (*fn)(int, siginfo_t *, void *), int flags, const sigset_t *mask) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    if (mask)
        sa.sa_mask = *mask;
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
}

static void set_disposition(void (*h)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = h;
    CHECK_EQ(sigaction(SIGSYS, &sa, NULL), 0);
}

/* ---- sigwait, signalfd --------------------------------------------------- */

static void case_sigwait(void) {
    for (int round = 1; round <= 2; round++) {
        block_sigsys(SIG_BLOCK);
        CHECK(seen_blocked(SIGSYS));
        CHECK(kernel_blocks(SIGSYS));
        CHECK_EQ(raise(SIGSYS), 0);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGSYS);
        int sig = 0;
        CHECK_EQ(sigwait(&s, &sig), 0);
        SAY("round %d: blocked (seen %d, kernel %d), sigwait got %s", round, seen_blocked(SIGSYS),
            kernel_blocks(SIGSYS), sig == SIGSYS ? "SIGSYS" : "another signal");
        CHECK_EQ(sig, SIGSYS);
        block_sigsys(SIG_UNBLOCK);
        CHECK(!seen_blocked(SIGSYS));
    }
}

static void case_signalfd(void) {
    for (int round = 1; round <= 2; round++) {
        block_sigsys(SIG_BLOCK);
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGSYS);
        int fd = signalfd(-1, &s, SFD_CLOEXEC);
        CHECK(fd >= 0);
        CHECK_EQ(raise(SIGSYS), 0);
        struct signalfd_siginfo si;
        CHECK_EQ(read(fd, &si, sizeof si), (long)sizeof si);
        SAY("round %d: signalfd read signal %s, code %s", round,
            si.ssi_signo == SIGSYS ? "SIGSYS" : "other", si.ssi_code == SI_TKILL ? "SI_TKILL" : "other");
        CHECK_EQ(si.ssi_signo, SIGSYS);
        CHECK_EQ(si.ssi_code, SI_TKILL);
        close(fd);
        block_sigsys(SIG_UNBLOCK);
    }
}

/* ---- sa_mask, and reading actions back ------------------------------------- */

static atomic_int ran;
static unsigned long mask_in_handler, seen_in_handler;
static void on_record_mask(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)ctx;
    mask_in_handler = kernel_mask();
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    seen_in_handler = 0;
    for (int s = 1; s <= 64; s++)
        if (sigismember(&m, s) == 1)
            seen_in_handler |= 1UL << (s - 1);
    if (si->si_code != SI_TKILL)
        _exit(3);
    atomic_fetch_add(&ran, 1);
}

static unsigned long word_of(const sigset_t *set) {
    unsigned long w = 0;
    for (int s = 1; s <= 64; s++)
        if (sigismember(set, s) == 1)
            w |= 1UL << (s - 1);
    return w;
}

#define BIT(sig) (1UL << ((sig) - 1))

static void case_samask(void) {
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    sigaddset(&m, SIGKILL); /* the kernel drops it */
    install(on_record_mask, 0, &m);
    struct sigaction back;
    memset(&back, 0, sizeof back);
    CHECK_EQ(sigaction(SIGSYS, NULL, &back), 0);
    SAY("reads back: our handler %d, flags %#x, restorer set %d, mask %#lx",
        back.sa_sigaction == on_record_mask, (unsigned)back.sa_flags, back.sa_restorer != NULL,
        word_of(&back.sa_mask));
    CHECK(back.sa_sigaction == on_record_mask);
    CHECK(back.sa_flags & SA_SIGINFO);
    CHECK_EQ(word_of(&back.sa_mask), BIT(SIGUSR1));

    /* Re-installing what was read back changes nothing. */
    CHECK_EQ(sigaction(SIGSYS, &back, NULL), 0);
    struct sigaction again;
    memset(&again, 0, sizeof again);
    CHECK_EQ(sigaction(SIGSYS, NULL, &again), 0);
    CHECK(again.sa_sigaction == back.sa_sigaction);
    CHECK_EQ(again.sa_flags, back.sa_flags);
    CHECK_EQ(word_of(&again.sa_mask), word_of(&back.sa_mask));

    /* In the handler: the interrupted mask (SIGUSR2 blocked here) plus
     * sa_mask plus SIGSYS. */
    sigset_t u2;
    sigemptyset(&u2);
    sigaddset(&u2, SIGUSR2);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &u2, NULL), 0);
    CHECK_EQ(raise(SIGSYS), 0);
    CHECK_EQ(atomic_load(&ran), 1);
    unsigned long want = BIT(SIGUSR1) | BIT(SIGUSR2) | BIT(SIGSYS);
    SAY("in the handler: kernel mask %#lx, seen %#lx", mask_in_handler, seen_in_handler);
    CHECK_EQ(mask_in_handler, want);
    CHECK_EQ(seen_in_handler, want);
    SAY("after it: kernel mask %#lx", kernel_mask());
    CHECK_EQ(kernel_mask(), BIT(SIGUSR2));
    CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &u2, NULL), 0);

    /* Another signal's handler with SIGSYS in its sa_mask reads back so. */
    struct sigaction usr2;
    memset(&usr2, 0, sizeof usr2);
    usr2.sa_sigaction = on_record_mask;
    usr2.sa_flags = SA_SIGINFO;
    sigaddset(&usr2.sa_mask, SIGSYS);
    sigaddset(&usr2.sa_mask, SIGUSR1);
    CHECK_EQ(sigaction(SIGUSR2, &usr2, NULL), 0);
    memset(&back, 0, sizeof back);
    CHECK_EQ(sigaction(SIGUSR2, NULL, &back), 0);
    SAY("SIGUSR2's action reads back mask %#lx", word_of(&back.sa_mask));
    CHECK_EQ(word_of(&back.sa_mask), BIT(SIGSYS) | BIT(SIGUSR1));
}

/* ---- the alternate stack ----------------------------------------------------- */

static char altstack[64 * 1024] __attribute__((aligned(16)));
static atomic_int on_alt, alt_flags;
static void on_stack_check(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    (void)ctx;
    char here;
    atomic_store(&on_alt, &here >= altstack && &here < altstack + sizeof altstack);
    stack_t cur;
    CHECK_EQ(sigaltstack(NULL, &cur), 0);
    atomic_store(&alt_flags, cur.ss_flags);
    atomic_fetch_add(&ran, 1);
}

static void run_on_stack(int extra_flags, int ss_flags) {
    stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = ss_flags};
    CHECK_EQ(sigaltstack(&ss, NULL), 0);
    install(on_stack_check, SA_ONSTACK | extra_flags, NULL);
    CHECK_EQ(raise(SIGSYS), 0);
    CHECK_EQ(atomic_load(&ran), 1);
    stack_t after;
    CHECK_EQ(sigaltstack(NULL, &after), 0);
    SAY("handler on the alternate stack %d, its sigaltstack flags %#x; after: flags %#x",
        atomic_load(&on_alt), atomic_load(&alt_flags), after.ss_flags);
    CHECK_EQ(atomic_load(&on_alt), 1);
    if (ss_flags & SS_AUTODISARM) {
        CHECK_EQ(atomic_load(&alt_flags), SS_DISABLE);
        CHECK_EQ((unsigned)after.ss_flags, SS_AUTODISARM);
    } else {
        CHECK_EQ(atomic_load(&alt_flags), SS_ONSTACK);
        CHECK_EQ(after.ss_flags, 0);
    }
}
static void case_onstack(void) { run_on_stack(0, 0); }
static void case_onstack_nodefer(void) { run_on_stack(SA_NODEFER, 0); }
static void case_autodisarm(void) { run_on_stack(0, SS_AUTODISARM); }

/* ---- SA_RESETHAND, SA_NODEFER ------------------------------------------------ */

static void on_count(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    (void)ctx;
    atomic_fetch_add(&ran, 1);
}

static void case_resethand(void) {
    install(on_count, SA_RESETHAND, NULL);
    CHECK_EQ(raise(SIGSYS), 0);
    struct sigaction back;
    memset(&back, 0, sizeof back);
    CHECK_EQ(sigaction(SIGSYS, NULL, &back), 0);
    SAY("handler ran %d time(s); the action reads back SIG_DFL %d, flags %#x", atomic_load(&ran),
        back.sa_handler == SIG_DFL, (unsigned)back.sa_flags);
    CHECK_EQ(atomic_load(&ran), 1);
    CHECK(back.sa_handler == SIG_DFL);
    raise(SIGSYS); /* the default: killed */
    SAY("still alive after the second SIGSYS");
}

static atomic_int depth, nested_inside, max_depth;
static unsigned long nodefer_mask;
static void on_nest(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    (void)si;
    (void)ctx;
    int d = atomic_fetch_add(&depth, 1) + 1;
    if (d > atomic_load(&max_depth))
        atomic_store(&max_depth, d);
    if (d == 1 && atomic_load(&ran) == 0) {
        nodefer_mask = kernel_mask();
        CHECK_EQ(raise(SIGSYS), 0);
        atomic_store(&nested_inside, atomic_load(&ran));
    }
    atomic_fetch_add(&ran, 1);
    atomic_fetch_sub(&depth, 1);
}

static void run_nest(int flags) {
    install(on_nest, flags, NULL);
    CHECK_EQ(raise(SIGSYS), 0);
    SAY("in the handler SIGSYS blocked %d; nested one ran inside %d; ran %d, deepest %d",
        (int)((nodefer_mask >> (SIGSYS - 1)) & 1), atomic_load(&nested_inside), atomic_load(&ran),
        atomic_load(&max_depth));
    CHECK_EQ(atomic_load(&ran), 2);
    CHECK_EQ(atomic_load(&max_depth), flags & SA_NODEFER ? 2 : 1);
}
static void case_nodefer(void) { run_nest(SA_NODEFER); }
static void case_defer(void) { run_nest(0); }

/* ---- default and ignored ----------------------------------------------------- */

static void case_dfl(void) {
    set_disposition(SIG_DFL);
    raise(SIGSYS);
    SAY("still alive after SIGSYS at its default");
}

static void case_ign(void) {
    set_disposition(SIG_IGN);
    CHECK_EQ(raise(SIGSYS), 0);
    struct sigaction back;
    memset(&back, 0, sizeof back);
    CHECK_EQ(sigaction(SIGSYS, NULL, &back), 0);
    SAY("an ignored SIGSYS: still here, reads back SIG_IGN %d", back.sa_handler == SIG_IGN);
    CHECK(back.sa_handler == SIG_IGN);
}

/* ---- seccomp ----------------------------------------------------------------- */

static void trap_getppid(void) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
    CHECK_EQ(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 0);
}

static void run_seccomp(void (*disposition)(int)) {
    set_disposition(disposition);
    trap_getppid();
    long r = syscall(SYS_getppid);
    SAY("still alive after a seccomp trap: getppid gave %s", r == SYS_getppid ? "its own number" : "something");
}
static void case_seccomp_dfl(void) { run_seccomp(SIG_DFL); }
static void case_seccomp_ign(void) { run_seccomp(SIG_IGN); }

/* ---- a thread with dispatch of its own ----------------------------------------- */

static volatile char own_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
static atomic_int own_traps, own_bad;

static void on_own_dispatch(int sig, siginfo_t *si, void *ctx) {
    (void)sig;
    /* Allow at once: this handler's return goes through a system call. */
    own_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
    if (si->si_code != SYS_USER_DISPATCH || si->si_syscall != SYS_getppid) {
        atomic_fetch_add(&own_bad, 1);
        return;
    }
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RAX] = 4242;
    atomic_fetch_add(&own_traps, 1);
}

/* getppid through a syscall instruction here, outside libc. */
static long raw_getppid(void) {
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "a"((long)SYS_getppid) : "rcx", "r11", "memory");
    return ret;
}

static long trapped_getppid(void) {
    own_selector = SYSCALL_DISPATCH_FILTER_BLOCK;
    long r = raw_getppid();
    own_selector = SYSCALL_DISPATCH_FILTER_ALLOW;
    return r;
}

static void *own_dispatch_thread(void *arg) {
    (void)arg;
    prepare();
    int r = prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 0, &own_selector);
    if (r != 0) {
        SAY("this kernel has no Syscall User Dispatch");
        return NULL;
    }
    long first = trapped_getppid();
    /* Tokens now (again): the library must not take the thread's dispatch. */
    take();
    long second = trapped_getppid();
    give();
    long third = trapped_getppid();
    CHECK_EQ(prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0), 0);
    long plain = raw_getppid();
    SAY("its own handler emulated %ld, %ld, %ld (%d traps, %d wrong); off: the real parent %d",
        first, second, third, atomic_load(&own_traps), atomic_load(&own_bad), plain == getppid());
    CHECK_EQ(first, 4242);
    CHECK_EQ(second, 4242);
    CHECK_EQ(third, 4242);
    CHECK_EQ(atomic_load(&own_traps), 3);
    CHECK_EQ(atomic_load(&own_bad), 0);
    CHECK(plain == getppid());
    if (way == HELD)
        give();
    return NULL;
}

static void case_own_dispatch(void) {
    install(on_own_dispatch, 0, NULL);
    pthread_t t = start_thread(own_dispatch_thread, NULL);
    CHECK_EQ(pthread_join(t, NULL), 0);
}

/* ---- SA_RESTART: a SIGSYS that interrupts a blocking read ------------------------ */

static pid_t reader_tid;
static int rpipe[2];

/* Is thread `tid` asleep in read(2)? (/proc: its system call, its state.) */
static int asleep_in_read(pid_t tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int ok = fgets(buf, sizeof buf, f) && strtol(buf, NULL, 10) == SYS_read;
    fclose(f);
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    char *p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
    fclose(f);
    return ok && p && p[1] == ' ' && p[2] == 'S';
}

static void *interrupter(void *arg) {
    pthread_t reader = *(pthread_t *)arg;
    double end = now_s() + TEST_DEADLINE_S;
    while (!asleep_in_read(reader_tid)) {
        CHECK(now_s() < end);
        sched_yield();
    }
    CHECK_EQ(pthread_kill(reader, SIGSYS), 0);
    /* The handler has run (the reader is back in read, or out of it). */
    while (atomic_load(&ran) == 0) {
        CHECK(now_s() < end);
        sched_yield();
    }
    CHECK_EQ(write(rpipe[1], "data", 4), 4);
    return NULL;
}

static void run_restart(int flags) {
    install(on_count, flags, NULL);
    CHECK_EQ(pipe(rpipe), 0);
    reader_tid = (pid_t)syscall(SYS_gettid);
    pthread_t self = pthread_self();
    pthread_t t = start_thread(interrupter, &self);
    char buf[8];
    errno = 0;
    ssize_t r = read(rpipe[0], buf, sizeof buf);
    int err = errno;
    CHECK_EQ(pthread_join(t, NULL), 0);
    SAY("read interrupted by the handler returned %zd (%s)", r, r < 0 && err == EINTR ? "EINTR" : "data");
    CHECK_EQ(atomic_load(&ran), 1);
    if (flags & SA_RESTART)
        CHECK_EQ(r, 4);
    else
        CHECK(r == -1 && err == EINTR);
}
static void case_restart(void) { run_restart(SA_RESTART); }
static void case_norestart(void) { run_restart(0); }

/* ---- a process that never takes a token: nothing of ours in the kernel ------------ */

static void case_untouched(void) {
    struct {
        unsigned long handler, flags, restorer, mask;
    } k;
    CHECK_EQ(syscall(SYS_rt_sigaction, SIGSYS, NULL, &k, 8), 0);
    /* Only where no token was taken can it show: ours is there after. */
    if (way == NONE) {
        SAY("the kernel's SIGSYS action: %s", k.handler == (unsigned long)SIG_DFL ? "default" : "replaced");
        CHECK(k.handler == (unsigned long)SIG_DFL);
    }
    SAY("SIGSYS blocked in the kernel's mask: %d", kernel_blocks(SIGSYS));
    CHECK(!kernel_blocks(SIGSYS));
}

/* ---- running the cases ---------------------------------------------------------- */

static const struct {
    const char *name;
    void (*run)(void);
    int killed; /* expected end: 0 exit 0, else killed by SIGSYS */
    int in_thread; /* the case prepares its own thread */
} cases[] = {
    {"untouched", case_untouched, 0, 0},
    {"sigwait", case_sigwait, 0, 0},
    {"signalfd", case_signalfd, 0, 0},
    {"samask", case_samask, 0, 0},
    {"onstack", case_onstack, 0, 0},
    {"onstack_nodefer", case_onstack_nodefer, 0, 0},
    {"autodisarm", case_autodisarm, 0, 0},
    {"resethand", case_resethand, 1, 0},
    {"nodefer", case_nodefer, 0, 0},
    {"defer", case_defer, 0, 0},
    {"dfl", case_dfl, 1, 0},
    {"ign", case_ign, 0, 0},
    {"seccomp_dfl", case_seccomp_dfl, 1, 0},
    {"seccomp_ign", case_seccomp_ign, 1, 0},
    {"restart", case_restart, 0, 0},
    {"norestart", case_norestart, 0, 0},
    {"own_dispatch", case_own_dispatch, 0, 1},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* One case one way, in a child process; 0 when it ended as it should. */
static int run_case(size_t i, enum way w) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core); /* a SIGSYS death dumps core */
        start_watchdog(TEST_DEADLINE_S);
        way = w;
        case_name = cases[i].name;
        if (!cases[i].in_thread)
            prepare();
        cases[i].run();
        if (way == HELD && !cases[i].in_thread)
            give();
        _exit(0);
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    way = w;
    case_name = cases[i].name;
    if (WIFSIGNALED(st))
        SAY("killed by %s", WTERMSIG(st) == SIGSYS ? "SIGSYS" : strsignal(WTERMSIG(st)));
    else
        SAY("exit %d", WEXITSTATUS(st));
    int ok = cases[i].killed ? WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS
                             : WIFEXITED(st) && WEXITSTATUS(st) == 0;
    if (!ok)
        fprintf(stderr, "FAIL: %s/%s: %s\n", cases[i].name, way_names[w],
                cases[i].killed ? "not killed by SIGSYS" : "did not exit 0");
    return !ok;
}

int lwkt_test_main(int argc, char **argv) {
    find_library();
    /* CA_SAME_PLAIN=1: the plain run of the comparison (no library). */
    const char *plain = getenv("CA_SAME_PLAIN");
    int want_library = !(plain && strcmp(plain, "1") == 0);
    if ((get_token != NULL) != want_library) {
        fprintf(stderr, "FAIL: the library is %s\n", get_token ? "loaded" : "not loaded");
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < NCASES; i++)
        for (int w = NONE; w <= HELD; w++) {
            if (argc >= 3 && (strcmp(argv[1], cases[i].name) != 0 || strcmp(argv[2], way_names[w]) != 0))
                continue;
            failed |= run_case(i, (enum way)w);
        }
    return failed;
}
