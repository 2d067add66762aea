//! The read and write families: `read`, `pread`, `readv`, `preadv`,
//! `write`, `pwrite`, `writev`, `pwritev`.
//!
//! They are first tried with `preadv2`/`pwritev2` and `RWF_NOWAIT`: data
//! ready (or room to write) keeps the tokens. A short result where the
//! blocking call would have gone on (a disk file partly cached, a pipe
//! with room for part of a write) is completed the blocking way, so the
//! caller sees what libc alone would have given.
//!
//! `call` here is the same call on (part of) the caller's buffers: a
//! buffer and length (or a vector and count), and for the positional
//! calls an offset. `send` is `sendmsg(fd, msg, flags)`: the rest of a
//! write to a stream socket.

use core::ffi::{c_int, c_void};
use libc::{iovec, msghdr, off_t, size_t, ssize_t};

use super::c_result;
use crate::interpose::descriptor::{continues_after_part, is_socket, more_on_disk, nonblocking};
use crate::interpose::iov::{iov_request, IovSpan};
use crate::interpose::release::released;
use crate::sys;

/// Offset argument meaning "at the file position" for preadv2/pwritev2.
/// A positional call (`pread`, `pwritev`, ...) with a negative offset is
/// therefore never probed: it fails with EINVAL at once.
const AT_POSITION: off_t = -1;

/// One buffer as a vector of one.
fn one(buf: *const c_void, n: size_t) -> iovec {
    iovec {
        iov_base: buf as *mut c_void,
        iov_len: n,
    }
}

/// `read(fd, buf, n)`; `call(buf, n)`.
///
/// # Safety
///
/// The arguments are the program's, as `read` takes them.
pub unsafe fn read(
    hook: &'static str,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    call: impl Fn(*mut c_void, size_t) -> ssize_t,
) -> ssize_t {
    let v = one(buf, n);
    let call = |v: *const iovec, _, _| {
        // SAFETY: a vector of one built here (or part of it): readable.
        let v = unsafe { *v };
        call(v.iov_base, v.iov_len)
    };
    // SAFETY: `v` is the program's buffer, as a vector of one.
    unsafe { read_family(hook, fd, &v, 1, AT_POSITION, call) }
}

/// `pread(fd, buf, n, off)`; `call(buf, n, off)`.
///
/// # Safety
///
/// The arguments are the program's, as `pread` takes them.
pub unsafe fn pread(
    hook: &'static str,
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off_t,
    call: impl Fn(*mut c_void, size_t, off_t) -> ssize_t,
) -> ssize_t {
    if off < 0 {
        return call(buf, n, off);
    }
    let v = one(buf, n);
    let call = |v: *const iovec, _, o| {
        // SAFETY: a vector of one built here (or part of it): readable.
        let v = unsafe { *v };
        call(v.iov_base, v.iov_len, o)
    };
    // SAFETY: `v` is the program's buffer, as a vector of one.
    unsafe { read_family(hook, fd, &v, 1, off, call) }
}

/// `readv(fd, iov, cnt)`; `call(iov, cnt)`.
///
/// # Safety
///
/// The arguments are the program's, as `readv` takes them.
pub unsafe fn readv(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    call: impl Fn(*const iovec, c_int) -> ssize_t,
) -> ssize_t {
    // SAFETY: the caller's contract.
    unsafe { read_family(hook, fd, iov, cnt, AT_POSITION, |v, c, _| call(v, c)) }
}

/// `preadv(fd, iov, cnt, off)`; `call(iov, cnt, off)`.
///
/// # Safety
///
/// The arguments are the program's, as `preadv` takes them.
pub unsafe fn preadv(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    call: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
) -> ssize_t {
    if off < 0 {
        return call(iov, cnt, off);
    }
    // SAFETY: the caller's contract.
    unsafe { read_family(hook, fd, iov, cnt, off, call) }
}

/// `write(fd, buf, n)`; `call(buf, n)`.
///
/// # Safety
///
/// The arguments are the program's, as `write` takes them.
pub unsafe fn write(
    hook: &'static str,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    call: impl Fn(*const c_void, size_t) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    let v = one(buf, n);
    let call = |v: *const iovec, _, _| {
        // SAFETY: a vector of one built here (or part of it): readable.
        let v = unsafe { *v };
        call(v.iov_base, v.iov_len)
    };
    // SAFETY: `v` is the program's buffer, as a vector of one.
    unsafe { write_family(hook, fd, &v, 1, AT_POSITION, call, send) }
}

/// `pwrite(fd, buf, n, off)`; `call(buf, n, off)`.
///
/// # Safety
///
/// The arguments are the program's, as `pwrite` takes them.
pub unsafe fn pwrite(
    hook: &'static str,
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    off: off_t,
    call: impl Fn(*const c_void, size_t, off_t) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    if off < 0 {
        return call(buf, n, off);
    }
    let v = one(buf, n);
    let call = |v: *const iovec, _, o| {
        // SAFETY: a vector of one built here (or part of it): readable.
        let v = unsafe { *v };
        call(v.iov_base, v.iov_len, o)
    };
    // SAFETY: `v` is the program's buffer, as a vector of one.
    unsafe { write_family(hook, fd, &v, 1, off, call, send) }
}

/// `writev(fd, iov, cnt)`; `call(iov, cnt)`.
///
/// # Safety
///
/// The arguments are the program's, as `writev` takes them.
pub unsafe fn writev(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    call: impl Fn(*const iovec, c_int) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    let call = |v, c, _| call(v, c);
    // SAFETY: the caller's contract.
    unsafe { write_family(hook, fd, iov, cnt, AT_POSITION, call, send) }
}

/// `pwritev(fd, iov, cnt, off)`; `call(iov, cnt, off)`.
///
/// # Safety
///
/// The arguments are the program's, as `pwritev` takes them.
pub unsafe fn pwritev(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    call: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    if off < 0 {
        return call(iov, cnt, off);
    }
    // SAFETY: the caller's contract.
    unsafe { write_family(hook, fd, iov, cnt, off, call, send) }
}

/// The read family. `call(iov, cnt, off)` runs the call on (part of) the
/// caller's buffers.
///
/// # Safety
///
/// `iov` and `cnt` are the program's vector (or a vector of one made of
/// its buffer), `fd` and `off` its arguments.
unsafe fn read_family(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    call: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
) -> ssize_t {
    // SAFETY: the kernel checks the vector and writes only what it names,
    // the program's buffers.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_preadv2,
            fd as usize,
            iov as usize,
            cnt as usize,
            off as usize,
            0,
            libc::RWF_NOWAIT as usize,
        )
    };
    const EAGAIN: isize = -(libc::EAGAIN as isize);
    match r {
        // Short is final for pipes, sockets and terminals; a disk file
        // goes on to what the blocking read would have fetched.
        n if n > 0 => {
            // SAFETY: the kernel accepted the vector.
            let want = unsafe { iov_request(iov, cnt as usize) };
            if (n as usize) < want && more_on_disk(fd, off, n) {
                // SAFETY: the caller's contract; `n` of `want` bytes moved.
                unsafe { finish_blocking(hook, iov, cnt, off, n as usize, want, &call) }
            } else {
                n
            }
        }
        EAGAIN if nonblocking(fd) => call(iov, cnt, off),
        EAGAIN => released(hook, || call(iov, cnt, off)),
        // The descriptor does not take RWF_NOWAIT: cannot be known.
        r if r == -(libc::EOPNOTSUPP as isize) || r == -(libc::EINVAL as isize) => {
            released(hook, || call(iov, cnt, off))
        }
        r => c_result(r),
    }
}

/// `done` of the `want` bytes went through without blocking; move the rest
/// the blocking way, walking the caller's own array, and report the sum,
/// as the single blocking call would have. A failure after that part is
/// not reported, as the kernel reports none after a partial transfer.
///
/// # Safety
///
/// As `read_family`, and the kernel accepted the vector (`done <= want`,
/// `want` from `iov_request`).
unsafe fn finish_blocking(
    hook: &'static str,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    done: usize,
    want: usize,
    call: &impl Fn(*const iovec, c_int, off_t) -> ssize_t,
) -> ssize_t {
    // SAFETY: the caller's contract.
    let rest = unsafe { IovSpan::new(iov, cnt as usize, done, want) };
    let saved = sys::errno();
    let more = released(hook, || {
        rest.transfer(|v, c, moved| {
            let at = if off < 0 {
                AT_POSITION
            } else {
                off + (done + moved) as off_t
            };
            call(v, c as c_int, at)
        })
    });
    sys::set_errno(saved);
    (done + more) as ssize_t
}

/// The write family, like `read_family`. A non-blocking write that took
/// part of the data on a blocking descriptor does not decide the call: the
/// rest follows the blocking way (`sendmsg` with `MSG_NOSIGNAL` for a
/// stream socket, since the one blocking call, having sent part, would not
/// raise SIGPIPE). A pipe write of at most `PIPE_BUF` bytes is never
/// split: the kernel's probe writes all of it or nothing.
///
/// # Safety
///
/// As `read_family`.
unsafe fn write_family(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    call: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    // SAFETY: the kernel checks the vector and reads only what it names,
    // the program's buffers.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_pwritev2,
            fd as usize,
            iov as usize,
            cnt as usize,
            off as usize,
            0,
            libc::RWF_NOWAIT as usize,
        )
    };
    if r == -(libc::EAGAIN as isize) {
        if nonblocking(fd) {
            return call(iov, cnt, off);
        }
        return released(hook, || call(iov, cnt, off));
    }
    if r == -(libc::EOPNOTSUPP as isize) || r == -(libc::EINVAL as isize) {
        return released(hook, || call(iov, cnt, off));
    }
    if r < 0 {
        // A final error (EBADF, EPIPE, ...): the same one libc would give;
        // not repeated, so that a SIGPIPE is not raised twice.
        return c_result(r);
    }
    // SAFETY: the kernel accepted the vector.
    let want = unsafe { iov_request(iov, cnt as usize) };
    if r as usize >= want || nonblocking(fd) || !continues_after_part(fd) {
        return r;
    }
    if r == 0 {
        return released(hook, || call(iov, cnt, off));
    }
    if is_socket(fd) {
        // SAFETY: the kernel accepted the vector; `r` of `want` bytes went.
        let rest = unsafe { IovSpan::new(iov, cnt as usize, r as usize, want) };
        let saved = sys::errno();
        let more = released(hook, || {
            rest.transfer(|v, c, _| {
                // SAFETY: a message header is plain data, valid when zero.
                let mut m: msghdr = unsafe { core::mem::zeroed() };
                m.msg_iov = v as *mut iovec;
                m.msg_iovlen = c;
                send(&m, libc::MSG_NOSIGNAL)
            })
        });
        sys::set_errno(saved);
        return r + more as isize;
    }
    // SAFETY: the caller's contract; `r` of `want` bytes moved.
    unsafe { finish_blocking(hook, iov, cnt, off, r as usize, want, &call) }
}
