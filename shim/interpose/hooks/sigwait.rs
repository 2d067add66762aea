//! Signal waits (calls/sigwait.rs), and `sigsuspend`, which returns only
//! after a signal handler ran: it always blocks.

use core::ffi::c_int;
use libc::{siginfo_t, sigset_t, timespec};

// `calls::sigwait` by its path: the hook `sigwait` has a module of that
// name.
use crate::interpose::calls;
use crate::interpose::release::released;

hook! {
    fn sigsuspend(mask: *const sigset_t) -> c_int,
        before { mask_without_sigsys!(mask); }
        => |real| released("sigsuspend", || real(mask))
}

hook! {
    fn sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int
        => |real| calls::sigwait::sigwait("sigwait", set, sig, || real(set, sig))
}

hook! {
    fn sigwaitinfo(set: *const sigset_t, info: *mut siginfo_t) -> c_int
        => |real| calls::sigwait::sigtimedwait("sigwaitinfo", set, info, core::ptr::null(), || {
            real(set, info)
        })
}

hook! {
    fn sigtimedwait(set: *const sigset_t, info: *mut siginfo_t, ts: *const timespec) -> c_int
        => |real| calls::sigwait::sigtimedwait("sigtimedwait", set, info, ts, || {
            real(set, info, ts)
        })
}
