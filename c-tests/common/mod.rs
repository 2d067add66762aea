//! Helpers shared by the integration-test drivers of `c-tests/` (each
//! includes this file with `mod common;`): where the freshly built
//! liblwkt.so is, building a program under a temporary name, and running a
//! child in its own process group with a deadline, capturing its output.
//!
//! Each driver uses only part of this, hence the `allow(dead_code)`.

#![allow(dead_code)]

pub mod json;

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The C compiler build.rs found.
pub const CC: &str = env!("LWKT_CTEST_CC");
pub const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The directory holding liblwkt.so for this test's profile
/// (target/<profile>/, the parent of the test's own deps/ directory).
///
/// Cargo does not build a cdylib-only library for integration tests, so a
/// plain `cargo test` would run against a stale liblwkt.so (or none). The
/// first caller therefore runs `cargo build --lib` for the same profile and
/// target directory (up to date: well under a second), unless
/// LWKT_TEST_NO_BUILD says the caller built it.
pub fn lib_dir() -> &'static Path {
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
        link_soname(&dir);
        dir
    })
}

/// The library's SONAME, which programs linked with -llwkt ask for.
pub const SONAME: &str = concat!("liblwkt.so.", env!("CARGO_PKG_VERSION_MAJOR"));

/// Give the library its SONAME in `dir` too (a symlink), so that programs
/// the tests link there find it at run time, as in an installed prefix.
fn link_soname(dir: &Path) {
    let link = dir.join(SONAME);
    if std::fs::read_link(&link).ok().as_deref() == Some(Path::new("liblwkt.so")) {
        return;
    }
    // Made under another name and renamed: concurrent test processes never
    // see a half-made link.
    let tmp = dir.join(format!("{SONAME}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink("liblwkt.so", &tmp).unwrap();
    std::fs::rename(&tmp, &link).unwrap();
}

/// target/<profile>/liblwkt.so (see `lib_dir`).
pub fn lib_path() -> PathBuf {
    lib_dir().join("liblwkt.so")
}

/// `cargo build --lib` into `profile_dir` (target/<profile>/).
fn build_library(profile_dir: &Path) {
    if std::env::var_os("LWKT_TEST_NO_BUILD").is_some() {
        return; // the caller built it (for example with other flags)
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

/// Run `cmd` (a compiler or linker, every argument but the output given)
/// with `-o` a temporary name next to `output`, and rename that to
/// `output` once complete: concurrent test threads or processes never run
/// a half-written file. Fails with `what` and the compiler's output.
pub fn build_to(output: &Path, mut cmd: Command, what: &str) {
    let tmp = output.with_extension(format!("tmp{}", std::process::id()));
    cmd.arg("-o").arg(&tmp);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, output).unwrap();
}

/// Make `cmd`'s child start with a core-file limit of 0 (no core files
/// from expected aborts).
pub fn no_core_files(cmd: &mut Command) {
    unsafe {
        cmd.pre_exec(|| {
            let zero = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &zero);
            Ok(())
        });
    }
}

/// What a child run by `run_with_timeout` did.
pub struct Captured {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// It was still running after the timeout and was killed.
    pub timed_out: bool,
}

impl Captured {
    /// How it ended (killed after `timeout`, killed by a signal, or its
    /// exit status), then its stdout and stderr.
    pub fn report(&self, timeout: Duration) -> String {
        let how = if self.timed_out {
            format!("KILLED after {timeout:?} (hung or deadlocked)")
        } else if let Some(sig) = self.status.signal() {
            format!("killed by signal {sig}")
        } else {
            format!("exit status {}", self.status.code().unwrap_or(-1))
        };
        format!(
            "{how}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.stdout, self.stderr
        )
    }
}

/// Start `cmd` in its own process group (whose id is the child's pid), with
/// `stdin` and stdout and stderr piped.
pub fn spawn_in_group(cmd: &mut Command, stdin: Stdio) -> Child {
    cmd.stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run `cmd` in its own process group, feeding it `stdin` (None: no
/// input), capturing stdout and stderr. After `timeout` the whole group is
/// killed (forked children too); so are leftover members of the group once
/// the child has exited (they would keep the pipes open).
pub fn run_with_timeout(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Captured {
    let stdin_cfg = if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = spawn_in_group(&mut cmd, stdin_cfg);
    let pid = child.id();
    let pgid = pid as libc::pid_t;
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
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
    let deadline = Instant::now() + timeout;
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
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Captured {
        pid,
        status,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
        timed_out,
    }
}

/// A child's run, named by the command that made it (for messages).
pub struct Outcome {
    pub what: String,
    pub run: Captured,
    /// The deadline it ran under (said in messages when it was killed).
    pub timeout: Duration,
}

/// `out.stdout`, `out.status` and the rest are those of the run.
impl std::ops::Deref for Outcome {
    type Target = Captured;
    fn deref(&self) -> &Captured {
        &self.run
    }
}

impl Outcome {
    /// The command, how it ended, and its output.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.what, self.run.report(self.timeout))
    }

    /// Its exit status, or None when it was killed after the deadline.
    pub fn code(&self) -> Option<i32> {
        if self.timed_out {
            None
        } else {
            self.status.code()
        }
    }

    /// It exited with status 0.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.code() == Some(0),
            "expected success: {}",
            self.describe()
        );
        self
    }
}

/// Keep the test's own `LD_PRELOAD` and `LWKT_` variables from `cmd`: each
/// test sets the ones it means.
pub fn without_inherited_lwkt(cmd: &mut Command) -> &mut Command {
    cmd.env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LWKT_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// Run `cmd` (named `what` in messages) in its own process group, without
/// core files, killed after `timeout`, capturing its output.
pub fn run_named(mut cmd: Command, what: String, timeout: Duration) -> Outcome {
    no_core_files(&mut cmd);
    let run = run_with_timeout(cmd, None, timeout);
    Outcome { what, run, timeout }
}
