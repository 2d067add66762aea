//! File-descriptor I/O: the read and write families, `open` of a FIFO,
//! `fsync`, `flock` and `fcntl` record locks.
//!
//! Reads and writes are first tried with `preadv2`/`pwritev2` and
//! `RWF_NOWAIT`: data ready (or room to write) keeps the tokens. A short
//! result where the blocking call would have gone on (a disk file partly
//! cached, a pipe with room for part of a write) is completed the blocking
//! way, so the caller sees what libc alone would have given.

use core::ffi::{c_char, c_int, c_void};
use libc::{iovec, mode_t, off_t, size_t, ssize_t};

use super::{
    c_result, continues_after_part, held, holding, iov_request, is_socket, more_on_disk,
    nonblocking, released, IovSpan, Probe,
};
use crate::sys;

mod real {
    use core::ffi::{c_char, c_int, c_void};
    use libc::{iovec, mode_t, off_t, size_t, ssize_t};
    real_fn!(read: fn(c_int, *mut c_void, size_t) -> ssize_t);
    real_fn!(readv: fn(c_int, *const iovec, c_int) -> ssize_t);
    real_fn!(pread: fn(c_int, *mut c_void, size_t, off_t) -> ssize_t);
    real_fn!(pread64: fn(c_int, *mut c_void, size_t, off_t) -> ssize_t);
    real_fn!(preadv: fn(c_int, *const iovec, c_int, off_t) -> ssize_t);
    real_fn!(preadv64: fn(c_int, *const iovec, c_int, off_t) -> ssize_t);
    real_fn!(write: fn(c_int, *const c_void, size_t) -> ssize_t);
    real_fn!(writev: fn(c_int, *const iovec, c_int) -> ssize_t);
    real_fn!(pwrite: fn(c_int, *const c_void, size_t, off_t) -> ssize_t);
    real_fn!(pwrite64: fn(c_int, *const c_void, size_t, off_t) -> ssize_t);
    real_fn!(pwritev: fn(c_int, *const iovec, c_int, off_t) -> ssize_t);
    real_fn!(pwritev64: fn(c_int, *const iovec, c_int, off_t) -> ssize_t);
    real_fn!(open: fn(*const c_char, c_int, mode_t) -> c_int);
    real_fn!(open64: fn(*const c_char, c_int, mode_t) -> c_int);
    real_fn!(openat: fn(c_int, *const c_char, c_int, mode_t) -> c_int);
    real_fn!(openat64: fn(c_int, *const c_char, c_int, mode_t) -> c_int);
    real_fn!(fsync: fn(c_int) -> c_int);
    real_fn!(fdatasync: fn(c_int) -> c_int);
    real_fn!(flock: fn(c_int, c_int) -> c_int);
    real_fn!(fcntl: fn(c_int, c_int, usize) -> c_int);
    real_fn!(fcntl64: fn(c_int, c_int, usize) -> c_int);
}

/// Offset argument meaning "at the file position" for preadv2/pwritev2.
/// A positional call (`pread`, `pwritev`, ...) with a negative offset is
/// therefore never probed: libc fails it with EINVAL at once.
const AT_POSITION: off_t = -1;

/// The read family. `real(iov, cnt, off)` runs libc's call on (part of) the
/// caller's buffers.
pub(crate) unsafe fn read_family(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    real: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
) -> ssize_t {
    let r = sys::syscall6(
        libc::SYS_preadv2,
        fd as usize,
        iov as usize,
        cnt as usize,
        off as usize,
        0,
        libc::RWF_NOWAIT as usize,
    );
    let probe = match r {
        r if r >= 0 => Probe::Done(r),
        r if r == -(libc::EAGAIN as isize) => {
            if nonblocking(fd) {
                Probe::Direct
            } else {
                Probe::Block
            }
        }
        // The descriptor does not take RWF_NOWAIT: cannot be known.
        r if r == -(libc::EOPNOTSUPP as isize) || r == -(libc::EINVAL as isize) => Probe::Block,
        r => Probe::Done(r),
    };
    match probe {
        // Short is final for pipes, sockets and terminals; a disk file
        // goes on to what the blocking read would have fetched.
        Probe::Done(n) if n > 0 => {
            let want = iov_request(iov, cnt as usize);
            if (n as usize) < want && more_on_disk(fd, off, n) {
                finish_blocking(hook, iov, cnt, off, n as usize, want, &real)
            } else {
                n
            }
        }
        Probe::Done(n) => c_result(n),
        Probe::Direct => real(iov, cnt, off),
        Probe::Block => released(hook, || real(iov, cnt, off)),
    }
}

/// `done` of the `want` bytes went through without blocking; move the rest
/// the blocking way, walking the caller's own array, and report the sum,
/// as the single blocking call would have. A failure after that part is
/// not reported, as the kernel reports none after a partial transfer.
unsafe fn finish_blocking(
    hook: &'static str,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    done: usize,
    want: usize,
    real: &impl Fn(*const iovec, c_int, off_t) -> ssize_t,
) -> ssize_t {
    let rest = IovSpan::new(iov, cnt as usize, done, want);
    let saved = sys::errno();
    let more = released(hook, || {
        rest.transfer(|v, c, moved| {
            let at = if off < 0 {
                AT_POSITION
            } else {
                off + (done + moved) as off_t
            };
            real(v, c as c_int, at)
        })
    });
    sys::set_errno(saved);
    (done + more) as ssize_t
}

/// The write family, like `read_family`. A non-blocking write that took
/// part of the data on a blocking descriptor does not decide the call: the
/// rest follows the blocking way (`send(vector, count)` for a stream
/// socket: `sendmsg` with `MSG_NOSIGNAL`, since the one blocking call,
/// having sent part, would not raise SIGPIPE). A pipe write of at most
/// `PIPE_BUF` bytes is never split: the kernel's probe writes all of it or
/// nothing.
pub(crate) unsafe fn write_family(
    hook: &'static str,
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
    real: impl Fn(*const iovec, c_int, off_t) -> ssize_t,
    send: impl Fn(*const iovec, c_int) -> ssize_t,
) -> ssize_t {
    let r = sys::syscall6(
        libc::SYS_pwritev2,
        fd as usize,
        iov as usize,
        cnt as usize,
        off as usize,
        0,
        libc::RWF_NOWAIT as usize,
    );
    if r == -(libc::EAGAIN as isize) {
        if nonblocking(fd) {
            return real(iov, cnt, off);
        }
        return released(hook, || real(iov, cnt, off));
    }
    if r == -(libc::EOPNOTSUPP as isize) || r == -(libc::EINVAL as isize) {
        return released(hook, || real(iov, cnt, off));
    }
    if r < 0 {
        // A final error (EBADF, EPIPE, ...): the same one libc would give;
        // not repeated, so that a SIGPIPE is not raised twice.
        return c_result(r);
    }
    let want = iov_request(iov, cnt as usize);
    if r as usize >= want || nonblocking(fd) || !continues_after_part(fd) {
        return r;
    }
    if r == 0 {
        return released(hook, || real(iov, cnt, off));
    }
    if is_socket(fd) {
        let rest = IovSpan::new(iov, cnt as usize, r as usize, want);
        let saved = sys::errno();
        let more = released(hook, || rest.transfer(|v, c, _| send(v, c as c_int)));
        sys::set_errno(saved);
        return r + more as isize;
    }
    finish_blocking(hook, iov, cnt, off, r as usize, want, &real)
}

/// The rest of a write to a stream socket, through libc's `sendmsg`.
fn send_nosignal(fd: c_int) -> impl Fn(*const iovec, c_int) -> ssize_t {
    move |v, c| unsafe { super::net::send_vector(fd, v, c as usize) }
}

fn one(buf: *const c_void, n: size_t) -> iovec {
    iovec {
        iov_base: buf as *mut c_void,
        iov_len: n,
    }
}

#[no_mangle]
pub unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    let f = real::read::get();
    if !holding() {
        return f(fd, buf, n);
    }
    held(move || {
        read_family("read", fd, &one(buf, n), 1, AT_POSITION, |v, _, _| {
            f(fd, (*v).iov_base, (*v).iov_len)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    let f = real::readv::get();
    if !holding() {
        return f(fd, iov, cnt);
    }
    held(move || read_family("readv", fd, iov, cnt, AT_POSITION, |v, c, _| f(fd, v, c)))
}

#[no_mangle]
pub unsafe extern "C" fn pread(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t {
    let f = real::pread::get();
    if !holding() || off < 0 {
        return f(fd, buf, n, off);
    }
    held(move || {
        read_family("pread", fd, &one(buf, n), 1, off, |v, _, o| {
            f(fd, (*v).iov_base, (*v).iov_len, o)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn pread64(fd: c_int, buf: *mut c_void, n: size_t, off: off_t) -> ssize_t {
    let f = real::pread64::get();
    if !holding() || off < 0 {
        return f(fd, buf, n, off);
    }
    held(move || {
        read_family("pread", fd, &one(buf, n), 1, off, |v, _, o| {
            f(fd, (*v).iov_base, (*v).iov_len, o)
        })
    })
}

#[no_mangle]
pub unsafe extern "C" fn preadv(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t {
    let f = real::preadv::get();
    if !holding() || off < 0 {
        return f(fd, iov, cnt, off);
    }
    held(move || read_family("preadv", fd, iov, cnt, off, |v, c, o| f(fd, v, c, o)))
}

#[no_mangle]
pub unsafe extern "C" fn preadv64(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t {
    let f = real::preadv64::get();
    if !holding() || off < 0 {
        return f(fd, iov, cnt, off);
    }
    held(move || read_family("preadv", fd, iov, cnt, off, |v, c, o| f(fd, v, c, o)))
}

#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    let f = real::write::get();
    if !holding() {
        return f(fd, buf, n);
    }
    held(move || {
        let real = |v: *const iovec, _, _| f(fd, (*v).iov_base, (*v).iov_len);
        write_family(
            "write",
            fd,
            &one(buf, n),
            1,
            AT_POSITION,
            real,
            send_nosignal(fd),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    let f = real::writev::get();
    if !holding() {
        return f(fd, iov, cnt);
    }
    held(move || {
        let real = |v, c, _| f(fd, v, c);
        write_family("writev", fd, iov, cnt, AT_POSITION, real, send_nosignal(fd))
    })
}

#[no_mangle]
pub unsafe extern "C" fn pwrite(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t {
    let f = real::pwrite::get();
    if !holding() || off < 0 {
        return f(fd, buf, n, off);
    }
    held(move || {
        let real = |v: *const iovec, _, o| f(fd, (*v).iov_base, (*v).iov_len, o);
        write_family("pwrite", fd, &one(buf, n), 1, off, real, send_nosignal(fd))
    })
}

#[no_mangle]
pub unsafe extern "C" fn pwrite64(fd: c_int, buf: *const c_void, n: size_t, off: off_t) -> ssize_t {
    let f = real::pwrite64::get();
    if !holding() || off < 0 {
        return f(fd, buf, n, off);
    }
    held(move || {
        let real = |v: *const iovec, _, o| f(fd, (*v).iov_base, (*v).iov_len, o);
        write_family("pwrite", fd, &one(buf, n), 1, off, real, send_nosignal(fd))
    })
}

#[no_mangle]
pub unsafe extern "C" fn pwritev(fd: c_int, iov: *const iovec, cnt: c_int, off: off_t) -> ssize_t {
    let f = real::pwritev::get();
    if !holding() || off < 0 {
        return f(fd, iov, cnt, off);
    }
    held(move || {
        let real = |v, c, o| f(fd, v, c, o);
        write_family("pwritev", fd, iov, cnt, off, real, send_nosignal(fd))
    })
}

#[no_mangle]
pub unsafe extern "C" fn pwritev64(
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    off: off_t,
) -> ssize_t {
    let f = real::pwritev64::get();
    if !holding() || off < 0 {
        return f(fd, iov, cnt, off);
    }
    held(move || {
        let real = |v, c, o| f(fd, v, c, o);
        write_family("pwritev", fd, iov, cnt, off, real, send_nosignal(fd))
    })
}

/// Is `path` a FIFO that this open may wait on? Opening a FIFO read-only or
/// write-only waits for the other end; any other open is taken as not
/// blocking.
pub(crate) unsafe fn is_waiting_fifo(dirfd: c_int, path: *const c_char, flags: c_int) -> bool {
    if flags & (libc::O_NONBLOCK | libc::O_PATH) != 0
        || flags & libc::O_ACCMODE == libc::O_RDWR
        || path.is_null()
    {
        return false;
    }
    let mut st: libc::stat = core::mem::zeroed();
    let r = sys::syscall6(
        libc::SYS_newfstatat,
        dirfd as usize,
        path as usize,
        &mut st as *mut _ as usize,
        0,
        0,
        0,
    );
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFIFO
}

/// A FIFO open. Write-only has a probe: with O_NONBLOCK it succeeds when a
/// reader is there (then the descriptor is made blocking, as asked) and
/// fails with ENXIO when it would wait. Read-only has none: whether a
/// writer will come cannot be known, so the tokens are released.
pub(crate) unsafe fn fifo_open(
    hook: &'static str,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if flags & libc::O_ACCMODE == libc::O_WRONLY {
        let fl = (flags | libc::O_NONBLOCK) as usize;
        let fd = sys::syscall6(libc::SYS_openat, dirfd as usize, path as usize, fl, 0, 0, 0);
        if fd >= 0 {
            let now = sys::syscall3(libc::SYS_fcntl, fd as usize, libc::F_GETFL as usize, 0);
            sys::syscall3(
                libc::SYS_fcntl,
                fd as usize,
                libc::F_SETFL as usize,
                (now as usize) & !(libc::O_NONBLOCK as usize),
            );
            return fd as c_int;
        }
        if fd != -(libc::ENXIO as isize) {
            return c_result(fd) as c_int;
        }
    }
    released(hook, real)
}

#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let f = real::open::get();
    if !holding() {
        return f(path, flags, mode);
    }
    held(move || {
        if !is_waiting_fifo(libc::AT_FDCWD, path, flags) {
            return f(path, flags, mode);
        }
        held(move || fifo_open("open", libc::AT_FDCWD, path, flags, || f(path, flags, mode)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    let f = real::open64::get();
    if !holding() {
        return f(path, flags, mode);
    }
    held(move || {
        if !is_waiting_fifo(libc::AT_FDCWD, path, flags) {
            return f(path, flags, mode);
        }
        held(move || fifo_open("open", libc::AT_FDCWD, path, flags, || f(path, flags, mode)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn openat(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    let f = real::openat::get();
    if !holding() {
        return f(dirfd, path, flags, mode);
    }
    held(move || {
        if !is_waiting_fifo(dirfd, path, flags) {
            return f(dirfd, path, flags, mode);
        }
        held(move || fifo_open("openat", dirfd, path, flags, || f(dirfd, path, flags, mode)))
    })
}

#[no_mangle]
pub unsafe extern "C" fn openat64(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    let f = real::openat64::get();
    if !holding() {
        return f(dirfd, path, flags, mode);
    }
    held(move || {
        if !is_waiting_fifo(dirfd, path, flags) {
            return f(dirfd, path, flags, mode);
        }
        held(move || fifo_open("openat", dirfd, path, flags, || f(dirfd, path, flags, mode)))
    })
}

/// Writing back to disk: whether it will wait cannot be known.
#[no_mangle]
pub unsafe extern "C" fn fsync(fd: c_int) -> c_int {
    let f = real::fsync::get();
    if !holding() {
        return f(fd);
    }
    held(move || released("fsync", || f(fd)))
}

#[no_mangle]
pub unsafe extern "C" fn fdatasync(fd: c_int) -> c_int {
    let f = real::fdatasync::get();
    if !holding() {
        return f(fd);
    }
    held(move || released("fdatasync", || f(fd)))
}

#[no_mangle]
pub unsafe extern "C" fn flock(fd: c_int, op: c_int) -> c_int {
    let f = real::flock::get();
    if !holding() {
        return f(fd, op);
    }
    held(move || {
        if op & (libc::LOCK_NB | libc::LOCK_UN) != 0 {
            return f(fd, op);
        }
        let r = sys::syscall3(
            libc::SYS_flock,
            fd as usize,
            (op | libc::LOCK_NB) as usize,
            0,
        );
        if r == -(libc::EWOULDBLOCK as isize) {
            return released("flock", || f(fd, op));
        }
        c_result(r) as c_int
    })
}

/// `fcntl` waits only for `F_SETLKW` / `F_OFD_SETLKW`: try the
/// non-waiting form of the same lock first.
unsafe fn fcntl_hook(
    f: unsafe extern "C" fn(c_int, c_int, usize) -> c_int,
    fd: c_int,
    cmd: c_int,
    arg: usize,
) -> c_int {
    let try_cmd = match cmd {
        libc::F_SETLKW => libc::F_SETLK,
        libc::F_OFD_SETLKW => libc::F_OFD_SETLK,
        _ => return f(fd, cmd, arg),
    };
    if !holding() {
        return f(fd, cmd, arg);
    }
    let r = sys::syscall3(libc::SYS_fcntl, fd as usize, try_cmd as usize, arg);
    if r == -(libc::EAGAIN as isize) || r == -(libc::EACCES as isize) {
        return released("fcntl", || f(fd, cmd, arg));
    }
    c_result(r) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_hook(real::fcntl::get(), fd, cmd, arg)
}

#[no_mangle]
pub unsafe extern "C" fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int {
    fcntl_hook(real::fcntl64::get(), fd, cmd, arg)
}

// ---- _FORTIFY_SOURCE variants ----
//
// Programs built with _FORTIFY_SOURCE (Debian's default) call these instead
// of read/pread; glibc then reads privately. A call that passes the size
// check is the plain call; one that fails goes to libc to abort as usual.

mod real_chk {
    use core::ffi::{c_int, c_void};
    use libc::{off_t, size_t, ssize_t};
    real_fn!(__read_chk: fn(c_int, *mut c_void, size_t, size_t) -> ssize_t);
    real_fn!(__pread_chk: fn(c_int, *mut c_void, size_t, off_t, size_t) -> ssize_t);
    real_fn!(__pread64_chk: fn(c_int, *mut c_void, size_t, off_t, size_t) -> ssize_t);
}

#[no_mangle]
pub unsafe extern "C" fn __read_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
) -> ssize_t {
    if !holding() || n > buflen {
        return real_chk::__read_chk::get()(fd, buf, n, buflen);
    }
    read(fd, buf, n)
}

#[no_mangle]
pub unsafe extern "C" fn __pread_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off_t,
    buflen: size_t,
) -> ssize_t {
    if !holding() || n > buflen {
        return real_chk::__pread_chk::get()(fd, buf, n, off, buflen);
    }
    pread(fd, buf, n, off)
}

#[no_mangle]
pub unsafe extern "C" fn __pread64_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    off: off_t,
    buflen: size_t,
) -> ssize_t {
    if !holding() || n > buflen {
        return real_chk::__pread64_chk::get()(fd, buf, n, off, buflen);
    }
    pread64(fd, buf, n, off)
}

mod real_open_2 {
    use core::ffi::{c_char, c_int};
    real_fn!(__open_2: fn(*const c_char, c_int) -> c_int);
    real_fn!(__open64_2: fn(*const c_char, c_int) -> c_int);
    real_fn!(__openat_2: fn(c_int, *const c_char, c_int) -> c_int);
    real_fn!(__openat64_2: fn(c_int, *const c_char, c_int) -> c_int);
}

// The fortified opens check that O_CREAT/O_TMPFILE came with a mode, which
// these callers never pass: a FIFO open without those flags is the plain
// open.
fn needs_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    if !holding() || needs_mode(flags) {
        return real_open_2::__open_2::get()(path, flags);
    }
    open(path, flags, 0)
}

#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    if !holding() || needs_mode(flags) {
        return real_open_2::__open64_2::get()(path, flags);
    }
    open64(path, flags, 0)
}

#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if !holding() || needs_mode(flags) {
        return real_open_2::__openat_2::get()(dirfd, path, flags);
    }
    openat(dirfd, path, flags, 0)
}

#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    if !holding() || needs_mode(flags) {
        return real_open_2::__openat64_2::get()(dirfd, path, flags);
    }
    openat64(dirfd, path, flags, 0)
}
