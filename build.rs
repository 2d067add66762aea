//! Generates `include/lwkt.h` from `shim/capi.rs` with cbindgen.
//!
//! The header is committed; the test `header_is_fresh` fails when the
//! committed one differs from what this produces.

use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    println!("cargo:rerun-if-changed=shim/capi.rs");
    println!("cargo:rerun-if-changed=shim/token.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let header = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("shim/capi.rs"))
        .with_src(root.join("shim/token.rs"))
        .generate()
        .expect("cbindgen could not read shim/capi.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("lwkt.h");
    header.write_to_file(&out);
    // Keep the committed copy fresh on every build; CI checks it is committed.
    let committed = root.join("include/lwkt.h");
    let fresh = std::fs::read(&out).unwrap();
    if std::fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
        std::fs::create_dir_all(root.join("include")).unwrap();
        std::fs::write(&committed, &fresh).unwrap();
    }
    shared_object_link_args();
    c_tests_main();
}

/// How liblwkt.so is linked (SPEC sections 3 and 7):
/// - SONAME `liblwkt.so.MAJOR`, so that programs record the ABI they were
///   linked against and a future incompatible library can live beside it;
/// - `-z nodelete`: once loaded it stays mapped, because dlclose() cannot
///   know that a thread-exit destructor and the SIGSYS handler still point
///   into it.
///
/// Programs linked with `-llwkt` ask for `liblwkt.so.MAJOR` at run time, so
/// the build directory gets that name too (a symlink to the library cargo
/// is about to link, dangling until then), as an installed prefix has it.
fn shared_object_link_args() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let soname = format!("liblwkt.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // OUT_DIR is <target>/<profile>/build/lwkt-<hash>/out.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let in_build_dir = out.ancestors().nth(2).and_then(|b| b.file_name()) == Some("build".as_ref());
    if let (true, Some(profile_dir)) = (in_build_dir, out.ancestors().nth(3)) {
        let link = profile_dir.join(&soname);
        if std::fs::read_link(&link).ok().as_deref() != Some(std::path::Path::new("liblwkt.so")) {
            let tmp = profile_dir.join(format!("{soname}.tmp{}", std::process::id()));
            let _ = std::fs::remove_file(&tmp);
            if std::os::unix::fs::symlink("liblwkt.so", &tmp).is_ok() {
                let _ = std::fs::rename(&tmp, &link);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The C tests (c-tests/*.c), compiled here and linked/run by c-tests/run.rs.
//
// Every test file becomes its own object file (no archive: an archive would
// let the linker drop or hide a test's symbols). A file that does not compile
// must not break `cargo build` of the library for everybody else, so its
// compiler output is saved next to where the object would be, and the tests
// generated for it fail with that output (and cargo prints a warning here).
//
// The runner learns where everything is through `cargo:rustc-env`:
//   LWKT_CTEST_OBJ_DIR  one `<name>.o` (or `<name>.err`) per c-tests/<name>.c
//   LWKT_CTEST_CC       the C compiler, used again to link the tests
//   LWKT_CTEST_CXX      the C++ compiler
//   LWKT_CTEST_LIST     a generated Rust file: one `c_test!(name)` per test
//   LWKT_FRESH_HEADER   the header generated above (for `header_is_fresh`)
// ---------------------------------------------------------------------------

fn c_tests_main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let tests_dir = root.join("c-tests");
    // Never emptied: tests of another cargo process may be linking from it
    // right now. Every file in it is replaced atomically instead.
    let obj_dir = out.join("c-tests");
    std::fs::create_dir_all(&obj_dir).unwrap();
    // A directory makes cargo rescan all of it: edited and new files count.
    println!("cargo:rerun-if-changed=c-tests");
    println!("cargo:rerun-if-changed=include");

    let c = c_build(&root, false).get_compiler();
    let cxx = c_build(&root, true).get_compiler();
    // An object is up to date when it is newer than its source and every
    // header it may include (this build script reruns whenever anything in
    // c-tests/ changes, and most files did not).
    let headers = newest_mtime(
        &[
            root.join("include"),
            tests_dir.clone(),
            tests_dir.join("harness"),
        ],
        &["h"],
    );

    // The tests: c-tests/*.c, in a stable order.
    let mut names = Vec::new();
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .expect("c-tests/")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    for src in &sources {
        let name = src.file_stem().unwrap().to_str().unwrap().to_string();
        if !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            || name.starts_with(|ch: char| ch.is_ascii_digit())
        {
            println!("cargo:warning=c-tests/{name}.c: not a valid test name (letters, digits, _); skipped");
            continue;
        }
        compile_one(&c, &[], src, &obj_dir, &name, headers);
        names.push(name);
    }

    // The harness programs, and the header check compiled both as C and as
    // C++ (the same file uses every macro of the header).
    let harness = tests_dir.join("harness");
    compile_one(
        &c,
        &[],
        &harness.join("main_linked.c"),
        &obj_dir,
        "harness_main_linked",
        headers,
    );
    compile_one(
        &c,
        &[],
        &harness.join("plugin_host.c"),
        &obj_dir,
        "harness_plugin_host",
        headers,
    );
    let check = harness.join("header_check.cc");
    compile_one(
        &c,
        &["-x", "c"],
        &check,
        &obj_dir,
        "header_check_c",
        headers,
    );
    compile_one(&cxx, &[], &check, &obj_dir, "header_check_cxx", headers);

    let mut list = String::from("// Generated by build.rs: one entry per c-tests/*.c.\n");
    for name in &names {
        list.push_str(&format!("c_test!({name});\n"));
    }
    let list_path = out.join("c_tests_list.rs");
    write_atomically(&list_path, list.as_bytes());

    println!("cargo:rustc-env=LWKT_CTEST_OBJ_DIR={}", obj_dir.display());
    println!("cargo:rustc-env=LWKT_CTEST_CC={}", c.path().display());
    println!("cargo:rustc-env=LWKT_CTEST_CXX={}", cxx.path().display());
    println!("cargo:rustc-env=LWKT_CTEST_LIST={}", list_path.display());
    println!(
        "cargo:rustc-env=LWKT_FRESH_HEADER={}",
        out.join("lwkt.h").display()
    );
}

/// The compiler set-up for the C tests (C++ for the header check).
fn c_build(root: &std::path::Path, cxx: bool) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(cxx)
        .cargo_metadata(false)
        .warnings(false) // the flags below, exactly
        .include(root.join("include"))
        .include(root.join("c-tests"))
        .pic(true)
        .flag("-Wall")
        .flag("-Wextra")
        .flag("-Werror")
        .flag("-pthread");
    if !cxx {
        b.flag("-std=c11");
    }
    b
}

/// Compile `src` to `obj_dir/<name>.o`, or leave the compiler's complaint
/// in `obj_dir/<name>.err` for the test runner to report. Skipped when the
/// object is newer than `src` and than `headers` (the newest header).
fn compile_one(
    tool: &cc::Tool,
    extra: &[&str],
    src: &std::path::Path,
    obj_dir: &std::path::Path,
    name: &str,
    headers: std::time::SystemTime,
) {
    let obj = obj_dir.join(format!("{name}.o"));
    let err = obj_dir.join(format!("{name}.err"));
    let src_time = std::fs::metadata(src).and_then(|m| m.modified()).unwrap();
    if let Ok(t) = std::fs::metadata(&obj).and_then(|m| m.modified()) {
        if t > src_time && t > headers && !err.exists() {
            return;
        }
    }
    let tmp = obj_dir.join(format!("{name}.o.tmp{}", std::process::id()));
    let result = tool
        .to_command()
        .args(extra)
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&tmp)
        .output();
    let complaint = match result {
        Ok(o) if o.status.success() => {
            std::fs::rename(&tmp, &obj).unwrap();
            let _ = std::fs::remove_file(&err);
            return;
        }
        Ok(o) => format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => format!("cannot run {}: {e}", tool.path().display()),
    };
    let _ = std::fs::remove_file(&tmp);
    println!(
        "cargo:warning={} does not compile; its tests will fail",
        src.display()
    );
    write_atomically(&err, complaint.as_bytes());
    let _ = std::fs::remove_file(&obj);
}

/// Replace `path` so that a concurrent reader sees the old or the new
/// contents, never a part.
fn write_atomically(path: &std::path::Path, data: &[u8]) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The newest modification time of the files with one of `exts` directly
/// in `dirs`.
fn newest_mtime(dirs: &[PathBuf], exts: &[&str]) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for dir in dirs {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension()
                .is_some_and(|x| exts.iter().any(|ext| x == *ext))
            {
                if let Ok(t) = e.metadata().and_then(|m| m.modified()) {
                    newest = newest.max(t);
                }
            }
        }
    }
    newest
}
