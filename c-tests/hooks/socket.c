/*
 * hooks/socket.c: recv, recvfrom, recvmsg, recvmmsg, send, sendto, sendmsg,
 * accept, accept4, connect (SPEC section 4), on AF_UNIX sockets, which
 * block on demand: a receive on an empty socket, a send to a full one, an
 * accept with no pending connection, a connect to a listener whose backlog
 * is full.
 */
#include "hook_util.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/un.h>

/* --- connected pairs ------------------------------------------------------ */

static void setup_pair_type(hk_t *h, int type) {
    int sv[2];
    HCHECK_EQ(h, socketpair(AF_UNIX, type, 0, sv), 0);
    h->fd[0] = sv[0];
    h->fd[1] = sv[1];
}
static void setup_stream(hk_t *h) { setup_pair_type(h, SOCK_STREAM); }
static void setup_dgram(hk_t *h) { setup_pair_type(h, SOCK_DGRAM); }
static void setup_stream_with_data(hk_t *h) {
    setup_stream(h);
    HCHECK_EQ(h, send(h->fd[1], "hello", 5, 0), 5);
}
static void setup_dgram_with_data(hk_t *h) {
    setup_dgram(h);
    HCHECK_EQ(h, send(h->fd[1], "hello", 5, 0), 5);
}
static void setup_stream_at_eof(hk_t *h) {
    setup_stream(h);
    close(h->fd[1]);
    h->fd[1] = -1;
}
static void setup_nonblocking_stream(hk_t *h) {
    setup_stream(h);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
}

/* fd[1] -> fd[0] is full: a blocking send on fd[1] waits. */
static void setup_full_stream(hk_t *h) {
    setup_stream(h);
    int small = 4096;
    HCHECK_EQ(h, setsockopt(h->fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    char junk[1024];
    memset(junk, 'j', sizeof junk);
    long filled = 0;
    for (;;) {
        ssize_t r = send(h->fd[1], junk, sizeof junk, MSG_DONTWAIT);
        if (r < 0) {
            HCHECK_EQ(h, errno, EAGAIN);
            break;
        }
        filled += r;
    }
    HCHECK(h, filled > 0);
    h->v[0] = filled;
}
static void drain_filler(hk_t *h) {
    char junk[1024];
    long left = h->v[0];
    while (left > 0) {
        ssize_t r = recv(h->fd[0], junk, left < 1024 ? left : 1024, 0);
        HCHECK(h, r > 0);
        left -= r;
    }
}

static void send_hello(hk_t *h) { HCHECK_EQ(h, send(h->fd[1], "hello", 5, 0), 5); }
static void send_two(hk_t *h) {
    HCHECK_EQ(h, send(h->fd[1], "one", 3, 0), 3);
    HCHECK_EQ(h, send(h->fd[1], "second", 6, 0), 6);
}

static void check_hello(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "hello", 5) == 0);
}
static void check_eagain(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK(h, err == EAGAIN || err == EWOULDBLOCK);
}

static long recv_call(hk_t *h) { return recv(h->fd[0], h->buf, 64, 0); }
static long recv_dontwait(hk_t *h) { return recv(h->fd[0], h->buf, 64, MSG_DONTWAIT); }
static long recv_peek(hk_t *h) { return recv(h->fd[0], h->buf, 64, MSG_PEEK); }
static void check_peek(hk_t *h, long ret, int err) {
    check_hello(h, ret, err);
    char b[8];
    HCHECK_EQ(h, recv(h->fd[0], b, 8, MSG_DONTWAIT), 5); /* still there */
}

static long recvfrom_call(hk_t *h) {
    struct sockaddr_un *sa = (struct sockaddr_un *)(h->buf + 128);
    socklen_t *len = (socklen_t *)(h->buf + 400);
    *len = sizeof *sa;
    return recvfrom(h->fd[0], h->buf, 64, 0, (struct sockaddr *)sa, len);
}
static void check_recvfrom(hk_t *h, long ret, int err) {
    check_hello(h, ret, err);
    socklen_t *len = (socklen_t *)(h->buf + 400);
    HCHECK_EQ(h, *len, 0); /* the peer of a pair has no address */
}

/* recvmsg with two buffers and a descriptor passed along (SCM_RIGHTS). */
static void send_hello_with_fd(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)"hello", 5};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[1], sizeof(int));
    HCHECK_EQ(h, sendmsg(h->fd[1], &m, 0), 5);
    close(p[1]);
    h->fd[2] = p[0];
}
static void setup_stream_with_fd(hk_t *h) {
    setup_stream(h);
    send_hello_with_fd(h);
}
static long recvmsg_call(hk_t *h) {
    static union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    static struct iovec iov[2];
    static struct msghdr m;
    iov[0] = (struct iovec){h->buf, 2};
    iov[1] = (struct iovec){h->buf + 2, 60};
    m = (struct msghdr){.msg_iov = iov, .msg_iovlen = 2, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    h->p[0] = &m;
    return recvmsg(h->fd[0], &m, 0);
}
static void check_recvmsg(hk_t *h, long ret, int err) {
    check_hello(h, ret, err);
    struct msghdr *m = h->p[0];
    HCHECK_EQ(h, m->msg_flags, 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    HCHECK(h, c != NULL);
    HCHECK_EQ(h, c->cmsg_type, SCM_RIGHTS);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    h->fd[3] = fd;
    /* The passed descriptor is the write end of the pipe at fd[2]. */
    HCHECK_EQ(h, write(fd, "via", 3), 3);
    char b[4];
    HCHECK_EQ(h, read(h->fd[2], b, 3), 3);
    HCHECK(h, memcmp(b, "via", 3) == 0);
}

static long recvmmsg_call(hk_t *h, unsigned vlen, int flags) {
    static struct mmsghdr mm[2];
    static struct iovec iov[2];
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 2; i++) {
        iov[i] = (struct iovec){h->buf + 100 * i, 64};
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    h->p[0] = mm;
    return recvmmsg(h->fd[0], mm, vlen, flags, NULL);
}
static long recvmmsg_two(hk_t *h) { return recvmmsg_call(h, 2, 0); }
static long recvmmsg_one(hk_t *h) { return recvmmsg_call(h, 1, 0); }
static void check_recvmmsg_two(hk_t *h, long ret, int err) {
    struct mmsghdr *mm = h->p[0];
    HCHECK_EQ(h, ret, 2);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, mm[0].msg_len, 3);
    HCHECK_EQ(h, mm[1].msg_len, 6);
    HCHECK(h, memcmp(h->buf, "one", 3) == 0);
    HCHECK(h, memcmp(h->buf + 100, "second", 6) == 0);
}
static void check_recvmmsg_one(hk_t *h, long ret, int err) {
    struct mmsghdr *mm = h->p[0];
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, mm[0].msg_len, 5);
    HCHECK(h, memcmp(h->buf, "hello", 5) == 0);
}

static long send_call(hk_t *h) { return send(h->fd[1], "wxyz", 4, 0); }
static long send_dontwait(hk_t *h) { return send(h->fd[1], "wxyz", 4, MSG_DONTWAIT); }
static long sendto_call(hk_t *h) { return sendto(h->fd[1], "wxyz", 4, 0, NULL, 0); }
static long sendmsg_call(hk_t *h) {
    struct iovec iov[2] = {{(void *)"wx", 2}, {(void *)"yz", 2}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    return sendmsg(h->fd[1], &m, 0);
}
static void check_wxyz(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 4);
    HCHECK_EQ(h, err, HK_SENTINEL);
    char b[8];
    HCHECK_EQ(h, recv(h->fd[0], b, 4, MSG_DONTWAIT), 4);
    HCHECK(h, memcmp(b, "wxyz", 4) == 0);
}

static long send_epipe(hk_t *h) {
    close(h->fd[0]);
    h->fd[0] = -1;
    return send(h->fd[1], "x", 1, MSG_NOSIGNAL);
}
static long recv_ebadf(hk_t *h) {
    (void)h;
    return recv(-1, (char[4]){0}, 4, 0);
}
static long recv_enotsock(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
    return recv(p[0], h->buf, 4, 0);
}

/* --- listeners ------------------------------------------------------------- */

/* An abstract address unique to this process and case (nothing to unlink). */
static socklen_t addr_of(hk_t *h, struct sockaddr_un *sa) {
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    int n = snprintf(sa->sun_path + 1, sizeof sa->sun_path - 1, "lwkt-hook-socket-%d-%ld",
                     (int)getpid(), h->v[7]);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}
static long case_no;

static void setup_listener_backlog(hk_t *h, int backlog) {
    h->v[7] = ++case_no;
    struct sockaddr_un sa;
    socklen_t len = addr_of(h, &sa);
    h->fd[0] = socket(AF_UNIX, SOCK_STREAM, 0);
    HCHECK(h, h->fd[0] >= 0);
    HCHECK_EQ(h, bind(h->fd[0], (struct sockaddr *)&sa, len), 0);
    HCHECK_EQ(h, listen(h->fd[0], backlog), 0);
}
static void setup_listener(hk_t *h) { setup_listener_backlog(h, 8); }
static void connect_client(hk_t *h) {
    struct sockaddr_un sa;
    socklen_t len = addr_of(h, &sa);
    h->fd[1] = socket(AF_UNIX, SOCK_STREAM, 0);
    HCHECK(h, h->fd[1] >= 0);
    HCHECK_EQ(h, connect(h->fd[1], (struct sockaddr *)&sa, len), 0);
}
static void setup_pending_connection(hk_t *h) {
    setup_listener(h);
    connect_client(h);
}
static void setup_nonblocking_listener(hk_t *h) {
    setup_listener(h);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
}

static long accept_call(hk_t *h) { return accept(h->fd[0], NULL, NULL); }
static long accept_addr(hk_t *h) {
    socklen_t *len = (socklen_t *)(h->buf + 400);
    *len = sizeof(struct sockaddr_un);
    return accept(h->fd[0], (struct sockaddr *)h->buf, len);
}
static long accept4_call(hk_t *h) {
    return accept4(h->fd[0], NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
}
/* The accepted socket talks to the client. */
static void check_accepted(hk_t *h, long ret, int err) {
    HCHECK(h, ret >= 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    h->fd[2] = (int)ret;
    HCHECK_EQ(h, send(h->fd[1], "ab", 2, 0), 2);
    char b[2];
    HCHECK_EQ(h, recv((int)ret, b, 2, 0), 2);
    HCHECK(h, memcmp(b, "ab", 2) == 0);
}
static void check_accepted_addr(hk_t *h, long ret, int err) {
    check_accepted(h, ret, err);
    HCHECK_EQ(h, *(socklen_t *)(h->buf + 400), sizeof(sa_family_t));
    HCHECK_EQ(h, ((struct sockaddr_un *)h->buf)->sun_family, AF_UNIX);
}
static void check_accept4(hk_t *h, long ret, int err) {
    check_accepted(h, ret, err);
    HCHECK(h, fcntl((int)ret, F_GETFD) & FD_CLOEXEC);
    HCHECK(h, fcntl((int)ret, F_GETFL) & O_NONBLOCK);
}

/* A listener with backlog 0 that has one connection queued: the next
 * connect waits until the listener accepts. */
static void setup_full_backlog(hk_t *h) {
    setup_listener_backlog(h, 0);
    connect_client(h); /* fd[1], queued */
    h->fd[2] = socket(AF_UNIX, SOCK_STREAM, 0);
    HCHECK(h, h->fd[2] >= 0);
}
static long connect_call(hk_t *h) {
    struct sockaddr_un sa;
    socklen_t len = addr_of(h, &sa);
    return connect(h->fd[2], (struct sockaddr *)&sa, len);
}
static void accept_one(hk_t *h) {
    h->fd[3] = accept(h->fd[0], NULL, NULL);
    HCHECK(h, h->fd[3] >= 0);
}
static void setup_listener_and_socket(hk_t *h) {
    setup_listener(h);
    h->fd[2] = socket(AF_UNIX, SOCK_STREAM, 0);
    HCHECK(h, h->fd[2] >= 0);
}
static void setup_socket_no_listener(hk_t *h) {
    h->v[7] = ++case_no;
    h->fd[2] = socket(AF_UNIX, SOCK_STREAM, 0);
    HCHECK(h, h->fd[2] >= 0);
}

static const struct hk_case cases[] = {
    /* Receive. */
    {"recv on an empty socket", HK_BLOCK, .setup = setup_stream, .call = recv_call,
     .unblock = send_hello, .check = check_hello, .cleanup = hk_close_fds},
    {"recvfrom on an empty socket", HK_BLOCK, .setup = setup_dgram, .call = recvfrom_call,
     .unblock = send_hello, .check = check_recvfrom, .cleanup = hk_close_fds},
    {"recvmsg on an empty socket (SCM_RIGHTS)", HK_BLOCK, .setup = setup_stream,
     .call = recvmsg_call, .unblock = send_hello_with_fd, .check = check_recvmsg,
     .cleanup = hk_close_fds},
    {"recvmmsg of two datagrams", HK_BLOCK, .setup = setup_dgram, .call = recvmmsg_two,
     .unblock = send_two, .check = check_recvmmsg_two, .cleanup = hk_close_fds},

    {"recv with data ready", HK_KEPT, .setup = setup_stream_with_data, .call = recv_call,
     .check = check_hello, .cleanup = hk_close_fds},
    {"recv MSG_PEEK with data ready", HK_KEPT, .setup = setup_stream_with_data,
     .call = recv_peek, .check = check_peek, .cleanup = hk_close_fds},
    {"recvfrom with data ready", HK_KEPT, .setup = setup_dgram_with_data,
     .call = recvfrom_call, .check = check_recvfrom, .cleanup = hk_close_fds},
    {"recvmsg with data ready", HK_KEPT, .setup = setup_stream_with_fd, .call = recvmsg_call,
     .check = check_recvmsg, .cleanup = hk_close_fds},
    {"recvmmsg with the datagram ready", HK_KEPT, .setup = setup_dgram_with_data,
     .call = recvmmsg_one, .check = check_recvmmsg_one, .cleanup = hk_close_fds},
    {"recv at end of stream", HK_KEPT, .setup = setup_stream_at_eof, .call = recv_call,
     .want = 0, .cleanup = hk_close_fds},
    {"recv MSG_DONTWAIT with no data", HK_KEPT, .setup = setup_stream, .call = recv_dontwait,
     .check = check_eagain, .cleanup = hk_close_fds},
    {"recv on an empty O_NONBLOCK socket", HK_KEPT, .setup = setup_nonblocking_stream,
     .call = recv_call, .check = check_eagain, .cleanup = hk_close_fds},
    {"recv EBADF", HK_ANY, .call = recv_ebadf, .want = -1, .err = EBADF},
    {"recv ENOTSOCK", HK_ANY, .call = recv_enotsock, .want = -1, .err = ENOTSOCK,
     .cleanup = hk_close_fds},

    /* Send. */
    {"send to a full socket", HK_BLOCK, .setup = setup_full_stream, .call = send_call,
     .unblock = drain_filler, .check = check_wxyz, .cleanup = hk_close_fds},
    {"sendto a full socket", HK_BLOCK, .setup = setup_full_stream, .call = sendto_call,
     .unblock = drain_filler, .check = check_wxyz, .cleanup = hk_close_fds},
    {"sendmsg to a full socket", HK_BLOCK, .setup = setup_full_stream, .call = sendmsg_call,
     .unblock = drain_filler, .check = check_wxyz, .cleanup = hk_close_fds},

    {"send with room", HK_KEPT, .setup = setup_stream, .call = send_call, .check = check_wxyz,
     .cleanup = hk_close_fds},
    {"sendto with room", HK_KEPT, .setup = setup_stream, .call = sendto_call,
     .check = check_wxyz, .cleanup = hk_close_fds},
    {"sendmsg with room", HK_KEPT, .setup = setup_stream, .call = sendmsg_call,
     .check = check_wxyz, .cleanup = hk_close_fds},
    {"send MSG_DONTWAIT to a full socket", HK_KEPT, .setup = setup_full_stream,
     .call = send_dontwait, .check = check_eagain, .cleanup = hk_close_fds},
    {"send EPIPE", HK_ANY, .setup = setup_stream, .call = send_epipe, .want = -1,
     .err = EPIPE, .cleanup = hk_close_fds},

    /* Accept and connect. */
    {"accept with no pending connection", HK_BLOCK, .setup = setup_listener,
     .call = accept_call, .unblock = connect_client, .check = check_accepted,
     .cleanup = hk_close_fds},
    {"accept with an address", HK_BLOCK, .setup = setup_listener, .call = accept_addr,
     .unblock = connect_client, .check = check_accepted_addr, .cleanup = hk_close_fds},
    {"accept4 with no pending connection", HK_BLOCK, .setup = setup_listener,
     .call = accept4_call, .unblock = connect_client, .check = check_accept4,
     .cleanup = hk_close_fds},
    /* No atomic probe for accept (a zero-timeout poll races with other
     * threads accepting, and blocking with tokens held is worse than
     * releasing needlessly): release allowed. */
    {"accept with a pending connection", HK_ANY, .setup = setup_pending_connection,
     .call = accept_call, .check = check_accepted, .cleanup = hk_close_fds},
    {"accept4 with a pending connection", HK_ANY, .setup = setup_pending_connection,
     .call = accept4_call, .check = check_accept4, .cleanup = hk_close_fds},
    {"accept on an O_NONBLOCK listener", HK_KEPT, .setup = setup_nonblocking_listener,
     .call = accept_call, .check = check_eagain, .cleanup = hk_close_fds},
    {"connect to a full backlog", HK_BLOCK, .setup = setup_full_backlog,
     .call = connect_call, .unblock = accept_one, .want = 0, .cleanup = hk_close_fds},
    {"connect with room", HK_ANY, .setup = setup_listener_and_socket, .call = connect_call,
     .want = 0, .cleanup = hk_close_fds},
    {"connect ECONNREFUSED", HK_ANY, .setup = setup_socket_no_listener, .call = connect_call,
     .want = -1, .err = ECONNREFUSED, .cleanup = hk_close_fds},
};

int lwkt_test_main(int argc, char **argv) { return HK_RUN(cases, argc, argv); }
