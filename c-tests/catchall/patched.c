/*
 * catchall/patched.c: the catch-all's load-time rewrite of libc's
 * system-call sites (shim/interpose/catchall/patch/), checked from outside.
 *
 * 1. rewritten: libc's getppid (`mov $110, %eax; syscall`) starts with a
 *    jump in the default mode, with its own bytes under LWKT_CATCHALL=sud;
 *    it answers the kernel's getppid either way, holding a token or not.
 * 2. vectors_kept: a token holder's call through a rewritten site runs the
 *    catch-all's code (probe, release, retake) without a signal, so the
 *    vector registers must be saved by the shim: xmm0-15 hold patterns
 *    across libc's write, read and nanosleep, called from assembly that
 *    touches nothing else.
 * 3. cancel_unheld: a thread holding no token, cancelled while it sleeps
 *    in libc's read, sleeps in the site's stub: cancellation must end it,
 *    cleanup handler run once.
 * 4. unwind_from_stub: the same sleeping thread's backtrace, taken in a
 *    signal handler, must get from the stub back into libc and the
 *    thread's own functions (the stubs' unwind information; C++
 *    destructors and cancellation unwinding need the same).
 *
 * Each case runs in a child process, so that a crash names its case.
 */
#include "catchall_util.h"

#include <execinfo.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(patched_T);

static int patched_mode(void) {
    const char *e = getenv("LWKT_CATCHALL");
    return e == NULL || strcmp(e, "1") == 0 || strcmp(e, "") == 0;
}

/* ---- 1. rewritten --------------------------------------------------------- */

static void case_rewritten(void) {
    const unsigned char *g = (const unsigned char *)ca_sym("getppid");
    if (patched_mode()) {
        if (g[0] != 0xe9) {
            fprintf(stderr, "FAIL: libc's getppid starts with %02x, not a jump\n", g[0]);
            _exit(1);
        }
    } else {
        static const unsigned char own[] = {0xb8, 0x6e, 0, 0, 0, 0x0f, 0x05};
        if (memcmp(g, own, sizeof own) != 0) {
            fprintf(stderr, "FAIL: libc's getppid was rewritten under LWKT_CATCHALL=sud\n");
            _exit(1);
        }
    }
    long want = ca_raw3(SYS_getppid, 0, 0, 0);
    CHECK_EQ(CA(getppid)(), want);
    lwkt_gettoken(&T);
    CHECK_EQ(CA(getppid)(), want);
    lwkt_reltoken(&T);
    printf("catchall/patched: rewritten: ok (%s)\n", patched_mode() ? "patched" : "sud");
}

/* ---- 2. vectors_kept ------------------------------------------------------ */

/* long vec_call(fn, a0, a1, a2, in, out): xmm0-15 loaded from in[16][16],
 * fn(a0, a1, a2) called, xmm0-15 stored to out. */
__asm__(".text\n"
        ".type vec_call,@function\n"
        "vec_call:\n"
        "  push %rbx\n"
        "  push %r12\n"
        "  push %r13\n"
        "  mov %r8, %rbx\n"
        "  mov %r9, %r12\n"
        "  mov %rdi, %r13\n"
        "  movdqu 0(%rbx), %xmm0\n"
        "  movdqu 16(%rbx), %xmm1\n"
        "  movdqu 32(%rbx), %xmm2\n"
        "  movdqu 48(%rbx), %xmm3\n"
        "  movdqu 64(%rbx), %xmm4\n"
        "  movdqu 80(%rbx), %xmm5\n"
        "  movdqu 96(%rbx), %xmm6\n"
        "  movdqu 112(%rbx), %xmm7\n"
        "  movdqu 128(%rbx), %xmm8\n"
        "  movdqu 144(%rbx), %xmm9\n"
        "  movdqu 160(%rbx), %xmm10\n"
        "  movdqu 176(%rbx), %xmm11\n"
        "  movdqu 192(%rbx), %xmm12\n"
        "  movdqu 208(%rbx), %xmm13\n"
        "  movdqu 224(%rbx), %xmm14\n"
        "  movdqu 240(%rbx), %xmm15\n"
        "  mov %rsi, %rdi\n"
        "  mov %rdx, %rsi\n"
        "  mov %rcx, %rdx\n"
        "  call *%r13\n"
        "  movdqu %xmm0, 0(%r12)\n"
        "  movdqu %xmm1, 16(%r12)\n"
        "  movdqu %xmm2, 32(%r12)\n"
        "  movdqu %xmm3, 48(%r12)\n"
        "  movdqu %xmm4, 64(%r12)\n"
        "  movdqu %xmm5, 80(%r12)\n"
        "  movdqu %xmm6, 96(%r12)\n"
        "  movdqu %xmm7, 112(%r12)\n"
        "  movdqu %xmm8, 128(%r12)\n"
        "  movdqu %xmm9, 144(%r12)\n"
        "  movdqu %xmm10, 160(%r12)\n"
        "  movdqu %xmm11, 176(%r12)\n"
        "  movdqu %xmm12, 192(%r12)\n"
        "  movdqu %xmm13, 208(%r12)\n"
        "  movdqu %xmm14, 224(%r12)\n"
        "  movdqu %xmm15, 240(%r12)\n"
        "  pop %r13\n"
        "  pop %r12\n"
        "  pop %rbx\n"
        "  ret\n"
        ".size vec_call, . - vec_call\n");
long vec_call(void *fn, long a0, long a1, long a2, const void *in, void *out);

static void case_vectors_kept(void) {
    unsigned char in[256], out[256];
    for (int i = 0; i < 256; i++)
        in[i] = (unsigned char)(i * 7 + 3);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    static const char byte = 'x';
    int p[2];
    CHECK_EQ(pipe(p), 0);
    char got[8];
    /* write (probed, then made), read of a byte that is there (probed),
     * nanosleep (released around it). */
    struct timespec ts = {0, 1000};
    struct {
        const char *name;
        long a0, a1, a2, want;
    } calls[] = {
        {"write", fd, (long)&byte, 1, 1},
        {"write", p[1], (long)&byte, 1, 1},
        {"read", p[0], (long)got, sizeof got, 1},
        {"nanosleep", (long)&ts, 0, 0, 0},
    };
    lwkt_gettoken(&T);
    for (int round = 0; round < 100; round++)
        for (size_t c = 0; c < sizeof calls / sizeof calls[0]; c++) {
            memset(out, 0, sizeof out);
            long r = vec_call(ca_sym(calls[c].name), calls[c].a0, calls[c].a1, calls[c].a2, in, out);
            CHECK_EQ(r, calls[c].want);
            for (int i = 0; i < 256; i++)
                if (in[i] != out[i]) {
                    fprintf(stderr, "FAIL: xmm%d changed across libc's %s by a token holder\n",
                            i / 16, calls[c].name);
                    _exit(1);
                }
        }
    lwkt_reltoken(&T);
    close(p[0]);
    close(p[1]);
    close(fd);
    printf("catchall/patched: vectors_kept: ok\n");
}

/* ---- 3. cancel_unheld ----------------------------------------------------- */

static int pipefd[2];
static atomic_int about_to_block, cleanups, returned;
static atomic_int blocked_tid;

static void count_cleanup(void *arg) {
    (void)arg;
    atomic_fetch_add(&cleanups, 1);
}

static void *read_unheld(void *arg) {
    (void)arg;
    char c;
    /* A thread that used tokens (armed), holding none now. */
    lwkt_gettoken(&T);
    lwkt_reltoken(&T);
    pthread_cleanup_push(count_cleanup, NULL);
    atomic_store(&blocked_tid, (int)gettid());
    atomic_store(&about_to_block, 1);
    ssize_t r = CA(read)(pipefd[0], &c, 1); /* nobody writes */
    (void)r;
    atomic_store(&returned, 1);
    pthread_cleanup_pop(1);
    return NULL;
}

static void case_cancel_unheld(void) {
    CHECK_EQ(pipe(pipefd), 0);
    pthread_t t = start_thread(read_unheld, NULL);
    SPIN_UNTIL(about_to_block);
    ca_wait_asleep_in(atomic_load(&blocked_tid), SYS_read, "read");
    CHECK_EQ(pthread_cancel(t), 0);
    void *ret = join_thread(t);
    if (ret != PTHREAD_CANCELED) {
        fprintf(stderr, "FAIL: cancel_unheld: the thread was not cancelled\n");
        _exit(1);
    }
    CHECK(!atomic_load(&returned));
    CHECK_EQ(atomic_load(&cleanups), 1);
    printf("catchall/patched: cancel_unheld: ok\n");
}

/* ---- 4. unwind_from_stub --------------------------------------------------- */

static atomic_int own_frames = -1;

/* The frames of the backtrace from here that are in this test's own
 * object (the handler, then the sleeping thread's functions). */
static void count_own_frames(int sig) {
    (void)sig;
    void *pcs[64];
    int n = backtrace(pcs, 64);
    Dl_info me, f;
    int own = 0;
    if (dladdr((void *)count_own_frames, &me))
        for (int i = 0; i < n; i++)
            if (dladdr(pcs[i], &f) && f.dli_fbase == me.dli_fbase)
                own++;
    atomic_store(&own_frames, own);
}

__attribute__((noinline)) static ssize_t blocked_reader(void) {
    char c;
    ssize_t r = CA(read)(pipefd[0], &c, 1); /* until the byte comes */
    __asm__ volatile("" ::: "memory");     /* no tail call */
    return r;
}

static void *read_for_backtrace(void *arg) {
    (void)arg;
    atomic_store(&blocked_tid, (int)gettid());
    atomic_store(&about_to_block, 1);
    ssize_t r = blocked_reader();
    atomic_store(&returned, (int)r);
    return NULL;
}

static void case_unwind_from_stub(void) {
    void *warm[4];
    (void)backtrace(warm, 4); /* loads libgcc before the handler needs it */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_own_frames;
    sa.sa_flags = SA_RESTART;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    CHECK_EQ(pipe(pipefd), 0);
    pthread_t t = start_thread(read_for_backtrace, NULL);
    SPIN_UNTIL(about_to_block);
    ca_wait_asleep_in(atomic_load(&blocked_tid), SYS_read, "read");
    CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
    SPIN_UNTIL_COND(atomic_load(&own_frames) >= 0);
    CHECK_EQ(write(pipefd[1], "x", 1), 1);
    join_thread(t);
    CHECK_EQ(atomic_load(&returned), 1);
    /* The handler, blocked_reader, read_for_backtrace. */
    if (atomic_load(&own_frames) < 3) {
        fprintf(stderr, "FAIL: the backtrace from libc's read stopped after %d frame(s) of the test\n",
                atomic_load(&own_frames));
        _exit(1);
    }
    printf("catchall/patched: unwind_from_stub: ok\n");
}

/* ---- running -------------------------------------------------------------- */

struct patched_case {
    const char *name;
    void (*fn)(void);
};

static const struct patched_case cases[] = {
    {"rewritten", case_rewritten},
    {"vectors_kept", case_vectors_kept},
    {"cancel_unheld", case_cancel_unheld},
    {"unwind_from_stub", case_unwind_from_stub},
};

int lwkt_test_main(int argc, char **argv) {
    ca_require(__FILE__);
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t n = sizeof cases / sizeof cases[0];
    if (argc > 1) {
        start_watchdog(3 * TEST_DEADLINE_S);
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], cases[i].name) == 0) {
                cases[i].fn();
                return 0;
            }
        fprintf(stderr, "no case %s\n", argv[1]);
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            start_watchdog(3 * TEST_DEADLINE_S);
            cases[i].fn();
            _exit(0);
        }
        int st;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        if (WIFSIGNALED(st)) {
            fprintf(stderr, "FAIL: case %s: the process was killed by signal %d (%s)\n",
                    cases[i].name, WTERMSIG(st), strsignal(WTERMSIG(st)));
            failed = 1;
        } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "FAIL: case %s: exit status %d\n", cases[i].name,
                    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            failed = 1;
        }
    }
    if (!failed)
        printf("catchall/patched: ok\n");
    return failed;
}
