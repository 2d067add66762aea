//! One line of text on stderr, built on the stack, and the two things
//! every part of this layer says with it: a warning, and an errno in words.
//!
//! The bottom of `observe`: it uses only `sys`, so that `config` (which
//! must warn while it reads the environment) needs nothing else of this
//! layer. Lines are written from inside other people's programs, possibly
//! from a signal handler or a thread-exit destructor: no allocation, no
//! `std::io`, one `write(2)` per line.

use core::fmt::{self, Write};

use crate::sys;

/// A line of at most 1 KiB; longer text is cut, never allocated.
pub struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line {
            buf: [0; 1024],
            len: 0,
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Write the line (with a newline) to stderr.
    pub fn emit(&mut self) {
        if self.len == self.buf.len() {
            self.len -= 1;
        }
        self.buf[self.len] = b'\n';
        self.len += 1;
        sys::write_stderr(self.as_bytes());
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// A warning line that does not stop the program.
#[cold]
pub fn warn(what: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = write!(line, "lwkt: warning: {what}");
    line.emit();
}

/// An errno value in words, for the errors a report path meets; others
/// as "errno N". A table of our own: strerror(3) is not
/// async-signal-safe (locale data).
pub struct ErrnoText(pub i32);

impl fmt::Display for ErrnoText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = match self.0 {
            libc::EPERM => "operation not permitted",
            libc::ENOENT => "no such file or directory",
            libc::EINTR => "interrupted",
            libc::EIO => "input/output error",
            libc::ENXIO => "no such device or address",
            libc::EBADF => "bad file descriptor",
            libc::EAGAIN => "resource temporarily unavailable",
            libc::ENOMEM => "out of memory",
            libc::EACCES => "permission denied",
            libc::EFAULT => "bad address",
            libc::EBUSY => "device or resource busy",
            libc::EEXIST => "file exists",
            libc::ENODEV => "no such device",
            libc::ENOTDIR => "a component of the path is not a directory",
            libc::EISDIR => "is a directory",
            libc::EINVAL => "invalid argument",
            libc::ENFILE => "too many open files in the system",
            libc::EMFILE => "too many open files",
            libc::ETXTBSY => "text file busy",
            libc::EFBIG => "file too large",
            libc::ENOSPC => "no space left on device",
            libc::EROFS => "read-only file system",
            libc::EPIPE => "broken pipe",
            libc::ENAMETOOLONG => "file name too long",
            libc::ELOOP => "too many levels of symbolic links",
            libc::EOVERFLOW => "value too large",
            libc::EDQUOT => "disk quota exceeded",
            libc::ESTALE => "stale file handle",
            libc::ERANGE => "result too large",
            e => return write!(f, "errno {e}"),
        };
        f.write_str(words)
    }
}
