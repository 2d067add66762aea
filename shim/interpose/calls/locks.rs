//! File locks: `flock` (probed with `LOCK_NB`) and `fcntl`'s waiting lock
//! commands (probed with their non-waiting forms).

use core::ffi::c_int;

use super::c_result;
use crate::interpose::release::released;
use crate::sys;

/// `flock(fd, op)`.
pub fn flock(hook: &'static str, fd: c_int, op: c_int, call: impl FnOnce() -> c_int) -> c_int {
    if op & (libc::LOCK_NB | libc::LOCK_UN) != 0 {
        return call();
    }
    let nb = (op | libc::LOCK_NB) as usize;
    // SAFETY: flock reads no memory.
    let r = unsafe { sys::syscall3(libc::SYS_flock, fd as usize, nb, 0) };
    if r == -(libc::EWOULDBLOCK as isize) {
        return released(hook, call);
    }
    c_result(r) as c_int
}

/// The non-waiting form of a waiting `fcntl` lock command; None for a
/// command that does not wait (it goes to libc as it is).
pub fn fcntl_try_form(cmd: c_int) -> Option<c_int> {
    match cmd {
        libc::F_SETLKW => Some(libc::F_SETLK),
        libc::F_OFD_SETLKW => Some(libc::F_OFD_SETLK),
        _ => None,
    }
}

/// `fcntl(fd, cmd, arg)`: only `F_SETLKW` / `F_OFD_SETLKW` wait.
///
/// # Safety
///
/// The arguments are the program's, as `fcntl` takes them.
pub unsafe fn fcntl(
    hook: &'static str,
    (fd, cmd, arg): (c_int, c_int, usize),
    call: impl FnOnce() -> c_int,
) -> c_int {
    let Some(try_cmd) = fcntl_try_form(cmd) else {
        return call();
    };
    // SAFETY: the program's lock request, not waiting.
    let r = unsafe { sys::syscall3(libc::SYS_fcntl, fd as usize, try_cmd as usize, arg) };
    if r == -(libc::EAGAIN as isize) || r == -(libc::EACCES as isize) {
        return released(hook, call);
    }
    c_result(r) as c_int
}
