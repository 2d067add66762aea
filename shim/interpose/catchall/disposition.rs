//! The program's own SIGSYS disposition, once the catch-all holds the
//! signal (SPEC section 7, "Signals stay the program's"), and the kernel's
//! signal calls it is kept with.
//!
//! A process has one SIGSYS disposition, and the catch-all needs it for
//! its traps from the moment a thread first takes a token. From then on the
//! program's disposition lives here, in the form the kernel would keep
//! (`rt_sigaction` reads it back unchanged), and every SIGSYS that is not a
//! trap of ours is delivered to it as the kernel would have delivered it.
//! Signal-chaining libraries (OpenJDK's libjsig, Android's sigchain) work
//! the same way: the real handler is theirs, the program's is a record.
//!
//! Delivery (delivery.rs) calls the program's handler from ours, after
//! doing what the kernel does on delivery: the mask becomes the interrupted one plus the
//! handler's `sa_mask` plus SIGSYS (unless `SA_NODEFER`), `SA_RESETHAND`
//! resets the record, `SA_ONSTACK` moves to the alternate stack. The other
//! way -- installing the program's handler for real and raising the signal
//! again -- would open a window in which another thread's trap lands in the
//! program's handler, so it is used only for the default action, which
//! ends the process anyway. The alternate stack is taken from the context
//! the kernel saved for our handler (`uc_stack`): that is the state the
//! kernel would have decided with, before an `SS_AUTODISARM` stack was
//! disarmed for our delivery; the kernel restores it at our `rt_sigreturn`,
//! as it would at the program's.

use core::ffi::c_int;
use core::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

use crate::sys;

/// The kernel's `struct sigaction` (not libc's).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct KernelSigaction {
    pub handler: usize,
    pub flags: u64,
    pub restorer: usize,
    pub mask: u64,
}

pub const SA_RESTORER: u64 = 0x0400_0000;
const SA_EXPOSE_TAGBITS: u64 = 0x800;
/// The flags the kernel keeps of what it is given (it clears the rest, and
/// reads back only these, since Linux 5.11).
const KEPT_FLAGS: u64 = (libc::SA_NOCLDSTOP
    | libc::SA_NOCLDWAIT
    | libc::SA_SIGINFO
    | libc::SA_ONSTACK
    | libc::SA_RESTART
    | libc::SA_NODEFER
    | libc::SA_RESETHAND) as u32 as u64
    | SA_EXPOSE_TAGBITS
    | SA_RESTORER;

/// The bit of `sig` in a kernel signal mask.
pub const fn bit(sig: c_int) -> u64 {
    1 << (sig - 1)
}
pub const SIGSYS_BIT: u64 = bit(libc::SIGSYS);
/// Signals no mask can hold back (the kernel drops them from every mask).
pub const UNBLOCKABLE: u64 = bit(libc::SIGKILL) | bit(libc::SIGSTOP);

impl KernelSigaction {
    pub const DEFAULT: KernelSigaction = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };

    pub const fn zeroed() -> KernelSigaction {
        KernelSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        }
    }

    /// What the kernel keeps of an action it is given.
    pub fn kept(mut self) -> KernelSigaction {
        self.flags &= KEPT_FLAGS;
        self.mask &= !UNBLOCKABLE;
        self
    }

    /// What glibc's `sigaction` hands the kernel for `act` (its own
    /// restorer, `SA_RESTORER`), as the kernel keeps it.
    pub fn from_libc(act: &libc::sigaction) -> KernelSigaction {
        KernelSigaction {
            handler: act.sa_sigaction,
            // Sign-extended, as glibc's int-to-long assignment does.
            flags: act.sa_flags as i64 as u64 | SA_RESTORER,
            restorer: libc_restorer(),
            mask: mask_word(&act.sa_mask),
        }
        .kept()
    }

    /// What glibc's `sigaction` returns for this action.
    ///
    /// # Safety
    ///
    /// `out` is writable (a `struct sigaction`).
    pub unsafe fn write_libc(&self, out: *mut libc::sigaction) {
        // SAFETY: the caller's contract. The restorer is a function's
        // address or 0 (None); the kernel's part of the mask is its first
        // 8 bytes.
        unsafe {
            core::ptr::write_bytes(out, 0, 1);
            (*out).sa_sigaction = self.handler;
            (*out).sa_flags = self.flags as c_int;
            (*out).sa_restorer =
                core::mem::transmute::<usize, Option<extern "C" fn()>>(self.restorer);
            *(&mut (*out).sa_mask as *mut libc::sigset_t as *mut u64) = self.mask;
        }
    }

    pub fn is_function(&self) -> bool {
        self.handler != libc::SIG_DFL && self.handler != libc::SIG_IGN
    }
}

/// The kernel's part of a libc signal set (its first 64 signals).
pub fn mask_word(set: &libc::sigset_t) -> u64 {
    // SAFETY: a sigset_t is 128 bytes, 8-aligned: its first 8 are a u64.
    unsafe { *(set as *const libc::sigset_t as *const u64) }
}

/// The kernel's `rt_sigaction` for `sig`.
///
/// # Safety
///
/// `act` is null or a readable action whose handler and restorer (if
/// any) may run as signal handlers from now on; `old` null or writable.
pub unsafe fn rt_sigaction(
    sig: c_int,
    act: *const KernelSigaction,
    old: *mut KernelSigaction,
) -> isize {
    // SAFETY: the caller's contract.
    unsafe {
        sys::syscall6(
            libc::SYS_rt_sigaction,
            sig as usize,
            act as usize,
            old as usize,
            8,
            0,
            0,
        )
    }
}

/// The kernel's `rt_sigprocmask` for the calling thread.
///
/// # Safety
///
/// `set` is null or readable, `old` null or writable.
pub unsafe fn rt_sigprocmask(how: c_int, set: *const u64, old: *mut u64) -> isize {
    // SAFETY: the caller's contract.
    unsafe {
        sys::syscall6(
            libc::SYS_rt_sigprocmask,
            how as usize,
            set as usize,
            old as usize,
            8,
            0,
            0,
        )
    }
}

/// The calling thread's signal mask, from the kernel.
pub fn current_mask() -> u64 {
    let mut m = 0u64;
    // SAFETY: `m` is ours to write.
    unsafe { rt_sigprocmask(libc::SIG_BLOCK, core::ptr::null(), &mut m) };
    m
}

/// Run `f` with every signal held back in this thread, so that a handler
/// cannot interrupt it on the same thread (what `f` guards would then be
/// unreachable for the handler). The mask comes back exactly as it was.
pub fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    let all = !0u64;
    let mut old = 0u64;
    // SAFETY: `all` and `old` are ours.
    unsafe { rt_sigprocmask(libc::SIG_SETMASK, &all, &mut old) };
    let r = f();
    // SAFETY: `old` is ours.
    unsafe { rt_sigprocmask(libc::SIG_SETMASK, &old, core::ptr::null_mut()) };
    r
}

// ---- glibc's signal restorer ----

static LIBC_RESTORER: AtomicUsize = AtomicUsize::new(0);

/// Remember glibc's restorer from an action glibc installed: what its
/// `sigaction` would report for a SIGSYS action the kernel never saw.
pub fn note_restorer(k: &KernelSigaction) {
    let ours = sys::lwkt_sigsys_restorer as *const () as usize;
    if k.flags & SA_RESTORER != 0 && k.restorer != 0 && k.restorer != ours {
        LIBC_RESTORER.store(k.restorer, Relaxed);
    }
}

/// glibc's restorer, learnt from any action it installed (0 if none yet).
fn libc_restorer() -> usize {
    let r = LIBC_RESTORER.load(Relaxed);
    if r != 0 {
        return r;
    }
    for sig in 1..=64 {
        if sig == libc::SIGSYS {
            continue;
        }
        let mut k = KernelSigaction::zeroed();
        // SAFETY: reads the action into `k`, ours; installs nothing.
        if unsafe { rt_sigaction(sig, core::ptr::null(), &mut k) } == 0 {
            note_restorer(&k);
        }
    }
    LIBC_RESTORER.load(Relaxed)
}

// ---- the program's disposition ----

/// A seqlock: the handler reads it on any thread, at any time; writers
/// (the program's `sigaction`, `SA_RESETHAND`) hold every signal back while
/// they write, so a reader never waits for its own thread.
struct Record {
    seq: AtomicU32,
    handler: AtomicUsize,
    flags: AtomicU64,
    restorer: AtomicUsize,
    mask: AtomicU64,
}

static PROGRAM: Record = Record {
    seq: AtomicU32::new(0),
    handler: AtomicUsize::new(libc::SIG_DFL),
    flags: AtomicU64::new(0),
    restorer: AtomicUsize::new(0),
    mask: AtomicU64::new(0),
};

impl Record {
    fn load(&self) -> KernelSigaction {
        KernelSigaction {
            handler: self.handler.load(Relaxed),
            flags: self.flags.load(Relaxed),
            restorer: self.restorer.load(Relaxed),
            mask: self.mask.load(Relaxed),
        }
    }
}

/// The program's SIGSYS action.
pub fn program_action() -> KernelSigaction {
    loop {
        let s = PROGRAM.seq.load(Acquire);
        if s & 1 == 0 {
            let k = PROGRAM.load();
            fence(Acquire);
            if PROGRAM.seq.load(Relaxed) == s {
                return k;
            }
        }
        core::hint::spin_loop();
    }
}

/// Replace the program's SIGSYS action with what `update` makes of it
/// (`update` runs with the record locked and every signal held back);
/// returns the action it replaced.
pub fn update_program_action(
    update: impl FnOnce(&KernelSigaction) -> KernelSigaction,
) -> KernelSigaction {
    with_signals_blocked(|| {
        let s = loop {
            let s = PROGRAM.seq.load(Relaxed);
            if s & 1 == 0
                && PROGRAM
                    .seq
                    .compare_exchange_weak(s, s + 1, Acquire, Relaxed)
                    .is_ok()
            {
                break s;
            }
            core::hint::spin_loop();
        };
        fence(Release);
        let old = PROGRAM.load();
        let new = update(&old);
        PROGRAM.handler.store(new.handler, Relaxed);
        PROGRAM.flags.store(new.flags, Relaxed);
        PROGRAM.restorer.store(new.restorer, Relaxed);
        PROGRAM.mask.store(new.mask, Relaxed);
        PROGRAM.seq.store(s.wrapping_add(2), Release);
        old
    })
}

// ---- other signals' handler masks ----

/// Signals whose handler's `sa_mask` held SIGSYS when the program set it:
/// the shim installed it without (a handler that blocks SIGSYS in a thread
/// the catch-all has armed dies at its first trapped call) and adds it back
/// when the action is read.
static SIGSYS_IN_MASK: AtomicU64 = AtomicU64::new(0);

pub fn sigsys_was_in_mask(sig: c_int) -> bool {
    (1..=64).contains(&sig) && SIGSYS_IN_MASK.load(Relaxed) & bit(sig) != 0
}

/// The program set a new action for `sig`; `had_sigsys`: its mask held
/// SIGSYS (which the shim left out).
pub fn note_mask_of(sig: c_int, had_sigsys: bool) {
    if !(1..=64).contains(&sig) {
        return;
    }
    if had_sigsys {
        SIGSYS_IN_MASK.fetch_or(bit(sig), Relaxed);
    } else {
        SIGSYS_IN_MASK.fetch_and(!bit(sig), Relaxed);
    }
}

/// Take SIGSYS out of the mask of `sig`'s handler as the kernel has it now
/// (set before the catch-all took SIGSYS, or behind its back).
pub fn strip_sigsys_from_handler_of(sig: c_int) {
    if matches!(sig, libc::SIGSYS | libc::SIGKILL | libc::SIGSTOP) {
        return;
    }
    let mut k = KernelSigaction::zeroed();
    // SAFETY: reads the action into `k`, ours; installs nothing.
    if unsafe { rt_sigaction(sig, core::ptr::null(), &mut k) } != 0 {
        return;
    }
    note_restorer(&k);
    if k.is_function() && k.mask & SIGSYS_BIT != 0 {
        k.mask &= !SIGSYS_BIT;
        // SAFETY: the program's own handler and restorer, as the kernel
        // had them, with one signal less in the mask.
        unsafe { rt_sigaction(sig, &k, core::ptr::null_mut()) };
        note_mask_of(sig, true);
    }
}
