//! `syscall(2)`: futex waits (not when the word already changed) and the
//! numbers of other system calls that can block.

use core::ffi::{c_int, c_long};

use crate::interpose::release::released;

/// Does `syscall(nr, a1, a2, a3, ...)` wait? For futex waits, not when the
/// word already differs from the expected value (the kernel returns EAGAIN
/// at once). Other numbers that can block are treated as blocking.
///
/// # Safety
///
/// For a futex wait, `a1` is null or the program's futex word (readable).
unsafe fn blocks(nr: c_long, a1: c_long, a2: c_long, a3: c_long) -> bool {
    const FUTEX_CMD_MASK: c_long =
        !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as c_long);
    match nr {
        libc::SYS_futex => match (a2 & FUTEX_CMD_MASK) as c_int {
            libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_WAIT_REQUEUE_PI => {
                let word = a1 as *const u32;
                // SAFETY: the caller's contract.
                word.is_null() || unsafe { core::ptr::read_volatile(word) } == a3 as u32
            }
            libc::FUTEX_LOCK_PI | libc::FUTEX_LOCK_PI2 => true,
            _ => false,
        },
        libc::SYS_futex_waitv
        | libc::SYS_nanosleep
        | libc::SYS_clock_nanosleep
        | libc::SYS_wait4
        | libc::SYS_waitid
        | libc::SYS_pause
        | libc::SYS_rt_sigsuspend
        | libc::SYS_rt_sigtimedwait
        | libc::SYS_poll
        | libc::SYS_ppoll
        | libc::SYS_select
        | libc::SYS_pselect6
        | libc::SYS_epoll_wait
        | libc::SYS_epoll_pwait
        | libc::SYS_epoll_pwait2
        | libc::SYS_accept
        | libc::SYS_accept4
        | libc::SYS_connect
        | libc::SYS_flock
        | libc::SYS_msgrcv
        | libc::SYS_msgsnd
        | libc::SYS_mq_timedreceive
        | libc::SYS_mq_timedsend
        | libc::SYS_fsync
        | libc::SYS_fdatasync => true,
        _ => false,
    }
}

/// `syscall(nr, a1, a2, a3, ...)` (and a trapped `futex`): released when
/// it waits.
///
/// # Safety
///
/// The arguments are the program's, as the system call `nr` takes them.
pub unsafe fn syscall(
    hook: &'static str,
    (nr, a1, a2, a3): (c_long, c_long, c_long, c_long),
    call: impl FnOnce() -> c_long,
) -> c_long {
    // SAFETY: the caller's contract.
    if !unsafe { blocks(nr, a1, a2, a3) } {
        return call();
    }
    released(hook, call)
}
