/*
 * iov_cases.h: full counts for vectored I/O (SPEC section 7, "No short
 * counts"), shared by hook_iov.c (the exported hooks) and catchall_iov.c
 * (the same calls through libc's own handle, which only the catch-all
 * sees). The includer defines IOV(name): the function to call, `name`
 * itself or `CA(name)`.
 *
 * A blocking writev/sendmsg gives the whole count however many iovecs it
 * has; the library's non-blocking probe may move only part (a pipe or a
 * socket buffer with room for some of it), and then must finish the rest
 * with the tokens released. A read of a disk file partly in the page cache
 * likewise. What must not change: a pipe write of at most PIPE_BUF bytes
 * stays whole, a datagram is never split, a stream receive returns what
 * is there.
 */
#ifndef LWKT_IOV_CASES_H
#define LWKT_IOV_CASES_H

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#define IOV_BIG 100000    /* bytes of the big writes */
#define IOV_FILE 131072   /* bytes of the test file */
#define IOV_READ 65536    /* bytes of the IOV_MAX reads */

static char iov_dir[64]; /* this process's scratch directory */
static unsigned char iov_out[IOV_BIG];
static unsigned char iov_in[IOV_BIG];
static struct iovec iov_vec[IOV_MAX];

/* The byte at position i of every stream: a shift or a gap shows. */
static inline unsigned char iov_pat(size_t i) { return (unsigned char)(i % 251); }

static inline void iov_fill_pattern(unsigned char *buf, size_t n, size_t from) {
    for (size_t i = 0; i < n; i++)
        buf[i] = iov_pat(from + i);
}

static inline int iov_is_pattern(const unsigned char *buf, size_t n, size_t from) {
    for (size_t i = 0; i < n; i++)
        if (buf[i] != iov_pat(from + i))
            return 0;
    return 1;
}

/* Cut buf[0..total) into `cnt` iovecs of uneven lengths, some empty, in
 * order: a transfer that stops anywhere stops inside an element or on a
 * boundary next to an empty one. */
static inline void iov_cut(int cnt, unsigned char *buf, size_t total) {
    static const size_t weight[5] = {1, 0, 2, 1, 1};
    size_t avg = total / (size_t)cnt, pos = 0;
    for (int k = 0; k < cnt; k++) {
        size_t len = avg * weight[k % 5];
        if (len > total - pos || k == cnt - 1)
            len = total - pos;
        iov_vec[k].iov_base = buf + pos;
        iov_vec[k].iov_len = len;
        pos += len;
    }
}

static inline struct msghdr iov_msg(int cnt) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov_vec;
    m.msg_iovlen = (size_t)cnt;
    return m;
}

/* Read exactly n bytes from fd in small pieces, yielding between them (a
 * slow reader), and check them against the pattern from `from`. False
 * when they differ, or stop coming (a short write: the holder's check
 * then names its count). */
static inline int iov_drain_slowly(hk_t *h, int fd, size_t n, size_t from) {
    static unsigned char piece[997];
    size_t got = 0;
    int ok = 1;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, TEST_DEADLINE_S * 1000) != 1)
            return 0;
        size_t want = n - got < sizeof piece ? n - got : sizeof piece;
        ssize_t r = read(fd, piece, want);
        HCHECK(h, r > 0);
        if (!iov_is_pattern(piece, (size_t)r, from + got))
            ok = 0;
        got += (size_t)r;
        sched_yield();
    }
    return ok;
}

/* ---- writev to a pipe ---------------------------------------------------- */

static void iov_setup_pipe(hk_t *h) {
    HCHECK_EQ(h, pipe(h->fd), 0);
    iov_fill_pattern(iov_out, IOV_BIG, 0);
}

/* A pipe that holds less than IOV_BIG: the probe writes part of it. */
static void iov_setup_big_write(hk_t *h) {
    iov_setup_pipe(h);
    HCHECK(h, fcntl(h->fd[1], F_GETPIPE_SZ) < IOV_BIG);
    iov_cut(1000, iov_out, IOV_BIG);
}
static long iov_writev_big(hk_t *h) { return IOV(writev)(h->fd[1], iov_vec, 1000); }
static void iov_drain_big(hk_t *h) {
    atomic_store(&h->flag[0], iov_drain_slowly(h, h->fd[0], IOV_BIG, 0));
}
static void iov_check_big(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, IOV_BIG);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, atomic_load(&h->flag[0]));
}

/* A one-page pipe with 100 bytes in it: a PIPE_BUF write cannot merge into
 * that page and waits for the reader, then goes in whole. */
static void iov_setup_pipe_buf_write(hk_t *h) {
    iov_setup_pipe(h);
    HCHECK(h, fcntl(h->fd[1], F_SETPIPE_SZ, 4096) > 0);
    memset(h->buf, 'f', 100);
    HCHECK_EQ(h, write(h->fd[1], h->buf, 100), 100);
    iov_cut(512, iov_out, PIPE_BUF);
}
static long iov_writev_pipe_buf(hk_t *h) { return IOV(writev)(h->fd[1], iov_vec, 512); }
static void iov_drain_filler(hk_t *h) { hk_read_all(h, h->fd[0], h->buf, 100); }
static void iov_check_pipe_buf(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, PIPE_BUF);
    HCHECK_EQ(h, err, HK_SENTINEL);
    /* Whole: one read finds all of it, and nothing after. */
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
    HCHECK_EQ(h, read(h->fd[0], iov_in, sizeof iov_in), PIPE_BUF);
    HCHECK(h, iov_is_pattern(iov_in, PIPE_BUF, 0));
}

/* ---- a disk file partly in the page cache --------------------------------- */

/* Is the page at `off` in the page cache? -1: cannot tell. */
static inline int iov_resident(int fd, off_t off) {
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, off);
    if (m == MAP_FAILED)
        return -1;
    unsigned char v = 0;
    int r = mincore(m, 4096, &v);
    munmap(m, 4096);
    return r == 0 ? (v & 1) : -1;
}

/* IOV_FILE bytes of the pattern, written back and dropped from the page
 * cache except the first page: the probe reads that page and stops. */
static void iov_setup_partly_cached(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/file", iov_dir);
    h->fd[0] = open(h->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    HCHECK(h, h->fd[0] >= 0);
    static unsigned char data[IOV_FILE];
    iov_fill_pattern(data, IOV_FILE, 0);
    HCHECK_EQ(h, write(h->fd[0], data, IOV_FILE), IOV_FILE);
    HCHECK_EQ(h, fdatasync(h->fd[0]), 0);
    HCHECK_EQ(h, posix_fadvise(h->fd[0], 0, 0, POSIX_FADV_DONTNEED), 0);
    /* No read-ahead: reading the first page brings in that page only. */
    HCHECK_EQ(h, posix_fadvise(h->fd[0], 0, 0, POSIX_FADV_RANDOM), 0);
    HCHECK_EQ(h, pread(h->fd[0], h->buf, 64, 0), 64);
    if (iov_resident(h->fd[0], 0) != 1 || iov_resident(h->fd[0], 4096) != 0)
        hk_lower_to_any(h, "cannot keep just the first page cached (tmpfs?)");
    HCHECK_EQ(h, lseek(h->fd[0], 0, SEEK_SET), 0);
    memset(iov_in, 0, sizeof iov_in);
    iov_cut(IOV_MAX, iov_in, IOV_READ);
}
static void iov_cleanup_file(hk_t *h) {
    hk_close_fds(h);
    unlink(h->path);
}

static long iov_readv_file(hk_t *h) { return IOV(readv)(h->fd[0], iov_vec, IOV_MAX); }
static void iov_check_readv_file(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, IOV_READ);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, iov_is_pattern(iov_in, IOV_READ, 0));
    HCHECK_EQ(h, lseek(h->fd[0], 0, SEEK_CUR), IOV_READ);
}

static long iov_preadv_file(hk_t *h) { return IOV(preadv)(h->fd[0], iov_vec, IOV_MAX, 100); }
static void iov_check_preadv_file(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, IOV_READ);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, iov_is_pattern(iov_in, IOV_READ, 100));
    HCHECK_EQ(h, lseek(h->fd[0], 0, SEEK_CUR), 0);
}

/* Reading past the end: the count ends at the end of the file. */
static long iov_preadv_to_eof(hk_t *h) {
    return IOV(preadv)(h->fd[0], iov_vec, IOV_MAX, IOV_FILE - 5000);
}
static void iov_check_preadv_to_eof(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5000);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, iov_is_pattern(iov_in, 5000, IOV_FILE - 5000));
}

static void iov_setup_file_to_write(hk_t *h) {
    iov_setup_partly_cached(h);
    iov_fill_pattern(iov_out, IOV_READ, 7);
    iov_cut(IOV_MAX, iov_out, IOV_READ);
}
static long iov_pwritev_file(hk_t *h) { return IOV(pwritev)(h->fd[0], iov_vec, IOV_MAX, 7); }
static void iov_check_pwritev_file(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, IOV_READ);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, pread(h->fd[0], iov_in, IOV_READ + 7, 0), IOV_READ + 7);
    HCHECK(h, iov_is_pattern(iov_in, IOV_READ + 7, 0));
}

/* ---- stream sockets ------------------------------------------------------ */

static void iov_setup_stream(hk_t *h) {
    HCHECK_EQ(h, socketpair(AF_UNIX, SOCK_STREAM, 0, h->fd), 0);
    iov_fill_pattern(iov_out, IOV_BIG, 0);
    iov_cut(1000, iov_out, IOV_BIG);
}

/* A small send buffer: the probe sends part of the message. */
static void iov_setup_stream_small(hk_t *h) {
    iov_setup_stream(h);
    int sz = 4096;
    HCHECK_EQ(h, setsockopt(h->fd[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
}

/* A full send buffer: the probe sends nothing. v[0]: bytes of filler. */
static void iov_setup_stream_full(hk_t *h) {
    iov_setup_stream_small(h);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
    memset(h->buf, 'f', sizeof h->buf);
    for (;;) {
        ssize_t r = send(h->fd[0], h->buf, sizeof h->buf, 0);
        if (r < 0) {
            HCHECK_EQ(h, errno, EAGAIN);
            break;
        }
        h->v[0] += r;
    }
    HCHECK(h, h->v[0] > 0);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, 0), 0);
}

static long iov_sendmsg_big(hk_t *h) {
    struct msghdr m = iov_msg(1000);
    return IOV(sendmsg)(h->fd[0], &m, 0);
}
static void iov_receive_big(hk_t *h) {
    static unsigned char junk[512];
    for (long left = h->v[0]; left > 0;) {
        ssize_t r = read(h->fd[1], junk, left < 512 ? (size_t)left : 512);
        HCHECK(h, r > 0);
        left -= r;
    }
    atomic_store(&h->flag[0], iov_drain_slowly(h, h->fd[1], IOV_BIG, 0));
}

/* The peer stops reading while the rest of a big send waits: the one
 * blocking call returns what it sent and raises no SIGPIPE (it sent
 * something); neither may the library's sending of the rest. v[1]: signals
 * so far. */
static void iov_setup_stream_closing(hk_t *h) {
    iov_setup_stream_small(h);
    hk_install_handler(SIGPIPE);
    h->v[1] = atomic_load(&hk_signals);
}
static long iov_writev_stream(hk_t *h) { return IOV(writev)(h->fd[0], iov_vec, 1000); }
static void iov_close_peer_after_some(hk_t *h) {
    double end = now_s() + TEST_DEADLINE_S;
    int queued = 0;
    while (ioctl(h->fd[1], FIONREAD, &queued) == 0 && queued == 0) {
        if (now_s() > end)
            HFAIL(h, "nothing was sent");
        sched_yield();
    }
    /* Not close: unread data would make it ECONNRESET, which raises
     * nothing. A reader gone makes a send fail with EPIPE. */
    HCHECK_EQ(h, shutdown(h->fd[1], SHUT_RD), 0);
}
static void iov_check_part_no_sigpipe(hk_t *h, long ret, int err) {
    HCHECK(h, ret > 0 && ret < IOV_BIG);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, atomic_load(&hk_signals), h->v[1]);
}

static void iov_setup_stream_read(hk_t *h) {
    HCHECK_EQ(h, socketpair(AF_UNIX, SOCK_STREAM, 0, h->fd), 0);
    iov_fill_pattern(iov_out, IOV_READ, 0);
    memset(iov_in, 0, sizeof iov_in);
    iov_cut(IOV_MAX, iov_in, IOV_READ);
}
static void iov_send_slowly(hk_t *h) {
    for (size_t done = 0; done < IOV_READ; done += 1000) {
        size_t n = IOV_READ - done < 1000 ? IOV_READ - done : 1000;
        hk_write_all(h, h->fd[1], iov_out + done, n);
        sched_yield();
    }
}
static long iov_recvmsg_stream(hk_t *h) {
    struct msghdr m = iov_msg(IOV_MAX);
    return IOV(recvmsg)(h->fd[0], &m, 0);
}
/* What was there when it woke: at least one byte, never more than sent. */
static void iov_check_recvmsg_some(hk_t *h, long ret, int err) {
    HCHECK(h, ret > 0 && ret <= IOV_READ);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, iov_is_pattern(iov_in, (size_t)ret, 0));
}
static long iov_recvmsg_waitall(hk_t *h) {
    struct msghdr m = iov_msg(IOV_MAX);
    return IOV(recvmsg)(h->fd[0], &m, MSG_WAITALL);
}
static void iov_check_recvmsg_all(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, IOV_READ);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, iov_is_pattern(iov_in, IOV_READ, 0));
}

/* ---- datagrams ---------------------------------------------------------- */

#define IOV_DGRAM 3000

/* A datagram socket pair whose receive queue is full. v[0]: fillers. */
static void iov_setup_dgram_full(hk_t *h) {
    HCHECK_EQ(h, socketpair(AF_UNIX, SOCK_DGRAM, 0, h->fd), 0);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
    memset(h->buf, 'f', 100);
    for (;;) {
        ssize_t r = send(h->fd[0], h->buf, 100, 0);
        if (r < 0) {
            HCHECK_EQ(h, errno, EAGAIN);
            break;
        }
        HCHECK_EQ(h, r, 100);
        h->v[0]++;
    }
    HCHECK(h, h->v[0] > 0);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, 0), 0);
    iov_fill_pattern(iov_out, IOV_DGRAM, 0);
    iov_cut(300, iov_out, IOV_DGRAM);
}
static void iov_setup_dgram_room(hk_t *h) {
    HCHECK_EQ(h, socketpair(AF_UNIX, SOCK_DGRAM, 0, h->fd), 0);
    iov_fill_pattern(iov_out, IOV_DGRAM, 0);
    iov_cut(300, iov_out, IOV_DGRAM);
}
static long iov_sendmsg_dgram(hk_t *h) {
    struct msghdr m = iov_msg(300);
    return IOV(sendmsg)(h->fd[0], &m, 0);
}
/* The fillers, then the holder's datagram: whole, in one piece. */
static void iov_receive_dgram(hk_t *h) {
    for (long i = 0; i < h->v[0]; i++)
        HCHECK_EQ(h, recv(h->fd[1], h->buf, sizeof h->buf, 0), 100);
    memset(iov_in, 0, IOV_DGRAM + 1);
    ssize_t r = recv(h->fd[1], iov_in, IOV_DGRAM + 1, 0);
    atomic_store(&h->flag[0], r == IOV_DGRAM && iov_is_pattern(iov_in, IOV_DGRAM, 0));
}
static void iov_check_dgram(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, IOV_DGRAM);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, atomic_load(&h->flag[0]));
}

/* IOV(f) is a macro argument: the cases. */
#define IOV_CASES                                                                \
    {"writev of 1000 iovecs, 100000 bytes, to a pipe drained slowly", HK_BLOCK,  \
     .setup = iov_setup_big_write, .call = iov_writev_big,                       \
     .unblock = iov_drain_big, .check = iov_check_big, .cleanup = hk_close_fds}, \
    {"writev of PIPE_BUF bytes in 512 iovecs waits and stays whole", HK_BLOCK,   \
     .setup = iov_setup_pipe_buf_write, .call = iov_writev_pipe_buf,             \
     .unblock = iov_drain_filler, .check = iov_check_pipe_buf,                   \
     .cleanup = hk_close_fds},                                                   \
    {"readv of IOV_MAX iovecs from a file partly in the page cache", HK_TIMED,   \
     .setup = iov_setup_partly_cached, .call = iov_readv_file,                   \
     .check = iov_check_readv_file, .cleanup = iov_cleanup_file},                \
    {"preadv of IOV_MAX iovecs from a file partly in the page cache", HK_TIMED,  \
     .setup = iov_setup_partly_cached, .call = iov_preadv_file,                  \
     .check = iov_check_preadv_file, .cleanup = iov_cleanup_file},               \
    {"preadv of IOV_MAX iovecs up to the end of the file", HK_ANY,               \
     .setup = iov_setup_partly_cached, .call = iov_preadv_to_eof,                \
     .check = iov_check_preadv_to_eof, .cleanup = iov_cleanup_file},             \
    {"pwritev of IOV_MAX iovecs to a file", HK_ANY,                              \
     .setup = iov_setup_file_to_write, .call = iov_pwritev_file,                 \
     .check = iov_check_pwritev_file, .cleanup = iov_cleanup_file},              \
    {"sendmsg of 1000 iovecs on a stream socket with a small buffer", HK_BLOCK,  \
     .setup = iov_setup_stream_small, .call = iov_sendmsg_big,                   \
     .unblock = iov_receive_big, .check = iov_check_big,                         \
     .cleanup = hk_close_fds},                                                   \
    {"sendmsg of 1000 iovecs on a stream socket with a full buffer", HK_BLOCK,   \
     .setup = iov_setup_stream_full, .call = iov_sendmsg_big,                    \
     .unblock = iov_receive_big, .check = iov_check_big,                         \
     .cleanup = hk_close_fds},                                                   \
    {"writev to a stream socket whose peer stops reading: part, no SIGPIPE",      \
     HK_BLOCK, .setup = iov_setup_stream_closing, .call = iov_writev_stream,     \
     .unblock = iov_close_peer_after_some, .check = iov_check_part_no_sigpipe,   \
     .cleanup = hk_close_fds},                                                   \
    {"sendmsg to a stream socket whose peer stops reading: part, no SIGPIPE",     \
     HK_BLOCK, .setup = iov_setup_stream_closing, .call = iov_sendmsg_big,       \
     .unblock = iov_close_peer_after_some, .check = iov_check_part_no_sigpipe,   \
     .cleanup = hk_close_fds},                                                   \
    {"recvmsg of IOV_MAX iovecs on a stream socket", HK_BLOCK,                   \
     .setup = iov_setup_stream_read, .call = iov_recvmsg_stream,                 \
     .unblock = iov_send_slowly, .check = iov_check_recvmsg_some,                \
     .cleanup = hk_close_fds},                                                   \
    {"recvmsg MSG_WAITALL of IOV_MAX iovecs on a stream socket", HK_BLOCK,       \
     .setup = iov_setup_stream_read, .call = iov_recvmsg_waitall,                \
     .unblock = iov_send_slowly, .check = iov_check_recvmsg_all,                 \
     .cleanup = hk_close_fds},                                                   \
    {"sendmsg of a datagram in 300 iovecs to a full queue stays whole",          \
     HK_BLOCK, .setup = iov_setup_dgram_full, .call = iov_sendmsg_dgram,         \
     .unblock = iov_receive_dgram, .check = iov_check_dgram,                     \
     .cleanup = hk_close_fds},                                                   \
    {"sendmsg of a datagram in 300 iovecs with room", HK_KEPT,                   \
     .setup = iov_setup_dgram_room, .call = iov_sendmsg_dgram,                   \
     .unblock = iov_receive_dgram, .check = iov_check_dgram,                     \
     .cleanup = hk_close_fds}

static inline int iov_main(const struct hk_case *cases, size_t n, int argc, char **argv,
                           const char *file) {
    snprintf(iov_dir, sizeof iov_dir, "/tmp/lwkt-iov-XXXXXX");
    CHECK(mkdtemp(iov_dir) != NULL);
    int rc = hk_run(file, cases, n, argc, argv);
    CHECK_EQ(rmdir(iov_dir), 0);
    return rc;
}

#endif
