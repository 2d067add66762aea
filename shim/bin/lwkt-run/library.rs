//! Finding liblwkt.so for the program to run, and telling its version.

use crate::lwkt_h::{self, Library};
use crate::{reason, LIBRARY_VERSION_ARG, NOT_FOUND, SONAME, VERSION};
use std::env;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{self, Command};

/// Where the library may be, in order, for this executable (its real
/// path, symlinks resolved: the kernel's /proc/self/exe): next to it, as
/// cargo leaves them in target/<profile>/; then in the prefix it is
/// installed in, PREFIX/bin/lwkt-run and PREFIX/lib/liblwkt.so.MAJOR
/// (scripts/install), or lib64 as some distributions name it.
pub fn library_candidates(exe: &Path) -> Vec<PathBuf> {
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
    link_soname(profile_dir);
    Ok(())
}

/// Programs linked in the build tree with `-Ltarget/<profile> -llwkt` ask
/// for the library by its SONAME at run time: give it that name there too,
/// as an installed prefix has it (the README's build line relies on it).
fn link_soname(profile_dir: &Path) {
    let link = profile_dir.join(SONAME);
    if std::fs::read_link(&link).ok().as_deref() == Some(Path::new("liblwkt.so")) {
        return;
    }
    // Made under another name and renamed: a concurrent run never sees a
    // half-made link.
    let tmp = profile_dir.join(format!("{SONAME}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink("liblwkt.so", &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, &link);
    }
}

/// The liblwkt.so to preload: `LWKT_LIB`, or the first of
/// `library_candidates` that exists. Absolute, so that it still works if
/// PROGRAM changes directory before it starts threads that exec others.
pub fn find_library() -> Result<PathBuf, String> {
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
pub fn print_versions() {
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
pub fn print_library_version() -> ! {
    let Some(v) = lwkt_h::version(&Library::preloaded()) else {
        process::exit(NOT_FOUND);
    };
    let mut line = v.to_bytes().to_vec();
    line.push(b'\n');
    let _ = std::io::stdout().write_all(&line);
    process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
