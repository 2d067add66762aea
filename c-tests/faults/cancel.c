/*
 * faults/cancel.c: robustness. A token holder killed by pthread_cancel
 * while it is blocked in each blocking hook of SPEC section 4 that is a
 * cancellation point in glibc.
 *
 * The holder takes T exclusively, S shared and T again (recursively), with a
 * cleanup handler pushed, and makes the call, which blocks (nothing will ever
 * wake it). The main thread proves the release by taking T and S itself
 * (lwkt_trytoken, spinning until both succeed), gives them back, cancels the
 * holder and joins it. Then:
 *  - pthread_join returned PTHREAD_CANCELED, and the call never returned;
 *  - the cleanup handler ran exactly once, and its lwkt_reltoken calls (T,
 *    S, T: LIFO, as a handler written for the normal path does) are
 *    accepted. What the handler holds is not specified (SPEC is silent):
 *    the library runs it with the references still released (the blocking
 *    call did not return, so it retook nothing; lwkt_cnttoken says 0) --
 *    unlike a mutex, which a cancelled pthread_cond_wait re-acquires before
 *    the first handler. The test accepts either all references back (T
 *    twice exclusively, S shared) or none, never a mix;
 *  - T and S are free: another thread takes each of them exclusively;
 *  - the case's own resources (the mutex of a condition wait) are
 *    consistent.
 * A case whose cleanup handler is told not to release (`keep`) checks that
 * thread exit alone frees the tokens (S9).
 *
 * Blocking hooks that are not cancellation points in glibc, and so are not
 * cases: pread/preadv/pwrite/pwritev (never block cancellably on Linux:
 * regular files do not sleep interruptibly, pipes and sockets give ESPIPE),
 * fsync/fdatasync (likewise), flock (not a cancellation point in glibc),
 * syscall(SYS_futex) (syscall() is not one), pthread_mutex_lock and its
 * timed forms, pthread_rwlock_*, pthread_barrier_wait (not cancellation
 * points by POSIX).
 *
 * A second pass sends the cancel while the holder still runs, holding its
 * tokens (it spins until the cancel was sent), before it makes the call:
 * the call acts on the pending cancel at its entry. The same checks hold,
 * except the proof of release (the holder may never block).
 *
 * Each case runs in a child process (a crash or hang names its case); `prog
 * NAME` runs the cases whose name contains NAME, `prog --list` lists them,
 * `prog [--pending] --one NAME` runs exactly one in this process.
 */
#include "check.h"

#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(fault_cancel_T);
static struct lwkt_token S = LWKT_TOKEN_INITIALIZER(fault_cancel_S);

struct fc;
struct fc_case {
    const char *name;
    void (*setup)(struct fc *);            /* main thread, before the holder */
    void (*block)(struct fc *);            /* holder, holding T, S, T: must block */
    void (*on_cleanup)(struct fc *);       /* holder's cleanup handler, first */
    void (*teardown)(struct fc *);         /* main thread, after the join */
    int keep; /* cleanup handler does not release: thread exit must */
};

struct fc {
    const struct fc_case *c;
    int fd[4];
    pid_t child;
    int ctl[2]; /* a helper process waits on ctl[0] until we close ctl[1] */
    long v[4];
    char path[128];
    pthread_mutex_t m;
    pthread_cond_t cv;
    sem_t sem;
    pthread_t other;
    atomic_int armed, returned, cleanups, cnt_t, cnt_s, excl_t, cancel_sent;
};

static struct fc F;

/* Second pass: the cancel is already pending when the holder makes the
 * call (it spins, holding its tokens, until pthread_cancel was sent), so
 * the call acts on it at its entry, around the hook's release. */
static int pending;
static const char *mode_name = "blocked";

/* Per case: the holder must block within this, the case's process must end
 * within FC_DEADLINE_S + 5 (its watchdog), and is killed after + 8: with 57
 * cases, one hung case still reports itself before the runner's 60 s kill. */
#define FC_DEADLINE_S 8
/* A case's process exits with this when the system lacks what it needs. */
#define FC_SKIPPED 77

#define FCHECK(cond)                                                             \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: [%s, %s] %s (errno %d)\n", __FILE__,    \
                    __LINE__, F.c->name, mode_name, #cond, errno);               \
            fflush(stderr);                                                      \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

static void block_failed(const char *call, long r) {
    fprintf(stderr, "FAIL [%s]: %s returned %ld (errno %d) instead of blocking\n", F.c->name,
            call, r, errno);
    _exit(1);
}
#define MUST_BLOCK(call, expr)                                                   \
    do {                                                                         \
        long _r = (long)(expr);                                                  \
        block_failed(call, _r);                                                  \
    } while (0)

static const struct timespec far_ts = {1000, 0};
static struct timespec abs_far(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += 1000;
    return ts;
}

/* ---- set-ups ---------------------------------------------------------- */

static void s_pipe(struct fc *f) { FCHECK(pipe(f->fd) == 0); }

static void s_full_pipe(struct fc *f) {
    FCHECK(pipe(f->fd) == 0);
    int fl = fcntl(f->fd[1], F_GETFL);
    FCHECK(fcntl(f->fd[1], F_SETFL, fl | O_NONBLOCK) == 0);
    static char junk[4096];
    while (write(f->fd[1], junk, sizeof junk) > 0) {
    }
    while (write(f->fd[1], junk, 1) > 0) {
    }
    FCHECK(errno == EAGAIN);
    FCHECK(fcntl(f->fd[1], F_SETFL, fl) == 0);
}

static void s_sockpair(struct fc *f) { FCHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, f->fd) == 0); }

static void s_full_sock(struct fc *f) {
    s_sockpair(f);
    static char junk[4096];
    while (send(f->fd[0], junk, sizeof junk, MSG_DONTWAIT) > 0) {
    }
    while (send(f->fd[0], junk, 1, MSG_DONTWAIT) > 0) {
    }
    FCHECK(errno == EAGAIN);
}

static void s_listen(struct fc *f) {
    f->fd[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    FCHECK(f->fd[0] >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    /* abstract address: nothing to clean up */
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "lwkt_fault_cancel_%d", (int)getpid());
    FCHECK(bind(f->fd[0], (struct sockaddr *)&a, sizeof a) == 0);
    FCHECK(listen(f->fd[0], 0) == 0);
}

/* A listener whose backlog (0) is full: the next blocking connect sleeps
 * until it is accepted (Unix stream sockets wait for the peer). */
static void s_full_backlog(struct fc *f) {
    s_listen(f);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "lwkt_fault_cancel_%d", (int)getpid());
    f->fd[1] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    FCHECK(connect(f->fd[1], (struct sockaddr *)&a, sizeof a) == 0);
    f->fd[2] = socket(AF_UNIX, SOCK_STREAM, 0);
    FCHECK(f->fd[2] >= 0);
}

static void s_epoll(struct fc *f) {
    s_pipe(f);
    f->fd[2] = epoll_create1(0);
    FCHECK(f->fd[2] >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    FCHECK(epoll_ctl(f->fd[2], EPOLL_CTL_ADD, f->fd[0], &ev) == 0);
}

/* A child process that exits only when ctl[1] is closed. */
static void s_child(struct fc *f) {
    FCHECK(pipe(f->ctl) == 0);
    f->child = fork();
    FCHECK(f->child >= 0);
    if (f->child == 0) {
        char c;
        close(f->ctl[1]);
        while (read(f->ctl[0], &c, 1) != 0) {
        }
        _exit(0);
    }
    close(f->ctl[0]);
}
static void t_child(struct fc *f) {
    close(f->ctl[1]);
    int st;
    FCHECK(waitpid(f->child, &st, 0) == f->child);
    FCHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* A child process that holds a write lock (fcntl) on a file, until told. */
static void s_locked_file(struct fc *f) {
    snprintf(f->path, sizeof f->path, "/tmp/lwkt_fault_cancel_%d", (int)getpid());
    f->fd[0] = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    FCHECK(f->fd[0] >= 0);
    int ready[2];
    FCHECK(pipe(ready) == 0 && pipe(f->ctl) == 0);
    f->child = fork();
    FCHECK(f->child >= 0);
    if (f->child == 0) {
        char c;
        struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(f->fd[0], F_SETLK, &l) != 0)
            _exit(3);
        if (write(ready[1], "r", 1) != 1)
            _exit(4);
        close(f->ctl[1]);
        while (read(f->ctl[0], &c, 1) != 0) {
        }
        _exit(0);
    }
    close(f->ctl[0]);
    close(ready[1]);
    char c;
    FCHECK(read(ready[0], &c, 1) == 1);
    close(ready[0]);
}
static void t_locked_file(struct fc *f) {
    t_child(f);
    unlink(f->path);
}

static void s_fifo(struct fc *f) {
    snprintf(f->path, sizeof f->path, "/tmp/lwkt_fault_cancel_fifo_%d", (int)getpid());
    unlink(f->path);
    FCHECK(mkfifo(f->path, 0600) == 0);
}
static void t_unlink(struct fc *f) { unlink(f->path); }

static void s_msgq(struct fc *f) {
    f->v[0] = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    FCHECK(f->v[0] >= 0);
}
static void s_full_msgq(struct fc *f) {
    s_msgq(f);
    struct {
        long type;
        char text[1024];
    } msg = {1, {0}};
    while (msgsnd((int)f->v[0], &msg, sizeof msg.text, IPC_NOWAIT) == 0) {
    }
    FCHECK(errno == EAGAIN);
}
static void t_msgq(struct fc *f) { msgctl((int)f->v[0], IPC_RMID, NULL); }

static void s_mq(struct fc *f) {
    snprintf(f->path, sizeof f->path, "/lwkt_fault_cancel_%d", (int)getpid());
    mq_unlink(f->path);
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 16};
    f->v[0] = mq_open(f->path, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    if (f->v[0] < 0 && (errno == ENOSYS || errno == EACCES || errno == EPERM)) {
        printf("faults/cancel: [%s] skipped: no POSIX message queues here (%s)\n", f->c->name,
               strerror(errno));
        _exit(FC_SKIPPED);
    }
    FCHECK(f->v[0] >= 0);
}
static void s_full_mq(struct fc *f) {
    s_mq(f);
    FCHECK(mq_send((mqd_t)f->v[0], "x", 1, 0) == 0);
}
static void t_mq(struct fc *f) {
    mq_close((mqd_t)f->v[0]);
    mq_unlink(f->path);
}

static void s_cond(struct fc *f) {
    FCHECK(pthread_mutex_init(&f->m, NULL) == 0);
    FCHECK(pthread_cond_init(&f->cv, NULL) == 0);
}
static void c_unlock(struct fc *f) { FCHECK(pthread_mutex_unlock(&f->m) == 0); }
static void t_cond(struct fc *f) {
    /* The cancelled wait re-acquired the mutex; the cleanup released it. */
    FCHECK(pthread_mutex_trylock(&f->m) == 0);
    FCHECK(pthread_mutex_unlock(&f->m) == 0);
}

static void s_sem(struct fc *f) { FCHECK(sem_init(&f->sem, 0, 0) == 0); }

static void *never_exits(void *arg) {
    struct fc *f = arg;
    char c;
    while (read(f->fd[0], &c, 1) != 0) {
    }
    return NULL;
}
static void s_joinee(struct fc *f) {
    s_pipe(f);
    f->other = start_thread(never_exits, f);
}
static void t_joinee(struct fc *f) {
    close(f->fd[1]);
    f->fd[1] = -1;
    FCHECK(pthread_join(f->other, NULL) == 0);
}

static void s_sigusr1_blocked(struct fc *f) {
    (void)f; /* the holder blocks SIGUSR1 in its block function */
}

/* ---- the blocking calls ------------------------------------------------ */

static char buf[64];

static void b_read(struct fc *f) { MUST_BLOCK("read", read(f->fd[0], buf, 1)); }
static void b_readv(struct fc *f) {
    struct iovec iov = {buf, 1};
    MUST_BLOCK("readv", readv(f->fd[0], &iov, 1));
}
static void b_write(struct fc *f) { MUST_BLOCK("write", write(f->fd[1], buf, 1)); }
static void b_writev(struct fc *f) {
    struct iovec iov = {buf, 1};
    MUST_BLOCK("writev", writev(f->fd[1], &iov, 1));
}
static void b_recv(struct fc *f) { MUST_BLOCK("recv", recv(f->fd[0], buf, 1, 0)); }
static void b_recvfrom(struct fc *f) {
    MUST_BLOCK("recvfrom", recvfrom(f->fd[0], buf, 1, 0, NULL, NULL));
}
static void b_recvmsg(struct fc *f) {
    struct iovec iov = {buf, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    MUST_BLOCK("recvmsg", recvmsg(f->fd[0], &mh, 0));
}
static void b_recvmmsg(struct fc *f) {
    struct iovec iov = {buf, 1};
    struct mmsghdr mm = {.msg_hdr = {.msg_iov = &iov, .msg_iovlen = 1}};
    MUST_BLOCK("recvmmsg", recvmmsg(f->fd[0], &mm, 1, 0, NULL));
}
static void b_send(struct fc *f) { MUST_BLOCK("send", send(f->fd[0], buf, 1, 0)); }
static void b_sendto(struct fc *f) { MUST_BLOCK("sendto", sendto(f->fd[0], buf, 1, 0, NULL, 0)); }
static void b_sendmsg(struct fc *f) {
    struct iovec iov = {buf, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    MUST_BLOCK("sendmsg", sendmsg(f->fd[0], &mh, 0));
}
static void b_accept(struct fc *f) { MUST_BLOCK("accept", accept(f->fd[0], NULL, NULL)); }
static void b_accept4(struct fc *f) {
    MUST_BLOCK("accept4", accept4(f->fd[0], NULL, NULL, SOCK_CLOEXEC));
}
static void b_connect(struct fc *f) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "lwkt_fault_cancel_%d", (int)getpid());
    MUST_BLOCK("connect", connect(f->fd[2], (struct sockaddr *)&a, sizeof a));
}
static void b_poll(struct fc *f) {
    struct pollfd p = {.fd = f->fd[0], .events = POLLIN};
    MUST_BLOCK("poll", poll(&p, 1, -1));
}
static void b_ppoll(struct fc *f) {
    struct pollfd p = {.fd = f->fd[0], .events = POLLIN};
    MUST_BLOCK("ppoll", ppoll(&p, 1, NULL, NULL));
}
static void b_select(struct fc *f) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(f->fd[0], &r);
    MUST_BLOCK("select", select(f->fd[0] + 1, &r, NULL, NULL, NULL));
}
static void b_pselect(struct fc *f) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(f->fd[0], &r);
    MUST_BLOCK("pselect", pselect(f->fd[0] + 1, &r, NULL, NULL, NULL, NULL));
}
static void b_epoll_wait(struct fc *f) {
    struct epoll_event ev;
    MUST_BLOCK("epoll_wait", epoll_wait(f->fd[2], &ev, 1, -1));
}
static void b_epoll_pwait(struct fc *f) {
    struct epoll_event ev;
    MUST_BLOCK("epoll_pwait", epoll_pwait(f->fd[2], &ev, 1, -1, NULL));
}
static void b_epoll_pwait2(struct fc *f) {
    struct epoll_event ev;
    MUST_BLOCK("epoll_pwait2", epoll_pwait2(f->fd[2], &ev, 1, NULL, NULL));
}
static void b_nanosleep(struct fc *f) {
    (void)f;
    MUST_BLOCK("nanosleep", nanosleep(&far_ts, NULL));
}
static void b_clock_nanosleep(struct fc *f) {
    (void)f;
    MUST_BLOCK("clock_nanosleep", clock_nanosleep(CLOCK_MONOTONIC, 0, &far_ts, NULL));
}
static void b_clock_nanosleep_abs(struct fc *f) {
    (void)f;
    struct timespec ts = abs_far(CLOCK_REALTIME);
    MUST_BLOCK("clock_nanosleep", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL));
}
static void b_sleep(struct fc *f) {
    (void)f;
    MUST_BLOCK("sleep", sleep(1000));
}
static void b_usleep(struct fc *f) {
    (void)f;
    MUST_BLOCK("usleep", usleep(1000u * 1000u * 1000u));
}
static void b_pause(struct fc *f) {
    (void)f;
    MUST_BLOCK("pause", pause());
}
static void b_sigsuspend(struct fc *f) {
    (void)f;
    sigset_t none;
    sigemptyset(&none);
    MUST_BLOCK("sigsuspend", sigsuspend(&none));
}
static void block_sigusr1(sigset_t *s) {
    sigemptyset(s);
    sigaddset(s, SIGUSR1);
    FCHECK(pthread_sigmask(SIG_BLOCK, s, NULL) == 0);
}
static void b_sigwait(struct fc *f) {
    (void)f;
    sigset_t s;
    int sig;
    block_sigusr1(&s);
    MUST_BLOCK("sigwait", sigwait(&s, &sig));
}
static void b_sigwaitinfo(struct fc *f) {
    (void)f;
    sigset_t s;
    block_sigusr1(&s);
    MUST_BLOCK("sigwaitinfo", sigwaitinfo(&s, NULL));
}
static void b_sigtimedwait(struct fc *f) {
    (void)f;
    sigset_t s;
    block_sigusr1(&s);
    MUST_BLOCK("sigtimedwait", sigtimedwait(&s, NULL, &far_ts));
}
static void b_wait(struct fc *f) {
    (void)f;
    int st;
    MUST_BLOCK("wait", wait(&st));
}
static void b_waitpid(struct fc *f) {
    int st;
    MUST_BLOCK("waitpid", waitpid(f->child, &st, 0));
}
static void b_waitid(struct fc *f) {
    siginfo_t si;
    MUST_BLOCK("waitid", waitid(P_PID, (id_t)f->child, &si, WEXITED));
}
static void b_wait3(struct fc *f) {
    (void)f;
    int st;
    struct rusage ru;
    MUST_BLOCK("wait3", wait3(&st, 0, &ru));
}
static void b_wait4(struct fc *f) {
    int st;
    struct rusage ru;
    MUST_BLOCK("wait4", wait4(f->child, &st, 0, &ru));
}
static void b_msgrcv(struct fc *f) {
    struct {
        long type;
        char text[16];
    } msg;
    MUST_BLOCK("msgrcv", msgrcv((int)f->v[0], &msg, sizeof msg.text, 0, 0));
}
static void b_msgsnd(struct fc *f) {
    struct {
        long type;
        char text[1024];
    } msg = {1, {0}};
    MUST_BLOCK("msgsnd", msgsnd((int)f->v[0], &msg, sizeof msg.text, 0));
}
static void b_mq_receive(struct fc *f) {
    char m[16];
    MUST_BLOCK("mq_receive", mq_receive((mqd_t)f->v[0], m, sizeof m, NULL));
}
static void b_mq_timedreceive(struct fc *f) {
    char m[16];
    struct timespec ts = abs_far(CLOCK_REALTIME);
    MUST_BLOCK("mq_timedreceive", mq_timedreceive((mqd_t)f->v[0], m, sizeof m, NULL, &ts));
}
static void b_mq_send(struct fc *f) {
    MUST_BLOCK("mq_send", mq_send((mqd_t)f->v[0], "y", 1, 0));
}
static void b_mq_timedsend(struct fc *f) {
    struct timespec ts = abs_far(CLOCK_REALTIME);
    MUST_BLOCK("mq_timedsend", mq_timedsend((mqd_t)f->v[0], "y", 1, 0, &ts));
}
static void b_fcntl_setlkw(struct fc *f) {
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    MUST_BLOCK("fcntl(F_SETLKW)", fcntl(f->fd[0], F_SETLKW, &l));
}
static void b_fcntl_ofd_setlkw(struct fc *f) {
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    MUST_BLOCK("fcntl(F_OFD_SETLKW)", fcntl(f->fd[0], F_OFD_SETLKW, &l));
}
static void b_open_fifo(struct fc *f) { MUST_BLOCK("open", open(f->path, O_RDONLY)); }
static void b_openat_fifo(struct fc *f) {
    MUST_BLOCK("openat", openat(AT_FDCWD, f->path, O_WRONLY));
}
static void b_cond_wait(struct fc *f) {
    FCHECK(pthread_mutex_lock(&f->m) == 0);
    for (;;)
        pthread_cond_wait(&f->cv, &f->m); /* nobody signals; spurious: again */
}
static void b_cond_timedwait(struct fc *f) {
    struct timespec ts = abs_far(CLOCK_REALTIME);
    FCHECK(pthread_mutex_lock(&f->m) == 0);
    for (;;)
        FCHECK(pthread_cond_timedwait(&f->cv, &f->m, &ts) == 0);
}
static void b_cond_clockwait(struct fc *f) {
    struct timespec ts = abs_far(CLOCK_MONOTONIC);
    FCHECK(pthread_mutex_lock(&f->m) == 0);
    for (;;)
        FCHECK(pthread_cond_clockwait(&f->cv, &f->m, CLOCK_MONOTONIC, &ts) == 0);
}
static void b_join(struct fc *f) { MUST_BLOCK("pthread_join", pthread_join(f->other, NULL)); }
static void b_timedjoin(struct fc *f) {
    struct timespec ts = abs_far(CLOCK_REALTIME);
    MUST_BLOCK("pthread_timedjoin_np", pthread_timedjoin_np(f->other, NULL, &ts));
}
static void b_sem_wait(struct fc *f) { MUST_BLOCK("sem_wait", sem_wait(&f->sem)); }
static void b_sem_timedwait(struct fc *f) {
    struct timespec ts = abs_far(CLOCK_REALTIME);
    MUST_BLOCK("sem_timedwait", sem_timedwait(&f->sem, &ts));
}
static void b_sem_clockwait(struct fc *f) {
    struct timespec ts = abs_far(CLOCK_MONOTONIC);
    MUST_BLOCK("sem_clockwait", sem_clockwait(&f->sem, CLOCK_MONOTONIC, &ts));
}

static const struct fc_case cases[] = {
    {"read", s_pipe, b_read, NULL, NULL, 0},
    {"read/keep", s_pipe, b_read, NULL, NULL, 1},
    {"readv", s_pipe, b_readv, NULL, NULL, 0},
    {"write (full pipe)", s_full_pipe, b_write, NULL, NULL, 0},
    {"writev (full pipe)", s_full_pipe, b_writev, NULL, NULL, 0},
    {"recv", s_sockpair, b_recv, NULL, NULL, 0},
    {"recvfrom", s_sockpair, b_recvfrom, NULL, NULL, 0},
    {"recvmsg", s_sockpair, b_recvmsg, NULL, NULL, 0},
    {"recvmmsg", s_sockpair, b_recvmmsg, NULL, NULL, 0},
    {"send (full socket)", s_full_sock, b_send, NULL, NULL, 0},
    {"sendto (full socket)", s_full_sock, b_sendto, NULL, NULL, 0},
    {"sendmsg (full socket)", s_full_sock, b_sendmsg, NULL, NULL, 0},
    {"accept", s_listen, b_accept, NULL, NULL, 0},
    {"accept4", s_listen, b_accept4, NULL, NULL, 0},
    {"connect (full backlog)", s_full_backlog, b_connect, NULL, NULL, 0},
    {"poll", s_pipe, b_poll, NULL, NULL, 0},
    {"ppoll", s_pipe, b_ppoll, NULL, NULL, 0},
    {"select", s_pipe, b_select, NULL, NULL, 0},
    {"pselect", s_pipe, b_pselect, NULL, NULL, 0},
    {"epoll_wait", s_epoll, b_epoll_wait, NULL, NULL, 0},
    {"epoll_pwait", s_epoll, b_epoll_pwait, NULL, NULL, 0},
    {"epoll_pwait2", s_epoll, b_epoll_pwait2, NULL, NULL, 0},
    {"nanosleep", NULL, b_nanosleep, NULL, NULL, 0},
    {"nanosleep/keep", NULL, b_nanosleep, NULL, NULL, 1},
    {"clock_nanosleep", NULL, b_clock_nanosleep, NULL, NULL, 0},
    {"clock_nanosleep (absolute)", NULL, b_clock_nanosleep_abs, NULL, NULL, 0},
    {"sleep", NULL, b_sleep, NULL, NULL, 0},
    {"usleep", NULL, b_usleep, NULL, NULL, 0},
    {"pause", NULL, b_pause, NULL, NULL, 0},
    {"sigsuspend", NULL, b_sigsuspend, NULL, NULL, 0},
    {"sigwait", s_sigusr1_blocked, b_sigwait, NULL, NULL, 0},
    {"sigwaitinfo", s_sigusr1_blocked, b_sigwaitinfo, NULL, NULL, 0},
    {"sigtimedwait", s_sigusr1_blocked, b_sigtimedwait, NULL, NULL, 0},
    {"wait", s_child, b_wait, NULL, t_child, 0},
    {"waitpid", s_child, b_waitpid, NULL, t_child, 0},
    {"waitid", s_child, b_waitid, NULL, t_child, 0},
    {"wait3", s_child, b_wait3, NULL, t_child, 0},
    {"wait4", s_child, b_wait4, NULL, t_child, 0},
    {"msgrcv", s_msgq, b_msgrcv, NULL, t_msgq, 0},
    {"msgsnd (full queue)", s_full_msgq, b_msgsnd, NULL, t_msgq, 0},
    {"mq_receive", s_mq, b_mq_receive, NULL, t_mq, 0},
    {"mq_timedreceive", s_mq, b_mq_timedreceive, NULL, t_mq, 0},
    {"mq_send (full queue)", s_full_mq, b_mq_send, NULL, t_mq, 0},
    {"mq_timedsend (full queue)", s_full_mq, b_mq_timedsend, NULL, t_mq, 0},
    {"fcntl F_SETLKW", s_locked_file, b_fcntl_setlkw, NULL, t_locked_file, 0},
    {"fcntl F_OFD_SETLKW", s_locked_file, b_fcntl_ofd_setlkw, NULL, t_locked_file, 0},
    {"open (FIFO, no writer)", s_fifo, b_open_fifo, NULL, t_unlink, 0},
    {"openat (FIFO, no reader)", s_fifo, b_openat_fifo, NULL, t_unlink, 0},
    {"pthread_cond_wait", s_cond, b_cond_wait, c_unlock, t_cond, 0},
    {"pthread_cond_timedwait", s_cond, b_cond_timedwait, c_unlock, t_cond, 0},
    {"pthread_cond_clockwait", s_cond, b_cond_clockwait, c_unlock, t_cond, 0},
    {"pthread_cond_wait/keep", s_cond, b_cond_wait, c_unlock, t_cond, 1},
    {"pthread_join", s_joinee, b_join, NULL, t_joinee, 0},
    {"pthread_timedjoin_np", s_joinee, b_timedjoin, NULL, t_joinee, 0},
    {"sem_wait", s_sem, b_sem_wait, NULL, NULL, 0},
    {"sem_timedwait", s_sem, b_sem_timedwait, NULL, NULL, 0},
    {"sem_clockwait", s_sem, b_sem_clockwait, NULL, NULL, 0},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* ---- one case ---------------------------------------------------------- */

static void holder_cleanup(void *arg) {
    struct fc *f = arg;
    atomic_store(&f->cnt_t, lwkt_cnttoken(&T));
    atomic_store(&f->cnt_s, lwkt_cnttoken(&S));
    atomic_store(&f->excl_t, LWKT_TOKEN_HELD_EXCL(&T));
    if (f->c->on_cleanup)
        f->c->on_cleanup(f);
    if (!f->c->keep) {
        lwkt_reltoken(&T);
        lwkt_reltoken(&S);
        lwkt_reltoken(&T);
    }
    atomic_fetch_add(&f->cleanups, 1);
}

static void *holder(void *arg) {
    struct fc *f = arg;
    pthread_cleanup_push(holder_cleanup, f);
    lwkt_gettoken(&T);
    lwkt_gettoken_shared(&S);
    lwkt_gettoken(&T);
    atomic_store(&f->armed, 1);
    if (pending)
        SPIN_UNTIL(f->cancel_sent); /* spin: not a cancellation point */
    f->c->block(f);
    atomic_store(&f->returned, 1);
    pthread_cleanup_pop(0);
    return NULL;
}

static void run_case(const struct fc_case *c) {
    struct fc *f = &F;
    memset(f, 0, sizeof *f);
    f->c = c;
    for (int i = 0; i < 4; i++)
        f->fd[i] = -1;
    signal(SIGPIPE, SIG_IGN);
    if (c->setup)
        c->setup(f);
    pthread_t t = start_thread(holder, f);
    double end = now_s() + FC_DEADLINE_S;
    while (!atomic_load(&f->armed))
        FCHECK(now_s() < end);
    /* Both tokens can be taken only once the holder released them, i.e.
     * blocked. (Spin: the main thread holds nothing, but must not block
     * and so must not let time decide.) */
    for (; !pending;) {
        if (lwkt_trytoken(&T)) {
            if (lwkt_trytoken(&S)) {
                lwkt_reltoken(&S);
                lwkt_reltoken(&T);
                break;
            }
            lwkt_reltoken(&T);
        }
        FCHECK(!atomic_load(&f->returned));
        if (now_s() > end) {
            fprintf(stderr, "FAIL [%s]: the blocked holder did not release T and S\n", c->name);
            _exit(1);
        }
        sched_yield();
    }
    if (pending)
        FCHECK(!other_thread_can_take(&T, 0)); /* it holds T, spinning */
    FCHECK(pthread_cancel(t) == 0);
    atomic_store(&f->cancel_sent, 1);
    void *ret = join_thread(t);
    if (ret != PTHREAD_CANCELED) {
        fprintf(stderr, "FAIL [%s, %s]: the holder was not cancelled (returned %p)\n", c->name,
                mode_name, ret);
        _exit(1);
    }
    FCHECK(!atomic_load(&f->returned));
    FCHECK(atomic_load(&f->cleanups) == 1);
    int ct = atomic_load(&f->cnt_t), cs = atomic_load(&f->cnt_s), ex = atomic_load(&f->excl_t);
    if (!(ct == 2 && cs == 1 && ex) && !(ct == 0 && cs == 0 && !ex)) {
        fprintf(stderr,
                "FAIL [%s, %s]: in the cleanup handler the holder had T %d times (excl %d), "
                "S %d times: neither all its references back (T 2 excl, S 1) nor none\n",
                c->name, mode_name, ct, ex, cs);
        _exit(1);
    }
    ASSERT_NO_TOKENS_HELD();
    /* Free: another thread takes each exclusively, and so do we. */
    FCHECK(other_thread_can_take(&T, 0));
    FCHECK(other_thread_can_take(&S, 0));
    FCHECK(lwkt_trytoken(&T));
    FCHECK(lwkt_trytoken(&S));
    lwkt_reltoken(&S);
    lwkt_reltoken(&T);
    if (c->teardown)
        c->teardown(f);
}

static int run_in_child(const struct fc_case *c, char *self) {
    (void)self;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        start_watchdog(FC_DEADLINE_S + 5);
        run_case(c);
        _exit(0);
    }
    int st;
    double end = now_s() + FC_DEADLINE_S + 8;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        CHECK(r >= 0);
        if (r == pid)
            break;
        if (now_s() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fprintf(stderr, "FAIL [%s, %s]: hung (killed)\n", c->name, mode_name);
            return 0;
        }
        struct timespec ts = {0, 20 * 1000 * 1000}; /* polling a child: no token held */
        nanosleep(&ts, NULL);
    }
    if (WIFSIGNALED(st)) {
        fprintf(stderr, "FAIL [%s, %s]: the case's process was killed by signal %d\n",
                c->name, mode_name, WTERMSIG(st));
        return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == FC_SKIPPED)
        return 1; /* it said why */
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return 0; /* it said why */
    return 1;
}

int lwkt_test_main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NCASES; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--pending") == 0) { /* only the second pass */
        pending = 1;
        mode_name = "cancel pending at the call";
        argc--;
        argv++;
    }
    if (argc > 2 && strcmp(argv[1], "--one") == 0) {
        for (size_t i = 0; i < NCASES; i++)
            if (strcmp(cases[i].name, argv[2]) == 0) {
                start_watchdog(FC_DEADLINE_S + 5);
                run_case(&cases[i]);
                printf("faults/cancel: %s: ok\n", cases[i].name);
                return 0;
            }
        fprintf(stderr, "no case %s\n", argv[2]);
        return 1;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    int failed = 0, ran = 0, first = pending;
    for (pending = first; pending < 2; pending++) {
        mode_name = pending ? "cancel pending at the call" : "blocked";
        for (size_t i = 0; i < NCASES; i++) {
            if (only && !strstr(cases[i].name, only))
                continue;
            ran++;
            if (!run_in_child(&cases[i], argv[0]))
                failed++;
        }
    }
    printf("faults/cancel: %d cases, %d failed\n", ran, failed);
    return failed || !ran;
}
