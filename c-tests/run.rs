//! Runs the C tests of `c-tests/` and real programs under the shim.
//!
//! The C tests are grouped by folder, and the folder decides how a test
//! passes (the `c_tests!` list below names every file with its folder's
//! rule; `every_c_file_has_a_test` fails when a file is missing from it):
//!
//! * `Rule::Exits0`: the test exits with status 0.
//! * `Rule::Aborts` (`misuse/`): the test must be killed by SIGABRT, with
//!   every `// expect-stderr: TEXT` line of its source found in its stderr.
//!
//! Each test runs two ways:
//!
//! * `<folder>::<name>::linked`: the test and `harness/main_linked.c`,
//!   linked with `-llwkt` and an rpath to the freshly built library;
//! * `<folder>::<name>::plugin`: the test as a shared object that
//!   `harness/plugin_host.c` (which does not link lwkt) dlopen()s while
//!   `LD_PRELOAD=liblwkt.so`.
//!
//! A test compiles its own C file when it runs (test threads run in
//! parallel), into target/<profile>/c-tests/obj/, and compiles again only
//! when the source or a header is newer than the object. Every run is
//! killed (and fails) after `RUN_TIMEOUT`: a deadlock fails the test
//! instead of hanging `cargo test`.

mod common;

use common::{lib_dir, lib_path, CC, MANIFEST_DIR};
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

/// Longer than any deadline inside a test (check.h: waits of 20 s, whole-test
/// watchdogs of 40 s), so that a test's own, clearer failure message wins.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

/// The C++ compiler build.rs found (for the header check).
const CXX: &str = env!("LWKT_CTEST_CXX");

// ---------------------------------------------------------------------------
// The tests, by folder
// ---------------------------------------------------------------------------

/// How a test of a folder passes (see the top of this file).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Rule {
    Exits0,
    Aborts,
}

/// One C test: `c-tests/<folder>/<name>.c`.
struct CTest {
    folder: &'static str,
    name: &'static str,
    rule: Rule,
}

/// One module per folder, one per test inside it, with a test for each way
/// of running it; and `LISTED`, every folder with its tests.
macro_rules! c_tests {
    ($($(#[doc = $doc:literal])* $folder:ident ($rule:ident): $($name:ident)*;)*) => {
        $(
            $(#[doc = $doc])*
            mod $folder {
                $(
                    mod $name {
                        const TEST: crate::CTest = crate::CTest {
                            folder: stringify!($folder),
                            name: stringify!($name),
                            rule: crate::Rule::$rule,
                        };
                        #[test]
                        fn linked() {
                            crate::run_c_test(&TEST, crate::Way::Linked);
                        }
                        #[test]
                        fn plugin() {
                            crate::run_c_test(&TEST, crate::Way::Plugin);
                        }
                    }
                )*
            }
        )*
        /// Every folder of C tests, its rule and its tests.
        const LISTED: &[(&str, Rule, &[&str])] =
            &[$((stringify!($folder), Rule::$rule, &[$(stringify!($name)),*])),*];
    };
}

c_tests! {
    /// The token itself (SPEC section 2): exclusion, recursion, order,
    /// fairness, fork and thread exit, the pool, the version.
    core (Exits0):
        abba cancel counter fairness fork mutex_condvar pool recursion seed
        shared signal signal_handler_stress swap thread_exit trytoken
        vanished_shared version zero_token;
    /// Release on block through the exported symbols (SPEC section 4), one
    /// file per family of calls (table-driven: include/hook_util.h).
    hooks (Exits0):
        cond_versions fdio filelock fortify futex glibc_functions iov ipc poll
        pthread sem signal sleep socket wait;
    /// The catch-all: the blocking calls libc makes inside itself (SPEC
    /// section 4) and the program's own signals (SPEC section 7).
    catchall (Exits0):
        cancel fallback first_use_signal iov libc modes patched process rawclone
        seccomp signals sigsys_aside sigsys_install sigsys_same wait_masks;
    /// Robustness: cancellation, EINTR, exec, fork, garbage and NULL
    /// tokens (each case in a child that must abort), thousands of threads,
    /// SIGSTOP.
    faults (Exits0):
        cancel eintr exec fork garbage many null sigstop;
    /// S10: each misuse aborts with one line naming it.
    misuse (Aborts):
        assert_held assert_held_excl assert_no_tokens excl_on_shared
        null_token pool_rel_wrong rel_none rel_not_top rel_other_thread
        shared_after_uninit swap_one_ref too_many_refs
        trytoken_excl_on_shared uninit_held uninit_other
        uninit_other_blocked uninit_other_shared unreadable_desc
        use_after_uninit;
    /// Randomized operations on many tokens, checked against a model.
    stress (Exits0):
        random;
    /// Reproducers of bugs once found, bounded to a few seconds.
    regress (Exits0):
        handoff_race;
}

/// The folders of c-tests/ that hold something other than tests for this
/// driver (headers, the harness, other drivers' programs).
const NOT_TEST_FOLDERS: &[&str] = &[
    "include",
    "harness",
    "common",
    "observe",
    "server",
    "install",
    "catchall_notice",
    "catchall_rust",
    "dump",
    "checkers",
];

/// The `// expect-stderr: TEXT` lines of `src`.
fn expected_stderr(src: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("// expect-stderr:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Every C file in c-tests/ has its test, in the folder it is in, and its
/// `// expect-stderr:` lines mean what they say: a file that the list
/// lacks would never run, and an expectation outside `misuse/` would be
/// silently ignored.
#[test]
fn every_c_file_has_a_test() {
    let tests_dir = Path::new(MANIFEST_DIR).join("c-tests");
    let mut wrong = Vec::new();
    let mut found: Vec<(String, String)> = Vec::new();
    for entry in std::fs::read_dir(&tests_dir).unwrap().flatten() {
        let path = entry.path();
        let file = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if NOT_TEST_FOLDERS.contains(&file.as_str()) {
                continue;
            }
            if !LISTED.iter().any(|(f, _, _)| *f == file) {
                wrong.push(format!(
                    "c-tests/{file}/ is not a folder of c-tests/run.rs: add it to `c_tests!` \
                     with its rule (or to NOT_TEST_FOLDERS)"
                ));
                continue;
            }
            for e in std::fs::read_dir(&path).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                match name.strip_suffix(".c") {
                    Some(stem) => found.push((file.clone(), stem.to_string())),
                    None => wrong.push(format!(
                        "c-tests/{file}/{name}: only C tests (.c) go in a test folder"
                    )),
                }
            }
        } else if file.ends_with(".c") || file.ends_with(".h") {
            wrong.push(format!(
                "c-tests/{file}: a C test goes in the folder of its rule, a header in c-tests/include/"
            ));
        }
    }
    for (folder, stem) in &found {
        let listed = LISTED
            .iter()
            .any(|(f, _, names)| f == folder && names.contains(&stem.as_str()));
        if !listed {
            wrong.push(format!(
                "c-tests/{folder}/{stem}.c has no test: add `{stem}` to the `{folder}` line \
                 of `c_tests!` in c-tests/run.rs"
            ));
        }
    }
    for (folder, rule, names) in LISTED {
        for name in *names {
            let src = tests_dir.join(folder).join(format!("{name}.c"));
            if !found.iter().any(|(f, s)| f == folder && s == name) {
                wrong.push(format!(
                    "c-tests/run.rs lists {folder}::{name}, but {} is missing",
                    src.display()
                ));
                continue;
            }
            let expects = !expected_stderr(&src).is_empty();
            if *rule == Rule::Aborts && !expects {
                wrong.push(format!(
                    "c-tests/{folder}/{name}.c has no `// expect-stderr: TEXT` line"
                ));
            }
            if *rule != Rule::Aborts && expects {
                wrong.push(format!(
                    "c-tests/{folder}/{name}.c has `// expect-stderr:` lines, which only a test \
                     that must abort checks (c-tests/misuse/)"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// Compiling
// ---------------------------------------------------------------------------

/// Test programs, plugins and objects go here (target/<profile>/c-tests/).
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = lib_dir().join("c-tests");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/c-tests");
        dir
    })
}

#[derive(Clone, Copy)]
enum Lang {
    C,
    Cxx,
}

/// The flags of every C and C++ compile: warnings are errors, the header
/// and the shared test headers on the include path, position-independent
/// (a test is also a plugin), optimised like the profile's Rust code.
fn compile_flags(lang: Lang) -> Vec<String> {
    let root = Path::new(MANIFEST_DIR);
    let release = lib_dir().file_name().is_some_and(|p| p != "debug");
    let mut flags: Vec<String> = vec![
        "-Wall".into(),
        "-Wextra".into(),
        "-Werror".into(),
        "-pthread".into(),
        "-fPIC".into(),
        "-g".into(),
        if release { "-O2" } else { "-O0" }.into(),
        format!("-I{}", root.join("include").display()),
        format!("-I{}", root.join("c-tests/include").display()),
    ];
    if let Lang::C = lang {
        flags.push("-std=c11".into());
    }
    flags
}

/// The newest modification time of the headers a test may include
/// (include/ and c-tests/include/), read once per test process.
fn newest_header() -> SystemTime {
    static NEWEST: OnceLock<SystemTime> = OnceLock::new();
    *NEWEST.get_or_init(|| {
        let root = Path::new(MANIFEST_DIR);
        [root.join("include"), root.join("c-tests/include")]
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
            .filter(|e| e.path().extension().is_some_and(|x| x == "h"))
            .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH)
    })
}

/// One lock per object file, so that the two ways of a test (two test
/// threads) compile it once between them.
fn object_lock(obj: &Path) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    locks.entry(obj.to_path_buf()).or_default().clone()
}

/// `c-tests/<src>` compiled as `lang` (with `extra` flags before it) to
/// target/<profile>/c-tests/obj/<out>.o, unless that is newer than the
/// source and every header. Fails the test with the compiler's output.
fn object(src: &str, out: &str, lang: Lang, extra: &[&str]) -> PathBuf {
    let src = Path::new(MANIFEST_DIR).join("c-tests").join(src);
    let obj = bin_dir().join("obj").join(format!("{out}.o"));
    let lock = object_lock(&obj);
    // A poisoned lock: the other way's compile failed; try again, and fail
    // the same way with the same output.
    let _compiling = lock.lock().unwrap_or_else(|e| e.into_inner());
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified());
    let src_time = mtime(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    if let Ok(t) = mtime(&obj) {
        if t > src_time && t > newest_header() {
            return obj;
        }
    }
    std::fs::create_dir_all(obj.parent().unwrap()).unwrap();
    let mut cmd = Command::new(match lang {
        Lang::C => CC,
        Lang::Cxx => CXX,
    });
    cmd.args(compile_flags(lang))
        .args(extra)
        .arg("-c")
        .arg(&src);
    common::build_to(&obj, cmd, &format!("compiling {}", src.display()));
    obj
}

// ---------------------------------------------------------------------------
// Linking
// ---------------------------------------------------------------------------

/// Run the C compiler as a linker; write to a temporary name and rename, so
/// that concurrent test threads (or processes) never run a half-written file.
fn link(output: &Path, args: &[&std::ffi::OsStr]) {
    std::fs::create_dir_all(output.parent().unwrap()).unwrap();
    let mut cmd = Command::new(CC);
    cmd.args(args).arg("-pthread");
    common::build_to(output, cmd, &format!("linking {}", output.display()));
}

/// `obj` linked into the program `<path>` with -llwkt.
fn link_program(path: &str, obj: &Path) -> PathBuf {
    let exe = bin_dir().join(path);
    let main = object("harness/main_linked.c", "harness/main_linked", Lang::C, &[]);
    let libdir = lib_dir();
    let rpath = format!("-Wl,-rpath,{}", libdir.display());
    let ldir = format!("-L{}", libdir.display());
    link(
        &exe,
        &[
            obj.as_os_str(),
            main.as_os_str(),
            ldir.as_ref(),
            "-llwkt".as_ref(),
            rpath.as_ref(),
        ],
    );
    exe
}

/// `obj` as the plugin `<path>.so`: lwkt symbols stay undefined, to be
/// resolved from the preloaded library when plugin_host dlopen()s it.
fn link_plugin(path: &str, obj: &Path) -> PathBuf {
    let so = bin_dir().join(format!("{path}.so"));
    link(&so, &["-shared".as_ref(), obj.as_os_str()]);
    so
}

/// plugin_host, linked once per test process, without lwkt.
fn plugin_host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let exe = bin_dir().join("harness/plugin_host");
        let obj = object("harness/plugin_host.c", "harness/plugin_host", Lang::C, &[]);
        link(&exe, &[obj.as_os_str(), "-ldl".as_ref()]);
        exe
    })
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

type Outcome = common::Captured;

impl Outcome {
    fn describe(&self) -> String {
        self.report(RUN_TIMEOUT)
    }
}

/// Run `cmd` in its own process group with a deadline, capturing output.
/// On timeout the whole group is killed (a test's forked children too).
fn run(mut cmd: Command, stdin: Option<Vec<u8>>) -> Outcome {
    // No core files from the misuse tests' aborts.
    common::no_core_files(&mut cmd);
    common::run_with_timeout(cmd, stdin, RUN_TIMEOUT)
}

#[derive(Clone, Copy, Debug)]
enum Way {
    Linked,
    Plugin,
}

/// Compile, link and run one C test one way, and judge it. The catch-all's
/// tests run in both of its modes: libc's system calls patched (the
/// default) and Syscall User Dispatch only (`LWKT_CATCHALL=sud`).
fn run_c_test(test: &CTest, way: Way) {
    let src = format!("{}/{}.c", test.folder, test.name);
    let path = format!("{}/{}", test.folder, test.name);
    let obj = object(&src, &path, Lang::C, &[]);
    run_object(&path, &obj, way, test.rule, None);
    if test.folder == "catchall" {
        run_object(&path, &obj, way, test.rule, Some("sud"));
    }
}

/// Link `obj` (a test's object) into `<path>` one way, run and judge it;
/// with `catchall`, under that `LWKT_CATCHALL`.
fn run_object(path: &str, obj: &Path, way: Way, rule: Rule, catchall: Option<&str>) {
    let mut cmd = match way {
        Way::Linked => Command::new(link_program(path, obj)),
        Way::Plugin => {
            let so = link_plugin(&format!("{path}_plugin"), obj);
            let mut c = Command::new(plugin_host());
            c.arg(so).env("LD_PRELOAD", lib_path());
            c
        }
    };
    if let Some(mode) = catchall {
        cmd.env("LWKT_CATCHALL", mode);
    }
    let out = run(cmd, None);
    let ctx = match catchall {
        Some(mode) => format!("{path} ({way:?}, LWKT_CATCHALL={mode})"),
        None => format!("{path} ({way:?})"),
    };
    match rule {
        Rule::Exits0 => assert!(
            !out.timed_out && out.status.code() == Some(0),
            "{ctx} failed: {}",
            out.describe()
        ),
        Rule::Aborts => {
            let src = Path::new(MANIFEST_DIR).join(format!("c-tests/{path}.c"));
            let patterns = expected_stderr(&src);
            assert!(
                !patterns.is_empty(),
                "{} has no `// expect-stderr: TEXT` line",
                src.display()
            );
            assert!(
                !out.timed_out && out.status.signal() == Some(libc::SIGABRT),
                "{ctx}: expected to abort (SIGABRT), but: {}",
                out.describe()
            );
            for p in &patterns {
                assert!(
                    out.stderr.contains(p.as_str()),
                    "{ctx}: stderr lacks {p:?}: {}",
                    out.describe()
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The header
// ---------------------------------------------------------------------------

/// The committed include/lwkt.h is what cbindgen makes of the sources now
/// (build.rs writes that to OUT_DIR). With `LWKT_BLESS=1` it refreshes
/// include/lwkt.h instead of failing.
#[test]
fn header_is_fresh() {
    let fresh_path = env!("LWKT_FRESH_HEADER");
    let fresh = std::fs::read_to_string(fresh_path).expect("build.rs wrote a fresh header");
    let committed_path = Path::new(MANIFEST_DIR).join("include/lwkt.h");
    if std::env::var_os("LWKT_BLESS").is_some_and(|v| v == "1") {
        let tmp = committed_path.with_extension(format!("h.tmp{}", std::process::id()));
        std::fs::write(&tmp, &fresh).unwrap();
        std::fs::rename(&tmp, &committed_path).unwrap();
        println!("header_is_fresh: wrote {}", committed_path.display());
        return;
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    if committed == fresh {
        return;
    }
    let line = committed
        .lines()
        .zip(fresh.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(fresh.lines().count()))
        + 1;
    panic!(
        "include/lwkt.h differs from the header cbindgen makes of shim/ now (from line \
         {line}: committed {:?}, generated {:?}).\nRefresh it, look at the difference and \
         commit it:\n    LWKT_BLESS=1 cargo test --test c_tests header_is_fresh\n    git diff \
         include/lwkt.h\n(the generated header is {fresh_path})",
        committed.lines().nth(line - 1).unwrap_or("<end of file>"),
        fresh.lines().nth(line - 1).unwrap_or("<end of file>"),
    );
}

/// The header compiles as C and as C++ with every macro used
/// (harness/header_check.cc), and the C++ program runs: both ways, like any
/// C test.
#[test]
fn header_check_c_compiles() {
    object(
        "harness/header_check.cc",
        "harness/header_check_c",
        Lang::C,
        &["-x", "c"],
    );
}

fn header_check_cxx(way: Way) {
    let path = "harness/header_check_cxx";
    let obj = object("harness/header_check.cc", path, Lang::Cxx, &[]);
    run_object(path, &obj, way, Rule::Exits0, None);
}

#[test]
fn header_check_cxx_linked() {
    header_check_cxx(Way::Linked);
}

#[test]
fn header_check_cxx_plugin() {
    header_check_cxx(Way::Plugin);
}

// ---------------------------------------------------------------------------
// SIGSYS stays the program's (SPEC section 7): the same program, linked
// without the library, prints the same with and without it preloaded.
// ---------------------------------------------------------------------------

/// c-tests/catchall/sigsys_same.c linked without -llwkt (it finds the
/// token functions with dlsym, when they are there).
fn sigsys_same_plain_program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = bin_dir().join("catchall/sigsys_same_plain");
        let obj = object(
            "catchall/sigsys_same.c",
            "catchall/sigsys_same",
            Lang::C,
            &[],
        );
        let main = object("harness/main_linked.c", "harness/main_linked", Lang::C, &[]);
        link(&exe, &[obj.as_os_str(), main.as_os_str(), "-ldl".as_ref()]);
        exe
    })
}

fn sigsys_same_run(preload: bool, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut c = Command::new(sigsys_same_plain_program());
    c.args(args)
        .env_remove("LD_PRELOAD")
        .envs(env.iter().copied());
    if preload {
        c.env("LD_PRELOAD", lib_path());
    } else {
        c.env("CA_SAME_PLAIN", "1");
    }
    run(c, None)
}

/// Every SIGSYS case, every way (no token, after one, holding one): the
/// plain run and the preloaded run print the same, line for line, and
/// both pass their own checks.
#[test]
fn catchall_sigsys_same_with_and_without_library() {
    let plain = sigsys_same_run(false, &[], &[]);
    assert!(
        !plain.timed_out && plain.status.code() == Some(0),
        "without the library: {}",
        plain.describe()
    );
    let shimmed = sigsys_same_run(true, &[], &[]);
    assert!(
        !shimmed.timed_out && shimmed.status.code() == Some(0),
        "with the library: {}",
        shimmed.describe()
    );
    let (p, s): (Vec<&str>, Vec<&str>) = (
        plain.stdout.lines().collect(),
        shimmed.stdout.lines().collect(),
    );
    assert!(p.len() > 40, "too little output: {}", plain.describe());
    for (a, b) in p.iter().zip(&s) {
        assert_eq!(a, b, "first difference (without / with the library)");
    }
    assert_eq!(p.len(), s.len(), "different number of lines");
}

/// `LWKT_DEBUG` says once that the catch-all steps aside in a thread that
/// blocks SIGSYS (the case blocks it twice); a thread that never took a
/// token hears nothing of it.
#[test]
fn catchall_sigsys_steps_aside_said_once() {
    let debug = [("LWKT_DEBUG", "1")];
    let out = sigsys_same_run(true, &["sigwait", "after"], &debug);
    assert!(out.status.code() == Some(0), "{}", out.describe());
    let said = out
        .stderr
        .lines()
        .filter(|l| l.contains("steps aside"))
        .count();
    assert_eq!(said, 1, "{}", out.describe());
    let out = sigsys_same_run(true, &["sigwait", "none"], &debug);
    assert!(out.status.code() == Some(0), "{}", out.describe());
    assert!(!out.stderr.contains("steps aside"), "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Real programs that use no token: same output with and without the shim.
// ---------------------------------------------------------------------------

/// Is `prog` on PATH? A missing program skips its test, with a note.
fn have(prog: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("skipped: {prog} is not installed");
    }
    found
}

/// Run `argv` without and with LD_PRELOAD=liblwkt.so; both must succeed
/// with identical stdout and stderr.
fn same_with_and_without_shim(argv: &[&str], stdin: Option<Vec<u8>>) -> String {
    let make = |preload: bool| {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..])
            .env("LC_ALL", "C")
            .env_remove("LD_PRELOAD");
        if preload {
            c.env("LD_PRELOAD", lib_path());
        }
        c
    };
    let plain = run(make(false), stdin.clone());
    assert!(
        !plain.timed_out && plain.status.success(),
        "{argv:?} without the shim: {}",
        plain.describe()
    );
    let shimmed = run(make(true), stdin);
    assert!(
        !shimmed.timed_out && shimmed.status.success(),
        "{argv:?} with the shim: {}",
        shimmed.describe()
    );
    assert!(
        shimmed.stdout == plain.stdout,
        "{argv:?}: stdout differs under the shim"
    );
    assert!(
        shimmed.stderr == plain.stderr,
        "{argv:?}: stderr differs under the shim:\n--- without ---\n{}--- with ---\n{}",
        plain.stderr,
        shimmed.stderr
    );
    assert!(
        !plain.stdout.is_empty(),
        "{argv:?} printed nothing: the comparison proves nothing"
    );
    plain.stdout
}

/// The comparisons above prove something only if the preload takes effect.
#[test]
fn preload_takes_effect() {
    let mut c = Command::new("cat");
    c.arg("/proc/self/maps").env("LD_PRELOAD", lib_path());
    let out = run(c, None);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stdout.contains("liblwkt.so"),
        "liblwkt.so is not mapped in a preloaded process"
    );
}

const PYTHON_THREADS_AND_SOCKETS: &str = r#"
import queue, socket, threading

# A socketpair echo server in a thread.
a, b = socket.socketpair()
def echo():
    while True:
        data = b.recv(65536)
        if not data:
            break
        b.sendall(data.upper())
    b.close()
threading.Thread(target=echo).start()

# A loopback TCP server in a thread, one connection, length-prefixed replies.
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.bind(("127.0.0.1", 0))
srv.listen(1)
def serve():
    conn, _ = srv.accept()
    with conn:
        buf = b""
        while True:
            chunk = conn.recv(4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                conn.sendall(b"%d\n" % sum(map(int, line.split())))
server = threading.Thread(target=serve)
server.start()

# Producers and consumers around a queue.
q = queue.Queue(maxsize=16)
results = []
lock = threading.Lock()
def produce(i):
    for j in range(500):
        q.put((i, j))
def consume():
    while True:
        item = q.get()
        if item is None:
            return
        with lock:
            results.append(item[0] * 1000 + item[1])
producers = [threading.Thread(target=produce, args=(i,)) for i in range(4)]
consumers = [threading.Thread(target=consume) for _ in range(3)]
for t in producers + consumers:
    t.start()

echoed = []
for n in range(200):
    msg = ("message %d " % n).encode() * 50
    a.sendall(msg)
    got = b""
    while len(got) < len(msg):
        got += a.recv(len(msg) - len(got))
    echoed.append(got == msg.upper())
a.close()

c = socket.create_connection(srv.getsockname())
sums = []
f = c.makefile("rb")
for n in range(300):
    c.sendall((" ".join(str(k) for k in range(n)) + "\n").encode())
    sums.append(int(f.readline()))
f.close()  # the makefile() reference keeps the socket open otherwise
c.close()
server.join()

for t in producers:
    t.join()
for _ in consumers:
    q.put(None)
for t in consumers:
    t.join()
print("echo", all(echoed), len(echoed))
print("sums", sums[:5], sums[-1], sum(sums))
print("queue", len(results), sum(results), sorted(results) == sorted(i * 1000 + j for i in range(4) for j in range(500)))
"#;

#[test]
fn real_python_threads_sockets_queue() {
    if !have("python3") {
        return;
    }
    let out = same_with_and_without_shim(&["python3", "-c", PYTHON_THREADS_AND_SOCKETS], None);
    assert!(out.contains("echo True 200"), "unexpected output: {out}");
    assert!(out.contains("queue 2000"), "unexpected output: {out}");
}

#[test]
fn real_sh_pipeline() {
    for p in ["sh", "seq", "sort", "head", "tail", "tr", "wc"] {
        if !have(p) {
            return;
        }
    }
    let script = "seq 1 200000 | sort -rn | head -n 3; \
                  seq 1 50000 | tr 0-9 a-j | sort | tail -n 2; \
                  (echo one; echo two; echo three) | wc -l; \
                  x=$(seq 1 1000 | wc -l); echo \"subshell $x\"; \
                  for i in 1 2 3; do echo \"loop $i\" & wait; done";
    let out = same_with_and_without_shim(&["sh", "-c", script], None);
    assert!(
        out.starts_with("200000\n199999\n199998\n"),
        "unexpected output: {out}"
    );
}

/// A few MB of pseudo-random lines (deterministic), in the build directory.
fn big_unsorted_file() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path = bin_dir().join("sort-input.txt");
        let mut text = String::with_capacity(5 << 20);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        while text.len() < 4 << 20 {
            // xorshift64: no dependency, same data every run.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            text.push_str(&format!("{:016x} {}\n", x, x % 100_000));
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    })
}

#[test]
fn real_sort_large_file() {
    if !have("sort") {
        return;
    }
    let file = big_unsorted_file();
    let f = file.to_str().unwrap();
    // Small buffer and two threads: sort spills to temporary files and
    // merges in parallel (threads, mutexes, condition variables, I/O).
    let out = same_with_and_without_shim(&["sort", "--parallel=2", "-S", "1M", f], None);
    assert!(out.len() > 4 << 20, "sort output is too short");
    let out = same_with_and_without_shim(&["sort", "-k2,2n", "-s", f], None);
    assert!(out.len() > 4 << 20, "sort output is too short");
}

#[test]
fn real_sort_from_stdin() {
    if !have("sort") {
        return;
    }
    let data = std::fs::read(big_unsorted_file()).unwrap();
    let out = same_with_and_without_shim(&["sort", "-r"], Some(data));
    assert!(out.len() > 4 << 20, "sort output is too short");
}
