//! Message queues: System V's probed with `IPC_NOWAIT`, POSIX's with a
//! deadline already past.

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use libc::{size_t, ssize_t};

use super::c_result;
use crate::interpose::release::released;
use crate::interpose::timeout::ZERO_TS;
use crate::sys;

/// `msgrcv(id, msg, size, typ, flags)`.
///
/// # Safety
///
/// The arguments are the program's, as `msgrcv` takes them.
pub unsafe fn msgrcv(
    hook: &'static str,
    (id, msg, size, typ): (c_int, *mut c_void, size_t, c_long),
    flags: c_int,
    call: impl FnOnce() -> ssize_t,
) -> ssize_t {
    if flags & libc::IPC_NOWAIT != 0 {
        return call();
    }
    // SAFETY: the program's call, not waiting.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_msgrcv,
            id as usize,
            msg as usize,
            size,
            typ as usize,
            (flags | libc::IPC_NOWAIT) as usize,
            0,
        )
    };
    if r == -(libc::ENOMSG as isize) {
        return released(hook, call);
    }
    c_result(r)
}

/// `msgsnd(id, msg, size, flags)`.
///
/// # Safety
///
/// The arguments are the program's, as `msgsnd` takes them.
pub unsafe fn msgsnd(
    hook: &'static str,
    (id, msg, size): (c_int, *const c_void, size_t),
    flags: c_int,
    call: impl FnOnce() -> c_int,
) -> c_int {
    if flags & libc::IPC_NOWAIT != 0 {
        return call();
    }
    // SAFETY: the program's call, not waiting.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_msgsnd,
            id as usize,
            msg as usize,
            size,
            (flags | libc::IPC_NOWAIT) as usize,
            0,
            0,
        )
    };
    if r == -(libc::EAGAIN as isize) {
        return released(hook, call);
    }
    c_result(r) as c_int
}

/// The queue's own non-blocking answer (O_NONBLOCK queue): EAGAIN. A
/// deadline in the past on a blocking queue: ETIMEDOUT, i.e. it would wait.
const WOULD_WAIT: isize = -(libc::ETIMEDOUT as isize);

/// `mq_timedreceive(q, buf, len, prio, ts)` (`mq_receive` is it with no
/// deadline).
///
/// # Safety
///
/// The arguments are the program's, as `mq_timedreceive` takes them.
pub unsafe fn mq_receive(
    hook: &'static str,
    (q, buf, len, prio): (libc::mqd_t, *mut c_char, size_t, *mut c_uint),
    call: impl FnOnce() -> ssize_t,
) -> ssize_t {
    let args = [q as usize, buf as usize, len, prio as usize];
    // SAFETY: the caller's contract.
    unsafe { mq_past_deadline(hook, libc::SYS_mq_timedreceive, args, call) }
}

/// `mq_timedsend(q, buf, len, prio, ts)` (`mq_send` is it with no
/// deadline).
///
/// # Safety
///
/// The arguments are the program's, as `mq_timedsend` takes them.
pub unsafe fn mq_send(
    hook: &'static str,
    (q, buf, len, prio): (libc::mqd_t, *const c_char, size_t, c_uint),
    call: impl FnOnce() -> c_int,
) -> c_int {
    let args = [q as usize, buf as usize, len, prio as usize];
    // SAFETY: the caller's contract.
    unsafe { mq_past_deadline(hook, libc::SYS_mq_timedsend, args, || call() as isize) as c_int }
}

/// System call `nr` (`mq_timedreceive`, `mq_timedsend`) on the program's
/// first four arguments with a deadline already past: ETIMEDOUT says it
/// would wait.
///
/// # Safety
///
/// `args` are the program's arguments of `nr`, but for the deadline.
unsafe fn mq_past_deadline(
    hook: &'static str,
    nr: i64,
    [q, buf, len, prio]: [usize; 4],
    call: impl FnOnce() -> isize,
) -> isize {
    let past = &ZERO_TS as *const libc::timespec as usize;
    // SAFETY: the caller's contract: the program's call, not waiting.
    let r = unsafe { sys::syscall6(nr, q, buf, len, prio, past, 0) };
    match r {
        WOULD_WAIT => released(hook, call),
        r => c_result(r),
    }
}
