//! `lwkt-run --dump PID` and `--top PID`: a running program's tokens read
//! from outside through the library's registry. The C programs of
//! c-tests/dump/ are the targets, started without any LWKT_ variable:
//! `parked.c` parks threads in known states (holding exclusively and
//! shared, waiting, blocked in read() with its token released), which
//! every form of the dump must show; `churn.c` changes under its reader
//! and exits while being read; `fake_registry.c` exports a registry of a
//! layout version nobody knows. `--top` runs on a pseudo-terminal.

mod common;

use common::json::Json;
use common::{lib_dir, lib_path, CC, MANIFEST_DIR};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const LWKT_RUN: &str = env!("CARGO_BIN_EXE_lwkt-run");
/// How long a state may take to be reached, or a program to end.
const DEADLINE: Duration = Duration::from_secs(20);

fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = lib_dir().join("c-tests").join("dump");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/c-tests/dump");
        dir
    })
}

/// How a program of c-tests/dump/ is built.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Build {
    /// Linked with -llwkt.
    Linked,
    /// A plugin (its main renamed) for harness/plugin_host.c, which gets
    /// the library by LD_PRELOAD.
    Plugin,
    /// Without the library, its symbols exported (-rdynamic).
    Alone,
}

/// c-tests/dump/<name>.c built as `how` (once per test process).
fn program(name: &str, how: Build) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, Build), PathBuf>>> = OnceLock::new();
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(&(name.to_string(), how)) {
        return p.clone();
    }
    let root = Path::new(MANIFEST_DIR);
    let libdir = lib_dir();
    let src = root.join("c-tests/dump").join(format!("{name}.c"));
    let mut cmd = Command::new(CC);
    cmd.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg("-I")
        .arg(root.join("include"))
        .arg(&src);
    let out = match how {
        Build::Linked => {
            cmd.arg(format!("-L{}", libdir.display()))
                .arg("-llwkt")
                .arg(format!("-Wl,-rpath,{}", libdir.display()));
            bin_dir().join(name)
        }
        Build::Plugin => {
            cmd.args(["-shared", "-fPIC", "-Dmain=lwkt_test_main"]);
            bin_dir().join(format!("{name}.so"))
        }
        Build::Alone => {
            cmd.arg("-rdynamic");
            bin_dir().join(name)
        }
    };
    common::build_to(&out, cmd, &format!("compiling {}", src.display()));
    built.insert((name.to_string(), how), out.clone());
    out
}

fn plugin_host() -> PathBuf {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let src = Path::new(MANIFEST_DIR).join("c-tests/harness/plugin_host.c");
        let exe = bin_dir().join("plugin_host");
        let mut cmd = Command::new(CC);
        cmd.arg(&src).arg("-ldl");
        common::build_to(&exe, cmd, "compiling plugin_host.c");
        exe
    })
    .clone()
}

/// The command that starts `name` built as `how` (library preloaded for
/// a plugin), with no LWKT_ variable.
fn target_command(name: &str, how: Build, args: &[&str]) -> Command {
    let mut cmd = match how {
        Build::Plugin => {
            let mut c = Command::new(plugin_host());
            c.arg(program(name, how)).env("LD_PRELOAD", lib_path());
            c
        }
        _ => Command::new(program(name, how)),
    };
    common::without_inherited_lwkt(&mut cmd);
    if how == Build::Plugin {
        cmd.env("LD_PRELOAD", lib_path());
    }
    cmd.args(args);
    cmd
}

/// A target process: started, its "ready" line read; killed if the test
/// ends without finishing it.
struct Target {
    child: Child,
    stdin: Option<ChildStdin>,
    pid: i32,
}

impl Target {
    fn start(mut cmd: Command) -> Target {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        common::no_core_files(&mut cmd);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let pid = child.id() as i32;
        let stdin = child.stdin.take();
        let mut t = Target { child, stdin, pid };
        match rx.recv_timeout(DEADLINE) {
            Ok(Some(Ok(l))) if l.starts_with("ready") => t,
            other => {
                let _ = t.child.kill();
                panic!("{cmd:?} did not say ready: {other:?}")
            }
        }
    }

    /// Close its standard input (it lets everything go) and wait for it
    /// to exit 0.
    fn finish(mut self) {
        drop(self.stdin.take());
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the target ended with {status:?}");
                return;
            }
            assert!(Instant::now() < end, "the target did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// lwkt-run with `args`, killed after the deadline.
fn lwkt_run(args: &[&str]) -> common::Captured {
    let mut cmd = Command::new(LWKT_RUN);
    cmd.args(args);
    common::without_inherited_lwkt(&mut cmd);
    let c = common::run_with_timeout(cmd, None, DEADLINE);
    assert!(
        !c.timed_out,
        "lwkt-run {args:?} hung: {}",
        c.report(DEADLINE)
    );
    c
}

// ---------------------------------------------------------------------------
// The parked states
// ---------------------------------------------------------------------------

/// The thread of `dump` named `name`.
fn thread<'a>(dump: &'a Json, name: &str) -> Result<&'a Json, String> {
    dump.get("threads")
        .arr()
        .iter()
        .find(|t| t.get("name").str() == name)
        .ok_or(format!("no thread {name}"))
}

/// The token of `dump` named `name`.
fn token<'a>(dump: &'a Json, name: &str) -> Result<&'a Json, String> {
    dump.get("tokens")
        .arr()
        .iter()
        .find(|t| t.get("name") == &Json::Str(name.into()))
        .ok_or(format!("no token {name}"))
}

/// (token name, mode) of each entry of a holds list.
fn holds(list: &Json) -> Vec<(String, String)> {
    list.arr()
        .iter()
        .map(|h| {
            (
                h.get("name").str().to_string(),
                h.get("mode").str().to_string(),
            )
        })
        .collect()
}

fn one(name: &str, mode: &str) -> Vec<(String, String)> {
    vec![(name.to_string(), mode.to_string())]
}

/// Has the dump of parked.c reached every state, and does it say each
/// right? Err says what is not (yet) there.
fn parked_states(dump: &Json, pid: i32) -> Result<(), String> {
    let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
    let x = thread(dump, "holder-x")?;
    check(
        holds(x.get("holds")) == one("dump excl", "exclusive"),
        "holder-x holds dump excl exclusively",
    )?;
    for name in ["holder-s1", "holder-s2"] {
        let s = thread(dump, name)?;
        check(
            holds(s.get("holds")) == one("dump shared", "shared"),
            &format!("{name} holds dump shared shared"),
        )?;
        check(s.get("waiting") == &Json::Null, "a holder waits")?;
    }
    let w = thread(dump, "waiter")?;
    check(w.get("holds").arr().is_empty(), "the waiter holds nothing")?;
    let wait = w.get("waiting");
    check(wait != &Json::Null, "the waiter waits")?;
    check(
        wait.get("name").str() == "dump excl" && wait.get("mode").str() == "exclusive",
        "the waiter waits for dump excl exclusively",
    )?;
    let r = thread(dump, "reader")?;
    check(
        r.get("holds").arr().is_empty(),
        "the reader holds nothing while blocked",
    )?;
    let blocked = r.get("blocked");
    check(blocked != &Json::Null, "the reader is blocked")?;
    check(
        blocked.get("call").str() == "read",
        "the reader is blocked in read",
    )?;
    check(
        holds(r.get("released")) == one("dump reader", "exclusive"),
        "the reader released dump reader",
    )?;
    check(r.get("waiting") == &Json::Null, "the reader waits")?;
    // Per token.
    let ex = token(dump, "dump excl")?;
    let holders = ex.get("holders").arr();
    check(
        holders.len() == 1
            && holders[0].get("name").str() == "holder-x"
            && holders[0].get("mode").str() == "exclusive",
        "dump excl is held by holder-x alone",
    )?;
    let waiters = ex.get("waiters").arr();
    check(
        waiters.len() == 1 && waiters[0].get("name").str() == "waiter",
        "dump excl is waited for by the waiter",
    )?;
    // Its holder has held it at least as long as the waiter has waited
    // (nobody took it since the wait began), unless the library knows
    // exactly (statistics on).
    let waited = waiters[0].get("waited_ns").num();
    match (
        holders[0].get("held_ns"),
        holders[0].get("held_at_least_ns"),
    ) {
        (Json::Null, at_least) => check(
            at_least == &Json::Num(waited),
            "dump excl held at least as long as the waiter waited",
        )?,
        (held, Json::Null) => check(held.num() >= 0.0, "dump excl's hold time")?,
        _ => return Err("both a hold time and a lower bound".into()),
    }
    let sh = token(dump, "dump shared")?;
    let mut names: Vec<&str> = sh
        .get("holders")
        .arr()
        .iter()
        .map(|h| {
            assert_eq!(h.get("mode").str(), "shared");
            h.get("name").str()
        })
        .collect();
    names.sort();
    check(names == ["holder-s1", "holder-s2"], "dump shared's holders")?;
    let rd = token(dump, "dump reader")?;
    check(
        rd.get("holders").arr().is_empty() && rd.get("waiters").arr().is_empty(),
        "dump reader is free while its holder blocks",
    )?;
    // Every thread id is a thread of the process, named as the kernel says.
    for t in dump.get("threads").arr() {
        let tid = t.get("tid").num() as u32;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .map_err(|e| format!("thread {tid}: {e}"))?;
        check(
            comm.trim_end() == t.get("name").str(),
            &format!("thread {tid}'s name"),
        )?;
    }
    check(dump.get("pid").num() as i32 == pid, "the pid")?;
    Ok(())
}

/// Dump `pid` as JSON until it shows every parked state (or fail after
/// the deadline with what was missing).
fn dump_until_parked(pid: i32) -> Json {
    let end = Instant::now() + DEADLINE;
    loop {
        let o = lwkt_run(&["--dump", &pid.to_string(), "--json"]);
        assert!(
            o.status.success(),
            "--dump --json failed: {}",
            o.report(DEADLINE)
        );
        assert_eq!(o.stderr, "", "--dump --json said something on stderr");
        let j = Json::parse(&o.stdout)
            .unwrap_or_else(|e| panic!("--json is not JSON ({e}):\n{}", o.stdout));
        match parked_states(&j, pid) {
            Ok(()) => return j,
            Err(missing) if Instant::now() > end => {
                panic!("the dump never showed: {missing}\n{}", o.stdout)
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn dump_shows_parked_states(how: Build) {
    let t = Target::start(target_command("parked", how, &[]));
    dump_until_parked(t.pid);
    // The same, in words.
    let o = lwkt_run(&["--dump", &t.pid.to_string()]);
    assert!(o.status.success(), "{}", o.report(DEADLINE));
    let text = o.stdout;
    let has = |words: &[&str]| text.lines().any(|l| words.iter().all(|w| l.contains(w)));
    for words in [
        &["token \"dump excl\""][..],
        &["held by", "holder-x", "exclusive", "for >="],
        &["waited by", "waiter", "exclusive", "for "],
        &["held by", "holder-s1", "shared"],
        &["held by", "holder-s2", "shared"],
        &[
            "released by",
            "reader",
            "exclusive",
            "while blocked in read()",
        ],
        &["thread", "holder-x", "holds \"dump excl\" exclusive"],
        &[
            "thread",
            "waiter",
            "waits for \"dump excl\" (exclusive) for ",
        ],
        &[
            "thread",
            "reader",
            "blocked in read() for ",
            "\"dump reader\"",
        ],
    ] {
        assert!(has(words), "no line with {words:?} in:\n{text}");
    }
    t.finish();
}

#[test]
fn dump_shows_every_parked_state_of_a_linked_program() {
    dump_shows_parked_states(Build::Linked);
}

#[test]
fn dump_shows_every_parked_state_of_a_preloaded_program() {
    dump_shows_parked_states(Build::Plugin);
}

#[test]
fn dump_knows_hold_times_when_statistics_are_on() {
    let report = bin_dir().join(format!("stats-{}.json", std::process::id()));
    let mut cmd = target_command("parked", Build::Linked, &[]);
    cmd.env("LWKT_STATS", format!("json:{}", report.display()));
    let t = Target::start(cmd);
    let j = dump_until_parked(t.pid);
    for name in ["holder-x", "holder-s1", "holder-s2"] {
        let h = &thread(&j, name).unwrap().get("holds").arr()[0];
        assert!(
            matches!(h.get("held_ns"), Json::Num(_)),
            "{name}: no hold time with statistics on: {h:?}"
        );
    }
    t.finish();
    let _ = std::fs::remove_file(report);
}

#[test]
fn dump_follows_the_registry_past_its_first_chunk() {
    // 300 threads: more than the 255 slots of the first chunk.
    let t = Target::start(target_command("many", Build::Linked, &[]));
    let o = lwkt_run(&["--dump", &t.pid.to_string(), "--json"]);
    assert!(o.status.success(), "{}", o.report(DEADLINE));
    let j = Json::parse(&o.stdout).unwrap();
    let threads = j.get("threads").arr();
    assert_eq!(threads.len(), 300, "threads listed: {}", threads.len());
    for th in threads {
        assert!(th.get("holds").arr().is_empty(), "{th:?}");
    }
    t.finish();
}

// ---------------------------------------------------------------------------
// A target that changes, then exits, while being read
// ---------------------------------------------------------------------------

/// What each thread of churn.c may hold at any instant; a torn read of
/// its stack would show something else.
fn churn_thread_is_whole(t: &Json) -> Result<(), String> {
    let h: Vec<(String, String, u64)> = t
        .get("holds")
        .arr()
        .iter()
        .map(|h| {
            (
                h.get("name").str().to_string(),
                h.get("mode").str().to_string(),
                h.get("references").num() as u64,
            )
        })
        .collect();
    let a = |n: u64| ("churn a".to_string(), "exclusive".to_string(), n);
    let b = |m: &str, n: u64| ("churn b".to_string(), m.to_string(), n);
    let name = t.get("name").str();
    let allowed: Vec<Vec<(String, String, u64)>> = match name {
        "flip-excl" => vec![
            vec![],
            vec![a(1)],
            vec![a(1), b("exclusive", 1)],
            vec![a(2), b("exclusive", 1)],
        ],
        "flip-shared" => vec![vec![], vec![b("shared", 1)], vec![b("shared", 2)]],
        "short" => vec![vec![], vec![a(1)], vec![a(1), b("shared", 1)]],
        // Gone already, or not one of the token users.
        _ => return Ok(()),
    };
    if allowed.contains(&h) {
        Ok(())
    } else {
        Err(format!("{name} cannot hold {h:?}"))
    }
}

fn reads_a_changing_target_that_exits(how: Build) {
    let t = Target::start(target_command("churn", how, &["1500"]));
    let pid = t.pid.to_string();
    let end = Instant::now() + DEADLINE;
    let mut whole = 0;
    loop {
        let o = lwkt_run(&["--dump", &pid, "--json"]);
        if !o.status.success() {
            // Only because it exited, said in one line.
            assert_eq!(o.stderr.lines().count(), 1, "{}", o.report(DEADLINE));
            assert!(
                o.stderr
                    .contains(&format!("process {pid} exited while being read")),
                "{}",
                o.report(DEADLINE)
            );
            assert_eq!(o.stdout, "");
            break;
        }
        let j = Json::parse(&o.stdout)
            .unwrap_or_else(|e| panic!("--json is not JSON ({e}):\n{}", o.stdout));
        for th in j.get("threads").arr() {
            if let Err(e) = churn_thread_is_whole(th) {
                panic!("a torn read was shown: {e}\n{}", o.stdout);
            }
        }
        whole += 1;
        assert!(Instant::now() < end, "churn did not exit");
    }
    assert!(whole > 0, "no dump succeeded before the target exited");
}

#[test]
fn reads_a_changing_linked_target_and_its_exit() {
    reads_a_changing_target_that_exits(Build::Linked);
}

#[test]
fn reads_a_changing_preloaded_target_and_its_exit() {
    reads_a_changing_target_that_exits(Build::Plugin);
}

// ---------------------------------------------------------------------------
// --top on a pseudo-terminal
// ---------------------------------------------------------------------------

/// The first line of each frame of --top.
const HEADER: &str = "lwkt-run --top: process";

fn termios_of(fd: i32) -> libc::termios {
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::tcgetattr(fd, &mut t) }, 0);
    t
}

/// Run `--top pid` on a new pseudo-terminal; wait for `frames` frames;
/// send `key` (None: wait for it to end by itself); it must exit 0 and
/// leave the terminal as it found it. Returns what it wrote.
fn top_on_a_terminal(pid: i32, frames: usize, key: Option<u8>) -> String {
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 160,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let r =
            unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    };
    let before = termios_of(slave.as_raw_fd());
    let mut cmd = Command::new(LWKT_RUN);
    cmd.args(["--top", &pid.to_string()])
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    common::without_inherited_lwkt(&mut cmd);
    unsafe {
        cmd.pre_exec(|| {
            // Its own session, the terminal its controlling one: Ctrl-C
            // typed there is a SIGINT for it, as in a shell.
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY, 0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("run lwkt-run --top");
    // The command keeps its copies of the terminal open: without them,
    // the master sees the end once lwkt-run and `slave` are gone.
    drop(cmd);
    let screen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let screen = screen.clone();
        let mut m = master.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = m.read(&mut buf) {
                if n == 0 {
                    break;
                }
                screen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let end = Instant::now() + DEADLINE;
    loop {
        let text = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
        if text.matches(HEADER).count() >= frames {
            break;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("--top drew fewer than {frames} frames:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Some(key) = key {
        master.write_all(&[key]).unwrap();
    }
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("--top did not quit ({key:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let after = termios_of(slave.as_raw_fd());
    drop(slave);
    let _ = reader.join();
    let text = String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    assert!(status.success(), "--top ended with {status:?}:\n{text}");
    assert_eq!(
        (after.c_lflag, after.c_iflag, after.c_oflag, after.c_cc),
        (before.c_lflag, before.c_iflag, before.c_oflag, before.c_cc),
        "--top left the terminal changed"
    );
    let restored = text
        .rfind("\x1b[?25h\x1b[?1049l")
        .unwrap_or_else(|| panic!("the screen was not restored: {text:?}"));
    assert!(
        !text[restored..].contains(HEADER),
        "drawn after the restore: {text:?}"
    );
    text
}

#[test]
fn top_refreshes_and_quits_on_q() {
    let t = Target::start(target_command("parked", Build::Linked, &[]));
    dump_until_parked(t.pid);
    let text = top_on_a_terminal(t.pid, 3, Some(b'q'));
    assert!(text.ends_with("\x1b[?25h\x1b[?1049l"), "{text:?}");
    // The last frame: the longest wait first, then the blocked, the holders.
    let last = text.rsplit(HEADER).next().unwrap();
    let rows: Vec<&str> = last
        .lines()
        .filter(|l| l.contains(" holder-") || l.contains(" waiter ") || l.contains(" reader "))
        .collect();
    assert!(rows.len() >= 5, "rows missing in the last frame:\n{last}");
    assert!(
        rows[0].contains("waiter")
            && rows[0].contains("waiting")
            && rows[0].contains("\"dump excl\""),
        "{last}"
    );
    assert!(
        rows[1].contains("reader") && rows[1].contains("blocked") && rows[1].contains("read()"),
        "{last}"
    );
    for r in &rows[2..] {
        assert!(r.contains("holding"), "{last}");
    }
    t.finish();
}

#[test]
fn top_quits_on_ctrl_c() {
    let t = Target::start(target_command("parked", Build::Linked, &[]));
    let text = top_on_a_terminal(t.pid, 2, Some(0x03));
    assert!(text.ends_with("\x1b[?25h\x1b[?1049l"), "{text:?}");
    t.finish();
}

#[test]
fn top_ends_when_the_process_exits() {
    let t = Target::start(target_command("churn", Build::Linked, &["1500"]));
    let pid = t.pid;
    let text = top_on_a_terminal(pid, 1, None);
    let last = text.rsplit("\x1b[?1049l").next().unwrap();
    assert_eq!(
        last.trim_end(),
        format!("lwkt-run: process {pid} exited"),
        "{text:?}"
    );
}

// ---------------------------------------------------------------------------
// Errors: one line each, exit status 1
// ---------------------------------------------------------------------------

fn assert_one_line_error(o: &common::Captured, words: &[&str]) {
    assert_eq!(o.status.code(), Some(1), "{}", o.report(DEADLINE));
    assert_eq!(o.stderr.lines().count(), 1, "{}", o.report(DEADLINE));
    assert!(o.stderr.starts_with("lwkt-run: "), "{}", o.stderr);
    for w in words {
        assert!(o.stderr.contains(w), "{w:?} not in {:?}", o.stderr);
    }
    assert_eq!(o.stdout, "");
}

/// A process id that no process has: above the kernel's maximum.
fn no_such_pid() -> String {
    let max: u64 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (max + 1).to_string()
}

#[test]
fn no_such_process_is_one_line() {
    let pid = no_such_pid();
    for opt in ["--dump", "--top"] {
        let o = lwkt_run(&[opt, &pid]);
        assert_one_line_error(&o, &[&format!("no process {pid}")]);
    }
}

#[test]
fn a_process_without_the_library_is_one_line() {
    let t = Target::start({
        let mut c = Command::new("sh");
        c.args(["-c", "echo ready; exec cat"]);
        c
    });
    let o = lwkt_run(&["--dump", &t.pid.to_string()]);
    assert_one_line_error(&o, &["has no lwkt library loaded"]);
    t.finish();
}

#[test]
fn an_unknown_registry_version_is_one_line() {
    let t = Target::start(target_command("fake_registry", Build::Alone, &[]));
    let o = lwkt_run(&["--dump", &t.pid.to_string()]);
    assert_one_line_error(&o, &["layout version 999", "reads version 1"]);
    t.finish();
}

#[test]
fn not_permitted_is_one_line_naming_the_setting() {
    // As root: read a process of ours as another user. Otherwise: read
    // init, which is root's.
    let root = unsafe { libc::geteuid() } == 0;
    let target = root.then(|| Target::start(target_command("parked", Build::Linked, &[])));
    let pid = target
        .as_ref()
        .map_or("1".to_string(), |t| t.pid.to_string());
    let mut cmd = Command::new(LWKT_RUN);
    cmd.args(["--dump", &pid]);
    common::without_inherited_lwkt(&mut cmd);
    if root {
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(65534, 65534, 65534) != 0
                    || libc::setresuid(65534, 65534, 65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let o = common::run_with_timeout(cmd, None, DEADLINE);
    let yama = std::path::Path::new("/proc/sys/kernel/yama/ptrace_scope").exists();
    let setting = if yama {
        "/proc/sys/kernel/yama/ptrace_scope"
    } else {
        "CAP_SYS_PTRACE"
    };
    assert_one_line_error(
        &o,
        &[&format!("not permitted to read process {pid}"), setting],
    );
    if let Some(t) = target {
        t.finish();
    }
}

#[test]
fn dump_usage_errors_are_status_2() {
    for args in [
        &["--dump"][..],
        &["--dump", "abc"],
        &["--top", "1", "--json"],
    ] {
        let o = lwkt_run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", o.report(DEADLINE));
        assert_eq!(o.stderr.lines().count(), 1, "{args:?}: {:?}", o.stderr);
    }
}
