//! lwkt-run: runs a program with liblwkt.so preloaded, or, with no
//! arguments, the built-in demonstration; with --dump or --top PID it
//! reads a running program's tokens from outside (`dump/`, `top`).
//!
//! This binary does not link the library crate (a cdylib whose hooks would
//! interpose this program's own calls by accident). It finds liblwkt.so at
//! run time (where `LWKT_LIB` says, next to itself in a cargo target
//! directory, or in the `lib` directory of the prefix it is installed in),
//! and puts it in front of `LD_PRELOAD`.
//!
//! The demonstration (`demo/`) is apart from the launcher proper (`cli`,
//! `library`, and the exec below); both reach liblwkt.so only through the
//! mirror of include/lwkt.h, shim/mirror/lwkt_h.rs.

// The library's rules for unsafe code hold here too.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod cli;
mod demo;
mod dump;
mod library;
#[path = "../../mirror/lwkt_h.rs"]
mod lwkt_h;
#[cfg(test)]
mod mirror_test;
mod top;

use cli::{escaped, help, parse, Cmd};
use library::{find_library, print_library_version, print_versions};
use std::env;
use std::ffi::{OsStr, OsString};
use std::io::{ErrorKind, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
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
        Ok(Cmd::Dump { pid, json }) => {
            if let Err(e) = dump::dump(pid, json) {
                die(dump::FAILED, &e.to_string())
            }
        }
        Ok(Cmd::Top { pid }) => {
            if let Err(e) = top::top(pid) {
                die(dump::FAILED, &e.to_string())
            }
        }
        Err(e) => die(USAGE, &format!("{e}; see lwkt-run --help")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
