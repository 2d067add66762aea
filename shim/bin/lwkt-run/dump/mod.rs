//! `lwkt-run --dump PID` and `--top PID`: who holds and who waits for
//! each token of a running process, read from outside through the
//! library's registry (`lwkt_registry`, laid out as
//! shim/core/registry_abi.rs says), without stopping the process.

#[path = "../../../core/registry_abi.rs"]
#[allow(dead_code)] // the library's half of the layout
mod abi;
/// The library's own clock (shim/sys/time.rs): ages are measured on the
/// clock the target stamped its waits and blocks with.
#[path = "../../../sys/time.rs"]
mod clock;
pub mod render;
pub mod snapshot;
pub mod target;

use std::fmt;
use std::io::Write;

/// Why a process cannot be read; each says it in one line.
#[derive(Debug)]
pub enum Error {
    NoProcess(i32),
    NotPermitted(i32),
    /// (pid, program name)
    NoLibrary(i32, String),
    /// A liblwkt without the registry (pid, its path).
    OldLibrary(i32, String),
    /// (pid, the registry's layout version)
    Version(i32, u32),
    Exited(i32),
    Other(String),
}

/// Exit status of `--dump` and `--top` when the process cannot be read.
pub const FAILED: i32 = 1;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoProcess(pid) => write!(f, "no process {pid}"),
            Error::NotPermitted(pid) => {
                write!(f, "not permitted to read process {pid}: {}", permission_hint())
            }
            Error::NoLibrary(pid, comm) => write!(
                f,
                "process {pid} ({comm}) has no lwkt library loaded (no {} in its mapped files)",
                target::SYMBOL
            ),
            Error::OldLibrary(pid, path) => write!(
                f,
                "process {pid} uses {path}, a liblwkt too old to be read (it has no {})",
                target::SYMBOL
            ),
            Error::Version(pid, v) => write!(
                f,
                "process {pid}: its liblwkt's registry has layout version {v}, this lwkt-run reads version {}; use the lwkt-run of that library",
                abi::VERSION
            ),
            Error::Exited(pid) => write!(f, "process {pid} exited while being read"),
            Error::Other(s) => f.write_str(s),
        }
    }
}

/// Which setting refuses us, as precisely as this machine tells.
fn permission_hint() -> String {
    const YAMA: &str = "/proc/sys/kernel/yama/ptrace_scope";
    let scope = std::fs::read_to_string(YAMA)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match scope {
        Some(1) => format!(
            "{YAMA} is 1 (only a process's ancestors may read it): run lwkt-run as root or with CAP_SYS_PTRACE (sudo setcap cap_sys_ptrace+ep lwkt-run), or set it to 0"
        ),
        Some(2) => format!(
            "{YAMA} is 2 (only with CAP_SYS_PTRACE): run lwkt-run as root or with CAP_SYS_PTRACE"
        ),
        Some(3) => format!("{YAMA} is 3: no process may read another until reboot"),
        _ => "it belongs to another user, or is set-user-ID or not dumpable: run lwkt-run as that user, or with CAP_SYS_PTRACE".to_string(),
    }
}

/// `--dump PID [--json]`: print one snapshot; exit 1 with one line when
/// the process cannot be read.
pub fn dump(pid: i32, json: bool) -> Result<(), Error> {
    let t = target::Target::open(pid)?;
    let s = snapshot::read(&t)?;
    let out = if json {
        render::json(&s)
    } else {
        render::text(&s)
    };
    // Not print!: that panics when stdout is a closed pipe.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(())
}
