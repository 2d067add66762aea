//! Readiness waits: poll, ppoll, select, pselect and the epoll waits. Each
//! is first run with a zero timeout (and the caller's signal mask); only
//! when nothing is ready does the thread release its tokens and wait.

use core::ffi::c_int;
use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use super::{c_result, held, holding, is_zero_ts, released, ZERO_TS};
use crate::sys;

mod real {
    use core::ffi::c_int;
    use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};
    real_fn!(poll: fn(*mut pollfd, nfds_t, c_int) -> c_int);
    real_fn!(ppoll: fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t) -> c_int);
    real_fn!(select: fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *mut timeval) -> c_int);
    real_fn!(pselect: fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *const timespec, *const sigset_t) -> c_int);
    real_fn!(epoll_wait: fn(c_int, *mut epoll_event, c_int, c_int) -> c_int);
    real_fn!(epoll_pwait: fn(c_int, *mut epoll_event, c_int, c_int, *const sigset_t) -> c_int);
    real_fn!(epoll_pwait2: fn(c_int, *mut epoll_event, c_int, *const timespec, *const sigset_t) -> c_int);
}

/// The kernel's sigset size for the `p*` calls.
const SIGSET_BYTES: usize = 8;

/// Probe result 0 means "nothing ready": wait with the tokens released.
/// Anything else (ready, or an error) is the call's result.
pub(crate) unsafe fn after_probe(
    hook: &'static str,
    r: isize,
    wait: impl FnOnce() -> c_int,
) -> c_int {
    if r == 0 {
        released(hook, wait)
    } else {
        c_result(r) as c_int
    }
}

#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    let f = real::poll::get();
    if !holding() {
        return f(fds, n, timeout);
    }
    held(move || {
        if timeout == 0 {
            return f(fds, n, timeout);
        }
        let r = sys::syscall3(libc::SYS_poll, fds as usize, n as usize, 0);
        after_probe("poll", r, || f(fds, n, timeout))
    })
}

#[no_mangle]
pub unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let f = real::ppoll::get();
    // The mask it waits with must not block SIGSYS either (catch-all).
    let mut mask_copy: sigset_t = core::mem::zeroed();
    let mask = crate::catchall::without_sigsys(mask, &mut mask_copy);
    if !holding() {
        return f(fds, n, ts, mask);
    }
    held(move || {
        if is_zero_ts(ts) {
            return f(fds, n, ts, mask);
        }
        let zero = ZERO_TS;
        let r = sys::syscall6(
            libc::SYS_ppoll,
            fds as usize,
            n as usize,
            &zero as *const _ as usize,
            mask as usize,
            SIGSET_BYTES,
            0,
        );
        after_probe("ppoll", r, || f(fds, n, ts, mask))
    })
}

/// Copies of select's descriptor sets: the probe overwrites them.
pub(crate) struct SavedSets([Option<fd_set>; 3]);

impl SavedSets {
    pub(crate) unsafe fn save(sets: [*mut fd_set; 3]) -> SavedSets {
        SavedSets(sets.map(|s| if s.is_null() { None } else { Some(*s) }))
    }
    pub(crate) unsafe fn restore(&self, sets: [*mut fd_set; 3]) {
        for (saved, s) in self.0.iter().zip(sets) {
            if let Some(v) = saved {
                *s = *v;
            }
        }
    }
}

/// pselect6's sixth argument: the signal mask and its size.
#[repr(C)]
struct SigmaskArg {
    mask: *const sigset_t,
    size: usize,
}

/// select and pselect: probe with pselect6 and a zero timeout.
pub(crate) unsafe fn select_probe(
    n: c_int,
    sets: [*mut fd_set; 3],
    mask: *const sigset_t,
) -> isize {
    let zero = ZERO_TS;
    let arg = SigmaskArg {
        mask,
        size: SIGSET_BYTES,
    };
    let argp = if mask.is_null() {
        0
    } else {
        &arg as *const _ as usize
    };
    sys::syscall6(
        libc::SYS_pselect6,
        n as usize,
        sets[0] as usize,
        sets[1] as usize,
        sets[2] as usize,
        &zero as *const _ as usize,
        argp,
    )
}

#[no_mangle]
pub unsafe extern "C" fn select(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    tv: *mut timeval,
) -> c_int {
    let f = real::select::get();
    if !holding() {
        return f(n, r, w, e, tv);
    }
    held(move || {
        if !tv.is_null() && (*tv).tv_sec == 0 && (*tv).tv_usec == 0 {
            return f(n, r, w, e, tv);
        }
        let sets = [r, w, e];
        let saved = SavedSets::save(sets);
        let res = select_probe(n, sets, core::ptr::null());
        if res == 0 {
            saved.restore(sets);
        }
        after_probe("select", res, || f(n, r, w, e, tv))
    })
}

#[no_mangle]
pub unsafe extern "C" fn pselect(
    n: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let f = real::pselect::get();
    // The mask it waits with must not block SIGSYS either (catch-all).
    let mut mask_copy: sigset_t = core::mem::zeroed();
    let mask = crate::catchall::without_sigsys(mask, &mut mask_copy);
    if !holding() {
        return f(n, r, w, e, ts, mask);
    }
    held(move || {
        if is_zero_ts(ts) {
            return f(n, r, w, e, ts, mask);
        }
        let sets = [r, w, e];
        let saved = SavedSets::save(sets);
        let res = select_probe(n, sets, mask);
        if res == 0 {
            saved.restore(sets);
        }
        after_probe("pselect", res, || f(n, r, w, e, ts, mask))
    })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_wait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    let f = real::epoll_wait::get();
    if !holding() {
        return f(epfd, ev, max, timeout);
    }
    held(move || {
        if timeout == 0 {
            return f(epfd, ev, max, timeout);
        }
        let r = sys::syscall6(
            libc::SYS_epoll_wait,
            epfd as usize,
            ev as usize,
            max as usize,
            0,
            0,
            0,
        );
        after_probe("epoll_wait", r, || f(epfd, ev, max, timeout))
    })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    let f = real::epoll_pwait::get();
    // The mask it waits with must not block SIGSYS either (catch-all).
    let mut mask_copy: sigset_t = core::mem::zeroed();
    let mask = crate::catchall::without_sigsys(mask, &mut mask_copy);
    if !holding() {
        return f(epfd, ev, max, timeout, mask);
    }
    held(move || {
        if timeout == 0 {
            return f(epfd, ev, max, timeout, mask);
        }
        let r = sys::syscall6(
            libc::SYS_epoll_pwait,
            epfd as usize,
            ev as usize,
            max as usize,
            0,
            mask as usize,
            SIGSET_BYTES,
        );
        after_probe("epoll_pwait", r, || f(epfd, ev, max, timeout, mask))
    })
}

#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(
    epfd: c_int,
    ev: *mut epoll_event,
    max: c_int,
    ts: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    let f = real::epoll_pwait2::get();
    // The mask it waits with must not block SIGSYS either (catch-all).
    let mut mask_copy: sigset_t = core::mem::zeroed();
    let mask = crate::catchall::without_sigsys(mask, &mut mask_copy);
    if !holding() {
        return f(epfd, ev, max, ts, mask);
    }
    held(move || {
        // A libc without epoll_pwait2 (before 2.35): not hooked, ENOSYS.
        if is_zero_ts(ts) || !real::epoll_pwait2::present() {
            return f(epfd, ev, max, ts, mask);
        }
        let zero = ZERO_TS;
        let r = sys::syscall6(
            libc::SYS_epoll_pwait2,
            epfd as usize,
            ev as usize,
            max as usize,
            &zero as *const _ as usize,
            mask as usize,
            SIGSET_BYTES,
        );
        after_probe("epoll_pwait2", r, || f(epfd, ev, max, ts, mask))
    })
}

// ---- _FORTIFY_SOURCE variants (see fdio.rs) ----

mod real_chk {
    use core::ffi::c_int;
    use libc::{nfds_t, pollfd, sigset_t, size_t, timespec};
    real_fn!(__poll_chk: fn(*mut pollfd, nfds_t, c_int, size_t) -> c_int);
    real_fn!(__ppoll_chk: fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t, size_t) -> c_int);
}

fn poll_array_fits(n: nfds_t, fdslen: libc::size_t) -> bool {
    (fdslen / core::mem::size_of::<pollfd>()) as nfds_t >= n
}

#[no_mangle]
pub unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: libc::size_t,
) -> c_int {
    if !holding() || !poll_array_fits(n, fdslen) {
        return real_chk::__poll_chk::get()(fds, n, timeout, fdslen);
    }
    poll(fds, n, timeout)
}

#[no_mangle]
pub unsafe extern "C" fn __ppoll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    ts: *const timespec,
    mask: *const sigset_t,
    fdslen: libc::size_t,
) -> c_int {
    if !holding() || !poll_array_fits(n, fdslen) {
        return real_chk::__ppoll_chk::get()(fds, n, ts, mask, fdslen);
    }
    ppoll(fds, n, ts, mask)
}
