//! Readiness waits (calls/ready.rs). The ones that install a signal mask
//! while they wait take SIGSYS out of it first (`mask_without_sigsys!`).

use core::ffi::c_int;
use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use crate::interpose::calls::{ready, SIGSET_BYTES};

hook! {
    fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int
        => |real| ready::poll("poll", fds, n, timeout, || real(fds, n, timeout))
}

hook! {
    fn ppoll(fds: *mut pollfd, n: nfds_t, ts: *const timespec, mask: *const sigset_t) -> c_int,
        before { mask_without_sigsys!(mask); }
        => |real| ready::ppoll("ppoll", (fds, n), ts, (mask, SIGSET_BYTES), || {
            real(fds, n, ts, mask)
        })
}

hook! {
    fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, tv: *mut timeval) -> c_int
        => |real| ready::select("select", n, [r, w, e], tv, || real(n, r, w, e, tv))
}

hook! {
    fn pselect(
        n: c_int,
        r: *mut fd_set,
        w: *mut fd_set,
        e: *mut fd_set,
        ts: *const timespec,
        mask: *const sigset_t,
    ) -> c_int,
        before { mask_without_sigsys!(mask); }
        => |real| ready::pselect("pselect", n, [r, w, e], ts, mask, || real(n, r, w, e, ts, mask))
}

hook! {
    fn epoll_wait(epfd: c_int, ev: *mut epoll_event, max: c_int, timeout: c_int) -> c_int
        => |real| ready::epoll_wait("epoll_wait", (epfd, ev, max), timeout, || {
            real(epfd, ev, max, timeout)
        })
}

hook! {
    fn epoll_pwait(
        epfd: c_int,
        ev: *mut epoll_event,
        max: c_int,
        timeout: c_int,
        mask: *const sigset_t,
    ) -> c_int,
        before { mask_without_sigsys!(mask); }
        => |real| {
            let wait = || real(epfd, ev, max, timeout, mask);
            ready::epoll_pwait("epoll_pwait", (epfd, ev, max), timeout, (mask, SIGSET_BYTES), wait)
        }
}

hook! {
    /// A libc without `epoll_pwait2` (before 2.35): not hooked, ENOSYS.
    fn epoll_pwait2(
        epfd: c_int,
        ev: *mut epoll_event,
        max: c_int,
        ts: *const timespec,
        mask: *const sigset_t,
    ) -> c_int,
        before { mask_without_sigsys!(mask); }
        => |real| {
            let wait = || real(epfd, ev, max, ts, mask);
            if !epoll_pwait2::present() {
                return wait();
            }
            ready::epoll_pwait2("epoll_pwait2", (epfd, ev, max), ts, (mask, SIGSET_BYTES), wait)
        }
}
