//! A Rust program under the shim (issue 4, item 5): c-tests/catchall_rust/
//! main.rs, compiled here with a bare `rustc` (no crates) and run with
//! `LD_PRELOAD=liblwkt.so`. It gets the token functions through
//! `dlsym(RTLD_DEFAULT, ...)` and shows that `std::thread::sleep`,
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

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// Longer than the program's own deadlines (20 s), so that its clearer
/// failure message wins.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// target/<profile>/, with a fresh liblwkt.so in it.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("current_exe");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/..")
            .to_path_buf();
        build_library(&dir);
        assert!(
            dir.join("liblwkt.so").is_file(),
            "{} has no liblwkt.so after cargo build --lib",
            dir.display()
        );
        dir
    })
}

/// `cargo build --lib` into `profile_dir` (cargo does not build a
/// cdylib-only library for integration tests). LWKT_TEST_NO_BUILD skips it.
fn build_library(profile_dir: &Path) {
    if std::env::var_os("LWKT_TEST_NO_BUILD").is_some() {
        return;
    }
    let profile = profile_dir.file_name().unwrap().to_str().unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--lib", "--quiet"])
        .current_dir(MANIFEST_DIR)
        .env("CARGO_TARGET_DIR", target_dir);
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

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
        let tmp = dir.join(format!("catchall_rust.tmp{}", std::process::id()));
        let src = Path::new(MANIFEST_DIR).join("c-tests/catchall_rust/main.rs");
        let mut cmd = rustc_command();
        cmd.args(["--edition", "2021", "-O", "--crate-name", "catchall_rust"])
            .arg(&src)
            .arg("-o")
            .arg(&tmp);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::rename(&tmp, &exe).unwrap();
        exe
    })
}

struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

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
fn run(mut cmd: Command) -> Outcome {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pgid = child.id() as libc::pid_t;
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let mut timed_out = false;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            timed_out = true;
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Outcome {
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
        timed_out,
    }
}

/// The program, preloaded, with `catchall` as LWKT_CATCHALL (None: unset).
fn run_program(catchall: Option<&str>, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(program());
    cmd.args(args)
        .env("LD_PRELOAD", lib_dir().join("liblwkt.so"))
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

#[test]
fn rust_sleep_mutex_and_raw_syscall_release_tokens() {
    if !kernel_has_sud() {
        println!("skipped: this kernel has no Syscall User Dispatch");
        return;
    }
    let out = run_program(None, &[]);
    assert!(
        !out.timed_out && out.status.success() && out.stdout.contains("catchall_rust: ok"),
        "the Rust program under the catch-all failed: {}",
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
