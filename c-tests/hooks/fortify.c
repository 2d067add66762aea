/*
 * hooks/fortify.c: the _FORTIFY_SOURCE entry points of SPEC section 4's calls.
 *
 * A program built with -O2 -D_FORTIFY_SOURCE=2 (the default of several
 * distributions' compilers) calls __read_chk instead of read when the
 * buffer's size is known but the count is not a constant, __open_2 instead
 * of open when it passes no mode, and so on: exported glibc symbols, the
 * same blocking calls (inside them libc makes the system call itself: the
 * catch-all of SPEC section 4 has to catch it). This file calls them
 * directly, as such a program does, so that the test does not depend on
 * the compiler's defaults.
 */
#include "hook_util.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/mman.h>

/* glibc's fortified entry points (LSB), declared as the headers do. */
extern ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
extern ssize_t __pread_chk(int fd, void *buf, size_t n, off_t off, size_t buflen);
extern ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
extern ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                              struct sockaddr *addr, socklen_t *addrlen);
extern int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);
extern int __ppoll_chk(struct pollfd *fds, nfds_t n, const struct timespec *ts,
                       const sigset_t *mask, size_t fdslen);
extern int __open_2(const char *path, int flags);
extern int __openat_2(int dirfd, const char *path, int flags);

static char dir[64];

static void setup_pipe(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
}
static void setup_pair(hk_t *h) {
    int sv[2];
    HCHECK_EQ(h, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    h->fd[0] = sv[0];
    h->fd[1] = sv[1];
}
static void write_hello(hk_t *h) { hk_write_all(h, h->fd[1], "hello", 5); }

static void check_hello(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "hello", 5) == 0);
}
static void check_ready(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, ((struct pollfd *)h->buf)->revents, POLLIN);
}

static long read_chk(hk_t *h) { return __read_chk(h->fd[0], h->buf, 64, sizeof h->buf); }
static long recv_chk(hk_t *h) { return __recv_chk(h->fd[0], h->buf, 64, sizeof h->buf, 0); }
static long recvfrom_chk(hk_t *h) {
    return __recvfrom_chk(h->fd[0], h->buf, 64, sizeof h->buf, 0, NULL, NULL);
}
static long poll_chk(hk_t *h) {
    struct pollfd *p = (struct pollfd *)h->buf;
    *p = (struct pollfd){.fd = h->fd[0], .events = POLLIN};
    return __poll_chk(p, 1, -1, sizeof(struct pollfd));
}
static long ppoll_chk(hk_t *h) {
    struct pollfd *p = (struct pollfd *)h->buf;
    *p = (struct pollfd){.fd = h->fd[0], .events = POLLIN};
    return __ppoll_chk(p, 1, NULL, NULL, sizeof(struct pollfd));
}

/* pread of an evicted page: it waits for the disk (see hooks/fdio.c). */
static void setup_evicted_file(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/file", dir);
    h->fd[0] = open(h->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    HCHECK(h, h->fd[0] >= 0);
    char block[4096];
    memset(block, 'p', sizeof block);
    for (int i = 0; i < 4; i++)
        HCHECK_EQ(h, write(h->fd[0], block, sizeof block), (long)sizeof block);
    HCHECK_EQ(h, fdatasync(h->fd[0]), 0);
    HCHECK_EQ(h, posix_fadvise(h->fd[0], 0, 0, POSIX_FADV_DONTNEED), 0);
    /* mincore, not a read probe: a RWF_NOWAIT read starts readahead. */
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, h->fd[0], 4096);
    HCHECK(h, m != MAP_FAILED);
    unsigned char v = 1;
    HCHECK_EQ(h, mincore(m, 4096, &v), 0);
    munmap(m, 4096);
    if (v & 1)
        hk_lower_to_any(h, "this file system keeps the page cached (tmpfs?)");
}
static void cleanup_file(hk_t *h) {
    hk_close_fds(h);
    unlink(h->path);
}
static long pread_chk(hk_t *h) { return __pread_chk(h->fd[0], h->buf, 10, 4096, sizeof h->buf); }
static void check_pread(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 10);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "pppppppppp", 10) == 0);
}

static void setup_fifo(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/fifo", dir);
    unlink(h->path);
    HCHECK_EQ(h, mkfifo(h->path, 0600), 0);
}
static void open_writer(hk_t *h) {
    h->fd[1] = open(h->path, O_WRONLY);
    HCHECK(h, h->fd[1] >= 0);
}
static long open_2(hk_t *h) { return __open_2(h->path, O_RDONLY); }
static long openat_2(hk_t *h) { return __openat_2(AT_FDCWD, h->path, O_RDONLY); }
static void check_fd(hk_t *h, long ret, int err) {
    HCHECK(h, ret >= 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    h->fd[0] = (int)ret;
}

static const struct hk_case cases[] = {
    {"__read_chk of an empty pipe", HK_BLOCK, .setup = setup_pipe, .call = read_chk,
     .unblock = write_hello, .check = check_hello, .cleanup = hk_close_fds},
    {"__recv_chk on an empty socket", HK_BLOCK, .setup = setup_pair, .call = recv_chk,
     .unblock = write_hello, .check = check_hello, .cleanup = hk_close_fds},
    {"__recvfrom_chk on an empty socket", HK_BLOCK, .setup = setup_pair, .call = recvfrom_chk,
     .unblock = write_hello, .check = check_hello, .cleanup = hk_close_fds},
    {"__poll_chk forever", HK_BLOCK, .setup = setup_pipe, .call = poll_chk,
     .unblock = write_hello, .check = check_ready, .cleanup = hk_close_fds},
    {"__ppoll_chk forever", HK_BLOCK, .setup = setup_pipe, .call = ppoll_chk,
     .unblock = write_hello, .check = check_ready, .cleanup = hk_close_fds},
    {"__pread_chk of an evicted page", HK_TIMED, .setup = setup_evicted_file,
     .call = pread_chk, .check = check_pread, .cleanup = cleanup_file},
    {"__open_2 of a FIFO", HK_BLOCK, .setup = setup_fifo, .call = open_2,
     .unblock = open_writer, .check = check_fd, .cleanup = cleanup_file},
    {"__openat_2 of a FIFO", HK_BLOCK, .setup = setup_fifo, .call = openat_2,
     .unblock = open_writer, .check = check_fd, .cleanup = cleanup_file},
};

int lwkt_test_main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/lwkt-hook-fortify-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    int rc = HK_RUN(cases, argc, argv);
    CHECK_EQ(rmdir(dir), 0);
    return rc;
}
