/*
 * hooks/poll.c: poll, ppoll, select, pselect, epoll_wait, epoll_pwait,
 * epoll_pwait2 (SPEC section 4) on a pipe's read end: they block until the
 * helper writes (or a signal interrupts them, or the timeout expires), and
 * keep the tokens when something is ready or the timeout is zero.
 */
#include "hook_util.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

static void setup_pipe(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
    h->fd[2] = epoll_create1(EPOLL_CLOEXEC);
    HCHECK(h, h->fd[2] >= 0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234567890abcdefULL};
    HCHECK_EQ(h, epoll_ctl(h->fd[2], EPOLL_CTL_ADD, p[0], &ev), 0);
}
static void setup_ready(hk_t *h) {
    setup_pipe(h);
    HCHECK_EQ(h, write(h->fd[1], "x", 1), 1);
}
static void write_one(hk_t *h) { HCHECK_EQ(h, write(h->fd[1], "x", 1), 1); }
static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }

/* Timeouts: -1 forever, 0, or milliseconds. */
static long do_poll(hk_t *h, int ms) {
    struct pollfd *p = (struct pollfd *)h->buf;
    p[0] = (struct pollfd){.fd = h->fd[0], .events = POLLIN};
    p[1] = (struct pollfd){.fd = -1, .events = POLLIN}; /* ignored entry */
    return poll(p, 2, ms);
}
static long poll_forever(hk_t *h) { return do_poll(h, -1); }
static long poll_long(hk_t *h) { return do_poll(h, HK_LONG_MS); }
static long poll_short(hk_t *h) { return do_poll(h, HK_SHORT_MS); }
static long poll_zero(hk_t *h) { return do_poll(h, 0); }
static long poll_nval(hk_t *h) {
    struct pollfd *p = (struct pollfd *)h->buf;
    p[0] = (struct pollfd){.fd = 1000, .events = POLLIN}; /* not open */
    return poll(p, 1, -1);
}
static void check_nval(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, ((struct pollfd *)h->buf)[0].revents, POLLNVAL);
}
static void check_poll_ready(hk_t *h, long ret, int err) {
    struct pollfd *p = (struct pollfd *)h->buf;
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, p[0].revents, POLLIN);
    HCHECK_EQ(h, p[1].revents, 0);
}
static void check_poll_none(hk_t *h, long ret, int err) {
    struct pollfd *p = (struct pollfd *)h->buf;
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, p[0].revents, 0);
}

/* ppoll with a signal mask: the caller's own mask is back afterwards. */
static long do_ppoll(hk_t *h, long ms) {
    struct pollfd *p = (struct pollfd *)h->buf;
    p[0] = (struct pollfd){.fd = h->fd[0], .events = POLLIN};
    p[1] = (struct pollfd){.fd = -1, .events = POLLIN};
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    return ppoll(p, 2, ms < 0 ? NULL : &ts, &mask);
}
static long ppoll_forever(hk_t *h) { return do_ppoll(h, -1); }
static long ppoll_long(hk_t *h) { return do_ppoll(h, HK_LONG_MS); }
static long ppoll_short(hk_t *h) { return do_ppoll(h, HK_SHORT_MS); }
static long ppoll_zero(hk_t *h) { return do_ppoll(h, 0); }
static void check_mask_restored(hk_t *h) {
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    HCHECK(h, !sigismember(&now, SIGUSR2));
    HCHECK(h, !sigismember(&now, SIGUSR1));
}
static void check_ppoll_ready(hk_t *h, long ret, int err) {
    check_poll_ready(h, ret, err);
    check_mask_restored(h);
}
static void check_ppoll_none(hk_t *h, long ret, int err) {
    check_poll_none(h, ret, err);
    check_mask_restored(h);
}

static long do_select(hk_t *h, long ms, int with_mask) {
    fd_set *r = (fd_set *)h->buf, *w = (fd_set *)(h->buf + sizeof(fd_set));
    FD_ZERO(r);
    FD_ZERO(w);
    FD_SET(h->fd[0], r);
    int nfds = h->fd[0] + 1;
    if (with_mask) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGUSR2);
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        return pselect(nfds, r, w, NULL, ms < 0 ? NULL : &ts, &mask);
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    long ret = select(nfds, r, w, NULL, ms < 0 ? NULL : &tv);
    memcpy(h->buf + 2 * sizeof(fd_set), &tv, sizeof tv);
    return ret;
}
static long select_forever(hk_t *h) { return do_select(h, -1, 0); }
static long select_long(hk_t *h) { return do_select(h, HK_LONG_MS, 0); }
static long select_short(hk_t *h) { return do_select(h, HK_SHORT_MS, 0); }
static long select_zero(hk_t *h) { return do_select(h, 0, 0); }
static long pselect_forever(hk_t *h) { return do_select(h, -1, 1); }
static long pselect_long(hk_t *h) { return do_select(h, HK_LONG_MS, 1); }
static long pselect_short(hk_t *h) { return do_select(h, HK_SHORT_MS, 1); }
static long pselect_zero(hk_t *h) { return do_select(h, 0, 1); }
static void check_select_ready(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, FD_ISSET(h->fd[0], (fd_set *)h->buf));
    check_mask_restored(h);
}
static void check_select_none(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, !FD_ISSET(h->fd[0], (fd_set *)h->buf));
}
/* Linux's select writes the time left back: 0 after a timeout. */
static void check_select_timed_out(hk_t *h, long ret, int err) {
    check_select_none(h, ret, err);
    struct timeval tv;
    memcpy(&tv, h->buf + 2 * sizeof(fd_set), sizeof tv);
    HCHECK(h, tv.tv_sec == 0 && tv.tv_usec == 0);
}
/* A descriptor number that is closed (below the table's size, where
 * select looks). */
static void setup_closed_fd(hk_t *h) {
    setup_pipe(h);
    h->v[0] = h->fd[1];
    close(h->fd[1]);
    h->fd[1] = -1;
}
static long select_ebadf(hk_t *h) {
    fd_set r;
    FD_ZERO(&r);
    FD_SET(h->v[0], &r);
    return select((int)h->v[0] + 1, &r, NULL, NULL, NULL);
}

static long do_epoll(hk_t *h, int which, long ms) {
    struct epoll_event *ev = (struct epoll_event *)h->buf;
    memset(ev, 0, 4 * sizeof *ev);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR2);
    switch (which) {
    case 0:
        return epoll_wait(h->fd[2], ev, 4, (int)ms);
    case 1:
        return epoll_pwait(h->fd[2], ev, 4, (int)ms, &mask);
    default: {
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        return epoll_pwait2(h->fd[2], ev, 4, ms < 0 ? NULL : &ts, &mask);
    }
    }
}
static long epoll_wait_forever(hk_t *h) { return do_epoll(h, 0, -1); }
static long epoll_wait_long(hk_t *h) { return do_epoll(h, 0, HK_LONG_MS); }
static long epoll_wait_short(hk_t *h) { return do_epoll(h, 0, HK_SHORT_MS); }
static long epoll_wait_zero(hk_t *h) { return do_epoll(h, 0, 0); }
static long epoll_pwait_forever(hk_t *h) { return do_epoll(h, 1, -1); }
static long epoll_pwait_short(hk_t *h) { return do_epoll(h, 1, HK_SHORT_MS); }
static long epoll_pwait_zero(hk_t *h) { return do_epoll(h, 1, 0); }
static long epoll_pwait2_forever(hk_t *h) { return do_epoll(h, 2, -1); }
static long epoll_pwait2_long(hk_t *h) { return do_epoll(h, 2, HK_LONG_MS); }
static long epoll_pwait2_short(hk_t *h) { return do_epoll(h, 2, HK_SHORT_MS); }
static long epoll_pwait2_zero(hk_t *h) { return do_epoll(h, 2, 0); }
static void check_epoll_ready(hk_t *h, long ret, int err) {
    struct epoll_event *ev = (struct epoll_event *)h->buf;
    HCHECK_EQ(h, ret, 1);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, ev[0].events, EPOLLIN);
    HCHECK(h, ev[0].data.u64 == 0x1234567890abcdefULL);
    check_mask_restored(h);
}
static long epoll_wait_einval(hk_t *h) {
    struct epoll_event ev;
    return epoll_wait(h->fd[0], &ev, 1, -1); /* a pipe, not an epoll fd */
}

static void check_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
}

static const struct hk_case cases[] = {
    {"poll forever", HK_BLOCK, .setup = setup_pipe, .call = poll_forever,
     .unblock = write_one, .check = check_poll_ready, .cleanup = hk_close_fds},
    {"poll 30 s", HK_BLOCK, .setup = setup_pipe, .call = poll_long, .unblock = write_one,
     .check = check_poll_ready, .cleanup = hk_close_fds},
    {"poll interrupted", HK_BLOCK, .setup = setup_pipe, .call = poll_forever,
     .unblock = interrupt, .check = check_eintr, .cleanup = hk_close_fds},
    {"poll times out", HK_TIMED, .setup = setup_pipe, .call = poll_short,
     .check = check_poll_none, .cleanup = hk_close_fds},
    {"poll ready", HK_KEPT, .setup = setup_ready, .call = poll_forever,
     .check = check_poll_ready, .cleanup = hk_close_fds},
    {"poll zero timeout", HK_KEPT, .setup = setup_pipe, .call = poll_zero,
     .check = check_poll_none, .cleanup = hk_close_fds},
    {"poll POLLNVAL", HK_KEPT, .call = poll_nval, .check = check_nval},

    {"ppoll forever", HK_BLOCK, .setup = setup_pipe, .call = ppoll_forever,
     .unblock = write_one, .check = check_ppoll_ready, .cleanup = hk_close_fds},
    {"ppoll 30 s", HK_BLOCK, .setup = setup_pipe, .call = ppoll_long, .unblock = write_one,
     .check = check_ppoll_ready, .cleanup = hk_close_fds},
    {"ppoll times out", HK_TIMED, .setup = setup_pipe, .call = ppoll_short,
     .check = check_ppoll_none, .cleanup = hk_close_fds},
    {"ppoll ready", HK_KEPT, .setup = setup_ready, .call = ppoll_forever,
     .check = check_ppoll_ready, .cleanup = hk_close_fds},
    {"ppoll zero timeout", HK_KEPT, .setup = setup_pipe, .call = ppoll_zero,
     .check = check_ppoll_none, .cleanup = hk_close_fds},

    {"select forever", HK_BLOCK, .setup = setup_pipe, .call = select_forever,
     .unblock = write_one, .check = check_select_ready, .cleanup = hk_close_fds},
    {"select 30 s", HK_BLOCK, .setup = setup_pipe, .call = select_long,
     .unblock = write_one, .check = check_select_ready, .cleanup = hk_close_fds},
    {"select interrupted", HK_BLOCK, .setup = setup_pipe, .call = select_forever,
     .unblock = interrupt, .check = check_eintr, .cleanup = hk_close_fds},
    {"select times out", HK_TIMED, .setup = setup_pipe, .call = select_short,
     .check = check_select_timed_out, .cleanup = hk_close_fds},
    {"select ready", HK_KEPT, .setup = setup_ready, .call = select_forever,
     .check = check_select_ready, .cleanup = hk_close_fds},
    {"select zero timeout", HK_KEPT, .setup = setup_pipe, .call = select_zero,
     .check = check_select_none, .cleanup = hk_close_fds},
    {"select EBADF", HK_ANY, .setup = setup_closed_fd, .call = select_ebadf, .want = -1,
     .err = EBADF, .cleanup = hk_close_fds},

    {"pselect forever", HK_BLOCK, .setup = setup_pipe, .call = pselect_forever,
     .unblock = write_one, .check = check_select_ready, .cleanup = hk_close_fds},
    {"pselect 30 s", HK_BLOCK, .setup = setup_pipe, .call = pselect_long,
     .unblock = write_one, .check = check_select_ready, .cleanup = hk_close_fds},
    {"pselect times out", HK_TIMED, .setup = setup_pipe, .call = pselect_short,
     .check = check_select_none, .cleanup = hk_close_fds},
    {"pselect ready", HK_KEPT, .setup = setup_ready, .call = pselect_forever,
     .check = check_select_ready, .cleanup = hk_close_fds},
    {"pselect zero timeout", HK_KEPT, .setup = setup_pipe, .call = pselect_zero,
     .check = check_select_none, .cleanup = hk_close_fds},

    {"epoll_wait forever", HK_BLOCK, .setup = setup_pipe, .call = epoll_wait_forever,
     .unblock = write_one, .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_wait 30 s", HK_BLOCK, .setup = setup_pipe, .call = epoll_wait_long,
     .unblock = write_one, .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_wait interrupted", HK_BLOCK, .setup = setup_pipe, .call = epoll_wait_forever,
     .unblock = interrupt, .check = check_eintr, .cleanup = hk_close_fds},
    {"epoll_wait times out", HK_TIMED, .setup = setup_pipe, .call = epoll_wait_short,
     .want = 0, .cleanup = hk_close_fds},
    {"epoll_wait ready", HK_KEPT, .setup = setup_ready, .call = epoll_wait_forever,
     .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_wait zero timeout", HK_KEPT, .setup = setup_pipe, .call = epoll_wait_zero,
     .want = 0, .cleanup = hk_close_fds},
    {"epoll_wait EINVAL", HK_ANY, .setup = setup_pipe, .call = epoll_wait_einval, .want = -1,
     .err = EINVAL, .cleanup = hk_close_fds},

    {"epoll_pwait forever", HK_BLOCK, .setup = setup_pipe, .call = epoll_pwait_forever,
     .unblock = write_one, .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_pwait times out", HK_TIMED, .setup = setup_pipe, .call = epoll_pwait_short,
     .want = 0, .cleanup = hk_close_fds},
    {"epoll_pwait ready", HK_KEPT, .setup = setup_ready, .call = epoll_pwait_forever,
     .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_pwait zero timeout", HK_KEPT, .setup = setup_pipe, .call = epoll_pwait_zero,
     .want = 0, .cleanup = hk_close_fds},

    {"epoll_pwait2 forever", HK_BLOCK, .setup = setup_pipe, .call = epoll_pwait2_forever,
     .unblock = write_one, .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_pwait2 30 s", HK_BLOCK, .setup = setup_pipe, .call = epoll_pwait2_long,
     .unblock = write_one, .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_pwait2 times out", HK_TIMED, .setup = setup_pipe, .call = epoll_pwait2_short,
     .want = 0, .cleanup = hk_close_fds},
    {"epoll_pwait2 ready", HK_KEPT, .setup = setup_ready, .call = epoll_pwait2_forever,
     .check = check_epoll_ready, .cleanup = hk_close_fds},
    {"epoll_pwait2 zero timeout", HK_KEPT, .setup = setup_pipe, .call = epoll_pwait2_zero,
     .want = 0, .cleanup = hk_close_fds},
};

int lwkt_test_main(int argc, char **argv) {
    hk_install_handler(SIGUSR1);
    return HK_RUN(cases, argc, argv);
}
