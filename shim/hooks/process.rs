//! Sleeps, child waits, signal waits, `syscall(SYS_futex, ...)` and the
//! System V and POSIX message queues.

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use libc::{
    clockid_t, id_t, idtype_t, pid_t, rusage, siginfo_t, sigset_t, size_t, ssize_t, timespec,
    useconds_t,
};

use super::{c_result, held, holding, is_zero_ts, released, ZERO_TS};
use crate::sys;

mod real {
    use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
    use libc::{
        clockid_t, id_t, idtype_t, pid_t, rusage, siginfo_t, sigset_t, size_t, ssize_t, timespec,
        useconds_t,
    };
    real_fn!(nanosleep: fn(*const timespec, *mut timespec) -> c_int);
    real_fn!(clock_nanosleep: fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int);
    real_fn!(sleep: fn(c_uint) -> c_uint);
    real_fn!(usleep: fn(useconds_t) -> c_int);
    real_fn!(pause: fn() -> c_int);
    real_fn!(wait: fn(*mut c_int) -> pid_t);
    real_fn!(waitpid: fn(pid_t, *mut c_int, c_int) -> pid_t);
    real_fn!(waitid: fn(idtype_t, id_t, *mut siginfo_t, c_int) -> c_int);
    real_fn!(wait3: fn(*mut c_int, c_int, *mut rusage) -> pid_t);
    real_fn!(wait4: fn(pid_t, *mut c_int, c_int, *mut rusage) -> pid_t);
    real_fn!(sigsuspend: fn(*const sigset_t) -> c_int);
    real_fn!(sigwait: fn(*const sigset_t, *mut c_int) -> c_int);
    real_fn!(sigwaitinfo: fn(*const sigset_t, *mut siginfo_t) -> c_int);
    real_fn!(sigtimedwait: fn(*const sigset_t, *mut siginfo_t, *const timespec) -> c_int);
    real_fn!(syscall: fn(c_long, c_long, c_long, c_long, c_long, c_long, c_long) -> c_long);
    real_fn!(msgrcv: fn(c_int, *mut c_void, size_t, c_long, c_int) -> ssize_t);
    real_fn!(msgsnd: fn(c_int, *const c_void, size_t, c_int) -> c_int);
    real_fn!(mq_receive: fn(libc::mqd_t, *mut c_char, size_t, *mut c_uint) -> ssize_t);
    real_fn!(mq_timedreceive: fn(libc::mqd_t, *mut c_char, size_t, *mut c_uint, *const timespec) -> ssize_t);
    real_fn!(mq_send: fn(libc::mqd_t, *const c_char, size_t, c_uint) -> c_int);
    real_fn!(mq_timedsend: fn(libc::mqd_t, *const c_char, size_t, c_uint, *const timespec) -> c_int);
}

// ---- sleeps: a zero (or already past) sleep keeps the tokens ----

#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let f = real::nanosleep::get();
    if !holding() {
        return f(req, rem);
    }
    held(move || {
        if is_zero_ts(req) {
            return f(req, rem);
        }
        held(move || released("nanosleep", || f(req, rem)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let f = real::clock_nanosleep::get();
    if !holding()
        || is_zero_ts(req)
        || (flags & libc::TIMER_ABSTIME != 0 && deadline_passed(clock, req))
    {
        return f(clock, flags, req, rem);
    }
    held(move || released("clock_nanosleep", || f(clock, flags, req, rem)))
}

/// Is the absolute time `*ts` on `clock` already past?
pub(crate) unsafe fn deadline_passed(clock: clockid_t, ts: *const timespec) -> bool {
    let mut now = ZERO_TS;
    if ts.is_null() || libc::clock_gettime(clock, &mut now) != 0 {
        return false;
    }
    (now.tv_sec, now.tv_nsec) >= ((*ts).tv_sec, (*ts).tv_nsec)
}

#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let f = real::sleep::get();
    if !holding() {
        return f(secs);
    }
    held(move || {
        if secs == 0 {
            return f(secs);
        }
        held(move || released("sleep", || f(secs)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn usleep(usecs: useconds_t) -> c_int {
    let f = real::usleep::get();
    if !holding() {
        return f(usecs);
    }
    held(move || {
        if usecs == 0 {
            return f(usecs);
        }
        held(move || released("usleep", || f(usecs)))
    })
}

/// pause and sigsuspend return only after a signal handler ran: they always
/// block.
#[no_mangle]
pub unsafe extern "C" fn pause() -> c_int {
    let f = real::pause::get();
    if !holding() {
        return f();
    }
    held(move || released("pause", || f()))
}

#[no_mangle]
pub unsafe extern "C" fn sigsuspend(mask: *const sigset_t) -> c_int {
    let f = real::sigsuspend::get();
    // The mask it waits with must not block SIGSYS either (catch-all).
    let mut copy: sigset_t = core::mem::zeroed();
    let mask = crate::catchall::without_sigsys(mask, &mut copy);
    if !holding() {
        return f(mask);
    }
    held(move || released("sigsuspend", || f(mask)))
}

// ---- child waits: probe with WNOHANG ----

/// wait4 with WNOHANG: a child was reaped (or an error) is the call's
/// result; 0 means it would wait.
unsafe fn wait4_probe(pid: pid_t, status: *mut c_int, options: c_int, ru: *mut rusage) -> isize {
    sys::syscall6(
        libc::SYS_wait4,
        pid as usize,
        status as usize,
        (options | libc::WNOHANG) as usize,
        ru as usize,
        0,
        0,
    )
}

pub(crate) unsafe fn wait_family(
    hook: &'static str,
    args: (pid_t, *mut c_int, c_int, *mut rusage),
    real: impl FnOnce() -> pid_t,
) -> pid_t {
    let (pid, status, options, ru) = args;
    if options & libc::WNOHANG != 0 {
        return real();
    }
    match wait4_probe(pid, status, options, ru) {
        0 => released(hook, real),
        r => c_result(r) as pid_t,
    }
}

#[no_mangle]
pub unsafe extern "C" fn wait(status: *mut c_int) -> pid_t {
    let f = real::wait::get();
    if !holding() {
        return f(status);
    }
    held(move || wait_family("wait", (-1, status, 0, core::ptr::null_mut()), || f(status)))
}

#[no_mangle]
pub unsafe extern "C" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let f = real::waitpid::get();
    if !holding() {
        return f(pid, status, options);
    }
    held(move || {
        wait_family(
            "waitpid",
            (pid, status, options, core::ptr::null_mut()),
            || f(pid, status, options),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn wait3(status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t {
    let f = real::wait3::get();
    if !holding() {
        return f(status, options, ru);
    }
    held(move || {
        wait_family("wait3", (-1, status, options, ru), || {
            f(status, options, ru)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    ru: *mut rusage,
) -> pid_t {
    let f = real::wait4::get();
    if !holding() {
        return f(pid, status, options, ru);
    }
    held(move || {
        wait_family("wait4", (pid, status, options, ru), || {
            f(pid, status, options, ru)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn waitid(
    idtype: idtype_t,
    id: id_t,
    info: *mut siginfo_t,
    options: c_int,
) -> c_int {
    let f = real::waitid::get();
    if !holding() {
        return f(idtype, id, info, options);
    }
    held(move || {
        if options & libc::WNOHANG != 0 || info.is_null() {
            return f(idtype, id, info, options);
        }
        let r = sys::syscall6(
            libc::SYS_waitid,
            idtype as usize,
            id as usize,
            info as usize,
            (options | libc::WNOHANG) as usize,
            0,
            0,
        );
        // With WNOHANG and no child ready, the kernel reports si_pid 0.
        if r == 0 && (*info).si_pid() == 0 {
            return released("waitid", || f(idtype, id, info, options));
        }
        c_result(r) as c_int
    })
}

// ---- signal waits: probe with a zero timeout ----

pub(crate) unsafe fn sigtimedwait_probe(set: *const sigset_t, info: *mut siginfo_t) -> isize {
    let zero = ZERO_TS;
    sys::syscall6(
        libc::SYS_rt_sigtimedwait,
        set as usize,
        info as usize,
        &zero as *const _ as usize,
        8,
        0,
        0,
    )
}

#[no_mangle]
pub unsafe extern "C" fn sigwait(set: *const sigset_t, sig: *mut c_int) -> c_int {
    let f = real::sigwait::get();
    if !holding() {
        return f(set, sig);
    }
    held(move || {
        let r = sigtimedwait_probe(set, core::ptr::null_mut());
        if r > 0 {
            *sig = r as c_int;
            return 0;
        }
        released("sigwait", || f(set, sig))
    })
}

#[no_mangle]
pub unsafe extern "C" fn sigwaitinfo(set: *const sigset_t, info: *mut siginfo_t) -> c_int {
    let f = real::sigwaitinfo::get();
    if !holding() {
        return f(set, info);
    }
    held(move || {
        let r = sigtimedwait_probe(set, info);
        if r > 0 {
            return r as c_int;
        }
        released("sigwaitinfo", || f(set, info))
    })
}

#[no_mangle]
pub unsafe extern "C" fn sigtimedwait(
    set: *const sigset_t,
    info: *mut siginfo_t,
    ts: *const timespec,
) -> c_int {
    let f = real::sigtimedwait::get();
    if !holding() {
        return f(set, info, ts);
    }
    held(move || {
        if is_zero_ts(ts) {
            return f(set, info, ts);
        }
        let r = sigtimedwait_probe(set, info);
        if r > 0 {
            return r as c_int;
        }
        released("sigtimedwait", || f(set, info, ts))
    })
}

// ---- syscall(2): futex waits ----

/// Does `syscall(nr, a1, a2, a3, ...)` wait? For futex waits, not when the
/// word already differs from the expected value (the kernel returns EAGAIN
/// at once). Other numbers that can block are treated as blocking.
pub(crate) unsafe fn syscall_blocks(nr: c_long, a1: c_long, a2: c_long, a3: c_long) -> bool {
    const FUTEX_CMD_MASK: c_long =
        !((libc::FUTEX_PRIVATE_FLAG | libc::FUTEX_CLOCK_REALTIME) as c_long);
    match nr {
        libc::SYS_futex => match (a2 & FUTEX_CMD_MASK) as c_int {
            libc::FUTEX_WAIT | libc::FUTEX_WAIT_BITSET | libc::FUTEX_WAIT_REQUEUE_PI => {
                let word = a1 as *const u32;
                word.is_null() || core::ptr::read_volatile(word) == a3 as u32
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

#[no_mangle]
pub unsafe extern "C" fn syscall(
    nr: c_long,
    a1: c_long,
    a2: c_long,
    a3: c_long,
    a4: c_long,
    a5: c_long,
    a6: c_long,
) -> c_long {
    let f = real::syscall::get();
    if !holding() {
        return f(nr, a1, a2, a3, a4, a5, a6);
    }
    held(move || {
        if !syscall_blocks(nr, a1, a2, a3) {
            return f(nr, a1, a2, a3, a4, a5, a6);
        }
        held(move || released("syscall", || f(nr, a1, a2, a3, a4, a5, a6)))
    })
}

// ---- System V message queues: probe with IPC_NOWAIT ----

#[no_mangle]
pub unsafe extern "C" fn msgrcv(
    id: c_int,
    msg: *mut c_void,
    size: size_t,
    typ: c_long,
    flags: c_int,
) -> ssize_t {
    let f = real::msgrcv::get();
    if !holding() {
        return f(id, msg, size, typ, flags);
    }
    held(move || {
        if flags & libc::IPC_NOWAIT != 0 {
            return f(id, msg, size, typ, flags);
        }
        let r = sys::syscall6(
            libc::SYS_msgrcv,
            id as usize,
            msg as usize,
            size,
            typ as usize,
            (flags | libc::IPC_NOWAIT) as usize,
            0,
        );
        if r == -(libc::ENOMSG as isize) {
            return released("msgrcv", || f(id, msg, size, typ, flags));
        }
        c_result(r)
    })
}

#[no_mangle]
pub unsafe extern "C" fn msgsnd(
    id: c_int,
    msg: *const c_void,
    size: size_t,
    flags: c_int,
) -> c_int {
    let f = real::msgsnd::get();
    if !holding() {
        return f(id, msg, size, flags);
    }
    held(move || {
        if flags & libc::IPC_NOWAIT != 0 {
            return f(id, msg, size, flags);
        }
        let r = sys::syscall6(
            libc::SYS_msgsnd,
            id as usize,
            msg as usize,
            size,
            (flags | libc::IPC_NOWAIT) as usize,
            0,
            0,
        );
        if r == -(libc::EAGAIN as isize) {
            return released("msgsnd", || f(id, msg, size, flags));
        }
        c_result(r) as c_int
    })
}

// ---- POSIX message queues: probe with a deadline already past ----

/// The queue's own non-blocking answer (O_NONBLOCK queue): EAGAIN. A
/// deadline in the past on a blocking queue: ETIMEDOUT, i.e. it would wait.
pub(crate) const WOULD_WAIT: isize = -(libc::ETIMEDOUT as isize);

pub(crate) unsafe fn mq_receive_probe(
    q: libc::mqd_t,
    buf: *mut c_char,
    len: size_t,
    prio: *mut c_uint,
) -> isize {
    let past = ZERO_TS;
    sys::syscall6(
        libc::SYS_mq_timedreceive,
        q as usize,
        buf as usize,
        len,
        prio as usize,
        &past as *const _ as usize,
        0,
    )
}

pub(crate) unsafe fn mq_send_probe(
    q: libc::mqd_t,
    buf: *const c_char,
    len: size_t,
    prio: c_uint,
) -> isize {
    let past = ZERO_TS;
    sys::syscall6(
        libc::SYS_mq_timedsend,
        q as usize,
        buf as usize,
        len,
        prio as usize,
        &past as *const _ as usize,
        0,
    )
}

#[no_mangle]
pub unsafe extern "C" fn mq_receive(
    q: libc::mqd_t,
    buf: *mut c_char,
    len: size_t,
    prio: *mut c_uint,
) -> ssize_t {
    let f = real::mq_receive::get();
    if !holding() {
        return f(q, buf, len, prio);
    }
    held(move || match mq_receive_probe(q, buf, len, prio) {
        WOULD_WAIT => released("mq_receive", || f(q, buf, len, prio)),
        r => c_result(r),
    })
}

#[no_mangle]
pub unsafe extern "C" fn mq_timedreceive(
    q: libc::mqd_t,
    buf: *mut c_char,
    len: size_t,
    prio: *mut c_uint,
    ts: *const timespec,
) -> ssize_t {
    let f = real::mq_timedreceive::get();
    if !holding() {
        return f(q, buf, len, prio, ts);
    }
    held(move || match mq_receive_probe(q, buf, len, prio) {
        WOULD_WAIT => released("mq_timedreceive", || f(q, buf, len, prio, ts)),
        r => c_result(r),
    })
}

#[no_mangle]
pub unsafe extern "C" fn mq_send(
    q: libc::mqd_t,
    buf: *const c_char,
    len: size_t,
    prio: c_uint,
) -> c_int {
    let f = real::mq_send::get();
    if !holding() {
        return f(q, buf, len, prio);
    }
    held(move || match mq_send_probe(q, buf, len, prio) {
        WOULD_WAIT => released("mq_send", || f(q, buf, len, prio)),
        r => c_result(r) as c_int,
    })
}

#[no_mangle]
pub unsafe extern "C" fn mq_timedsend(
    q: libc::mqd_t,
    buf: *const c_char,
    len: size_t,
    prio: c_uint,
    ts: *const timespec,
) -> c_int {
    let f = real::mq_timedsend::get();
    if !holding() {
        return f(q, buf, len, prio, ts);
    }
    held(move || match mq_send_probe(q, buf, len, prio) {
        WOULD_WAIT => released("mq_timedsend", || f(q, buf, len, prio, ts)),
        r => c_result(r) as c_int,
    })
}
