//! The token-using key-value server under load (S1, S2, S4).
//!
//! `c-tests/server/kvserver.c` protects its tables with tokens held across
//! blocking socket I/O and re-validates after every call that may block;
//! `c-tests/server/loadgen.c` drives it with 8 client threads on loopback
//! and checks the final state exactly (see both files). Each test here
//! builds them against include/ and the freshly built liblwkt.so, runs the
//! server and the load generator, and requires:
//!
//! * the load generator's checks: every reply, then DUMP and CHECKSUM equal
//!   to the state that the operations it completed must leave (no lost
//!   update, no torn, duplicated, missing or extra record);
//! * the server's own check: its journal accounts for every version of
//!   every key stored, and ends with the value stored;
//! * both exit by themselves, status 0, with no lwkt warning.
//!
//! Plain, under `LWKT_CHAOS` (tokens given away at every hooked call), and
//! with the server not linked to lwkt but preloaded. And the test can fail:
//! the same server built without its re-validation (-DKV_NO_REVALIDATE)
//! must be caught under `LWKT_CHAOS`.
//!
//! Every process runs in its own process group and is killed (and the test
//! fails) after `PROC_TIMEOUT`; nothing is left running.

mod common;

use common::{lib_dir, lib_path, CC, MANIFEST_DIR};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Any process of a run that is still there after this is killed.
const PROC_TIMEOUT: Duration = Duration::from_secs(60);

/// The load: clients, operations per client, and the load generator's own
/// time bound in seconds (it then checks what it completed).
const CLIENTS: &str = "8";
const OPS: &str = "600";
const LOAD_SECONDS: &str = "20";
/// The server's own bounded lifetime (seconds), below `PROC_TIMEOUT`.
const SERVER_LIFETIME: &str = "50";

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// Compile (and link) with the project's C flags; write to a temporary
/// name and rename, so that nobody runs a half-written file.
fn cc(output: &Path, args: &[&str]) {
    let src = Path::new(MANIFEST_DIR).join("c-tests/server");
    let include = format!("-I{}/include", MANIFEST_DIR);
    let mut cmd = Command::new(CC);
    cmd.current_dir(&src)
        .args([
            "-std=c11",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pthread",
            "-D_GNU_SOURCE",
            "-g",
        ])
        .arg(&include)
        .args(args);
    let what = format!("{cmd:?}");
    common::build_to(output, cmd, &what);
}

struct Programs {
    /// kvserver linked with -llwkt.
    server: PathBuf,
    /// The same, built without its re-validation (-DKV_NO_REVALIDATE).
    server_unvalidated: PathBuf,
    /// kvhost + libkvserver_plugin.so: kvserver not linked to lwkt.
    host: PathBuf,
    loadgen: PathBuf,
}

fn programs() -> &'static Programs {
    static P: OnceLock<Programs> = OnceLock::new();
    P.get_or_init(|| {
        let libdir = lib_dir();
        let dir = libdir.join("server-test");
        std::fs::create_dir_all(&dir).unwrap();
        let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
        let ldir = format!("-L{}", libdir.display());
        let rpath = format!("-Wl,-rpath,{}", libdir.display());
        let linked = ["kvserver.c", &ldir, "-llwkt", &rpath];
        cc(Path::new(&p("kvserver")), &linked);
        cc(
            Path::new(&p("kvserver_unvalidated")),
            &[&["-DKV_NO_REVALIDATE"][..], &linked[..]].concat(),
        );
        // The plugin leaves lwkt_* undefined (a shared object may); the host
        // links it, not lwkt, and so needs liblwkt.so preloaded.
        let plugin = p("libkvserver_plugin.so");
        cc(
            Path::new(&plugin),
            &["-DKV_PLUGIN", "-fPIC", "-shared", "kvserver.c"],
        );
        let host_rpath = format!("-Wl,-rpath,{}", dir.display());
        cc(
            Path::new(&p("kvhost")),
            &[
                "kvhost.c",
                &plugin,
                "-Wl,--allow-shlib-undefined",
                &host_rpath,
            ],
        );
        cc(Path::new(&p("loadgen")), &["loadgen.c"]);
        Programs {
            server: p("kvserver").into(),
            server_unvalidated: p("kvserver_unvalidated").into(),
            host: p("kvhost").into(),
            loadgen: p("loadgen").into(),
        }
    })
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// A process in its own group, killed with its group when dropped.
struct Proc {
    child: Child,
    status: Option<ExitStatus>,
    stdout: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    fn spawn(mut cmd: Command) -> Proc {
        let mut child = common::spawn_in_group(&mut cmd, Stdio::null());
        let out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Proc {
            child,
            status: None,
            stdout: rx,
            stderr: Some(stderr),
        }
    }

    /// The next stdout line, waiting until `deadline`.
    fn line(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.stdout.recv_timeout(left).ok()
    }

    /// Wait for the exit until `deadline`, then kill the group. Returns the
    /// status (None: it had to be killed), the rest of stdout, and stderr.
    fn finish(&mut self, deadline: Instant) -> (Option<ExitStatus>, String, String) {
        let status = loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                break Some(st);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.kill();
        self.status = status;
        let mut out = String::new();
        while let Ok(l) = self.stdout.recv_timeout(Duration::from_secs(5)) {
            out.push_str(&l);
            out.push('\n');
        }
        let err = self.stderr.take().unwrap().join().unwrap();
        (status, out, err)
    }

    fn kill(&mut self) {
        // The group: any thread or child of it goes too.
        unsafe { libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

fn describe(what: &str, status: Option<ExitStatus>) -> String {
    match status {
        None => format!("{what}: KILLED after {PROC_TIMEOUT:?} (hung or deadlocked)"),
        Some(st) => match st.signal() {
            Some(sig) => format!("{what}: killed by signal {sig}"),
            None => format!("{what}: exit status {}", st.code().unwrap()),
        },
    }
}

/// What one run of the server under load gave.
struct RunResult {
    server_status: Option<ExitStatus>,
    server_out: String,
    server_err: String,
    load_status: Option<ExitStatus>,
    load_out: String,
    load_err: String,
}

impl RunResult {
    fn report(&self) -> String {
        format!(
            "{}\n--- server stdout ---\n{}--- server stderr ---\n{}\n{}\n\
             --- loadgen stdout ---\n{}--- loadgen stderr ---\n{}",
            describe("kvserver", self.server_status),
            self.server_out,
            self.server_err,
            describe("loadgen", self.load_status),
            self.load_out,
            self.load_err
        )
    }

    fn ok(st: Option<ExitStatus>) -> bool {
        st.is_some_and(|s| s.code() == Some(0))
    }

    /// The server's summary line (`kvserver: connections=...`).
    fn summary(&self) -> &str {
        self.server_out
            .lines()
            .find(|l| l.starts_with("kvserver: "))
            .unwrap_or("")
    }

    /// A counter of the server's summary line.
    fn counter(&self, name: &str) -> Option<u64> {
        self.summary()
            .split(' ')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
    }
}

/// Start `server` (with `env`), run the load generator against it, let it
/// shut the server down, and collect both outcomes.
fn run_under_load(server: &Path, env: &[(&str, String)]) -> RunResult {
    let start = Instant::now();
    let deadline = start + PROC_TIMEOUT;
    let mut cmd = Command::new(server);
    cmd.arg(SERVER_LIFETIME);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut srv = Proc::spawn(cmd);

    // "PORT <n>": where it listens, on 127.0.0.1.
    let port = srv
        .line(deadline)
        .and_then(|l| l.strip_prefix("PORT ")?.trim().parse::<u16>().ok());
    let Some(port) = port else {
        let (server_status, server_out, server_err) = srv.finish(Instant::now());
        return RunResult {
            server_status,
            server_out,
            server_err: format!("{server_err}\n(no PORT line from the server)"),
            load_status: None,
            load_out: String::new(),
            load_err: "(not started)".into(),
        };
    };

    let mut lg = Command::new(&programs().loadgen);
    lg.args([&port.to_string(), CLIENTS, OPS, LOAD_SECONDS, "--shutdown"]);
    let mut load = Proc::spawn(lg);
    let (load_status, load_out, load_err) = load.finish(deadline);
    // Whatever the load generator did, the server stops by itself (it was
    // sent SHUTDOWN) or is killed at the deadline.
    let (server_status, server_out, server_err) = srv.finish(deadline);
    RunResult {
        server_status,
        server_out,
        server_err,
        load_status,
        load_out,
        load_err,
    }
}

/// A run that must pass every check.
fn expect_clean_run(server: &Path, env: &[(&str, String)]) -> RunResult {
    let r = run_under_load(server, env);
    assert!(
        RunResult::ok(r.load_status) && r.load_out.contains("loadgen: ok"),
        "the load generator's checks failed (env {env:?}):\n{}",
        r.report()
    );
    assert!(
        RunResult::ok(r.server_status) && r.summary().contains("journal=consistent"),
        "the server failed or its journal check did (env {env:?}):\n{}",
        r.report()
    );
    assert!(
        !r.server_err.contains("lwkt:"),
        "the library complained (env {env:?}):\n{}",
        r.report()
    );
    println!("{}\n{}", r.summary(), r.load_out.trim_end());
    r
}

fn chaos(seed: u64) -> (&'static str, String) {
    ("LWKT_CHAOS", seed.to_string())
}

fn preload() -> (&'static str, String) {
    ("LD_PRELOAD", lib_path().to_str().unwrap().to_string())
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[test]
fn linked() {
    expect_clean_run(&programs().server, &[]);
}

/// Every hooked call gives the tokens away: the stores must find out, by
/// lwkt_token_lost_since, and re-validate (which they did, many times).
#[test]
fn linked_chaos() {
    let r = expect_clean_run(&programs().server, &[chaos(1)]);
    assert!(
        r.counter("revalidations").is_some_and(|n| n > 0),
        "under LWKT_CHAOS no store ever found its bucket token lost: \
         chaos did not reach the server's hooked calls\n{}",
        r.report()
    );
}

#[test]
fn preloaded() {
    expect_clean_run(&programs().host, &[preload()]);
}

#[test]
fn preloaded_chaos() {
    let r = expect_clean_run(&programs().host, &[preload(), chaos(2)]);
    assert!(
        r.counter("revalidations").is_some_and(|n| n > 0),
        "under LWKT_CHAOS no store ever found its bucket token lost\n{}",
        r.report()
    );
}

/// The preloaded server really does not link lwkt: without the preload its
/// lwkt_* calls have nothing to bind to.
#[test]
fn preloaded_server_needs_the_preload() {
    let mut cmd = Command::new(&programs().host);
    cmd.arg("1");
    let mut p = Proc::spawn(cmd);
    let (status, out, err) = p.finish(Instant::now() + PROC_TIMEOUT);
    assert!(
        status.is_some_and(|s| s.code() == Some(127)) && err.contains("undefined symbol: lwkt_"),
        "kvhost without LD_PRELOAD should fail to bind lwkt_*:\n{}\n{out}{err}",
        describe("kvhost", status)
    );
}

/// The checks can fail: the server without its re-validation loses
/// updates under LWKT_CHAOS, and the run must say so. (Chaos makes the
/// loss all but certain; three runs make a false pass vanishingly rare.)
#[test]
fn without_revalidation_chaos_is_caught() {
    let mut reports = Vec::new();
    for seed in 1..=3 {
        let r = run_under_load(&programs().server_unvalidated, &[chaos(seed)]);
        // Whatever it found, nothing may hang: both must have exited.
        assert!(
            r.load_status.is_some() && r.server_status.is_some(),
            "a run hung:\n{}",
            r.report()
        );
        let caught = !RunResult::ok(r.load_status)
            || !RunResult::ok(r.server_status)
            || r.summary().contains("MISMATCH");
        if caught {
            assert!(
                r.load_err.contains("FAIL") || r.server_err.contains("MISMATCH"),
                "the run failed, but not by a check:\n{}",
                r.report()
            );
            println!("caught with LWKT_CHAOS={seed}:\n{}", r.load_err.trim_end());
            return;
        }
        reports.push(r.report());
    }
    panic!(
        "three runs of the server without re-validation under LWKT_CHAOS \
         passed every check: the tests cannot see a lost update\n{}",
        reports.join("\n")
    );
}
