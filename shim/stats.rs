//! `LWKT_STATS`: what the tokens did, reported at exit (mutrace for tokens).
//!
//! Nothing here runs unless the variable is set: the fast path tests one
//! global flag (`config::timing`). When it is set, a table of per-token
//! counters is mapped once at start-up (no allocation later, no locks:
//! entries are claimed by compare-and-swap on the token's address), and the
//! report is written at exit with raw `write`s.

use core::fmt::Write;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*};

use crate::config;
use crate::diag::Desc;
use crate::sys;
use crate::token::Token;

/// Tokens tracked (a power of two); more land in the last entry.
const ENTRIES: usize = 4096;
/// Distinct blocking calls counted per token; more count as "other".
const CALLS: usize = 12;
/// Bytes of a token's description kept for the report.
const NAME_BYTES: usize = 48;
/// Wait-time histogram: bucket i counts waits of [2^i, 2^(i+1)) ns.
const BUCKETS: usize = 40;

struct Entry {
    /// The token's address; 0 while the entry is free.
    key: AtomicUsize,
    /// Its description, copied when the entry was claimed: at exit the
    /// token (and the string) may be gone.
    name: [AtomicU8; NAME_BYTES],
    acq_excl: AtomicU64,
    acq_shared: AtomicU64,
    contended: AtomicU64,
    wait_total_ns: AtomicU64,
    wait_max_ns: AtomicU64,
    wait_hist: [AtomicU32; BUCKETS],
    hold_max_ns: AtomicU64,
    /// Retakes that found another thread had held the token in between.
    lost: AtomicU64,
    /// Releases on block, by the call that blocked: (name pointer, count).
    call_name: [AtomicUsize; CALLS],
    call_len: [AtomicUsize; CALLS],
    call_count: [AtomicU64; CALLS],
    other_calls: AtomicU64,
}

struct Table {
    entries: [Entry; ENTRIES],
    threads: AtomicU64,
    deepest: AtomicU64,
}

static TABLE: AtomicPtr<Table> = AtomicPtr::new(core::ptr::null_mut());

pub fn init_process() {
    if !config::stats_on() {
        return;
    }
    // Zero-filled anonymous memory is a valid empty table.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            core::mem::size_of::<Table>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        crate::diag::warn(format_args!(
            "LWKT_STATS: no memory for the statistics table; not counting"
        ));
        return;
    }
    TABLE.store(p as *mut Table, Release);
    unsafe { libc::atexit(report_at_exit) };
}

fn table() -> Option<&'static Table> {
    let p = TABLE.load(Acquire);
    if p.is_null() {
        None
    } else {
        Some(unsafe { &*p })
    }
}

/// The entry of `tok`, claimed on first use.
fn entry(tok: *const Token) -> Option<&'static Entry> {
    let t = table()?;
    let key = tok as usize;
    let mut i = (key >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - ENTRIES.trailing_zeros());
    for _ in 0..ENTRIES {
        let e = &t.entries[i];
        match e.key.load(Acquire) {
            k if k == key => return Some(e),
            0 => match e.key.compare_exchange(0, key, AcqRel, Acquire) {
                Ok(_) => {
                    e.keep_name(tok);
                    return Some(e);
                }
                Err(k) if k == key => return Some(e),
                Err(_) => {}
            },
            _ => {}
        }
        i = (i + 1) % ENTRIES;
    }
    None
}

fn max(a: &AtomicU64, v: u64) {
    a.fetch_max(v, Relaxed);
}

pub fn thread_started() {
    if let Some(t) = table() {
        t.threads.fetch_add(1, Relaxed);
    }
}

pub fn acquired(tok: *const Token, exclusive: bool, depth: u32) {
    if let Some(e) = entry(tok) {
        if exclusive {
            &e.acq_excl
        } else {
            &e.acq_shared
        }
        .fetch_add(1, Relaxed);
    }
    if let Some(t) = table() {
        max(&t.deepest, depth as u64);
    }
}

/// The caller waited `ns` for `tok` (contention, or a retake after a block).
pub fn waited(tok: *const Token, ns: u64) {
    if let Some(e) = entry(tok) {
        e.contended.fetch_add(1, Relaxed);
        e.wait_total_ns.fetch_add(ns, Relaxed);
        max(&e.wait_max_ns, ns);
        let b = (63 - ns.max(1).leading_zeros() as usize).min(BUCKETS - 1);
        e.wait_hist[b].fetch_add(1, Relaxed);
    }
}

pub fn held(tok: *const Token, ns: u64) {
    if let Some(e) = entry(tok) {
        max(&e.hold_max_ns, ns);
    }
}

pub fn lost(tok: *const Token) {
    if let Some(e) = entry(tok) {
        e.lost.fetch_add(1, Relaxed);
    }
}

/// `tok` was released because its holder blocked in `call`.
pub fn released_on_block(tok: *const Token, call: &'static str) {
    let Some(e) = entry(tok) else { return };
    let name = call.as_ptr() as usize;
    for i in 0..CALLS {
        match e.call_name[i].load(Acquire) {
            n if n == name => {
                e.call_count[i].fetch_add(1, Relaxed);
                return;
            }
            // A free slot: claim it (or find that another thread claimed it
            // for the same call).
            0 if e.call_name[i]
                .compare_exchange(0, name, AcqRel, Acquire)
                .is_ok()
                || e.call_name[i].load(Acquire) == name =>
            {
                e.call_len[i].store(call.len(), Release);
                e.call_count[i].fetch_add(1, Relaxed);
                return;
            }
            _ => {}
        }
    }
    e.other_calls.fetch_add(1, Relaxed);
}

impl Entry {
    /// Copy the token's description now, while the token is in use.
    fn keep_name(&self, tok: *const Token) {
        let mut line = crate::diag::Line::new();
        let _ = write!(line, "{}", Desc(tok));
        let bytes = line.as_bytes();
        // Whole characters only.
        let mut n = bytes.len().min(NAME_BYTES);
        while n > 0 && core::str::from_utf8(&bytes[..n]).is_err() {
            n -= 1;
        }
        for (slot, &b) in self.name.iter().zip(&bytes[..n]) {
            slot.store(b, Relaxed);
        }
    }

    /// The description kept by `keep_name`.
    fn name(&self, buf: &mut [u8; NAME_BYTES]) -> usize {
        let mut n = 0;
        for (i, slot) in self.name.iter().enumerate() {
            buf[i] = slot.load(Relaxed);
            if buf[i] == 0 {
                break;
            }
            n = i + 1;
        }
        n
    }

    fn call(&self, i: usize) -> Option<(&'static str, u64)> {
        let p = self.call_name[i].load(Acquire);
        let len = self.call_len[i].load(Acquire);
        if p == 0 || len == 0 {
            return None;
        }
        let s = unsafe {
            core::str::from_utf8_unchecked(core::slice::from_raw_parts(p as *const u8, len))
        };
        Some((s, self.call_count[i].load(Relaxed)))
    }

    /// The wait time below which `q` (0..1) of the waits fall, from the
    /// histogram (upper bucket bound).
    fn wait_quantile(&self, q: f64) -> u64 {
        let total: u64 = self.wait_hist.iter().map(|b| b.load(Relaxed) as u64).sum();
        if total == 0 {
            return 0;
        }
        let want = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.wait_hist.iter().enumerate() {
            seen += b.load(Relaxed) as u64;
            if seen >= want {
                return (1u64 << (i + 1)).min(self.wait_max_ns.load(Relaxed).max(1));
            }
        }
        self.wait_max_ns.load(Relaxed)
    }
}

// ---- the report ----

/// Buffered output to a file descriptor with raw writes.
struct Out {
    fd: i32,
    buf: [u8; 8192],
    len: usize,
}

impl Out {
    fn flush(&mut self) {
        let mut off = 0;
        while off < self.len {
            let r = unsafe {
                sys::syscall3(
                    libc::SYS_write,
                    self.fd as usize,
                    self.buf[off..].as_ptr() as usize,
                    self.len - off,
                )
            };
            if r <= 0 {
                break;
            }
            off += r as usize;
        }
        self.len = 0;
    }
}

impl Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

/// Durations in a readable unit.
struct Ns(u64);

impl core::fmt::Display for Ns {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let n = self.0;
        let mut s = crate::diag::Line::new();
        let _ = if n < 10_000 {
            write!(s, "{n}ns")
        } else if n < 10_000_000 {
            write!(s, "{}us", n / 1000)
        } else {
            write!(s, "{}ms", n / 1_000_000)
        };
        // pad() honours the column widths of the table.
        f.pad(core::str::from_utf8(s.as_bytes()).unwrap_or("?"))
    }
}

/// An entry's kept description, as is.
struct Name<'a>(&'a Entry);

impl core::fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; NAME_BYTES];
        let n = self.0.name(&mut buf);
        f.pad(core::str::from_utf8(&buf[..n]).unwrap_or("?"))
    }
}

/// An entry's kept description as a JSON string body.
struct JsonDesc<'a>(&'a Entry);

impl core::fmt::Display for JsonDesc<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut buf = [0u8; NAME_BYTES];
        let n = self.0.name(&mut buf);
        let text = core::str::from_utf8(&buf[..n]).unwrap_or("?");
        for c in text.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

extern "C" fn report_at_exit() {
    let Some(t) = table() else { return };
    let mode = config::STATS.load(Relaxed);
    let fd = if mode == config::STATS_STDERR {
        2
    } else {
        let path = core::ptr::addr_of!(config::STATS_PATH) as *const u8;
        let fl = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_CLOEXEC;
        let r = unsafe {
            sys::syscall6(
                libc::SYS_openat,
                libc::AT_FDCWD as usize,
                path as usize,
                fl as usize,
                0o644,
                0,
                0,
            )
        };
        if r < 0 {
            crate::diag::warn(format_args!(
                "LWKT_STATS: cannot write the report (errno {})",
                -r
            ));
            return;
        }
        r as i32
    };
    // Used entries, most contended first (then most acquired).
    let mut order = [0u16; ENTRIES];
    let mut n = 0;
    for (i, e) in t.entries.iter().enumerate() {
        if e.key.load(Acquire) != 0 {
            order[n] = i as u16;
            n += 1;
        }
    }
    let order = &mut order[..n];
    let weight = |i: &u16| {
        let e = &t.entries[*i as usize];
        (
            e.contended.load(Relaxed),
            e.acq_excl.load(Relaxed) + e.acq_shared.load(Relaxed),
        )
    };
    order.sort_unstable_by_key(|i| core::cmp::Reverse(weight(i)));

    let mut out = Out {
        fd,
        buf: [0; 8192],
        len: 0,
    };
    if mode == config::STATS_JSON {
        let _ = write_json(&mut out, t, order);
    } else {
        let _ = write_table(&mut out, t, order);
    }
    out.flush();
    if fd != 2 {
        unsafe { sys::syscall3(libc::SYS_close, fd as usize, 0, 0) };
    }
}

fn write_table(out: &mut Out, t: &Table, order: &[u16]) -> core::fmt::Result {
    writeln!(
        out,
        "lwkt statistics (pid {}): {} token(s), {} thread(s) used tokens, deepest reference stack {}",
        sys::getpid(),
        order.len(),
        t.threads.load(Relaxed),
        t.deepest.load(Relaxed)
    )?;
    writeln!(
        out,
        "{:<28} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>6}  released on block by",
        "token", "excl", "shared", "contended", "wait tot", "p50", "p99", "max", "max hold", "lost"
    )?;
    for &i in order {
        let e = &t.entries[i as usize];
        write!(
            out,
            "{:<28} {:>10} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>6} ",
            Name(e),
            e.acq_excl.load(Relaxed),
            e.acq_shared.load(Relaxed),
            e.contended.load(Relaxed),
            Ns(e.wait_total_ns.load(Relaxed)),
            Ns(e.wait_quantile(0.5)),
            Ns(e.wait_quantile(0.99)),
            Ns(e.wait_max_ns.load(Relaxed)),
            Ns(e.hold_max_ns.load(Relaxed)),
            e.lost.load(Relaxed)
        )?;
        let mut any = false;
        for c in 0..CALLS {
            if let Some((name, count)) = e.call(c) {
                write!(out, " {name}={count}")?;
                any = true;
            }
        }
        let other = e.other_calls.load(Relaxed);
        if other != 0 {
            write!(out, " other={other}")?;
            any = true;
        }
        if !any {
            out.write_str(" -")?;
        }
        out.write_str("\n")?;
    }
    Ok(())
}

fn write_json(out: &mut Out, t: &Table, order: &[u16]) -> core::fmt::Result {
    write!(
        out,
        "{{\"pid\":{},\"threads_using_tokens\":{},\"deepest_reference_stack\":{},\"tokens\":[",
        sys::getpid(),
        t.threads.load(Relaxed),
        t.deepest.load(Relaxed)
    )?;
    for (k, &i) in order.iter().enumerate() {
        let e = &t.entries[i as usize];
        let tok = e.key.load(Relaxed) as *const Token;
        if k > 0 {
            out.write_str(",")?;
        }
        write!(
            out,
            "{{\"token\":\"{}\",\"pool\":{},\"acquisitions\":{{\"exclusive\":{},\"shared\":{}}},\"contended\":{},\
             \"wait_ns\":{{\"total\":{},\"p50\":{},\"p99\":{},\"max\":{}}},\"max_hold_ns\":{},\"lost_while_released\":{},\
             \"released_on_block\":{{",
            JsonDesc(e),
            crate::capi::pool_slot_of(tok).is_some(),
            e.acq_excl.load(Relaxed),
            e.acq_shared.load(Relaxed),
            e.contended.load(Relaxed),
            e.wait_total_ns.load(Relaxed),
            e.wait_quantile(0.5),
            e.wait_quantile(0.99),
            e.wait_max_ns.load(Relaxed),
            e.hold_max_ns.load(Relaxed),
            e.lost.load(Relaxed)
        )?;
        let mut first = true;
        for c in 0..CALLS {
            if let Some((name, count)) = e.call(c) {
                write!(out, "{}\"{name}\":{count}", if first { "" } else { "," })?;
                first = false;
            }
        }
        let other = e.other_calls.load(Relaxed);
        if other != 0 {
            write!(out, "{}\"other\":{other}", if first { "" } else { "," })?;
        }
        out.write_str("}}")?;
    }
    out.write_str("]}\n")
}
