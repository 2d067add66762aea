//! Running a trapped system call: its arguments decoded as the system
//! call takes them and handed, with the adapter (trapped.rs), to the same
//! function of `calls/` as its symbol hook. The tokens are kept when the
//! call completes at once, released around it when it would block.

use core::ffi::{c_int, c_long, c_uint};
use libc::{clockid_t, id_t, idtype_t, mqd_t, nfds_t, pid_t, sigset_t, socklen_t};

use super::redirect::WaitMask;
use super::trapped::{kernel_result, Trapped};
use crate::interpose::calls::rw::{self, At};
use crate::interpose::calls::{child, futex, ipc, locks, net, open, ready, sigwait, sleep};
use crate::interpose::release::released;

/// The name the catch-all's releases go by (`LWKT_STATS`, misuse lines).
const HOOK: &str = "catch-all";

/// Run the trapped system call `nr`. Returns the kernel's value (negative
/// errno).
///
/// # Safety
///
/// `nr` and `a` are the system call the program made, from its registers.
pub(super) unsafe fn run(nr: i64, a: [usize; 6]) -> isize {
    let Some(family) = blocking_family(nr) else {
        // SAFETY: the caller's contract.
        return unsafe { Trapped::new(nr, a) }.raw();
    };
    // SAFETY: the caller's contract.
    unsafe { run_blocking(family, nr, a) }
}

/// How a call that may block runs: the function of `calls/` for its
/// family (probe, release, block, retake).
pub(super) type Family = fn(Trapped) -> isize;

/// The family of system call `nr`, or None when it cannot block (it then
/// runs as it is, the tokens kept).
pub(super) fn blocking_family(nr: i64) -> Option<Family> {
    Some(match nr {
        libc::SYS_read
        | libc::SYS_pread64
        | libc::SYS_readv
        | libc::SYS_preadv
        | libc::SYS_write
        | libc::SYS_pwrite64
        | libc::SYS_writev
        | libc::SYS_pwritev => read_write,
        libc::SYS_recvfrom
        | libc::SYS_recvmsg
        | libc::SYS_sendto
        | libc::SYS_sendmsg
        | libc::SYS_accept
        | libc::SYS_accept4
        | libc::SYS_connect => sockets,
        libc::SYS_poll
        | libc::SYS_ppoll
        | libc::SYS_select
        | libc::SYS_pselect6
        | libc::SYS_epoll_wait
        | libc::SYS_epoll_pwait
        | libc::SYS_epoll_pwait2 => readiness,
        libc::SYS_nanosleep
        | libc::SYS_clock_nanosleep
        | libc::SYS_wait4
        | libc::SYS_waitid
        | libc::SYS_rt_sigtimedwait
        | libc::SYS_futex => waits,
        libc::SYS_flock
        | libc::SYS_fcntl
        | libc::SYS_open
        | libc::SYS_openat
        | libc::SYS_msgrcv
        | libc::SYS_msgsnd
        | libc::SYS_mq_timedreceive
        | libc::SYS_mq_timedsend => files_and_queues,
        // No probe: whether they wait cannot be known (or, for the
        // vectored message calls and the `*v2` calls, is not probed).
        libc::SYS_futex_waitv
        | libc::SYS_pause
        | libc::SYS_rt_sigsuspend
        | libc::SYS_fsync
        | libc::SYS_fdatasync
        | libc::SYS_sync
        | libc::SYS_syncfs
        | libc::SYS_sync_file_range
        | libc::SYS_preadv2
        | libc::SYS_pwritev2
        | libc::SYS_recvmmsg
        | libc::SYS_sendmmsg => unprobed,
        _ => return None,
    })
}

/// Run call `nr` of `family` (`blocking_family`'s answer for it).
///
/// # Safety
///
/// As for `run`.
pub(super) unsafe fn run_blocking(family: Family, nr: i64, a: [usize; 6]) -> isize {
    // Waits that install a signal mask must not block SIGSYS with it.
    let mut mask = WaitMask::default();
    // SAFETY: the caller's contract.
    let a = unsafe { mask.apply(nr, a) };
    // SAFETY: the program's call, a wait's mask replaced by the same mask
    // without SIGSYS.
    let t = unsafe { Trapped::new(nr, a) };
    kernel_result(family(t))
}

/// Calls that are not probed: released around the call.
fn unprobed(t: Trapped) -> isize {
    released(HOOK, || t.call())
}

/// The read and write families (calls/rw.rs).
fn read_write(t: Trapped) -> isize {
    let (fd, a0) = (t.int(0), t.arg(0));
    let at = match t.nr() {
        libc::SYS_pread64 | libc::SYS_preadv | libc::SYS_pwrite64 | libc::SYS_pwritev => {
            At::Offset(t.arg(3) as i64)
        }
        _ => At::Position,
    };
    // The same call on (part of) the caller's buffers: a buffer and its
    // length, or a vector and its count; the offset (ignored by the
    // calls at the position).
    let call = |b: usize, n: usize, o: i64| t.call_with([a0, b, n, o as usize, 0, 0]);
    // The rest of a write to a stream socket.
    let send = |m: *const libc::msghdr, fl: c_int| {
        t.call_as(libc::SYS_sendmsg, [a0, m as usize, fl as usize, 0, 0, 0])
    };
    // SAFETY: each arm hands over the trapped call's own arguments, as the
    // system call takes them; `call` is the same call on parts of them.
    unsafe {
        match t.nr() {
            libc::SYS_read | libc::SYS_pread64 => {
                rw::read(HOOK, (fd, t.ptr(1), t.arg(2)), at, |b, n, o| {
                    call(b as usize, n, o)
                })
            }
            libc::SYS_readv | libc::SYS_preadv => {
                let vector = (fd, t.cptr(1), t.int(2));
                rw::readv(HOOK, vector, at, |v, c, o| call(v as usize, c as usize, o))
            }
            libc::SYS_write | libc::SYS_pwrite64 => {
                let buf = (fd, t.cptr(1), t.arg(2));
                rw::write(HOOK, buf, at, |b, n, o| call(b as usize, n, o), send)
            }
            // writev, pwritev
            _ => {
                let vector = (fd, t.cptr(1), t.int(2));
                rw::writev(
                    HOOK,
                    vector,
                    at,
                    |v, c, o| call(v as usize, c as usize, o),
                    send,
                )
            }
        }
    }
}

/// Sockets (calls/net.rs).
fn sockets(t: Trapped) -> isize {
    let (fd, a0) = (t.int(0), t.arg(0));
    // SAFETY: each arm hands over the trapped call's own arguments, as the
    // system call takes them; `call` is the same call on parts of them.
    unsafe {
        match t.nr() {
            libc::SYS_recvfrom => {
                let args = (fd, t.ptr(1), t.arg(2), t.int(3));
                net::recvfrom(HOOK, args, (t.ptr(4), t.ptr(5)), || t.call())
            }
            libc::SYS_recvmsg => net::recvmsg(HOOK, fd, t.ptr(1), t.int(2), || t.call()),
            libc::SYS_sendto => {
                let (a4, a5) = (t.arg(4), t.arg(5));
                let args = (fd, t.cptr(1), t.arg(2), t.int(3));
                let call = |b: *const _, n, fl: c_int| {
                    t.call_with([a0, b as usize, n, fl as usize, a4, a5])
                };
                net::sendto(HOOK, args, (t.cptr(4), a5 as socklen_t), call)
            }
            libc::SYS_sendmsg => net::sendmsg(HOOK, fd, t.ptr(1), t.int(2), |m, fl| {
                t.call_with([a0, m as usize, fl as usize, 0, 0, 0])
            }),
            // accept, accept4, connect
            _ => net::connection(HOOK, fd, || t.call() as c_int) as isize,
        }
    }
}

/// Readiness waits (calls/ready.rs).
fn readiness(t: Trapped) -> isize {
    let call = || t.call() as c_int;
    let epoll = (t.int(0), t.ptr(1), t.int(2));
    let sets = [t.ptr(1), t.ptr(2), t.ptr(3)];
    // SAFETY: each arm hands over the trapped call's own arguments, as the
    // system call takes them (its mask made safe, see `run`).
    let r = unsafe {
        match t.nr() {
            libc::SYS_poll => ready::poll(HOOK, t.ptr(0), t.arg(1) as nfds_t, t.int(2), call),
            libc::SYS_ppoll => {
                let fds = (t.ptr(0), t.arg(1) as nfds_t);
                ready::ppoll(HOOK, fds, t.ptr(2), (t.ptr(3), t.arg(4)), call)
            }
            libc::SYS_select => ready::select(HOOK, t.int(0), sets, t.ptr(4), call),
            libc::SYS_pselect6 => {
                // The sixth argument: the mask's address and size.
                let arg = t.ptr::<*const sigset_t>(5);
                let mask = if arg.is_null() {
                    core::ptr::null()
                } else {
                    *arg
                };
                ready::pselect(HOOK, t.int(0), sets, t.ptr(4), mask, call)
            }
            libc::SYS_epoll_wait => ready::epoll_wait(HOOK, epoll, t.int(3), call),
            libc::SYS_epoll_pwait => {
                ready::epoll_pwait(HOOK, epoll, t.int(3), (t.ptr(4), t.arg(5)), call)
            }
            // epoll_pwait2
            _ => ready::epoll_pwait2(HOOK, epoll, t.ptr(3), (t.ptr(4), t.arg(5)), call),
        }
    };
    r as isize
}

/// Sleeps, child waits, signal waits, futex waits (calls/sleep.rs,
/// child.rs, sigwait.rs, futex.rs).
fn waits(t: Trapped) -> isize {
    let call = || t.call() as c_int;
    // SAFETY: each arm hands over the trapped call's own arguments, as the
    // system call takes them.
    unsafe {
        match t.nr() {
            libc::SYS_nanosleep => sleep::nanosleep(HOOK, t.ptr(0), call) as isize,
            libc::SYS_clock_nanosleep => {
                let clock = t.int(0) as clockid_t;
                sleep::clock_nanosleep(HOOK, clock, t.int(1), t.ptr(2), call) as isize
            }
            libc::SYS_wait4 => {
                let args = (t.int(0) as pid_t, t.ptr(1), t.int(2), t.ptr(3));
                child::wait4(HOOK, args, || t.call() as pid_t) as isize
            }
            libc::SYS_waitid => {
                let args = (t.arg(0) as idtype_t, t.arg(1) as id_t, t.ptr(2), t.int(3));
                child::waitid(HOOK, args, t.ptr(4), call) as isize
            }
            libc::SYS_rt_sigtimedwait => {
                sigwait::sigtimedwait(HOOK, t.ptr(0), t.ptr(1), t.ptr(2), call) as isize
            }
            // futex
            _ => {
                let args = (
                    t.nr(),
                    t.arg(0) as c_long,
                    t.arg(1) as c_long,
                    t.arg(2) as c_long,
                );
                futex::syscall(HOOK, args, || t.call() as c_long) as isize
            }
        }
    }
}

/// File locks, FIFO opens, message queues (calls/locks.rs, open.rs,
/// ipc.rs).
fn files_and_queues(t: Trapped) -> isize {
    let call = || t.call() as c_int;
    // SAFETY: each arm hands over the trapped call's own arguments, as the
    // system call takes them.
    unsafe {
        match t.nr() {
            libc::SYS_flock => locks::flock(HOOK, t.int(0), t.int(1), call) as isize,
            libc::SYS_fcntl => locks::fcntl(HOOK, (t.int(0), t.int(1), t.arg(2)), call) as isize,
            libc::SYS_open => open::openat(HOOK, libc::AT_FDCWD, t.ptr(0), t.int(1), call) as isize,
            libc::SYS_openat => open::openat(HOOK, t.int(0), t.ptr(1), t.int(2), call) as isize,
            libc::SYS_msgrcv => {
                let args = (t.int(0), t.ptr(1), t.arg(2), t.arg(3) as c_long);
                ipc::msgrcv(HOOK, args, t.int(4), || t.call())
            }
            libc::SYS_msgsnd => {
                ipc::msgsnd(HOOK, (t.int(0), t.ptr(1), t.arg(2)), t.int(3), call) as isize
            }
            libc::SYS_mq_timedreceive => {
                let args = (t.int(0) as mqd_t, t.ptr(1), t.arg(2), t.ptr(3));
                ipc::mq_receive(HOOK, args, || t.call())
            }
            // mq_timedsend
            _ => {
                let args = (t.int(0) as mqd_t, t.cptr(1), t.arg(2), t.arg(3) as c_uint);
                ipc::mq_send(HOOK, args, call) as isize
            }
        }
    }
}
