//! `LWKT_STATS`: what the tokens did, reported at exit (mutrace for tokens).
//!
//! Nothing here runs unless the variable is set: the fast path tests one
//! global flag (`config::timing`). When it is set, a table of per-token
//! counters is mapped once at start-up (no allocation later, no locks:
//! entries are claimed by compare-and-swap on the token's address). At exit
//! the report is built whole in memory mapped for it, then handed to
//! `report` (where it goes, in one piece). A process that never used a
//! token reports nothing; a fork child starts with an empty table; what a
//! full table could not show is counted and said (SPEC section 7).

use core::fmt::Write;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*,
};

use crate::config;
use crate::diag::Desc;
use crate::report;
use crate::sys;
use crate::token::Token;

/// Tokens tracked (a power of two); the acquisitions of any more are
/// counted as not shown.
const ENTRIES: usize = 4096;
/// Addresses of the tokens that found the table full, to count each once
/// (a power of two; past it, or past `SPILL_PROBES` collisions, the count
/// is a lower bound).
const SPILL: usize = 1 << 16;
const SPILL_PROBES: usize = 64;
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
    /// Acquisitions of tokens that found no entry.
    unshown_acquisitions: AtomicU64,
    /// Those tokens (addresses; 0 is free), and how many.
    spill: [AtomicUsize; SPILL],
    spilled: AtomicU64,
    /// Some such token found no place in `spill` either.
    spill_full: AtomicBool,
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
    unsafe {
        libc::pthread_atfork(None, None, Some(fork_child));
        libc::atexit(report_at_exit);
    }
}

/// In a fork child: the parent's acquisitions are the parent's to report.
/// The table becomes fresh zero pages (nothing copied); the forking thread,
/// if it used tokens, is the one thread that has.
extern "C" fn fork_child() {
    let p = TABLE.load(Acquire);
    if p.is_null() {
        return;
    }
    let size = core::mem::size_of::<Table>();
    let r = unsafe {
        sys::syscall3(
            libc::SYS_madvise,
            p as usize,
            size,
            libc::MADV_DONTNEED as usize,
        )
    };
    if r != 0 {
        // SAFETY: only this thread exists in the child; zero is empty.
        unsafe { core::ptr::write_bytes(p as *mut u8, 0, size) };
    }
    if crate::thread::used_tokens() {
        unsafe { &*p }.threads.store(1, Relaxed);
    }
}

fn table() -> Option<&'static Table> {
    let p = TABLE.load(Acquire);
    if p.is_null() {
        None
    } else {
        Some(unsafe { &*p })
    }
}

/// Where `key` (a token's address) starts its probe in a table of `n`
/// (a power of two) slots.
fn slot_of(key: usize, n: usize) -> usize {
    (key >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - n.trailing_zeros())
}

/// The entry of `tok`, claimed on first use; None when the table is full.
fn entry(tok: *const Token) -> Option<&'static Entry> {
    let t = table()?;
    let key = tok as usize;
    let mut i = slot_of(key, ENTRIES);
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
    let Some(t) = table() else { return };
    if let Some(e) = entry(tok) {
        if exclusive {
            &e.acq_excl
        } else {
            &e.acq_shared
        }
        .fetch_add(1, Relaxed);
    } else {
        not_shown(t, tok as usize);
    }
    max(&t.deepest, depth as u64);
}

/// An acquisition of a token the full table has no entry for: count it,
/// and the token once.
#[cold]
fn not_shown(t: &Table, key: usize) {
    t.unshown_acquisitions.fetch_add(1, Relaxed);
    let mut i = slot_of(key, SPILL);
    for _ in 0..SPILL_PROBES {
        match t.spill[i].load(Acquire) {
            k if k == key => return,
            0 => match t.spill[i].compare_exchange(0, key, AcqRel, Acquire) {
                Ok(_) => {
                    t.spilled.fetch_add(1, Relaxed);
                    return;
                }
                Err(k) if k == key => return,
                Err(_) => {}
            },
            _ => {}
        }
        i = (i + 1) % SPILL;
    }
    t.spill_full.store(true, Relaxed);
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

/// Room for the header (the program's name is cut to `PROGRAM_BYTES`) and
/// the closing lines, and for one token's row, in either form: more than
/// the longest each can be (the test `row_fits` checks the worst case).
const HEAD_MAX: usize = 4096;
const TAIL_MAX: usize = 512;
const ROW_MAX: usize = 2048;
const PROGRAM_BYTES: usize = 255;
/// Bytes of a blocking call's name shown (they are our own identifiers).
const CALL_NAME_MAX: usize = 40;

/// The report, built in memory mapped at exit. Never overruns: what does
/// not fit is cut and `cut` set (then nothing is written: a report
/// arrives whole or not at all).
struct Buf<'a> {
    mem: &'a mut [u8],
    len: usize,
    cut: bool,
}

impl Buf<'_> {
    fn bytes(&self) -> &[u8] {
        &self.mem[..self.len]
    }
}

impl Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.mem.len() - self.len);
        self.mem[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            self.cut = true;
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
        write!(f, "{}", report::Json(&buf[..n]))
    }
}

extern "C" {
    static program_invocation_short_name: *const libc::c_char;
}

/// The program's name (argv[0] without its directory, as glibc keeps it),
/// cut to `PROGRAM_BYTES`.
fn program() -> &'static [u8] {
    let p = unsafe { program_invocation_short_name };
    if p.is_null() {
        return b"?";
    }
    let name = unsafe { core::ffi::CStr::from_ptr(p) }.to_bytes();
    &name[..name.len().min(PROGRAM_BYTES)]
}

/// What a full table could not show: tokens, whether that is a lower
/// bound, acquisitions.
fn unshown(t: &Table) -> (u64, bool, u64) {
    (
        t.spilled.load(Relaxed),
        t.spill_full.load(Relaxed),
        t.unshown_acquisitions.load(Relaxed),
    )
}

extern "C" fn report_at_exit() {
    let Some(t) = table() else { return };
    // Used entries, most contended first (then most acquired).
    let mut order = [0u16; ENTRIES];
    let mut n = 0;
    for (i, e) in t.entries.iter().enumerate() {
        if e.key.load(Acquire) != 0 {
            order[n] = i as u16;
            n += 1;
        }
    }
    // A process that never used a token (make, a shell, a job that does
    // not take one) has nothing to say.
    if n == 0 && unshown(t).2 == 0 {
        return;
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

    let size = HEAD_MAX + n * ROW_MAX + TAIL_MAX;
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as usize;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE) as usize;
    let m = unsafe { sys::syscall6(libc::SYS_mmap, 0, size, prot, flags, usize::MAX, 0) };
    if m < 0 {
        report::say(format_args!(
            "no memory for the report ({size} bytes); no report"
        ));
        return;
    }
    // SAFETY: a fresh private mapping of `size` bytes, ours alone.
    let mem = unsafe { core::slice::from_raw_parts_mut(m as *mut u8, size) };
    let mut out = Buf {
        mem,
        len: 0,
        cut: false,
    };
    if config::STATS.load(Relaxed) == config::STATS_JSON {
        let _ = write_json(&mut out, t, order);
    } else {
        let _ = write_table(&mut out, t, order);
    }
    if out.cut {
        report::say(format_args!(
            "the report outgrew the {size} bytes reserved for it; no report"
        ));
    } else {
        report::deliver(out.bytes());
    }
    unsafe { sys::syscall3(libc::SYS_munmap, m as usize, size, 0) };
}

/// The names and counts of the calls `e` was released on block by.
fn calls(e: &Entry) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    (0..CALLS).filter_map(|c| e.call(c)).map(|(name, count)| {
        let cut = name.len().min(CALL_NAME_MAX);
        (name.get(..cut).unwrap_or("?"), count)
    })
}

fn write_table(out: &mut Buf, t: &Table, order: &[u16]) -> core::fmt::Result {
    writeln!(
        out,
        "lwkt statistics for {} (pid {}): {} token(s), {} thread(s) used tokens, deepest reference stack {}",
        report::Text(program()),
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
        write_table_row(out, &t.entries[i as usize])?;
    }
    let (tokens, at_least, acquisitions) = unshown(t);
    if acquisitions != 0 {
        writeln!(
            out,
            "not shown (the table holds {ENTRIES} tokens): {}{tokens} token(s), {acquisitions} acquisition(s)",
            if at_least { "at least " } else { "" }
        )?;
    }
    Ok(())
}

fn write_table_row(out: &mut Buf, e: &Entry) -> core::fmt::Result {
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
    for (name, count) in calls(e) {
        write!(out, " {name}={count}")?;
        any = true;
    }
    let other = e.other_calls.load(Relaxed);
    if other != 0 {
        write!(out, " other={other}")?;
        any = true;
    }
    if !any {
        out.write_str(" -")?;
    }
    out.write_str("\n")
}

/// One JSON object on one line (JSON Lines: a file shared by several
/// processes holds one line per process).
fn write_json(out: &mut Buf, t: &Table, order: &[u16]) -> core::fmt::Result {
    write!(
        out,
        "{{\"pid\":{},\"program\":\"{}\",\"threads_using_tokens\":{},\"deepest_reference_stack\":{},\"tokens\":[",
        sys::getpid(),
        report::Json(program()),
        t.threads.load(Relaxed),
        t.deepest.load(Relaxed)
    )?;
    for (k, &i) in order.iter().enumerate() {
        if k > 0 {
            out.write_str(",")?;
        }
        write_json_row(out, &t.entries[i as usize])?;
    }
    let (tokens, at_least, acquisitions) = unshown(t);
    writeln!(
        out,
        "],\"not_shown\":{{\"tokens\":{tokens},\"tokens_at_least\":{at_least},\"acquisitions\":{acquisitions}}}}}"
    )
}

fn write_json_row(out: &mut Buf, e: &Entry) -> core::fmt::Result {
    let tok = e.key.load(Relaxed) as *const Token;
    write!(
        out,
        "{{\"token\":\"{}\",\"pool\":{},\"acquisitions\":{{\"exclusive\":{},\"shared\":{}}},\"contended\":{},\
         \"wait_ns\":{{\"total\":{},\"p50\":{},\"p99\":{},\"max\":{}}},\"max_hold_ns\":{},\"lost_while_released\":{},\
         \"released_on_block\":{{",
        JsonDesc(e),
        crate::pool::slot_of(tok).is_some(),
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
    for (name, count) in calls(e) {
        write!(out, "{}\"{name}\":{count}", if first { "" } else { "," })?;
        first = false;
    }
    let other = e.other_calls.load(Relaxed);
    if other != 0 {
        write!(out, "{}\"other\":{other}", if first { "" } else { "," })?;
    }
    out.write_str("}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worst row: every counter at its maximum, a description of 48
    /// control characters (six bytes each in JSON), every call slot taken
    /// by a name longer than is shown.
    #[test]
    fn row_fits() {
        static LONG: &str = "a_blocking_call_name_much_longer_than_any_the_hooks_have";
        let e: Entry = unsafe { core::mem::zeroed() };
        e.key.store(usize::MAX & !0xf, Relaxed);
        for b in &e.name {
            b.store(1, Relaxed);
        }
        for a in [
            &e.acq_excl,
            &e.acq_shared,
            &e.contended,
            &e.wait_total_ns,
            &e.wait_max_ns,
            &e.hold_max_ns,
            &e.lost,
            &e.other_calls,
        ] {
            a.store(u64::MAX, Relaxed);
        }
        for b in &e.wait_hist {
            b.store(u32::MAX, Relaxed);
        }
        for c in 0..CALLS {
            e.call_name[c].store(LONG.as_ptr() as usize, Relaxed);
            e.call_len[c].store(LONG.len(), Relaxed);
            e.call_count[c].store(u64::MAX, Relaxed);
        }
        let mut mem = vec![0u8; 1 << 16];
        for json in [false, true] {
            let mut out = Buf {
                mem: &mut mem,
                len: 0,
                cut: false,
            };
            if json {
                write_json_row(&mut out, &e).unwrap();
            } else {
                write_table_row(&mut out, &e).unwrap();
            }
            assert!(out.len < ROW_MAX, "json {json}: {} bytes", out.len);
        }
    }
}
