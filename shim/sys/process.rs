//! Who we are (thread and process ids), whether a thread still exists, and
//! the two ways out: a line on stderr and abort.

use super::syscall::{syscall3, syscall6};

/// The calling thread's kernel id. Not cached here: the per-thread state
/// caches it (and a fork child must see its own).
pub fn gettid() -> u32 {
    // SAFETY: gettid takes no argument and cannot fail.
    unsafe { syscall6(libc::SYS_gettid, 0, 0, 0, 0, 0, 0) as u32 }
}

/// The process id (not cached: a fork child must see its own).
pub fn getpid() -> u32 {
    // SAFETY: getpid takes no argument and cannot fail.
    unsafe { syscall6(libc::SYS_getpid, 0, 0, 0, 0, 0, 0) as u32 }
}

/// Does thread `tid` still exist in process `pid`? (`tgkill` with signal 0.)
pub fn thread_alive(pid: u32, tid: u32) -> bool {
    // SAFETY: signal 0 only checks that the thread exists; nothing is sent.
    let r = unsafe { syscall3(libc::SYS_tgkill, pid as usize, tid as usize, 0) };
    r != -(libc::ESRCH as isize)
}

/// Write `bytes` to stderr in one `write` (messages are built on the stack).
pub fn write_stderr(bytes: &[u8]) {
    // SAFETY: the kernel reads `bytes.len()` bytes of a live slice.
    unsafe {
        syscall3(libc::SYS_write, 2, bytes.as_ptr() as usize, bytes.len());
    }
}

/// End the process as a failed assertion does.
pub fn abort() -> ! {
    // abort(3) raises SIGABRT (core dump, the parent sees a signal), which is
    // what a C programmer expects of a failed assertion.
    // SAFETY: abort has no precondition; it does not return.
    unsafe { libc::abort() }
}
