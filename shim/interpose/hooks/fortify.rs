//! The `_FORTIFY_SOURCE` entry points. Programs built with it (Debian's
//! default) call these instead of `read`, `open`, `poll`, ...; glibc then
//! makes the call privately. A holder's call that passes the check is the
//! plain hook's; one that fails goes to libc to abort as usual.

use core::ffi::{c_char, c_int, c_void};
use libc::{nfds_t, off_t, pollfd, sigset_t, size_t, sockaddr, socklen_t, ssize_t, timespec};

use super::net::{recv, recvfrom};
use super::open::{open, open64, openat, openat64};
use super::ready::{poll, ppoll};
use super::rw::{pread, pread64, read};

hook! {
    fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t,
        unless n > buflen
        => plain read(fd, buf, n)
}

hook! {
    fn __pread_chk(fd: c_int, buf: *mut c_void, n: size_t, off: off_t, buflen: size_t) -> ssize_t,
        unless n > buflen
        => plain pread(fd, buf, n, off)
}

hook! {
    fn __pread64_chk(
        fd: c_int,
        buf: *mut c_void,
        n: size_t,
        off: off_t,
        buflen: size_t,
    ) -> ssize_t,
        unless n > buflen
        => plain pread64(fd, buf, n, off)
}

hook! {
    fn __recv_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t, flags: c_int) -> ssize_t,
        unless n > buflen
        => plain recv(fd, buf, n, flags)
}

hook! {
    fn __recvfrom_chk(
        fd: c_int,
        buf: *mut c_void,
        n: size_t,
        buflen: size_t,
        flags: c_int,
        addr: *mut sockaddr,
        len: *mut socklen_t,
    ) -> ssize_t,
        unless n > buflen
        => plain recvfrom(fd, buf, n, flags, addr, len)
}

/// The fortified opens check that O_CREAT/O_TMPFILE came with a mode,
/// which these callers never pass: a FIFO open without those flags is the
/// plain open.
fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

hook! {
    fn __open_2(path: *const c_char, flags: c_int) -> c_int,
        unless needs_mode(flags)
        => plain open(path, flags, 0)
}

hook! {
    fn __open64_2(path: *const c_char, flags: c_int) -> c_int,
        unless needs_mode(flags)
        => plain open64(path, flags, 0)
}

hook! {
    fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int,
        unless needs_mode(flags)
        => plain openat(dirfd, path, flags, 0)
}

hook! {
    fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int,
        unless needs_mode(flags)
        => plain openat64(dirfd, path, flags, 0)
}

/// Does the array the program declared (`fdslen` bytes) hold `n` entries?
fn poll_array_fits(n: nfds_t, fdslen: size_t) -> bool {
    (fdslen / core::mem::size_of::<pollfd>()) as nfds_t >= n
}

hook! {
    fn __poll_chk(fds: *mut pollfd, n: nfds_t, timeout: c_int, fdslen: size_t) -> c_int,
        unless !poll_array_fits(n, fdslen)
        => plain poll(fds, n, timeout)
}

hook! {
    fn __ppoll_chk(
        fds: *mut pollfd,
        n: nfds_t,
        ts: *const timespec,
        mask: *const sigset_t,
        fdslen: size_t,
    ) -> c_int,
        unless !poll_array_fits(n, fdslen)
        => plain ppoll(fds, n, ts, mask)
}
