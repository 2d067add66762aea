//! The interposed blocking calls of libc (SPEC section 4).
//!
//! Every hook has the same shape:
//!
//! 1. A thread that holds no token goes straight to libc: one thread-local
//!    check (SPEC S11).
//! 2. Otherwise the kernel's non-blocking form of the call is tried first
//!    (a trylock, `RWF_NOWAIT`, `MSG_DONTWAIT`, `WNOHANG`, a zero timeout).
//!    If it completes, the thread keeps its tokens (SPEC S3).
//! 3. Otherwise the thread's tokens are released, libc's call runs, and the
//!    tokens are taken back before returning libc's result and `errno`
//!    (SPEC S2). A probe that did only part of the work (some of a write)
//!    does not decide the call: the rest runs this way and the call returns
//!    the sum, as libc alone would (SPEC section 7, no short counts).
//!
//! Hooks never allocate, take no lock of ours, and call libc's real function
//! through a pointer resolved with `dlsym(RTLD_NEXT)` when the library loads
//! (a function that libc lacks is not hooked: see real.rs).
//! They are exported unversioned (a versioned hook would not interpose).
//! Variadic C functions (`fcntl`, `open`, `syscall`) are defined with their
//! largest argument list: on x86-64 the extra registers are simply unused.

use crate::sys;
use crate::thread;

#[macro_use]
mod real;
pub(crate) mod fdio;
mod iov;
pub(crate) mod net;
pub(crate) mod process;
mod signals;
mod sync;
pub(crate) mod waiters;

pub use iov::{iov_request, IovSpan, MAX_RW_COUNT};

/// Once the settings are read: under `LWKT_DEBUG`, name the libc functions
/// that this libc lacks and that are therefore not hooked (real.rs).
pub fn init_process() {
    real::announce_missing();
}

/// Run `call` with the calling thread's tokens released; take them all back
/// before returning its result, with the `errno` the call left.
#[inline(never)]
pub fn released<R>(hook: &'static str, call: impl FnOnce() -> R) -> R {
    crate::catchall::checkpoint();
    let saved = sys::errno();
    let tokens = thread::release_all(hook);
    sys::set_errno(saved);
    let out = call();
    let e = sys::errno();
    thread::retake(tokens, hook);
    sys::set_errno(e);
    out
}

/// The part of a hook that runs when the thread holds tokens, kept out of
/// line: a thread without tokens then pays a thread-local check and a jump
/// to libc, with no stack frame of ours. Under `LWKT_CHAOS`, a holder also
/// gives its tokens away here, blocking or not, so that code which forgets
/// to re-validate fails in tests.
#[cold]
#[inline(never)]
pub fn held<R>(f: impl FnOnce() -> R) -> R {
    crate::catchall::checkpoint();
    if crate::config::chaos() {
        thread::chaos_cycle();
    }
    f()
}

/// Does the calling thread hold tokens? The hooks' only cost otherwise.
#[inline(always)]
pub fn holding() -> bool {
    thread::holds_tokens()
}

/// What the non-blocking attempt of a call found.
pub enum Probe {
    /// It completed; this is the raw kernel result (negative errno on
    /// failure) to return as the call's own.
    Done(isize),
    /// The call cannot block (a non-blocking descriptor): run it as is.
    Direct,
    /// It would block, or cannot be known: release the tokens and run it.
    Block,
}

/// Turn a raw kernel result into the C convention: -1 and `errno`.
pub fn c_result(r: isize) -> isize {
    if r < 0 {
        sys::set_errno(-r as i32);
        -1
    } else {
        r
    }
}

/// Is `fd` in non-blocking mode? (`F_GETFL` through the raw stub.)
pub fn nonblocking(fd: i32) -> bool {
    let fl = unsafe { sys::syscall3(libc::SYS_fcntl, fd as usize, libc::F_GETFL as usize, 0) };
    fl >= 0 && fl as i32 & libc::O_NONBLOCK != 0
}

/// After a short non-blocking read of `n` bytes at `off` (-1: the file
/// position): is there more of a disk file (regular file or block device)
/// that the blocking read would go on to fetch? Not at the end of the file,
/// and not for pipes, sockets or terminals, where short is final.
pub fn more_on_disk(fd: i32, off: i64, n: isize) -> bool {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe { sys::syscall3(libc::SYS_fstat, fd as usize, &mut st as *mut _ as usize, 0) };
    let fmt = st.st_mode & libc::S_IFMT;
    if r != 0 || (fmt != libc::S_IFREG && fmt != libc::S_IFBLK) {
        return false;
    }
    if fmt == libc::S_IFBLK {
        return true;
    }
    let pos = if off >= 0 {
        off + n as i64
    } else {
        unsafe { sys::syscall3(libc::SYS_lseek, fd as usize, 0, libc::SEEK_CUR as usize) as i64 }
    };
    pos >= 0 && pos < st.st_size
}

/// After a blocking send or write moved part of its data without waiting,
/// would the blocking call have gone on with the rest? Yes for pipes,
/// files, terminals and stream sockets; never for a socket of messages
/// (datagram, seqpacket): one message is never split.
pub fn continues_after_part(fd: i32) -> bool {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe { sys::syscall3(libc::SYS_fstat, fd as usize, &mut st as *mut _ as usize, 0) };
    if r != 0 || st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return r == 0;
    }
    let mut ty: i32 = 0;
    let mut len = core::mem::size_of::<i32>() as libc::socklen_t;
    let r = unsafe {
        sys::syscall6(
            libc::SYS_getsockopt,
            fd as usize,
            libc::SOL_SOCKET as usize,
            libc::SO_TYPE as usize,
            &mut ty as *mut i32 as usize,
            &mut len as *mut libc::socklen_t as usize,
            0,
        )
    };
    r == 0 && ty == libc::SOCK_STREAM
}

/// Is `fd` a socket? (A stream socket's continued send must not raise the
/// SIGPIPE that the one blocking call, having sent part, would not.)
pub fn is_socket(fd: i32) -> bool {
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    let r = unsafe { sys::syscall3(libc::SYS_fstat, fd as usize, &mut st as *mut _ as usize, 0) };
    r == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
}

/// A timespec of zero (the "do not wait" timeout of the probes).
pub const ZERO_TS: libc::timespec = libc::timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Is the timespec at `ts` zero (a call that will not wait)?
pub unsafe fn is_zero_ts(ts: *const libc::timespec) -> bool {
    !ts.is_null() && (*ts).tv_sec == 0 && (*ts).tv_nsec == 0
}
