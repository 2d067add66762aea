//! A snapshot in words (`--dump`) and as JSON (`--dump --json`).

use super::snapshot::{Hold, Snapshot, Thread};
use std::fmt::Write;

/// A duration for people: "850us", "12ms", "1.25s", "3m05s".
pub fn duration(ns: u64) -> String {
    match ns {
        0..=999_999 => format!("{}us", ns / 1_000),
        1_000_000..=999_999_999 => format!("{}ms", ns / 1_000_000),
        1_000_000_000..=59_999_999_999 => format!("{:.2}s", ns as f64 / 1e9),
        _ => format!("{}m{:02}s", ns / 60_000_000_000, ns / 1_000_000_000 % 60),
    }
}

fn mode(exclusive: bool) -> &'static str {
    if exclusive {
        "exclusive"
    } else {
        "shared"
    }
}

/// How long a hold has lasted: known (statistics on), at least as long
/// as a waiter has waited, or not known.
pub enum HeldFor {
    Exactly(u64),
    AtLeast(u64),
    Unknown,
}

pub fn held_for(s: &Snapshot, h: &Hold) -> HeldFor {
    match (h.since_ns, s.held_at_least(h.tok)) {
        (Some(since), _) => HeldFor::Exactly(s.now_ns.saturating_sub(since)),
        (None, Some(n)) => HeldFor::AtLeast(n),
        (None, None) => HeldFor::Unknown,
    }
}

impl HeldFor {
    pub fn words(&self) -> String {
        match self {
            HeldFor::Exactly(n) => duration(*n),
            HeldFor::AtLeast(n) => format!(">={}", duration(*n)),
            HeldFor::Unknown => "?".to_string(),
        }
    }
}

fn holds_words(s: &Snapshot, holds: &[Hold]) -> String {
    holds
        .iter()
        .map(|h| {
            let n = if h.refs > 1 {
                format!(" x{}", h.refs)
            } else {
                String::new()
            };
            format!("{} {}{n}", s.token_name(h.tok), mode(h.exclusive))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a thread is doing, in one line (without its id and name).
pub fn thread_words(s: &Snapshot, t: &Thread) -> String {
    let mut parts = Vec::new();
    if !t.holds.is_empty() {
        parts.push(format!("holds {}", holds_words(s, &t.holds)));
    }
    if let Some(w) = &t.wait {
        parts.push(format!(
            "waits for {} ({}) for {}",
            s.token_name(w.tok),
            mode(w.exclusive),
            duration(s.now_ns.saturating_sub(w.since_ns))
        ));
    }
    if let Some(b) = &t.block {
        parts.push(format!(
            "blocked in {}() for {}",
            b.call,
            duration(s.now_ns.saturating_sub(b.since_ns))
        ));
    }
    if !t.released.is_empty() {
        parts.push(format!(
            "released to take back: {}",
            holds_words(s, &t.released)
        ));
    }
    if parts.is_empty() {
        parts.push("holds no token".to_string());
    }
    parts.join("; ")
}

/// The `--dump` text: per token its holders and waiters, then per thread
/// what it holds, waits for and is blocked in.
pub fn text(s: &Snapshot) -> String {
    let mut o = String::new();
    let busy: Vec<&Thread> = s
        .threads
        .iter()
        .filter(|t| !t.holds.is_empty() || t.wait.is_some() || t.block.is_some())
        .collect();
    let _ = writeln!(
        o,
        "process {} ({}), {}: {} thread(s) use tokens, {} hold, wait or block now",
        s.pid,
        s.comm,
        s.library,
        s.threads.len(),
        busy.len()
    );
    if s.unread > 0 {
        let _ = writeln!(
            o,
            "({} thread(s) changed too fast to be read whole; not shown)",
            s.unread
        );
    }
    for tok in s.tokens.values() {
        let _ = writeln!(o, "\ntoken {} at {:#x}", s.token_name(tok.addr), tok.addr);
        let mut any = false;
        for t in &s.threads {
            for h in t.holds.iter().filter(|h| h.tok == tok.addr) {
                any = true;
                let _ = writeln!(
                    o,
                    "  held by    {:>7} {:<16} {:<9} for {}",
                    t.tid,
                    t.name,
                    mode(h.exclusive),
                    held_for(s, h).words()
                );
            }
        }
        for t in &s.threads {
            if let Some(w) = t.wait.as_ref().filter(|w| w.tok == tok.addr) {
                any = true;
                let _ = writeln!(
                    o,
                    "  waited by  {:>7} {:<16} {:<9} for {}",
                    t.tid,
                    t.name,
                    mode(w.exclusive),
                    duration(s.now_ns.saturating_sub(w.since_ns))
                );
            }
        }
        for t in &s.threads {
            for h in t.released.iter().filter(|h| h.tok == tok.addr) {
                any = true;
                let why = match &t.block {
                    Some(b) => format!("blocked in {}()", b.call),
                    None => "waiting".to_string(),
                };
                let _ = writeln!(
                    o,
                    "  released by{:>7} {:<16} {:<9} while {why}",
                    t.tid,
                    t.name,
                    mode(h.exclusive)
                );
            }
        }
        if !any {
            let _ = writeln!(o, "  free");
        }
    }
    if !busy.is_empty() {
        let _ = writeln!(o);
    }
    for t in busy {
        let _ = writeln!(
            o,
            "thread {:>7} {:<16} {}",
            t.tid,
            t.name,
            thread_words(s, t)
        );
    }
    o
}

/// A JSON string literal.
fn js(v: &str) -> String {
    let mut o = String::from("\"");
    for c in v.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn json_opt(v: Option<u64>) -> String {
    v.map_or("null".to_string(), |n| n.to_string())
}

fn json_hold(s: &Snapshot, h: &Hold) -> String {
    let (held, at_least) = match held_for(s, h) {
        HeldFor::Exactly(n) => (Some(n), None),
        HeldFor::AtLeast(n) => (None, Some(n)),
        HeldFor::Unknown => (None, None),
    };
    format!(
        "{{\"token\":\"{:#x}\",\"name\":{},\"mode\":\"{}\",\"references\":{},\"held_ns\":{},\"held_at_least_ns\":{}}}",
        h.tok,
        name_json(s, h.tok),
        mode(h.exclusive),
        h.refs,
        json_opt(held),
        json_opt(at_least)
    )
}

fn name_json(s: &Snapshot, tok: u64) -> String {
    match s.tokens.get(&tok).and_then(|t| t.name.as_deref()) {
        Some(n) => js(n),
        None => "null".to_string(),
    }
}

/// The `--dump --json` object (one line).
pub fn json(s: &Snapshot) -> String {
    let mut threads = Vec::new();
    for t in &s.threads {
        let holds: Vec<String> = t.holds.iter().map(|h| json_hold(s, h)).collect();
        let released: Vec<String> = t.released.iter().map(|h| json_hold(s, h)).collect();
        let wait = match &t.wait {
            Some(w) => format!(
                "{{\"token\":\"{:#x}\",\"name\":{},\"mode\":\"{}\",\"waited_ns\":{}}}",
                w.tok,
                name_json(s, w.tok),
                mode(w.exclusive),
                s.now_ns.saturating_sub(w.since_ns)
            ),
            None => "null".to_string(),
        };
        let block = match &t.block {
            Some(b) => format!(
                "{{\"call\":{},\"blocked_ns\":{}}}",
                js(&b.call),
                s.now_ns.saturating_sub(b.since_ns)
            ),
            None => "null".to_string(),
        };
        threads.push(format!(
            "{{\"tid\":{},\"name\":{},\"holds\":[{}],\"released\":[{}],\"waiting\":{wait},\"blocked\":{block}}}",
            t.tid,
            js(&t.name),
            holds.join(","),
            released.join(",")
        ));
    }
    let mut tokens = Vec::new();
    for tok in s.tokens.values() {
        let mut holders = Vec::new();
        let mut waiters = Vec::new();
        for t in &s.threads {
            for h in t.holds.iter().filter(|h| h.tok == tok.addr) {
                let (held, at_least) = match held_for(s, h) {
                    HeldFor::Exactly(n) => (Some(n), None),
                    HeldFor::AtLeast(n) => (None, Some(n)),
                    HeldFor::Unknown => (None, None),
                };
                holders.push(format!(
                    "{{\"tid\":{},\"name\":{},\"mode\":\"{}\",\"held_ns\":{},\"held_at_least_ns\":{}}}",
                    t.tid,
                    js(&t.name),
                    mode(h.exclusive),
                    json_opt(held),
                    json_opt(at_least)
                ));
            }
            if let Some(w) = t.wait.as_ref().filter(|w| w.tok == tok.addr) {
                waiters.push(format!(
                    "{{\"tid\":{},\"name\":{},\"mode\":\"{}\",\"waited_ns\":{}}}",
                    t.tid,
                    js(&t.name),
                    mode(w.exclusive),
                    s.now_ns.saturating_sub(w.since_ns)
                ));
            }
        }
        tokens.push(format!(
            "{{\"token\":\"{:#x}\",\"name\":{},\"holders\":[{}],\"waiters\":[{}]}}",
            tok.addr,
            name_json(s, tok.addr),
            holders.join(","),
            waiters.join(",")
        ));
    }
    format!(
        "{{\"pid\":{},\"comm\":{},\"library\":{},\"unread_threads\":{},\"tokens\":[{}],\"threads\":[{}]}}\n",
        s.pid,
        js(&s.comm),
        js(&s.library),
        s.unread,
        tokens.join(","),
        threads.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(850_000), "850us");
        assert_eq!(duration(12_000_000), "12ms");
        assert_eq!(duration(1_250_000_000), "1.25s");
        assert_eq!(duration(185_000_000_000), "3m05s");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(js("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
    }
}
