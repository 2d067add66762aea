//! The mirror of include/lwkt.h (shim/mirror/lwkt_h.rs) against the header
//! itself, through the C compiler: the header's fields of `struct
//! lwkt_token` and its functions are the mirror's, in the same order, and
//! the compiler agrees with the mirror on `sizeof`, `_Alignof`, every
//! field's `offsetof` and `sizeof`, and every function's type.
//!
//! The compiler is `LWKT_CTEST_CC` (at run time, else the one build.rs
//! found), else `cc`. The checks are `_Static_assert`s in a source that
//! the compiler only parses (`-fsyntax-only`): nothing is linked or run.

use crate::lwkt_h::{Api, ALIGN, FIELDS, SIZE};
use std::io::Write;
use std::process::{Command, Stdio};

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/lwkt.h");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn compiler() -> String {
    std::env::var("LWKT_CTEST_CC")
        .ok()
        .filter(|c| !c.is_empty())
        .or(option_env!("LWKT_CTEST_CC").map(String::from))
        .unwrap_or_else(|| "cc".into())
}

/// The identifier that ends `text` (`const char *lwkt_version` ->
/// `lwkt_version`).
fn last_identifier(text: &str) -> &str {
    text.trim_end()
        .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .next()
        .unwrap_or("")
}

/// The fields of `struct lwkt_token` as the header declares them.
fn header_fields(header: &str) -> Vec<String> {
    let Some(start) = header.find("struct lwkt_token {") else {
        return vec![];
    };
    let body = &header[start..];
    let body = &body[..body.find("};").unwrap_or(body.len())];
    body.lines()
        .map(str::trim)
        .filter(|l| l.ends_with(';') && !l.starts_with('*') && !l.starts_with('/'))
        .map(|l| last_identifier(l.trim_end_matches(';')).to_string())
        .collect()
}

/// The functions the header declares (a line that starts a declaration:
/// the identifier before its first parenthesis).
fn header_functions(header: &str) -> Vec<String> {
    header
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter_map(|l| l.split_once('('))
        .map(|(before, _)| last_identifier(before).to_string())
        .filter(|name| name.starts_with("lwkt_"))
        .collect()
}

/// The C type of a parameter or result type as `api_table!` writes it.
fn c_type(rust: &str) -> &'static str {
    match rust.replace(' ', "").as_str() {
        "TokenPtr" => "lwkt_token_t",
        "Mark" => "lwkt_mark_t",
        "c_int" => "int",
        "*constc_char" => "const char *",
        "*constc_void" => "const void *",
        other => panic!("mirror_test: no C type known for the Rust type {other}: add it here"),
    }
}

/// A C source: the header, then one `_Static_assert` for each fact the
/// mirror states, each message naming the fact.
fn c_checks(header: &str) -> String {
    let mut c = format!("{header}\n#include <stddef.h>\n");
    let mut check = |cond: String, what: String| {
        c += &format!("_Static_assert({cond}, \"{what}\");\n");
    };
    let t = "struct lwkt_token";
    check(
        format!("sizeof({t}) == {SIZE}"),
        format!("the mirror: sizeof({t}) == {SIZE}"),
    );
    check(
        format!("_Alignof({t}) == {ALIGN}"),
        format!("the mirror: _Alignof({t}) == {ALIGN}"),
    );
    for f in FIELDS {
        let (name, offset, size) = (f.name, f.offset, f.size);
        check(
            format!("offsetof({t}, {name}) == {offset}"),
            format!("the mirror: {name} at offset {offset}"),
        );
        check(
            format!("sizeof((({t} *)0)->{name}) == {size}"),
            format!("the mirror: {name} of {size} bytes"),
        );
    }
    for s in Api::SIGNATURES {
        let ret = s.ret.map_or("void", c_type);
        let args: Vec<&str> = s.args.iter().map(|a| c_type(a)).collect();
        let args = if args.is_empty() {
            "void".to_string()
        } else {
            args.join(", ")
        };
        let ty = format!("{ret} ({args})");
        check(
            format!("__builtin_types_compatible_p(__typeof__({}), {ty})", s.name),
            format!("the mirror: {} is {ty}", s.name),
        );
    }
    c
}

/// Everything in which `header` and the mirror differ, or Ok.
fn compare(header: &str) -> Result<(), String> {
    let mut wrong = Vec::new();
    let ours: Vec<&str> = FIELDS.iter().map(|f| f.name).collect();
    let theirs = header_fields(header);
    if ours != theirs {
        wrong.push(format!(
            "struct lwkt_token: the header has the fields {theirs:?}, the mirror {ours:?}"
        ));
    }
    let ours: Vec<&str> = Api::SIGNATURES.iter().map(|s| s.name).collect();
    let theirs = header_functions(header);
    if ours != theirs {
        wrong.push(format!(
            "the header declares the functions {theirs:?}, the mirror's table has {ours:?}"
        ));
    }
    let cc = compiler();
    let mut child = Command::new(&cc)
        .args(["-fsyntax-only", "-Werror", "-x", "c", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    let source = c_checks(header);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(source.as_bytes())
        .expect("write the C source to the compiler");
    let out = child.wait_with_output().expect("wait for the C compiler");
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let failed: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("the mirror:") || l.contains("error"))
            .collect();
        wrong.push(format!("{cc} disagrees: {}", failed.join("\n")));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n"))
    }
}

#[test]
fn mirror_matches_include_lwkt_h() {
    if let Err(e) = compare(&header()) {
        panic!("shim/mirror/lwkt_h.rs differs from include/lwkt.h:\n{e}");
    }
}

/// The test above can fail: a header changed in each way the mirror could
/// miss is reported, by name.
#[test]
fn mirror_test_finds_each_kind_of_difference() {
    let real = header();
    let changed = |from: &str, to: &str| {
        assert!(real.contains(from), "include/lwkt.h no longer has {from:?}");
        real.replacen(from, to, 1)
    };
    let cases = [
        (
            "a field's size",
            changed("uint32_t t_handoff;", "uint64_t t_handoff;"),
            "t_handoff of 4 bytes",
        ),
        (
            "a field's name",
            changed("uint32_t t_wake;", "uint32_t t_wake2;"),
            "t_wake2",
        ),
        (
            "fields' order",
            changed("uint32_t t_waiters;", "uint32_t t_swap;")
                .replacen("uint32_t t_wake;", "uint32_t t_waiters;", 1)
                .replacen("uint32_t t_swap;", "uint32_t t_wake;", 1),
            "t_waiters at offset 8",
        ),
        (
            "a new field",
            changed("const char *t_desc;", "const char *t_desc;\n  int t_new;"),
            "t_new",
        ),
        (
            "a function's result",
            changed("int lwkt_cnttoken(", "long lwkt_cnttoken("),
            "lwkt_cnttoken is int (lwkt_token_t)",
        ),
        (
            "a function's parameter",
            changed(
                "void lwkt_relpooltoken(const void *ptr)",
                "void lwkt_relpooltoken(void *ptr)",
            ),
            "lwkt_relpooltoken is void (const void *)",
        ),
        (
            "a new function",
            changed(
                "void lwkt_relpooltoken(",
                "void lwkt_new_call(void);\nvoid lwkt_relpooltoken(",
            ),
            "lwkt_new_call",
        ),
    ];
    for (what, header, named) in cases {
        match compare(&header) {
            Ok(()) => panic!("a header with {what} changed passed"),
            Err(e) => assert!(e.contains(named), "{what}: {named:?} not named in:\n{e}"),
        }
    }
}
