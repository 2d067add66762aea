//! The comparison table of SPEC section 1, every cell measured now: each
//! scenario runs once with a token and once with a pthread mutex, and the
//! cell shows the verdict with what was measured under it.
//!
//! This file draws the table; each scenario, and the rows of SPEC's table
//! that it measures, is a file of its own.

mod blocking;
mod counting;
mod deadlock;
mod preemption;

use std::thread;
use std::time::Duration;

/// One cell: the verdict, what SPEC section 1 says, and the evidence.
struct Cell {
    verdict: &'static str,
    expected: &'static str,
    evidence: Vec<String>,
}

struct Row {
    /// The property, as SPEC words it (wrapped by hand).
    property: &'static [&'static str],
    /// How it was measured.
    setup: Vec<String>,
    tokens: Cell,
    mutexes: Cell,
}

const P: usize = 36;
const C: usize = 30;

fn rule() {
    println!("  {:-<P$}-+-{:-<C$}-+-{:-<C$}", "", "", "");
}

fn print_header() {
    println!("  {:<P$} | {:<C$} | mutexes", "property", "tokens");
    rule();
}

/// A verdict, marked when it is not what SPEC says.
fn verdict(c: &Cell) -> String {
    if c.verdict == c.expected {
        c.verdict.to_string()
    } else {
        format!("{} (!) SPEC: {}", c.verdict, c.expected)
    }
}

fn print_row(r: &Row) {
    let left: Vec<String> = r
        .property
        .iter()
        .map(|s| s.to_string())
        .chain(r.setup.iter().map(|s| format!("  {s}")))
        .collect();
    let tok: Vec<String> = std::iter::once(verdict(&r.tokens))
        .chain(r.tokens.evidence.iter().cloned())
        .collect();
    let mtx: Vec<String> = std::iter::once(verdict(&r.mutexes))
        .chain(r.mutexes.evidence.iter().cloned())
        .collect();
    let n = left.len().max(tok.len()).max(mtx.len());
    let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
    for i in 0..n {
        let line = format!(
            "  {:<P$} | {:<C$} | {}",
            at(&left, i),
            at(&tok, i),
            at(&mtx, i)
        );
        println!("{}", line.trim_end());
    }
    rule();
}

/// 1234567 -> "1,234,567".
fn num(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m < 0.01 {
        format!("{:.1} µs", m * 1e3)
    } else if m < 1.0 {
        format!("{:.0} µs", m * 1e3)
    } else if m < 10.0 {
        format!("{m:.2} ms")
    } else {
        format!("{m:.0} ms")
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawn a thread")
}

fn works_if(ok: bool) -> &'static str {
    if ok {
        "works"
    } else {
        "fails"
    }
}

/// A row that could not be measured here.
fn unmeasured(
    property: &'static [&'static str],
    tok: &'static str,
    mtx: &'static str,
    why: &str,
) -> Row {
    let cell = |expected| Cell {
        verdict: "not measured",
        expected,
        evidence: vec![why.to_string()],
    };
    Row {
        property,
        setup: vec![],
        tokens: cell(tok),
        mutexes: cell(mtx),
    }
}

/// Measure and print every row; the number of cells that differ from SPEC.
pub fn run() -> usize {
    print_header();
    let rows: [fn() -> Row; 6] = [
        counting::timeslicing,
        counting::other_cpus,
        preemption::preemption,
        blocking::voluntary_blocking,
        deadlock::deadlock,
        blocking::priority_inversion,
    ];
    let mut mismatches = 0;
    for f in rows {
        let row = f();
        print_row(&row);
        mismatches += [&row.tokens, &row.mutexes]
            .iter()
            .filter(|c| c.verdict != c.expected)
            .count();
    }
    mismatches
}
