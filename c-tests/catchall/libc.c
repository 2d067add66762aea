/*
 * catchall/libc.c: the blocking calls that libc makes inside itself
 * (SPEC section 4), each reached through libc's own handle (dlsym), so that no
 * exported-symbol hook sees it and only the catch-all can: the read under
 * fgets, fread, getline and scanf on a pipe whose data arrives later, the
 * write under printf and fflush to a full pipe, the nanosleep under sleep
 * and usleep, the futex waits inside sem_wait, pthread_cond_wait,
 * pthread_join and pthread_barrier_wait, the wait inside system and pclose;
 * more of libc's own waits (mutex, priority-inheritance mutex, rwlock,
 * timed condition and semaphore waits, poll, waitpid, recv); and the same
 * system calls made by a raw `syscall` instruction in the program's own
 * code (as static or Go code makes them).
 *
 * HK_BLOCK (hook_util.h): the holder takes T exclusively twice and S
 * shared, makes the call, which blocks; a helper takes T and S (possible
 * only because the catch-all released them), records it, releases them and
 * only then unblocks the holder (writes the pipe, posts, signals, lets the
 * child exit). The call must return with the takeover recorded, T and S
 * held again in the same modes and counts, the loss reported by
 * lwkt_lost_since(), and the call's normal result and errno.
 * HK_TIMED: a sleep that ends by itself released and retook the tokens.
 * HK_KEPT: the same calls, when they would not block, keep the tokens (S3):
 * a trap alone must not release.
 *
 * `prog NAME-SUBSTRING` runs only the matching cases.
 */
#include "catchall_util.h"

#include <semaphore.h>
#include <stdio_ext.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/socket.h>

/* ---- stdio reads on a pipe ------------------------------------------- */

/* fd[0], fd[1]: the pipe; p[0]: a FILE reading fd[0]. */
static void setup_pipe(hk_t *h) {
    HCHECK_EQ(h, pipe(h->fd), 0);
}
static void setup_read_file(hk_t *h) {
    setup_pipe(h);
    FILE *f = fdopen(h->fd[0], "r");
    HCHECK(h, f != NULL);
    h->p[0] = f;
}
static void cleanup_read_file(hk_t *h) {
    fclose(h->p[0]); /* closes fd[0] */
    h->fd[0] = -1;
    hk_close_fds(h);
    free(h->p[1]);
}
static void write_hello(hk_t *h) { hk_write_all(h, h->fd[1], "hello\n", 6); }
/* For the HK_KEPT cases: the data is there before the call. */
static void setup_read_file_ready(hk_t *h) {
    setup_read_file(h);
    hk_write_all(h, h->fd[1], "hello\n", 6);
}

static long fgets_call(hk_t *h) {
    char *r = CA(fgets)(h->buf, sizeof h->buf, h->p[0]);
    return r == h->buf;
}
static long fread_call(hk_t *h) {
    return (long)CA(fread)(h->buf, 1, 6, h->p[0]);
}
static long getline_call(hk_t *h) {
    char *line = NULL;
    size_t n = 0;
    ssize_t r = CA(getline)(&line, &n, h->p[0]);
    h->p[1] = line;
    if (line)
        snprintf(h->buf, sizeof h->buf, "%s", line);
    return r;
}
static void check_hello(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, h->c->want);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "hello\n", 6) == 0);
}

/* scanf reads stdin: the pipe becomes fd 0 for the call (fd[2] keeps the
 * runner's stdin). */
static void setup_stdin_pipe(hk_t *h) {
    setup_pipe(h);
    h->fd[2] = dup(0);
    HCHECK(h, h->fd[2] >= 0);
    HCHECK_EQ(h, dup2(h->fd[0], 0), 0);
    __fpurge(stdin);
    clearerr(stdin);
}
static void cleanup_stdin_pipe(hk_t *h) {
    __fpurge(stdin);
    clearerr(stdin);
    HCHECK_EQ(h, dup2(h->fd[2], 0), 0);
    hk_close_fds(h);
}
static void write_number(hk_t *h) { hk_write_all(h, h->fd[1], "4711\n", 5); }
static long scanf_call(hk_t *h) {
    int v = -1;
    int r = ((int (*)(const char *, ...))ca_sym("scanf"))("%d", &v);
    h->v[0] = v;
    return r;
}
static void check_number(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, h->v[0], 4711);
}

/* ---- stdio writes to a full pipe --------------------------------------- */

#define MSG "a message from under printf\n"
#define MSG_LEN (sizeof MSG - 1)

/* The pipe is full (v[0] bytes); the helper drains it and the message. */
static void setup_full_pipe(hk_t *h) {
    setup_pipe(h);
    h->v[0] = (long)ca_fill_pipe(h->fd[1]);
}
static void drain(hk_t *h) {
    char junk[512];
    size_t left = (size_t)h->v[0];
    while (left) {
        ssize_t r = read(h->fd[0], junk, left < sizeof junk ? left : sizeof junk);
        HCHECK(h, r > 0);
        left -= (size_t)r;
    }
    hk_read_all(h, h->fd[0], h->buf, MSG_LEN);
}
static void check_drained(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, h->c->want);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, MSG, MSG_LEN) == 0);
}

/* printf to stdout, which is the full pipe for the call (fd[2] keeps the
 * runner's stdout). stdout is unbuffered in both harnesses; the fflush
 * covers a buffered one. */
static void setup_stdout_full(hk_t *h) {
    fflush(stdout);
    setup_full_pipe(h);
    h->fd[2] = dup(1);
    HCHECK(h, h->fd[2] >= 0);
    HCHECK_EQ(h, dup2(h->fd[1], 1), 1);
}
static void cleanup_stdout(hk_t *h) {
    HCHECK_EQ(h, dup2(h->fd[2], 1), 1);
    hk_close_fds(h);
}
static long printf_call(hk_t *h) {
    (void)h;
    int r = CA(printf)("%s", MSG);
    if (CA(fflush)(stdout) != 0)
        return -1;
    return r;
}

/* fflush of a fully buffered FILE on the full pipe (p[0]). */
static void setup_file_full(hk_t *h) {
    setup_full_pipe(h);
    FILE *f = fdopen(h->fd[1], "w");
    HCHECK(h, f != NULL);
    HCHECK_EQ(h, setvbuf(f, NULL, _IOFBF, 4096), 0);
    h->p[0] = f;
}
static void cleanup_file(hk_t *h) {
    fclose(h->p[0]);
    h->fd[1] = -1;
    hk_close_fds(h);
}
static long fflush_call(hk_t *h) {
    HCHECK_EQ(h, CA(fputs)(MSG, h->p[0]) >= 0, 1); /* buffered: no write */
    return CA(fflush)(h->p[0]);
}

/* ---- sleeps ------------------------------------------------------------ */

static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }

static long sleep_call(hk_t *h) { (void)h; return (long)CA(sleep)(30); }
static void check_sleep_interrupted(hk_t *h, long ret, int err) {
    (void)err; /* libc's sleep leaves nanosleep's EINTR, or not */
    HCHECK(h, ret >= 1 && ret <= 30);
}
static long usleep_call(hk_t *h) { (void)h; return CA(usleep)(30u * 1000 * 1000); }
static long sleep_1(hk_t *h) { (void)h; return (long)CA(sleep)(1); }
static long usleep_short(hk_t *h) { (void)h; return CA(usleep)(20 * 1000); }
static long sleep_0(hk_t *h) { (void)h; return (long)CA(sleep)(0); }

/* ---- futex waits inside libc ------------------------------------------ */

static sem_t sem;
static void setup_sem(hk_t *h) { HCHECK_EQ(h, sem_init(&sem, 0, 0), 0); }
static void cleanup_sem(hk_t *h) { HCHECK_EQ(h, sem_destroy(&sem), 0); }
static void post(hk_t *h) { HCHECK_EQ(h, sem_post(&sem), 0); }
static long sem_wait_call(hk_t *h) { (void)h; return CA(sem_wait)(&sem); }
static void check_sem_taken(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    int v = -1;
    HCHECK_EQ(h, sem_getvalue(&sem, &v), 0);
    HCHECK_EQ(h, v, 0);
}

static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int cv_flag;
static void setup_cv(hk_t *h) { (void)h; cv_flag = 0; }
static void signal_cv(hk_t *h) {
    HCHECK_EQ(h, pthread_mutex_lock(&mtx), 0);
    cv_flag = 1;
    HCHECK_EQ(h, pthread_cond_signal(&cv), 0);
    HCHECK_EQ(h, pthread_mutex_unlock(&mtx), 0);
}
static long cond_wait_call(hk_t *h) {
    int (*lock)(pthread_mutex_t *) = CA(pthread_mutex_lock);
    int (*unlock)(pthread_mutex_t *) = CA(pthread_mutex_unlock);
    int (*wait)(pthread_cond_t *, pthread_mutex_t *) =
        (int (*)(pthread_cond_t *, pthread_mutex_t *))ca_vsym("pthread_cond_wait", "GLIBC_2.3.2");
    HCHECK_EQ(h, lock(&mtx), 0);
    int r = 0;
    while (!cv_flag && r == 0)
        r = wait(&cv, &mtx);
    h->v[0] = cv_flag;
    HCHECK_EQ(h, unlock(&mtx), 0);
    return r;
}
static void check_cv(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, h->v[0], 1);
}

/* pthread_join of a thread that ends when the helper posts. */
static sem_t joinee_go;
static void *joinee(void *arg) {
    (void)arg;
    while (sem_wait(&joinee_go) != 0) {
    }
    return (void *)(intptr_t)4242;
}
static pthread_t joinee_thread;
static void setup_joinee(hk_t *h) {
    HCHECK_EQ(h, sem_init(&joinee_go, 0, 0), 0);
    joinee_thread = hk_spawn(joinee, NULL);
}
static void release_joinee(hk_t *h) { HCHECK_EQ(h, sem_post(&joinee_go), 0); }
static long join_call(hk_t *h) {
    void *ret = NULL;
    int r = CA(pthread_join)(joinee_thread, &ret);
    h->v[0] = (long)(intptr_t)ret;
    return r;
}
static void check_joined(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, h->v[0], 4242);
    HCHECK_EQ(h, sem_destroy(&joinee_go), 0);
}

static pthread_barrier_t barrier;
static void setup_barrier(hk_t *h) { HCHECK_EQ(h, pthread_barrier_init(&barrier, NULL, 2), 0); }
static void arrive(hk_t *h) {
    int r = pthread_barrier_wait(&barrier);
    HCHECK(h, r == 0 || r == PTHREAD_BARRIER_SERIAL_THREAD);
    h->v[1] = r;
}
static long barrier_call(hk_t *h) { (void)h; return CA(pthread_barrier_wait)(&barrier); }
static void check_barrier(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, ret == 0 || ret == PTHREAD_BARRIER_SERIAL_THREAD);
    /* Exactly one of the two is the serial thread. */
    HCHECK(h, (ret == PTHREAD_BARRIER_SERIAL_THREAD) != (h->v[1] == PTHREAD_BARRIER_SERIAL_THREAD));
    HCHECK_EQ(h, pthread_barrier_destroy(&barrier), 0);
}

/* ---- system and pclose: the child exits once the helper writes --------- */

/* Only the read end goes to the child: should the test die, the child's
 * read sees end of file and it exits instead of lingering. */
static void setup_child_pipe(hk_t *h) {
    HCHECK_EQ(h, pipe2(h->fd, O_CLOEXEC), 0);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFD, 0), 0);
}

static long system_call(hk_t *h) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "read x <&%d; exit 7", h->fd[0]);
    return CA(system)(cmd);
}
static void check_exit7(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, WIFEXITED(ret));
    HCHECK_EQ(h, WEXITSTATUS(ret), 7);
}
static void cleanup_pipe(hk_t *h) { hk_close_fds(h); }

static void setup_popen(hk_t *h) {
    setup_child_pipe(h);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "read x <&%d; exit 3", h->fd[0]);
    FILE *f = CA(popen)(cmd, "r");
    HCHECK(h, f != NULL);
    h->p[0] = f;
}
static long pclose_call(hk_t *h) { return CA(pclose)(h->p[0]); }
static void check_exit3(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, WIFEXITED(ret));
    HCHECK_EQ(h, WEXITSTATUS(ret), 3);
}

/* ---- more waits inside libc (beyond SPEC section 4's examples) ----------------- */

/* A mutex the helper holds (pre) and unlocks (unblock). */
static pthread_mutex_t held_mtx;
static void setup_mutex_kind(hk_t *h, int protocol) {
    pthread_mutexattr_t a;
    HCHECK_EQ(h, pthread_mutexattr_init(&a), 0);
    HCHECK_EQ(h, pthread_mutexattr_setprotocol(&a, protocol), 0);
    HCHECK_EQ(h, pthread_mutex_init(&held_mtx, &a), 0);
    HCHECK_EQ(h, pthread_mutexattr_destroy(&a), 0);
}
static void setup_mutex(hk_t *h) { setup_mutex_kind(h, PTHREAD_PRIO_NONE); }
static void setup_pi_mutex(hk_t *h) { setup_mutex_kind(h, PTHREAD_PRIO_INHERIT); }
static void lock_it(hk_t *h) { HCHECK_EQ(h, pthread_mutex_lock(&held_mtx), 0); }
static void unlock_it(hk_t *h) { HCHECK_EQ(h, pthread_mutex_unlock(&held_mtx), 0); }
static long mutex_lock_call(hk_t *h) {
    int r = CA(pthread_mutex_lock)(&held_mtx);
    if (r == 0)
        HCHECK_EQ(h, CA(pthread_mutex_unlock)(&held_mtx), 0);
    return r;
}
static void cleanup_mutex(hk_t *h) { HCHECK_EQ(h, pthread_mutex_destroy(&held_mtx), 0); }

static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static void rdlock_it(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_rdlock(&rw), 0); }
static void rwunlock_it(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_unlock(&rw), 0); }
static long wrlock_call(hk_t *h) {
    int r = CA(pthread_rwlock_wrlock)(&rw);
    if (r == 0)
        HCHECK_EQ(h, CA(pthread_rwlock_unlock)(&rw), 0);
    return r;
}

static long cond_timedwait_call(hk_t *h) {
    int (*wait)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *) =
        (int (*)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *))ca_vsym(
            "pthread_cond_timedwait", "GLIBC_2.3.2");
    struct timespec ts = hk_abs(CLOCK_REALTIME, HK_LONG_MS);
    HCHECK_EQ(h, CA(pthread_mutex_lock)(&mtx), 0);
    int r = 0;
    while (!cv_flag && r == 0)
        r = wait(&cv, &mtx, &ts);
    h->v[0] = cv_flag;
    HCHECK_EQ(h, CA(pthread_mutex_unlock)(&mtx), 0);
    return r;
}
static long sem_timedwait_call(hk_t *h) {
    (void)h;
    struct timespec ts = hk_abs(CLOCK_REALTIME, HK_LONG_MS);
    return CA(sem_timedwait)(&sem, &ts);
}

static long poll_call(hk_t *h) {
    struct pollfd p = {.fd = h->fd[0], .events = POLLIN};
    int r = CA(poll)(&p, 1, -1);
    h->v[0] = p.revents;
    return r;
}
static void check_polled(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, h->v[0] & POLLIN);
}

/* waitpid for a child that exits once the helper writes. */
static void setup_child(hk_t *h) {
    setup_child_pipe(h);
    pid_t pid = fork();
    HCHECK(h, pid >= 0);
    if (pid == 0) {
        char c;
        close(h->fd[1]); /* end of file, should the test die */
        _exit(read(h->fd[0], &c, 1) == 1 ? 11 : 12);
    }
    h->v[1] = pid;
}
static long waitpid_call(hk_t *h) {
    int st = 0;
    pid_t r = CA(waitpid)((pid_t)h->v[1], &st, 0);
    h->v[0] = st;
    return r == (pid_t)h->v[1] ? 0 : -1;
}
static void check_waited(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, WIFEXITED(h->v[0]));
    HCHECK_EQ(h, WEXITSTATUS(h->v[0]), 11);
}

/* recv on a socketpair. */
static void setup_socketpair(hk_t *h) {
    HCHECK_EQ(h, socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->fd), 0);
}
static long recv_call(hk_t *h) { return CA(recv)(h->fd[0], h->buf, 6, MSG_WAITALL); }

/* ---- raw syscall instructions ----------------------------------------- */

static long raw_read_call(hk_t *h) {
    return ca_raw3(SYS_read, h->fd[0], (long)h->buf, 6);
}
static void check_raw_hello(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 6);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "hello\n", 6) == 0);
}
static void setup_pipe_ready(hk_t *h) {
    setup_pipe(h);
    hk_write_all(h, h->fd[1], "hello\n", 6);
}

static _Atomic uint32_t fword;
static void setup_fword(hk_t *h) { (void)h; atomic_store(&fword, 0); }
static void wake_fword(hk_t *h) {
    (void)h;
    atomic_store(&fword, 1);
    syscall(SYS_futex, &fword, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
/* One raw FUTEX_WAIT on 0: 0 when woken, -EAGAIN when the helper's store
 * came between the release and the wait (both normal results). */
static long raw_futex_call(hk_t *h) {
    (void)h;
    return ca_raw4(SYS_futex, (long)&fword, FUTEX_WAIT_PRIVATE, 0, 0);
}
static void check_raw_futex(hk_t *h, long ret, int err) {
    HCHECK(h, ret == 0 || ret == -EAGAIN);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, atomic_load(&fword), 1);
}
/* The word is not the expected value: the kernel returns at once. */
static void setup_fword_1(hk_t *h) { (void)h; atomic_store(&fword, 1); }
static long raw_nanosleep_call(hk_t *h) {
    (void)h;
    struct timespec ts = {30, 0};
    return ca_raw3(SYS_nanosleep, (long)&ts, 0, 0);
}
static long raw_nanosleep_short(hk_t *h) {
    (void)h;
    struct timespec ts = {0, 20 * 1000 * 1000};
    return ca_raw3(SYS_nanosleep, (long)&ts, 0, 0);
}

#define STDIO_READ(name, call_fn, n)                                              \
    {name, HK_BLOCK, .setup = setup_read_file, .call = call_fn, .unblock = write_hello, \
     .check = check_hello, .cleanup = cleanup_read_file, .want = n}

static const struct hk_case cases[] = {
    /* The read under stdio. */
    STDIO_READ("fgets: read, data later", fgets_call, 1),
    STDIO_READ("fread: read, data later", fread_call, 6),
    STDIO_READ("getline: read, data later", getline_call, 6),
    {"scanf: read of stdin, data later", HK_BLOCK, .setup = setup_stdin_pipe,
     .call = scanf_call, .unblock = write_number, .check = check_number,
     .cleanup = cleanup_stdin_pipe},
    {"fgets: data ready, keeps", HK_KEPT, .setup = setup_read_file_ready, .call = fgets_call,
     .check = check_hello, .cleanup = cleanup_read_file, .want = 1},
    /* The write under stdio. */
    {"printf: write to a full pipe", HK_BLOCK, .setup = setup_stdout_full, .call = printf_call,
     .unblock = drain, .check = check_drained, .cleanup = cleanup_stdout, .want = MSG_LEN},
    {"fflush: write to a full pipe", HK_BLOCK, .setup = setup_file_full, .call = fflush_call,
     .unblock = drain, .check = check_drained, .cleanup = cleanup_file, .want = 0},
    /* The nanosleep under sleep and usleep. */
    {"sleep: interrupted", HK_BLOCK, .call = sleep_call, .unblock = interrupt,
     .check = check_sleep_interrupted},
    {"usleep: interrupted", HK_BLOCK, .call = usleep_call, .unblock = interrupt, .want = -1,
     .err = EINTR},
    {"sleep: 1 s, ends", HK_TIMED, .call = sleep_1, .want = 0},
    {"usleep: 20 ms, ends", HK_TIMED, .call = usleep_short, .want = 0},
    {"sleep: 0, keeps", HK_KEPT, .call = sleep_0, .want = 0},
    /* The futex waits. */
    {"sem_wait: posted", HK_BLOCK, .setup = setup_sem, .call = sem_wait_call, .unblock = post,
     .check = check_sem_taken, .cleanup = cleanup_sem},
    {"pthread_cond_wait: signalled", HK_BLOCK, .setup = setup_cv, .call = cond_wait_call,
     .unblock = signal_cv, .check = check_cv},
    {"pthread_join: the thread ends", HK_BLOCK, .setup = setup_joinee, .call = join_call,
     .unblock = release_joinee, .check = check_joined},
    {"pthread_barrier_wait: the other arrives", HK_BLOCK, .setup = setup_barrier,
     .call = barrier_call, .unblock = arrive, .check = check_barrier},
    /* The waits inside system and pclose. */
    {"system: the child exits", HK_BLOCK, .setup = setup_child_pipe, .call = system_call,
     .unblock = write_hello, .check = check_exit7, .cleanup = cleanup_pipe},
    {"pclose: the child exits", HK_BLOCK, .setup = setup_popen, .call = pclose_call,
     .unblock = write_hello, .check = check_exit3, .cleanup = cleanup_pipe},
    /* More waits inside libc. */
    {"pthread_mutex_lock: contended", HK_BLOCK, .setup = setup_mutex, .pre = lock_it,
     .call = mutex_lock_call, .unblock = unlock_it, .want = 0, .cleanup = cleanup_mutex},
    {"pthread_mutex_lock: contended, priority inheritance", HK_BLOCK, .setup = setup_pi_mutex,
     .pre = lock_it, .call = mutex_lock_call, .unblock = unlock_it, .want = 0,
     .cleanup = cleanup_mutex},
    {"pthread_rwlock_wrlock: read-locked", HK_BLOCK, .pre = rdlock_it, .call = wrlock_call,
     .unblock = rwunlock_it, .want = 0},
    {"pthread_cond_timedwait: signalled", HK_BLOCK, .setup = setup_cv,
     .call = cond_timedwait_call, .unblock = signal_cv, .check = check_cv},
    {"sem_timedwait: posted", HK_BLOCK, .setup = setup_sem, .call = sem_timedwait_call,
     .unblock = post, .check = check_sem_taken, .cleanup = cleanup_sem},
    {"poll: data later", HK_BLOCK, .setup = setup_pipe, .call = poll_call, .unblock = write_hello,
     .check = check_polled, .cleanup = cleanup_pipe},
    {"waitpid: the child exits", HK_BLOCK, .setup = setup_child, .call = waitpid_call,
     .unblock = write_hello, .check = check_waited, .cleanup = cleanup_pipe},
    {"recv: data later", HK_BLOCK, .setup = setup_socketpair, .call = recv_call,
     .unblock = write_hello, .check = check_raw_hello, .cleanup = cleanup_pipe},
    /* Raw syscall instructions in the program's own code. */
    {"raw syscall read: data later", HK_BLOCK, .setup = setup_pipe, .call = raw_read_call,
     .unblock = write_hello, .check = check_raw_hello, .cleanup = cleanup_pipe},
    {"raw syscall read: data ready, keeps", HK_KEPT, .setup = setup_pipe_ready,
     .call = raw_read_call, .check = check_raw_hello, .cleanup = cleanup_pipe},
    {"raw syscall futex wait: woken", HK_BLOCK, .setup = setup_fword, .call = raw_futex_call,
     .unblock = wake_fword, .check = check_raw_futex},
    {"raw syscall futex wait: value differs, keeps", HK_KEPT, .setup = setup_fword_1,
     .call = raw_futex_call, .want = -EAGAIN},
    {"raw syscall nanosleep: interrupted", HK_BLOCK, .call = raw_nanosleep_call,
     .unblock = interrupt, .want = -EINTR},
    {"raw syscall nanosleep: 20 ms, ends", HK_TIMED, .call = raw_nanosleep_short, .want = 0},
};

int lwkt_test_main(int argc, char **argv) {
    ca_require(__FILE__);
    hk_install_handler(SIGUSR1);
    return HK_RUN(cases, argc, argv);
}
