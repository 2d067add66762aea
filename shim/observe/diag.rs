//! Misuse reports (SPEC S10) and what messages say about tokens, threads
//! and code addresses: one line on stderr each (`line`).
//!
//! Misuse is reported from inside other people's programs, possibly from a
//! signal handler or a thread-exit destructor: no allocation, no
//! `std::io`, one `write(2)` per line.
//!
//! It reads the token layer (a token's description, the pool slot it is,
//! the calling thread's references) and `config`; it calls nothing above.

use core::fmt::{self, Write};

use super::config;
use crate::sys;
use crate::token::Token;
use crate::{pool, thread};

// The token layer and the hooks name the line writer and warnings by these
// paths.
pub use super::line::{warn, Line};

/// A token's description: its name, the pool slot it is, or its address.
pub struct Desc(pub *const Token);

impl fmt::Display for Desc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tok = self.0;
        if tok.is_null() {
            return f.write_str("NULL token");
        }
        if let Some(slot) = pool::slot_of(tok) {
            return write!(f, "pool token #{slot}");
        }
        // SAFETY: a `Desc` is made of a token pointer the program passed to
        // the API and uses (not NULL, checked above).
        let t = unsafe { &*tok };
        // Memory that never was a token has a garbage description pointer.
        let desc = t.t_desc;
        if desc.is_null() || !t.looks_initialised() {
            return unnamed(f, tok);
        }
        // The description may point anywhere (freed, never mapped): it is
        // read through the kernel, which fails where a load would fault.
        let mut buf = [0u8; DESC_MAX];
        let n = copy_readable(desc as *const u8, &mut buf);
        let name = buf[..n]
            .iter()
            .position(|&b| b == 0)
            .and_then(|end| core::str::from_utf8(&buf[..end]).ok());
        match name {
            Some(s) => f.write_str(s),
            None => unnamed(f, tok),
        }
    }
}

/// A token without a usable description: by its address, except in secure
/// mode, where no message shows an address (SPEC section 7).
fn unnamed(f: &mut fmt::Formatter<'_>, tok: *const Token) -> fmt::Result {
    if config::secure() {
        f.write_str("unnamed token")
    } else {
        write!(f, "token@{:p}", tok)
    }
}

/// The longest description a message shows (with its NUL); a longer one,
/// or one not readable that far, names the token by its address.
const DESC_MAX: usize = 256;

/// Copy the readable bytes at `src` (up to `buf.len()`, stopping at the
/// first page that cannot be read) into `buf`; returns how many. Never
/// faults: the kernel copies, through `process_vm_readv` on this process,
/// or, where that is refused (a seccomp filter), a pipe. Async-signal-safe.
pub fn copy_readable(src: *const u8, buf: &mut [u8]) -> usize {
    const PAGE: usize = 4096;
    let mut done = 0;
    while done < buf.len() {
        let at = src as usize + done;
        // One page at a time: a copy across an unreadable page fails whole.
        let n = (buf.len() - done).min(PAGE - at % PAGE);
        let got = copy_from_self(at, &mut buf[done..done + n]);
        if got == 0 {
            break;
        }
        done += got;
        if got < n {
            break;
        }
    }
    done
}

/// One kernel copy of `buf.len()` bytes (within a page) at `src`; 0 when
/// unreadable.
fn copy_from_self(src: usize, buf: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: src as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the kernel reads `remote` (it fails with EFAULT where that is
    // unreadable, never faults) and writes `local`, our own buffer.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_process_vm_readv,
            sys::getpid() as usize,
            &local as *const _ as usize,
            1,
            &remote as *const _ as usize,
            1,
            0,
        )
    };
    if r >= 0 {
        return r as usize;
    }
    if r != -(libc::EFAULT as isize) {
        return copy_through_pipe(src, buf);
    }
    0
}

/// `copy_from_self` where `process_vm_readv` is refused: write the bytes
/// into a pipe (EFAULT instead of a fault) and read them back.
pub(crate) fn copy_through_pipe(src: usize, buf: &mut [u8]) -> usize {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`.
    let r = unsafe {
        sys::syscall3(
            libc::SYS_pipe2,
            fds.as_mut_ptr() as usize,
            libc::O_CLOEXEC as usize,
            0,
        )
    };
    if r < 0 {
        return 0;
    }
    let (rd, wr) = (fds[0] as usize, fds[1] as usize);
    // SAFETY: the kernel reads `src` (EFAULT where unreadable, no fault).
    let w = unsafe { sys::syscall3(libc::SYS_write, wr, src, buf.len()) };
    let got = if w > 0 {
        // SAFETY: at most `w <= buf.len()` bytes into our own buffer.
        let r = unsafe { sys::syscall3(libc::SYS_read, rd, buf.as_mut_ptr() as usize, w as usize) };
        r.max(0) as usize
    } else {
        0
    };
    // SAFETY: closing the two descriptors made above.
    unsafe {
        sys::syscall3(libc::SYS_close, rd, 0, 0);
        sys::syscall3(libc::SYS_close, wr, 0, 0);
    }
    got
}

/// The calling thread, as "thread TID (NAME)".
pub struct ThreadName;

impl fmt::Display for ThreadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut name = [0u8; 17];
        // PR_GET_NAME through the raw stub: async-signal-safe, no errno.
        // SAFETY: the kernel writes at most 16 bytes and a NUL, into 17.
        unsafe {
            sys::syscall6(
                libc::SYS_prctl,
                libc::PR_GET_NAME as usize,
                name.as_mut_ptr() as usize,
                0,
                0,
                0,
                0,
            );
        }
        let n = name.iter().position(|&b| b == 0).unwrap_or(16);
        let name = core::str::from_utf8(&name[..n]).unwrap_or("?");
        write!(f, "thread {} ({})", sys::gettid(), name)
    }
}

/// Report a misuse of the API and abort (SPEC S10): one line naming the
/// call, the thread, and the tokens the thread holds.
#[cold]
pub fn misuse(call: &str, tok: *const Token, what: fmt::Arguments<'_>) -> ! {
    report_misuse(call, Some(tok), what)
}

/// `misuse` by a call that takes no token (`lwkt_token_swap()`,
/// `ASSERT_NO_TOKENS_HELD()`).
#[cold]
pub fn misuse_no_token(call: &str, what: fmt::Arguments<'_>) -> ! {
    report_misuse(call, None, what)
}

fn report_misuse(call: &str, tok: Option<*const Token>, what: fmt::Arguments<'_>) -> ! {
    let mut line = Line::new();
    let _ = match tok {
        Some(tok) => write!(line, "lwkt: {call}({}): {what}; {}", Desc(tok), ThreadName),
        None => write!(line, "lwkt: {call}(): {what}; {}", ThreadName),
    };
    let _ = thread::write_held(&mut line);
    let _ = line.write_str("; aborting");
    line.emit();
    if config::debug() {
        backtrace_to_stderr();
    }
    sys::abort()
}

extern "C" {
    fn backtrace(buf: *mut *mut libc::c_void, size: libc::c_int) -> libc::c_int;
    fn backtrace_symbols_fd(buf: *const *mut libc::c_void, size: libc::c_int, fd: libc::c_int);
}

/// `LWKT_DEBUG`: the calling thread's stack, one frame a line.
#[cold]
pub fn backtrace_to_stderr() {
    if config::secure() {
        return; // addresses (SPEC section 7)
    }
    let mut frames = [core::ptr::null_mut(); 32];
    // SAFETY: backtrace writes at most `size` frames into the array.
    let n = unsafe { backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int) };
    sys::write_stderr(b"lwkt: backtrace:\n");
    // SAFETY: the `n` frames backtrace wrote; the symbols go to fd 2.
    unsafe { backtrace_symbols_fd(frames.as_ptr(), n, 2) };
}

/// `LWKT_DEBUG`: the first return address on the stack that is not in this
/// library (the program's call into the token API), or 0.
#[cold]
pub fn caller_outside_library() -> usize {
    let mut frames = [core::ptr::null_mut(); 12];
    // SAFETY: backtrace writes at most `size` frames into the array.
    let n = unsafe { backtrace(frames.as_mut_ptr(), frames.len() as libc::c_int) };
    let ours = object_base(caller_outside_library as *const () as usize);
    frames[..n.max(0) as usize]
        .iter()
        .map(|&pc| pc as usize)
        .find(|&pc| object_base(pc) != ours)
        .unwrap_or(0)
}

/// The load address of the object that holds code address `pc`, or 0.
fn object_base(pc: usize) -> usize {
    // SAFETY: Dl_info is pointers and integers: all zeros is a value.
    let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
    // SAFETY: dladdr only looks `pc` up, and fills `info`.
    if unsafe { libc::dladdr(pc as *const libc::c_void, &mut info) } == 0 {
        return 0;
    }
    info.dli_fbase as usize
}

/// A code address as "object(symbol+0xoff)" for messages.
pub struct CodeAddr(pub usize);

impl fmt::Display for CodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if config::secure() {
            return f.write_str("(not shown in secure mode)");
        }
        // SAFETY: Dl_info is pointers and integers: all zeros is a value.
        let mut info: libc::Dl_info = unsafe { core::mem::zeroed() };
        // SAFETY: dladdr only looks the address up, and fills `info`.
        if self.0 == 0 || unsafe { libc::dladdr(self.0 as *const libc::c_void, &mut info) } == 0 {
            return write!(f, "{:#x}", self.0);
        }
        let cstr = |p: *const libc::c_char| {
            if p.is_null() {
                "?"
            } else {
                // SAFETY: dladdr's names are NUL-terminated strings of the
                // loaded object, which the address keeps loaded.
                core::str::from_utf8(unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes())
                    .unwrap_or("?")
            }
        };
        let obj = cstr(info.dli_fname);
        let obj = obj.rsplit('/').next().unwrap_or(obj);
        if info.dli_sname.is_null() {
            write!(f, "{obj}+{:#x}", self.0 - info.dli_fbase as usize)
        } else {
            write!(
                f,
                "{obj}({}+{:#x})",
                cstr(info.dli_sname),
                self.0 - info.dli_saddr as usize
            )
        }
    }
}
