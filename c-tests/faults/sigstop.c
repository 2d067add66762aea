/*
 * faults/sigstop.c: robustness. A token holder stopped by SIGSTOP keeps
 * its tokens: stopped is not blocked (no hook ran; to the library the
 * thread is running). This documents the behaviour.
 *
 * A child process has:
 *  - H, holding T exclusively and S shared, spinning (counting its spins)
 *    until told to let go;
 *  - W, asleep in lwkt_gettoken(T);
 *  - R, holding U, blocked in read() on a pipe (U released, S2);
 *  - E1 holding V and E0 holding nothing, both in epoll_wait(-1) on a pipe
 *    that never becomes readable: what a stop and continue does to that
 *    call (signal(7): epoll_wait fails with EINTR after a stop signal and
 *    SIGCONT, without any handler) must be the same with and without
 *    tokens.
 * The parent stops the child with SIGSTOP. SIGSTOP stops every thread of
 * the process, so no thread of the child can probe T meanwhile; the parent
 * reads T from the stopped child's memory (process_vm_readv): still held,
 * and its acquisition counter (t_seq, documented in lwkt.h) unchanged.
 * H's spin counter does not move while stopped. After SIGCONT, the child's
 * main thread finds at once that another thread still cannot take T or S
 * (H never let them go: t_seq is the same as before the stop), that H spins
 * again, and that W is still waiting; then H lets go, and W gets T (only
 * then); R, given data, returns holding U; E1 and E0 returned the same.
 */
#include "check.h"

#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/wait.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(stop_T);
static struct lwkt_token S = LWKT_TOKEN_INITIALIZER(stop_S);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(stop_U);
static struct lwkt_token V = LWKT_TOKEN_INITIALIZER(stop_V);

static atomic_long h_spins;
static atomic_int h_holds, h_release, h_released, w_waiting, w_got, w_after_h;
static atomic_int r_armed, r_returned, r_ok, e_armed[2], e_returned[2], e_err[2];
static atomic_long e_ret[2];
static int rpipe[2], epipe[2], ctl_to_child[2], ctl_to_parent[2];

static void *h(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    lwkt_gettoken_shared(&S);
    atomic_store(&h_holds, 1);
    double end = now_s() + 2 * TEST_DEADLINE_S;
    while (!atomic_load(&h_release)) {
        atomic_fetch_add(&h_spins, 1);
        if (now_s() > end) {
            fprintf(stderr, "FAIL: H was never told to let go\n");
            _exit(1);
        }
    }
    atomic_store(&h_released, 1);
    lwkt_reltoken(&S);
    lwkt_reltoken(&T);
    return NULL;
}

static void *w(void *arg) {
    (void)arg;
    atomic_store(&w_waiting, 1);
    lwkt_gettoken(&T);
    atomic_store(&w_after_h, atomic_load(&h_released));
    atomic_store(&w_got, 1);
    lwkt_reltoken(&T);
    return NULL;
}

static void *r(void *arg) {
    (void)arg;
    char c = 0;
    lwkt_gettoken(&U);
    atomic_store(&r_armed, 1);
    ssize_t n = read(rpipe[0], &c, 1);
    atomic_store(&r_ok, n == 1 && c == 'r' && LWKT_TOKEN_HELD_EXCL(&U));
    atomic_store(&r_returned, 1);
    lwkt_reltoken(&U);
    return NULL;
}

static void *e(void *arg) {
    int with = (int)(long)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, epipe[0], &ev) == 0);
    if (with)
        lwkt_gettoken(&V);
    atomic_store(&e_armed[with], 1);
    errno = EDOM;
    long ret = epoll_wait(ep, &ev, 1, -1);
    atomic_store(&e_err[with], errno);
    if (with) {
        CHECK(LWKT_TOKEN_HELD_EXCL(&V));
        lwkt_reltoken(&V);
    }
    atomic_store(&e_ret[with], ret);
    atomic_store(&e_returned[with], 1);
    return NULL;
}

static char state_of(pid_t pid, int tid) {
    char path[96], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : '?';
}

static void wait_sleeping(int tid) {
    SPIN_UNTIL_COND(state_of(getpid(), tid) == 'S');
}

static atomic_int h_tid, r_tid, e_tid[2];
static void *tid_of_h(void *a) { atomic_store(&h_tid, (int)gettid()); return h(a); }
static void *tid_of_r(void *a) { atomic_store(&r_tid, (int)gettid()); return r(a); }
static void *tid_of_e(void *a) { atomic_store(&e_tid[(long)a], (int)gettid()); return e(a); }

/* What the parent needs to know, sent up the pipe. */
struct report {
    uintptr_t t_addr, spins_addr;
    int h_tid;
    uint64_t seq_before;
};

static int child(void) {
    start_watchdog(2 * TEST_DEADLINE_S);
    pthread_t th = start_thread(tid_of_h, NULL);
    SPIN_UNTIL(h_holds);
    pthread_t tw = start_thread(w, NULL);
    pthread_t tr = start_thread(tid_of_r, NULL);
    pthread_t te0 = start_thread(tid_of_e, (void *)0L), te1 = start_thread(tid_of_e, (void *)1L);
    SPIN_UNTIL(w_waiting);
    SPIN_UNTIL(r_armed);
    SPIN_UNTIL(e_armed[0]);
    SPIN_UNTIL(e_armed[1]);
    SPIN_UNTIL_COND(__atomic_load_n(&T.t_waiters, __ATOMIC_RELAXED) != 0); /* W asleep */
    wait_sleeping(atomic_load(&r_tid));
    wait_sleeping(atomic_load(&e_tid[0]));
    wait_sleeping(atomic_load(&e_tid[1]));
    CHECK(other_thread_can_take(&U, 0)); /* R's read released U */
    CHECK(other_thread_can_take(&V, 0)); /* E1's epoll_wait released V */

    struct report rep = {(uintptr_t)&T, (uintptr_t)&h_spins, atomic_load(&h_tid),
                         __atomic_load_n(&T.t_seq, __ATOMIC_RELAXED)};
    CHECK(write(ctl_to_parent[1], &rep, sizeof rep) == (ssize_t)sizeof rep);
    /* The parent stops and continues us, then says so. */
    char c;
    CHECK(read(ctl_to_child[0], &c, 1) == 1);

    /* Nobody took T or S across the stop: H still holds them. */
    CHECK(!other_thread_can_take(&T, 0));
    CHECK(!other_thread_can_take(&S, 0));
    CHECK(other_thread_can_take(&S, 1));
    CHECK_EQ(__atomic_load_n(&T.t_seq, __ATOMIC_RELAXED), rep.seq_before);
    long s0 = atomic_load(&h_spins);
    SPIN_UNTIL_COND(atomic_load(&h_spins) > s0 + 1000); /* H runs again */
    CHECK(!atomic_load(&w_got));
    CHECK(!atomic_load(&r_returned));

    atomic_store(&h_release, 1);
    join_thread(th);
    join_thread(tw);
    CHECK(atomic_load(&w_got));
    CHECK(atomic_load(&w_after_h));
    CHECK(write(rpipe[1], "r", 1) == 1);
    join_thread(tr);
    CHECK(atomic_load(&r_ok));

    /* epoll_wait: the same outcome with and without a token. Give the
     * stop 2 s to have ended both calls (signal(7)); then data ends any
     * that still waits. */
    double end = now_s() + 2;
    while (!(atomic_load(&e_returned[0]) && atomic_load(&e_returned[1])) && now_s() < end)
        sched_yield();
    CHECK(write(epipe[1], "e", 1) == 1);
    join_thread(te0);
    join_thread(te1);
    if (atomic_load(&e_ret[0]) != atomic_load(&e_ret[1]) ||
        atomic_load(&e_err[0]) != atomic_load(&e_err[1])) {
        fprintf(stderr,
                "FAIL: epoll_wait across SIGSTOP/SIGCONT: without a token %ld (errno %d), "
                "holding one %ld (errno %d)\n",
                atomic_load(&e_ret[0]), atomic_load(&e_err[0]), atomic_load(&e_ret[1]),
                atomic_load(&e_err[1]));
        return 1;
    }
    printf("faults/sigstop child: epoll_wait across the stop returned %ld (errno %d), with "
           "and without a token\n",
           atomic_load(&e_ret[0]), atomic_load(&e_err[0]));
    return 0;
}

/* Read the stopped child's memory; 0 where this system forbids it
 * (ptrace restrictions, a seccomp profile): those checks are skipped. */
static int peek(pid_t pid, uintptr_t addr, void *out, size_t n) {
    struct iovec local = {out, n}, remote = {(void *)addr, n};
    ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (got < 0 && (errno == EPERM || errno == ENOSYS || errno == EACCES)) {
        printf("faults/sigstop: note: process_vm_readv: %s; the checks from outside the "
               "stopped child are skipped\n", strerror(errno));
        return 0;
    }
    if (got != (ssize_t)n) {
        fprintf(stderr, "FAIL: process_vm_readv of the stopped child: %s\n", strerror(errno));
        kill(pid, SIGKILL);
        _exit(1);
    }
    return 1;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S + 5);
    CHECK(pipe(rpipe) == 0 && pipe(epipe) == 0);
    CHECK(pipe(ctl_to_child) == 0 && pipe(ctl_to_parent) == 0);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(child());

    struct report rep;
    CHECK(read(ctl_to_parent[0], &rep, sizeof rep) == (ssize_t)sizeof rep);
    CHECK(kill(pid, SIGSTOP) == 0);
    int st;
    CHECK_EQ(waitpid(pid, &st, WUNTRACED), pid);
    CHECK(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP);
    CHECK_EQ(state_of(pid, rep.h_tid), 'T');

    struct lwkt_token t1, t2;
    long spins1, spins2;
    if (peek(pid, rep.t_addr, &t1, sizeof t1)) {
        peek(pid, rep.spins_addr, &spins1, sizeof spins1);
        spin_for(0.3); /* an observation window, not synchronisation */
        peek(pid, rep.t_addr, &t2, sizeof t2);
        peek(pid, rep.spins_addr, &spins2, sizeof spins2);
        CHECK(t1.t_word != 0);              /* held while stopped */
        CHECK_EQ(t1.t_seq, rep.seq_before); /* never released and retaken */
        CHECK_EQ(t2.t_word, t1.t_word);
        CHECK_EQ(t2.t_seq, t1.t_seq);
        CHECK_EQ(spins2, spins1); /* stopped: H does not run */
    }

    CHECK(kill(pid, SIGCONT) == 0);
    CHECK_EQ(waitpid(pid, &st, WCONTINUED), pid);
    CHECK(WIFCONTINUED(st));
    CHECK(write(ctl_to_child[1], "c", 1) == 1);
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "FAIL: the child failed (status %#x)\n", st);
        return 1;
    }
    printf("faults/sigstop: ok\n");
    return 0;
}
