/*
 * catchall/first_use_signal.c: SPEC section 7 ("signal handlers may use
 * tokens at any point"), at the first use of tokens in a process. The
 * thread that uses a token first takes SIGSYS over for the process with
 * every signal blocked; a signal sent meanwhile is delivered as the mask
 * comes back. Its handler takes a token too, so it arms the same thread
 * again: it must find the takeover done, not wait for it (it would wait
 * for the thread it interrupted, forever).
 *
 * Each trial is a fresh process (the takeover happens once a process:
 * this program executed again) whose main thread is hammered with SIGUSR1 by another thread while it
 * takes its first token; the handler takes one from then on. A child that
 * hangs is ended by its watchdog and fails the test. (A trial whose
 * signals all miss the takeover passes without proving anything; with a
 * signal every few microseconds most land in it.)
 */
#include "catchall_util.h"

#include <limits.h>
#include <stdlib.h>

#define TRIALS 30

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(first_use_T);
static struct lwkt_token H = LWKT_TOKEN_INITIALIZER(first_use_H);
static pthread_t main_thread;
static atomic_int handler_takes, stop;
static atomic_long handled, handler_took;

/* Has the kernel's SIGSYS action been replaced (the takeover begun)? Asked
 * of the kernel itself: from a thread that holds no token the call is not
 * trapped, so the shim's record of the program's action is not what
 * answers. */
static int takeover_begun(void) {
    unsigned long k[4] = {0}; /* handler, flags, restorer, mask */
    if (syscall(SYS_rt_sigaction, SIGSYS, NULL, k, 8) != 0)
        return 0;
    return k[0] != (unsigned long)SIG_DFL;
}

/* Takes a token only once the takeover has begun: a signal that comes
 * earlier (the first use's first steps) would run the first use itself,
 * in the handler, and leave nothing for the interrupted thread to do. */
static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    if (atomic_load(&handler_takes) && takeover_begun()) {
        lwkt_gettoken(&H);
        lwkt_reltoken(&H);
        atomic_fetch_add(&handler_took, 1);
    }
    atomic_fetch_add(&handled, 1);
    errno = saved;
}

static void *signaller(void *arg) {
    (void)arg;
    while (!atomic_load(&stop)) {
        if (pthread_kill(main_thread, SIGUSR1) != 0)
            break;
        for (int i = 0; i < 300; i++)
            __asm__ volatile("pause");
    }
    return NULL;
}

static void trial(void) {
    start_watchdog(20);
    main_thread = pthread_self();
    pthread_t s = start_thread(signaller, NULL);
    /* Signals are flowing before the first token is taken. */
    SPIN_UNTIL_COND(atomic_load(&handled) >= 20);
    atomic_store(&handler_takes, 1);
    lwkt_gettoken(&T);
    lwkt_reltoken(&T);
    atomic_store(&stop, 1);
    CHECK(pthread_join(s, NULL) == 0);
    CHECK_EQ(lwkt_cnttoken(&T), 0);
    _exit(0);
}

#define TRIAL_ARG "--first-use-trial"

/* One trial: this program again, a fresh process (a fork child would
 * inherit the parent's state): as a linked program, /proc/self/exe
 * TRIAL_ARG; as a plugin, the host with LWKT_TEST_PLUGIN naming this
 * plugin (plugin_host.c). */
static void run_trial(int i) {
    char self[4096], me[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(n > 0);
    self[n] = 0;
    Dl_info info;
    CHECK(dladdr((void *)lwkt_test_main, &info) && info.dli_fname);
    CHECK(realpath(info.dli_fname, me) != NULL);
    int plugin = strcmp(me, self) != 0;
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (plugin)
            setenv("LWKT_TEST_PLUGIN", me, 1);
        else
            unsetenv("LWKT_TEST_PLUGIN");
        char *argv[] = {self, TRIAL_ARG, NULL};
        extern char **environ;
        execve("/proc/self/exe", argv, environ);
        _exit(127);
    }
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "FAIL: trial %d: the child ended with status %#x\n", i, status);
        exit(1);
    }
}

int lwkt_test_main(int argc, char **argv) {
    ca_require(__FILE__);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    if (argc > 1 && strcmp(argv[1], TRIAL_ARG) == 0)
        trial();
    for (int i = 0; i < TRIALS; i++)
        run_trial(i);
    printf("first use under signals: %d trials\n", TRIALS);
    return 0;
}
