/*
 * hooks/filelock.c: flock, fcntl(F_SETLKW), fcntl(F_OFD_SETLKW) (SPEC section
 * 4). flock and OFD locks conflict between two open file descriptions of
 * this process; classic POSIX locks belong to the process, so the
 * conflicting F_SETLK lock is held by a child that releases it (by exiting)
 * when the helper tells it to. Free locks and the non-waiting commands keep
 * the tokens, and fcntl's other commands pass their argument through.
 */
#include "hook_util.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>

static char path[96];

/* fd[0]: the holder's descriptor; fd[2]: another open file description. */
static void setup_file(hk_t *h) {
    h->fd[0] = open(path, O_RDWR | O_CREAT, 0600);
    h->fd[2] = open(path, O_RDWR);
    HCHECK(h, h->fd[0] >= 0 && h->fd[2] >= 0);
}
static void setup_flocked(hk_t *h) {
    setup_file(h);
    HCHECK_EQ(h, flock(h->fd[2], LOCK_EX), 0);
}
static void setup_ofd_locked(hk_t *h) {
    setup_file(h);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    HCHECK_EQ(h, fcntl(h->fd[2], F_OFD_SETLK, &fl), 0);
}

/* A child holds a POSIX write lock on bytes 0..9 until told to exit.
 * v[0]: its pid; fd[3]: write "x" to release it. */
static void setup_posix_locked(hk_t *h) {
    setup_file(h);
    int ready[2], go[2];
    HCHECK_EQ(h, pipe(ready), 0);
    HCHECK_EQ(h, pipe(go), 0);
    pid_t pid = fork();
    HCHECK(h, pid >= 0);
    if (pid == 0) {
        close(ready[0]);
        close(go[1]);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
        if (fcntl(h->fd[2], F_SETLK, &fl) != 0)
            _exit(98);
        if (write(ready[1], "L", 1) != 1)
            _exit(97);
        char c;
        ssize_t r = read(go[0], &c, 1);
        _exit(r == 1 ? 0 : 99);
    }
    close(ready[1]);
    close(go[0]);
    char c;
    HCHECK_EQ(h, read(ready[0], &c, 1), 1);
    close(ready[0]);
    h->v[0] = pid;
    h->fd[3] = go[1];
}
static void release_child(hk_t *h) { HCHECK_EQ(h, write(h->fd[3], "x", 1), 1); }
static void cleanup_child(hk_t *h) {
    hk_close_fds(h);
    int st;
    HCHECK_EQ(h, waitpid((pid_t)h->v[0], &st, 0), h->v[0]);
    HCHECK(h, WIFEXITED(st)); /* 0: told to go; 99: saw EOF (not told) */
}
static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }

static void unflock_other(hk_t *h) { HCHECK_EQ(h, flock(h->fd[2], LOCK_UN), 0); }
static void unlock_ofd_other(hk_t *h) {
    struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    HCHECK_EQ(h, fcntl(h->fd[2], F_OFD_SETLK, &fl), 0);
}

static long flock_ex(hk_t *h) { return flock(h->fd[0], LOCK_EX); }
static long flock_sh(hk_t *h) { return flock(h->fd[0], LOCK_SH); }
static long flock_ex_nb(hk_t *h) { return flock(h->fd[0], LOCK_EX | LOCK_NB); }
static long flock_un(hk_t *h) { return flock(h->fd[0], LOCK_UN); }
/* The holder's flock is held: the other description cannot take it. */
static void check_flocked(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, flock(h->fd[2], LOCK_EX | LOCK_NB), -1);
    HCHECK_EQ(h, errno, EWOULDBLOCK);
}

static long setlk(hk_t *h, int cmd, short type) {
    struct flock *fl = (struct flock *)h->buf;
    *fl = (struct flock){.l_type = type, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    return fcntl(h->fd[0], cmd, fl);
}
static long setlkw_wr(hk_t *h) { return setlk(h, F_SETLKW, F_WRLCK); }
static long setlkw_rd(hk_t *h) { return setlk(h, F_SETLKW, F_RDLCK); }
static long setlk_wr(hk_t *h) { return setlk(h, F_SETLK, F_WRLCK); }
static long ofd_setlkw_wr(hk_t *h) { return setlk(h, F_OFD_SETLKW, F_WRLCK); }
static long ofd_setlkw_rd(hk_t *h) { return setlk(h, F_OFD_SETLKW, F_RDLCK); }
static long ofd_setlk_wr(hk_t *h) { return setlk(h, F_OFD_SETLK, F_WRLCK); }
static long ofd_setlkw_unlock(hk_t *h) { return setlk(h, F_OFD_SETLKW, F_UNLCK); }

/* The holder's OFD lock is held: the other description is refused. */
static void check_ofd_locked(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    HCHECK_EQ(h, fcntl(h->fd[2], F_OFD_GETLK, &fl), 0);
    HCHECK(h, fl.l_type != F_UNLCK);
}
static void check_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
}
static void check_contended(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK(h, err == EAGAIN || err == EACCES);
}

/* fcntl commands that never wait: their argument passes through. */
static long fcntl_dupfd(hk_t *h) { return fcntl(h->fd[0], F_DUPFD_CLOEXEC, 100); }
static void check_dupfd(hk_t *h, long ret, int err) {
    HCHECK(h, ret >= 100);
    HCHECK_EQ(h, err, HK_SENTINEL);
    h->fd[4] = (int)ret;
    HCHECK(h, fcntl((int)ret, F_GETFD) & FD_CLOEXEC);
}
static long fcntl_setfl(hk_t *h) { return fcntl(h->fd[0], F_SETFL, O_NONBLOCK | O_APPEND); }
static void check_setfl(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    int fl = fcntl(h->fd[0], F_GETFL);
    HCHECK(h, (fl & O_NONBLOCK) && (fl & O_APPEND));
}
static long fcntl_getfl(hk_t *h) { return fcntl(h->fd[0], F_GETFL); }
static void check_getfl(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret & O_ACCMODE, O_RDWR);
    HCHECK_EQ(h, err, HK_SENTINEL);
}
static long fcntl_getlk(hk_t *h) { return setlk(h, F_GETLK, F_WRLCK); }
static void check_getlk_free(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, ((struct flock *)h->buf)->l_type, F_UNLCK);
}
static void check_getlk_child(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, ((struct flock *)h->buf)->l_type, F_WRLCK);
    HCHECK_EQ(h, ((struct flock *)h->buf)->l_pid, h->v[0]);
}
static long fcntl_ebadf(hk_t *h) {
    (void)h;
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    return fcntl(-1, F_SETLKW, &fl);
}

static const struct hk_case cases[] = {
    {"flock LOCK_EX contended", HK_BLOCK, .setup = setup_flocked, .call = flock_ex,
     .unblock = unflock_other, .check = check_flocked, .cleanup = hk_close_fds},
    {"flock LOCK_SH contended", HK_BLOCK, .setup = setup_flocked, .call = flock_sh,
     .unblock = unflock_other, .check = check_flocked, .cleanup = hk_close_fds},
    {"flock interrupted", HK_BLOCK, .setup = setup_flocked, .call = flock_ex,
     .unblock = interrupt, .check = check_eintr, .cleanup = hk_close_fds},
    {"flock free", HK_KEPT, .setup = setup_file, .call = flock_ex, .check = check_flocked,
     .cleanup = hk_close_fds},
    {"flock LOCK_NB contended", HK_KEPT, .setup = setup_flocked, .call = flock_ex_nb,
     .want = -1, .err = EWOULDBLOCK, .cleanup = hk_close_fds},
    {"flock LOCK_UN", HK_KEPT, .setup = setup_file, .call = flock_un, .want = 0,
     .cleanup = hk_close_fds},

    {"fcntl F_SETLKW write lock held by a child", HK_BLOCK, .setup = setup_posix_locked,
     .call = setlkw_wr, .unblock = release_child, .want = 0, .cleanup = cleanup_child},
    {"fcntl F_SETLKW read lock held by a child", HK_BLOCK, .setup = setup_posix_locked,
     .call = setlkw_rd, .unblock = release_child, .want = 0, .cleanup = cleanup_child},
    {"fcntl F_SETLKW interrupted", HK_BLOCK, .setup = setup_posix_locked, .call = setlkw_wr,
     .unblock = interrupt, .check = check_eintr, .cleanup = cleanup_child},
    {"fcntl F_SETLKW free", HK_KEPT, .setup = setup_file, .call = setlkw_wr, .want = 0,
     .cleanup = hk_close_fds},
    {"fcntl F_SETLK contended", HK_KEPT, .setup = setup_posix_locked, .call = setlk_wr,
     .check = check_contended, .cleanup = cleanup_child},
    {"fcntl F_GETLK sees the child's lock", HK_KEPT, .setup = setup_posix_locked,
     .call = fcntl_getlk, .check = check_getlk_child, .cleanup = cleanup_child},

    {"fcntl F_OFD_SETLKW write lock contended", HK_BLOCK, .setup = setup_ofd_locked,
     .call = ofd_setlkw_wr, .unblock = unlock_ofd_other, .check = check_ofd_locked,
     .cleanup = hk_close_fds},
    {"fcntl F_OFD_SETLKW read lock contended", HK_BLOCK, .setup = setup_ofd_locked,
     .call = ofd_setlkw_rd, .unblock = unlock_ofd_other, .check = check_ofd_locked,
     .cleanup = hk_close_fds},
    {"fcntl F_OFD_SETLKW free", HK_KEPT, .setup = setup_file, .call = ofd_setlkw_wr,
     .check = check_ofd_locked, .cleanup = hk_close_fds},
    {"fcntl F_OFD_SETLKW unlock", HK_KEPT, .setup = setup_file, .call = ofd_setlkw_unlock,
     .want = 0, .cleanup = hk_close_fds},
    {"fcntl F_OFD_SETLK contended", HK_KEPT, .setup = setup_ofd_locked, .call = ofd_setlk_wr,
     .check = check_contended, .cleanup = hk_close_fds},

    {"fcntl F_DUPFD_CLOEXEC (int argument)", HK_KEPT, .setup = setup_file,
     .call = fcntl_dupfd, .check = check_dupfd, .cleanup = hk_close_fds},
    {"fcntl F_SETFL", HK_KEPT, .setup = setup_file, .call = fcntl_setfl, .check = check_setfl,
     .cleanup = hk_close_fds},
    {"fcntl F_GETFL", HK_KEPT, .setup = setup_file, .call = fcntl_getfl, .check = check_getfl,
     .cleanup = hk_close_fds},
    {"fcntl F_GETLK free", HK_KEPT, .setup = setup_file, .call = fcntl_getlk,
     .check = check_getlk_free, .cleanup = hk_close_fds},
    {"fcntl F_SETLKW EBADF", HK_ANY, .call = fcntl_ebadf, .want = -1, .err = EBADF},
};

int lwkt_test_main(int argc, char **argv) {
    snprintf(path, sizeof path, "/tmp/lwkt-hook-filelock-%d", (int)getpid());
    hk_install_handler(SIGUSR1);
    int rc = HK_RUN(cases, argc, argv);
    unlink(path); /* absent when the cases run did not create it */
    return rc;
}
