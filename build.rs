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
}
