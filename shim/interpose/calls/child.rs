//! Child waits, probed with `WNOHANG`: a child already there (or an error)
//! is the call's answer with the tokens kept.

use core::ffi::c_int;
use libc::{id_t, idtype_t, pid_t, rusage, siginfo_t};

use super::c_result;
use crate::interpose::release::released;
use crate::sys;

/// `wait4(pid, status, options, ru)` (`wait`, `waitpid`, `wait3` are it
/// with some arguments fixed); `call()` is the call as the program made it.
///
/// # Safety
///
/// The arguments are the program's, as `wait4` takes them.
pub unsafe fn wait4(
    hook: &'static str,
    (pid, status, options, ru): (pid_t, *mut c_int, c_int, *mut rusage),
    call: impl FnOnce() -> pid_t,
) -> pid_t {
    if options & libc::WNOHANG != 0 {
        return call();
    }
    // SAFETY: the program's call, not waiting: 0 means it would wait.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_wait4,
            pid as usize,
            status as usize,
            (options | libc::WNOHANG) as usize,
            ru as usize,
            0,
            0,
        )
    };
    match r {
        0 => released(hook, call),
        r => c_result(r) as pid_t,
    }
}

/// `waitid(idtype, id, info, options)` and the system call's `ru` (null
/// from libc's `waitid`).
///
/// # Safety
///
/// The arguments are the program's, as the `waitid` system call takes
/// them.
pub unsafe fn waitid(
    hook: &'static str,
    (idtype, id, info, options): (idtype_t, id_t, *mut siginfo_t, c_int),
    ru: *mut rusage,
    call: impl FnOnce() -> c_int,
) -> c_int {
    if options & libc::WNOHANG != 0 || info.is_null() {
        return call();
    }
    // SAFETY: the program's call, not waiting.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_waitid,
            idtype as usize,
            id as usize,
            info as usize,
            (options | libc::WNOHANG) as usize,
            ru as usize,
            0,
        )
    };
    // With WNOHANG and no child ready, the kernel reports si_pid 0.
    // SAFETY: the kernel accepted `info` and wrote it.
    if r == 0 && unsafe { (*info).si_pid() } == 0 {
        return released(hook, call);
    }
    c_result(r) as c_int
}
