//! The per-site stubs, and their unwind information.
//!
//! A site's bytes (`mov $NR, %eax; syscall`, scan.rs) become `jmp rel32` to its
//! stub (the rest `int3`: nothing lands there, scan.rs made sure of that
//! for direct branches). The stub, in a mapping within ±2 GiB of libc and
//! outside the always-allowed range (so that dispatch still traps its
//! `syscall` for a holder the patched path sends back, as before):
//!
//! ```text
//!       mov $NR, %eax                  (the site's instructions before
//!       cmpb $0, %fs:SELECTOR           the syscall; holds tokens?)
//!       jne 2f
//!   1:  syscall                        (holding none: the call as it was)
//!       cmp $-4095, %rax               (the site's instructions after it)
//!       jmp SITE_END
//!   2:  lea 1b(%rip), %rcx
//!       jmp *HELD(%rip)                (entry.rs; back to 1b or 1b + 2)
//! ```
//!
//! Unwinders (cancellation, backtraces) must get through a stub: each has
//! an FDE saying "the caller is the site's function, at the site's end,
//! same stack pointer", registered with libgcc's `__register_frame`.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::scan::{Site, MOVED_MAX};

extern "C" {
    /// libgcc's: add an `.eh_frame` block (kept for good) to what the
    /// unwinder searches.
    fn __register_frame(begin: *const u8);
    /// libgcc's: the FDE covering `pc`, `bases` filled in.
    fn _Unwind_Find_FDE(pc: *const u8, bases: *mut [usize; 3]) -> *const u8;
}

/// The bytes of one stub, at most: the site's instructions besides the
/// `syscall`, the test, the branch, the `syscall`, the three jumps.
const STUB_SIZE: usize = MOVED_MAX + 8 + 2 + 2 + 5 + 7 + 6;
/// One FDE's bytes (see `fde`).
const FDE_SIZE: usize = 40;
const CIE: [u8; 20] = [
    16, 0, 0, 0, // length
    0, 0, 0, 0, // CIE id
    1, // version
    b'z', b'R', 0,    // augmentation
    1,    // code alignment
    0x78, // data alignment -8
    16,   // return address column (rip)
    1, 0x00, // augmentation data: FDE pointers absolute, 8 bytes
    0x0c, 7, 0, // DW_CFA_def_cfa rsp, 0
];

/// Where the stubs are, for `LWKT_DEBUG` and the tests: the first stub.
pub(super) static STUBS_AT: AtomicUsize = AtomicUsize::new(0);

/// An anonymous mapping of `len` bytes within ±2 GiB of every site in
/// `[lo, hi)`, readable and writable for now.
fn map_near(lo: u64, hi: u64, len: usize) -> Option<*mut u8> {
    const STEP: u64 = 1 << 24;
    let len64 = len as u64;
    // Below the text first, then above: 16 MiB steps, up to 1 GiB away.
    let below = (1..64).map(|k| lo.saturating_sub(k * STEP) & !0xfff);
    let above = (1..64).map(|k| (hi + k * STEP) & !0xfff);
    for hint in below.chain(above) {
        if hint == 0 || hint.abs_diff(lo).max((hint + len64).abs_diff(hi)) >= (1 << 31) - 4096 {
            continue;
        }
        // SAFETY: a fresh private mapping where nothing is mapped
        // (MAP_FIXED_NOREPLACE never replaces a mapping).
        let p = unsafe {
            libc::mmap(
                hint as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            continue;
        }
        if p as u64 == hint {
            return Some(p as *mut u8);
        }
        // An old kernel took the hint as a hint: not ours to keep.
        // SAFETY: the mapping just made.
        unsafe { libc::munmap(p, len) };
    }
    None
}

/// The stubs for `sites`, each at `stubs[i]`; their unwind information
/// registered. `tpoff` is the selector's offset from the thread pointer,
/// `held` entry.rs's entry. None when no room near libc could be found or
/// the stubs could not be made executable.
pub(super) fn make(sites: &[Site], tpoff: i32, held: usize) -> Option<Vec<u64>> {
    let lo = sites.iter().map(|s| s.at).min()?;
    let hi = sites.iter().map(|s| s.at + s.len as u64).max()?;
    let len = (8 + sites.len() * STUB_SIZE).next_multiple_of(4096);
    let base = map_near(lo, hi, len)?;
    // SAFETY: our fresh mapping of `len` bytes, writable.
    let page = unsafe { core::slice::from_raw_parts_mut(base, len) };
    page[..8].copy_from_slice(&(held as u64).to_le_bytes());
    let slot = base as u64;
    let mut at = Vec::with_capacity(sites.len());
    for (i, s) in sites.iter().enumerate() {
        let off = 8 + i * STUB_SIZE;
        let stub = base as u64 + off as u64;
        // SAFETY: the site's bytes, in libc's mapped text.
        let bytes = unsafe { core::slice::from_raw_parts(s.at as *const u8, s.len) };
        let code = stub_code(s, bytes, stub, tpoff, slot);
        page[off..off + code.1].copy_from_slice(&code.0[..code.1]);
        at.push(stub);
    }
    // SAFETY: our mapping; no thread runs it yet.
    if unsafe {
        libc::mprotect(
            base as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_EXEC,
        )
    } != 0
    {
        // SAFETY: ours, unused.
        unsafe { libc::munmap(base as *mut libc::c_void, len) };
        return None;
    }
    register_unwind_info(sites, &at);
    STUBS_AT.store(base as usize + 8, Relaxed);
    Some(at)
}

/// One stub's bytes (see the top of the file) at `stub`, for `site`
/// (whose bytes are `bytes`), and its length.
fn stub_code(
    site: &Site,
    bytes: &[u8],
    stub: u64,
    tpoff: i32,
    slot: u64,
) -> ([u8; STUB_SIZE], usize) {
    let mut c = [0u8; STUB_SIZE];
    let mut n = 0;
    let mut put = |b: &[u8], n: &mut usize| {
        c[*n..*n + b.len()].copy_from_slice(b);
        *n += b.len();
    };
    let (pre, rest) = bytes.split_at(site.syscall_at);
    let post = &rest[2..];
    put(pre, &mut n);
    // cmpb $0, %fs:tpoff
    put(&[0x64, 0x80, 0x3c, 0x25], &mut n);
    put(&tpoff.to_le_bytes(), &mut n);
    put(&[0x00], &mut n);
    // jne over the syscall, what follows it and the jmp rel32.
    put(&[0x75, (2 + post.len() + 5) as u8], &mut n);
    let syscall_at = stub + n as u64;
    put(&[0x0f, 0x05], &mut n);
    put(post, &mut n);
    let rel = |from_end: u64, to: u64| (to.wrapping_sub(from_end) as i64 as i32).to_le_bytes();
    let site_end = site.at + site.len as u64;
    put(&[0xe9], &mut n);
    put(&rel(stub + n as u64 + 4, site_end), &mut n);
    // lea syscall_at(%rip), %rcx
    put(&[0x48, 0x8d, 0x0d], &mut n);
    put(&rel(stub + n as u64 + 4, syscall_at), &mut n);
    // jmp *slot(%rip)
    put(&[0xff, 0x25], &mut n);
    put(&rel(stub + n as u64 + 4, slot), &mut n);
    (c, n)
}

/// The rewritten site: `jmp rel32` to `stub`, `int3` after it.
pub(super) fn site_code(s: &Site, stub: u64) -> [u8; MOVED_MAX + 2] {
    let mut c = [0xccu8; MOVED_MAX + 2];
    c[0] = 0xe9;
    let rel = stub.wrapping_sub(s.at + 5) as i64 as i32;
    c[1..5].copy_from_slice(&rel.to_le_bytes());
    c
}

/// An `.eh_frame` block for the stubs, registered with the unwinder: one
/// CIE, one FDE per stub (the return address is the site's end, a
/// constant; the stack pointer is the caller's), the zero terminator.
fn register_unwind_info(sites: &[Site], stubs: &[u64]) {
    let len = CIE.len() + sites.len() * FDE_SIZE + 4;
    let block = vec![0u8; len].leak();
    block[..CIE.len()].copy_from_slice(&CIE);
    for (i, (s, &stub)) in sites.iter().zip(stubs).enumerate() {
        let off = CIE.len() + i * FDE_SIZE;
        let f = fde(off, stub, s.at + s.len as u64);
        block[off..off + FDE_SIZE].copy_from_slice(&f);
    }
    // SAFETY: a well-formed .eh_frame block, leaked: it stays for good.
    unsafe { __register_frame(block.as_ptr()) };
    // The unwinder sorts a registered block (allocating) the first time a
    // search meets it: now, not in a signal handler that unwinds later
    // (cancellation). The answer also says the block was taken.
    let mut bases = [0usize; 3];
    if let Some(&stub) = stubs.first() {
        // SAFETY: a lookup; `bases` is ours to fill.
        let found = unsafe { _Unwind_Find_FDE(stub as *const u8, &mut bases) };
        debug_assert!(!found.is_null(), "the stubs' FDEs were not registered");
    }
}

/// The FDE at byte `off` of the block for the stub at `stub`, whose
/// caller resumes at `site_end`.
fn fde(off: usize, stub: u64, site_end: u64) -> [u8; FDE_SIZE] {
    let mut f = [0u8; FDE_SIZE];
    f[0..4].copy_from_slice(&((FDE_SIZE - 4) as u32).to_le_bytes());
    // The distance back to the CIE, from this field.
    f[4..8].copy_from_slice(&((off + 4) as u32).to_le_bytes());
    f[8..16].copy_from_slice(&stub.to_le_bytes());
    f[16..24].copy_from_slice(&(STUB_SIZE as u64).to_le_bytes());
    f[24] = 0; // augmentation data length
               // DW_CFA_val_expression rip, { DW_OP_const8u site_end }
    f[25] = 0x16;
    f[26] = 16;
    f[27] = 9;
    f[28] = 0x0e;
    f[29..37].copy_from_slice(&site_end.to_le_bytes());
    // DW_CFA_nop padding.
    f
}
