/*
 * faults/eintr.c: S2 ("the call's result and errno are
 * exactly libc's"). A signal interrupts a token holder blocked in a hooked
 * call, with a handler installed without SA_RESTART and with it.
 *
 * The holder takes T exclusively, S shared and T again and makes the call.
 * The helper waits until it can take T and S (so the holder released them),
 * gives them back, waits until the holder sleeps in the kernel (its state in
 * /proc is S), and sends SIGUSR1. Then, as libc does (signal(7)):
 *  - EINTR: the call returns its interrupted result (-1/EINTR; nanosleep's
 *    remaining time; sleep's unslept seconds; clock_nanosleep's EINTR as
 *    its return value) -- the helper resends while it has not returned,
 *    should the first signal have come just before the sleep;
 *  - RESTART (SA_RESTART, or calls that resume after a handler whatever the
 *    flag, like pthread_cond_wait and pthread_join): the handler runs, the
 *    call goes back to sleep without returning (the helper sees the holder
 *    asleep again, the tokens free again), and completes normally when the
 *    helper then provides what it waits for (data, a post, a signal).
 * Either way the holder returns holding T (twice, exclusively) and S
 * (shared) again, and its handler ran. Every case also runs with no token
 * held, where only libc's result is checked, to validate the expectation.
 */
#include "check.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/msg.h>
#include <sys/select.h>
#include <mqueue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(eintr_T);
static struct lwkt_token S = LWKT_TOKEN_INITIALIZER(eintr_S);

enum outcome { EINTR_, RESTART };

struct ec;
struct ec_case {
    const char *name;
    enum outcome without, with; /* without SA_RESTART, with it */
    void (*setup)(struct ec *);
    long (*call)(struct ec *);
    void (*finish)(struct ec *); /* helper, RESTART: let the call complete */
    void (*check)(struct ec *, enum outcome, long ret, int err);
    void (*teardown)(struct ec *);
};

struct ec {
    const struct ec_case *c;
    const char *variant;
    int tokens;
    pthread_t holder;
    atomic_int tid, armed, returned, pred;
    int fd[4];
    pid_t child;
    long v[4];
    struct timespec rem;
    pthread_mutex_t m;
    pthread_cond_t cv;
    sem_t sem;
    pthread_t other;
    char buf[16];
    char path[96];
    const char *skip; /* set by `setup`: this system cannot run the case */
};

static struct ec E;
static atomic_int handled;

#define ECHECK(cond)                                                             \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: [%s, %s] %s (errno %d)\n", __FILE__,    \
                    __LINE__, E.c->name, E.variant, #cond, errno);               \
            fflush(stderr);                                                      \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

static void on_usr1(int sig) {
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

/* The thread's state letter in /proc (S: asleep in the kernel). */
static char thread_state(int tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY);
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

static void wait_asleep(struct ec *e) {
    double end = now_s() + TEST_DEADLINE_S;
    while (thread_state(atomic_load(&e->tid)) != 'S') {
        ECHECK(!atomic_load(&e->returned));
        ECHECK(now_s() < end);
        sched_yield();
    }
}

/* Both tokens can be taken: the holder released them (it is blocked). */
static void wait_released(struct ec *e) {
    double end = now_s() + TEST_DEADLINE_S;
    for (;;) {
        if (lwkt_trytoken(&T)) {
            int s = lwkt_trytoken(&S);
            if (s)
                lwkt_reltoken(&S);
            lwkt_reltoken(&T);
            if (s)
                return;
        }
        ECHECK(!atomic_load(&e->returned));
        ECHECK(now_s() < end);
        sched_yield();
    }
}

/* ---- set-ups and calls ---------------------------------------------------- */

static void s_pipe(struct ec *e) { ECHECK(pipe(e->fd) == 0); }
static void s_sock(struct ec *e) { ECHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, e->fd) == 0); }
static void t_fds(struct ec *e) {
    for (int i = 0; i < 4; i++)
        if (e->fd[i] >= 0)
            close(e->fd[i]);
}
static void f_write(struct ec *e) { ECHECK(write(e->fd[1], "d", 1) == 1); }
static void c_data(struct ec *e, enum outcome o, long ret, int err) {
    if (o == EINTR_) {
        ECHECK(ret == -1 && err == EINTR);
    } else {
        ECHECK(ret == 1);
        ECHECK(e->buf[0] == 'd');
    }
}
static long k_read(struct ec *e) { return read(e->fd[0], e->buf, 1); }
static long k_recv(struct ec *e) { return recv(e->fd[0], e->buf, 1, 0); }

static long k_poll(struct ec *e) {
    struct pollfd p = {.fd = e->fd[0], .events = POLLIN};
    return poll(&p, 1, 100 * 1000);
}
static long k_select(struct ec *e) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(e->fd[0], &r);
    struct timeval tv = {100, 0};
    return select(e->fd[0] + 1, &r, NULL, NULL, &tv);
}
static void s_epoll(struct ec *e) {
    s_pipe(e);
    e->fd[2] = epoll_create1(0);
    ECHECK(e->fd[2] >= 0);
    struct epoll_event ev = {.events = EPOLLIN};
    ECHECK(epoll_ctl(e->fd[2], EPOLL_CTL_ADD, e->fd[0], &ev) == 0);
}
static long k_epoll_wait(struct ec *e) {
    struct epoll_event ev;
    return epoll_wait(e->fd[2], &ev, 1, 100 * 1000);
}
static void c_eintr(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    ECHECK(o == EINTR_);
    ECHECK(ret == -1 && err == EINTR);
}

static double rem_s(struct ec *e) { return e->rem.tv_sec + e->rem.tv_nsec / 1e9; }
static long k_nanosleep(struct ec *e) {
    struct timespec ts = {100, 0};
    return nanosleep(&ts, &e->rem);
}
static void c_rem(struct ec *e, enum outcome o, long ret, int err) {
    ECHECK(o == EINTR_);
    ECHECK(ret == -1 && err == EINTR);
    /* The unslept time: most of the 100 s. (Not capped at 100 s: the
     * kernel counts from the timer's expiry including its slack, 50 us by
     * default, so a sleep interrupted at once has a little more left.) */
    ECHECK(e->rem.tv_sec >= 50 && rem_s(e) <= 100.001);
    ECHECK(e->rem.tv_nsec >= 0 && e->rem.tv_nsec < 1000000000);
}
static long k_clock_nanosleep(struct ec *e) {
    struct timespec ts = {100, 0};
    return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &e->rem);
}
static void c_clock_rem(struct ec *e, enum outcome o, long ret, int err) {
    ECHECK(o == EINTR_);
    ECHECK(ret == EINTR);       /* the error is the return value ... */
    ECHECK(err == EDOM);        /* ... errno is left alone (sentinel) */
    ECHECK(e->rem.tv_sec >= 50 && rem_s(e) <= 100.001);
}
static long k_sleep(struct ec *e) {
    (void)e;
    return (long)sleep(100);
}
static void c_sleep(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    (void)err;
    ECHECK(o == EINTR_);
    ECHECK(ret >= 50 && ret <= 100); /* unslept seconds */
}
static long k_usleep(struct ec *e) {
    (void)e;
    return usleep(100u * 1000u * 1000u);
}
static long k_pause(struct ec *e) {
    (void)e;
    return pause();
}

static void s_sem(struct ec *e) { ECHECK(sem_init(&e->sem, 0, 0) == 0); }
static long k_sem_wait(struct ec *e) { return sem_wait(&e->sem); }
static void f_post(struct ec *e) { ECHECK(sem_post(&e->sem) == 0); }
static void c_sem(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    if (o == EINTR_)
        ECHECK(ret == -1 && err == EINTR);
    else
        ECHECK(ret == 0);
}
static long k_sem_timedwait(struct ec *e) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 100;
    return sem_timedwait(&e->sem, &ts);
}

static void s_cond(struct ec *e) {
    ECHECK(pthread_mutex_init(&e->m, NULL) == 0);
    ECHECK(pthread_cond_init(&e->cv, NULL) == 0);
}
static long k_cond_wait(struct ec *e) {
    ECHECK(pthread_mutex_lock(&e->m) == 0);
    long r = 0;
    while (!atomic_load(&e->pred) && r == 0)
        r = pthread_cond_wait(&e->cv, &e->m); /* 0, also when spurious */
    ECHECK(pthread_mutex_unlock(&e->m) == 0);
    return r;
}
static void f_cond(struct ec *e) {
    ECHECK(pthread_mutex_lock(&e->m) == 0);
    atomic_store(&e->pred, 1);
    ECHECK(pthread_cond_signal(&e->cv) == 0);
    ECHECK(pthread_mutex_unlock(&e->m) == 0);
}
static void c_zero(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    (void)err;
    ECHECK(o == RESTART);
    ECHECK(ret == 0);
}

static void s_child(struct ec *e) {
    s_pipe(e);
    e->child = fork();
    ECHECK(e->child >= 0);
    if (e->child == 0) {
        char c;
        close(e->fd[1]);
        while (read(e->fd[0], &c, 1) != 0) {
        }
        _exit(7);
    }
    close(e->fd[0]);
    e->fd[0] = -1;
}
static long k_waitpid(struct ec *e) {
    int st = 0;
    long r = waitpid(e->child, &st, 0);
    e->v[0] = st;
    return r;
}
static void f_child(struct ec *e) {
    close(e->fd[1]);
    e->fd[1] = -1;
}
static void c_waitpid(struct ec *e, enum outcome o, long ret, int err) {
    if (o == EINTR_) {
        ECHECK(ret == -1 && err == EINTR);
        f_child(e);
        int st;
        ECHECK(waitpid(e->child, &st, 0) == e->child);
    } else {
        ECHECK(ret == e->child);
        ECHECK(WIFEXITED(e->v[0]) && WEXITSTATUS(e->v[0]) == 7);
    }
}

static void s_msgq(struct ec *e) {
    e->v[1] = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    ECHECK(e->v[1] >= 0);
}
static long k_msgrcv(struct ec *e) {
    struct {
        long type;
        char text[8];
    } m;
    return msgrcv((int)e->v[1], &m, sizeof m.text, 0, 0);
}
static void t_msgq(struct ec *e) { msgctl((int)e->v[1], IPC_RMID, NULL); }

static void s_flock(struct ec *e) {
    char path[] = "/tmp/lwkt_fault_eintr_XXXXXX";
    e->fd[0] = mkstemp(path);
    ECHECK(e->fd[0] >= 0);
    e->fd[1] = open(path, O_RDWR); /* another open file description */
    ECHECK(e->fd[1] >= 0);
    unlink(path);
    ECHECK(flock(e->fd[0], LOCK_EX) == 0);
}
static long k_flock(struct ec *e) { return flock(e->fd[1], LOCK_EX); }
static void f_unflock(struct ec *e) { ECHECK(flock(e->fd[0], LOCK_UN) == 0); }
static void c_lock(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    if (o == EINTR_) {
        ECHECK(ret == -1 && err == EINTR);
    } else {
        ECHECK(ret == 0);
    }
}
static void s_ofd(struct ec *e) {
    char path[] = "/tmp/lwkt_fault_eintr_XXXXXX";
    e->fd[0] = mkstemp(path);
    ECHECK(e->fd[0] >= 0);
    e->fd[1] = open(path, O_RDWR);
    ECHECK(e->fd[1] >= 0);
    unlink(path);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    ECHECK(fcntl(e->fd[0], F_OFD_SETLK, &l) == 0);
}
static long k_ofd(struct ec *e) {
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(e->fd[1], F_OFD_SETLKW, &l);
}
static void f_unofd(struct ec *e) {
    struct flock l = {.l_type = F_UNLCK, .l_whence = SEEK_SET};
    ECHECK(fcntl(e->fd[0], F_OFD_SETLK, &l) == 0);
}

static void *joinee(void *arg) {
    struct ec *e = arg;
    char c;
    while (read(e->fd[0], &c, 1) != 0) {
    }
    return (void *)0x1234;
}
static void s_join(struct ec *e) {
    s_pipe(e);
    e->other = start_thread(joinee, e);
}
static long k_join(struct ec *e) {
    void *r = NULL;
    long e2 = pthread_join(e->other, &r);
    e->v[2] = (long)r;
    return e2;
}
static void c_join(struct ec *e, enum outcome o, long ret, int err) {
    (void)err;
    ECHECK(o == RESTART);
    ECHECK(ret == 0);
    ECHECK(e->v[2] == 0x1234);
}

/* write to a full pipe: restarted; finishing drains it. */
static void s_full_pipe(struct ec *e) {
    s_pipe(e);
    int fl = fcntl(e->fd[1], F_GETFL);
    ECHECK(fcntl(e->fd[1], F_SETFL, fl | O_NONBLOCK) == 0);
    static char junk[4096];
    while (write(e->fd[1], junk, sizeof junk) > 0) {
    }
    while (write(e->fd[1], junk, 1) > 0) {
    }
    ECHECK(errno == EAGAIN);
    ECHECK(fcntl(e->fd[1], F_SETFL, fl) == 0);
}
static long k_write(struct ec *e) { return write(e->fd[1], "w", 1); }
static void f_drain(struct ec *e) {
    static char junk[4096];
    ECHECK(read(e->fd[0], junk, sizeof junk) > 0);
}
static void c_one(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    if (o == EINTR_)
        ECHECK(ret == -1 && err == EINTR);
    else
        ECHECK(ret == 1);
}

/* accept on a Unix listener: restarted; finishing connects. */
static void s_listen(struct ec *e) {
    e->fd[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    ECHECK(e->fd[0] >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "lwkt_fault_eintr_%d", (int)getpid());
    ECHECK(bind(e->fd[0], (struct sockaddr *)&a, sizeof a) == 0);
    ECHECK(listen(e->fd[0], 4) == 0);
}
static long k_accept(struct ec *e) {
    long r = accept(e->fd[0], NULL, NULL);
    if (r >= 0)
        e->fd[2] = (int)r;
    return r;
}
static void f_connect(struct ec *e) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "lwkt_fault_eintr_%d", (int)getpid());
    e->fd[1] = socket(AF_UNIX, SOCK_STREAM, 0);
    ECHECK(e->fd[1] >= 0);
    ECHECK(connect(e->fd[1], (struct sockaddr *)&a, sizeof a) == 0);
}
static void c_fd(struct ec *e, enum outcome o, long ret, int err) {
    (void)e;
    if (o == EINTR_)
        ECHECK(ret == -1 && err == EINTR);
    else
        ECHECK(ret >= 0);
}

/* open of a FIFO without a writer: restarted; finishing opens the writer. */
static void s_fifo(struct ec *e) {
    snprintf(e->path, sizeof e->path, "/tmp/lwkt_fault_eintr_fifo_%d", (int)getpid());
    unlink(e->path);
    ECHECK(mkfifo(e->path, 0600) == 0);
}
static long k_open_fifo(struct ec *e) {
    long r = open(e->path, O_RDONLY);
    if (r >= 0)
        e->fd[2] = (int)r;
    return r;
}
static void f_open_writer(struct ec *e) {
    e->fd[1] = open(e->path, O_WRONLY);
    ECHECK(e->fd[1] >= 0);
}
static void t_fifo(struct ec *e) {
    t_fds(e);
    unlink(e->path);
}

/* mq_receive on an empty queue: restarted; finishing sends. */
static void s_mq(struct ec *e) {
    snprintf(e->path, sizeof e->path, "/lwkt_fault_eintr_%d", (int)getpid());
    mq_unlink(e->path);
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 16};
    e->v[3] = mq_open(e->path, O_RDWR | O_CREAT | O_EXCL, 0600, &a);
    if (e->v[3] < 0 && (errno == ENOSYS || errno == EACCES || errno == EPERM)) {
        e->skip = "no POSIX message queues here";
        return;
    }
    ECHECK(e->v[3] >= 0);
}
static long k_mq_receive(struct ec *e) {
    char m[16];
    return mq_receive((mqd_t)e->v[3], m, sizeof m, NULL);
}
static void f_mq_send(struct ec *e) { ECHECK(mq_send((mqd_t)e->v[3], "q", 1, 0) == 0); }
static void t_mq(struct ec *e) {
    mq_close((mqd_t)e->v[3]);
    mq_unlink(e->path);
}

/* ppoll: never restarted. sigtimedwait for a blocked SIGUSR2: never. */
static long k_ppoll(struct ec *e) {
    struct pollfd p = {.fd = e->fd[0], .events = POLLIN};
    struct timespec ts = {100, 0};
    return ppoll(&p, 1, &ts, NULL);
}
static void s_block_usr2(struct ec *e) {
    (void)e;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    ECHECK(pthread_sigmask(SIG_BLOCK, &s, NULL) == 0);
}
static long k_sigtimedwait(struct ec *e) {
    (void)e;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    struct timespec ts = {100, 0};
    return sigtimedwait(&s, NULL, &ts);
}
static void t_unblock_usr2(struct ec *e) {
    (void)e;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    ECHECK(pthread_sigmask(SIG_UNBLOCK, &s, NULL) == 0);
}

/* pthread_mutex_lock of a mutex the helper holds: resumes after the
 * handler (it never fails with EINTR); finishing unlocks. */
static void s_mutex_held(struct ec *e) {
    ECHECK(pthread_mutex_init(&e->m, NULL) == 0);
    e->v[2] = 0;
}
static void *mutex_holder(void *arg) {
    struct ec *e = arg;
    ECHECK(pthread_mutex_lock(&e->m) == 0);
    atomic_store(&e->pred, 1);
    while (atomic_load(&e->pred) != 2)
        sched_yield();
    ECHECK(pthread_mutex_unlock(&e->m) == 0);
    return NULL;
}
static void s_mutex(struct ec *e) {
    s_mutex_held(e);
    e->other = start_thread(mutex_holder, e);
    SPIN_UNTIL_COND(atomic_load(&e->pred) == 1);
}
static long k_mutex_lock(struct ec *e) {
    long r = pthread_mutex_lock(&e->m);
    if (r == 0)
        ECHECK(pthread_mutex_unlock(&e->m) == 0);
    return r;
}
static void f_mutex_unlock(struct ec *e) { atomic_store(&e->pred, 2); }
static void t_mutex(struct ec *e) { join_thread(e->other); }

static const struct ec_case cases[] = {
    /* signal(7): read/recv on a pipe or socket, wait*, flock, F_SETLKW are
     * restarted under SA_RESTART; poll, select, epoll, the sleeps, pause,
     * sem_timedwait, msgrcv never are; condition waits and joins resume.
     * sem_wait: signal(7) lists it as never restarted, but glibc's sem_wait
     * is a futex wait without a timeout, which the kernel restarts under
     * SA_RESTART (checked by the runs without tokens: that is libc's).
     * Restarted too: write to a full pipe, accept, open of a FIFO,
     * mq_receive; never: ppoll, sigtimedwait; mutexes resume. */
    {"read (pipe)", EINTR_, RESTART, s_pipe, k_read, f_write, c_data, t_fds},
    {"recv (socket)", EINTR_, RESTART, s_sock, k_recv, f_write, c_data, t_fds},
    {"waitpid", EINTR_, RESTART, s_child, k_waitpid, f_child, c_waitpid, t_fds},
    {"flock", EINTR_, RESTART, s_flock, k_flock, f_unflock, c_lock, t_fds},
    {"fcntl F_OFD_SETLKW", EINTR_, RESTART, s_ofd, k_ofd, f_unofd, c_lock, t_fds},
    {"poll", EINTR_, EINTR_, s_pipe, k_poll, NULL, c_eintr, t_fds},
    {"select", EINTR_, EINTR_, s_pipe, k_select, NULL, c_eintr, t_fds},
    {"epoll_wait", EINTR_, EINTR_, s_epoll, k_epoll_wait, NULL, c_eintr, t_fds},
    {"nanosleep", EINTR_, EINTR_, NULL, k_nanosleep, NULL, c_rem, NULL},
    {"clock_nanosleep", EINTR_, EINTR_, NULL, k_clock_nanosleep, NULL, c_clock_rem, NULL},
    {"sleep", EINTR_, EINTR_, NULL, k_sleep, NULL, c_sleep, NULL},
    {"usleep", EINTR_, EINTR_, NULL, k_usleep, NULL, c_eintr, NULL},
    {"pause", EINTR_, EINTR_, NULL, k_pause, NULL, c_eintr, NULL},
    {"sem_wait", EINTR_, RESTART, s_sem, k_sem_wait, f_post, c_sem, NULL},
    {"sem_timedwait", EINTR_, EINTR_, s_sem, k_sem_timedwait, NULL, c_eintr, NULL},
    {"msgrcv", EINTR_, EINTR_, s_msgq, k_msgrcv, NULL, c_eintr, t_msgq},
    {"pthread_cond_wait", RESTART, RESTART, s_cond, k_cond_wait, f_cond, c_zero, NULL},
    {"pthread_join", RESTART, RESTART, s_join, k_join, f_child, c_join, t_fds},
    {"write (full pipe)", EINTR_, RESTART, s_full_pipe, k_write, f_drain, c_one, t_fds},
    {"accept", EINTR_, RESTART, s_listen, k_accept, f_connect, c_fd, t_fds},
    {"open (FIFO)", EINTR_, RESTART, s_fifo, k_open_fifo, f_open_writer, c_fd, t_fifo},
    {"mq_receive", EINTR_, RESTART, s_mq, k_mq_receive, f_mq_send, c_one, t_mq},
    {"ppoll", EINTR_, EINTR_, s_pipe, k_ppoll, NULL, c_eintr, t_fds},
    {"sigtimedwait", EINTR_, EINTR_, s_block_usr2, k_sigtimedwait, NULL, c_eintr, t_unblock_usr2},
    {"pthread_mutex_lock", RESTART, RESTART, s_mutex, k_mutex_lock, f_mutex_unlock, c_zero, t_mutex},
};
#define NCASES (sizeof cases / sizeof cases[0])

static enum outcome cur_outcome;

static void *helper(void *arg) {
    struct ec *e = arg;
    SPIN_UNTIL(e->armed);
    if (e->tokens)
        wait_released(e);
    wait_asleep(e);
    if (cur_outcome == EINTR_) {
        /* Resend while it has not returned: a signal that came after the
         * hook released but before the kernel slept interrupts nothing. */
        double end = now_s() + TEST_DEADLINE_S;
        while (!atomic_load(&e->returned)) {
            ECHECK(pthread_kill(e->holder, SIGUSR1) == 0);
            double next = now_s() + 1.0;
            while (!atomic_load(&e->returned) && now_s() < next)
                sched_yield();
            ECHECK(now_s() < end);
        }
    } else {
        ECHECK(pthread_kill(e->holder, SIGUSR1) == 0);
        SPIN_UNTIL_COND(atomic_load(&handled) > 0);
        /* Back asleep in the same call, its tokens released again. */
        wait_asleep(e);
        if (e->tokens)
            wait_released(e);
        ECHECK(!atomic_load(&e->returned));
        e->c->finish(e);
    }
    return NULL;
}

static void run_one(const struct ec_case *c, int restart, int tokens) {
    struct ec *e = &E;
    memset(e, 0, sizeof *e);
    e->c = c;
    e->tokens = tokens;
    e->variant = restart ? (tokens ? "SA_RESTART, tokens" : "SA_RESTART, no token")
                         : (tokens ? "no SA_RESTART, tokens" : "no SA_RESTART, no token");
    for (int i = 0; i < 4; i++)
        e->fd[i] = -1;
    e->holder = pthread_self();
    atomic_store(&e->tid, (int)gettid());
    cur_outcome = restart ? c->with : c->without;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = restart ? SA_RESTART : 0;
    ECHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    atomic_store(&handled, 0);
    if (c->setup)
        c->setup(e);
    if (e->skip) {
        printf("faults/eintr: [%s, %s] skipped: %s\n", c->name, e->variant, e->skip);
        return;
    }
    pthread_t h = start_thread(helper, e);
    if (tokens) {
        lwkt_gettoken(&T);
        lwkt_gettoken_shared(&S);
        lwkt_gettoken(&T);
    }
    atomic_store(&e->armed, 1);
    errno = EDOM;
    long ret = c->call(e);
    int err = errno;
    atomic_store(&e->returned, 1);
    if (tokens) {
        ECHECK(lwkt_cnttoken(&T) == 2);
        ECHECK(LWKT_TOKEN_HELD_EXCL(&T));
        ECHECK(lwkt_cnttoken(&S) == 1);
        ECHECK(!LWKT_TOKEN_HELD_EXCL(&S));
        lwkt_reltoken(&T);
        lwkt_reltoken(&S);
        lwkt_reltoken(&T);
    }
    ASSERT_NO_TOKENS_HELD();
    join_thread(h);
    ECHECK(atomic_load(&handled) > 0);
    if (c->check)
        c->check(e, cur_outcome, ret, err);
    if (c->teardown)
        c->teardown(e);
}

int lwkt_test_main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    start_watchdog(50);
    int ran = 0;
    double t0 = now_s();
    for (size_t i = 0; i < NCASES; i++) {
        if (only && !strstr(cases[i].name, only))
            continue;
        for (int restart = 0; restart < 2; restart++) {
            run_one(&cases[i], restart, 0);
            run_one(&cases[i], restart, 1);
        }
        ran++;
    }
    printf("faults/eintr: %d cases passed in %.1f s\n", ran, now_s() - t0);
    return ran == 0;
}
