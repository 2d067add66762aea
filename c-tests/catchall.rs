//! A Rust program under the shim (SPEC section 4): c-tests/catchall_rust/
//! main.rs, compiled here with a bare `rustc` (no crates) and run with
//! `LD_PRELOAD=liblwkt.so`. It gets the token functions through
//! `dlsym(RTLD_DEFAULT, ...)` (shim/mirror/lwkt_h.rs, which it includes
//! by path) and shows that `std::thread::sleep`,
//! `std::sync::Mutex::lock` and a raw `syscall` instruction (a futex wait)
//! each release the tokens of a thread blocked in them, and return holding
//! them again (see the program's own comment for how that is proved).
//!
//! Run again under `LWKT_CATCHALL=0`, std's calls still release (they go
//! through libc's exported `nanosleep` and `syscall`, which the symbol
//! hooks catch) and the raw syscall must keep the tokens.
//!
//! liblwkt.so is the one next to this test executable (target/<profile>/,
//! the parent of deps/), built first with `cargo build --lib` for the same
//! profile, as c-tests/run.rs does.

mod common;

use common::{lib_dir, lib_path, MANIFEST_DIR};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Longer than the program's own deadlines (20 s), so that its clearer
/// failure message wins.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// `rustc` from PATH, else $RUSTC.
fn rustc_command() -> Command {
    let on_path = Command::new("rustc")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return Command::new("rustc");
    }
    match std::env::var_os("RUSTC") {
        Some(r) => Command::new(r),
        None => panic!("no rustc on PATH and RUSTC is not set"),
    }
}

/// The program, compiled once per test process into
/// target/<profile>/c-tests/catchall_rust (written under a temporary name
/// and renamed: concurrent test processes never run a half-written file).
fn program() -> &'static Path {
    static PROG: OnceLock<PathBuf> = OnceLock::new();
    PROG.get_or_init(|| {
        let dir = lib_dir().join("c-tests");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/c-tests");
        let exe = dir.join("catchall_rust");
        let src = Path::new(MANIFEST_DIR).join("c-tests/catchall_rust/main.rs");
        let mut cmd = rustc_command();
        cmd.args(["--edition", "2021", "-O", "--crate-name", "catchall_rust"])
            .arg(&src);
        let what = format!("{cmd:?}");
        common::build_to(&exe, cmd, &what);
        exe
    })
}

type Outcome = common::Captured;

impl Outcome {
    fn describe(&self) -> String {
        let how = if self.timed_out {
            format!("KILLED after {RUN_TIMEOUT:?} (hung)")
        } else {
            format!("{}", self.status)
        };
        format!(
            "{how}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Run `cmd` in its own process group with a deadline, capturing output.
fn run(cmd: Command) -> Outcome {
    common::run_with_timeout(cmd, None, RUN_TIMEOUT)
}

/// The program, preloaded, with `catchall` as LWKT_CATCHALL (None: unset).
fn run_program(catchall: Option<&str>, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(program());
    cmd.args(args)
        .env("LD_PRELOAD", lib_path())
        .env_remove("LWKT_CATCHALL")
        .env_remove("LWKT_CHAOS");
    if let Some(v) = catchall {
        cmd.env("LWKT_CATCHALL", v);
    }
    run(cmd)
}

/// Does this kernel have Syscall User Dispatch? (Switching it off, in a
/// thread that never used it, succeeds exactly where it exists.)
fn kernel_has_sud() -> bool {
    std::thread::spawn(|| unsafe {
        libc::prctl(
            59,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        ) == 0
    })
    .join()
    .unwrap()
}

/// The Rust program in one of the catch-all's modes (None: the default,
/// libc's system calls patched; `sud`: Syscall User Dispatch only).
fn sleep_mutex_and_raw_syscall_release_tokens(catchall: Option<&str>) {
    if !kernel_has_sud() {
        println!("skipped: this kernel has no Syscall User Dispatch");
        return;
    }
    let out = run_program(catchall, &[]);
    assert!(
        !out.timed_out && out.status.success() && out.stdout.contains("catchall_rust: ok"),
        "the Rust program under the catch-all (LWKT_CATCHALL={catchall:?}) failed: {}",
        out.describe()
    );
    for part in [
        "std::thread::sleep released",
        "Mutex::lock released",
        "raw syscall futex wait released",
    ] {
        assert!(
            out.stdout.contains(part),
            "no {part:?} in: {}",
            out.describe()
        );
    }
}

#[test]
fn rust_sleep_mutex_and_raw_syscall_release_tokens() {
    sleep_mutex_and_raw_syscall_release_tokens(None);
}

#[test]
fn rust_sleep_mutex_and_raw_syscall_release_tokens_sud() {
    sleep_mutex_and_raw_syscall_release_tokens(Some("sud"));
}

#[test]
fn rust_under_lwkt_catchall_0_hooks_release_raw_syscall_keeps() {
    let out = run_program(Some("0"), &["--no-catchall"]);
    assert!(
        !out.timed_out && out.status.success() && out.stdout.contains("catchall_rust: ok"),
        "the Rust program under LWKT_CATCHALL=0 failed: {}",
        out.describe()
    );
    assert!(
        out.stdout.contains("raw syscall futex wait kept T"),
        "{}",
        out.describe()
    );
}

/// The checks prove something only with the library loaded: without the
/// preload, the program must say so (status 2), not pass.
#[test]
fn rust_program_needs_the_preload() {
    let mut cmd = Command::new(program());
    cmd.env_remove("LD_PRELOAD");
    let out = run(cmd);
    assert!(
        !out.timed_out && out.status.code() == Some(2),
        "without LD_PRELOAD the program should exit 2: {}",
        out.describe()
    );
}
