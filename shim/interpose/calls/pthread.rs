//! pthread mutexes, rwlocks, joins and semaphores: tried first (a free
//! lock keeps the tokens). Condition and barrier waits have no probe:
//! they always release. (Only hooks come here: the futex waits inside
//! these functions reach the catch-all as `futex`, calls/futex.rs.)
//!
//! Retaking tokens after a condition wait happens with the mutex held
//! again. That cannot deadlock: a token holder that wants the mutex blocks
//! in `pthread_mutex_lock`, which releases its tokens.

use core::ffi::c_int;

use crate::interpose::release::released;
use crate::sys;

/// pthread calls that report errors by return value: `try_first` gives 0
/// (done, holding the tokens), EBUSY (would wait) or another error (the
/// call's own answer, e.g. EINVAL or EOWNERDEAD).
pub fn lock(
    hook: &'static str,
    try_first: impl FnOnce() -> c_int,
    wait: impl FnOnce() -> c_int,
) -> c_int {
    let saved = sys::errno();
    let r = try_first();
    sys::set_errno(saved);
    if r == libc::EBUSY {
        released(hook, wait)
    } else {
        r
    }
}

/// Semaphores report errors through errno: `try_first` (`sem_trywait`) is
/// tried; when it fails, the caller's errno is kept and `wait` runs with
/// the tokens released.
pub fn sem(
    hook: &'static str,
    try_first: impl FnOnce() -> c_int,
    wait: impl FnOnce() -> c_int,
) -> c_int {
    let saved = sys::errno();
    if try_first() == 0 {
        return 0;
    }
    sys::set_errno(saved);
    released(hook, wait)
}
