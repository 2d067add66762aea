//! Tokens as the checkers see them (README.md, "Using checkers"):
//!
//! - clang's thread-safety analysis: examples/guarded.c compiles with
//!   `-Wthread-safety -Werror`, and its twins that touch the guarded data
//!   without the token (or write it under a shared hold) do not;
//! - ThreadSanitizer, with gcc and with clang: the examples, core C tests
//!   and the programs of c-tests/checkers/ (one holds a token across a
//!   blocking `read()`) run without a report; their racy twins (built with
//!   `-DRACY`: one access outside the token, or a write under a shared
//!   hold) are reported in every run;
//! - Helgrind and DRD: the same, zero errors and errors.
//!
//! A checker that is not installed is a skip (said on stdout), and a
//! failure when `CI` is set (apt-get install clang libclang-rt-dev
//! valgrind).

mod common;

use common::{lib_dir, Outcome, CC, MANIFEST_DIR};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// A correct run takes seconds (under valgrind, up to ~10).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// Runs of each racy twin: it must be reported in every one.
const RACY_RUNS: usize = 5;

fn root() -> &'static Path {
    Path::new(MANIFEST_DIR)
}

/// Builds go to target/<profile>/checkers/.
fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = lib_dir().join("checkers");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/checkers");
        dir
    })
}

/// Is `tool` there (runs with `--version`)? If not: fail under CI,
/// otherwise say that `test` is skipped.
fn need(tool: &str, package: &str, test: &str) -> bool {
    let there = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if there {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {tool} is not installed, and CI is set (apt-get install {package})"
    );
    println!("{test}: SKIPPED: {tool} is not installed (apt-get install {package})");
    false
}

// ---------------------------------------------------------------------------
// The programs
// ---------------------------------------------------------------------------

/// A C program: its source under the repository root, and whether it is a
/// C test (linked with the harness's main and c-tests/include/).
struct Program {
    src: &'static str,
    harness: bool,
}

const fn example(src: &'static str) -> Program {
    Program {
        src,
        harness: false,
    }
}

const fn core_test(src: &'static str) -> Program {
    Program { src, harness: true }
}

/// The programs of c-tests/checkers/: correct as they are, racy with
/// `-DRACY`.
const TWINNED: [&str; 2] = [
    "c-tests/checkers/block_in_read.c",
    "c-tests/checkers/shared_readers.c",
];

/// Correct programs that ThreadSanitizer must not report on: the examples
/// (a token held across blocking reads and condition waits), core tests of
/// every token operation (recursion, shared holds, trytoken, swap, the
/// pool, contention in both orders, a thread exiting with a token, a
/// condition wait holding a token that others need), and the checkers'
/// own. Left out: the core tests of fork, cancellation and signal
/// handlers, which test the runtime's handling of those more than tokens
/// (TSan defers signals, and clang's runtime crashes on a cancelled
/// thread).
const TSAN_CORRECT: [Program; 14] = [
    example("examples/guarded.c"),
    example("examples/list_walk.c"),
    example("examples/cache_walk.c"),
    example("examples/producer_consumer.c"),
    core_test("c-tests/core/counter.c"),
    core_test("c-tests/core/abba.c"),
    core_test("c-tests/core/recursion.c"),
    core_test("c-tests/core/shared.c"),
    core_test("c-tests/core/trytoken.c"),
    core_test("c-tests/core/swap.c"),
    core_test("c-tests/core/pool.c"),
    core_test("c-tests/core/thread_exit.c"),
    core_test("c-tests/core/zero_token.c"),
    core_test("c-tests/core/mutex_condvar.c"),
];

/// Correct programs for Helgrind and DRD (each runs some 20 to 50 times
/// slower there: fewer, chosen to cover the same operations, condition
/// waits included).
const VALGRIND_CORRECT: [Program; 5] = [
    example("examples/guarded.c"),
    example("examples/list_walk.c"),
    example("examples/producer_consumer.c"),
    core_test("c-tests/core/abba.c"),
    core_test("c-tests/core/mutex_condvar.c"),
];

/// `program` built by `cc` with `flags` (and `-DRACY` when `racy`) into
/// target/<profile>/checkers/<tag>/; its path.
fn build(cc: &str, tag: &str, program: &Program, flags: &[&str], racy: bool) -> PathBuf {
    let src = root().join(program.src);
    let stem = Path::new(program.src)
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap();
    let dir = out_dir().join(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join(if racy {
        format!("{stem}_racy")
    } else {
        stem.to_string()
    });
    let libdir = lib_dir();
    let mut cmd = Command::new(cc);
    cmd.args(flags)
        .args(["-g", "-O1", "-std=gnu11", "-pthread"])
        .arg(format!("-I{}", root().join("include").display()));
    if racy {
        cmd.arg("-DRACY");
    }
    cmd.arg(&src);
    if program.harness {
        cmd.arg(format!("-I{}", root().join("c-tests/include").display()))
            .arg(root().join("c-tests/harness/main_linked.c"));
    }
    cmd.arg(format!("-L{}", libdir.display()))
        .arg("-llwkt")
        .arg(format!("-Wl,-rpath,{}", libdir.display()));
    common::build_to(&exe, cmd, &format!("{cc} {}", src.display()));
    exe
}

/// Run `argv` with the environment of a user's program (no inherited
/// LD_PRELOAD or LWKT_ variables) plus `env`.
fn run(argv: &[&Path], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    common::without_inherited_lwkt(&mut cmd);
    cmd.envs(env.iter().copied());
    let what = argv
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    common::run_named(cmd, what, RUN_TIMEOUT)
}

// ---------------------------------------------------------------------------
// Clang's thread-safety analysis
// ---------------------------------------------------------------------------

/// `clang -Wthread-safety -Werror -fsyntax-only` on `source` (as a file
/// named `name` in the build directory); its output when it fails.
fn analyse(name: &str, source: &str, extra: &[&str]) -> Result<(), String> {
    let dir = out_dir().join("analysis");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    let out = Command::new("clang")
        .args(["-Wthread-safety", "-Wthread-safety-beta", "-Werror"])
        .args(["-fsyntax-only", "-std=c11", "-pedantic", "-Wall", "-Wextra"])
        .args(extra)
        .arg(format!("-I{}", root().join("include").display()))
        .arg(&path)
        .output()
        .expect("run clang");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn guarded_source() -> String {
    std::fs::read_to_string(root().join("examples/guarded.c")).unwrap()
}

/// guarded.c with `from` (which must occur once) replaced by `to`.
fn guarded_twin(from: &str, to: &str) -> String {
    let text = guarded_source();
    assert_eq!(
        text.matches(from).count(),
        1,
        "examples/guarded.c no longer contains {from:?} once: update this test"
    );
    text.replace(from, to)
}

#[test]
fn clang_analysis_accepts_the_guarded_example() {
    let test = "clang_analysis_accepts_the_guarded_example";
    if !need("clang", "clang", test) {
        return;
    }
    for extra in [&[][..], &["-DNDEBUG"][..]] {
        if let Err(e) = analyse("guarded.c", &guarded_source(), extra) {
            panic!("clang -Wthread-safety {extra:?} rejects examples/guarded.c:\n{e}");
        }
    }
}

#[test]
fn clang_analysis_rejects_the_twins_outside_the_token() {
    let test = "clang_analysis_rejects_the_twins_outside_the_token";
    if !need("clang", "clang", test) {
        return;
    }
    let shared_read = "    lwkt_gettoken_shared(&totals_token);\n    seen = total;\n    lwkt_reltoken(&totals_token);";
    let twins = [
        (
            "twin_read.c",
            guarded_twin(shared_read, "    seen = total;"),
            "reading variable 'total' requires holding",
        ),
        (
            "twin_write_shared.c",
            guarded_twin(
                shared_read,
                "    lwkt_gettoken_shared(&totals_token);\n    seen = total;\n    total = 0;\n    lwkt_reltoken(&totals_token);",
            ),
            "writing variable 'total' requires holding",
        ),
        (
            "twin_call.c",
            guarded_twin(
                "        lwkt_gettoken(&totals_token);\n        deposit(1);\n        lwkt_reltoken(&totals_token);",
                "        deposit(1);",
            ),
            "calling function 'deposit' requires holding",
        ),
        (
            "twin_after_release.c",
            guarded_twin(
                "    ASSERT_LWKT_TOKEN_HELD_EXCL(&totals_token); /* held again on return */\n    *grew = total - before;\n    lwkt_reltoken(&totals_token);",
                "    lwkt_reltoken(&totals_token);\n    *grew = total - before;",
            ),
            "reading variable 'total' requires holding",
        ),
    ];
    for (name, source, expected) in twins {
        match analyse(name, &source, &[]) {
            Ok(()) => {
                panic!("clang -Wthread-safety accepts {name}, which touches data outside its token")
            }
            Err(e) => assert!(
                e.contains(expected),
                "clang rejects {name}, but not with {expected:?}:\n{e}"
            ),
        }
    }
}

// ---------------------------------------------------------------------------
// ThreadSanitizer
// ---------------------------------------------------------------------------

/// The C compilers to build TSan programs with: the tests' C compiler
/// (gcc, whose runtime is libtsan), and clang (its own runtime) when it
/// is installed.
fn tsan_compilers(test: &str) -> Vec<&'static str> {
    let mut ccs = vec![CC];
    if need("clang", "clang libclang-rt-dev", test) && !CC.ends_with("clang") {
        ccs.push("clang");
    }
    ccs
}

/// Reports go to stderr; a run with one exits 66.
const TSAN_ENV: [(&str, &str); 1] = [("TSAN_OPTIONS", "exitcode=66 halt_on_error=0")];

fn tag(cc: &str, what: &str) -> String {
    let name = Path::new(cc).file_name().unwrap().to_str().unwrap();
    format!("{what}-{name}")
}

#[test]
fn tsan_reports_nothing_on_correct_programs() {
    let test = "tsan_reports_nothing_on_correct_programs";
    for cc in tsan_compilers(test) {
        let twinned = TWINNED.iter().map(|&src| Program {
            src,
            harness: false,
        });
        for program in TSAN_CORRECT.into_iter().chain(twinned) {
            let exe = build(
                cc,
                &tag(cc, "tsan"),
                &program,
                &["-fsanitize=thread"],
                false,
            );
            let out = run(&[&exe], &TSAN_ENV);
            assert!(
                out.code() == Some(0) && !out.stderr.contains("WARNING: ThreadSanitizer"),
                "{cc}: a report (or a failure) on a correct program: {}",
                out.describe()
            );
        }
    }
}

#[test]
fn tsan_reports_every_racy_twin_every_time() {
    let test = "tsan_reports_every_racy_twin_every_time";
    for cc in tsan_compilers(test) {
        for src in TWINNED {
            let program = Program {
                src,
                harness: false,
            };
            let exe = build(cc, &tag(cc, "tsan"), &program, &["-fsanitize=thread"], true);
            let file = Path::new(src).file_name().unwrap().to_str().unwrap();
            for _ in 0..RACY_RUNS {
                let out = run(&[&exe], &TSAN_ENV);
                assert!(
                    out.code() == Some(66)
                        && out.stderr.contains("WARNING: ThreadSanitizer: data race")
                        && out.stderr.contains(file),
                    "{cc}: the race in {src} -DRACY went unreported: {}",
                    out.describe()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Helgrind and DRD
// ---------------------------------------------------------------------------

/// A valgrind tool, and what it says about a race.
#[derive(Clone, Copy)]
struct Tool {
    name: &'static str,
    race: &'static str,
}

const HELGRIND: Tool = Tool {
    name: "helgrind",
    race: "Possible data race",
};

const DRD: Tool = Tool {
    name: "drd",
    race: "Conflicting ",
};

/// `exe` under `tool`. (Each tool builds its programs in a folder of its
/// own: two tests building one file at once would clash.)
fn under(tool: Tool, exe: &Path) -> Outcome {
    let valgrind = Path::new("valgrind");
    let option = format!("--tool={}", tool.name);
    let code = Path::new("--error-exitcode=99");
    run(&[valgrind, Path::new(&option), code, exe], &[])
}

fn valgrind_reports_nothing_on_correct_programs(tool: Tool, test: &str) {
    if !need("valgrind", "valgrind", test) {
        return;
    }
    let twinned = TWINNED.iter().map(|&src| Program {
        src,
        harness: false,
    });
    for program in VALGRIND_CORRECT.into_iter().chain(twinned) {
        let exe = build(CC, tool.name, &program, &[], false);
        let out = under(tool, &exe);
        assert!(
            out.code() == Some(0) && out.stderr.contains("ERROR SUMMARY: 0 errors"),
            "{}: reports on (or fails) a correct program: {}",
            tool.name,
            out.describe()
        );
    }
}

fn valgrind_reports_every_racy_twin(tool: Tool, test: &str, runs: usize) {
    if !need("valgrind", "valgrind", test) {
        return;
    }
    for src in TWINNED {
        let program = Program {
            src,
            harness: false,
        };
        let exe = build(CC, tool.name, &program, &[], true);
        let file = Path::new(src).file_name().unwrap().to_str().unwrap();
        for _ in 0..runs {
            let out = under(tool, &exe);
            assert!(
                out.code() == Some(99)
                    && out.stderr.contains(tool.race)
                    && out.stderr.contains(file),
                "{} does not report the race in {src} -DRACY: {}",
                tool.name,
                out.describe()
            );
        }
    }
}

#[test]
fn helgrind_reports_nothing_on_correct_programs() {
    let test = "helgrind_reports_nothing_on_correct_programs";
    valgrind_reports_nothing_on_correct_programs(HELGRIND, test);
}

#[test]
fn helgrind_reports_every_racy_twin() {
    valgrind_reports_every_racy_twin(HELGRIND, "helgrind_reports_every_racy_twin", 2);
}

/// DRD runs the program with its own preload, whose `pthread_create`
/// waits on a condition variable through unversioned references (glibc's
/// old condition variable): the library's hooks of both versions must
/// keep each to its own (hooks/cond_versions.c).
#[test]
fn drd_reports_nothing_on_correct_programs() {
    let test = "drd_reports_nothing_on_correct_programs";
    valgrind_reports_nothing_on_correct_programs(DRD, test);
}

#[test]
fn drd_reports_every_racy_twin() {
    valgrind_reports_every_racy_twin(DRD, "drd_reports_every_racy_twin", RACY_RUNS);
}
