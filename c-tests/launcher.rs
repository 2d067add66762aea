//! The launcher `lwkt-run` (SPEC section 5): it runs a program with
//! liblwkt.so preloaded and exits with its status, explains itself with
//! --help, reports what is missing in one line, and with no arguments runs
//! the demonstration to the end.
//!
//! lwkt-run finds liblwkt.so next to itself, so the library must be built
//! in the same profile (cargo builds it with the binary).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

const LWKT_RUN: &str = env!("CARGO_BIN_EXE_lwkt-run");

struct Out {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run lwkt-run with `args`; kill it and fail if it takes over `limit`.
fn lwkt_run(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Out {
    let mut cmd = Command::new(LWKT_RUN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let c = common::run_with_timeout(cmd, None, limit);
    if c.timed_out {
        panic!("lwkt-run {args:?} did not finish within {limit:?}");
    }
    Out {
        status: c.status,
        stdout: c.stdout,
        stderr: c.stderr,
    }
}

fn quick(args: &[&str]) -> Out {
    lwkt_run(args, &[], Duration::from_secs(30))
}

/// lwkt-run needs liblwkt.so next to it; say so plainly when it is not.
fn require_library() {
    let lib = std::path::Path::new(LWKT_RUN).with_file_name("liblwkt.so");
    assert!(
        lib.is_file(),
        "{} is missing: build the library in this profile first",
        lib.display()
    );
}

#[test]
fn help_explains_usage_and_environment() {
    let o = quick(&["--help"]);
    assert!(o.status.success(), "{:?}", o.status);
    for word in [
        "Usage",
        "PROGRAM",
        "LD_PRELOAD",
        "LWKT_STATS",
        "LWKT_DEBUG",
        "LWKT_CATCHALL",
        "LWKT_CHAOS",
    ] {
        assert!(
            o.stdout.contains(word),
            "--help does not mention {word}:\n{}",
            o.stdout
        );
    }
    assert_eq!(o.stderr, "");
}

#[test]
fn runs_the_program_with_the_library_preloaded() {
    require_library();
    let o = quick(&["sh", "-c", "echo \"$LD_PRELOAD\""]);
    assert!(o.status.success(), "{:?} {}", o.status, o.stderr);
    let first = o.stdout.trim().split([':', ' ']).next().unwrap_or("");
    assert!(
        first.starts_with('/') && first.ends_with("/liblwkt.so"),
        "LD_PRELOAD: {:?}",
        o.stdout
    );
}

#[test]
fn keeps_an_existing_preload_after_the_library() {
    require_library();
    // The library itself stands in for another preloaded object.
    let lib = std::path::Path::new(LWKT_RUN).with_file_name("liblwkt.so");
    let lib = lib.canonicalize().unwrap();
    let other = lib.to_str().unwrap();
    let o = lwkt_run(
        &["sh", "-c", "echo \"$LD_PRELOAD\""],
        &[("LD_PRELOAD", other)],
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{:?} {}", o.status, o.stderr);
    assert_eq!(o.stdout.trim(), format!("{other}:{other}"));
}

#[test]
fn exits_with_the_program_status() {
    require_library();
    assert_eq!(quick(&["sh", "-c", "exit 7"]).status.code(), Some(7));
    assert_eq!(quick(&["true"]).status.code(), Some(0));
    let o = quick(&["sh", "-c", "kill -TERM $$"]);
    assert_eq!(o.status.signal(), Some(15), "{:?}", o.status);
}

#[test]
fn passes_arguments_verbatim() {
    require_library();
    // Options after PROGRAM, and after --, belong to the program.
    let o = quick(&["--", "printf", "%s|", "a b", "--help", "--", ""]);
    assert!(o.status.success(), "{:?} {}", o.status, o.stderr);
    assert_eq!(o.stdout, "a b|--help|--||");
}

#[test]
fn missing_program_is_one_line_and_127() {
    require_library();
    for prog in ["lwkt-no-such-program", "/nonexistent/lwkt-no-such-program"] {
        let o = quick(&[prog, "arg"]);
        assert_eq!(o.status.code(), Some(127), "{prog}: {:?}", o.status);
        assert_eq!(o.stderr.lines().count(), 1, "{prog}: {:?}", o.stderr);
        assert!(o.stderr.contains(prog), "{prog}: {:?}", o.stderr);
        assert_eq!(o.stdout, "");
    }
}

#[test]
fn missing_library_is_one_line_and_127() {
    let o = lwkt_run(
        &["true"],
        &[("LWKT_LIB", "/nonexistent/liblwkt.so")],
        Duration::from_secs(30),
    );
    assert_eq!(o.status.code(), Some(127), "{:?}", o.status);
    assert_eq!(o.stderr.lines().count(), 1, "{:?}", o.stderr);
    assert!(
        o.stderr.contains("/nonexistent/liblwkt.so"),
        "{:?}",
        o.stderr
    );
}

#[test]
fn unknown_option_is_a_usage_error() {
    let o = quick(&["--no-such-option", "true"]);
    assert_eq!(o.status.code(), Some(2), "{:?}", o.status);
    assert_eq!(o.stderr.lines().count(), 1, "{:?}", o.stderr);
    assert!(o.stderr.contains("--no-such-option"), "{:?}", o.stderr);
}

#[test]
fn demonstration_runs_to_the_end() {
    require_library();
    let o = lwkt_run(&[], &[], Duration::from_secs(120));
    let all = format!("{}\n{}", o.stdout, o.stderr);
    assert!(
        o.status.success(),
        "demonstration failed ({:?}):\n{all}",
        o.status
    );
    // The seed example, in the order the token semantics impose.
    let order = [
        "takes T2",
        "takes T1; iterates list1",
        "asks for T2",
        "takes T1 while A waits",
        "releases T2",
        "wakes holding T1 and T2",
        "T1 lost, T2 not lost",
        "refreshes its iterator, list1 = [10, 20, 40, 50, 60]",
    ];
    let mut at = 0;
    for step in order {
        match o.stdout[at..].find(step) {
            Some(i) => at += i + step.len(),
            None => panic!("the timeline lacks {step:?} (in this order):\n{all}"),
        }
    }
    // Every row of SPEC section 1's table, with its measured verdicts.
    for row in [
        "exclusion across timeslicing",
        "exclusion across concurrent",
        "exclusion across preemption",
        "exclusion across voluntary",
        "avoids deadlock",
        "avoids priority inversion",
    ] {
        assert!(o.stdout.contains(row), "the table lacks {row:?}:\n{all}");
    }
    assert!(o.stdout.contains("fails (by design)"), "{all}");
    assert!(o.stdout.contains("deadlocked"), "{all}");
    assert!(
        !o.stdout.contains("(!)"),
        "a cell differs from SPEC:\n{all}"
    );
}

#[test]
fn option_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"--stats=/tmp/\xff");
    let mut cmd = Command::new(LWKT_RUN);
    cmd.arg(bad).arg("true");
    let o = common::run_with_timeout(cmd, None, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(2), "{}", o.report(Duration::ZERO));
    assert_eq!(o.stderr.lines().count(), 1, "{:?}", o.stderr);
    assert!(
        o.stderr.contains("--stats=/tmp/\\xFF") && o.stderr.contains("not valid UTF-8"),
        "{:?}",
        o.stderr
    );
}

#[test]
fn empty_stats_destination_is_a_usage_error() {
    let o = quick(&["--stats=", "true"]);
    assert_eq!(o.status.code(), Some(2), "{:?} {}", o.status, o.stderr);
    assert_eq!(o.stderr.lines().count(), 1, "{:?}", o.stderr);
    assert!(o.stderr.contains("--stats="), "{:?}", o.stderr);
}

#[test]
fn version_names_the_launcher_and_the_library_it_finds() {
    require_library();
    let v = env!("CARGO_PKG_VERSION");
    let o = quick(&["--version"]);
    assert!(o.status.success(), "{:?} {}", o.status, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", o.stdout);
    assert_eq!(lines[0], format!("lwkt-run {v}"));
    assert!(
        lines[1].starts_with(&format!("liblwkt {v} (/")) && lines[1].ends_with("/liblwkt.so)"),
        "{:?}",
        lines[1]
    );
    // A bad LWKT_ value does not stop the library from answering.
    let o = lwkt_run(
        &["--version"],
        &[("LWKT_CHAOS", "not-a-seed")],
        Duration::from_secs(30),
    );
    assert!(
        o.stdout.contains(&format!("liblwkt {v} (")),
        "{:?}",
        o.stdout
    );
}

#[test]
fn version_without_a_library_still_names_the_launcher() {
    let o = lwkt_run(
        &["--version"],
        &[("LWKT_LIB", "/nonexistent/liblwkt.so")],
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{:?} {}", o.status, o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{:?}", o.stdout);
    assert_eq!(lines[0], format!("lwkt-run {}", env!("CARGO_PKG_VERSION")));
    assert!(
        lines[1].starts_with("liblwkt: ") && lines[1].contains("/nonexistent/liblwkt.so"),
        "{:?}",
        lines[1]
    );
}
