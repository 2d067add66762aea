//! lwkt-run: runs a program with liblwkt.so preloaded, or, with no
//! arguments, the built-in demonstration.
//!
//! This binary does not link the library crate (a cdylib whose hooks would
//! interpose this program's own calls by accident). It finds liblwkt.so
//! next to itself at run time (or where `LWKT_LIB` says), and puts it in
//! front of `LD_PRELOAD`.

mod api;
mod demo;
mod seed;
mod table;
mod timeline;

use std::env;
use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

/// Hidden argument: run the demonstration here (liblwkt.so is preloaded).
const DEMO_ARG: &str = "--demo";

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
        let program = match a.to_str() {
            Some("-h" | "--help") => return Ok(Cmd::Help),
            Some("--stats") => {
                stats = Some(OsString::from("1"));
                continue;
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

fn help() -> String {
    let default = match env::current_exe() {
        Ok(exe) => exe.with_file_name("liblwkt.so").display().to_string(),
        Err(_) => "next to lwkt-run".into(),
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
  LWKT_LIB       the liblwkt.so to preload
                 (default: {default})
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

/// The liblwkt.so to preload: `LWKT_LIB`, or the one next to this
/// executable. Absolute, so that it still works if PROGRAM changes
/// directory before it starts threads that exec others.
fn find_library() -> Result<PathBuf, String> {
    if let Some(p) = env::var_os("LWKT_LIB").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return p
            .canonicalize()
            .map_err(|e| format!("LWKT_LIB={}: {}", p.display(), reason(&e)));
    }
    let exe = env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
    let next_to_me = exe.with_file_name("liblwkt.so");
    // `cargo run` builds the library as the launcher's dependency and leaves
    // it in deps/ (cargo copies a cdylib up only when it is asked for by
    // name): after `cargo run`, that copy is at least as new as the other.
    let cargo_dep = exe.with_file_name("deps").join("liblwkt.so");
    let newest = [&next_to_me, &cargo_dep]
        .into_iter()
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .max_by_key(|(mtime, _)| *mtime)
        .map(|(_, p)| p);
    let Some(lib) = newest else {
        return Err(format!(
            "liblwkt.so not found at {} (build it: cargo build --release; or set LWKT_LIB)",
            next_to_me.display()
        ));
    };
    lib.canonicalize()
        .map_err(|e| format!("{}: {}", lib.display(), reason(&e)))
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
    let name = program.to_string_lossy();
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
