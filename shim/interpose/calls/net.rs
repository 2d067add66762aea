//! Sockets: receive and send (tried first with `MSG_DONTWAIT`), accept and
//! connect (no per-call probe exists: they release unless the socket is
//! non-blocking), `recvmmsg` (the messages already there are kept, the
//! rest awaited).

use core::ffi::{c_int, c_uint, c_void};
use libc::{mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t};

use super::c_result;
use crate::interpose::descriptor::{continues_after_part, nonblocking};
use crate::interpose::iov::{iov_request, IovSpan, MAX_RW_COUNT};
use crate::interpose::release::released;
use crate::sys;

const EAGAIN: isize = -(libc::EAGAIN as isize);

/// `recvfrom(fd, buf, n, flags, addr, len)` (`recv` is it with no
/// address); `call()` is the call as the program made it.
///
/// # Safety
///
/// The arguments are the program's, as `recvfrom` takes them.
pub unsafe fn recvfrom(
    hook: &'static str,
    (fd, buf, n, flags): (c_int, *mut c_void, size_t, c_int),
    (addr, len): (*mut sockaddr, *mut socklen_t),
    call: impl Fn() -> ssize_t,
) -> ssize_t {
    let probe = |fl: c_int| {
        // SAFETY: the program's call, with `fl` for its flags: the kernel
        // checks the arguments and writes what they name.
        unsafe {
            sys::syscall6(
                libc::SYS_recvfrom,
                fd as usize,
                buf as usize,
                n,
                fl as usize,
                addr as usize,
                len as usize,
            )
        }
    };
    receive(hook, fd, flags, probe, call)
}

/// `recvmsg(fd, msg, flags)`; `call()` is the call as the program made it.
///
/// # Safety
///
/// The arguments are the program's, as `recvmsg` takes them.
pub unsafe fn recvmsg(
    hook: &'static str,
    fd: c_int,
    msg: *mut msghdr,
    flags: c_int,
    call: impl Fn() -> ssize_t,
) -> ssize_t {
    let probe = |fl: c_int| {
        // SAFETY: the program's call, with `fl` for its flags.
        unsafe { sys::syscall3(libc::SYS_recvmsg, fd as usize, msg as usize, fl as usize) }
    };
    receive(hook, fd, flags, probe, call)
}

/// recvfrom and recvmsg: `probe(flags)` is the raw system call with those
/// flags.
fn receive(
    hook: &'static str,
    fd: c_int,
    flags: c_int,
    probe: impl Fn(c_int) -> isize,
    call: impl Fn() -> ssize_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return call();
    }
    // MSG_WAITALL waits for all of it: how much is there cannot be known.
    if flags & libc::MSG_WAITALL != 0 {
        return released(hook, call);
    }
    let r = probe(flags | libc::MSG_DONTWAIT);
    if r == EAGAIN {
        return if nonblocking(fd) {
            call()
        } else {
            released(hook, call)
        };
    }
    c_result(r)
}

/// Without `MSG_WAITFORONE`, a blocking `recvmmsg` waits until all `vlen`
/// messages came: what the probe got is kept and the rest awaited.
/// `call(vec, vlen)` is the call on those messages of the program's
/// array.
///
/// # Safety
///
/// The arguments are the program's, as `recvmmsg` takes them.
pub unsafe fn recvmmsg(
    hook: &'static str,
    fd: c_int,
    (vec, vlen): (*mut mmsghdr, c_uint),
    flags: c_int,
    call: impl Fn(*mut mmsghdr, c_uint) -> c_int,
) -> c_int {
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(vec, vlen);
    }
    // SAFETY: the program's call, not waiting, with no timeout.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_recvmmsg,
            fd as usize,
            vec as usize,
            vlen as usize,
            (flags | libc::MSG_DONTWAIT) as usize,
            0,
            0,
        )
    };
    if r == EAGAIN {
        if nonblocking(fd) {
            return call(vec, vlen);
        }
        return released(hook, || call(vec, vlen));
    }
    if r > 0 && (r as c_uint) < vlen && flags & libc::MSG_WAITFORONE == 0 && !nonblocking(fd) {
        let saved = sys::errno();
        // The kernel filled `r` of the `vlen` entries: the rest follows.
        let rest = vec.wrapping_add(r as usize);
        let more = released(hook, || call(rest, vlen - r as c_uint));
        if more < 0 {
            sys::set_errno(saved);
            return r as c_int;
        }
        return r as c_int + more;
    }
    c_result(r) as c_int
}

/// `sendto(fd, buf, n, flags, addr, len)` (`send` is it with no address);
/// `call(buf, n, flags)` is the call on bytes of the program's buffer.
///
/// # Safety
///
/// The arguments are the program's, as `sendto` takes them.
pub unsafe fn sendto(
    hook: &'static str,
    (fd, buf, n, flags): (c_int, *const c_void, size_t, c_int),
    (addr, len): (*const sockaddr, socklen_t),
    call: impl Fn(*const c_void, size_t, c_int) -> ssize_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 {
        return call(buf, n, flags);
    }
    let probe = || {
        let fl = (flags | libc::MSG_DONTWAIT) as usize;
        // SAFETY: the program's call, not waiting.
        unsafe {
            sys::syscall6(
                libc::SYS_sendto,
                fd as usize,
                buf as usize,
                n,
                fl,
                addr as usize,
                len as usize,
            )
        }
    };
    let rest = |from: usize, to: usize| {
        let part = (buf as *const u8).wrapping_add(from) as *const c_void;
        call(part, to - from, rest_flags(flags)).max(0) as usize
    };
    let request = || n.min(MAX_RW_COUNT);
    transmit(hook, fd, probe, request, || call(buf, n, flags), rest)
}

/// `sendmsg(fd, msg, flags)`; `call(msg, flags)` is the call with that
/// header (the program's, or one for part of its data).
///
/// # Safety
///
/// The arguments are the program's, as `sendmsg` takes them.
pub unsafe fn sendmsg(
    hook: &'static str,
    fd: c_int,
    msg: *const msghdr,
    flags: c_int,
    call: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    if flags & libc::MSG_DONTWAIT != 0 || msg.is_null() {
        return call(msg, flags);
    }
    let probe = || {
        let fl = (flags | libc::MSG_DONTWAIT) as usize;
        // SAFETY: the program's call, not waiting.
        unsafe { sys::syscall3(libc::SYS_sendmsg, fd as usize, msg as usize, fl) }
    };
    // `msg` is read only after the kernel accepted it.
    // SAFETY: the kernel accepted the header and its vector.
    let request = || unsafe { iov_request((*msg).msg_iov, (*msg).msg_iovlen) };
    let rest = |from: usize, to: usize| {
        let part = |m: &msghdr| call(m, rest_flags(flags));
        // SAFETY: the kernel accepted the header and its vector.
        unsafe { send_span(&*msg, from, to, part) }
    };
    transmit(hook, fd, probe, request, || call(msg, flags), rest)
}

/// send, sendto, sendmsg. On a blocking stream socket, a send that took
/// part of the data without waiting does not decide the call: the blocking
/// call would have sent the rest, so `rest(from, to)` sends bytes
/// `[from, to)` the blocking way and says how many went. A socket of
/// messages never gets here with part of one: its probe sends the whole
/// message or nothing. `request()` is the bytes asked for, read only once
/// the kernel accepted the arguments.
fn transmit(
    hook: &'static str,
    fd: c_int,
    probe: impl Fn() -> isize,
    request: impl Fn() -> usize,
    call: impl Fn() -> ssize_t,
    rest: impl Fn(usize, usize) -> usize,
) -> ssize_t {
    let r = probe();
    if r == EAGAIN {
        return if nonblocking(fd) {
            call()
        } else {
            released(hook, call)
        };
    }
    if r < 0 {
        // A final error (EPIPE's SIGPIPE is not raised twice).
        return c_result(r);
    }
    let want = request();
    if r as usize >= want || nonblocking(fd) || !continues_after_part(fd) {
        return r;
    }
    if r == 0 {
        return released(hook, call);
    }
    let saved = sys::errno();
    let more = released(hook, || rest(r as usize, want));
    sys::set_errno(saved);
    r + more as isize
}

/// The flags of the rest of a send: having sent part, the one blocking
/// call would not raise SIGPIPE on a closed peer; neither may its rest.
fn rest_flags(flags: c_int) -> c_int {
    flags | libc::MSG_NOSIGNAL
}

/// Bytes `[from, to)` of the data of message `m`, through `send(part)`
/// one part of the caller's vector at a time (see `IovSpan`): how many
/// went. The ancillary data went with the first part.
///
/// # Safety
///
/// The kernel accepted `m` and its vector; `from <= to <=` its bytes.
unsafe fn send_span(m: &msghdr, from: usize, to: usize, send: impl Fn(&msghdr) -> isize) -> usize {
    // SAFETY: the caller's contract.
    let span = unsafe { IovSpan::new(m.msg_iov, m.msg_iovlen, from, to) };
    span.transfer(|v, cnt, _| {
        let mut part: msghdr = *m;
        part.msg_iov = v as *mut libc::iovec;
        part.msg_iovlen = cnt;
        part.msg_control = core::ptr::null_mut();
        part.msg_controllen = 0;
        send(&part)
    })
}

/// `accept`, `accept4`, `connect`: no probe exists; they release unless
/// the socket is non-blocking.
pub fn connection(hook: &'static str, fd: c_int, call: impl FnOnce() -> c_int) -> c_int {
    if nonblocking(fd) {
        return call();
    }
    released(hook, call)
}
