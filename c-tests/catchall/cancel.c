/*
 * catchall/cancel.c: pthread_cancel of a token holder blocked in a call
 * that libc makes inside itself (reached through dlsym on libc's handle),
 * where the catch-all released its tokens from inside its SIGSYS handler.
 * Cancellation then unwinds out of the blocked system call, through the
 * shim's handler and its signal frame (the unwind information of its
 * restorer in shim/sys/allowed.rs), back into libc and the thread's function.
 *
 * The thread takes T (and U), blocks; the main thread takes T meanwhile
 * (which proves the release), gives it back and cancels the thread. The
 * thread must end cancelled, its cleanup handler having run exactly once
 * (releasing its references; or, without one, thread exit releases them,
 * SPEC S9), and the token state must be consistent: T and U free, the
 * mutex of the condition-variable case free.
 *
 * Each case runs in a child process, so that a crash names its case and
 * signal; `prog NAME` runs one case in this process.
 */
#include "catchall_util.h"

#include <semaphore.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(cancel_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(cancel_U);

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sem_t never;
static int pipefd[2];
static atomic_int about_to_block, returned, cleanups;
static atomic_int blocked_tid;

static void cleanup_rel_tokens(void *arg) {
    (void)arg;
    lwkt_reltoken(&U);
    lwkt_reltoken(&T);
    atomic_fetch_add(&cleanups, 1);
}

static void cleanup_unlock_and_rel(void *arg) {
    (void)arg;
    CA(pthread_mutex_unlock)(&m);
    lwkt_reltoken(&T);
    atomic_fetch_add(&cleanups, 1);
}

static void arm(void) {
    atomic_store(&blocked_tid, (int)gettid());
    atomic_store(&about_to_block, 1);
}

static void *in_sem_wait(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup_rel_tokens, NULL);
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    arm();
    CA(sem_wait)(&never); /* nobody posts */
    atomic_store(&returned, 1);
    pthread_cleanup_pop(1);
    return NULL;
}

static void *in_read(void *arg) {
    (void)arg;
    char c;
    pthread_cleanup_push(cleanup_rel_tokens, NULL);
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    arm();
    ssize_t r = CA(read)(pipefd[0], &c, 1); /* nobody writes */
    (void)r;
    atomic_store(&returned, 1);
    pthread_cleanup_pop(1);
    return NULL;
}

static void *in_cond_wait(void *arg) {
    (void)arg;
    int (*wait)(pthread_cond_t *, pthread_mutex_t *) =
        (int (*)(pthread_cond_t *, pthread_mutex_t *))ca_vsym("pthread_cond_wait", "GLIBC_2.3.2");
    lwkt_gettoken(&T);
    CA(pthread_mutex_lock)(&m);
    pthread_cleanup_push(cleanup_unlock_and_rel, NULL);
    arm();
    for (;;)
        wait(&cv, &m); /* nobody signals */
    pthread_cleanup_pop(1);
    return NULL;
}

static void *in_usleep(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    arm();
    CA(usleep)(60u * 1000 * 1000); /* no cleanup handler: thread exit releases */
    atomic_store(&returned, 1);
    lwkt_reltoken(&U);
    lwkt_reltoken(&T);
    return NULL;
}

static void *in_nanosleep(void *arg) {
    (void)arg;
    pthread_cleanup_push(cleanup_rel_tokens, NULL);
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    arm();
    struct timespec ts = {60, 0};
    CA(nanosleep)(&ts, NULL);
    atomic_store(&returned, 1);
    pthread_cleanup_pop(1);
    return NULL;
}

struct cancel_case {
    const char *name;
    void *(*fn)(void *);
    long nr; /* the system call it sleeps in */
    int cleanups;
};

static const struct cancel_case cases[] = {
    {"sem_wait", in_sem_wait, SYS_futex, 1},
    {"read", in_read, SYS_read, 1},
    {"pthread_cond_wait", in_cond_wait, SYS_futex, 1},
    {"usleep", in_usleep, SYS_clock_nanosleep, 0},
    {"nanosleep", in_nanosleep, SYS_clock_nanosleep, 1},
};

static void run_case(const struct cancel_case *c) {
    CHECK_EQ(sem_init(&never, 0, 0), 0);
    CHECK_EQ(pipe(pipefd), 0);
    pthread_t t = start_thread(c->fn, NULL);
    SPIN_UNTIL(about_to_block);
    /* Asleep in the system call, inside the shim's SIGSYS handler. */
    ca_wait_asleep_in(atomic_load(&blocked_tid), c->nr, c->name);
    /* Succeeds only because the blocked thread released T. */
    SPIN_UNTIL_COND(lwkt_trytoken(&T));
    CHECK(!atomic_load(&returned));
    lwkt_reltoken(&T);

    CHECK_EQ(pthread_cancel(t), 0);
    void *ret = join_thread(t);
    if (ret != PTHREAD_CANCELED) {
        fprintf(stderr, "FAIL: %s: the thread was not cancelled\n", c->name);
        _exit(1);
    }
    CHECK(!atomic_load(&returned));
    CHECK_EQ(atomic_load(&cleanups), c->cleanups);
    ASSERT_NO_TOKENS_HELD();
    CHECK(lwkt_trytoken(&T));
    CHECK(lwkt_trytoken(&U));
    lwkt_reltoken(&U);
    lwkt_reltoken(&T);
    CHECK_EQ(pthread_mutex_trylock(&m), 0);
    CHECK_EQ(pthread_mutex_unlock(&m), 0);
    printf("catchall/cancel: %s: cancelled cleanly\n", c->name);
}

int lwkt_test_main(int argc, char **argv) {
    ca_require(__FILE__);
    setvbuf(stdout, NULL, _IONBF, 0);
    size_t n = sizeof cases / sizeof cases[0];
    if (argc > 1) {
        start_watchdog(3 * TEST_DEADLINE_S);
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], cases[i].name) == 0) {
                run_case(&cases[i]);
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
            run_case(&cases[i]);
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
        printf("catchall/cancel: ok\n");
    return failed;
}
