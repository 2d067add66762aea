//! lwkt-run: runs a program with liblwkt.so preloaded, or, with no
//! arguments, the built-in demonstration.
//!
//! This binary does not link the library crate (a cdylib whose hooks would
//! interpose this program's own calls by accident). It finds liblwkt.so at
//! run time (where `LWKT_LIB` says, next to itself in a cargo target
//! directory, or in the `lib` directory of the prefix it is installed in),
//! and puts it in front of `LD_PRELOAD`.

mod demo;

use std::env;
use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

/// Hidden argument: run the demonstration here (liblwkt.so is preloaded).
const DEMO_ARG: &str = "--demo";
/// Hidden argument: print the preloaded library's `lwkt_version()`.
const LIBRARY_VERSION_ARG: &str = "--library-version";

/// The launcher's version: the package's, which is also the library's it
/// was built with.
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The installed library's name (its SONAME): liblwkt.so.MAJOR.
const SONAME: &str = concat!("liblwkt.so.", env!("CARGO_PKG_VERSION_MAJOR"));

/// Exit status when the program or liblwkt.so cannot be found (as shells do
/// for a command that is not found).
const NOT_FOUND: i32 = 127;
/// Exit status when the program exists but cannot be executed.
const CANNOT_EXEC: i32 = 126;
/// Exit status for a usage error.
const USAGE: i32 = 2;

#[derive(Debug, PartialEq)]
enum Cmd {
    Help,
    /// `--version`: this program's version and the library's.
    Version,
    /// `--library-version`: print the preloaded library's version.
    LibraryVersionHere,
    /// No arguments: start the demonstration (re-executes with `--demo`).
    Demo,
    /// `--demo`: the demonstration itself, liblwkt.so preloaded.
    DemoHere,
    Run {
        program: OsString,
        args: Vec<OsString>,
        /// `--stats[=DEST]`: the value for LWKT_STATS.
        stats: Option<OsString>,
    },
}

/// Parse the arguments after argv[0]. Options come before PROGRAM; `--`
/// ends them; everything from PROGRAM on belongs to PROGRAM.
fn parse(args: Vec<OsString>) -> Result<Cmd, String> {
    let mut it = args.into_iter();
    let mut demo = false;
    let mut stats = None;
    while let Some(a) = it.next() {
        if a.to_str().is_none() && a.as_bytes().starts_with(b"-") && a.len() > 1 {
            return Err(format!("option {} is not valid UTF-8", escaped(&a)));
        }
        let program = match a.to_str() {
            Some("-h" | "--help") => return Ok(Cmd::Help),
            Some("--version") => return Ok(Cmd::Version),
            Some(LIBRARY_VERSION_ARG) => return Ok(Cmd::LibraryVersionHere),
            Some("--stats") => {
                stats = Some(OsString::from("1"));
                continue;
            }
            Some("--stats=") => {
                return Err("--stats= needs a destination (--stats alone reports to stderr)".into())
            }
            Some(s) if s.starts_with("--stats=") => {
                stats = Some(OsString::from(&s["--stats=".len()..]));
                continue;
            }
            Some(DEMO_ARG) => {
                demo = true;
                continue;
            }
            Some("--") => match it.next() {
                Some(p) => p,
                None => return Err("missing PROGRAM after --".into()),
            },
            Some(s) if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option {s} (options come before PROGRAM)"))
            }
            _ => a,
        };
        if demo {
            return Err(format!("{DEMO_ARG} takes no PROGRAM"));
        }
        return Ok(Cmd::Run {
            program,
            args: it.collect(),
            stats,
        });
    }
    if stats.is_some() {
        return Err("--stats needs a PROGRAM".into());
    }
    Ok(if demo { Cmd::DemoHere } else { Cmd::Demo })
}

/// `arg` for a message: its UTF-8 parts as they are, other bytes as \xNN.
fn escaped(arg: &OsStr) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for chunk in arg.as_bytes().utf8_chunks() {
        s.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(s, "\\x{b:02X}");
        }
    }
    s
}

fn help() -> String {
    let default = match env::current_exe() {
        Ok(exe) => library_candidates(&exe)
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(",\n                  then "),
        Err(_) => format!("liblwkt.so next to lwkt-run, then ../lib/{SONAME}"),
    };
    format!(
        "\
lwkt-run: DragonFly BSD serializing tokens (liblwkt.so) for any program

Usage:
  lwkt-run                        show the built-in demonstration
                                  (the seed example and the comparison
                                  of tokens with mutexes, measured now)
  lwkt-run [OPTIONS] [--] PROGRAM [ARGS...]
                                  run PROGRAM with liblwkt.so in front of
                                  LD_PRELOAD, and exit with its status

Options (they come before PROGRAM; what follows PROGRAM is its own):
  -h, --help                      show this help and exit
  --version                       show the versions of lwkt-run and of the
                                  liblwkt.so it finds, and exit
  --stats[=DEST]                  report what the tokens did when PROGRAM
                                  exits (sets LWKT_STATS: to stderr, or
                                  DEST = a path with '/' or json:PATH)
  --                              end of options: the next word is PROGRAM

A token is a lock that serializes threads only while its holder runs: when
the holder blocks in a libc call (read, nanosleep, pthread_mutex_lock,
pthread_cond_wait, ...), its tokens are released, and taken back before the
call returns. PROGRAM uses tokens through include/lwkt.h (-llwkt, or a
plugin it loads); a program that uses none runs as it would without lwkt.

Environment:
  LWKT_LIB       the liblwkt.so to preload (default: the first of
                  {default})
  Read by liblwkt.so in PROGRAM (an unknown value is an error at start-up):
  LWKT_STATS     print a contention report at exit
  LWKT_DEBUG     extra checks
  LWKT_CATCHALL  the catch-all for blocking inside libc, on or off
  LWKT_CHAOS     release and retake tokens at every hook, to find code that
                 forgets to re-validate what it read under a token

Exit status: PROGRAM's; 127 when PROGRAM or liblwkt.so is not found; 126
when PROGRAM cannot be executed; 2 for a usage error.
"
    )
}

/// Where the library may be, in order, for this executable (its real
/// path, symlinks resolved: the kernel's /proc/self/exe): next to it, as
/// cargo leaves them in target/<profile>/; then in the prefix it is
/// installed in, PREFIX/bin/lwkt-run and PREFIX/lib/liblwkt.so.MAJOR
/// (scripts/install), or lib64 as some distributions name it.
fn library_candidates(exe: &Path) -> Vec<PathBuf> {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    let prefix = dir.parent().unwrap_or(Path::new("/"));
    vec![
        dir.join("liblwkt.so"),
        prefix.join("lib").join(SONAME),
        prefix.join("lib64").join(SONAME),
    ]
}

/// Under `cargo run` (cargo tells its manifest directory, and this
/// executable lies in that build's target directory), have cargo build the
/// library of the same profile next to it: cargo builds no cdylib-only
/// library for `cargo run` by itself, so a fresh clone would have none, and
/// an edited one would be stale. Up to date, this costs a fraction of a
/// second.
fn build_library_under_cargo_run(exe: &Path) -> Result<(), String> {
    let (Some(cargo), Some(manifest_dir)) =
        (env::var_os("CARGO"), env::var_os("CARGO_MANIFEST_DIR"))
    else {
        return Ok(());
    };
    let Some(profile_dir) = exe.parent() else {
        return Ok(());
    };
    let Some(target_dir) = profile_dir.parent() else {
        return Ok(());
    };
    // cargo marks the root of every target directory with CACHEDIR.TAG.
    if Path::new(&manifest_dir) != Path::new(env!("CARGO_MANIFEST_DIR"))
        || !target_dir.join("CACHEDIR.TAG").is_file()
    {
        return Ok(());
    }
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--lib", "--quiet"])
        .current_dir(&manifest_dir)
        .env("CARGO_TARGET_DIR", target_dir);
    match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => return Ok(()),
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run cargo to build liblwkt.so: {}", reason(&e)))?;
    if !status.success() {
        return Err(format!(
            "cargo build --lib failed ({status}): liblwkt.so not built"
        ));
    }
    Ok(())
}

/// The liblwkt.so to preload: `LWKT_LIB`, or the first of
/// `library_candidates` that exists. Absolute, so that it still works if
/// PROGRAM changes directory before it starts threads that exec others.
fn find_library() -> Result<PathBuf, String> {
    if let Some(p) = env::var_os("LWKT_LIB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p
            .canonicalize()
            .map_err(|e| format!("LWKT_LIB={}: {}", p.display(), reason(&e)));
    }
    let exe = env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    build_library_under_cargo_run(&exe)?;
    let candidates = library_candidates(&exe);
    let Some(lib) = candidates.iter().find(|p| p.is_file()) else {
        let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
        return Err(format!(
            "liblwkt.so not found at {} (build it: cargo build --release; \
             install it: scripts/install; or set LWKT_LIB)",
            tried.join(" nor ")
        ));
    };
    lib.canonicalize()
        .map_err(|e| format!("{}: {}", lib.display(), reason(&e)))
}

/// `--version`: this program's version, then the library's, which a copy
/// of this program with the library preloaded reads from `lwkt_version()`
/// (loading it here would put its hooks into this process). Always exits
/// 0: a missing library is reported on the second line.
fn print_versions() {
    let mut out = format!("lwkt-run {VERSION}\n");
    out += &match find_library() {
        Err(e) => format!("liblwkt: {e}\n"),
        Ok(lib) => match library_version(&lib) {
            Ok(v) => format!("liblwkt {v} ({})\n", lib.display()),
            Err(e) => format!("liblwkt at {}: {e}\n", lib.display()),
        },
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
}

/// Run this program with `lib` alone preloaded, and none of the `LWKT_`
/// variables (a bad value would stop it), to ask the library its version.
fn library_version(lib: &Path) -> Result<String, String> {
    let exe = env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.arg(LIBRARY_VERSION_ARG).env("LD_PRELOAD", lib);
    for (k, _) in env::vars_os() {
        if k.as_bytes().starts_with(b"LWKT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .output()
        .map_err(|e| format!("cannot tell its version: {}", reason(&e)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => Ok(stdout.trim().to_string()),
        Some(NOT_FOUND) => Err("it has no lwkt_version() (older than 0.1.0)".into()),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            Err(format!(
                "cannot tell its version: {}",
                err.lines().next().unwrap_or("it did not load")
            ))
        }
    }
}

/// `--library-version`, liblwkt.so preloaded: print its `lwkt_version()`.
fn print_library_version() -> ! {
    // SAFETY: dlsym with a NUL-terminated name; the symbol, when present,
    // is `const char *lwkt_version(void)` returning a static string.
    let sym = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"lwkt_version".as_ptr()) };
    if sym.is_null() {
        process::exit(NOT_FOUND);
    }
    let f: extern "C" fn() -> *const libc::c_char = unsafe { std::mem::transmute(sym) };
    let v = unsafe { std::ffi::CStr::from_ptr(f()) };
    let mut line = v.to_bytes().to_vec();
    line.push(b'\n');
    let _ = std::io::stdout().write_all(&line);
    process::exit(0)
}

/// An io::Error's message without the "(os error N)" suffix.
fn reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The new LD_PRELOAD: the library first, then whatever was there.
fn preload_value(lib: &Path, existing: Option<&OsStr>) -> OsString {
    let mut v = OsString::from(lib);
    if let Some(old) = existing.filter(|o| !o.is_empty()) {
        v.push(":");
        v.push(old);
    }
    v
}

/// Print a one-line error and exit.
fn die(code: i32, msg: &str) -> ! {
    eprintln!("lwkt-run: {msg}");
    process::exit(code);
}

/// Replace this process with `program`, liblwkt.so preloaded; returns
/// only on failure.
fn exec_preloaded(program: &OsStr, args: &[OsString]) -> ! {
    let lib = find_library().unwrap_or_else(|e| die(NOT_FOUND, &e));
    let lib_str = lib.to_string_lossy();
    if lib_str.contains([':', ' ']) {
        // LD_PRELOAD separates entries with colons and spaces.
        die(
            NOT_FOUND,
            &format!("{lib_str}: cannot preload a path with ':' or ' ' in it"),
        );
    }
    let preload = preload_value(&lib, env::var_os("LD_PRELOAD").as_deref());
    let err = Command::new(program)
        .args(args)
        .env("LD_PRELOAD", preload)
        .exec();
    let name = escaped(program);
    match err.kind() {
        ErrorKind::NotFound if name.contains('/') && Path::new(program).exists() => die(
            NOT_FOUND,
            &format!("{name}: cannot run it: its interpreter or loader is missing"),
        ),
        ErrorKind::NotFound if name.contains('/') => {
            die(NOT_FOUND, &format!("{name}: no such file"))
        }
        ErrorKind::NotFound => die(NOT_FOUND, &format!("{name}: program not found in PATH")),
        _ => die(
            CANNOT_EXEC,
            &format!("{name}: cannot run it: {}", reason(&err)),
        ),
    }
}

fn main() {
    let args: Vec<OsString> = env::args_os().skip(1).collect();
    match parse(args) {
        Ok(Cmd::Help) => {
            // Not print!: that panics when stdout is a closed pipe.
            let _ = std::io::stdout().write_all(help().as_bytes());
        }
        Ok(Cmd::Version) => print_versions(),
        Ok(Cmd::LibraryVersionHere) => print_library_version(),
        Ok(Cmd::Run {
            program,
            args,
            stats,
        }) => {
            if let Some(dest) = stats {
                // Before any thread exists: set_var is safe here.
                env::set_var("LWKT_STATS", dest);
            }
            exec_preloaded(&program, &args)
        }
        Ok(Cmd::Demo) => {
            // The demonstration's own blocking calls must go through the
            // hooks: run a copy of this program with liblwkt.so preloaded.
            let exe = env::current_exe()
                .unwrap_or_else(|e| die(NOT_FOUND, &format!("cannot find my own executable: {e}")));
            exec_preloaded(exe.as_os_str(), &[DEMO_ARG.into()])
        }
        Ok(Cmd::DemoHere) => demo::run(),
        Err(e) => die(USAGE, &format!("{e}; see lwkt-run --help")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, String> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn run(program: &str, args: &[&str]) -> Cmd {
        Cmd::Run {
            program: program.into(),
            args: args.iter().map(OsString::from).collect(),
            stats: None,
        }
    }

    #[test]
    fn stats_option_sets_the_report_destination() {
        let with = |dest: &str| Cmd::Run {
            program: "ls".into(),
            args: vec![],
            stats: Some(dest.into()),
        };
        assert_eq!(p(&["--stats", "ls"]), Ok(with("1")));
        assert_eq!(p(&["--stats=json:/tmp/x", "ls"]), Ok(with("json:/tmp/x")));
        assert!(p(&["--stats"]).is_err());
    }

    #[test]
    fn no_arguments_is_the_demonstration() {
        assert_eq!(p(&[]), Ok(Cmd::Demo));
        assert_eq!(p(&["--demo"]), Ok(Cmd::DemoHere));
    }

    #[test]
    fn help_option() {
        assert_eq!(p(&["--help"]), Ok(Cmd::Help));
        assert_eq!(p(&["-h", "ls"]), Ok(Cmd::Help));
    }

    #[test]
    fn program_and_its_arguments() {
        assert_eq!(
            p(&["ls", "-l", "--help", "--"]),
            Ok(run("ls", &["-l", "--help", "--"]))
        );
        assert_eq!(p(&["--", "-weird", "x"]), Ok(run("-weird", &["x"])));
        assert_eq!(p(&["--", "--help"]), Ok(run("--help", &[])));
        assert_eq!(p(&["-"]), Ok(run("-", &[])));
    }

    #[test]
    fn usage_errors() {
        assert!(p(&["--bogus", "ls"]).unwrap_err().contains("--bogus"));
        assert!(p(&["--"]).is_err());
        assert!(p(&["--demo", "ls"]).is_err());
    }

    #[test]
    fn options_that_are_not_utf8_are_refused_by_name() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(b"--st\xffats".to_vec());
        let e = parse(vec![bad, "true".into()]).unwrap_err();
        assert!(e.contains("--st\\xFFats") && e.contains("UTF-8"), "{e}");
        // A program name is not an option, whatever its bytes.
        let prog = OsString::from_vec(b"-\xff".to_vec());
        assert!(parse(vec!["--".into(), prog.clone()]).is_ok());
        let prog = OsString::from_vec(b"x\xff".to_vec());
        assert!(parse(vec![prog]).is_ok());
    }

    #[test]
    fn empty_stats_destination_is_a_usage_error() {
        let e = p(&["--stats=", "ls"]).unwrap_err();
        assert!(e.contains("--stats="), "{e}");
    }

    #[test]
    fn version_option() {
        assert_eq!(p(&["--version"]), Ok(Cmd::Version));
        assert_eq!(p(&["--", "--version"]), Ok(run("--version", &[])));
    }

    #[test]
    fn library_is_looked_for_next_to_the_launcher_then_in_its_prefix() {
        let c = library_candidates(Path::new("/opt/lwkt/bin/lwkt-run"));
        let want: Vec<PathBuf> = [
            "/opt/lwkt/bin/liblwkt.so",
            "/opt/lwkt/lib/liblwkt.so.0",
            "/opt/lwkt/lib64/liblwkt.so.0",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(c, want);
    }

    #[test]
    fn preload_goes_first() {
        let lib = Path::new("/x/liblwkt.so");
        assert_eq!(preload_value(lib, None), OsString::from("/x/liblwkt.so"));
        assert_eq!(
            preload_value(lib, Some(OsStr::new(""))),
            OsString::from("/x/liblwkt.so")
        );
        assert_eq!(
            preload_value(lib, Some(OsStr::new("/y/a.so b.so"))),
            OsString::from("/x/liblwkt.so:/y/a.so b.so")
        );
    }

    #[test]
    fn help_names_the_environment() {
        let h = help();
        for v in [
            "LWKT_LIB",
            "LWKT_STATS",
            "LWKT_DEBUG",
            "LWKT_CATCHALL",
            "LWKT_CHAOS",
            "Usage",
        ] {
            assert!(h.contains(v), "{v}");
        }
    }
}
