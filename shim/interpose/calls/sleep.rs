//! Sleeps: a sleep of zero (or to a deadline already past) keeps the
//! tokens; any other releases them. Pauses always release.

use core::ffi::c_int;
use libc::{clockid_t, timespec};

use crate::interpose::release::released;
use crate::interpose::timeout::{deadline_passed, is_zero_ts};

/// `nanosleep(req, rem)`.
///
/// # Safety
///
/// `req` is the program's argument (null or readable).
pub unsafe fn nanosleep(
    hook: &'static str,
    req: *const timespec,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    if unsafe { is_zero_ts(req) } {
        return call();
    }
    released(hook, call)
}

/// `clock_nanosleep(clock, flags, req, rem)`.
///
/// # Safety
///
/// `req` is the program's argument (null or readable).
pub unsafe fn clock_nanosleep(
    hook: &'static str,
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    let at_once = unsafe {
        is_zero_ts(req) || (flags & libc::TIMER_ABSTIME != 0 && deadline_passed(clock, req))
    };
    if at_once {
        return call();
    }
    released(hook, call)
}

/// `sleep(n)`, `usleep(n)`: a count of zero returns at once.
pub fn count<R>(hook: &'static str, zero: bool, call: impl FnOnce() -> R) -> R {
    if zero {
        return call();
    }
    released(hook, call)
}
