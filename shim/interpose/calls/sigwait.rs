//! Signal waits, probed with a zero timeout: a signal already pending is
//! taken with the tokens kept.

use core::ffi::c_int;
use libc::{siginfo_t, sigset_t, timespec};

use super::SIGSET_BYTES;
use crate::interpose::release::released;
use crate::interpose::timeout::{is_zero_ts, ZERO_TS};
use crate::sys;

/// `rt_sigtimedwait(set, info, {0, 0})`: the signal taken, or a negative
/// errno (EAGAIN: none pending).
///
/// # Safety
///
/// `set` and `info` are the program's (`info` may be null).
unsafe fn probe(set: *const sigset_t, info: *mut siginfo_t) -> isize {
    let zero = ZERO_TS;
    // SAFETY: the program's set and info; the timeout is ours.
    unsafe {
        sys::syscall6(
            libc::SYS_rt_sigtimedwait,
            set as usize,
            info as usize,
            &zero as *const _ as usize,
            SIGSET_BYTES,
            0,
            0,
        )
    }
}

/// `sigtimedwait(set, info, ts)` (`sigwaitinfo` is it with no timeout).
///
/// # Safety
///
/// The arguments are the program's, as `sigtimedwait` takes them.
pub unsafe fn sigtimedwait(
    hook: &'static str,
    set: *const sigset_t,
    info: *mut siginfo_t,
    ts: *const timespec,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the program's timeout, null or readable.
    if unsafe { is_zero_ts(ts) } {
        return call();
    }
    // SAFETY: the caller's contract.
    let r = unsafe { probe(set, info) };
    if r > 0 {
        return r as c_int;
    }
    released(hook, call)
}

/// `sigwait(set, sig)`: the signal number goes to `*sig`, 0 is returned.
///
/// # Safety
///
/// The arguments are the program's, as `sigwait` takes them.
pub unsafe fn sigwait(
    hook: &'static str,
    set: *const sigset_t,
    sig: *mut c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    let r = unsafe { probe(set, core::ptr::null_mut()) };
    if r > 0 {
        // SAFETY: the program's `sig`, which sigwait writes.
        unsafe { *sig = r as c_int };
        return 0;
    }
    released(hook, call)
}
