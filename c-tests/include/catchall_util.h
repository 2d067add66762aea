/*
 * catchall_util.h: helpers for the catch-all tests (c-tests/catchall/),
 * which prove that a token holder blocked in a system call that libc makes
 * inside itself -- invisible to the exported-symbol hooks -- releases its
 * tokens (Syscall User Dispatch, shim/interpose/catchall/).
 *
 * Every libc function a test calls to reach such a system call is looked up
 * in libc's own handle (dlopen("libc.so.6") + dlsym), the way another
 * library's internal call reaches it: the shim's exported hooks are
 * bypassed, so only the catch-all can see the call.
 *
 * The catch-all needs Linux 5.11+, no valgrind and LWKT_CATCHALL not 0:
 * ca_require() says "skipped" and ends the test with status 0 when it is
 * not in force (the symbol-hook tests cover that configuration).
 */
#ifndef LWKT_CATCHALL_UTIL_H
#define LWKT_CATCHALL_UTIL_H

#include "hook_util.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <semaphore.h>
#include <sys/wait.h>

#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#endif

/* libc's own handle. */
static inline void *ca_libc(void) {
    static void *h;
    if (h == NULL) {
        h = dlopen("libc.so.6", RTLD_NOW);
        if (h == NULL) {
            fprintf(stderr, "FAIL: dlopen(libc.so.6): %s\n", dlerror());
            _exit(1);
        }
    }
    return h;
}

/* `name` as libc itself defines it (never the shim's hook). */
static inline void *ca_sym(const char *name) {
    void *p = dlsym(ca_libc(), name);
    if (p == NULL) {
        fprintf(stderr, "FAIL: dlsym(libc, %s): %s\n", name, dlerror());
        _exit(1);
    }
    /* The point: this is not the shim's definition. */
    Dl_info info;
    if (dladdr(p, &info) && info.dli_fname && strstr(info.dli_fname, "liblwkt")) {
        fprintf(stderr, "FAIL: dlsym(libc, %s) resolved to %s\n", name, info.dli_fname);
        _exit(1);
    }
    return p;
}

/* A versioned libc symbol (pthread_cond_wait: GLIBC_2.3.2). */
static inline void *ca_vsym(const char *name, const char *version) {
    void *p = dlvsym(ca_libc(), name, version);
    if (p == NULL) {
        fprintf(stderr, "FAIL: dlvsym(libc, %s, %s): %s\n", name, version, dlerror());
        _exit(1);
    }
    return p;
}

/* libc's function `name`, typed like the declaration of `name` in scope:
 * CA(read)(fd, buf, n). */
#define CA(name) ((__typeof__(&name))ca_sym(#name))

static inline void *ca_probe_sud(void *arg) {
    (void)arg;
    /* A thread that never used tokens: switching dispatch off is harmless
     * here, and succeeds exactly where the kernel has the feature. */
    long r = prctl(PR_SET_SYSCALL_USER_DISPATCH, 0, 0, 0, 0);
    return (void *)(intptr_t)(r == 0);
}

/* Does this kernel have Syscall User Dispatch? */
static inline int ca_kernel_has_sud(void) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, ca_probe_sud, NULL), 0);
    void *r = NULL;
    CHECK_EQ(pthread_join(t, &r), 0);
    return r != NULL;
}

/* End the test (status 0, with a note) unless the catch-all is in force. */
static inline void ca_require(const char *file) {
    /* CA_FORCE=1: run anyway (to watch the tests fail without the
     * catch-all, say under LWKT_CATCHALL=0). */
    const char *force = getenv("CA_FORCE");
    if (force && strcmp(force, "1") == 0)
        return;
    const char *e = getenv("LWKT_CATCHALL");
    if (e && strcmp(e, "0") == 0) {
        printf("%s: skipped: LWKT_CATCHALL=0\n", file);
        exit(0);
    }
    /* Valgrind does not emulate Syscall User Dispatch: the library keeps
     * the catch-all off there (its preload names vgpreload). */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) {
        printf("%s: skipped: under valgrind (no Syscall User Dispatch)\n", file);
        exit(0);
    }
    if (!ca_kernel_has_sud()) {
        printf("%s: skipped: this kernel has no Syscall User Dispatch\n", file);
        exit(0);
    }
}

/* ---- raw system calls, as static or Go code makes them: a `syscall`
 * instruction in the program's own code, no libc in between. */

static inline long ca_raw3(long nr, long a1, long a2, long a3) {
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline long ca_raw4(long nr, long a1, long a2, long a3, long a4) {
    long ret;
    register long r10 __asm__("r10") = a4;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
}

/* ---- where a thread is: its current system call, from /proc ----------- */

/* The number of the system call thread `tid` is in (from
 * /proc/self/task/TID/syscall), -1 when it is running in user space, -2
 * when it cannot be read. */
static inline long ca_thread_syscall(pid_t tid) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -2;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -2;
    buf[n] = 0;
    if (strncmp(buf, "running", 7) == 0)
        return -1;
    return strtol(buf, NULL, 10);
}

/* The thread's scheduler state letter (R, S, D, ...) from
 * /proc/self/task/TID/stat, or '?'. */
static inline char ca_thread_state(pid_t tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return '?';
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return '?';
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

/* Spin until thread `tid` sleeps (state S) in system call `nr`. */
static inline void ca_wait_asleep_in(pid_t tid, long nr, const char *what) {
    double end = now_s() + TEST_DEADLINE_S;
    while (!(ca_thread_syscall(tid) == nr && ca_thread_state(tid) == 'S')) {
        if (now_s() > end) {
            fprintf(stderr, "FAIL: thread %d never slept in %s (syscall %ld; now %ld, state %c)\n",
                    (int)tid, what, nr, ca_thread_syscall(tid), ca_thread_state(tid));
            _exit(1);
        }
        sched_yield();
    }
}

/* ---- pipes -------------------------------------------------------------- */

/* Fill the pipe whose write end is `wfd` (shrunk to one page first) until
 * a write would block; returns the number of bytes in it. */
static inline size_t ca_fill_pipe(int wfd) {
    (void)fcntl(wfd, F_SETPIPE_SZ, 4096);
    int fl = fcntl(wfd, F_GETFL);
    CHECK(fl >= 0);
    CHECK_EQ(fcntl(wfd, F_SETFL, fl | O_NONBLOCK), 0);
    static const char junk[512];
    size_t total = 0;
    for (;;) {
        ssize_t r = write(wfd, junk, sizeof junk);
        if (r < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
        total += (size_t)r;
    }
    /* Partial writes may leave room below PIPE_BUF; fill it byte by byte. */
    for (;;) {
        ssize_t r = write(wfd, junk, 1);
        if (r < 0) {
            CHECK(errno == EAGAIN);
            break;
        }
        total += (size_t)r;
    }
    CHECK_EQ(fcntl(wfd, F_SETFL, fl), 0);
    return total;
}

/* ---- proving that the catch-all still releases -------------------------
 *
 * A long-lived taker thread, started with ca_taker_start() before the test
 * takes tokens: ca_block_until_taken(tok) blocks the calling thread (which
 * holds tok) in libc's own sem_wait, which only the catch-all can see; the
 * taker spins on lwkt_trytoken(tok) until it gets it -- possible only if
 * the blocked caller released it --, releases it and only then posts. */

static struct {
    sem_t ask, reply;
    lwkt_token_t tok;
    atomic_int asked, took;
} ca_taker;

static inline void *ca_taker_main(void *arg) {
    (void)arg;
    for (int n = 1;; n++) {
        while (sem_wait(&ca_taker.ask) != 0) {
        }
        double end = now_s() + TEST_DEADLINE_S;
        while (!lwkt_trytoken(ca_taker.tok)) {
            if (now_s() > end) {
                fprintf(stderr, "FAIL: a token holder blocked in libc's sem_wait did not "
                                "release its token (the catch-all failed)\n");
                _exit(1);
            }
            sched_yield();
        }
        atomic_store(&ca_taker.took, n);
        lwkt_reltoken(ca_taker.tok);
        CHECK_EQ(sem_post(&ca_taker.reply), 0);
    }
    return NULL;
}

/* Also in a fork child, whose taker did not survive the fork. */
static inline void ca_taker_start(void) {
    atomic_store(&ca_taker.asked, 0);
    atomic_store(&ca_taker.took, 0);
    CHECK_EQ(sem_init(&ca_taker.ask, 0, 0), 0);
    CHECK_EQ(sem_init(&ca_taker.reply, 0, 0), 0);
    pthread_t t = hk_spawn(ca_taker_main, NULL);
    CHECK_EQ(pthread_detach(t), 0);
}

/* The caller holds tok (and maybe more): block in libc's sem_wait until
 * the taker has had tok; return with the caller's tokens as they were. */
static inline void ca_block_until_taken(lwkt_token_t tok) {
    int held = lwkt_cnttoken(tok);
    int excl = LWKT_TOKEN_HELD_EXCL(tok);
    CHECK(held > 0);
    ca_taker.tok = tok;
    int n = atomic_load(&ca_taker.asked) + 1;
    atomic_store(&ca_taker.asked, n);
    CHECK_EQ(sem_post(&ca_taker.ask), 0);
    int (*wait)(sem_t *) = (int (*)(sem_t *))ca_sym("sem_wait");
    int saved = errno;
    while (wait(&ca_taker.reply) != 0)
        CHECK_EQ(errno, EINTR);
    errno = saved;
    CHECK_EQ(atomic_load(&ca_taker.took), n);
    CHECK_EQ(lwkt_cnttoken(tok), held);
    CHECK_EQ(LWKT_TOKEN_HELD_EXCL(tok), excl);
}

#endif
