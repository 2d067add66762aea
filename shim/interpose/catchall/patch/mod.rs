//! The patched catch-all (`LWKT_CATCHALL=1`, the default): libc's own
//! system-call sites rewritten at load into jumps to per-site stubs, so
//! that a thread holding tokens runs libc's calls through the catch-all
//! without a signal, and a thread holding none pays a jump and a byte
//! test. Syscall User Dispatch stays armed as before for whatever is not
//! patched (refused sites, other libraries, the program's own `syscall`
//! instructions): the catch-all stays exhaustive.
//!
//! * scan.rs decodes libc's text (iced-x86) and picks the sites;
//! * stub.rs makes the stubs near libc and their unwind information;
//! * entry.rs is the held path the stubs enter;
//! * text.rs finds libc's text and makes it writable for the rewrite.
//!
//! The rewrite happens once, in the library's constructor, and only while
//! the process runs one thread (no other thread may be executing the bytes
//! that change): a library loaded later by dlopen() into a threaded
//! process, a system that refuses writable code (W^X), a CPU without
//! `xsave`, or a libc with nothing to rewrite leave the catch-all as
//! dispatch only (`LWKT_DEBUG`'s announcement says which, and counts the
//! sites).

mod entry;
mod scan;
mod stub;
mod text;

/// What the rewrite did, for `LWKT_DEBUG`'s announcement.
pub enum Outcome {
    /// How many of libc's `syscall` instructions were rewritten, and
    /// refused (left to dispatch).
    Patched { patched: usize, refused: usize },
    /// Nothing rewritten, and why.
    NotPatched(&'static str),
}

impl core::fmt::Display for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outcome::Patched { patched, refused } => write!(
                f,
                "libc's system-call sites patched: {patched}, refused: {refused}; \
                 Syscall User Dispatch for the rest"
            ),
            Outcome::NotPatched(why) => write!(
                f,
                "Syscall User Dispatch only; libc's system-call sites not patched: {why}"
            ),
        }
    }
}

/// At load: rewrite libc's sites.
pub fn init_process() -> Outcome {
    match patch_libc() {
        Ok((patched, refused)) => Outcome::Patched { patched, refused },
        Err(why) => Outcome::NotPatched(why),
    }
}

/// The rewrite: how many sites were patched and refused, or why none was.
fn patch_libc() -> Result<(usize, usize), &'static str> {
    if !text::single_threaded() {
        return Err("the process already runs other threads");
    }
    if !entry::prepare_xsave() {
        return Err("the CPU or kernel offers no xsave");
    }
    entry::prepare_calls();
    let (start, len) = text::libc_text().ok_or("libc's text was not found")?;
    // SAFETY: libc's executable segment, mapped for as long as the process
    // runs (libc is never unloaded).
    let bytes = unsafe { core::slice::from_raw_parts(start as *const u8, len) };
    let (mut sites, mut refused) = scan::sites(bytes, start);
    if let Some(checked) = text::cancellation_range()? {
        let before = sites.len();
        sites.retain(|s| s.at + s.len as u64 <= checked.start || s.at >= checked.end);
        refused += before - sites.len();
    }
    if sites.is_empty() {
        return Err("no rewritable site in libc's text");
    }
    let held = entry::lwkt_patched_held as *const () as usize;
    let stubs =
        stub::make(&sites, selector_tpoff(), held).ok_or("no room for the stubs near libc")?;
    let wrote = text::while_writable(start, len, || {
        for (s, &at) in sites.iter().zip(&stubs) {
            let code = stub::site_code(s, at);
            // SAFETY: the site's bytes, writable now; no other thread runs.
            unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), s.at as *mut u8, s.len) };
        }
    });
    if !wrote {
        return Err("libc's text cannot be made writable (a W^X policy?)");
    }
    Ok((sites.len(), refused))
}

/// The selector byte's offset from the thread pointer: the same in every
/// thread (static TLS), so the stubs test it with one `%fs:` access.
fn selector_tpoff() -> i32 {
    let tp: usize;
    // SAFETY: reads the TCB's pointer to itself (the thread pointer).
    unsafe {
        core::arch::asm!("mov {}, qword ptr fs:[0]", out(reg) tp, options(nostack, readonly, pure))
    };
    (super::state::selector() as usize).wrapping_sub(tp) as isize as i32
}
