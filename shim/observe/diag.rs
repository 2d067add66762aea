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
        // SAFETY: an initialised token's description is NULL (not here) or
        // a NUL-terminated string that outlives it (`lwkt_token_init`).
        let bytes = unsafe { core::ffi::CStr::from_ptr(desc) }.to_bytes();
        match core::str::from_utf8(bytes) {
            Ok(s) => f.write_str(s),
            Err(_) => unnamed(f, tok),
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
    let mut line = Line::new();
    let _ = write!(line, "lwkt: {call}({}): {what}; {}", Desc(tok), ThreadName);
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
