/*
 * catchall/process.c: processes and threads started by a thread that holds
 * tokens, while the catch-all traps its clone, vfork and exec
 * (SPEC section 4). The holder holds T exclusively twice and S shared.
 *
 * 1. fork (libc's exported fork, and libc's own through dlsym; from the
 *    main thread and from another thread): the child holds the forking
 *    thread's tokens (same counts and modes; another thread of the child
 *    cannot take T), the catch-all works in the child (blocked in libc's
 *    sem_wait, it lets its own thread take T), and it exits normally; the
 *    parent keeps its tokens and reaps it.
 * 2. vfork: the child execs (a shell that exits 5) or _exits(6); the
 *    parent, holding its tokens still, gets that status.
 * 3. posix_spawn / posix_spawnp, with a file action: the child runs (its
 *    output arrives), exits with its status; a missing program's exec
 *    error comes back from the child through shared memory (ENOENT).
 * 4. exec from a child that holds tokens: /bin/true and a shell run (the
 *    exec'd program, without the shim when linked, must not inherit the
 *    dispatch).
 * 5. pthread_create (exported and libc's own, default and caller-provided
 *    stack, 40 times): the new thread starts with no token, cannot take
 *    T (its creator holds it) but can share S, formats a double (stack
 *    alignment), gets its argument, and its own token is released by the
 *    catch-all when it blocks in libc; its result reaches pthread_join.
 */
#include "catchall_util.h"

#include <spawn.h>

extern char **environ;

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(proc_T);
static struct lwkt_token S = LWKT_TOKEN_INITIALIZER(proc_S);

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

/* Reap `pid` (libc's own waitpid: a released block) and expect `code`. */
static void expect_exit(pid_t pid, int code, const char *what) {
    int st = 0;
    pid_t r;
    while ((r = CA(waitpid)(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (r != pid || !WIFEXITED(st) || WEXITSTATUS(st) != code) {
        fprintf(stderr, "FAIL: %s: waitpid returned %d, status %#x (want exit %d)%s\n", what,
                (int)r, st, code, WIFSIGNALED(st) ? ", killed by a signal" : "");
        _exit(1);
    }
}

/* ---- 1. fork ------------------------------------------------------------- */

static void in_fork_child(void) {
    start_watchdog(TEST_DEADLINE_S * 2);
    check_held("fork child");
    /* T is the child's: another thread of the child cannot take it. */
    if (other_thread_can_take(&T, 0)) {
        fprintf(stderr, "FAIL: fork child: another thread took T, which the child holds\n");
        _exit(1);
    }
    /* The catch-all works here: blocked in libc, the child lets its own
     * thread take T. */
    ca_taker_start();
    ca_block_until_taken(&T);
    check_held("fork child, after a released block");
    unhold();
    _exit(0);
}

static void fork_with(pid_t (*fork_fn)(void), const char *what) {
    hold();
    pid_t pid = fork_fn();
    CHECK(pid >= 0);
    if (pid == 0)
        in_fork_child();
    check_held(what);
    expect_exit(pid, 0, what);
    check_held(what);
    unhold();
}

static void *fork_on_thread(void *arg) {
    fork_with((pid_t(*)(void))arg, "fork from a second thread");
    return NULL;
}

static void part_fork(void) {
    fork_with(fork, "fork");
    fork_with(CA(fork), "libc's own fork");
    join_thread(hk_spawn(fork_on_thread, (void *)fork));
    printf("catchall/process: fork: ok\n");
}

/* ---- 2. vfork ------------------------------------------------------------ */

static void part_vfork(void) {
    hold();
    pid_t pid = vfork();
    if (pid == 0) {
        char *argv[] = {"sh", "-c", "exit 5", NULL};
        execve("/bin/sh", argv, environ);
        _exit(127);
    }
    CHECK(pid > 0);
    check_held("vfork + exec");
    expect_exit(pid, 5, "vfork + exec");

    pid = vfork();
    if (pid == 0)
        _exit(6);
    CHECK(pid > 0);
    check_held("vfork + _exit");
    expect_exit(pid, 6, "vfork + _exit");
    unhold();
    printf("catchall/process: vfork: ok\n");
}

/* ---- 3. posix_spawn ------------------------------------------------------ */

static void part_spawn(void) {
    hold();
    pid_t pid;
    char *argv_exit[] = {"sh", "-c", "exit 4", NULL};
    CHECK_EQ(posix_spawn(&pid, "/bin/sh", NULL, NULL, argv_exit, environ), 0);
    check_held("posix_spawn");
    expect_exit(pid, 4, "posix_spawn");

    char *argv_true[] = {"true", NULL};
    CHECK_EQ(CA(posix_spawnp)(&pid, "true", NULL, NULL, argv_true, environ), 0);
    check_held("libc's own posix_spawnp");
    expect_exit(pid, 0, "libc's own posix_spawnp");

    /* With a file action: its output comes through the pipe. */
    int p[2];
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    CHECK_EQ(posix_spawn_file_actions_init(&fa), 0);
    CHECK_EQ(posix_spawn_file_actions_adddup2(&fa, p[1], 1), 0);
    char *argv_echo[] = {"sh", "-c", "echo spawned", NULL};
    CHECK_EQ(posix_spawn(&pid, "/bin/sh", &fa, NULL, argv_echo, environ), 0);
    CHECK_EQ(posix_spawn_file_actions_destroy(&fa), 0);
    close(p[1]);
    char buf[32] = {0};
    size_t n = 0;
    ssize_t r;
    while ((r = CA(read)(p[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)r;
    close(p[0]);
    CHECK(strcmp(buf, "spawned\n") == 0);
    check_held("posix_spawn with a file action");
    expect_exit(pid, 0, "posix_spawn with a file action");

    /* A missing program: the child reports the exec error through the
     * memory it shares with the parent (CLONE_VM), so posix_spawn returns
     * it -- the landing pad must keep the child in the parent's memory. */
    char *argv_missing[] = {"missing", NULL};
    CHECK_EQ(posix_spawn(&pid, "/nonexistent/missing", NULL, NULL, argv_missing, environ), ENOENT);
    CHECK_EQ(CA(posix_spawn)(&pid, "/nonexistent/missing", NULL, NULL, argv_missing, environ),
             ENOENT);
    check_held("posix_spawn of a missing program");
    unhold();
    printf("catchall/process: posix_spawn: ok\n");
}

/* ---- 4. exec from a child holding tokens --------------------------------- */

static void exec_in_child(const char *path, char *const argv[], int code) {
    hold();
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        check_held("fork child before exec");
        execve(path, argv, environ);
        _exit(127);
    }
    check_held("exec");
    expect_exit(pid, code, path);
    unhold();
}

static void part_exec(void) {
    char *argv_true[] = {"true", NULL};
    exec_in_child("/bin/true", argv_true, 0);
    char *argv_sh[] = {"sh", "-c", "read x </dev/null; exit 8", NULL};
    exec_in_child("/bin/sh", argv_sh, 8);
    printf("catchall/process: exec: ok\n");
}

/* ---- 5. pthread_create --------------------------------------------------- */

static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(proc_U);
static atomic_int thread_checked;

static void *new_thread(void *arg) {
    if (lwkt_cnttoken(&T) != 0 || lwkt_cnttoken(&S) != 0) {
        fprintf(stderr, "FAIL: a new thread starts holding tokens (T %d, S %d)\n",
                lwkt_cnttoken(&T), lwkt_cnttoken(&S));
        _exit(1);
    }
    ASSERT_NO_TOKENS_HELD();
    CHECK(!lwkt_trytoken(&T)); /* its creator holds T (and spins) */
    CHECK(lwkt_trytoken_shared(&S));
    lwkt_reltoken(&S);
    atomic_store(&thread_checked, 1);
    char buf[32];
    snprintf(buf, sizeof buf, "%.2f", 3.25 + (double)(intptr_t)arg);
    char want[32];
    snprintf(want, sizeof want, "%ld.25", 3 + (long)(intptr_t)arg);
    CHECK(strcmp(buf, want) == 0);
    /* Its own token, released by the catch-all when it blocks in libc. */
    lwkt_gettoken(&U);
    ca_block_until_taken(&U);
    lwkt_reltoken(&U);
    return (void *)((intptr_t)arg + 1000);
}

static void part_threads(void) {
    int (*libc_create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        CA(pthread_create);
    static char stacks[2][256 * 1024] __attribute__((aligned(64)));
    for (int i = 0; i < 40; i++) {
        hold();
        pthread_t t;
        pthread_attr_t attr, *ap = NULL;
        if (i % 4 == 3) {
            CHECK_EQ(pthread_attr_init(&attr), 0);
            CHECK_EQ(pthread_attr_setstack(&attr, stacks[i / 4 % 2], sizeof stacks[0]), 0);
            ap = &attr;
        }
        void *arg = (void *)(intptr_t)i;
        int rc = i % 2 ? libc_create(&t, ap, new_thread, arg) : pthread_create(&t, ap, new_thread, arg);
        CHECK_EQ(rc, 0);
        check_held("pthread_create");
        /* Keep T (spinning) until the new thread has tried it. */
        SPIN_UNTIL(thread_checked);
        atomic_store(&thread_checked, 0);
        void *ret = NULL;
        CHECK_EQ(CA(pthread_join)(t, &ret), 0);
        CHECK_EQ((intptr_t)ret, i + 1000);
        check_held("pthread_join");
        if (ap)
            CHECK_EQ(pthread_attr_destroy(ap), 0);
        unhold();
    }
    printf("catchall/process: pthread_create: ok\n");
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    start_watchdog(6 * TEST_DEADLINE_S);
    setvbuf(stdout, NULL, _IONBF, 0);
    ca_taker_start();
    part_fork();
    part_vfork();
    part_spawn();
    part_exec();
    part_threads();
    printf("catchall/process: ok\n");
    return 0;
}
