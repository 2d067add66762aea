//! The program's own signal calls, while the catch-all is on: SIGSYS
//! belongs to the shim. A handler the program installs for SIGSYS is
//! remembered and gets the SIGSYS that are not the shim's (seccomp); masks
//! the program sets never block SIGSYS. Without the catch-all these pass
//! straight through.

use core::ffi::c_int;
use libc::{sighandler_t, sigset_t};

use crate::catchall;

mod real {
    use core::ffi::c_int;
    use libc::{sighandler_t, sigset_t};
    real_fn!(sigaction: fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int);
    real_fn!(signal: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(sigset: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(bsd_signal: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(sysv_signal: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(sigprocmask: fn(c_int, *const sigset_t, *mut sigset_t) -> c_int);
    real_fn!(pthread_sigmask: fn(c_int, *const sigset_t, *mut sigset_t) -> c_int);
}

#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let f = real::sigaction::get();
    if !catchall::on() {
        return f(sig, act, old);
    }
    if catchall::program_sigaction(sig, act, old) {
        return 0;
    }
    if act.is_null() {
        return f(sig, act, old);
    }
    // The program's handlers must not block SIGSYS while they run.
    let mut copy: libc::sigaction = *act;
    libc::sigdelset(&mut copy.sa_mask, libc::SIGSYS);
    f(sig, &copy, old)
}

/// `signal` and its System V and BSD cousins, for SIGSYS while the
/// catch-all is on: remembered for the program, ours stays installed.
unsafe fn program_signal(sig: c_int, handler: sighandler_t, flags: c_int) -> Option<sighandler_t> {
    if sig != libc::SIGSYS || !catchall::on() {
        return None;
    }
    let mut act: libc::sigaction = core::mem::zeroed();
    act.sa_sigaction = handler;
    act.sa_flags = flags;
    let mut old: libc::sigaction = core::mem::zeroed();
    catchall::program_sigaction(sig, &act, &mut old);
    Some(old.sa_sigaction)
}

#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    program_signal(sig, handler, libc::SA_RESTART)
        .unwrap_or_else(|| real::signal::get()(sig, handler))
}

#[no_mangle]
pub unsafe extern "C" fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    program_signal(sig, handler, libc::SA_RESTART)
        .unwrap_or_else(|| real::bsd_signal::get()(sig, handler))
}

#[no_mangle]
pub unsafe extern "C" fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    let flags = libc::SA_RESETHAND | libc::SA_NODEFER;
    program_signal(sig, handler, flags).unwrap_or_else(|| real::sysv_signal::get()(sig, handler))
}

/// `sigset` (System V): SIG_HOLD would block the signal; for SIGSYS the
/// shim keeps it deliverable and answers as if it had been set.
#[no_mangle]
pub unsafe extern "C" fn sigset(sig: c_int, handler: sighandler_t) -> sighandler_t {
    const SIG_HOLD: sighandler_t = 2;
    if sig == libc::SIGSYS && catchall::on() && handler == SIG_HOLD {
        return program_signal(sig, libc::SIG_DFL, 0).unwrap_or(libc::SIG_DFL);
    }
    program_signal(sig, handler, 0).unwrap_or_else(|| real::sigset::get()(sig, handler))
}

#[no_mangle]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    let mut copy: sigset_t = core::mem::zeroed();
    real::sigprocmask::get()(how, catchall::without_sigsys(set, &mut copy), old)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    let mut copy: sigset_t = core::mem::zeroed();
    real::pthread_sigmask::get()(how, catchall::without_sigsys(set, &mut copy), old)
}
