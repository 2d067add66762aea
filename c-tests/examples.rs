//! The example programs of `examples/` (see examples/README.md), built as
//! a user builds them and run.
//!
//! Each example checks its own result and exits with status 1 when it is
//! wrong. This driver compiles each one with the C compiler build.rs found
//! (`-Wall -Wextra -Werror`, as C11 with `-pedantic` and as GNU C11),
//! against `include/` and the liblwkt.so of this test's profile, runs it
//! with a deadline, and checks its exit status and its summary line. The
//! command lines that examples/README.md and the examples' own comments
//! give are run verbatim too.
//!
//! Each test can fail: the examples are also built with their key line
//! broken (the re-validation dropped, the token replaced by a mutex), and
//! those builds must fail their own checks.

mod common;

use common::{lib_dir, Outcome, CC, MANIFEST_DIR};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Longer than producer_consumer's own watchdog (60 s), so that its
/// clearer message wins. A correct run takes well under a second.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

fn root() -> &'static Path {
    Path::new(MANIFEST_DIR)
}

/// Builds go to target/<profile>/examples/.
fn out_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = lib_dir().join("examples");
        std::fs::create_dir_all(&dir).expect("create target/<profile>/examples");
        dir
    })
}

// ---------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------

/// The two ways every example must compile cleanly.
const STANDARDS: [&[&str]; 2] = [&["-std=c11", "-pedantic"], &["-std=gnu11"]];

/// How an example is linked.
#[derive(Clone, Copy)]
enum Kind {
    /// A program linked with -llwkt.
    Program,
    /// A shared object linked with -llwkt.
    Plugin,
    /// A program that does not link lwkt (the plugin host).
    Host,
}

/// Compile `src` into `output` with `flags`; warnings are errors when
/// `strict`.
fn compile(src: &Path, output: &Path, kind: Kind, flags: &[&str], strict: bool) {
    let libdir = lib_dir();
    let mut cmd = Command::new(CC);
    cmd.args(flags)
        .args(["-Wall", "-Wextra", "-pthread"])
        .arg(format!("-I{}", root().join("include").display()))
        .arg(format!("-I{}", root().join("examples/plugin").display()));
    if strict {
        cmd.arg("-Werror");
    }
    if matches!(kind, Kind::Plugin) {
        cmd.args(["-shared", "-fPIC"]);
    }
    cmd.arg(src);
    match kind {
        Kind::Program | Kind::Plugin => {
            cmd.arg(format!("-L{}", libdir.display()))
                .arg("-llwkt")
                .arg(format!("-Wl,-rpath,{}", libdir.display()));
        }
        Kind::Host => {
            cmd.arg("-ldl");
        }
    }
    let what = format!("compiling {}", src.display());
    common::build_to(output, cmd, &what);
}

/// examples/<rel>, built strictly as C11 (once per test process), e.g.
/// `example("cache_walk.c", Kind::Program)`.
fn example(rel: &str, kind: Kind) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    // Held while compiling: two tests needing one example compile it once.
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(rel) {
        return p.clone();
    }
    let out = out_dir().join(output_name(rel, kind));
    compile(
        &root().join("examples").join(rel),
        &out,
        kind,
        STANDARDS[0],
        true,
    );
    built.insert(rel.to_string(), out.clone());
    out
}

/// "plugin/counter_plugin.c" -> "libcounter_plugin.so", "cache_walk.c" ->
/// "cache_walk".
fn output_name(rel: &str, kind: Kind) -> String {
    let stem = Path::new(rel).file_stem().unwrap().to_str().unwrap();
    match kind {
        Kind::Plugin => format!("lib{stem}.so"),
        Kind::Host => "plugin_host".to_string(),
        _ => stem.to_string(),
    }
}

/// examples/<rel> with `from` (which must occur in it) replaced by `to`,
/// built (warnings allowed) under the name `name`: an example broken on
/// purpose, to show that its checks catch the break.
fn broken_example(rel: &str, name: &str, edits: &[(&str, &str)]) -> PathBuf {
    let src_path = root().join("examples").join(rel);
    let mut text = std::fs::read_to_string(&src_path).unwrap();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "{} no longer contains {from:?}: update this test",
            src_path.display()
        );
        text = text.replace(from, to);
    }
    let dir = out_dir().join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, text).unwrap();
    let exe = dir.join(name);
    compile(&src, &exe, Kind::Program, STANDARDS[0], false);
    exe
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/// The rest of a run's judgement is `common::Outcome`'s.
impl Outcome {
    /// Exit status 0, and stdout contains every one of `expected`.
    fn assert_ok_saying(&self, expected: &[&str]) -> &Self {
        self.assert_ok();
        for e in expected {
            assert!(
                self.stdout.contains(e),
                "expected {e:?} in stdout: {}",
                self.describe()
            );
        }
        self
    }
}

/// Run `exe args` with no `LWKT_` variable and no LD_PRELOAD inherited,
/// then `env` set.
fn run(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(exe);
    cmd.args(args);
    common::without_inherited_lwkt(&mut cmd).envs(env.iter().copied());
    let what = format!("{cmd:?}");
    common::run_named(cmd, what, RUN_TIMEOUT)
}

// ---------------------------------------------------------------------------
// Every example compiles as it is
// ---------------------------------------------------------------------------

const ALL: [(&str, Kind); 6] = [
    ("list_walk.c", Kind::Program),
    ("guarded.c", Kind::Program),
    ("cache_walk.c", Kind::Program),
    ("producer_consumer.c", Kind::Program),
    ("plugin/counter_plugin.c", Kind::Plugin),
    ("plugin/host.c", Kind::Host),
];

#[test]
fn every_example_compiles_without_warnings_as_c11_and_gnu11() {
    for (i, flags) in STANDARDS.iter().enumerate() {
        for (rel, kind) in ALL {
            let out = out_dir()
                .join(format!("std{i}"))
                .join(output_name(rel, kind));
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            compile(&root().join("examples").join(rel), &out, kind, flags, true);
        }
    }
}

// ---------------------------------------------------------------------------
// guarded (the checkers' example; c-tests/checkers.rs runs it under them)
// ---------------------------------------------------------------------------

const GUARDED_SUMMARY: &str = "guarded: 4000 deposits, total 4000: ok";

#[test]
fn guarded_counts_every_deposit() {
    let exe = example("guarded.c", Kind::Program);
    run(&exe, &[], &[]).assert_ok_saying(&[GUARDED_SUMMARY]);
}

// ---------------------------------------------------------------------------
// list_walk (the program README.md shows)
// ---------------------------------------------------------------------------

const LIST_WALK_SUMMARY: &str = "list_walk: 4 items, sum 100, 1 restart: ok";

#[test]
fn list_walk_restarts_once_and_fills_every_item() {
    let exe = example("list_walk.c", Kind::Program);
    run(&exe, &[], &[]).assert_ok_saying(&[LIST_WALK_SUMMARY]);
    run(&exe, &[], &[("LWKT_CHAOS", "1")]).assert_ok_saying(&[LIST_WALK_SUMMARY]);
}

/// Without the re-validation the walk goes on past the point where the
/// item was added at the head, and never fills it.
#[test]
fn list_walk_without_revalidation_fails() {
    let exe = broken_example(
        "list_walk.c",
        "list_walk_no_revalidation",
        &[(
            "if (lwkt_token_lost_since(&list_token, mark)) {",
            "if (0) {",
        )],
    );
    let out = run(&exe, &[], &[]);
    assert!(
        out.code() == Some(1) && out.stdout.contains("sum 60, 0 restart: WRONG"),
        "the walk without re-validation passed: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// cache_walk
// ---------------------------------------------------------------------------

/// The walk is deterministic: 8 entries, the backend changes the cache
/// during 3 refills, each change costs one restart and one refill more.
const CACHE_WALK_SUMMARY: &str = "11 refills, 3 restarts";

#[test]
fn cache_walk_restarts_exactly_when_the_cache_changed_and_ends_consistent() {
    let exe = example("cache_walk.c", Kind::Program);
    run(&exe, &[], &[]).assert_ok_saying(&[CACHE_WALK_SUMMARY, "sum 132001: consistent"]);
}

/// Tokens given away at every hooked call: only the backend's changes are
/// losses, so the figures stay the same.
#[test]
fn cache_walk_is_unchanged_under_chaos() {
    let exe = example("cache_walk.c", Kind::Program);
    for seed in ["1", "2", "3"] {
        run(&exe, &[], &[("LWKT_CHAOS", seed)])
            .assert_ok_saying(&[CACHE_WALK_SUMMARY, "consistent"]);
    }
}

/// A walker that ignores the loss stores an out-of-date value, misses the
/// entry added at the head and follows a freed entry: its own check (or
/// the freed memory) must fail it.
#[test]
fn cache_walk_without_revalidation_fails() {
    let exe = broken_example(
        "cache_walk.c",
        "cache_walk_no_revalidation",
        &[(
            "if (lwkt_token_lost_since(&cache_token, mark)) {",
            "if (0) {",
        )],
    );
    let out = run(&exe, &[], &[]);
    assert!(
        !out.timed_out && !out.status.success(),
        "the walk without re-validation passed: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// producer_consumer
// ---------------------------------------------------------------------------

const PRODUCER_CONSUMER_SUMMARY: [&str; 2] = [
    "3 consumers asleep holding queue_token; the producers can take it",
    "6000 items from 3 producers to 3 consumers, each consumed exactly once",
];

#[test]
fn producer_consumer_consumes_every_item_once() {
    let exe = example("producer_consumer.c", Kind::Program);
    run(&exe, &[], &[]).assert_ok_saying(&PRODUCER_CONSUMER_SUMMARY);
}

/// pthread_cond_wait is a hooked symbol: the example needs no catch-all;
/// and it stays right when tokens are given away at every hooked call.
#[test]
fn producer_consumer_without_catchall_and_under_chaos() {
    let exe = example("producer_consumer.c", Kind::Program);
    run(&exe, &[], &[("LWKT_CATCHALL", "0")]).assert_ok_saying(&PRODUCER_CONSUMER_SUMMARY);
    for seed in ["1", "2"] {
        run(&exe, &[], &[("LWKT_CHAOS", seed)]).assert_ok_saying(&PRODUCER_CONSUMER_SUMMARY);
    }
}

/// The same program with a mutex in place of queue_token: a consumer waits
/// on the condition variable holding the queue's mutex, and nobody can
/// reach the queue to wake it. The example's watchdog (shortened to 2 s
/// here) must report the deadlock.
#[test]
fn producer_consumer_with_a_mutex_instead_of_the_token_deadlocks() {
    let exe = broken_example(
        "producer_consumer.c",
        "producer_consumer_mutex",
        &[
            (
                "static struct lwkt_token queue_token = LWKT_TOKEN_INITIALIZER(queue_token);",
                "static struct lwkt_token queue_token = LWKT_TOKEN_INITIALIZER(queue_token);\n\
                 static pthread_mutex_t queue_mutex = PTHREAD_MUTEX_INITIALIZER;",
            ),
            (
                "lwkt_gettoken(&queue_token);",
                "pthread_mutex_lock(&queue_mutex);",
            ),
            (
                "lwkt_reltoken(&queue_token);",
                "pthread_mutex_unlock(&queue_mutex);",
            ),
            ("alarm(60);", "alarm(2);"),
        ],
    );
    let out = run(&exe, &[], &[]);
    assert!(
        out.code() == Some(1) && out.stderr.contains("deadlock"),
        "expected the watchdog to report a deadlock: {}",
        out.describe()
    );
}

// ---------------------------------------------------------------------------
// plugin
// ---------------------------------------------------------------------------

const PLUGIN_SUMMARY: &str =
    "4 threads counted 16 names 50 times each through the plugin: every count right";

#[test]
fn plugin_counts_right_from_several_threads_of_a_host_without_lwkt() {
    let plugin = example("plugin/counter_plugin.c", Kind::Plugin);
    let host = example("plugin/host.c", Kind::Host);
    let plugin = plugin.to_str().unwrap();
    // The host refuses to run (status 2) if lwkt is in it before dlopen.
    run(&host, &[plugin], &[]).assert_ok_saying(&[PLUGIN_SUMMARY]);
    // A plugin's libc calls do not pass through the library's symbol
    // hooks: without the catch-all its token stays held across the sleep
    // that makes a counter, so no counter is ever made twice.
    run(&host, &[plugin], &[("LWKT_CATCHALL", "0")])
        .assert_ok_saying(&[PLUGIN_SUMMARY, "every count right; 0 counters made twice"]);
}

// ---------------------------------------------------------------------------
// The command lines the documentation gives
// ---------------------------------------------------------------------------

/// A directory that looks like the repository root after `cargo run
/// --release` (include/, examples/, target/release/liblwkt.so and its
/// SONAME link, links to
/// the real ones), with a `cc` that is the test's C compiler first in PATH.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = out_dir().join(format!("scratch-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("target")).unwrap();
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let link = |to: &Path, at: &str| std::os::unix::fs::symlink(to, dir.join(at)).unwrap();
        link(&root().join("include"), "include");
        link(&root().join("examples"), "examples");
        link(lib_dir(), "target/release");
        link(Path::new(CC), "bin/cc");
        Scratch(dir)
    }

    /// Run `script` with `sh -e` in the directory; its output.
    fn run(&self, script: &str) -> Outcome {
        let path = format!(
            "{}:{}",
            self.0.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-e", "-x", "-c", script])
            .current_dir(&self.0)
            .env("PATH", path)
            // Like a shell started in the directory (the commands use $PWD).
            .env("PWD", &self.0);
        common::without_inherited_lwkt(&mut cmd);
        let what = format!("sh -c {script:?} in {}", self.0.display());
        common::run_named(cmd, what, RUN_TIMEOUT)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The ```sh blocks of `markdown`, without their `cargo` lines (the test
/// has built the library already).
fn shell_blocks(markdown: &str) -> String {
    let mut script = String::new();
    let mut inside = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            inside = line == "```sh";
        } else if inside && !line.trim_start().starts_with("cargo ") {
            script.push_str(line);
            script.push('\n');
        }
    }
    script
}

/// The command in a source file's first comment: the lines indented under
/// "... from the repository root ...:" (` *   cc ...`), with their `\`
/// continuations.
fn header_command(source: &str) -> String {
    let mut lines = source
        .lines()
        .skip_while(|l| !l.contains("from the repository root"));
    assert!(lines.next().is_some(), "no build command in the header");
    let mut command = String::new();
    for line in lines {
        match line.strip_prefix(" *  ") {
            Some(rest) => {
                command.push_str(rest.trim_start());
                command.push('\n');
            }
            None => break,
        }
    }
    assert!(!command.is_empty(), "no build command in the header");
    command
}

#[test]
fn the_readme_commands_build_and_run_every_example() {
    let readme = std::fs::read_to_string(root().join("examples/README.md")).unwrap();
    let script = shell_blocks(&readme);
    assert!(
        script.contains("./plugin_host"),
        "no commands found in:\n{readme}"
    );
    let out = Scratch::new("readme").run(&script);
    out.assert_ok_saying(&[
        LIST_WALK_SUMMARY,
        CACHE_WALK_SUMMARY,
        PRODUCER_CONSUMER_SUMMARY[1],
        PLUGIN_SUMMARY,
        GUARDED_SUMMARY,
    ]);
}

#[test]
fn the_commands_in_the_examples_comments_build_and_run_them() {
    let mut script = String::new();
    for (rel, _) in ALL {
        let source = std::fs::read_to_string(root().join("examples").join(rel)).unwrap();
        script.push_str(&header_command(&source));
    }
    let out = Scratch::new("headers").run(&script);
    out.assert_ok_saying(&[
        LIST_WALK_SUMMARY,
        CACHE_WALK_SUMMARY,
        PRODUCER_CONSUMER_SUMMARY[1],
        PLUGIN_SUMMARY,
        GUARDED_SUMMARY,
    ]);
}

/// README.md shows a complete program, not a fragment: its C block is one
/// of the examples verbatim, so that the tests above compile and run it.
#[test]
fn the_readme_shows_an_example_in_full() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut blocks = readme.split("\n```c\n").skip(1);
    let block = blocks
        .next()
        .and_then(|rest| rest.split("\n```").next())
        .expect("README.md has no ```c block");
    let shown = ALL.iter().find(|(rel, _)| {
        let source = std::fs::read_to_string(root().join("examples").join(rel)).unwrap();
        source.trim_end() == block.trim_end()
    });
    assert!(
        shown.is_some(),
        "README.md's C program is not one of examples/ verbatim (it should show \
         examples/list_walk.c in full):\n{block}"
    );
}
