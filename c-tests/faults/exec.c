/*
 * faults/exec.c: robustness. execve from a thread that holds tokens,
 * while other threads of the process hold tokens (spinning) and wait for
 * one (asleep in lwkt_gettoken on a token the exec'ing thread holds).
 *
 * Each scenario runs in a child process that sets that up and execs, from
 * the main thread or from another thread, either /bin/true (exit status 0)
 * or this test itself with --exec-image (in the plugin way: plugin_host
 * with the plugin, LD_PRELOAD inherited). The new image must run normally:
 * it starts holding no token, takes tokens, lets a thread block in read()
 * holding one (released, S2) and retake it, and exits with status 42.
 * An exec that fails (a missing program) returns -1/ENOENT to the holder,
 * which still holds its tokens.
 */
#include "check.h"

#include <sys/wait.h>

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(exec_A);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(exec_B);
static struct lwkt_token C = LWKT_TOKEN_INITIALIZER(exec_C);
static struct lwkt_token D = LWKT_TOKEN_INITIALIZER(exec_D);

#define IMAGE_STATUS 42

/* ---- the new image --------------------------------------------------- */

static int ipipe[2];
static atomic_int i_armed, i_ok;
static void *image_reader(void *arg) {
    (void)arg;
    char c = 0;
    lwkt_gettoken(&A);
    atomic_store(&i_armed, 1);
    ssize_t n = read(ipipe[0], &c, 1);
    atomic_store(&i_ok, n == 1 && c == 'i' && LWKT_TOKEN_HELD_EXCL(&A));
    lwkt_reltoken(&A);
    return NULL;
}

static int new_image(void) {
    start_watchdog(TEST_DEADLINE_S);
    ASSERT_NO_TOKENS_HELD();
    lwkt_gettoken(&A);
    lwkt_gettoken_shared(&B);
    CHECK(!other_thread_can_take(&A, 0));
    CHECK(other_thread_can_take(&B, 1));
    lwkt_reltoken(&B);
    lwkt_reltoken(&A);
    CHECK(pipe(ipipe) == 0);
    pthread_t t = start_thread(image_reader, NULL);
    SPIN_UNTIL(i_armed);
    lwkt_gettoken(&A); /* only once the reader blocked */
    lwkt_reltoken(&A);
    CHECK(write(ipipe[1], "i", 1) == 1);
    join_thread(t);
    CHECK(atomic_load(&i_ok));
    return IMAGE_STATUS;
}

/* ---- the exec'ing process ------------------------------------------------ */

static char *self_argv[4];
static char *true_argv[] = {"/bin/true", NULL};
static char *missing_argv[] = {"/nonexistent/lwkt-fault-exec", NULL};
extern char **environ;

struct scenario {
    const char *name;
    int from_main;   /* exec from the main thread (else from another one) */
    char **argv;     /* the program to exec */
    int want_status; /* its exit status, or -1: exec fails with ENOENT */
};

static const struct scenario *cur;
static atomic_int other_holds, waiter_waiting;

static void *other_holder(void *arg) {
    (void)arg;
    lwkt_gettoken(&C);
    lwkt_gettoken_shared(&D);
    atomic_store(&other_holds, 1);
    spin_for(2 * TEST_DEADLINE_S); /* until the exec ends this thread */
    _exit(3);
}

static void *waiter(void *arg) {
    (void)arg;
    atomic_store(&waiter_waiting, 1);
    lwkt_gettoken(&A); /* the exec'ing thread holds A */
    if (cur->want_status >= 0) {
        fprintf(stderr, "FAIL [%s]: the waiter got A before the exec\n", cur->name);
        _exit(4);
    }
    lwkt_reltoken(&A);
    return NULL;
}

/* Take tokens, exec. Returns only when the exec failed (as expected). */
static void hold_and_exec(void) {
    lwkt_gettoken(&A);
    lwkt_gettoken_shared(&B);
    lwkt_gettoken(&A);
    start_thread(waiter, NULL);
    SPIN_UNTIL(waiter_waiting);
    SPIN_UNTIL_COND(__atomic_load_n(&A.t_waiters, __ATOMIC_RELAXED) != 0); /* asleep */
    errno = 0;
    int r = execve(cur->argv[0], cur->argv, environ);
    int err = errno;
    if (cur->want_status >= 0) {
        fprintf(stderr, "FAIL [%s]: execve failed: %s\n", cur->name, strerror(err));
        _exit(5);
    }
    CHECK_EQ(r, -1);
    CHECK_EQ(err, ENOENT);
    CHECK_EQ(lwkt_cnttoken(&A), 2);
    CHECK(LWKT_TOKEN_HELD_EXCL(&A));
    CHECK_EQ(lwkt_cnttoken(&B), 1);
    CHECK(!other_thread_can_take(&A, 0));
    lwkt_reltoken(&A);
    lwkt_reltoken(&B);
    lwkt_reltoken(&A);
}

static atomic_int execer_done;
static void *execer(void *arg) {
    (void)arg;
    hold_and_exec();
    atomic_store(&execer_done, 1);
    return NULL;
}

static void run_scenario(void) {
    start_watchdog(TEST_DEADLINE_S);
    start_thread(other_holder, NULL);
    SPIN_UNTIL(other_holds);
    if (cur->from_main) {
        hold_and_exec();
    } else {
        /* The main thread holds a token too, and keeps running. */
        lwkt_gettoken_shared(&D); /* coexists with other_holder's */
        start_thread(execer, NULL);
        SPIN_UNTIL(execer_done); /* spin: the exec, if it works, ends us here */
        lwkt_reltoken(&D);
    }
    _exit(0); /* only after the expected failure */
}

static const struct scenario scenarios[] = {
    {"main thread execs /bin/true", 1, true_argv, 0},
    {"main thread execs this test", 1, self_argv, IMAGE_STATUS},
    {"other thread execs /bin/true", 0, true_argv, 0},
    {"other thread execs this test", 0, self_argv, IMAGE_STATUS},
    {"main thread execs a missing program", 1, missing_argv, -1},
    {"other thread execs a missing program", 0, missing_argv, -1},
};

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int lwkt_test_main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[argc - 1], "--exec-image") == 0)
        return new_image();
    start_watchdog(2 * TEST_DEADLINE_S);
    /* This program again: linked, argv[0] is it; as a plugin, argv[0] is
     * the plugin, which plugin_host (this process's executable) loads. */
    static char exe[] = "/proc/self/exe";
    int i = 0;
    self_argv[i++] = exe;
    if (ends_with(argv[0], ".so"))
        self_argv[i++] = argv[0];
    self_argv[i++] = "--exec-image";
    self_argv[i] = NULL;

    int failed = 0;
    for (size_t k = 0; k < sizeof scenarios / sizeof scenarios[0]; k++) {
        cur = &scenarios[k];
        fflush(stdout);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            run_scenario();
        int st = 0;
        CHECK_EQ(waitpid(pid, &st, 0), pid);
        int want = cur->want_status >= 0 ? cur->want_status : 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != want) {
            fprintf(stderr, "FAIL [%s]: status %#x (%s %d), want exit status %d\n", cur->name,
                    st, WIFSIGNALED(st) ? "signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), want);
            failed++;
        } else {
            printf("faults/exec: %s: ok\n", cur->name);
        }
    }
    return failed != 0;
}
