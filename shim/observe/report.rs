//! Where the `LWKT_STATS` report goes, and that it arrives whole or not at
//! all (SPEC section 7, "Reports").
//!
//! - `LWKT_STATS=1`: to the stderr the program started with. Programs close
//!   their stderr at exit (GNU's `close_stdout`, in an exit handler that
//!   runs before ours) and may then open something else as descriptor 2;
//!   so descriptor 2 is duplicated at load, close-on-exec (an exec'd
//!   program keeps its own), to a number far above the ones the program
//!   numbers its files with. At exit it is used only if it is still the
//!   file it was at load (a program that closed it and reused the number
//!   is never written to); failing that, descriptor 2 if it still is that
//!   file; failing that, nowhere.
//! - A path: appended with a single `write` to a file opened
//!   `O_APPEND|O_CREAT|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`, mode 0600, so that
//!   processes sharing the path (a `make -j`, a fork) keep every report
//!   whole: one `write` with `O_APPEND` to a regular file on a local file
//!   system is not interleaved with another's. A path that is not a regular
//!   file (FIFO, device, directory, socket, symbolic link) is refused with
//!   one line, never blocked on or written.
//!
//! Runs at exit, from an exit handler, possibly while other threads still
//! run: raw system calls, nothing allocated, no locks.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};

use super::config;
use super::line::{ErrnoText, Line};
use crate::sys;

/// The kept duplicate of the program's stderr (-1: none).
static KEPT_FD: AtomicI32 = AtomicI32::new(-1);
/// Which file descriptor 2 was at load: (device, inode), once known.
static STDERR_KNOWN: AtomicBool = AtomicBool::new(false);
static STDERR_DEV: AtomicU64 = AtomicU64::new(0);
static STDERR_INO: AtomicU64 = AtomicU64::new(0);

/// At load, after `config`: keep the program's stderr if a report will
/// be made.
pub fn init_process() {
    if config::stats_on() {
        keep_stderr();
    }
}

fn keep_stderr() {
    // A program started without stderr gets no lines from us at exit.
    let Some((dev, ino, _)) = file_id(2) else {
        return;
    };
    STDERR_DEV.store(dev, Relaxed);
    STDERR_INO.store(ino, Relaxed);
    STDERR_KNOWN.store(true, Relaxed);
    // The lowest free descriptor from half the soft limit (512 under the
    // usual 1024) up: clear of the low numbers a program's open() returns
    // and that shells use (10 up, 255), and below select()'s 1024.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit64 of this process writes one rlimit, on this stack.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_prlimit64,
            0,
            libc::RLIMIT_NOFILE as usize,
            0,
            &mut lim as *mut libc::rlimit as usize,
            0,
            0,
        )
    };
    let top = if r == 0 { lim.rlim_cur.min(1024) } else { 1024 };
    let from = (top / 2).max(3) as usize;
    // SAFETY: a new descriptor, ours; descriptor 2 is left as it was.
    let fd = unsafe { sys::syscall3(libc::SYS_fcntl, 2, libc::F_DUPFD_CLOEXEC as usize, from) };
    if fd >= 0 {
        KEPT_FD.store(fd as i32, Relaxed);
    }
}

/// (device, inode, mode) of what `fd` refers to; None when it is closed.
fn file_id(fd: i32) -> Option<(u64, u64, u32)> {
    // SAFETY: struct stat is integers: all zeros is a value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat writes one struct stat, on this stack.
    let r = unsafe {
        sys::syscall3(
            libc::SYS_fstat,
            fd as usize,
            &mut st as *mut libc::stat as usize,
            0,
        )
    };
    (r == 0).then_some((st.st_dev, st.st_ino, st.st_mode))
}

/// The stderr the program started with, if some descriptor still is it.
fn stderr_at_exit() -> Option<i32> {
    if !STDERR_KNOWN.load(Relaxed) {
        return None;
    }
    let want = (STDERR_DEV.load(Relaxed), STDERR_INO.load(Relaxed));
    [KEPT_FD.load(Relaxed), 2]
        .into_iter()
        .find(|&fd| fd >= 0 && file_id(fd).map(|(d, i, _)| (d, i)) == Some(want))
}

/// One line about the report, "lwkt: warning: LWKT_STATS: ...", to the
/// stderr the program started with.
pub fn say(what: fmt::Arguments<'_>) {
    let Some(fd) = stderr_at_exit() else {
        return;
    };
    let mut line = Line::new();
    let _ = write!(line, "lwkt: warning: LWKT_STATS: {what}");
    let bytes = line.as_bytes();
    let iov = [
        libc::iovec {
            iov_base: bytes.as_ptr() as *mut libc::c_void,
            iov_len: bytes.len(),
        },
        libc::iovec {
            iov_base: b"\n".as_ptr() as *mut libc::c_void,
            iov_len: 1,
        },
    ];
    // SAFETY: the kernel reads the two vectors and the bytes they name,
    // all live here.
    unsafe { sys::syscall3(libc::SYS_writev, fd as usize, iov.as_ptr() as usize, 2) };
}

/// Deliver the finished report to where `LWKT_STATS` said.
pub fn deliver(report: &[u8]) {
    if config::STATS.load(Relaxed) == config::STATS_STDERR {
        if let Some(fd) = stderr_at_exit() {
            write_all(fd, report);
        }
    } else {
        append_to_file(report);
    }
}

/// The whole of `bytes` to a terminal or pipe (which may take it in
/// parts), waiting at most a second at a time for a full non-blocking one.
fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the kernel reads `bytes`, a live slice.
        let r = unsafe {
            sys::syscall3(
                libc::SYS_write,
                fd as usize,
                bytes.as_ptr() as usize,
                bytes.len(),
            )
        };
        if r > 0 {
            bytes = &bytes[r as usize..];
        } else if r == -(libc::EAGAIN as isize) {
            let mut p = libc::pollfd {
                fd,
                events: libc::POLLOUT,
                revents: 0,
            };
            let ts = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: ppoll reads the timespec and updates the one pollfd,
            // both on this stack; no signal mask is given.
            let ready = unsafe {
                sys::syscall6(
                    libc::SYS_ppoll,
                    &mut p as *mut libc::pollfd as usize,
                    1,
                    &ts as *const libc::timespec as usize,
                    0,
                    0,
                    0,
                )
            };
            if ready <= 0 {
                return;
            }
        } else if r != -(libc::EINTR as isize) {
            return;
        }
    }
}

/// The report appended to the `LWKT_STATS` path: looked at first, opened
/// without following a link or blocking, refused unless a regular file.
fn append_to_file(report: &[u8]) {
    let mut buf = [0u8; config::PATH_MAX];
    let Some(len) = expanded_path(&mut buf) else {
        say(format_args!(
            "the report path is longer than {} bytes once %p is expanded; no report",
            config::PATH_MAX - 1
        ));
        return;
    };
    let path = Text(&buf[..len]);
    let at = buf.as_ptr() as usize;

    // Look first: a device is not even opened (opening one can act).
    // SAFETY: struct stat is integers: all zeros is a value.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: a NUL-terminated path in `buf`; one struct stat written.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_newfstatat,
            libc::AT_FDCWD as usize,
            at,
            &mut st as *mut libc::stat as usize,
            libc::AT_SYMLINK_NOFOLLOW as usize,
            0,
            0,
        )
    };
    if r == 0 && st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return refuse(path, Kind(st.st_mode & libc::S_IFMT));
    }
    let flags = libc::O_WRONLY
        | libc::O_APPEND
        | libc::O_CREAT
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_CLOEXEC
        | libc::O_NOCTTY;
    // SAFETY: a NUL-terminated path in `buf`; the descriptor is ours.
    let fd = unsafe {
        sys::syscall6(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            at,
            flags as usize,
            0o600,
            0,
            0,
        )
    };
    if fd < 0 {
        // It changed since it was looked at.
        return match -fd as i32 {
            libc::ELOOP => refuse(path, Kind(libc::S_IFLNK)),
            libc::EISDIR => refuse(path, Kind(libc::S_IFDIR)),
            libc::ENXIO => refuse(path, Kind(0)),
            e => say(format_args!(
                "cannot write the report to {path}: {}",
                ErrnoText(e)
            )),
        };
    }
    let fd = fd as usize;
    match file_id(fd as i32) {
        Some((_, _, mode)) if mode & libc::S_IFMT == libc::S_IFREG => append_once(fd, report, path),
        Some((_, _, mode)) => refuse(path, Kind(mode & libc::S_IFMT)),
        None => {}
    }
    // SAFETY: the descriptor opened above, ours alone.
    unsafe { sys::syscall3(libc::SYS_close, fd, 0, 0) };
}

/// The report in one `write` to `fd`, a regular file opened to append;
/// a line when it did not all arrive.
fn append_once(fd: usize, report: &[u8], path: Text<'_>) {
    let r = loop {
        // SAFETY: the kernel reads `report`, a live slice.
        let r =
            unsafe { sys::syscall3(libc::SYS_write, fd, report.as_ptr() as usize, report.len()) };
        // Interrupted before anything was written: nothing torn.
        if r != -(libc::EINTR as isize) {
            break r;
        }
    };
    if r < 0 {
        say(format_args!(
            "cannot write the report to {path}: {}",
            ErrnoText(-r as i32)
        ));
    } else if (r as usize) < report.len() {
        // Not completed with a second write: another process's
        // report may already follow it.
        say(format_args!(
            "only {r} of the report's {} bytes reached {path} (a full disk or a \
             file size limit?)",
            report.len()
        ));
    }
}

fn refuse(path: Text<'_>, kind: Kind) {
    say(format_args!(
        "{path} is {kind}, not a regular file; the report is not written there"
    ));
}

/// The report path with `%p` as this process's pid and `%%` as `%`
/// (checked at start-up: no other `%` escape), NUL-terminated in `out`;
/// its length, or None when it does not fit.
fn expanded_path(out: &mut [u8; config::PATH_MAX]) -> Option<usize> {
    // SAFETY: written once at start-up, before any thread of ours ran.
    let tmpl = unsafe { &*core::ptr::addr_of!(config::STATS_PATH) };
    let tmpl = &tmpl[..tmpl.iter().position(|&b| b == 0).unwrap_or(0)];
    let mut pid = [0u8; 10];
    let pid = decimal(sys::getpid(), &mut pid);
    let mut len = 0;
    let mut i = 0;
    while i < tmpl.len() {
        let piece: &[u8] = match (tmpl[i], tmpl.get(i + 1)) {
            (b'%', Some(b'p')) => pid,
            (b'%', Some(b'%')) => b"%",
            _ => &tmpl[i..i + 1],
        };
        i += if tmpl[i] == b'%' { 2 } else { 1 };
        if len + piece.len() >= out.len() {
            return None;
        }
        out[len..len + piece.len()].copy_from_slice(piece);
        len += piece.len();
    }
    out[len] = 0;
    Some(len)
}

fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// What a path is, by its file type bits (0: unknown, from ENXIO).
struct Kind(u32);

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            libc::S_IFIFO => "a FIFO",
            libc::S_IFCHR => "a character device",
            libc::S_IFBLK => "a block device",
            libc::S_IFDIR => "a directory",
            libc::S_IFSOCK => "a socket",
            libc::S_IFLNK => "a symbolic link (not followed)",
            _ => "a FIFO without a reader, a socket or an absent device",
        })
    }
}

/// Bytes shown as text: valid UTF-8 as it is, other bytes as U+FFFD;
/// control characters as `?` (one report line stays one line), or, in
/// `Json` form, escaped as in a JSON string.
pub struct Text<'a>(pub &'a [u8]);
pub struct Json<'a>(pub &'a [u8]);

fn show(bytes: &[u8], f: &mut fmt::Formatter<'_>, json: bool) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' if json => f.write_str("\\\"")?,
                '\\' if json => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    if json {
                        write!(f, "\\u{:04x}", c as u32)?
                    } else {
                        f.write_char('?')?
                    }
                }
                c => f.write_char(c)?,
            }
        }
        if !chunk.invalid().is_empty() {
            f.write_char('\u{fffd}')?;
        }
    }
    Ok(())
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(self.0, f, false)
    }
}

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        show(self.0, f, true)
    }
}
