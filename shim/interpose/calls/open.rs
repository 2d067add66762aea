//! `open` and `openat`: only a FIFO opened for one direction waits (for
//! the other end); every other open is taken as not blocking.

use core::ffi::{c_char, c_int};

use super::c_result;
use crate::interpose::release::released;
use crate::sys;

/// `openat(dirfd, path, flags, mode)` (`open` is it at `AT_FDCWD`);
/// `call()` is the call as the program made it.
///
/// # Safety
///
/// The arguments are the program's, as `openat` takes them.
pub unsafe fn openat(
    hook: &'static str,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    // SAFETY: the caller's contract.
    if !unsafe { is_waiting_fifo(dirfd, path, flags) } {
        return call();
    }
    // A FIFO open. Write-only has a probe: with O_NONBLOCK it succeeds when
    // a reader is there (then the descriptor is made blocking, as asked)
    // and fails with ENXIO when it would wait. Read-only has none: whether
    // a writer will come cannot be known, so the tokens are released.
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        let fl = (flags | libc::O_NONBLOCK) as usize;
        let (dirfd, path) = (dirfd as usize, path as usize);
        // SAFETY: the program's open, not waiting.
        let fd = unsafe { sys::syscall6(libc::SYS_openat, dirfd, path, fl, 0, 0, 0) };
        if fd >= 0 {
            // SAFETY: F_GETFL and F_SETFL on the descriptor just opened
            // read no memory.
            unsafe {
                let now = sys::syscall3(libc::SYS_fcntl, fd as usize, libc::F_GETFL as usize, 0);
                let blocking = (now as usize) & !(libc::O_NONBLOCK as usize);
                sys::syscall3(
                    libc::SYS_fcntl,
                    fd as usize,
                    libc::F_SETFL as usize,
                    blocking,
                );
            }
            return fd as c_int;
        }
        if fd != -(libc::ENXIO as isize) {
            return c_result(fd) as c_int;
        }
    }
    released(hook, call)
}

/// Is `path` a FIFO that this open may wait on? Opening a FIFO read-only or
/// write-only waits for the other end.
///
/// # Safety
///
/// `path` is the program's (null, or a string the kernel may read).
unsafe fn is_waiting_fifo(dirfd: c_int, path: *const c_char, flags: c_int) -> bool {
    if flags & (libc::O_NONBLOCK | libc::O_PATH) != 0
        || flags & libc::O_ACCMODE == libc::O_RDWR
        || path.is_null()
    {
        return false;
    }
    // SAFETY: a stat struct is plain data, valid when zero-filled.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the kernel reads the program's path and writes `st`, ours.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_newfstatat,
            dirfd as usize,
            path as usize,
            &mut st as *mut _ as usize,
            0,
            0,
            0,
        )
    };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO
}
