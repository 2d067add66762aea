/*
 * catchall/fallback.c: LWKT_CATCHALL=0 falls back to the symbol hooks alone
 * (SPEC section 4), and the difference is the catch-all's doing.
 *
 * A holder thread takes T and blocks in a call that libc makes inside
 * itself (reached through dlsym on libc's handle: fgets's read, sem_wait's
 * and pthread_cond_wait's futex, usleep's clock_nanosleep, system's wait4)
 * or in a raw syscall instruction. The observer waits until /proc says the
 * holder sleeps in that very system call, then:
 *
 * - with the catch-all (this process): lwkt_trytoken(T) succeeds;
 * - under LWKT_CATCHALL=0 (this program re-executed with it, via fork and
 *   execve of /proc/self/exe, also as a plugin): lwkt_trytoken(T) fails
 *   throughout a window of 0.3 s in which /proc keeps showing the holder
 *   asleep in the call -- T was not released -- while the exported `read`
 *   hook still releases. The child's LWKT_DEBUG line must name the mode.
 *
 * Either way the holder is then unblocked and its call returns holding T
 * exclusively, once, with the call's normal result.
 */
#include "catchall_util.h"

#include <semaphore.h>
#include <sys/stat.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(fallback_T);

static int fds[2];
static FILE *rfile;
static sem_t sem;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_flag;
static char buf[64];

struct scenario {
    const char *name;
    long nr;             /* the system call the holder sleeps in */
    int hooked;          /* an exported symbol: the hooks release anyway */
    void (*setup)(void); /* observer, before the holder starts */
    long (*call)(void);  /* holder, holding T */
    void (*unblock)(void);
    long want;
    void (*cleanup)(void);
};

static pthread_t holder_thread;
static atomic_int holder_tid, armed, returned;
static long result;

static void on_usr1(int sig) { (void)sig; }

static void setup_pipe(void) { CHECK_EQ(pipe2(fds, O_CLOEXEC), 0); }
static void close_pipe(void) {
    close(fds[0]);
    close(fds[1]);
}
static void write_line(void) { CHECK_EQ(write(fds[1], "line\n", 5), 5); }

static void setup_file(void) {
    setup_pipe();
    rfile = fdopen(fds[0], "r");
    CHECK(rfile != NULL);
}
static void close_file(void) {
    fclose(rfile);
    close(fds[1]);
}
static long fgets_call(void) { return CA(fgets)(buf, sizeof buf, rfile) == buf ? 5 : -1; }
static long hooked_read_call(void) { return read(fds[0], buf, sizeof buf); }
static long raw_read_call(void) { return ca_raw3(SYS_read, fds[0], (long)buf, sizeof buf); }

static void setup_sem(void) { CHECK_EQ(sem_init(&sem, 0, 0), 0); }
static void post(void) { CHECK_EQ(sem_post(&sem), 0); }
static void destroy_sem(void) { CHECK_EQ(sem_destroy(&sem), 0); }
static long sem_wait_call(void) { return CA(sem_wait)(&sem); }

static void setup_cv(void) { cv_flag = 0; }
static void signal_cv(void) {
    CHECK_EQ(pthread_mutex_lock(&mtx), 0);
    cv_flag = 1;
    CHECK_EQ(pthread_cond_signal(&cv), 0);
    CHECK_EQ(pthread_mutex_unlock(&mtx), 0);
}
static long cond_wait_call(void) {
    int (*wait)(pthread_cond_t *, pthread_mutex_t *) =
        (int (*)(pthread_cond_t *, pthread_mutex_t *))ca_vsym("pthread_cond_wait", "GLIBC_2.3.2");
    CHECK_EQ(CA(pthread_mutex_lock)(&mtx), 0);
    int r = 0;
    while (!cv_flag && r == 0)
        r = wait(&cv, &mtx);
    CHECK_EQ(CA(pthread_mutex_unlock)(&mtx), 0);
    return r;
}

static long usleep_call(void) { return CA(usleep)(30u * 1000 * 1000); }
static void interrupt(void) {
    double end = now_s() + TEST_DEADLINE_S;
    while (!atomic_load(&returned)) {
        pthread_kill(holder_thread, SIGUSR1);
        double next = now_s() + 0.05;
        while (!atomic_load(&returned) && now_s() < next)
            sched_yield();
        CHECK(now_s() < end);
    }
}

/* system's child reads the pipe (its only end of it) and exits 9. */
static void setup_child_pipe(void) {
    setup_pipe();
    CHECK_EQ(fcntl(fds[0], F_SETFD, 0), 0);
}
static long system_call(void) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "read x <&%d; exit 9", fds[0]);
    int st = CA(system)(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const struct scenario scenarios[] = {
    {"fgets (read)", SYS_read, 0, setup_file, fgets_call, write_line, 5, close_file},
    {"sem_wait (futex)", SYS_futex, 0, setup_sem, sem_wait_call, post, 0, destroy_sem},
    {"pthread_cond_wait (futex)", SYS_futex, 0, setup_cv, cond_wait_call, signal_cv, 0, NULL},
    {"usleep (clock_nanosleep)", SYS_clock_nanosleep, 0, NULL, usleep_call, interrupt, -1, NULL},
    {"system (wait4)", SYS_wait4, 0, setup_child_pipe, system_call, write_line, 9, close_pipe},
    {"raw syscall read", SYS_read, 0, setup_pipe, raw_read_call, write_line, 5, close_pipe},
    {"exported read (symbol hook)", SYS_read, 1, setup_pipe, hooked_read_call, write_line, 5,
     close_pipe},
};

static const struct scenario *current;

static void *holder(void *arg) {
    (void)arg;
    atomic_store(&holder_tid, (int)gettid());
    lwkt_gettoken(&T);
    atomic_store(&armed, 1);
    long r = current->call();
    /* Holding T again, exclusively, once. */
    CHECK_EQ(lwkt_cnttoken(&T), 1);
    CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    lwkt_reltoken(&T);
    result = r;
    atomic_store(&returned, 1);
    return NULL;
}

static void run(const struct scenario *s, int catchall) {
    int expect_release = catchall || s->hooked;
    current = s;
    atomic_store(&armed, 0);
    atomic_store(&returned, 0);
    if (s->setup)
        s->setup();
    holder_thread = start_thread(holder, NULL);
    SPIN_UNTIL(armed);
    pid_t tid = atomic_load(&holder_tid);
    ca_wait_asleep_in(tid, s->nr, s->name);
    if (expect_release) {
        /* Asleep in the call: the tokens went before it slept. */
        SPIN_UNTIL_COND(lwkt_trytoken(&T));
        lwkt_reltoken(&T);
    } else {
        double end = now_s() + 0.3;
        long tries = 0;
        while (now_s() < end) {
            if (lwkt_trytoken(&T)) {
                fprintf(stderr, "FAIL: %s: LWKT_CATCHALL=0, yet T was released while its "
                                "holder slept in the call\n", s->name);
                _exit(1);
            }
            tries++;
            sched_yield();
        }
        /* Still asleep in it: the window covered the block. */
        CHECK_EQ(ca_thread_syscall(tid), s->nr);
        CHECK(!atomic_load(&returned));
        CHECK(tries > 0);
    }
    s->unblock();
    SPIN_UNTIL(returned);
    join_thread(holder_thread);
    CHECK_EQ(result, s->want);
    if (s->cleanup)
        s->cleanup();
    printf("catchall/fallback (%s): %s: %s\n", catchall ? "catch-all" : "LWKT_CATCHALL=0",
           s->name, expect_release ? "released" : "kept, as expected without the catch-all");
}

static void run_all(int catchall) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
        run(&scenarios[i], catchall);
}

#define CHILD_ARG "--fallback-child"

/* This program again, with LWKT_CATCHALL=0 and LWKT_DEBUG=1: as a linked
 * program, /proc/self/exe CHILD_ARG; as a plugin, the host with
 * LWKT_TEST_PLUGIN naming this plugin (plugin_host.c). Its stderr is
 * checked for the mode line and relayed. */
static void run_fallback_child(void) {
    char self[4096], me[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    self[n] = 0;
    Dl_info info;
    CHECK(dladdr((void *)lwkt_test_main, &info) && info.dli_fname);
    CHECK(realpath(info.dli_fname, me) != NULL || snprintf(me, sizeof me, "%s", info.dli_fname) > 0);
    int plugin = strcmp(me, self) != 0;

    int errpipe[2];
    CHECK_EQ(pipe2(errpipe, O_CLOEXEC), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(errpipe[1], 2);
        setenv("LWKT_CATCHALL", "0", 1);
        setenv("LWKT_DEBUG", "1", 1);
        if (plugin)
            setenv("LWKT_TEST_PLUGIN", me, 1);
        else
            unsetenv("LWKT_TEST_PLUGIN");
        char *argv[] = {self, CHILD_ARG, NULL};
        extern char **environ;
        execve("/proc/self/exe", argv, environ);
        _exit(127);
    }
    close(errpipe[1]);
    static char err[65536];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(errpipe[0], err + len, sizeof err - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    err[len] = 0;
    close(errpipe[0]);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    fputs(err, stderr);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        fprintf(stderr, "FAIL: the LWKT_CATCHALL=0 run (%s) ended with status %#x\n",
                plugin ? "plugin" : "linked", st);
        _exit(1);
    }
    if (!strstr(err, "symbol hooks only (LWKT_CATCHALL=0)")) {
        fprintf(stderr, "FAIL: the LWKT_CATCHALL=0 run did not announce the fallback\n");
        _exit(1);
    }
}

int lwkt_test_main(int argc, char **argv) {
    start_watchdog(10 * TEST_DEADLINE_S);
    if (argc > 1 && strcmp(argv[1], CHILD_ARG) == 0) {
        run_all(0);
        return 0;
    }
    ca_require(__FILE__);
    run_all(1);
    run_fallback_child();
    printf("catchall/fallback: ok\n");
    return 0;
}
