//! Build steps of liblwkt.so that cargo cannot express in Cargo.toml.
//!
//! - The header: cbindgen makes `lwkt.h` from the C API's sources, into
//!   OUT_DIR only. The committed `include/lwkt.h` is checked against it by
//!   the test `header_is_fresh`, which says how to refresh it.
//! - How the shared object is linked (SONAME, `-z nodelete`, the glibc
//!   version nodes of the condition-wait hooks: `shared_object_link_args`).
//! - The C compilers the test drivers use (found here, where cargo's view
//!   of the target and of `CC`/`CXX` is; nothing is compiled here: the
//!   drivers in c-tests/ compile their C programs themselves).

use std::path::{Path, PathBuf};

/// The Rust sources cbindgen reads for the header (the C API, the pool's
/// size and the token type it exposes), in the header's order.
const HEADER_SOURCES: &[&str] = &[
    "shim/api/mod.rs",
    "shim/api/assert.rs",
    "shim/api/lost.rs",
    "shim/api/version.rs",
    "shim/api/pool.rs",
    "shim/core/pool.rs",
    "shim/core/word.rs",
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    generate_header(&root, &out);
    shared_object_link_args(&root);
    c_compilers_for_tests();
}

/// `OUT_DIR/lwkt.h`, made by cbindgen; its path goes to the tests as
/// `LWKT_FRESH_HEADER`.
fn generate_header(root: &Path, out: &Path) {
    println!("cargo:rerun-if-changed=cbindgen.toml");
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut builder = cbindgen::Builder::new().with_config(config);
    for src in HEADER_SOURCES {
        println!("cargo:rerun-if-changed={src}");
        builder = builder.with_src(root.join(src));
    }
    let header = builder
        .generate()
        .unwrap_or_else(|e| panic!("cbindgen could not read {HEADER_SOURCES:?}: {e}"));
    let path = out.join("lwkt.h");
    header.write_to_file(&path);
    println!("cargo:rustc-env=LWKT_FRESH_HEADER={}", path.display());
}

/// How liblwkt.so is linked (SPEC sections 3 and 7):
/// - SONAME `liblwkt.so.MAJOR`, so that programs record the ABI they were
///   linked against and a future incompatible library can live beside it;
/// - `-z nodelete`: once loaded it stays mapped, because dlclose() cannot
///   know that a thread-exit destructor and the SIGSYS handler still point
///   into it.
///
/// Programs linked with `-llwkt` ask for `liblwkt.so.MAJOR` at run time;
/// that name in the build directory is made by whoever builds the library
/// there for programs (`lwkt-run` under `cargo run`, the test drivers), not
/// here: a build script writes only into OUT_DIR.
///
/// - `--version-script` adds the glibc version nodes that the
///   `pthread_cond_*` hooks are exported under (the file says why). It
///   goes beside rustc's own anonymous script, which rust-lld (rustc's
///   linker on this target) accepts and GNU ld refuses ("anonymous
///   version tag cannot be combined with other version tags").
fn shared_object_link_args(root: &Path) {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    let soname = format!("liblwkt.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    let script = root.join("shim/interpose/hooks/glibc_versions.map");
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        script.display()
    );
}

/// The C and C++ compilers for this target (cc's choice: `CC`, `CXX`,
/// `TARGET_CC`, … or the platform's `cc`/`c++`), for the test drivers:
/// `LWKT_CTEST_CC` and `LWKT_CTEST_CXX`. Only their paths: the drivers
/// choose their own flags.
fn c_compilers_for_tests() {
    for var in ["CC", "CXX"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let tool = |cxx: bool| {
        cc::Build::new()
            .cpp(cxx)
            .cargo_metadata(false)
            .get_compiler()
    };
    println!(
        "cargo:rustc-env=LWKT_CTEST_CC={}",
        tool(false).path().display()
    );
    println!(
        "cargo:rustc-env=LWKT_CTEST_CXX={}",
        tool(true).path().display()
    );
}
