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
    let past = ZERO_TS;
    // SAFETY: the program's call, with a deadline already past.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_mq_timedreceive,
            q as usize,
            buf as usize,
            len,
            prio as usize,
            &past as *const _ as usize,
            0,
        )
    };
    match r {
        WOULD_WAIT => released(hook, call),
        r => c_result(r),
    }
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
    let past = ZERO_TS;
    // SAFETY: the program's call, with a deadline already past.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_mq_timedsend,
            q as usize,
            buf as usize,
            len,
            prio as usize,
            &past as *const _ as usize,
            0,
        )
    };
    match r {
        WOULD_WAIT => released(hook, call),
        r => c_result(r) as c_int,
    }
}
