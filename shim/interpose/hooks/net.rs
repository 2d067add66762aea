//! Sockets (calls/net.rs).

use core::ffi::{c_int, c_uint, c_void};
use libc::{mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec};

use crate::interpose::calls::net;

hook! {
    fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t
        => |real| {
            let no_addr = (core::ptr::null_mut(), core::ptr::null_mut());
            net::recvfrom("recv", (fd, buf, n, flags), no_addr, || real(fd, buf, n, flags))
        }
}

hook! {
    fn recvfrom(
        fd: c_int,
        buf: *mut c_void,
        n: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        len: *mut socklen_t,
    ) -> ssize_t
        => |real| net::recvfrom("recvfrom", (fd, buf, n, flags), (addr, len), || {
            real(fd, buf, n, flags, addr, len)
        })
}

hook! {
    fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t
        => |real| net::recvmsg("recvmsg", fd, msg, flags, || real(fd, msg, flags))
}

hook! {
    fn recvmmsg(
        fd: c_int,
        vec: *mut mmsghdr,
        vlen: c_uint,
        flags: c_int,
        timeout: *mut timespec,
    ) -> c_int
        => |real| net::recvmmsg("recvmmsg", fd, (vec, vlen), flags, |v, n| {
            real(fd, v, n, flags, timeout)
        })
}

hook! {
    fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t
        => |real| {
            let no_addr = (core::ptr::null(), 0);
            net::sendto("send", (fd, buf, n, flags), no_addr, |b, n, fl| real(fd, b, n, fl))
        }
}

hook! {
    fn sendto(
        fd: c_int,
        buf: *const c_void,
        n: size_t,
        flags: c_int,
        addr: *const sockaddr,
        len: socklen_t,
    ) -> ssize_t
        => |real| net::sendto("sendto", (fd, buf, n, flags), (addr, len), |b, n, fl| {
            real(fd, b, n, fl, addr, len)
        })
}

hook! {
    fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t
        => |real| net::sendmsg("sendmsg", fd, msg, flags, |m, fl| real(fd, m, fl))
}

hook! {
    fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int
        => |real| net::connection("accept", fd, || real(fd, addr, len))
}

hook! {
    fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int
        => |real| net::connection("accept4", fd, || real(fd, addr, len, flags))
}

hook! {
    fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int
        => |real| net::connection("connect", fd, || real(fd, addr, len))
}
