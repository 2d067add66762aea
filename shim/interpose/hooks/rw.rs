//! The read and write families (calls/rw.rs), and writing back to disk,
//! whose wait cannot be known.

use core::ffi::{c_int, c_void};
use libc::{iovec, msghdr, off_t, size_t, ssize_t};

use crate::interpose::calls::rw::{self, At::*};
use crate::interpose::release::released;

/// The rest of a write to a stream socket: libc's `sendmsg`.
fn send(fd: c_int) -> impl Fn(*const msghdr, c_int) -> ssize_t {
    // SAFETY: libc's sendmsg, given by the write family a header of the
    // program's own data.
    move |m, flags| unsafe { super::net::sendmsg::get()(fd, m, flags) }
}

hook! {
    fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t
        => |real| rw::read("read", (fd, buf, n), Position, |b, n, _| real(fd, b, n))
}

hook! {
    fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t
        => |real| rw::readv("readv", (fd, iov, cnt), Position, |v, c, _| real(fd, v, c))
}

hook! {
    fn pread | pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t
        => |real| rw::read("pread", (fd, buf, n), Offset(off), |b, n, o| real(fd, b, n, o))
}

hook! {
    fn preadv | preadv64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => |real| rw::readv("preadv", (fd, iov, cnt), Offset(off), |v, c, o| real(fd, v, c, o))
}

hook! {
    fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t
        => |real| rw::write("write", (fd, buf, n), Position, |b, n, _| real(fd, b, n), send(fd))
}

hook! {
    fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t
        => |real| rw::writev("writev", (fd, iov, cnt), Position, |v, c, _| real(fd, v, c), send(fd))
}

hook! {
    fn pwrite | pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t
        => |real| {
            let call = |b, n, o| real(fd, b, n, o);
            rw::write("pwrite", (fd, buf, n), Offset(off), call, send(fd))
        }
}

hook! {
    fn pwritev | pwritev64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t
        => |real| {
            let call = |v, c, o| real(fd, v, c, o);
            rw::writev("pwritev", (fd, iov, cnt), Offset(off), call, send(fd))
        }
}

hook! {
    /// Writing back to disk: whether it will wait cannot be known.
    fn fsync(fd: c_int) -> c_int
        => |real| released("fsync", || real(fd))
}

hook! {
    fn fdatasync(fd: c_int) -> c_int
        => |real| released("fdatasync", || real(fd))
}
