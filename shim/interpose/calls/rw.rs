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

/// Where a read or write happens.
#[derive(Clone, Copy)]
pub enum At {
    /// At the file position (`read`, `readv`, `write`, `writev`).
    Position,
    /// At this offset (`pread`, `preadv`, `pwrite`, `pwritev`).
    Offset(off_t),
}

/// Offset argument meaning "at the file position" for preadv2/pwritev2.
const AT_POSITION: off_t = -1;

impl At {
    /// The offset to probe at; None for a negative offset, which fails
    /// with EINVAL at once (and must not be probed: -1 would mean the
    /// file position). `call` gets it all the same.
    fn probed(self) -> Option<off_t> {
        match self {
            At::Position => Some(AT_POSITION),
            At::Offset(off) => (off >= 0).then_some(off),
        }
    }

    /// The offset argument of the call itself (ignored for `Position`).
    fn arg(self) -> off_t {
        match self {
            At::Position => AT_POSITION,
            At::Offset(off) => off,
        }
    }
}

/// One buffer as a vector of one.
fn one(buf: *const c_void, n: size_t) -> iovec {
    iovec {
        iov_base: buf as *mut c_void,
        iov_len: n,
    }
}

/// A single-buffer call `call(buf, n, off)` as a call on a vector of one
/// (`readv` and `writev` call it on `one`'s vector, or on part of it).
fn on_one<B>(
    call: impl Fn(*mut B, size_t, off_t) -> ssize_t,
) -> impl Fn(*const iovec, c_int, off_t) -> ssize_t {
    move |v, _, off| {
        // SAFETY: a vector of one built here (or part of it): readable.
        let v = unsafe { *v };
        call(v.iov_base as *mut B, v.iov_len, off)
    }
}

/// `read(fd, buf, n)` or `pread(fd, buf, n, off)`; `call(buf, n, off)`,
/// the offset ignored by `read`.
///
/// # Safety
///
/// The arguments are the program's, as `read` or `pread` takes them.
pub unsafe fn read(
    hook: &'static str,
    (fd, buf, n): (c_int, *mut c_void, size_t),
    at: At,
    call: impl Fn(*mut c_void, size_t, off_t) -> ssize_t,
) -> ssize_t {
    // SAFETY: the program's buffer, as a vector of one.
    unsafe { readv(hook, (fd, &one(buf, n), 1), at, on_one(call)) }
}

/// `readv(fd, iov, cnt)` or `preadv(fd, iov, cnt, off)`, and the rest of
/// the read family; `call(iov, cnt, off)` runs the call on (part of) the
/// caller's buffers, the offset ignored by `readv`.
///
/// # Safety
///
/// The arguments are the program's, as `readv` or `preadv` takes them
/// (or a vector of one made of `read`'s buffer).
pub unsafe fn readv(
    hook: &'static str,
    (fd, iov, cnt): (c_int, *const iovec, c_int),
    at: At,
    call: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
) -> ssize_t {
    let Some(off) = at.probed() else {
        return call(iov, cnt, at.arg());
    };
    // SAFETY: the caller's contract.
    let r = unsafe { probe(libc::SYS_preadv2, fd, iov, cnt, off) };
    if r <= 0 {
        return unprobed(hook, fd, r, || call(iov, cnt, off)).unwrap_or_else(|| c_result(r));
    }
    // Short is final for pipes, sockets and terminals; a disk file goes
    // on to what the blocking read would have fetched.
    // SAFETY: the kernel accepted the vector.
    let want = unsafe { iov_request(iov, cnt as usize) };
    if (r as usize) < want && more_on_disk(fd, off, r) {
        // SAFETY: the caller's contract; `r` of `want` bytes moved.
        unsafe { finish_blocking(hook, iov, cnt, off, r as usize, want, &call) }
    } else {
        r
    }
}

/// `write(fd, buf, n)` or `pwrite(fd, buf, n, off)`; `call(buf, n, off)`,
/// the offset ignored by `write`.
///
/// # Safety
///
/// The arguments are the program's, as `write` or `pwrite` takes them.
pub unsafe fn write(
    hook: &'static str,
    (fd, buf, n): (c_int, *const c_void, size_t),
    at: At,
    call: impl Fn(*const c_void, size_t, off_t) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    let call = on_one(|b: *mut c_void, n, o| call(b, n, o));
    // SAFETY: the program's buffer, as a vector of one.
    unsafe { writev(hook, (fd, &one(buf, n), 1), at, call, send) }
}

/// `writev(fd, iov, cnt)` or `pwritev(fd, iov, cnt, off)`, and the rest of
/// the write family, like `readv`. A non-blocking write that took part of
/// the data on a blocking descriptor does not decide the call: the rest
/// follows the blocking way (`send`, `sendmsg` with `MSG_NOSIGNAL`, for a
/// stream socket, since the one blocking call, having sent part, would
/// not raise SIGPIPE). A pipe write of at most `PIPE_BUF` bytes is never
/// split: the kernel's probe writes all of it or nothing.
///
/// # Safety
///
/// As `readv`.
pub unsafe fn writev(
    hook: &'static str,
    (fd, iov, cnt): (c_int, *const iovec, c_int),
    at: At,
    call: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
    send: impl Fn(*const msghdr, c_int) -> ssize_t,
) -> ssize_t {
    let Some(off) = at.probed() else {
        return call(iov, cnt, at.arg());
    };
    // SAFETY: the caller's contract.
    let r = unsafe { probe(libc::SYS_pwritev2, fd, iov, cnt, off) };
    if let Some(r) = unprobed(hook, fd, r, || call(iov, cnt, off)) {
        return r;
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

/// The non-blocking probe of both families: `preadv2` or `pwritev2` with
/// `RWF_NOWAIT`, on the program's vector. The kernel's raw result.
///
/// # Safety
///
/// As `readv`.
unsafe fn probe(nr: i64, fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> isize {
    let (fd, iov, cnt, off) = (fd as usize, iov as usize, cnt as usize, off as usize);
    let nowait = libc::RWF_NOWAIT as usize;
    // SAFETY: the kernel checks the vector and moves only what it names,
    // the program's buffers.
    unsafe { sys::syscall6(nr, fd, iov, cnt, off, 0, nowait) }
}

/// What a probe that moved nothing decides: EAGAIN on a non-blocking
/// descriptor is the call's own answer (run as is); EAGAIN on a blocking
/// one, or a descriptor that does not take RWF_NOWAIT (EOPNOTSUPP,
/// EINVAL: it cannot be known), releases. None: a final answer.
fn unprobed(
    hook: &'static str,
    fd: c_int,
    r: isize,
    call: impl FnOnce() -> ssize_t,
) -> Option<ssize_t> {
    if r == -(libc::EAGAIN as isize) {
        return Some(if nonblocking(fd) {
            call()
        } else {
            released(hook, call)
        });
    }
    if r == -(libc::EOPNOTSUPP as isize) || r == -(libc::EINVAL as isize) {
        return Some(released(hook, call));
    }
    None
}

/// `done` of the `want` bytes went through without blocking; move the rest
/// the blocking way, walking the caller's own array, and report the sum,
/// as the single blocking call would have. A failure after that part is
/// not reported, as the kernel reports none after a partial transfer.
///
/// # Safety
///
/// As `readv`, and the kernel accepted the vector (`done <= want`,
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
