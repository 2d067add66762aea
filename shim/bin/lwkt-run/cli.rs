//! The command line: what the arguments ask for, and --help.

use crate::library::library_candidates;
use crate::{DEMO_ARG, LIBRARY_VERSION_ARG, SONAME};
use std::env;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

#[derive(Debug, PartialEq)]
pub enum Cmd {
    Help,
    /// `--version`: this program's version and the library's.
    Version,
    /// `--library-version`: print the preloaded library's version.
    LibraryVersionHere,
    /// No arguments: start the demonstration (re-executes with `--demo`).
    Demo,
    /// `--demo`: the demonstration itself, liblwkt.so preloaded.
    DemoHere,
    /// `--dump PID [--json]`: who holds and waits for each token now.
    Dump {
        pid: i32,
        json: bool,
    },
    /// `--top PID`: the same, live.
    Top {
        pid: i32,
    },
    Run {
        program: OsString,
        args: Vec<OsString>,
        /// `--stats[=DEST]`: the value for LWKT_STATS.
        stats: Option<OsString>,
    },
}

/// Parse the arguments after argv[0]. Options come before PROGRAM; `--`
/// ends them; everything from PROGRAM on belongs to PROGRAM.
pub fn parse(args: Vec<OsString>) -> Result<Cmd, String> {
    let mut it = args.into_iter();
    let mut demo = false;
    let mut stats = None;
    let mut json = false;
    let mut watch: Option<(&str, i32)> = None;
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
            Some(opt @ ("--dump" | "--top")) => {
                let opt = if opt == "--dump" { "--dump" } else { "--top" };
                let pid = it.next().ok_or(format!("{opt} needs a PID"))?;
                watch = Some((opt, parse_pid(opt, &pid)?));
                continue;
            }
            Some("--json") => {
                json = true;
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
        if let Some((opt, _)) = watch {
            return Err(format!("{opt} takes no PROGRAM"));
        }
        if json {
            return Err("--json goes with --dump PID".into());
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
    match watch {
        Some(("--dump", pid)) => return Ok(Cmd::Dump { pid, json }),
        Some((_, _)) if json => return Err("--json goes with --dump, not --top".into()),
        Some((_, pid)) => return Ok(Cmd::Top { pid }),
        None if json => return Err("--json goes with --dump PID".into()),
        None => {}
    }
    Ok(if demo { Cmd::DemoHere } else { Cmd::Demo })
}

/// A process id given to `opt`.
fn parse_pid(opt: &str, arg: &OsStr) -> Result<i32, String> {
    match arg.to_str().and_then(|s| s.parse::<i32>().ok()) {
        Some(pid) if pid > 0 => Ok(pid),
        _ => Err(format!("{opt} needs a process id, not {}", escaped(arg))),
    }
}

/// `arg` for a message: its UTF-8 parts as they are, other bytes as \xNN.
pub fn escaped(arg: &OsStr) -> String {
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

pub fn help() -> String {
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

  lwkt-run --dump PID [--json]    show who holds and who waits for each
                                  token of the running process PID, and
                                  which blocking call each thread is in
                                  (--json: one JSON object, for scripts)
  lwkt-run --top PID              the same, live, refreshed every second,
                                  longest waits first; q or Ctrl-C quits

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
  LWKT_CATCHALL  the catch-all: 1 (libc patched + dispatch), sud (dispatch only), 0 (off)
  LWKT_CHAOS     release and retake tokens at every hook, to find code that
                 forgets to re-validate what it read under a token

Exit status: PROGRAM's; 127 when PROGRAM or liblwkt.so is not found; 126
when PROGRAM cannot be executed; 2 for a usage error; 1 when --dump or
--top cannot read PID (no such process, no lwkt library in it, not
permitted, a registry layout this lwkt-run does not know).
"
    )
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
    fn dump_and_top_take_a_pid() {
        assert_eq!(
            p(&["--dump", "42"]),
            Ok(Cmd::Dump {
                pid: 42,
                json: false
            })
        );
        assert_eq!(
            p(&["--dump", "42", "--json"]),
            Ok(Cmd::Dump {
                pid: 42,
                json: true
            })
        );
        assert_eq!(
            p(&["--json", "--dump", "7"]),
            Ok(Cmd::Dump { pid: 7, json: true })
        );
        assert_eq!(p(&["--top", "9"]), Ok(Cmd::Top { pid: 9 }));
        for bad in [
            &["--dump"][..],
            &["--dump", "x"],
            &["--dump", "0"],
            &["--dump", "-3"],
            &["--top", "9", "--json"],
            &["--json"],
            &["--dump", "1", "ls"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(p(&["--dump", "x"]).unwrap_err().contains("process id"));
    }

    #[test]
    fn version_option() {
        assert_eq!(p(&["--version"]), Ok(Cmd::Version));
        assert_eq!(p(&["--", "--version"]), Ok(run("--version", &[])));
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
