//! Readiness waits: poll, ppoll, select, pselect and the epoll waits. Each
//! is first run with a zero timeout (and the caller's signal mask); only
//! when nothing is ready does the thread release its tokens and wait.
//! `call()` is the call as the program made it (with the mask the
//! catch-all may have made safe, see catchall/program.rs).

use core::ffi::c_int;
use libc::{epoll_event, fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

use super::c_result;
use crate::interpose::release::released;
use crate::interpose::timeout::{is_zero_ts, is_zero_tv, ZERO_TS};
use crate::sys;

/// Probe result 0 means "nothing ready": wait with the tokens released.
/// Anything else (ready, or an error) is the call's result.
fn after_probe(hook: &'static str, r: isize, wait: impl FnOnce() -> c_int) -> c_int {
    if r == 0 {
        released(hook, wait)
    } else {
        c_result(r) as c_int
    }
}

/// Probe with system call `nr` on `args` (the program's, with a zero
/// timeout), then wait if nothing is ready.
///
/// # Safety
///
/// `args` are the program's arguments of `nr`, but for the timeout.
unsafe fn probe_then_wait(
    hook: &'static str,
    nr: i64,
    args: [usize; 6],
    wait: impl FnOnce() -> c_int,
) -> c_int {
    let [a, b, c, d, e, f] = args;
    // SAFETY: the caller's contract: the program's call, not waiting.
    let r = unsafe { sys::syscall6(nr, a, b, c, d, e, f) };
    after_probe(hook, r, wait)
}

/// A wait whose timeout is the timespec `ts`: at once when it is zero,
/// else probed with system call `nr` on `args(zero)`, the program's
/// arguments with the address of a zero timeout in place of `ts`.
///
/// # Safety
///
/// `ts` is null or readable; `args` as for `probe_then_wait`.
unsafe fn zero_ts_probe(
    hook: &'static str,
    ts: *const timespec,
    nr: i64,
    args: impl FnOnce(usize) -> [usize; 6],
    wait: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    if unsafe { is_zero_ts(ts) } {
        return wait();
    }
    let zero = &ZERO_TS as *const timespec as usize;
    // SAFETY: the caller's contract.
    unsafe { probe_then_wait(hook, nr, args(zero), wait) }
}

/// `poll(fds, n, timeout)`.
///
/// # Safety
///
/// The arguments are the program's, as `poll` takes them.
pub unsafe fn poll(
    hook: &'static str,
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    if timeout == 0 {
        return call();
    }
    let args = [fds as usize, n as usize, 0, 0, 0, 0];
    // SAFETY: the program's arguments, a zero timeout.
    unsafe { probe_then_wait(hook, libc::SYS_poll, args, call) }
}

/// `ppoll(fds, n, ts, mask)`, the kernel's `sigsetsize` given.
///
/// # Safety
///
/// The arguments are the program's, as the `ppoll` system call takes them.
pub unsafe fn ppoll(
    hook: &'static str,
    (fds, n): (*mut pollfd, nfds_t),
    ts: *const timespec,
    (mask, sigsetsize): (*const sigset_t, usize),
    call: impl FnOnce() -> c_int,
) -> c_int {
    let args = |zero| [fds as usize, n as usize, zero, mask as usize, sigsetsize, 0];
    // SAFETY: the caller's contract.
    unsafe { zero_ts_probe(hook, ts, libc::SYS_ppoll, args, call) }
}

/// `select(n, r, w, e, tv)`.
///
/// # Safety
///
/// The arguments are the program's, as `select` takes them.
pub unsafe fn select(
    hook: &'static str,
    n: c_int,
    sets: [*mut fd_set; 3],
    tv: *const timeval,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the program's timeout, null or readable.
    if unsafe { is_zero_tv(tv) } {
        return call();
    }
    // SAFETY: the program's sets.
    unsafe { select_probed(hook, n, sets, core::ptr::null(), call) }
}

/// `pselect(n, r, w, e, ts, mask)`.
///
/// # Safety
///
/// The arguments are the program's, as `pselect` takes them.
pub unsafe fn pselect(
    hook: &'static str,
    n: c_int,
    sets: [*mut fd_set; 3],
    ts: *const timespec,
    mask: *const sigset_t,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the program's timeout, null or readable.
    if unsafe { is_zero_ts(ts) } {
        return call();
    }
    // SAFETY: the program's sets and mask.
    unsafe { select_probed(hook, n, sets, mask, call) }
}

/// select and pselect: probe with pselect6 and a zero timeout, the sets
/// put back as they were when nothing is ready (the probe overwrote them).
///
/// # Safety
///
/// `sets` are the program's (each null or readable and writable), `mask`
/// null or the program's.
unsafe fn select_probed(
    hook: &'static str,
    n: c_int,
    sets: [*mut fd_set; 3],
    mask: *const sigset_t,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the caller's contract: each set null or readable.
    let saved = sets.map(|s| (!s.is_null()).then(|| unsafe { *s }));
    /// pselect6's sixth argument: the signal mask and its size.
    #[repr(C)]
    struct SigmaskArg {
        mask: *const sigset_t,
        size: usize,
    }
    let zero = &ZERO_TS as *const timespec as usize;
    let arg = SigmaskArg {
        mask,
        size: super::SIGSET_BYTES,
    };
    let argp = if mask.is_null() {
        0
    } else {
        &arg as *const _ as usize
    };
    let [r, w, e] = sets.map(|s| s as usize);
    // SAFETY: the program's call with a zero timeout.
    let r = unsafe { sys::syscall6(libc::SYS_pselect6, n as usize, r, w, e, zero, argp) };
    if r == 0 {
        for (s, v) in sets.into_iter().zip(saved) {
            if let Some(v) = v {
                // SAFETY: the caller's contract: a set saved above is
                // writable.
                unsafe { *s = v };
            }
        }
    }
    after_probe(hook, r, call)
}

/// `epoll_wait(epfd, ev, max, timeout)`.
///
/// # Safety
///
/// The arguments are the program's, as `epoll_wait` takes them.
pub unsafe fn epoll_wait(
    hook: &'static str,
    (epfd, ev, max): (c_int, *mut epoll_event, c_int),
    timeout: c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    if timeout == 0 {
        return call();
    }
    let args = [epfd as usize, ev as usize, max as usize, 0, 0, 0];
    // SAFETY: the program's arguments, a zero timeout.
    unsafe { probe_then_wait(hook, libc::SYS_epoll_wait, args, call) }
}

/// `epoll_pwait(epfd, ev, max, timeout, mask)`, the kernel's `sigsetsize`
/// given.
///
/// # Safety
///
/// The arguments are the program's, as the system call takes them.
pub unsafe fn epoll_pwait(
    hook: &'static str,
    (epfd, ev, max): (c_int, *mut epoll_event, c_int),
    timeout: c_int,
    (mask, sigsetsize): (*const sigset_t, usize),
    call: impl FnOnce() -> c_int,
) -> c_int {
    if timeout == 0 {
        return call();
    }
    let args = [
        epfd as usize,
        ev as usize,
        max as usize,
        0,
        mask as usize,
        sigsetsize,
    ];
    // SAFETY: the program's arguments, a zero timeout.
    unsafe { probe_then_wait(hook, libc::SYS_epoll_pwait, args, call) }
}

/// `epoll_pwait2(epfd, ev, max, ts, mask)`, the kernel's `sigsetsize`
/// given.
///
/// # Safety
///
/// The arguments are the program's, as the system call takes them.
pub unsafe fn epoll_pwait2(
    hook: &'static str,
    (epfd, ev, max): (c_int, *mut epoll_event, c_int),
    ts: *const timespec,
    (mask, sigsetsize): (*const sigset_t, usize),
    call: impl FnOnce() -> c_int,
) -> c_int {
    let (epfd, ev, max) = (epfd as usize, ev as usize, max as usize);
    let args = |zero| [epfd, ev, max, zero, mask as usize, sigsetsize];
    // SAFETY: the caller's contract.
    unsafe { zero_ts_probe(hook, ts, libc::SYS_epoll_pwait2, args, call) }
}
