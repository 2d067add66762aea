//! The `LWKT_STATS` report's text, made at exit from the table: a table
//! for people (`LWKT_STATS=1` or a path) or one JSON object on one line
//! (`json:PATH`), built whole in memory mapped for it, then delivered by
//! `report`.

use core::fmt::Write;
use core::sync::atomic::Ordering::*;

use super::{table, Entry, Table, CALLS, ENTRIES, NAME_BYTES};
use crate::observe::line::Line;
use crate::observe::{config, report};
use crate::sys;
use crate::token::Token;

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
        let mut s = Line::new();
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
    // SAFETY: glibc sets it before any constructor runs, to a string that
    // lives as long as the process.
    let p = unsafe { program_invocation_short_name };
    if p.is_null() {
        return b"?";
    }
    // SAFETY: not NULL, so argv[0]'s last part, NUL-terminated.
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

/// The exit handler `init_process` registers: the report, made and
/// delivered.
pub(super) extern "C" fn report_at_exit() {
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
    // SAFETY: a fresh private anonymous mapping, ours alone.
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
    // SAFETY: the mapping made above; `out`, its only user, is done.
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

/// One token's JSON object. Long only because it spells out every field
/// of the report's JSON format in order, one `write!` a group.
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
        // SAFETY: an entry is atomics: all zeros is a value (a free one).
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
