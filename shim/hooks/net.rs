//! Sockets: receive and send (tried first with `MSG_DONTWAIT`), accept and
//! connect (no per-call probe exists: they release unless the socket is
//! non-blocking).

use core::ffi::{c_int, c_uint, c_void};
use libc::{iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec};

use super::{
    c_result, continues_after_part, held, holding, iov_request, nonblocking, released, IovSpan,
    MAX_RW_COUNT,
};
use crate::sys;

mod real {
    use core::ffi::{c_int, c_uint, c_void};
    use libc::{mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec};
    real_fn!(recv: fn(c_int, *mut c_void, size_t, c_int) -> ssize_t);
    real_fn!(recvfrom: fn(c_int, *mut c_void, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t);
    real_fn!(recvmsg: fn(c_int, *mut msghdr, c_int) -> ssize_t);
    real_fn!(recvmmsg: fn(c_int, *mut mmsghdr, c_uint, c_int, *mut timespec) -> c_int);
    real_fn!(send: fn(c_int, *const c_void, size_t, c_int) -> ssize_t);
    real_fn!(sendto: fn(c_int, *const c_void, size_t, c_int, *const sockaddr, socklen_t) -> ssize_t);
    real_fn!(sendmsg: fn(c_int, *const msghdr, c_int) -> ssize_t);
    real_fn!(accept: fn(c_int, *mut sockaddr, *mut socklen_t) -> c_int);
    real_fn!(accept4: fn(c_int, *mut sockaddr, *mut socklen_t, c_int) -> c_int);
    real_fn!(connect: fn(c_int, *const sockaddr, socklen_t) -> c_int);
}

const EAGAIN: isize = -(libc::EAGAIN as isize);

/// recv, recvfrom, recvmsg. `probe(flags)` is the raw syscall; `real` is
/// libc's call with the caller's own arguments.
pub(crate) unsafe fn receive(
    hook: &'static str,
    fd: c_int,
    flags: c_int,
    probe: impl Fn(c_int) -> isize,
    real: impl Fn() -> ssize_t,
) -> ssize_t {
    // MSG_WAITALL waits for all of it: how much is there cannot be known.
    if flags & libc::MSG_WAITALL != 0 {
        return released(hook, real);
    }
    let r = probe(flags | libc::MSG_DONTWAIT);
    if r == EAGAIN {
        return if nonblocking(fd) {
            real()
        } else {
            released(hook, real)
        };
    }
    c_result(r)
}

/// send, sendto, sendmsg. On a blocking stream socket, a send that took
/// part of the data without waiting does not decide the call: the blocking
/// call would have sent the rest, so `rest(from, to)` sends bytes
/// `[from, to)` the blocking way and says how many went. A socket of
/// messages never gets here with part of one: its probe sends the whole
/// message or nothing. `request()` is the bytes asked for, read only once
/// the kernel accepted the arguments.
pub(crate) unsafe fn transmit(
    hook: &'static str,
    fd: c_int,
    probe: impl Fn() -> isize,
    request: impl Fn() -> usize,
    real: impl Fn() -> ssize_t,
    rest: impl Fn(usize, usize) -> usize,
) -> ssize_t {
    let r = probe();
    if r == EAGAIN {
        return if nonblocking(fd) {
            real()
        } else {
            released(hook, real)
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
        return released(hook, real);
    }
    let saved = sys::errno();
    let more = released(hook, || rest(r as usize, want));
    sys::set_errno(saved);
    r + more as isize
}

/// The flags of the rest of a send: having sent part, the one blocking
/// call would not raise SIGPIPE on a closed peer; neither may its rest.
pub(crate) fn rest_flags(flags: c_int) -> c_int {
    flags | libc::MSG_NOSIGNAL
}

/// Bytes `[from, to)` of the data of message `m`, through `send(part)`
/// one part of the caller's vector at a time (see `IovSpan`): how many
/// went. The ancillary data went with the first part.
pub(crate) unsafe fn send_span(
    m: &msghdr,
    from: usize,
    to: usize,
    send: impl Fn(&msghdr) -> isize,
) -> usize {
    let span = IovSpan::new(m.msg_iov, m.msg_iovlen, from, to);
    span.transfer(|v, cnt, _| {
        let mut part: msghdr = *m;
        part.msg_iov = v as *mut iovec;
        part.msg_iovlen = cnt;
        part.msg_control = core::ptr::null_mut();
        part.msg_controllen = 0;
        send(&part)
    })
}

/// Send a vector on a stream socket, blocking, without SIGPIPE: the rest
/// of a `write`/`writev` that sent part without waiting.
pub(crate) unsafe fn send_vector(fd: c_int, iov: *const iovec, cnt: usize) -> ssize_t {
    let mut m: msghdr = core::mem::zeroed();
    m.msg_iov = iov as *mut iovec;
    m.msg_iovlen = cnt;
    real::sendmsg::get()(fd, &m, libc::MSG_NOSIGNAL)
}

#[no_mangle]
pub unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    let f = real::recv::get();
    if !holding() {
        return f(fd, buf, n, flags);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 {
            return f(fd, buf, n, flags);
        }
        let probe = |fl: c_int| {
            sys::syscall6(
                libc::SYS_recvfrom,
                fd as usize,
                buf as usize,
                n,
                fl as usize,
                0,
                0,
            )
        };
        receive("recv", fd, flags, probe, || f(fd, buf, n, flags))
    })
}

#[no_mangle]
pub unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    let f = real::recvfrom::get();
    if !holding() {
        return f(fd, buf, n, flags, addr, len);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 {
            return f(fd, buf, n, flags, addr, len);
        }
        let probe = |fl: c_int| {
            sys::syscall6(
                libc::SYS_recvfrom,
                fd as usize,
                buf as usize,
                n,
                fl as usize,
                addr as usize,
                len as usize,
            )
        };
        receive("recvfrom", fd, flags, probe, || {
            f(fd, buf, n, flags, addr, len)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    let f = real::recvmsg::get();
    if !holding() {
        return f(fd, msg, flags);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 {
            return f(fd, msg, flags);
        }
        let probe =
            |fl: c_int| sys::syscall3(libc::SYS_recvmsg, fd as usize, msg as usize, fl as usize);
        receive("recvmsg", fd, flags, probe, || f(fd, msg, flags))
    })
}

/// Without `MSG_WAITFORONE`, a blocking `recvmmsg` waits until all `vlen`
/// messages came: what the probe got is kept and the rest awaited.
#[no_mangle]
pub unsafe extern "C" fn recvmmsg(
    fd: c_int,
    vec: *mut mmsghdr,
    vlen: c_uint,
    flags: c_int,
    timeout: *mut timespec,
) -> c_int {
    let f = real::recvmmsg::get();
    if !holding() {
        return f(fd, vec, vlen, flags, timeout);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 {
            return f(fd, vec, vlen, flags, timeout);
        }
        let r = sys::syscall6(
            libc::SYS_recvmmsg,
            fd as usize,
            vec as usize,
            vlen as usize,
            (flags | libc::MSG_DONTWAIT) as usize,
            0,
            0,
        );
        if r == EAGAIN {
            if nonblocking(fd) {
                return f(fd, vec, vlen, flags, timeout);
            }
            return released("recvmmsg", || f(fd, vec, vlen, flags, timeout));
        }
        if r > 0 && (r as c_uint) < vlen && flags & libc::MSG_WAITFORONE == 0 && !nonblocking(fd) {
            let saved = sys::errno();
            let more = released("recvmmsg", || {
                f(fd, vec.add(r as usize), vlen - r as c_uint, flags, timeout)
            });
            if more < 0 {
                sys::set_errno(saved);
                return r as c_int;
            }
            return r as c_int + more;
        }
        c_result(r) as c_int
    })
}

#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    let f = real::send::get();
    if !holding() {
        return f(fd, buf, n, flags);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 {
            return f(fd, buf, n, flags);
        }
        let probe = || {
            let fl = (flags | libc::MSG_DONTWAIT) as usize;
            sys::syscall6(libc::SYS_sendto, fd as usize, buf as usize, n, fl, 0, 0)
        };
        let rest = |from: usize, to: usize| {
            let part = (buf as *const u8).add(from) as *const c_void;
            f(fd, part, to - from, rest_flags(flags)).max(0) as usize
        };
        let request = || n.min(MAX_RW_COUNT);
        transmit("send", fd, probe, request, || f(fd, buf, n, flags), rest)
    })
}

#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    let f = real::sendto::get();
    if !holding() {
        return f(fd, buf, n, flags, addr, len);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 {
            return f(fd, buf, n, flags, addr, len);
        }
        let probe = || {
            let fl = (flags | libc::MSG_DONTWAIT) as usize;
            sys::syscall6(
                libc::SYS_sendto,
                fd as usize,
                buf as usize,
                n,
                fl,
                addr as usize,
                len as usize,
            )
        };
        let rest = |from: usize, to: usize| {
            let part = (buf as *const u8).add(from) as *const c_void;
            f(fd, part, to - from, rest_flags(flags), addr, len).max(0) as usize
        };
        let request = || n.min(MAX_RW_COUNT);
        let real = || f(fd, buf, n, flags, addr, len);
        transmit("sendto", fd, probe, request, real, rest)
    })
}

#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let f = real::sendmsg::get();
    if !holding() {
        return f(fd, msg, flags);
    }
    held(move || {
        if flags & libc::MSG_DONTWAIT != 0 || msg.is_null() {
            return f(fd, msg, flags);
        }
        let probe = || {
            sys::syscall3(
                libc::SYS_sendmsg,
                fd as usize,
                msg as usize,
                (flags | libc::MSG_DONTWAIT) as usize,
            )
        };
        // `msg` is read only after the kernel accepted it.
        let request = || iov_request((*msg).msg_iov, (*msg).msg_iovlen);
        let rest = |from: usize, to: usize| {
            send_span(&*msg, from, to, |part| f(fd, part, rest_flags(flags)))
        };
        transmit("sendmsg", fd, probe, request, || f(fd, msg, flags), rest)
    })
}

#[no_mangle]
pub unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    let f = real::accept::get();
    if !holding() {
        return f(fd, addr, len);
    }
    held(move || {
        if nonblocking(fd) {
            return f(fd, addr, len);
        }
        held(move || released("accept", || f(fd, addr, len)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let f = real::accept4::get();
    if !holding() {
        return f(fd, addr, len, flags);
    }
    held(move || {
        if nonblocking(fd) {
            return f(fd, addr, len, flags);
        }
        held(move || released("accept4", || f(fd, addr, len, flags)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let f = real::connect::get();
    if !holding() {
        return f(fd, addr, len);
    }
    held(move || {
        if nonblocking(fd) {
            return f(fd, addr, len);
        }
        held(move || released("connect", || f(fd, addr, len)))
    })
}

// ---- _FORTIFY_SOURCE variants (see fdio.rs) ----

mod real_chk {
    use core::ffi::{c_int, c_void};
    use libc::{size_t, sockaddr, socklen_t, ssize_t};
    real_fn!(__recv_chk: fn(c_int, *mut c_void, size_t, size_t, c_int) -> ssize_t);
    real_fn!(__recvfrom_chk: fn(c_int, *mut c_void, size_t, size_t, c_int, *mut sockaddr, *mut socklen_t) -> ssize_t);
}

#[no_mangle]
pub unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if !holding() || n > buflen {
        return real_chk::__recv_chk::get()(fd, buf, n, buflen, flags);
    }
    recv(fd, buf, n, flags)
}

#[no_mangle]
pub unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if !holding() || n > buflen {
        return real_chk::__recvfrom_chk::get()(fd, buf, n, buflen, flags, addr, len);
    }
    recvfrom(fd, buf, n, flags, addr, len)
}
