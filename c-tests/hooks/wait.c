/*
 * hooks/wait.c: wait, waitpid, waitid, wait3, wait4 (SPEC section 4). The
 * child (forked before any token is taken) blocks reading a pipe and exits
 * with status 7 once the helper, having taken the released tokens, writes
 * to it. A child that already exited (a zombie), WNOHANG and ECHILD do not
 * block: the tokens stay.
 */
#include "hook_util.h"

#include <sys/resource.h>
#include <sys/wait.h>

/* v[0]: the child's pid; fd[0]/fd[1]: the pipe it waits on. */
static void setup_child(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
    pid_t pid = fork();
    HCHECK(h, pid >= 0);
    if (pid == 0) {
        char c;
        close(p[1]);
        ssize_t r = read(p[0], &c, 1); /* 1: told to exit; 0: parent gone */
        _exit(r == 1 ? 7 : 99);
    }
    h->v[0] = pid;
    close(p[0]);
    h->fd[0] = -1;
}
static void release_child(hk_t *h) { HCHECK_EQ(h, write(h->fd[1], "x", 1), 1); }
static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }

/* A child that has exited but is not reaped yet. */
static void setup_zombie(hk_t *h) {
    setup_child(h);
    release_child(h);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    HCHECK_EQ(h, waitid(P_PID, (id_t)h->v[0], &si, WEXITED | WNOWAIT), 0);
    HCHECK_EQ(h, si.si_pid, h->v[0]);
}

/* Whatever the case did, the child is gone and reaped afterwards. */
static void cleanup_child(hk_t *h) {
    hk_close_fds(h); /* EOF: a child still waiting exits */
    int st;
    pid_t r = waitpid((pid_t)h->v[0], &st, 0);
    HCHECK(h, r == (pid_t)h->v[0] || (r == -1 && errno == ECHILD));
}

static int *status_of(hk_t *h) { return (int *)h->buf; }

static long wait_call(hk_t *h) { return wait(status_of(h)); }
static long waitpid_call(hk_t *h) { return waitpid((pid_t)h->v[0], status_of(h), 0); }
static long waitpid_any(hk_t *h) { return waitpid(-1, status_of(h), 0); }
static long waitpid_wnohang(hk_t *h) { return waitpid((pid_t)h->v[0], status_of(h), WNOHANG); }
static long wait3_call(hk_t *h) {
    return wait3(status_of(h), 0, (struct rusage *)(h->buf + 16));
}
static long wait4_call(hk_t *h) {
    return wait4((pid_t)h->v[0], status_of(h), 0, (struct rusage *)(h->buf + 16));
}
static long wait4_wnohang(hk_t *h) {
    return wait4((pid_t)h->v[0], status_of(h), WNOHANG, (struct rusage *)(h->buf + 16));
}
static long waitid_call(hk_t *h) {
    siginfo_t *si = (siginfo_t *)(h->buf + 16);
    memset(si, 0, sizeof *si);
    return waitid(P_PID, (id_t)h->v[0], si, WEXITED);
}
static long waitid_all(hk_t *h) {
    siginfo_t *si = (siginfo_t *)(h->buf + 16);
    memset(si, 0, sizeof *si);
    return waitid(P_ALL, 0, si, WEXITED);
}
static long waitid_wnohang(hk_t *h) {
    siginfo_t *si = (siginfo_t *)(h->buf + 16);
    memset(si, 0xff, sizeof *si);
    return waitid(P_PID, (id_t)h->v[0], si, WEXITED | WNOHANG);
}
static long waitid_nowait(hk_t *h) {
    siginfo_t *si = (siginfo_t *)(h->buf + 16);
    memset(si, 0, sizeof *si);
    return waitid(P_PID, (id_t)h->v[0], si, WEXITED | WNOWAIT);
}

static void check_reaped(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, h->v[0]);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, WIFEXITED(*status_of(h)));
    HCHECK_EQ(h, WEXITSTATUS(*status_of(h)), 7);
}
static void check_reaped_rusage(hk_t *h, long ret, int err) {
    check_reaped(h, ret, err);
    struct rusage *ru = (struct rusage *)(h->buf + 16);
    HCHECK(h, ru->ru_utime.tv_usec >= 0 && ru->ru_utime.tv_usec < 1000000);
    HCHECK(h, ru->ru_maxrss > 0);
}
static void check_waitid(hk_t *h, long ret, int err) {
    siginfo_t *si = (siginfo_t *)(h->buf + 16);
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, si->si_pid, h->v[0]);
    HCHECK_EQ(h, si->si_signo, SIGCHLD);
    HCHECK_EQ(h, si->si_code, CLD_EXITED);
    HCHECK_EQ(h, si->si_status, 7);
}
static void check_waitid_nowait(hk_t *h, long ret, int err) {
    check_waitid(h, ret, err);
    /* Not reaped: a second wait still finds it. */
    HCHECK_EQ(h, waitpid((pid_t)h->v[0], status_of(h), WNOHANG), h->v[0]);
}
static void check_still_running(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
}
static void check_waitid_still_running(hk_t *h, long ret, int err) {
    siginfo_t *si = (siginfo_t *)(h->buf + 16);
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, si->si_pid, 0);
}
static void check_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
}

static long waitpid_no_children(hk_t *h) { return waitpid(-1, status_of(h), 0); }
static long wait_no_children(hk_t *h) { return wait(status_of(h)); }
static long waitid_no_children(hk_t *h) {
    return waitid(P_ALL, 0, (siginfo_t *)(h->buf + 16), WEXITED);
}

static const struct hk_case cases[] = {
    {"wait for a running child", HK_BLOCK, .setup = setup_child, .call = wait_call,
     .unblock = release_child, .check = check_reaped, .cleanup = cleanup_child},
    {"waitpid for a running child", HK_BLOCK, .setup = setup_child, .call = waitpid_call,
     .unblock = release_child, .check = check_reaped, .cleanup = cleanup_child},
    {"waitpid(-1) for a running child", HK_BLOCK, .setup = setup_child, .call = waitpid_any,
     .unblock = release_child, .check = check_reaped, .cleanup = cleanup_child},
    {"waitpid interrupted", HK_BLOCK, .setup = setup_child, .call = waitpid_call,
     .unblock = interrupt, .check = check_eintr, .cleanup = cleanup_child},
    {"waitid for a running child", HK_BLOCK, .setup = setup_child, .call = waitid_call,
     .unblock = release_child, .check = check_waitid, .cleanup = cleanup_child},
    {"waitid(P_ALL) for a running child", HK_BLOCK, .setup = setup_child, .call = waitid_all,
     .unblock = release_child, .check = check_waitid, .cleanup = cleanup_child},
    {"waitid WNOWAIT for a running child", HK_BLOCK, .setup = setup_child,
     .call = waitid_nowait, .unblock = release_child, .check = check_waitid_nowait,
     .cleanup = cleanup_child},
    {"wait3 for a running child", HK_BLOCK, .setup = setup_child, .call = wait3_call,
     .unblock = release_child, .check = check_reaped_rusage, .cleanup = cleanup_child},
    {"wait4 for a running child", HK_BLOCK, .setup = setup_child, .call = wait4_call,
     .unblock = release_child, .check = check_reaped_rusage, .cleanup = cleanup_child},

    {"wait for a zombie", HK_KEPT, .setup = setup_zombie, .call = wait_call,
     .check = check_reaped, .cleanup = cleanup_child},
    {"waitpid for a zombie", HK_KEPT, .setup = setup_zombie, .call = waitpid_call,
     .check = check_reaped, .cleanup = cleanup_child},
    {"waitid for a zombie", HK_KEPT, .setup = setup_zombie, .call = waitid_call,
     .check = check_waitid, .cleanup = cleanup_child},
    {"waitid WNOWAIT for a zombie", HK_KEPT, .setup = setup_zombie, .call = waitid_nowait,
     .check = check_waitid_nowait, .cleanup = cleanup_child},
    {"wait3 for a zombie", HK_KEPT, .setup = setup_zombie, .call = wait3_call,
     .check = check_reaped_rusage, .cleanup = cleanup_child},
    {"wait4 for a zombie", HK_KEPT, .setup = setup_zombie, .call = wait4_call,
     .check = check_reaped_rusage, .cleanup = cleanup_child},
    {"waitpid WNOHANG, child running", HK_KEPT, .setup = setup_child, .call = waitpid_wnohang,
     .check = check_still_running, .cleanup = cleanup_child},
    {"wait4 WNOHANG, child running", HK_KEPT, .setup = setup_child, .call = wait4_wnohang,
     .check = check_still_running, .cleanup = cleanup_child},
    {"waitid WNOHANG, child running", HK_KEPT, .setup = setup_child, .call = waitid_wnohang,
     .check = check_waitid_still_running, .cleanup = cleanup_child},
    {"waitpid ECHILD", HK_KEPT, .call = waitpid_no_children, .want = -1, .err = ECHILD},
    {"wait ECHILD", HK_KEPT, .call = wait_no_children, .want = -1, .err = ECHILD},
    {"waitid ECHILD", HK_KEPT, .call = waitid_no_children, .want = -1, .err = ECHILD},
};

int lwkt_test_main(int argc, char **argv) {
    hk_install_handler(SIGUSR1);
    return HK_RUN(cases, argc, argv);
}
