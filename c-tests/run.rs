//! Runs the C tests of `c-tests/` and real programs under the shim.
//!
//! build.rs compiled every `c-tests/<name>.c` to an object (see the end of
//! build.rs) and generated one `c_test!(name)` per file; each becomes two
//! tests here:
//!
//! * `<name>::linked`: the object and `harness/main_linked.c`, linked with
//!   `-llwkt` and an rpath to the freshly built library;
//! * `<name>::plugin`: the object as a shared object that `plugin_host`
//!   (which does not link lwkt) dlopen()s while `LD_PRELOAD=liblwkt.so`.
//!
//! A test passes when it exits with status 0. Tests named `misuse_*` must
//! instead be killed by SIGABRT, with every `// expect-stderr: TEXT` line of
//! their source found in their stderr. Every run is killed (and fails) after
//! `RUN_TIMEOUT`: a deadlock fails the test instead of hanging `cargo test`.

mod common;

use common::{lib_dir, lib_path, CC, MANIFEST_DIR};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Longer than any deadline inside a test (check.h: waits of 20 s, whole-test
/// watchdogs of 40 s), so that a test's own, clearer failure message wins.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

const OBJ_DIR: &str = env!("LWKT_CTEST_OBJ_DIR");

// ---------------------------------------------------------------------------
// Where things are (lib_dir, lib_path: c-tests/common/mod.rs)
// ---------------------------------------------------------------------------

/// Linked test programs and plugins go here (target/<profile>/c-tests/).
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = lib_dir().join("c-tests");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/c-tests");
        dir
    })
}

/// The object build.rs made of `name`, or a failure with its compiler
/// output when it did not compile.
fn object(name: &str) -> PathBuf {
    let err = Path::new(OBJ_DIR).join(format!("{name}.err"));
    if let Ok(text) = std::fs::read_to_string(&err) {
        panic!("{name} did not compile:\n{text}");
    }
    let obj = Path::new(OBJ_DIR).join(format!("{name}.o"));
    assert!(
        obj.is_file(),
        "{} is missing: rebuild (cargo build --tests)",
        obj.display()
    );
    obj
}

// ---------------------------------------------------------------------------
// Linking
// ---------------------------------------------------------------------------

/// Run the C compiler as a linker; write to a temporary name and rename, so
/// that concurrent test threads (or processes) never run a half-written file.
fn link(output: &Path, args: &[&std::ffi::OsStr]) {
    let mut cmd = Command::new(CC);
    cmd.args(args).arg("-pthread");
    common::build_to(output, cmd, &format!("linking {}", output.display()));
}

/// `<name>` linked into a program with -llwkt.
fn link_program(name: &str, obj: &Path) -> PathBuf {
    let exe = bin_dir().join(name);
    let main = object("harness_main_linked");
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

/// `<name>` as a plugin: lwkt symbols stay undefined, to be resolved from
/// the preloaded library when plugin_host dlopen()s it.
fn link_plugin(name: &str, obj: &Path) -> PathBuf {
    let so = bin_dir().join(format!("{name}.so"));
    link(&so, &["-shared".as_ref(), obj.as_os_str()]);
    so
}

/// plugin_host, linked once per test process, without lwkt.
fn plugin_host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let exe = bin_dir().join("plugin_host");
        let obj = object("harness_plugin_host");
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

/// The `// expect-stderr: TEXT` lines of c-tests/<name>.c.
fn expected_stderr(name: &str) -> Vec<String> {
    let src = Path::new(MANIFEST_DIR)
        .join("c-tests")
        .join(format!("{name}.c"));
    let text = std::fs::read_to_string(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    text.lines()
        .filter_map(|l| l.trim_start().strip_prefix("// expect-stderr:"))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[derive(Clone, Copy, Debug)]
enum Way {
    Linked,
    Plugin,
}

/// Build and run one C test one way, and judge it.
fn run_c_test(name: &str, way: Way) {
    let obj = object(name);
    let cmd = match way {
        Way::Linked => Command::new(link_program(name, &obj)),
        Way::Plugin => {
            let so = link_plugin(&format!("{name}_plugin"), &obj);
            let mut c = Command::new(plugin_host());
            c.arg(so).env("LD_PRELOAD", lib_path());
            c
        }
    };
    let out = run(cmd, None);
    judge(name, way, &out);
}

fn judge(name: &str, way: Way, out: &Outcome) {
    let ctx = format!("{name} ({way:?})");
    if name.starts_with("misuse_") {
        let patterns = expected_stderr(name);
        assert!(
            !patterns.is_empty(),
            "{name}.c has no `// expect-stderr: TEXT` line"
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
    } else {
        assert!(
            !out.timed_out && out.status.code() == Some(0),
            "{ctx} failed: {}",
            out.describe()
        );
    }
}

/// One module per C test, with a test for each way of running it.
macro_rules! c_test {
    ($name:ident) => {
        mod $name {
            #[test]
            fn linked() {
                super::run_c_test(stringify!($name), super::Way::Linked);
            }
            #[test]
            fn plugin() {
                super::run_c_test(stringify!($name), super::Way::Plugin);
            }
        }
    };
}

include!(env!("LWKT_CTEST_LIST"));

// ---------------------------------------------------------------------------
// The header
// ---------------------------------------------------------------------------

/// The committed include/lwkt.h is what cbindgen makes of the sources now.
/// (build.rs rewrites the working copy, so compare with git's HEAD.)
#[test]
fn header_is_fresh() {
    let fresh = std::fs::read(env!("LWKT_FRESH_HEADER")).expect("build.rs wrote a fresh header");
    let committed = Command::new("git")
        .args(["show", "HEAD:include/lwkt.h"])
        .current_dir(MANIFEST_DIR)
        .output();
    let committed = match committed {
        Ok(o) if o.status.success() => o.stdout,
        _ => {
            println!(
                "header_is_fresh: skipped (not a git checkout, or no committed include/lwkt.h)"
            );
            return;
        }
    };
    assert!(
        committed == fresh,
        "include/lwkt.h as committed differs from the header generated from shim/ \
         (cargo build regenerated it: commit include/lwkt.h)"
    );
}

/// The header compiles as C and as C++ with every macro used (build.rs),
/// and the C++ program runs: both ways, like any C test.
#[test]
fn header_check_c_compiles() {
    object("header_check_c");
}

#[test]
fn header_check_cxx_linked() {
    run_c_test("header_check_cxx", Way::Linked);
}

#[test]
fn header_check_cxx_plugin() {
    run_c_test("header_check_cxx", Way::Plugin);
}

// ---------------------------------------------------------------------------
// SIGSYS stays the program's (SPEC section 7): the same program, linked
// without the library, prints the same with and without it preloaded.
// ---------------------------------------------------------------------------

/// c-tests/catchall_sigsys_same.c linked without -llwkt (it finds the
/// token functions with dlsym, when they are there).
fn sigsys_same_plain_program() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let exe = bin_dir().join("catchall_sigsys_same_plain");
        let obj = object("catchall_sigsys_same");
        let main = object("harness_main_linked");
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
