//! The `LWKT_*` environment variables, read once when the library loads.
//!
//! A value that is not one of the accepted forms stops the program at
//! start-up with one line naming the variable and the forms (SPEC section
//! 5): a typo must not silently leave a feature off.
//!
//! In secure mode (SPEC section 7: the kernel marked the process
//! `AT_SECURE`, because it runs set-user-ID, set-group-ID or with file
//! capabilities) none of them is read: whoever sets them may have fewer
//! rights than the process, and a report file, a line on stderr or an exit
//! are all things they could aim at it.

use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};

use super::line::{self, ErrnoText, Line};
use crate::sys;

/// Where the statistics report goes (`LWKT_STATS`).
pub const STATS_OFF: u8 = 0;
pub const STATS_STDERR: u8 = 1;
pub const STATS_FILE: u8 = 2;
pub const STATS_JSON: u8 = 3;

// The settings the token layer reads live with it (`LWKT_DEBUG`,
// `hold_ms`, `LWKT_CHAOS`, and TIMING: anything per-acquisition to record,
// read on the fast path as one load of a global); they are set here.
pub use crate::core::events::{CHAOS_SEED, DEBUG, HOLD_WARN_MS, TIMING};

pub static STATS: AtomicU8 = AtomicU8::new(STATS_OFF);
/// `LWKT_CATCHALL`: false when set to 0.
pub static CATCHALL_WANTED: AtomicBool = AtomicBool::new(true);
/// The program carries ThreadSanitizer's runtime (`checkers` found it at
/// load). The catch-all stays off then: that runtime makes system calls of
/// its own from the program's code, tokens held or not, which dispatch
/// would trap into a handler that itself runs through the runtime's
/// interceptors.
pub static THREAD_SANITIZER: AtomicBool = AtomicBool::new(false);
/// `LWKT_CATCHALL`: libc's system-call sites rewritten at load (1, the
/// default), not `sud` (Syscall User Dispatch only).
pub static CATCHALL_PATCH: AtomicBool = AtomicBool::new(true);
/// Secure mode: the `LWKT_*` variables were ignored, and messages show no
/// addresses.
pub static SECURE: AtomicBool = AtomicBool::new(false);

/// The path of the statistics report (NUL-terminated), when it goes to a
/// file: absolute (a relative one is resolved at start-up), `%p` and `%%`
/// still in it (expanded at exit, so that a fork child gets its own pid).
pub static mut STATS_PATH: [u8; PATH_MAX] = [0; PATH_MAX];
pub const PATH_MAX: usize = 4096;

#[inline(always)]
pub fn chaos() -> bool {
    CHAOS_SEED.load(Relaxed) != 0
}

#[inline(always)]
pub fn debug() -> bool {
    DEBUG.load(Relaxed)
}

pub fn stats_on() -> bool {
    STATS.load(Relaxed) != STATS_OFF
}

#[inline(always)]
pub fn secure() -> bool {
    SECURE.load(Relaxed)
}

/// The variable's value. Only at load (`init_process`), before `main`:
/// nothing changes the environment then, and what is kept is copied.
fn getenv(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: a NUL-terminated name; nothing changes the environment now.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: getenv gives a NUL-terminated string of the environment,
        // which stays while we parse it at load.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// Stop the program: the variable's value is not one of `forms`.
fn reject(var: &str, value: &[u8], forms: &str) -> ! {
    use core::fmt::Write;
    let mut line = Line::new();
    let v = core::str::from_utf8(value).unwrap_or("(not UTF-8)");
    let _ = write!(line, "lwkt: {var}={v}: not understood; accepted: {forms}");
    line.emit();
    // SAFETY: _exit has no precondition (no exit handler of the program
    // runs: it has not started).
    unsafe { libc::_exit(2) }
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, d| n * 10 + (d - b'0') as u64))
}

pub fn init_process() {
    // The kernel's verdict, which ld.so and glibc's secure_getenv follow too.
    // SAFETY: getauxval only reads the auxiliary vector.
    if unsafe { libc::getauxval(libc::AT_SECURE) } != 0 {
        SECURE.store(true, Relaxed);
        return;
    }

    const STATS_FORMS: &str = "1 (report to stderr), a file path containing '/', json:PATH, or 0; \
                               in a path %p is the pid and %% a %";
    if let Some(v) = getenv(c"LWKT_STATS") {
        let (mode, path) = match v {
            b"" | b"0" => (STATS_OFF, &b""[..]),
            b"1" => (STATS_STDERR, &b""[..]),
            _ if v.starts_with(b"json:") && v.len() > 5 => (STATS_JSON, &v[5..]),
            _ if v.contains(&b'/') => (STATS_FILE, v),
            _ => reject("LWKT_STATS", v, STATS_FORMS),
        };
        if path.len() >= PATH_MAX - 1 || !percent_escapes_ok(path) {
            reject("LWKT_STATS", v, STATS_FORMS);
        }
        // SAFETY: written once, before any thread of ours reads it.
        let dst = unsafe { &mut *core::ptr::addr_of_mut!(STATS_PATH) };
        if mode == STATS_OFF || mode == STATS_STDERR || resolve(path, dst) {
            STATS.store(mode, Relaxed);
        }
    }

    const DEBUG_FORMS: &str = "1, 0, hold_ms=N, or a comma-separated list of them";
    if let Some(v) = getenv(c"LWKT_DEBUG") {
        for item in v.split(|&b| b == b',') {
            match item {
                b"" | b"0" => {}
                b"1" => DEBUG.store(true, Relaxed),
                _ if item.starts_with(b"hold_ms=") => match parse_u64(&item[8..]) {
                    Some(ms) if ms > 0 && ms <= u32::MAX as u64 => {
                        DEBUG.store(true, Relaxed);
                        HOLD_WARN_MS.store(ms as u32, Relaxed);
                    }
                    _ => reject("LWKT_DEBUG", v, DEBUG_FORMS),
                },
                _ => reject("LWKT_DEBUG", v, DEBUG_FORMS),
            }
        }
    }

    if let Some(v) = getenv(c"LWKT_CATCHALL") {
        match v {
            b"0" => CATCHALL_WANTED.store(false, Relaxed),
            b"" | b"1" => CATCHALL_WANTED.store(true, Relaxed),
            b"sud" => CATCHALL_PATCH.store(false, Relaxed),
            _ => reject(
                "LWKT_CATCHALL",
                v,
                "1 (on where the kernel allows: libc's system calls patched, \
                 Syscall User Dispatch for the rest), sud (Syscall User \
                 Dispatch only) or 0 (symbol hooks only)",
            ),
        }
    }

    if let Some(v) = getenv(c"LWKT_CHAOS") {
        match v {
            b"" | b"0" => {}
            _ => match parse_u64(v) {
                Some(seed) => CHAOS_SEED.store(seed, Relaxed),
                None => reject(
                    "LWKT_CHAOS",
                    v,
                    "a decimal seed (release and retake at every hook), or 0",
                ),
            },
        }
    }

    TIMING.store(stats_on() || DEBUG.load(Relaxed), Relaxed);
}

/// Every `%` in a report path starts `%p` or `%%`.
fn percent_escapes_ok(path: &[u8]) -> bool {
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'%' {
            if !matches!(path.get(i + 1), Some(b'p' | b'%')) {
                return false;
            }
            i += 1;
        }
        i += 1;
    }
    true
}

/// `path`, made absolute against the current directory now (the program
/// may change directory before it exits), into `dst`, NUL-terminated.
/// False, having said why, when that cannot be done.
fn resolve(path: &[u8], dst: &mut [u8; PATH_MAX]) -> bool {
    let mut len = 0;
    if path.first() != Some(&b'/') {
        // SAFETY: the kernel writes at most PATH_MAX bytes, dst's size.
        let r = unsafe { sys::syscall3(libc::SYS_getcwd, dst.as_mut_ptr() as usize, PATH_MAX, 0) };
        // Outside the process's root the kernel gives "(unreachable)/...".
        if r <= 0 || dst[0] != b'/' {
            let e = if r < 0 { -r as i32 } else { libc::ENOENT };
            line::warn(format_args!(
                "LWKT_STATS: the current directory is unknown ({}), so the relative path \
                 cannot be resolved; no report",
                ErrnoText(e)
            ));
            return false;
        }
        // The kernel's length counts the NUL.
        len = r as usize - 1;
        if dst[len - 1] != b'/' {
            dst[len] = b'/';
            len += 1;
        }
    }
    if len + path.len() >= PATH_MAX {
        line::warn(format_args!(
            "LWKT_STATS: the report path is longer than {} bytes once made absolute; no report",
            PATH_MAX - 1
        ));
        return false;
    }
    dst[len..len + path.len()].copy_from_slice(path);
    dst[len + path.len()] = 0;
    true
}

/// `LWKT_DEBUG`: say which mode is in force (after the catch-all tried to
/// install itself); `catchall_detail`, when given, says how (libc's sites
/// patched or not) instead of "Syscall User Dispatch".
pub fn announce(
    catchall_on: bool,
    why_off: &str,
    catchall_detail: Option<&dyn core::fmt::Display>,
) {
    use core::fmt::Write;
    if !DEBUG.load(Relaxed) {
        return;
    }
    let mut line = Line::new();
    let _ = write!(
        line,
        "lwkt: debug on (pid {}): blocking calls caught by ",
        sys::getpid()
    );
    let _ = if catchall_on {
        match catchall_detail {
            Some(d) => write!(line, "symbol hooks and the catch-all ({d})"),
            None => line.write_str("symbol hooks and the catch-all (Syscall User Dispatch)"),
        }
    } else {
        write!(line, "symbol hooks only ({why_off})")
    };
    if chaos() {
        let _ = line.write_str("; chaos on");
    }
    line.emit();
}
