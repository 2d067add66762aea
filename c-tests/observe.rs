//! Tests of the observation features: `LWKT_STATS`, lost-token detection
//! (SPEC S8), `LWKT_DEBUG`, `LWKT_CHAOS`, the start-up check of the `LWKT_`
//! variables, and their hostile settings (SPEC section 7: secure mode,
//! report files shared, planted or not regular files).
//!
//! The C programs are in `c-tests/observe/` (a subdirectory, so that
//! build.rs and c-tests/run.rs do not take them for ordinary C tests). This
//! driver compiles each with the C compiler build.rs found, against
//! `include/` and the liblwkt.so of this test's profile (-llwkt and an
//! rpath), runs it with chosen `LWKT_` variables and judges what it printed.
//! Every run is killed (and fails) after `RUN_TIMEOUT`.
//!
//! Figures that are deterministic (acquisition counts, releases on block by
//! call, losses, threads, the deepest stack) must match exactly; figures
//! that depend on time only have lower bounds, and only where the program
//! made a thread wait a known minimum (a holder that spins 50 ms).

mod common;

use common::json::Json;
use common::{lib_dir, lib_path, Outcome, CC, MANIFEST_DIR};
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Longer than any deadline inside the programs (20 s), so that their own,
/// clearer failure messages win.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Where things are (lib_dir, lib_path: c-tests/common/mod.rs)
// ---------------------------------------------------------------------------

/// The compiled programs go to target/<profile>/c-tests/observe/.
fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = lib_dir().join("c-tests").join("observe");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/c-tests/observe");
        dir
    })
}

/// c-tests/observe/<name>.c, compiled and linked with -llwkt (once per test
/// process). -rdynamic: backtraces and "taken at" can name its functions.
fn program(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held while compiling: two tests needing one program compile it once.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let root = Path::new(MANIFEST_DIR);
    let src = root.join("c-tests/observe").join(format!("{name}.c"));
    let exe = bin_dir().join(name);
    let libdir = lib_dir();
    let mut cmd = Command::new(CC);
    cmd.args([
        "-std=gnu11",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-pthread",
        "-rdynamic",
    ])
    .arg("-I")
    .arg(root.join("include"))
    .arg("-I")
    .arg(root.join("c-tests/include"))
    .arg(&src)
    .arg(format!("-L{}", libdir.display()))
    .arg("-llwkt")
    .arg(format!("-Wl,-rpath,{}", libdir.display()));
    common::build_to(&exe, cmd, &format!("compiling {}", src.display()));
    built.insert(name.to_string(), exe.clone());
    exe
}

/// A fresh directory for a test's report files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        TempDir::in_dir(&std::env::temp_dir(), tag)
    }

    /// A fresh directory under `parent`.
    fn in_dir(parent: &Path, tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = parent.join(format!("lwkt-observe-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// The rest of a run's judgement is `common::Outcome`'s.
impl Outcome {
    /// It was stopped by SIGABRT (a misuse report).
    fn assert_aborted(&self) -> &Self {
        assert!(
            !self.timed_out && self.status.signal() == Some(libc::SIGABRT),
            "expected to abort (SIGABRT): {}",
            self.describe()
        );
        self
    }
}

/// Command for `exe` with no `LWKT_` variable and no LD_PRELOAD inherited,
/// then `env` set.
fn command(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(exe);
    c.args(args);
    common::without_inherited_lwkt(&mut c).envs(env.iter().copied());
    c
}

/// Run `cmd` in its own process group with a deadline, capturing output
/// (no core files from the aborts).
fn run(cmd: Command) -> Outcome {
    let what = format!("{cmd:?}");
    common::run_named(cmd, what, RUN_TIMEOUT)
}

/// Run c-tests/observe/<name> with `args` and `env`.
fn run_prog(name: &str, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    run(command(&program(name), args, env))
}

// ---------------------------------------------------------------------------
// The statistics report
// ---------------------------------------------------------------------------

/// One token's figures, from the table or from the JSON report.
#[derive(Debug, Default)]
struct TokenStats {
    name: String,
    pool: bool,
    excl: u64,
    shared: u64,
    contended: u64,
    /// Lower bounds (the table rounds down to its unit).
    wait_total_ns: u64,
    wait_p50_ns: u64,
    wait_p99_ns: u64,
    wait_max_ns: u64,
    max_hold_ns: u64,
    lost: u64,
    released_on_block: Vec<(String, u64)>,
}

#[derive(Debug)]
struct Report {
    pid: u64,
    /// The process's name, as the report gives it.
    program: String,
    tokens_line: Option<u64>,
    threads: u64,
    deepest: u64,
    tokens: Vec<TokenStats>,
    /// What a full table could not show: tokens, whether that count is
    /// only a lower bound, and acquisitions.
    not_shown: (u64, bool, u64),
}

impl Report {
    fn token(&self, name: &str) -> &TokenStats {
        self.tokens
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no row for {name} in the report: {self:#?}"))
    }
}

/// "12ms", "345us", "999ns" as nanoseconds (the lower bound of the value).
fn parse_duration(s: &str) -> u64 {
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1_000_000)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix("ns") {
        (n, 1)
    } else {
        panic!("not a duration: {s:?}")
    };
    num.parse::<u64>()
        .unwrap_or_else(|_| panic!("not a duration: {s:?}"))
        * mult
}

fn parse_num(s: &str, what: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{what}: not a number: {s:?}"))
}

/// Take the number that follows `prefix` in `s` (up to a non-digit).
fn number_after(s: &str, prefix: &str) -> u64 {
    let i = s
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} not in {s:?}"));
    let digits: String = s[i + prefix.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    parse_num(&digits, prefix)
}

/// The text table (`LWKT_STATS=1` or a path): a header line naming the
/// program and its pid, the column names, one row per token, and a line
/// for what a full table could not show.
fn parse_table(text: &str) -> Report {
    let start = text
        .find("lwkt statistics for ")
        .unwrap_or_else(|| panic!("no statistics report in:\n{text}"));
    let mut lines = text[start..].lines();
    let head = lines.next().unwrap();
    let program = head["lwkt statistics for ".len()..]
        .split(" (pid ")
        .next()
        .unwrap()
        .to_string();
    let report_head = (
        number_after(head, "(pid "),
        number_after(head, "): "),
        number_after(head, "token(s), "),
        number_after(head, "deepest reference stack "),
    );
    assert!(
        head.contains(" thread(s) used tokens, "),
        "header line: {head:?}"
    );
    let cols = lines.next().expect("column names");
    let want: Vec<&str> = vec![
        "token",
        "excl",
        "shared",
        "contended",
        "wait",
        "tot",
        "p50",
        "p99",
        "max",
        "max",
        "hold",
        "lost",
        "released",
        "on",
        "block",
        "by",
    ];
    assert_eq!(
        cols.split_whitespace().collect::<Vec<_>>(),
        want,
        "column names"
    );
    let mut tokens = Vec::new();
    let mut not_shown = (0, false, 0);
    for line in lines {
        if line.trim().is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("not shown (") {
            let at_least = rest.contains("): at least ");
            let n = if at_least {
                number_after(rest, "): at least ")
            } else {
                number_after(rest, "): ")
            };
            not_shown = (n, at_least, number_after(rest, "token(s), "));
            assert!(rest.ends_with(" acquisition(s)"), "{line:?}");
            break;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, pool, rest) = if line.starts_with("pool token #") {
            (words[..3].join(" "), true, &words[3..])
        } else {
            (words[0].to_string(), false, &words[1..])
        };
        assert!(rest.len() >= 10, "short row: {line:?}");
        let mut calls = Vec::new();
        if rest[9..] != ["-"] {
            for c in &rest[9..] {
                let (k, v) = c
                    .split_once('=')
                    .unwrap_or_else(|| panic!("not CALL=COUNT: {c:?} in {line:?}"));
                calls.push((k.to_string(), parse_num(v, k)));
            }
        }
        tokens.push(TokenStats {
            name,
            pool,
            excl: parse_num(rest[0], "excl"),
            shared: parse_num(rest[1], "shared"),
            contended: parse_num(rest[2], "contended"),
            wait_total_ns: parse_duration(rest[3]),
            wait_p50_ns: parse_duration(rest[4]),
            wait_p99_ns: parse_duration(rest[5]),
            wait_max_ns: parse_duration(rest[6]),
            max_hold_ns: parse_duration(rest[7]),
            lost: parse_num(rest[8], "lost"),
            released_on_block: calls,
        });
    }
    Report {
        pid: report_head.0,
        program,
        tokens_line: Some(report_head.1),
        threads: report_head.2,
        deepest: report_head.3,
        tokens,
        not_shown,
    }
}

/// The JSON report (`LWKT_STATS=json:PATH`) of one process: one line.
fn parse_json_report(text: &str) -> Report {
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "not one JSON line: {text:?}"
    );
    let j = Json::parse(text)
        .unwrap_or_else(|e| panic!("the JSON report does not parse ({e}):\n{text}"));
    json_report(&j, text)
}

/// Every line of a JSON Lines report file, parsed (each must be a whole
/// report).
fn parse_json_lines(text: &str) -> Vec<Report> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "the last line is cut: {text:?}"
    );
    text.lines()
        .map(|l| {
            let j = Json::parse(l).unwrap_or_else(|e| {
                panic!("a line of the JSON report does not parse ({e}):\n{l}\n--- whole file ---\n{text}")
            });
            json_report(&j, l)
        })
        .collect()
}

fn json_report(j: &Json, text: &str) -> Report {
    let Json::Arr(toks) = j.get("tokens") else {
        panic!("\"tokens\" is not an array: {text}")
    };
    let tokens = toks
        .iter()
        .map(|t| {
            let Json::Obj(calls) = t.get("released_on_block") else {
                panic!("released_on_block is not an object: {t:?}")
            };
            let wait = t.get("wait_ns");
            TokenStats {
                name: t.get("token").str().to_string(),
                pool: match t.get("pool") {
                    Json::Bool(b) => *b,
                    other => panic!("pool is not a boolean: {other:?}"),
                },
                excl: t.get("acquisitions").get("exclusive").u64(),
                shared: t.get("acquisitions").get("shared").u64(),
                contended: t.get("contended").u64(),
                wait_total_ns: wait.get("total").u64(),
                wait_p50_ns: wait.get("p50").u64(),
                wait_p99_ns: wait.get("p99").u64(),
                wait_max_ns: wait.get("max").u64(),
                max_hold_ns: t.get("max_hold_ns").u64(),
                lost: t.get("lost_while_released").u64(),
                released_on_block: calls.iter().map(|(k, v)| (k.clone(), v.u64())).collect(),
            }
        })
        .collect();
    let not_shown = j.get("not_shown");
    Report {
        pid: j.get("pid").u64(),
        program: j.get("program").str().to_string(),
        tokens_line: None,
        threads: j.get("threads_using_tokens").u64(),
        deepest: j.get("deepest_reference_stack").u64(),
        tokens,
        not_shown: (
            not_shown.get("tokens").u64(),
            match not_shown.get("tokens_at_least") {
                Json::Bool(b) => *b,
                other => panic!("tokens_at_least is not a boolean: {other:?} in {text}"),
            },
            not_shown.get("acquisitions").u64(),
        ),
    }
}

fn calls(v: &[(&str, u64)]) -> Vec<(String, u64)> {
    let mut c: Vec<(String, u64)> = v.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    c.sort();
    c
}

fn sorted(v: &[(String, u64)]) -> Vec<(String, u64)> {
    let mut c = v.to_vec();
    c.sort();
    c
}

/// The report of stats_known.c matches what that program did (see the
/// comment at its top). `out` is that run: its pid, and its "pool P0 P1 P2"
/// line with the pool tokens' addresses.
fn check_stats_known(r: &Report, out: &Outcome) {
    let ctx = out.describe();
    assert_eq!(r.pid, out.pid as u64, "report's pid: {ctx}");
    assert_eq!(r.program, "stats_known", "report's program: {ctx}");
    assert_eq!(r.not_shown, (0, false, 0), "nothing left out: {r:#?}");
    assert_eq!(r.threads, 2, "threads that used tokens: {r:#?}");
    assert_eq!(r.deepest, 3, "deepest reference stack: {r:#?}");
    assert_eq!(r.tokens.len(), 5, "tokens in the report: {r:#?}");
    if let Some(n) = r.tokens_line {
        assert_eq!(n, 5, "token(s) in the header: {r:#?}");
    }

    // Most contended first: obs_T is the only contended token; then the
    // most acquired.
    assert_eq!(r.tokens[0].name, "obs_T", "most contended first: {r:#?}");
    let acq: Vec<u64> = r.tokens[1..].iter().map(|t| t.excl + t.shared).collect();
    assert!(
        acq.windows(2).all(|w| w[0] >= w[1]),
        "not most acquired first: {r:#?}"
    );
    let t = r.token("obs_T");
    assert!(!t.pool, "{t:?}");
    assert_eq!((t.excl, t.shared), (12, 5), "obs_T acquisitions: {t:?}");
    assert_eq!(t.contended, 1, "obs_T contended: {t:?}");
    assert_eq!(t.lost, 1, "obs_T lost while released: {t:?}");
    assert_eq!(
        sorted(&t.released_on_block),
        calls(&[("nanosleep", 2), ("read", 1)]),
        "obs_T released on block: {t:?}"
    );
    // The one wait lasted at least the 50 ms that W spun after seeing it.
    let ms50 = 50_000_000;
    assert!(t.wait_max_ns >= ms50, "obs_T wait max < 50 ms: {t:?}");
    assert!(t.wait_total_ns >= ms50, "obs_T wait total < 50 ms: {t:?}");
    assert!(t.wait_p99_ns >= t.wait_p50_ns, "p99 < p50: {t:?}");
    assert!(t.wait_max_ns >= t.wait_p99_ns, "max < p99: {t:?}");
    assert!(t.wait_p50_ns > 0, "one wait, p50 zero: {t:?}");
    assert!(t.max_hold_ns >= ms50, "obs_T longest hold < 50 ms: {t:?}");

    let u = r.token("obs_U");
    assert!(!u.pool, "{u:?}");
    assert_eq!((u.excl, u.shared), (2, 0), "obs_U acquisitions: {u:?}");
    assert_eq!((u.contended, u.lost), (0, 0), "obs_U: {u:?}");
    assert_eq!(u.wait_max_ns, 0, "obs_U never waited: {u:?}");
    assert_eq!(
        sorted(&u.released_on_block),
        calls(&[("lwkt_gettoken", 1)]),
        "obs_U released on block: {u:?}"
    );

    // The pool tokens: named by slot, and the slots are those of the
    // addresses the program printed (distances proportional).
    let pools: Vec<&TokenStats> = r.tokens.iter().filter(|t| t.pool).collect();
    assert_eq!(pools.len(), 3, "pool tokens: {r:#?}");
    let mut slots = HashMap::new();
    for p in &pools {
        let n: u64 = p
            .name
            .strip_prefix("pool token #")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("pool token named {:?}", p.name));
        assert!(n < 4096, "pool slot {n} out of range");
        assert_eq!(p.shared, 0, "{p:?}");
        assert_eq!((p.contended, p.lost), (0, 0), "{p:?}");
        assert!(p.released_on_block.is_empty(), "{p:?}");
        slots.insert(n, p.excl);
    }
    let mut counts: Vec<u64> = slots.values().copied().collect();
    counts.sort();
    assert_eq!(counts, [1, 1, 2], "pool token acquisitions: {r:#?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("pool "))
        .unwrap_or_else(|| panic!("no pool line: {ctx}"));
    let addrs: Vec<i128> = line
        .split_whitespace()
        .skip(1)
        .map(|a| i128::from_str_radix(a.trim_start_matches("0x"), 16).unwrap())
        .collect();
    assert_eq!(addrs.len(), 3, "{line}");
    let s0 = *slots.iter().find(|(_, &c)| c == 2).unwrap().0 as i128;
    let others: Vec<i128> = slots
        .iter()
        .filter(|(_, &c)| c == 1)
        .map(|(&s, _)| s as i128)
        .collect();
    // Either way round, one slot size must explain both distances.
    let fits = |a: i128, b: i128| {
        let (d1, d2) = (addrs[1] - addrs[0], addrs[2] - addrs[0]);
        let (n1, n2) = (a - s0, b - s0);
        n1 != 0 && n2 != 0 && d1 % n1 == 0 && d2 % n2 == 0 && d1 / n1 == d2 / n2 && d1 / n1 >= 48
    };
    assert!(
        fits(others[0], others[1]) || fits(others[1], others[0]),
        "pool slots {slots:?} do not match the addresses {addrs:?}"
    );
}

/// LWKT_STATS=1: the table on stderr, with the figures of stats_known.c.
#[test]
fn stats_table_on_stderr() {
    let out = run_prog("stats_known", &[], &[("LWKT_STATS", "1")]);
    out.assert_ok();
    assert!(out.stdout.contains("stats_known: ok"), "{}", out.describe());
    let r = parse_table(&out.stderr);
    check_stats_known(&r, &out);
}

/// LWKT_STATS=PATH: the same table in the file, nothing on stderr.
#[test]
fn stats_table_to_file() {
    let dir = TempDir::new("table");
    let path = dir.0.join("report.txt");
    let out = run_prog(
        "stats_known",
        &[],
        &[("LWKT_STATS", path.to_str().unwrap())],
    );
    out.assert_ok();
    assert!(
        !out.stderr.contains("lwkt statistics"),
        "report on stderr as well: {}",
        out.describe()
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report in {}: {e}; {}", path.display(), out.describe()));
    assert!(
        text.starts_with("lwkt statistics for stats_known (pid "),
        "{text}"
    );
    check_stats_known(&parse_table(&text), &out);
}

/// LWKT_STATS=json:PATH: JSON that parses, with the same figures.
#[test]
fn stats_json_to_file() {
    let dir = TempDir::new("json");
    let path = dir.0.join("report.json");
    let val = format!("json:{}", path.display());
    let out = run_prog("stats_known", &[], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    assert!(
        !out.stderr.contains("lwkt statistics"),
        "a table on stderr as well: {}",
        out.describe()
    );
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report in {}: {e}; {}", path.display(), out.describe()));
    check_stats_known(&parse_json_report(&text), &out);
    // Where python3 is there, its parser must accept it as well.
    if let Ok(py) = Command::new("python3")
        .args(["-c", "import json,sys; json.load(open(sys.argv[1]))"])
        .arg(&path)
        .output()
    {
        assert!(
            py.status.success(),
            "python3 rejects the JSON report: {}\n{text}",
            String::from_utf8_lossy(&py.stderr)
        );
    }
}

/// Run stats_names.c with a JSON report: the report and the unnamed
/// token's address.
fn stats_names_report() -> (Report, String) {
    let dir = TempDir::new("names");
    let path = dir.0.join("report.json");
    let val = format!("json:{}", path.display());
    let out = run_prog("stats_names", &[], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report in {}: {e}; {}", path.display(), out.describe()));
    let addr = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("unnamed "))
        .unwrap_or_else(|| panic!("{}", out.describe()))
        .to_string();
    (parse_json_report(&text), addr)
}

/// Descriptions with quotes, backslashes and control characters are
/// escaped in the JSON report (it parses, and gives them back exactly); a
/// token without one is reported by its address.
#[test]
fn stats_json_escapes_names() {
    let (r, addr) = stats_names_report();
    for name in [
        "say \"hi\" \\ back",
        "tab\there\nnewline",
        &format!("token@{addr}"),
    ] {
        let t = r.token(name);
        assert_eq!((t.excl, t.shared), (1, 0), "{t:?}");
    }
}

/// Non-ASCII descriptions come back unchanged from the JSON report.
#[test]
fn stats_json_keeps_utf8_names() {
    let (r, _) = stats_names_report();
    let names: Vec<&str> = r.tokens.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"café → 🔑"),
        "the UTF-8 description is not in the report: {names:?}"
    );
}

/// Without LWKT_STATS (or with 0), no report anywhere.
#[test]
fn stats_off_no_report() {
    for env in [
        &[][..],
        &[("LWKT_STATS", "0")][..],
        &[("LWKT_STATS", "")][..],
    ] {
        let out = run_prog("stats_known", &[], env);
        out.assert_ok();
        assert!(
            out.stderr.is_empty(),
            "stderr not empty with {env:?}: {}",
            out.describe()
        );
    }
}

/// Under chaos every hooked call counts as a release, by "chaos".
#[test]
fn stats_count_chaos_releases() {
    let dir = TempDir::new("chaos");
    let path = dir.0.join("report.json");
    let val = format!("json:{}", path.display());
    let out = run_prog(
        "chaos_revalidate",
        &["correct"],
        &[("LWKT_STATS", &val), ("LWKT_CHAOS", "1")],
    );
    out.assert_ok();
    let r = parse_json_report(&std::fs::read_to_string(&path).unwrap());
    let t = r.token("chaos_T");
    let chaos = t
        .released_on_block
        .iter()
        .find(|(k, _)| k == "chaos")
        .map(|(_, n)| *n)
        .unwrap_or(0);
    // Each of the 5000 iterations makes one hooked call holding chaos_T.
    assert!(chaos >= 5_000, "chaos releases {chaos}: {t:?}");
    assert!(t.lost > 0, "chaos_T never lost under chaos: {t:?}");
}

/// The launcher's `--stats` sets LWKT_STATS: the same report on stderr.
#[test]
fn stats_by_launcher_option() {
    let mut c = command(
        Path::new(env!("CARGO_BIN_EXE_lwkt-run")),
        &["--stats", program("stats_known").to_str().unwrap()],
        &[],
    );
    c.env("LWKT_LIB", lib_path());
    let out = run(c);
    out.assert_ok();
    check_stats_known(&parse_table(&out.stderr), &out);
}

// ---------------------------------------------------------------------------
// Where reports go, and that they arrive whole (SPEC section 7)
// ---------------------------------------------------------------------------

/// The lines of `text` that are lwkt's, not the program's.
fn lwkt_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("lwkt")).collect()
}

/// The single line that stats_report printed on stderr about the report
/// (a refusal or an error), which must name `path` and say `what`.
fn assert_one_line_about(out: &Outcome, path: &str, what: &str) {
    let ctx = out.describe();
    let lines = lwkt_lines(&out.stderr);
    assert_eq!(lines.len(), 1, "one line about the report expected: {ctx}");
    let l = lines[0];
    assert!(l.starts_with("lwkt: "), "{ctx}");
    assert!(l.contains(path), "the line does not name {path}: {ctx}");
    assert!(l.contains(what), "the line does not say {what:?}: {ctx}");
}

/// A process that never used a token reports nothing: no line, no file.
#[test]
fn stats_nothing_from_a_process_without_tokens() {
    let out = run_prog("stats_report", &["none"], &[("LWKT_STATS", "1")]);
    out.assert_ok();
    assert!(out.stderr.is_empty(), "{}", out.describe());

    let dir = TempDir::new("none");
    let path = dir.0.join("r.json");
    let val = format!("json:{}", path.display());
    let out = run_prog("stats_report", &["none"], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    assert!(out.stderr.is_empty(), "{}", out.describe());
    assert!(
        !path.exists(),
        "a report file from a process without tokens"
    );

    // Preloaded into a program that knows nothing of tokens.
    let t = which("true").expect("true on PATH");
    let mut c = command(&t, &[], &[("LWKT_STATS", "1")]);
    c.env("LD_PRELOAD", lib_path());
    let out = run(c);
    out.assert_ok();
    assert!(out.stderr.is_empty(), "{}", out.describe());
}

/// `make -j2` with the library preloaded: only the two jobs that used
/// tokens report, each naming itself (program and pid); make does not.
#[test]
fn stats_under_make_only_token_users_report() {
    let Ok(make) = which("make") else {
        return skipped(
            "stats_under_make_only_token_users_report",
            "make is not installed",
        );
    };
    let dir = TempDir::new("make");
    let prog = program("stats_report");
    std::fs::write(
        dir.0.join("Makefile"),
        format!(
            "all: a b\na:\n\t{p} plain\nb:\n\t{p} plain\n.PHONY: all a b\n",
            p = prog.display()
        ),
    )
    .unwrap();
    let mut c = command(
        &make,
        &["-s", "-j2", "-C", dir.0.to_str().unwrap()],
        &[("LWKT_STATS", "1")],
    );
    c.env("LD_PRELOAD", lib_path());
    let out = run(c);
    out.assert_ok();
    let ctx = out.describe();
    let heads: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("lwkt statistics"))
        .collect();
    assert_eq!(heads.len(), 2, "two reports expected: {ctx}");
    let mut pids = Vec::new();
    for h in &heads {
        assert!(
            h.starts_with("lwkt statistics for stats_report (pid "),
            "a report that does not name its process: {ctx}"
        );
        assert!(h.contains("): 1 token(s), 1 thread(s)"), "{ctx}");
        pids.push(number_after(h, "(pid "));
    }
    assert_ne!(pids[0], pids[1], "{ctx}");
}

/// A program that closes stderr at exit (as GNU sort, cat, ls do) before
/// the library's exit handler runs: the report still reaches the stderr
/// the program started with, and not a file the program then opened as
/// descriptor 2.
#[test]
fn stats_reach_the_stderr_the_program_started_with() {
    let out = run_prog("stats_report", &["close_std"], &[("LWKT_STATS", "1")]);
    out.assert_ok();
    let r = parse_table(&out.stderr);
    assert_eq!(r.program, "stats_report", "{}", out.describe());
    assert_eq!(r.pid, out.pid as u64);
    assert_eq!(r.token("rep_T").excl, 1, "{r:#?}");

    let dir = TempDir::new("closed");
    let decoy = dir.0.join("decoy");
    let out = run_prog(
        "stats_report",
        &["close_std", decoy.to_str().unwrap()],
        &[("LWKT_STATS", "1")],
    );
    out.assert_ok();
    let ctx = out.describe();
    let written = std::fs::read_to_string(&decoy).unwrap_or_default();
    assert!(
        written.is_empty(),
        "the report went into the file the program opened as fd 2: {written:?}; {ctx}"
    );
    assert_eq!(parse_table(&out.stderr).token("rep_T").excl, 1, "{ctx}");
}

/// A report that cannot be written: one line naming the path and the error
/// in words (not an errno number).
#[test]
fn stats_cannot_write_names_path_and_error() {
    let dir = TempDir::new("nowrite");
    let path = dir.0.join("missing").join("r.txt");
    let p = path.to_str().unwrap();
    for val in [p.to_string(), format!("json:{p}")] {
        let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", &val)]);
        out.assert_ok();
        assert_one_line_about(&out, p, ": no such file or directory");
        assert!(!out.stderr.contains("errno"), "{}", out.describe());
    }
}

/// The start-up error for LWKT_STATS and LWKT_DEBUG lists `0` among the
/// accepted forms (it is accepted: off).
#[test]
fn bad_values_list_zero_among_forms() {
    for var in ["LWKT_STATS", "LWKT_DEBUG"] {
        let out = run_prog("debug_modes", &["plain"], &[(var, "bogus")]);
        assert_eq!(out.code(), Some(2), "{}", out.describe());
        let forms = out.stderr.split("accepted: ").nth(1).unwrap_or("").trim();
        let listed: Vec<&str> = forms
            .split([',', ';'])
            .flat_map(|f| f.split(" or "))
            .map(str::trim)
            .collect();
        assert!(
            listed.contains(&"0"),
            "{var}: 0 is not among the forms {listed:?}: {}",
            out.describe()
        );
        let out = run_prog("debug_modes", &["plain"], &[(var, "0")]);
        out.assert_ok();
        assert!(out.stderr.is_empty(), "{var}=0: {}", out.describe());
    }
}

/// Four processes sharing one `json:` path and exiting together leave four
/// whole JSON lines, each its own process's report, in 100 of 100 runs.
#[test]
fn stats_json_lines_from_four_processes_stay_whole() {
    let dir = TempDir::new("four");
    let tokens = 150;
    for run_no in 0..100 {
        let path = dir.0.join(format!("run{run_no}.json"));
        let val = format!("json:{}", path.display());
        let out = run_prog(
            "stats_report",
            &["four", &tokens.to_string()],
            &[("LWKT_STATS", &val)],
        );
        out.assert_ok();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let reports = parse_json_lines(&text);
        assert_eq!(
            reports.len(),
            4,
            "run {run_no}: four reports expected:\n{text}"
        );
        let mut pids = Vec::new();
        let mut children = Vec::new();
        for r in &reports {
            assert_eq!(r.program, "stats_report", "run {run_no}");
            assert_eq!(r.tokens.len(), tokens, "run {run_no}: {r:?}");
            let child = r.tokens[0].name.split('_').next().unwrap().to_string();
            assert!(
                r.tokens
                    .iter()
                    .all(|t| t.name.starts_with(&format!("{child}_")) && t.excl == 1),
                "run {run_no}: a report mixes processes: {r:?}"
            );
            pids.push(r.pid);
            children.push(child);
        }
        pids.sort();
        pids.dedup();
        children.sort();
        assert_eq!(pids.len(), 4, "run {run_no}: pids {pids:?}");
        assert_eq!(children, ["c0", "c1", "c2", "c3"], "run {run_no}");
    }
}

/// A FIFO as the report path: refused with one line, never blocked on
/// (with no reader) and never written (with one).
#[test]
fn stats_fifo_refused() {
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let p = fifo.to_str().unwrap();

    // No reader: the program's own 20 s watchdog fails a hang.
    let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", p)]);
    out.assert_ok();
    assert_one_line_about(&out, p, "not a regular file");

    // A reader: nothing may arrive.
    let rd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK) };
    assert!(rd >= 0);
    let val = format!("json:{p}");
    let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", &val)]);
    let mut buf = [0u8; 256];
    let n = unsafe { libc::read(rd, buf.as_mut_ptr().cast(), buf.len()) };
    unsafe { libc::close(rd) };
    out.assert_ok();
    assert!(
        n <= 0,
        "the report was written into the FIFO: {:?}",
        &buf[..n as usize]
    );
    assert_one_line_about(&out, p, "not a regular file");
}

/// A directory or a device as the report path: refused with one line.
#[test]
fn stats_directory_and_device_refused() {
    let dir = TempDir::new("notreg");
    let sub = dir.0.join("sub");
    std::fs::create_dir(&sub).unwrap();
    for p in [sub.to_str().unwrap(), "/dev/null"] {
        let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", p)]);
        out.assert_ok();
        assert_one_line_about(&out, p, "not a regular file");
    }
    assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 0);
}

/// A symbolic link as the report path (one planted in a shared directory)
/// is not followed: refused, and neither its existing target nor a
/// missing one is written.
#[test]
fn stats_symlink_refused() {
    let dir = TempDir::new("link");
    let target = dir.0.join("target");
    std::fs::write(&target, "target\n").unwrap();
    let link = dir.0.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let victim = dir.0.join("victim");
    let dangling = dir.0.join("dangling");
    std::os::unix::fs::symlink(&victim, &dangling).unwrap();
    for l in [&link, &dangling] {
        let p = l.to_str().unwrap();
        let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", p)]);
        out.assert_ok();
        assert_one_line_about(&out, p, "symbolic link");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "target\n");
    assert!(!victim.exists(), "a report created through a dangling link");
}

/// A new report file has mode 0600; an existing one is appended to, never
/// truncated.
#[test]
fn stats_file_is_private_and_appended() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let path = dir.0.join("r.txt");
    let p = path.to_str().unwrap();
    let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", p)]);
    out.assert_ok();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "mode {mode:o}");

    std::fs::write(&path, "previous\n").unwrap();
    let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", p)]);
    out.assert_ok();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("previous\nlwkt statistics for stats_report (pid "),
        "{text}"
    );
    assert_eq!(parse_table(&text).pid, out.pid as u64);
}

/// A relative path is resolved where the process started, not where it
/// is when it exits.
#[test]
fn stats_relative_path_resolved_at_start() {
    let dir = TempDir::new("rel");
    let (a, b) = (dir.0.join("a"), dir.0.join("b"));
    for d in [&a, &b] {
        std::fs::create_dir_all(d.join("rel")).unwrap();
    }
    for (val, file) in [("rel/r.txt", "r.txt"), ("json:rel/r.json", "r.json")] {
        let mut c = command(
            &program("stats_report"),
            &["chdir", b.to_str().unwrap()],
            &[("LWKT_STATS", val)],
        );
        c.current_dir(&a);
        let out = run(c);
        out.assert_ok();
        assert!(
            a.join("rel").join(file).is_file(),
            "{val}: no report where the process started: {}",
            out.describe()
        );
        assert!(
            !b.join("rel").join(file).exists(),
            "{val}: the report went where the process exited"
        );
    }
}

/// `%p` in the path is the pid (a file a process) and `%%` a `%`; another
/// `%` escape is refused at start-up.
#[test]
fn stats_path_expands_pid() {
    let dir = TempDir::new("pct");
    let val = format!("json:{}/r-%p-%%.json", dir.0.display());
    let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    let want = dir.0.join(format!("r-{}-%.json", out.pid));
    let names: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(want.is_file(), "no {}: {names:?}", want.display());
    assert_eq!(names.len(), 1, "{names:?}");
    let r = parse_json_report(&std::fs::read_to_string(&want).unwrap());
    assert_eq!(r.pid, out.pid as u64);

    let bad = format!("{}/r-%d", dir.0.display());
    let out = run_prog("stats_report", &["plain"], &[("LWKT_STATS", &bad)]);
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    assert!(out.stderr.contains("%p"), "{}", out.describe());
}

/// A fork child starts with empty counters: its report has only its own
/// acquisitions, and the parent's only the parent's.
#[test]
fn stats_fork_child_counts_only_its_own() {
    let dir = TempDir::new("fork");
    let path = dir.0.join("r.json");
    let val = format!("json:{}", path.display());
    let out = run_prog("stats_report", &["fork"], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    let child: u64 = number_after(&out.stdout, "child ");
    let reports = parse_json_lines(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(reports.len(), 2, "{reports:#?}");
    let c = reports
        .iter()
        .find(|r| r.pid == child)
        .expect("child's report");
    let p = reports
        .iter()
        .find(|r| r.pid == out.pid as u64)
        .expect("parent's report");
    let names = |r: &Report| {
        r.tokens
            .iter()
            .map(|t| (t.name.clone(), t.excl))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(c), [("rep_C".to_string(), 3)], "child: {c:#?}");
    assert_eq!(names(p), [("rep_P".to_string(), 11)], "parent: {p:#?}");
    assert_eq!(c.threads, 1, "child: {c:#?}");
}

/// More tokens than the table holds: the report says how many tokens and
/// acquisitions it could not show, in both forms.
#[test]
fn stats_full_table_says_what_it_could_not_show() {
    let dir = TempDir::new("full");
    let path = dir.0.join("r.json");
    let val = format!("json:{}", path.display());
    let out = run_prog("stats_report", &["many", "5000"], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    let r = parse_json_report(&std::fs::read_to_string(&path).unwrap());
    let shown = r.tokens.len() as u64;
    let acq: u64 = r.tokens.iter().map(|t| t.excl).sum();
    assert!((4096..5000).contains(&shown), "{shown} tokens shown");
    assert_eq!(
        r.not_shown,
        (5000 - shown, false, 10_000 - acq),
        "shown {shown}"
    );

    let out = run_prog("stats_report", &["many", "5000"], &[("LWKT_STATS", "1")]);
    out.assert_ok();
    let t = parse_table(&out.stderr);
    assert_eq!(t.tokens.len() as u64, shown);
    assert_eq!(t.not_shown, r.not_shown, "{}", out.describe());
}

// ---------------------------------------------------------------------------
// Secure mode (SPEC section 7)
// ---------------------------------------------------------------------------

/// Say on the real stderr (not the test harness's captured output) that a
/// test did not run, and why.
/// Say that `test` is skipped, and why; under CI (which runs as root with
/// every tool installed) a skip is a failure, so that it cannot hide.
fn skipped(test: &str, why: &str) {
    use std::io::Write;
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: would be skipped, and CI is set: {why}"
    );
    let _ = writeln!(std::io::stderr(), "observe: {test}: SKIPPED: {why}");
}

/// Secure mode (set-user-ID, set-group-ID, file capabilities): every LWKT_
/// variable is ignored, and a misuse prints no address. The program is
/// made set-user-ID root and run as nobody through setpriv; this needs the
/// tests to run as root, setpriv, and a file system that honours set-user-ID.
#[test]
fn secure_mode_ignores_variables() {
    let name = "secure_mode_ignores_variables";
    let Some(s) = SecureSetup::new(name) else {
        return;
    };

    // What secure mode must keep away from: a root-owned file, and a
    // directory only root may write.
    let victim = s.dir.0.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let private = s.dir.0.join("private");
    std::fs::create_dir(&private).unwrap();
    set_mode(&private, 0o700);
    let json = format!("json:{}/r.json", private.display());
    let victim_s = victim.to_str().unwrap().to_string();

    for env in [
        &[("LWKT_STATS", victim_s.as_str())][..],
        &[("LWKT_STATS", json.as_str())][..],
        &[("LWKT_STATS", "1")][..],
        &[("LWKT_CHAOS", "x")][..],
        &[("LWKT_CHAOS", "1")][..],
        &[("LWKT_DEBUG", "1")][..],
        &[("LWKT_DEBUG", "hold_ms=x")][..],
        &[("LWKT_CATCHALL", "bogus")][..],
    ] {
        let out = s.run("run", env);
        let ctx = format!("{env:?}: {}", out.describe());
        out.assert_ok();
        assert!(out.stdout.contains("run: ok"), "{ctx}");
        assert!(out.stderr.is_empty(), "printed something: {ctx}");
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(
        std::fs::read_dir(&private).unwrap().count(),
        0,
        "a file was created in the root-only directory"
    );

    let out = s.run("misuse", &[("LWKT_DEBUG", "1")]);
    out.assert_aborted();
    let ctx = out.describe();
    assert!(
        out.stderr
            .contains("lwkt: lwkt_reltoken(unnamed token): the thread holds no token"),
        "{ctx}"
    );
    assert!(
        !out.stderr.contains("0x"),
        "an address in secure mode: {ctx}"
    );
    assert!(!out.stderr.contains("backtrace"), "{ctx}");
    assert_eq!(out.stderr.lines().count(), 1, "{ctx}");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// secure_env.c installed set-user-ID root, with its own copy of
/// liblwkt.so next to it (so that `nobody` can reach both whatever the
/// permissions of the checkout), and setpriv to run it as nobody.
struct SecureSetup {
    dir: TempDir,
    exe: PathBuf,
    setpriv: PathBuf,
}

impl SecureSetup {
    /// None (having said why) when this environment cannot run the test.
    fn new(test: &str) -> Option<SecureSetup> {
        if unsafe { libc::geteuid() } != 0 {
            skipped(
                test,
                "the tests do not run as root (needed to install a set-user-ID program)",
            );
            return None;
        }
        let Ok(setpriv) = which("setpriv") else {
            skipped(test, "setpriv (util-linux) is not installed");
            return None;
        };
        // /tmp is often mounted nosuid; then try the build directory.
        let dir = [TempDir::new("secure"), TempDir::in_dir(bin_dir(), "secure")]
            .into_iter()
            .find(|d| !nosuid(&d.0));
        let Some(dir) = dir else {
            skipped(
                test,
                "both the temporary and the build directory are mounted nosuid",
            );
            return None;
        };
        set_mode(&dir.0, 0o755);
        // Under both names: -llwkt links liblwkt.so, and the program then
        // asks for the SONAME, liblwkt.so.0.
        std::fs::copy(lib_path(), dir.0.join("liblwkt.so")).unwrap();
        std::fs::copy(lib_path(), dir.0.join("liblwkt.so.0")).unwrap();
        let exe = dir.0.join("secure_env");
        let root = Path::new(MANIFEST_DIR);
        let mut cmd = Command::new(CC);
        cmd.args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .arg("-I")
            .arg(root.join("include"))
            .arg("-I")
            .arg(root.join("c-tests/include"))
            .arg(root.join("c-tests/observe/secure_env.c"))
            .arg(format!("-L{}", dir.0.display()))
            .arg("-llwkt")
            .arg(format!("-Wl,-rpath,{}", dir.0.display()));
        common::build_to(&exe, cmd, "compiling secure_env.c");
        set_mode(&exe, 0o4755);
        let s = SecureSetup { dir, exe, setpriv };
        let probe = s.run("run", &[]);
        // A program that did not even start is a broken test, not a
        // machine without secure mode.
        assert!(
            probe.stdout.contains("secure="),
            "the set-user-ID program did not run: {}",
            probe.describe()
        );
        if !probe.stdout.contains("secure=1 ") {
            skipped(
                test,
                &format!(
                    "the set-user-ID program did not run in secure mode here \
                     (no_new_privs?): {}",
                    probe.describe()
                ),
            );
            return None;
        }
        Some(s)
    }

    /// The program, run as nobody (uid and gid 65534, no groups).
    fn run(&self, mode: &str, env: &[(&str, &str)]) -> Outcome {
        let mut c = command(&self.setpriv, &[], env);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&self.exe)
            .arg(mode);
        run(c)
    }
}

/// Is `dir` on a file system mounted nosuid?
fn nosuid(dir: &Path) -> bool {
    let c = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    r != 0 || st.f_flag & libc::ST_NOSUID != 0
}

// ---------------------------------------------------------------------------
// Lost-token detection (SPEC S8)
// ---------------------------------------------------------------------------

/// No loss when nobody took the token while released; a loss for exactly
/// the token that was taken (lost_precise.c checks it with lwkt_mark /
/// lwkt_lost_since / lwkt_token_lost_since); and the statistics count the
/// same losses.
#[test]
fn lost_token_detection_is_precise() {
    let dir = TempDir::new("lost");
    let path = dir.0.join("report.json");
    let val = format!("json:{}", path.display());
    let out = run_prog("lost_precise", &[], &[("LWKT_STATS", &val)]);
    out.assert_ok();
    assert!(
        out.stdout.contains("lost_precise: ok"),
        "{}",
        out.describe()
    );
    let r = parse_json_report(&std::fs::read_to_string(&path).unwrap());
    // T2 was taken in phase 2, T1 in phase 3, once each; T3 never used.
    assert_eq!(r.token("lost_T1").lost, 1, "{r:#?}");
    assert_eq!(r.token("lost_T2").lost, 1, "{r:#?}");
    assert!(r.tokens.iter().all(|t| t.name != "lost_T3"), "{r:#?}");
    // And it works without statistics too.
    let plain = run_prog("lost_precise", &[], &[]);
    plain.assert_ok();
}

// ---------------------------------------------------------------------------
// LWKT_DEBUG
// ---------------------------------------------------------------------------

/// The lines of `text` after the one that contains `marker`.
fn lines_after<'a>(text: &'a str, marker: &str) -> Vec<&'a str> {
    let mut lines = text.lines();
    for l in lines.by_ref() {
        if l.contains(marker) {
            return lines.collect();
        }
    }
    panic!("no line with {marker:?} in:\n{text}")
}

/// A misuse under LWKT_DEBUG=1: the one-line message (with the held
/// references), then `lwkt: backtrace:` and the stack down to the
/// program's function; without LWKT_DEBUG, no backtrace.
#[test]
fn debug_misuse_has_backtrace() {
    let msg = "lwkt: lwkt_reltoken(dbg_A): not the thread's most recent reference (that is dbg_B)";
    let held = "holding: dbg_A [excl], dbg_B [excl]; aborting";

    let out = run_prog("debug_modes", &["misuse"], &[("LWKT_DEBUG", "1")]);
    out.assert_aborted();
    let ctx = out.describe();
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with(msg))
        .unwrap_or_else(|| panic!("no misuse line: {ctx}"));
    assert!(
        line.contains(held),
        "misuse line lacks the held references: {ctx}"
    );
    let after = lines_after(&out.stderr, msg);
    assert_eq!(after.first(), Some(&"lwkt: backtrace:"), "{ctx}");
    let frames = &after[1..];
    assert!(frames.len() >= 3, "backtrace too short: {ctx}");
    assert!(
        frames.iter().any(|f| f.contains("misuse_here")),
        "backtrace lacks the program's misuse_here: {ctx}"
    );
    assert!(
        frames.iter().any(|f| f.contains("(main+")),
        "backtrace lacks main: {ctx}"
    );

    let plain = run_prog("debug_modes", &["misuse"], &[]);
    plain.assert_aborted();
    assert!(
        plain
            .stderr
            .lines()
            .any(|l| l.starts_with(msg) && l.contains(held)),
        "{}",
        plain.describe()
    );
    assert!(
        !plain.stderr.contains("backtrace"),
        "backtrace without LWKT_DEBUG: {}",
        plain.describe()
    );
}

/// LWKT_DEBUG announces itself at start-up, as its first line: which
/// blocking calls are caught (symbol hooks only, or with the catch-all where
/// the kernel has it; symbol hooks only under LWKT_CATCHALL=0) and whether
/// chaos is on. Without LWKT_DEBUG, nothing is printed.
#[test]
fn debug_announces_mode() {
    let hooks_only = "blocking calls caught by symbol hooks only";
    let with_catchall = "blocking calls caught by symbol hooks and the catch-all";
    for (env, modes, extra, not) in [
        (
            &[("LWKT_DEBUG", "1")][..],
            &[hooks_only, with_catchall][..],
            "",
            "chaos on",
        ),
        (
            &[("LWKT_DEBUG", "1"), ("LWKT_CATCHALL", "0")][..],
            &[hooks_only][..],
            "(LWKT_CATCHALL=0)",
            "chaos on",
        ),
        (
            &[("LWKT_DEBUG", "1"), ("LWKT_CHAOS", "3")][..],
            &[hooks_only, with_catchall][..],
            "; chaos on",
            "(LWKT_CATCHALL=0)",
        ),
    ] {
        let out = run_prog("debug_modes", &["plain"], env);
        out.assert_ok();
        let ctx = out.describe();
        assert!(out.stdout.contains("plain: ok"), "{ctx}");
        let first = out.stderr.lines().next().unwrap_or_else(|| panic!("{ctx}"));
        let head = format!("lwkt: debug on (pid {}): ", out.pid);
        assert!(
            first.starts_with(&head) && modes.iter().any(|m| first[head.len()..].starts_with(m)),
            "{env:?}: first line {first:?}, want {head:?} and one of {modes:?}"
        );
        assert!(first.contains(extra), "{env:?}: {first:?} lacks {extra:?}");
        assert!(!first.contains(not), "{env:?}: {first:?} has {not:?}");
        assert_eq!(out.stderr.lines().count(), 1, "{ctx}");
    }
    let out = run_prog("debug_modes", &["plain"], &[("LWKT_DEBUG", "0")]);
    out.assert_ok();
    assert!(out.stderr.is_empty(), "{}", out.describe());
    let out = run_prog("debug_modes", &["plain"], &[]);
    out.assert_ok();
    assert!(out.stderr.is_empty(), "{}", out.describe());
}

/// LWKT_DEBUG=hold_ms=N warns about a token held (spinning) longer than N
/// ms without blocking, naming it and the time.
#[test]
fn debug_hold_warning_for_long_hold() {
    let out = run_prog(
        "debug_modes",
        &["hold_long"],
        &[("LWKT_DEBUG", "hold_ms=100")],
    );
    out.assert_ok();
    let ctx = out.describe();
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("lwkt: warning:"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning expected: {ctx}");
    let w = warnings[0];
    assert!(
        w.starts_with("lwkt: warning: dbg_H held ")
            && w.contains(" ms without blocking by thread "),
        "{ctx}"
    );
    assert!(w.ends_with("(LWKT_DEBUG=hold_ms=100)"), "{ctx}");
    // It spun 300 ms: the hold it reports is at least that.
    assert!(number_after(w, "dbg_H held ") >= 300, "{ctx}");

    // Without a threshold, no warning.
    let out = run_prog("debug_modes", &["hold_long"], &[("LWKT_DEBUG", "1")]);
    out.assert_ok();
    assert!(!out.stderr.contains("warning"), "{}", out.describe());
}

/// Short holds, and a long hold that blocks (the token is released while
/// the holder sleeps 1.2 s), do not warn. (500 ms: far above a brief hold
/// even when a loaded machine preempts the holder.)
#[test]
fn debug_hold_no_warning_for_short_holds() {
    let out = run_prog(
        "debug_modes",
        &["hold_short"],
        &[("LWKT_DEBUG", "hold_ms=500")],
    );
    out.assert_ok();
    assert!(
        out.stdout.contains("hold_short: ok") && !out.stderr.contains("warning"),
        "{}",
        out.describe()
    );
}

/// Exclusive on the thread's own shared hold under LWKT_DEBUG=1: a warning
/// naming where the shared hold was taken, before the abort.
#[test]
fn debug_excl_on_own_shared_says_where() {
    let warn = "lwkt: warning: dbg_S requested exclusively by thread ";
    let misuse = "lwkt: lwkt_gettoken(dbg_S): exclusive request on a token the thread holds shared";

    let out = run_prog("debug_modes", &["excl_shared"], &[("LWKT_DEBUG", "1")]);
    out.assert_aborted();
    let ctx = out.describe();
    let lines: Vec<&str> = out.stderr.lines().collect();
    let wi = lines
        .iter()
        .position(|l| l.starts_with(warn))
        .unwrap_or_else(|| panic!("no warning: {ctx}"));
    let mi = lines
        .iter()
        .position(|l| l.starts_with(misuse))
        .unwrap_or_else(|| panic!("no misuse line: {ctx}"));
    assert!(wi < mi, "the warning must come before the abort: {ctx}");
    let w = lines[wi];
    assert!(w.contains("which holds it shared, taken at "), "{ctx}");
    let at = &w[w.find("taken at ").unwrap()..];
    assert!(
        at.contains("take_shared_here"),
        "the warning does not name take_shared_here: {ctx}"
    );
    assert!(
        lines[mi + 1..]
            .iter()
            .any(|l| l.contains("take_excl_there")),
        "the backtrace does not show take_excl_there: {ctx}"
    );

    let plain = run_prog("debug_modes", &["excl_shared"], &[]);
    plain.assert_aborted();
    assert!(plain.stderr.contains(misuse), "{}", plain.describe());
    assert!(!plain.stderr.contains("warning"), "{}", plain.describe());
}

// ---------------------------------------------------------------------------
// LWKT_CHAOS
// ---------------------------------------------------------------------------

/// A program that forgets to re-validate after a hooked call that does not
/// block: fine without chaos, caught by LWKT_CHAOS.
#[test]
fn chaos_catches_missing_revalidation() {
    let out = run_prog("chaos_revalidate", &["buggy"], &[]);
    out.assert_ok();
    assert!(
        out.stdout.contains("buggy: ok, 5000 iterations"),
        "{}",
        out.describe()
    );

    for seed in ["1", "4242"] {
        // Until a stale read, or the program's 20 s deadline (exit 3).
        let out = run_prog(
            "chaos_revalidate",
            &["buggy", "1000000000"],
            &[("LWKT_CHAOS", seed)],
        );
        assert!(
            out.code() == Some(1) && out.stderr.contains("stale read at iteration"),
            "LWKT_CHAOS={seed} did not catch the missing re-validation: {}",
            out.describe()
        );
    }
}

/// The same program, re-validating with lwkt_token_lost_since: correct
/// under chaos (same seeds), and chaos made it re-read; without chaos it
/// never had to.
#[test]
fn chaos_keeps_correct_program_working() {
    for seed in ["1", "4242"] {
        let out = run_prog("chaos_revalidate", &["correct"], &[("LWKT_CHAOS", seed)]);
        out.assert_ok();
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("correct: ok, 5000 iterations, "))
            .unwrap_or_else(|| panic!("{}", out.describe()));
        assert!(
            number_after(line, "iterations, ") > 0,
            "chaos never made it re-read: {line}"
        );
    }
    let out = run_prog("chaos_revalidate", &["correct"], &[]);
    out.assert_ok();
    assert!(
        out.stdout
            .contains("correct: ok, 5000 iterations, 0 re-reads"),
        "{}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// Malformed LWKT_ values
// ---------------------------------------------------------------------------

/// Each bad value stops the program at start-up: exit status 2, one line
/// naming the variable, the value and the accepted forms; the program's own
/// code never runs.
#[test]
fn bad_values_stop_at_startup() {
    let cases: &[(&str, &str, &str)] = &[
        ("LWKT_STATS", "yes", "json:PATH"),
        ("LWKT_STATS", "json:", "json:PATH"),
        ("LWKT_STATS", "2", "json:PATH"),
        ("LWKT_STATS", "/tmp/r%d", "%p"),
        ("LWKT_STATS", "json:/tmp/r%", "%p"),
        ("LWKT_DEBUG", "hold_ms=x", "hold_ms=N"),
        ("LWKT_DEBUG", "hold_ms=0", "hold_ms=N"),
        ("LWKT_DEBUG", "hold_ms=", "hold_ms=N"),
        ("LWKT_DEBUG", "2", "hold_ms=N"),
        ("LWKT_DEBUG", "1,verbose", "hold_ms=N"),
        ("LWKT_CHAOS", "abc", "seed"),
        ("LWKT_CHAOS", "-1", "seed"),
        ("LWKT_CHAOS", "12x", "seed"),
        ("LWKT_CATCHALL", "2", "0"),
        ("LWKT_CATCHALL", "yes", "0"),
        ("LWKT_CATCHALL", "SUD", "sud"),
    ];
    for &(var, val, form) in cases {
        let out = run_prog("debug_modes", &["plain"], &[(var, val)]);
        let ctx = out.describe();
        assert_eq!(out.code(), Some(2), "{var}={val}: {ctx}");
        assert!(out.stdout.is_empty(), "{var}={val}: the program ran: {ctx}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{var}={val}: one line expected: {ctx}");
        let l = lines[0];
        assert!(l.contains(&format!("{var}={val}")), "{var}={val}: {ctx}");
        assert!(l.contains("accepted: "), "{var}={val}: {ctx}");
        let forms = &l[l.find("accepted: ").unwrap()..];
        assert!(
            forms.contains(form),
            "{var}={val}: forms lack {form:?}: {ctx}"
        );
    }

    // Also when preloaded into a program that does not link lwkt.
    if let Ok(t) = which("true") {
        let mut c = command(&t, &[], &[("LWKT_CHAOS", "abc")]);
        c.env("LD_PRELOAD", lib_path());
        let out = run(c);
        assert_eq!(out.code(), Some(2), "{}", out.describe());
        assert!(out.stderr.contains("LWKT_CHAOS=abc"), "{}", out.describe());
    }
}

fn which(prog: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(prog))
                .find(|f| f.is_file())
        })
        .ok_or(())
}

/// Every accepted form runs the program normally.
#[test]
fn good_values_run_normally() {
    let dir = TempDir::new("good");
    let file = dir.0.join("report.txt");
    let json = format!("json:{}", dir.0.join("report.json").display());
    let cases: &[(&str, &str)] = &[
        ("LWKT_STATS", "0"),
        ("LWKT_STATS", "1"),
        ("LWKT_STATS", file.to_str().unwrap()),
        ("LWKT_STATS", &json),
        ("LWKT_DEBUG", "0"),
        ("LWKT_DEBUG", "1"),
        ("LWKT_DEBUG", "hold_ms=5"),
        ("LWKT_DEBUG", "1,hold_ms=5"),
        ("LWKT_CHAOS", "0"),
        ("LWKT_CHAOS", "7"),
        ("LWKT_CATCHALL", "0"),
        ("LWKT_CATCHALL", "1"),
        ("LWKT_CATCHALL", "sud"),
    ];
    for &(var, val) in cases {
        let out = run_prog("debug_modes", &["plain"], &[(var, val)]);
        let ctx = out.describe();
        assert_eq!(out.code(), Some(0), "{var}={val}: {ctx}");
        assert!(out.stdout.contains("plain: ok"), "{var}={val}: {ctx}");
        assert!(!out.stderr.contains("not understood"), "{var}={val}: {ctx}");
    }
    assert!(file.is_file(), "LWKT_STATS=PATH wrote no file");
}
