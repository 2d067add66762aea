//! `LWKT_STATS`: what the tokens did, reported at exit (mutrace for tokens).
//!
//! Nothing here runs unless the variable is set: the fast path tests one
//! global flag (`config::timing`). When it is set, a table of per-token
//! counters is mapped once at start-up (no allocation later, no locks:
//! entries are claimed by compare-and-swap on the token's address). At exit
//! the report is built whole in memory mapped for it (`text`), then handed
//! to `report` (where it goes, in one piece). A process that never used a
//! token reports nothing; a fork child starts with an empty table; what a
//! full table could not show is counted and said (SPEC section 7).
//!
//! Here: the table, and the events the token layer reports into it.

use core::fmt::Write;
use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::*,
};

use super::config;
use super::diag::Desc;
use super::line::{self, Line};
use crate::sys;
use crate::token::Token;

mod text;

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
    // SAFETY: a fresh private anonymous mapping, ours alone.
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
        line::warn(format_args!(
            "LWKT_STATS: no memory for the statistics table; not counting"
        ));
        return;
    }
    TABLE.store(p as *mut Table, Release);
    // SAFETY: two `extern "C"` functions of this library, which stays
    // mapped (`-z nodelete`) until the process ends.
    unsafe {
        libc::pthread_atfork(None, None, Some(fork_child));
        libc::atexit(text::report_at_exit);
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
    // SAFETY: the table's own mapping; its memory becomes fresh zero
    // pages, an empty table, and only this thread exists in the child.
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
        // SAFETY: the mapping lives until the process ends.
        unsafe { &*p }.threads.store(1, Relaxed);
    }
}

fn table() -> Option<&'static Table> {
    let p = TABLE.load(Acquire);
    if p.is_null() {
        None
    } else {
        // SAFETY: set once at load to a mapping that is never unmapped;
        // all of it is atomics, shared by every thread.
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
        let mut line = Line::new();
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
        // SAFETY: `released_on_block` claims a slot for a `&'static str`
        // (the pointer, once) and then stores its length: a whole string.
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
