//! The oldest glibc the library runs on (SPEC section 7, "Hostile
//! settings"): liblwkt.so and lwkt-run need no glibc symbol version newer
//! than `OLDEST_GLIBC`, as their ELF version needs (`.gnu.version_r`) say;
//! and a libc function that the running glibc lacks is simply not hooked,
//! never an abort when the library loads.
//!
//! The version needs are read by a small ELF parser here (no tool, no new
//! dependency); `readelf -V`, when installed, must agree with it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The oldest glibc that liblwkt.so and lwkt-run run on, as docs/SPEC.md
/// ("Hostile settings") and README ("Limits") state it. 2.34 merged
/// libpthread and libdl into libc: the Rust standard library's `pthread_*`
/// and `dlsym` references bind to GLIBC_2.34 when built on a newer glibc.
/// Raising it is a decision for the docs first.
const OLDEST_GLIBC: (u32, u32) = (2, 34);

const LWKT_RUN: &str = env!("CARGO_BIN_EXE_lwkt-run");

/// One version that an ELF object needs from a library, with the
/// undefined symbols that bind to it.
#[derive(Debug, Clone, PartialEq)]
struct Need {
    file: String,
    version: String,
    symbols: Vec<String>,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], off: usize) -> usize {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap()) as usize
}

fn c_str(b: &[u8], off: usize) -> String {
    let end = b[off..]
        .iter()
        .position(|&c| c == 0)
        .map_or(b.len(), |n| off + n);
    String::from_utf8_lossy(&b[off..end]).into_owned()
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    info: usize,
}

const SHT_DYNSYM: u32 = 11;
const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
const SHT_GNU_VERSYM: u32 = 0x6fff_ffff;

/// The version needs of the 64-bit little-endian ELF object at `path`.
fn version_needs(path: &Path) -> Vec<Need> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2 && b[5] == 1,
        "{}: not a 64-bit little-endian ELF file",
        path.display()
    );
    let (shoff, shentsize, shnum) = (
        u64_at(&b, 0x28),
        u16_at(&b, 0x3a) as usize,
        u16_at(&b, 0x3c),
    );
    let sections: Vec<Section> = (0..shnum as usize)
        .map(|i| {
            let h = shoff + i * shentsize;
            Section {
                kind: u32_at(&b, h + 4),
                offset: u64_at(&b, h + 24),
                size: u64_at(&b, h + 32),
                link: u32_at(&b, h + 40) as usize,
                info: u32_at(&b, h + 44) as usize,
            }
        })
        .collect();
    let Some(verneed) = sections.iter().find(|s| s.kind == SHT_GNU_VERNEED) else {
        return Vec::new();
    };
    let strtab = sections[verneed.link].offset;
    // Verneed entries (one a library), each with Vernaux entries (one a
    // version); `vna_other` is the index that .gnu.version gives symbols.
    let mut needs = Vec::new();
    let mut by_index = std::collections::HashMap::new();
    let mut vn = verneed.offset;
    for _ in 0..verneed.info {
        let file = c_str(&b, strtab + u32_at(&b, vn + 4) as usize);
        let mut aux = vn + u32_at(&b, vn + 8) as usize;
        for _ in 0..u16_at(&b, vn + 2) {
            by_index.insert(u16_at(&b, aux + 6), needs.len());
            needs.push(Need {
                file: file.clone(),
                version: c_str(&b, strtab + u32_at(&b, aux + 8) as usize),
                symbols: Vec::new(),
            });
            aux += u32_at(&b, aux + 12) as usize;
        }
        vn += u32_at(&b, vn + 12) as usize;
    }
    // Which symbols bind to each version (for a failure message).
    let dynsym = sections.iter().find(|s| s.kind == SHT_DYNSYM);
    let versym = sections.iter().find(|s| s.kind == SHT_GNU_VERSYM);
    if let (Some(dynsym), Some(versym)) = (dynsym, versym) {
        let names = sections[dynsym.link].offset;
        for i in 0..dynsym.size / 24 {
            let sym = dynsym.offset + i * 24;
            let undefined = u16_at(&b, sym + 6) == 0;
            let index = u16_at(&b, versym.offset + i * 2) & 0x7fff;
            if let (true, Some(&n)) = (undefined, by_index.get(&index)) {
                let name = c_str(&b, names + u32_at(&b, sym) as usize);
                needs[n].symbols.push(name);
            }
        }
    }
    needs
}

/// `GLIBC_2.x` or `GLIBC_2.x.y` as (2, x); None for other names.
fn glibc_version(name: &str) -> Option<(u32, u32)> {
    let mut parts = name.strip_prefix("GLIBC_")?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The needs that a glibc as old as `oldest` cannot meet: a newer
/// version, or its private interface (which binds to one glibc build).
fn beyond(needs: &[Need], oldest: (u32, u32)) -> Vec<Need> {
    needs
        .iter()
        .filter(|n| n.version.starts_with("GLIBC_"))
        .filter(|n| glibc_version(&n.version).is_none_or(|v| v > oldest))
        .cloned()
        .collect()
}

fn products() -> [PathBuf; 2] {
    [common::lib_path(), PathBuf::from(LWKT_RUN)]
}

#[test]
fn needs_no_glibc_newer_than_the_stated_oldest() {
    for path in products() {
        let needs = version_needs(&path);
        assert!(
            needs.iter().any(|n| glibc_version(&n.version).is_some()),
            "{}: no GLIBC_ version need found (parser broken?): {needs:?}",
            path.display()
        );
        let bad = beyond(&needs, OLDEST_GLIBC);
        assert!(
            bad.is_empty(),
            "{} needs more than the glibc {}.{} that the docs state:\n{}",
            path.display(),
            OLDEST_GLIBC.0,
            OLDEST_GLIBC.1,
            bad.iter()
                .map(|n| format!("  {} {} ({})", n.file, n.version, n.symbols.join(", ")))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// The check can fail: the same needs against an older glibc are flagged,
/// each with the symbols that need it, and a private interface always is.
#[test]
fn a_newer_need_is_flagged_with_its_symbols() {
    let needs = version_needs(&common::lib_path());
    let newest = needs
        .iter()
        .filter_map(|n| glibc_version(&n.version))
        .max()
        .expect("a GLIBC_ need");
    let flagged = beyond(&needs, (newest.0, newest.1 - 1));
    assert!(!flagged.is_empty());
    for n in &flagged {
        assert!(!n.symbols.is_empty(), "{n:?}: no symbol found for it");
    }
    let private = Need {
        file: "libc.so.6".into(),
        version: "GLIBC_PRIVATE".into(),
        symbols: vec!["__libc_x".into()],
    };
    assert_eq!(
        beyond(std::slice::from_ref(&private), (9, 99)),
        vec![private]
    );
}

/// `readelf -V` (binutils), where installed, finds the same versions.
#[test]
fn the_parser_agrees_with_readelf() {
    let path = common::lib_path();
    let out = match Command::new("readelf").arg("-V").arg(&path).output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        _ => {
            eprintln!("skipped: readelf is not installed");
            return;
        }
    };
    // The needs part: "Name: GLIBC_2.34  Flags: none  Version: 5" lines.
    let needs_part = out.split(".gnu.version_r").nth(1).unwrap_or("");
    let mut theirs: Vec<String> = needs_part
        .lines()
        .filter_map(|l| l.split("Name: ").nth(1))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    let mut ours: Vec<String> = version_needs(&path)
        .into_iter()
        .map(|n| n.version)
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs, "readelf -V:\n{out}");
}

/// Does the glibc running these tests have `name`?
fn libc_has(name: &std::ffi::CStr) -> bool {
    !unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) }.is_null()
}

/// A program starts with the library preloaded; under LWKT_DEBUG a
/// function that this glibc lacks is named once as not hooked, and none is
/// where it has them all.
#[test]
fn a_program_starts_and_debug_names_only_missing_functions() {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "exit 0"])
        .env("LD_PRELOAD", common::lib_path())
        .env("LWKT_DEBUG", "1");
    let out = common::run_with_timeout(cmd, None, Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        out.report(Duration::from_secs(30))
    );
    assert!(
        out.stderr.contains("lwkt: debug on"),
        "stderr: {}",
        out.stderr
    );
    let said: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("not hooked"))
        .collect();
    if libc_has(c"epoll_pwait2") {
        assert!(said.is_empty(), "nothing is missing here: {said:?}");
    } else {
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("epoll_pwait2"), "{said:?}");
    }
}
