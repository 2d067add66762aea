//! The installed product (SPEC sections 3, 5 and 7): the shared object's
//! SONAME and `-z nodelete` (a host that dlclose()s it does not crash),
//! `scripts/install` into a prefix and under DESTDIR, a program built with
//! `pkg-config --cflags --libs lwkt`, the installed `lwkt-run`, `--uninstall`
//! leaving the prefix as it was, and the man pages (lint-clean, rendered,
//! naming every function of the header).
//!
//! The install runs with `--from target/<profile>` (the library and the
//! launcher this test build made), so no release build happens here.
//!
//! mandoc and pkg-config are needed: without them these tests print a
//! skip line and pass, except under CI (the `CI` variable set), where a
//! missing tool fails them.

mod common;

use common::{lib_dir, lib_path, CC, MANIFEST_DIR};
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const LWKT_RUN: &str = env!("CARGO_BIN_EXE_lwkt-run");
const TIMEOUT: Duration = Duration::from_secs(60);

fn soname() -> String {
    format!("liblwkt.so.{}", env!("CARGO_PKG_VERSION_MAJOR"))
}

// ---------------------------------------------------------------------------
// Tools and scratch directories
// ---------------------------------------------------------------------------

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Is `tool` installed? If not: fail under CI, otherwise say the test is
/// skipped and let it pass.
fn need(tool: &str, package: &str, test: &str) -> bool {
    if have(tool) {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {tool} is not installed, and CI is set (apt-get install {package})"
    );
    println!("{test}: SKIPPED: {tool} is not installed (apt-get install {package})");
    false
}

/// An empty scratch directory for one test, removed when it is dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = lib_dir()
            .join("install-tests")
            .join(format!("{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn run(mut cmd: Command) -> common::Captured {
    common::no_core_files(&mut cmd);
    let what = format!("{cmd:?}");
    let c = common::run_with_timeout(cmd, None, TIMEOUT);
    assert!(!c.timed_out, "{what}: {}", c.report(TIMEOUT));
    c
}

fn run_ok(cmd: Command) -> common::Captured {
    let what = format!("{cmd:?}");
    let c = run(cmd);
    assert!(c.status.success(), "{what}: {}", c.report(TIMEOUT));
    c
}

/// `scripts/install` with `args`, DESTDIR set or not, from this build.
fn install_cmd(args: &[&str], destdir: Option<&Path>) -> Command {
    let built = lib_dir();
    assert_eq!(
        Path::new(LWKT_RUN).parent(),
        Some(built),
        "lwkt-run and liblwkt.so are not built in the same directory"
    );
    let mut cmd = Command::new("bash");
    cmd.arg(Path::new(MANIFEST_DIR).join("scripts/install"));
    if !args.contains(&"--uninstall") {
        cmd.arg("--from").arg(built);
    }
    cmd.args(args);
    cmd.env_remove("DESTDIR");
    if let Some(d) = destdir {
        cmd.env("DESTDIR", d);
    }
    cmd
}

// ---------------------------------------------------------------------------
// ELF: the dynamic section of a shared object or program (ELF64, little
// endian: x86_64 and aarch64)
// ---------------------------------------------------------------------------

const DT_NEEDED: i64 = 1;
const DT_SONAME: i64 = 14;
const DT_FLAGS_1: i64 = 0x6fff_fffb;
const DF_1_NODELETE: u64 = 0x8;
const SHT_DYNAMIC: u32 = 6;

struct Dynamic {
    /// (tag, value, offset of the value in the file)
    entries: Vec<(i64, u64, usize)>,
    /// The string table the entries' names point into.
    strtab: Vec<u8>,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn dynamic_section(elf: &[u8], what: &Path) -> Dynamic {
    assert!(
        elf.len() > 64 && &elf[..4] == b"\x7fELF" && elf[4] == 2 && elf[5] == 1,
        "{}: not a 64-bit little-endian ELF file",
        what.display()
    );
    let shoff = u64_at(elf, 0x28) as usize;
    let shentsize = u16_at(elf, 0x3a) as usize;
    let shnum = u16_at(elf, 0x3c) as usize;
    let section = |i: usize| shoff + i * shentsize;
    for i in 0..shnum {
        let sh = section(i);
        if u32_at(elf, sh + 4) != SHT_DYNAMIC {
            continue;
        }
        let (off, size) = (
            u64_at(elf, sh + 0x18) as usize,
            u64_at(elf, sh + 0x20) as usize,
        );
        let str_sh = section(u32_at(elf, sh + 0x28) as usize);
        let (soff, ssize) = (
            u64_at(elf, str_sh + 0x18) as usize,
            u64_at(elf, str_sh + 0x20) as usize,
        );
        let entries = (off..off + size)
            .step_by(16)
            .map(|e| (u64_at(elf, e) as i64, u64_at(elf, e + 8), e + 8))
            .take_while(|&(tag, _, _)| tag != 0)
            .collect();
        return Dynamic {
            entries,
            strtab: elf[soff..soff + ssize].to_vec(),
        };
    }
    panic!("{}: no dynamic section", what.display());
}

impl Dynamic {
    fn read(path: &Path) -> Dynamic {
        let elf = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        dynamic_section(&elf, path)
    }

    fn strings(&self, tag: i64) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.0 == tag)
            .map(|e| {
                let s = &self.strtab[e.1 as usize..];
                let end = s.iter().position(|&b| b == 0).unwrap();
                String::from_utf8_lossy(&s[..end]).into_owned()
            })
            .collect()
    }

    fn flags_1(&self) -> u64 {
        self.entries
            .iter()
            .find(|e| e.0 == DT_FLAGS_1)
            .map_or(0, |e| e.1)
    }
}

// ---------------------------------------------------------------------------
// The shared object
// ---------------------------------------------------------------------------

#[test]
fn shared_object_has_soname_and_nodelete() {
    let d = Dynamic::read(&lib_path());
    assert_eq!(d.strings(DT_SONAME), vec![soname()], "SONAME");
    assert!(
        d.flags_1() & DF_1_NODELETE != 0,
        "DT_FLAGS_1 {:#x} lacks DF_1_NODELETE (-z nodelete)",
        d.flags_1()
    );
}

/// dlclose_host, built once per test process.
fn dlclose_host() -> &'static Path {
    static HOST: OnceLock<PathBuf> = OnceLock::new();
    HOST.get_or_init(|| {
        let exe = lib_dir().join("c-tests").join("dlclose_host");
        std::fs::create_dir_all(exe.parent().unwrap()).unwrap();
        let mut cmd = Command::new(CC);
        cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"])
            .arg("-I")
            .arg(Path::new(MANIFEST_DIR).join("include"))
            .arg(Path::new(MANIFEST_DIR).join("c-tests/install/dlclose_host.c"))
            .arg("-ldl");
        common::build_to(&exe, cmd, "building dlclose_host");
        exe
    })
}

/// A host that dlopen()s the library, lets a thread use a token, then
/// dlclose()s it before the thread exits: the library must stay mapped,
/// so the thread's exit (the library's destructor) and what follows run.
#[test]
fn dlclose_keeps_the_library_and_nothing_crashes() {
    for _ in 0..3 {
        let mut cmd = Command::new(dlclose_host());
        cmd.arg(lib_path());
        let out = run(cmd);
        assert!(
            out.status.success()
                && out.stdout.contains("still loaded after dlclose: yes")
                && out.stdout.contains("dlclose_host: ok"),
            "{}",
            out.report(TIMEOUT)
        );
    }
}

/// The same with a copy of the library whose DF_1_NODELETE flag is
/// cleared: it is unloaded and the process crashes, which shows that the
/// test above can fail and that the flag is what saves it. (Should the
/// library one day stay loaded by other means, the control no longer
/// applies and says so.)
#[test]
fn dlclose_without_nodelete_would_crash() {
    let scratch = Scratch::new("dlclose_without_nodelete");
    let mut elf = std::fs::read(lib_path()).unwrap();
    let d = dynamic_section(&elf, &lib_path());
    let &(_, flags, at) = d
        .entries
        .iter()
        .find(|e| e.0 == DT_FLAGS_1)
        .expect("DT_FLAGS_1");
    elf[at..at + 8].copy_from_slice(&(flags & !DF_1_NODELETE).to_le_bytes());
    let copy = scratch.0.join("liblwkt.so");
    std::fs::write(&copy, &elf).unwrap();
    let mut cmd = Command::new(dlclose_host());
    cmd.arg(&copy);
    let out = run(cmd);
    if out.stdout.contains("still loaded after dlclose: yes") {
        println!("dlclose_without_nodelete_would_crash: not applicable, the library stays loaded without DF_1_NODELETE");
        return;
    }
    assert!(
        out.stdout.contains("still loaded after dlclose: no") && out.status.signal().is_some(),
        "without DF_1_NODELETE the library should be unloaded and the host crash: {}",
        out.report(TIMEOUT)
    );
}

// ---------------------------------------------------------------------------
// scripts/install
// ---------------------------------------------------------------------------

/// Every path under `root` (relative), with its kind: "d", "f" and its
/// mode, or "l -> target".
fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let t = m.file_type();
            if t.is_symlink() {
                let to = std::fs::read_link(&p).unwrap();
                out.insert(format!("{rel} l -> {}", to.display()));
            } else if t.is_dir() {
                out.insert(format!("{rel} d"));
                walk(root, &p, out);
            } else {
                let kind = if t.is_file() { "f" } else { "other" };
                out.insert(format!(
                    "{rel} {kind} {:o}",
                    m.permissions().mode() & 0o7777
                ));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// The names lwkt_token(3) gives in its NAME section, besides its own.
fn man3_aliases() -> Vec<String> {
    let page =
        std::fs::read_to_string(Path::new(MANIFEST_DIR).join("docs/man/lwkt_token.3")).unwrap();
    let name = page.split(".Sh NAME\n").nth(1).expect(".Sh NAME");
    let name = &name[..name.find("\n.Sh ").unwrap()];
    name.lines()
        .filter_map(|l| l.strip_prefix(".Nm "))
        .map(|l| l.trim_end_matches(" ,").trim().to_string())
        .filter(|n| n != "lwkt_token")
        .collect()
}

/// What an install puts under its prefix, as `tree` lists it.
fn expected_install() -> BTreeSet<String> {
    let so = soname();
    let mut want: BTreeSet<String> = [
        "bin d".to_string(),
        "bin/lwkt-run f 755".into(),
        "include d".into(),
        "include/lwkt.h f 644".into(),
        "lib d".into(),
        format!("lib/liblwkt.so.{VERSION} f 755"),
        format!("lib/{so} l -> liblwkt.so.{VERSION}"),
        format!("lib/liblwkt.so l -> {so}"),
        "lib/pkgconfig d".into(),
        "lib/pkgconfig/lwkt.pc f 644".into(),
        "share d".into(),
        "share/lwkt d".into(),
        "share/lwkt/install-manifest f 644".into(),
        "share/man d".into(),
        "share/man/man1 d".into(),
        "share/man/man1/lwkt-run.1 f 644".into(),
        "share/man/man3 d".into(),
        "share/man/man3/lwkt_token.3 f 644".into(),
        "share/man/man7 d".into(),
        "share/man/man7/lwkt.7 f 644".into(),
    ]
    .into_iter()
    .collect();
    for a in man3_aliases() {
        want.insert(format!("share/man/man3/{a}.3 l -> lwkt_token.3"));
    }
    want
}

/// A prefix that already holds things of other packages, some in the
/// directories the install uses: they must survive install and uninstall.
fn populated_prefix(root: &Path) -> PathBuf {
    let p = root.join("prefix");
    for d in ["bin", "lib", "share/man/man1"] {
        std::fs::create_dir_all(p.join(d)).unwrap();
    }
    std::fs::write(p.join("lib/libother.so.1"), b"other").unwrap();
    std::fs::write(p.join("share/man/man1/other.1"), b".Dd\n").unwrap();
    p
}

#[test]
fn install_lists_exactly_its_files_and_uninstall_restores_the_prefix() {
    let scratch = Scratch::new("install_uninstall");
    let prefix = populated_prefix(&scratch.0);
    let before = tree(&prefix);
    let p = prefix.to_str().unwrap();

    run_ok(install_cmd(&["--prefix", p], None));
    let after = tree(&prefix);
    let added: BTreeSet<String> = after.difference(&before).cloned().collect();
    let want: BTreeSet<String> = expected_install()
        .into_iter()
        .filter(|e| !before.contains(e))
        .collect();
    assert_eq!(added, want, "installed paths (left) and expected (right)");
    assert!(before.is_subset(&after), "the install removed something");

    let lib = prefix.join(format!("lib/liblwkt.so.{VERSION}"));
    assert_eq!(Dynamic::read(&lib).strings(DT_SONAME), vec![soname()]);
    assert_eq!(
        std::fs::read(prefix.join("include/lwkt.h")).unwrap(),
        std::fs::read(Path::new(MANIFEST_DIR).join("include/lwkt.h")).unwrap()
    );
    let pc = std::fs::read_to_string(prefix.join("lib/pkgconfig/lwkt.pc")).unwrap();
    assert!(pc.contains(&format!("prefix={p}\n")), "{pc}");
    assert!(pc.contains(&format!("Version: {VERSION}\n")), "{pc}");

    // Installing again changes nothing, and one uninstall still removes all.
    run_ok(install_cmd(&["--prefix", p], None));
    assert_eq!(tree(&prefix), after, "a second install changed the prefix");

    let out = run_ok(install_cmd(&["--prefix", p, "--uninstall"], None));
    assert_eq!(
        tree(&prefix),
        before,
        "uninstall did not restore the prefix: {}",
        out.stdout
    );
}

#[test]
fn installed_library_builds_and_runs_a_program_through_pkg_config() {
    let test = "installed_library_builds_and_runs_a_program_through_pkg_config";
    if !need("pkg-config", "pkg-config", test) {
        return;
    }
    let scratch = Scratch::new("pkg_config");
    let prefix = scratch.0.join("prefix");
    run_ok(install_cmd(&["--prefix", prefix.to_str().unwrap()], None));
    let pkgconfig = prefix.join("lib/pkgconfig");

    let mut cmd = Command::new("pkg-config");
    cmd.args(["--cflags", "--libs", "lwkt"])
        .env("PKG_CONFIG_PATH", &pkgconfig);
    let flags = run_ok(cmd).stdout;
    let inc = format!("-I{}/include", prefix.display());
    let libs = format!("-L{}/lib", prefix.display());
    assert!(
        flags.contains(&inc) && flags.contains(&libs) && flags.contains("-llwkt"),
        "pkg-config --cflags --libs lwkt: {flags:?}"
    );
    let mut cmd = Command::new("pkg-config");
    cmd.args(["--modversion", "lwkt"])
        .env("PKG_CONFIG_PATH", &pkgconfig);
    assert_eq!(run_ok(cmd).stdout.trim(), VERSION);

    // Build as a user would: cc prog.c $(pkg-config --cflags --libs lwkt).
    let exe = scratch.0.join("pkgconfig_user");
    let mut cmd = Command::new(CC);
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread"])
        .arg(Path::new(MANIFEST_DIR).join("c-tests/install/pkgconfig_user.c"))
        .args(flags.split_whitespace());
    common::build_to(
        &exe,
        cmd,
        "cc pkgconfig_user.c $(pkg-config --cflags --libs lwkt)",
    );
    // It asks for the SONAME, not for the name it was linked with.
    let needed = Dynamic::read(&exe).strings(DT_NEEDED);
    assert!(needed.contains(&soname()), "DT_NEEDED {needed:?}");

    // The prefix is not in the loader's path: LD_LIBRARY_PATH names it.
    let mut cmd = Command::new(&exe);
    cmd.env("LD_LIBRARY_PATH", prefix.join("lib"));
    let out = run_ok(cmd);
    assert!(
        out.stdout
            .contains(&format!("pkgconfig_user: ok (lwkt {VERSION})")),
        "{}",
        out.report(TIMEOUT)
    );

    // Or the installed lwkt-run preloads it, which satisfies the SONAME.
    let mut cmd = Command::new(prefix.join("bin/lwkt-run"));
    cmd.arg(&exe)
        .env_remove("LWKT_LIB")
        .env_remove("LD_LIBRARY_PATH");
    let out = run_ok(cmd);
    assert!(
        out.stdout.contains("pkgconfig_user: ok"),
        "{}",
        out.report(TIMEOUT)
    );
}

#[test]
fn installed_launcher_finds_the_installed_library() {
    let scratch = Scratch::new("launcher");
    let prefix = scratch.0.join("prefix");
    run_ok(install_cmd(&["--prefix", prefix.to_str().unwrap()], None));
    let lib = prefix
        .join(format!("lib/liblwkt.so.{VERSION}"))
        .canonicalize()
        .unwrap();

    // Through a symlink elsewhere too: lwkt-run resolves its own path.
    let link = scratch.0.join("elsewhere/lwkt-run");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(prefix.join("bin/lwkt-run"), &link).unwrap();
    for launcher in [prefix.join("bin/lwkt-run"), link] {
        let mut cmd = Command::new(&launcher);
        cmd.arg("--version").env_remove("LWKT_LIB");
        let out = run_ok(cmd);
        assert_eq!(
            out.stdout,
            format!(
                "lwkt-run {VERSION}\nliblwkt {VERSION} ({})\n",
                lib.display()
            ),
            "{}",
            launcher.display()
        );
        let mut cmd = Command::new(&launcher);
        cmd.args(["sh", "-c", "echo \"$LD_PRELOAD\""])
            .env_remove("LWKT_LIB")
            .env_remove("LD_PRELOAD");
        let out = run_ok(cmd);
        assert_eq!(out.stdout.trim(), lib.display().to_string());
    }
}

#[test]
fn destdir_stages_the_install_and_names_the_final_prefix() {
    let scratch = Scratch::new("destdir");
    let stage = scratch.0.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    let prefix = format!("/nonexistent-lwkt-prefix-{}", std::process::id());
    run_ok(install_cmd(&["--prefix", &prefix], Some(&stage)));
    assert!(!Path::new(&prefix).exists(), "installed outside DESTDIR");

    let staged = stage.join(prefix.trim_start_matches('/'));
    let mut want: BTreeSet<String> = expected_install();
    // The directories above the prefix are DESTDIR's, made by the install.
    want.insert(format!("{} d", prefix.trim_start_matches('/')));
    let got: BTreeSet<String> = tree(&stage)
        .into_iter()
        .map(|e| {
            e.strip_prefix(&format!("{}/", prefix.trim_start_matches('/')))
                .map(str::to_string)
                .unwrap_or(e)
        })
        .collect();
    assert_eq!(got, want);
    let pc = std::fs::read_to_string(staged.join("lib/pkgconfig/lwkt.pc")).unwrap();
    assert!(pc.contains(&format!("prefix={prefix}\n")), "{pc}");

    run_ok(install_cmd(
        &["--prefix", &prefix, "--uninstall"],
        Some(&stage),
    ));
    let left = tree(&stage);
    assert_eq!(
        left,
        [format!("{} d", prefix.trim_start_matches('/'))]
            .into_iter()
            .collect(),
        "uninstall under DESTDIR left more than the prefix directory"
    );
}

#[test]
fn install_refuses_what_it_cannot_do_in_one_line() {
    let scratch = Scratch::new("refusals");
    let p = scratch.0.join("prefix");
    let p = p.to_str().unwrap();
    let cases: [(Vec<&str>, i32, &str); 4] = [
        (vec!["--prefix", p, "--bogus"], 2, "--bogus"),
        (vec!["--prefix"], 2, "--prefix"),
        (vec!["--prefix", p, "--uninstall"], 1, "install-manifest"),
        (vec!["--prefix", "/tmp/with space"], 1, "/tmp/with space"),
    ];
    for (args, code, names) in cases {
        let out = run(install_cmd(&args, None));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            out.report(TIMEOUT)
        );
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {:?}", out.stderr);
        assert!(out.stderr.contains(names), "{args:?}: {:?}", out.stderr);
    }
    assert!(!Path::new("/tmp/with space").exists());
}

// ---------------------------------------------------------------------------
// Man pages
// ---------------------------------------------------------------------------

fn man_pages() -> Vec<PathBuf> {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(Path::new(MANIFEST_DIR).join("docs/man"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    pages.sort();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["lwkt-run.1", "lwkt.7", "lwkt_token.3"]);
    pages
}

/// Terminal output without its overstrikes (bold `N\bN`, underline `_\bx`).
fn plain(s: &str) -> String {
    let mut out: Vec<char> = Vec::new();
    for c in s.chars() {
        if c == '\u{8}' {
            out.pop();
            continue;
        }
        out.push(c);
    }
    // An overstrike is "x\bx": the character before \b was dropped above.
    out.into_iter().collect()
}

#[test]
fn man_pages_are_lint_clean() {
    if !need("mandoc", "mandoc", "man_pages_are_lint_clean") {
        return;
    }
    for page in man_pages() {
        let mut cmd = Command::new("mandoc");
        cmd.args(["-Tlint", "-W", "warning"]).arg(&page);
        let out = run(cmd);
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "mandoc -Tlint -W warning {}: {}",
            page.display(),
            out.report(TIMEOUT)
        );
    }
}

#[test]
fn man_pages_render() {
    if !need("mandoc", "mandoc", "man_pages_render") {
        return;
    }
    for page in man_pages() {
        let mut cmd = Command::new("mandoc");
        cmd.arg("-Tutf8").arg(&page);
        let text = plain(&run_ok(cmd).stdout);
        assert!(
            text.contains("\nNAME\n") && text.lines().count() > 40,
            "{}: {text}",
            page.display(),
        );
        // man(1) itself, where there is one (man-db's goes through groff).
        if have("man") && have("groff") {
            let mut cmd = Command::new("man");
            cmd.arg("-l")
                .arg(&page)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80");
            let text = plain(&run_ok(cmd).stdout);
            assert!(
                text.contains("\nNAME\n"),
                "man -l {}: {text}",
                page.display()
            );
        }
    }
}

/// lwkt_token(3) names every function and function-like macro of the
/// header in its NAME section (so each gets its page name), and mentions
/// every constant.
#[test]
fn man_page_names_every_function_of_the_header() {
    let header = std::fs::read_to_string(Path::new(MANIFEST_DIR).join("include/lwkt.h")).unwrap();
    let page =
        std::fs::read_to_string(Path::new(MANIFEST_DIR).join("docs/man/lwkt_token.3")).unwrap();
    let names: BTreeSet<String> = man3_aliases().into_iter().collect();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut functions = BTreeSet::new();
    let mut constants = BTreeSet::new();
    for line in header.lines() {
        if let Some(def) = line.strip_prefix("#define ") {
            let name = ident(def);
            if def[name.len()..].starts_with('(') {
                functions.insert(name);
            } else if name != "LWKT_H" {
                constants.insert(name);
            }
        } else if let Some(i) = line.find("lwkt_") {
            let name = ident(&line[i..]);
            let declared = line[i + name.len()..].starts_with('(')
                && !line.trim_start().starts_with('*')
                && !line.contains("#define");
            if declared {
                functions.insert(name);
            }
        }
    }
    assert!(functions.len() > 20, "{functions:?}");
    let missing: Vec<&String> = functions.difference(&names).collect();
    assert!(
        missing.is_empty(),
        "lwkt_token(3)'s NAME section lacks {missing:?}"
    );
    for c in &constants {
        assert!(
            page.contains(c.as_str()),
            "lwkt_token(3) does not mention {c}"
        );
    }
}

/// The pages say what SPEC sections 5 and 7 ask of them.
#[test]
fn man_pages_cover_environment_secure_mode_and_troubleshooting() {
    // The source, with mdoc's escapes for '-' and zero-width breaks undone,
    // and its flag macro (`.Fl x` is "-x") spelled out.
    let read = |name: &str| {
        std::fs::read_to_string(Path::new(MANIFEST_DIR).join("docs/man").join(name))
            .unwrap()
            .replace("\\-", "-")
            .replace("\\&", "")
            .replace("Fl ", "-")
    };
    let seven = read("lwkt.7");
    for word in [
        "LWKT_STATS",
        "LWKT_DEBUG",
        "LWKT_CATCHALL",
        "LWKT_CHAOS",
        "AT_SECURE",
        "vfork",
        "handle SIGSYS nostop noprint pass",
    ] {
        assert!(seven.contains(word), "lwkt(7) does not mention {word}");
    }
    let one = read("lwkt-run.1");
    for word in [
        "LWKT_LIB",
        "--version",
        "--stats",
        "handle SIGSYS nostop noprint pass",
        "127",
    ] {
        assert!(one.contains(word), "lwkt-run(1) does not mention {word}");
    }
}
