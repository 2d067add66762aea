//! The catch-all's absence is said, once (SPEC section 4): a program whose
//! threads use tokens while the catch-all is unavailable (under valgrind,
//! or on a kernel without Syscall User Dispatch) gets one line on stderr,
//! because the blocking calls libc makes inside itself then keep its
//! tokens. Nothing is said when the catch-all works, nor when
//! `LWKT_CATCHALL=0` turned it off.
//!
//! c-tests/catchall_notice/threads.c (three threads, each using a token for
//! the first time) runs under valgrind when it is installed; without it,
//! and in any case, a seccomp filter that answers the Syscall User Dispatch
//! prctl with EINVAL, as a kernel without the feature does, makes the
//! catch-all unavailable.
//!
//! Also said, in `LWKT_DEBUG`'s announcement: how many of libc's
//! system-call sites the catch-all rewrote at load, and why it rewrote
//! none where it must not (a system refusing writable code; c-tests/catchall_notice/
//! late.c, the library dlopen()ed into a process already running threads).

mod common;

use common::{lib_dir, CC, MANIFEST_DIR};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const NOTICE: &str = "lwkt: warning: the catch-all is unavailable (";

/// threads.c, compiled and linked with -llwkt (once per test process).
fn program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let root = Path::new(MANIFEST_DIR);
        let src = root.join("c-tests/catchall_notice/threads.c");
        let dir = lib_dir().join("c-tests").join("catchall_notice");
        std::fs::create_dir_all(&dir).expect("create the program directory");
        let exe = dir.join("threads");
        let libdir = lib_dir();
        let mut cmd = Command::new(CC);
        cmd.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .arg("-I")
            .arg(root.join("include"))
            .arg(&src)
            .arg(format!("-L{}", libdir.display()))
            .arg("-llwkt")
            .arg(format!("-Wl,-rpath,{}", libdir.display()));
        common::build_to(&exe, cmd, &format!("compiling {}", src.display()));
        exe
    })
}

/// Run `argv` (the program's path first) with `env`, no `LWKT_` variable
/// inherited; it must succeed. Returns its stderr.
fn stderr_of(argv: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]).env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LWKT_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    let out = common::run_with_timeout(cmd, None, RUN_TIMEOUT);
    assert!(
        !out.timed_out && out.status.success() && out.stdout.contains("threads: done"),
        "{argv:?} {env:?}: {}",
        out.report(RUN_TIMEOUT)
    );
    out.stderr
}

fn notices(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with(NOTICE)).collect()
}

#[test]
fn unavailable_catchall_is_said_once() {
    let exe = program().to_str().unwrap();
    let err = stderr_of(&[exe, "--no-dispatch"], &[]);
    let said = notices(&err);
    assert_eq!(
        said.len(),
        1,
        "three threads used tokens with no catch-all: expected one notice, got:\n{err}"
    );
    assert!(
        said[0].contains("no Syscall User Dispatch") && said[0].contains("keeps its tokens"),
        "the notice should say why and what it means: {}",
        said[0]
    );
}

#[test]
fn catchall_turned_off_is_not_said() {
    let exe = program().to_str().unwrap();
    for argv in [&[exe][..], &[exe, "--no-dispatch"][..]] {
        let err = stderr_of(argv, &[("LWKT_CATCHALL", "0")]);
        assert!(notices(&err).is_empty(), "LWKT_CATCHALL=0 {argv:?}: {err}");
    }
}

#[test]
fn working_catchall_is_not_said() {
    let exe = program().to_str().unwrap();
    let err = stderr_of(&[exe], &[("LWKT_DEBUG", "1")]);
    if !err.contains("and the catch-all") {
        println!("skipped: this kernel has no Syscall User Dispatch ({err})");
        return;
    }
    assert!(notices(&err).is_empty(), "{err}");
}

#[test]
fn valgrind_is_said_once() {
    let found = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("skipped: valgrind is not installed (apt-get install valgrind)");
        return;
    }
    let exe = program().to_str().unwrap();
    let err = stderr_of(&["valgrind", "--tool=none", "-q", exe], &[]);
    let said = notices(&err);
    assert_eq!(
        said.len(),
        1,
        "under valgrind: expected one notice, got:\n{err}"
    );
    assert!(said[0].contains("valgrind"), "{}", said[0]);
    let err = stderr_of(
        &["valgrind", "--tool=none", "-q", exe],
        &[("LWKT_CATCHALL", "0")],
    );
    assert!(notices(&err).is_empty(), "valgrind, LWKT_CATCHALL=0: {err}");
}

/// LWKT_DEBUG's announcement, as the catch-all finishes it.
const PATCHED: &str = "the catch-all (libc's system-call sites patched: ";
const NOT_PATCHED: &str =
    "the catch-all (Syscall User Dispatch only; libc's system-call sites not patched: ";

/// The last `lwkt: debug on` line of `stderr` (the program's after it ran
/// itself again under a filter).
fn announcement(stderr: &str) -> &str {
    let line = stderr.lines().rfind(|l| l.starts_with("lwkt: debug on ("));
    line.unwrap_or_else(|| panic!("no announcement: {stderr}"))
}

#[test]
fn patched_sites_are_counted_under_debug() {
    let exe = program().to_str().unwrap();
    let err = stderr_of(&[exe], &[("LWKT_DEBUG", "1")]);
    let line = announcement(&err);
    assert!(
        line.contains(PATCHED)
            && line.contains(", refused: ")
            && line.ends_with("; Syscall User Dispatch for the rest)"),
        "the announcement should count the patched and refused sites: {line}"
    );
    let err = stderr_of(&[exe], &[("LWKT_DEBUG", "1"), ("LWKT_CATCHALL", "sud")]);
    assert!(
        announcement(&err).ends_with("the catch-all (Syscall User Dispatch)"),
        "LWKT_CATCHALL=sud: {err}"
    );
}

#[test]
fn writable_code_refused_falls_back_to_dispatch() {
    let exe = program().to_str().unwrap();
    let err = stderr_of(&[exe, "--no-writable-code"], &[("LWKT_DEBUG", "1")]);
    assert!(
        announcement(&err).contains(&format!("{NOT_PATCHED}libc's text cannot be made writable")),
        "under a W^X policy the catch-all should say it keeps to dispatch: {err}"
    );
    assert!(notices(&err).is_empty(), "{err}");
}

/// late.c, compiled without -llwkt.
fn late_program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let root = Path::new(MANIFEST_DIR);
        let src = root.join("c-tests/catchall_notice/late.c");
        let dir = lib_dir().join("c-tests").join("catchall_notice");
        std::fs::create_dir_all(&dir).expect("create the program directory");
        let exe = dir.join("late");
        let mut cmd = Command::new(CC);
        cmd.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .arg("-I")
            .arg(root.join("include"))
            .arg(&src)
            .arg("-ldl");
        common::build_to(&exe, cmd, &format!("compiling {}", src.display()));
        exe
    })
}

#[test]
fn dlopen_into_threaded_process_leaves_libc_alone() {
    let exe = late_program().to_str().unwrap();
    let lib = common::lib_path();
    let mut cmd = Command::new(exe);
    cmd.arg(&lib).env_remove("LD_PRELOAD");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LWKT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("LWKT_DEBUG", "1");
    let out = common::run_with_timeout(cmd, None, RUN_TIMEOUT);
    assert!(
        !out.timed_out && out.status.success() && out.stdout.contains("late: done"),
        "{}",
        out.report(RUN_TIMEOUT)
    );
    assert!(
        out.stderr.contains(&format!(
            "{NOT_PATCHED}the process already runs other threads"
        )),
        "the catch-all should say why it left libc alone: {}",
        out.stderr
    );
}
