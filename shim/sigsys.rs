//! The program's own SIGSYS, once the catch-all holds the signal (SPEC
//! section 7, "Signals stay the program's").
//!
//! A process has one SIGSYS disposition, and the catch-all needs it for
//! its traps from the moment a thread first takes a token. From then on the
//! program's disposition lives here, in the form the kernel would keep
//! (`rt_sigaction` reads it back unchanged), and every SIGSYS that is not a
//! trap of ours is delivered to it as the kernel would have delivered it.
//! Signal-chaining libraries (OpenJDK's libjsig, Android's sigchain) work
//! the same way: the real handler is theirs, the program's is a record.
//!
//! Delivery calls the program's handler from ours, after doing what the
//! kernel does on delivery: the mask becomes the interrupted one plus the
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

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
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
    pub unsafe fn from_libc(act: &libc::sigaction) -> KernelSigaction {
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
    pub unsafe fn write_libc(&self, out: *mut libc::sigaction) {
        core::ptr::write_bytes(out, 0, 1);
        (*out).sa_sigaction = self.handler;
        (*out).sa_flags = self.flags as c_int;
        (*out).sa_restorer = core::mem::transmute::<usize, Option<extern "C" fn()>>(self.restorer);
        *(&mut (*out).sa_mask as *mut libc::sigset_t as *mut u64) = self.mask;
    }

    pub fn is_function(&self) -> bool {
        self.handler != libc::SIG_DFL && self.handler != libc::SIG_IGN
    }
}

/// The kernel's part of a libc signal set (its first 64 signals).
pub unsafe fn mask_word(set: *const libc::sigset_t) -> u64 {
    *(set as *const u64)
}

pub unsafe fn rt_sigaction(
    sig: c_int,
    act: *const KernelSigaction,
    old: *mut KernelSigaction,
) -> isize {
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

pub unsafe fn rt_sigprocmask(how: c_int, set: *const u64, old: *mut u64) -> isize {
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

/// The calling thread's signal mask, from the kernel.
pub fn current_mask() -> u64 {
    let mut m = 0u64;
    unsafe { rt_sigprocmask(libc::SIG_BLOCK, core::ptr::null(), &mut m) };
    m
}

/// Run `f` with every signal held back in this thread, so that a handler
/// cannot interrupt it on the same thread (what `f` guards would then be
/// unreachable for the handler). The mask comes back exactly as it was.
pub fn with_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    let all = !0u64;
    let mut old = 0u64;
    unsafe { rt_sigprocmask(libc::SIG_SETMASK, &all, &mut old) };
    let r = f();
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
    if unsafe { rt_sigaction(sig, core::ptr::null(), &mut k) } != 0 {
        return;
    }
    note_restorer(&k);
    if k.is_function() && k.mask & SIGSYS_BIT != 0 {
        k.mask &= !SIGSYS_BIT;
        unsafe { rt_sigaction(sig, &k, core::ptr::null_mut()) };
        note_mask_of(sig, true);
    }
}

// ---- SIGSYS held back while a thread has it (virtually) blocked ----

/// One SIGSYS per thread, held back while that thread blocks SIGSYS in a
/// way the shim cannot let the kernel see (catchall.rs: a mask change made
/// inside libc while the thread holds tokens). SIGSYS is not a real-time
/// signal: a second one while one is pending is dropped, as the kernel
/// drops it.
struct Deferred {
    /// pid << 32 | tid of the owner; 0: free. An entry of another process
    /// (left behind by a fork) is free too.
    owner: AtomicU64,
    info: UnsafeCell<[u64; 16]>,
}

// SAFETY: `info` is written and read only by the thread named in `owner`.
unsafe impl Sync for Deferred {}

const DEFERRED_SLOTS: usize = 16;
static DEFERRED: [Deferred; DEFERRED_SLOTS] = [const {
    Deferred {
        owner: AtomicU64::new(0),
        info: UnsafeCell::new([0; 16]),
    }
}; DEFERRED_SLOTS];

fn owner_key() -> u64 {
    (sys::getpid() as u64) << 32 | sys::gettid() as u64
}

/// Hold `info` back for the calling thread. False: no room (deliver now).
pub unsafe fn defer(info: *const libc::siginfo_t) -> bool {
    let me = owner_key();
    let pid = me >> 32;
    if DEFERRED.iter().any(|d| d.owner.load(Acquire) == me) {
        return true;
    }
    for d in DEFERRED.iter() {
        let o = d.owner.load(Relaxed);
        if (o == 0 || o >> 32 != pid) && d.owner.compare_exchange(o, me, Acquire, Relaxed).is_ok() {
            core::ptr::copy_nonoverlapping(info as *const u8, d.info.get() as *mut u8, 128);
            return true;
        }
    }
    false
}

/// The calling thread's held-back SIGSYS, if any, into `out`.
pub unsafe fn take_deferred(out: *mut libc::siginfo_t) -> bool {
    let me = owner_key();
    for d in DEFERRED.iter() {
        if d.owner.load(Acquire) == me {
            core::ptr::copy_nonoverlapping(d.info.get() as *const u8, out as *mut u8, 128);
            d.owner.store(0, Release);
            return true;
        }
    }
    false
}

/// Make `info` pending again on the calling thread, with the same siginfo
/// (the kernel lets a process queue any siginfo to itself).
pub unsafe fn queue_to_self(info: *const libc::siginfo_t) {
    let r = sys::syscall6(
        libc::SYS_rt_tgsigqueueinfo,
        sys::getpid() as usize,
        sys::gettid() as usize,
        libc::SIGSYS as usize,
        info as usize,
        0,
        0,
    );
    if r != 0 {
        sys::syscall3(
            libc::SYS_tgkill,
            sys::getpid() as usize,
            sys::gettid() as usize,
            libc::SIGSYS as usize,
        );
    }
}

// ---- delivering to the program ----

/// The default action of SIGSYS: the process ends with a core dump, its
/// status naming SIGSYS. Done for real: the default disposition back in the
/// kernel, SIGSYS let through, and the same signal raised again.
pub unsafe fn die_by_default(info: *const libc::siginfo_t) {
    rt_sigaction(
        libc::SIGSYS,
        &KernelSigaction::DEFAULT,
        core::ptr::null_mut(),
    );
    let unblock = SIGSYS_BIT;
    rt_sigprocmask(libc::SIG_UNBLOCK, &unblock, core::ptr::null_mut());
    queue_to_self(info);
}

extern "C" {
    /// Call `handler(sig, info, ctx)`, on the stack whose top is `sp` (0:
    /// the current one).
    fn lwkt_call_signal_handler(
        handler: usize,
        sig: c_int,
        info: *mut libc::siginfo_t,
        ctx: *mut c_void,
        sp: usize,
    );
}

core::arch::global_asm!(
    ".pushsection .text.lwkt_call_signal_handler,\"ax\",@progbits",
    ".globl lwkt_call_signal_handler",
    ".hidden lwkt_call_signal_handler",
    ".type lwkt_call_signal_handler,@function",
    "lwkt_call_signal_handler:",
    ".cfi_startproc",
    "push rbp",
    ".cfi_def_cfa_offset 16",
    ".cfi_offset rbp, -16",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    "mov rax, rdi",
    "mov edi, esi",
    "mov rsi, rdx",
    "mov rdx, rcx",
    "test r8, r8",
    "jz 1f",
    "mov rsp, r8",
    "1:",
    // As the kernel enters a handler: 16-byte aligned before the return
    // address is pushed. (It passes info and context whether or not the
    // handler asked for SA_SIGINFO.)
    "and rsp, -16",
    "call rax",
    "mov rsp, rbp",
    "pop rbp",
    ".cfi_def_cfa rsp, 8",
    "ret",
    ".cfi_endproc",
    ".size lwkt_call_signal_handler, . - lwkt_call_signal_handler",
    ".popsection",
);

/// Where the program's handler must run: the top of the alternate stack
/// when it asked for `SA_ONSTACK`, one is set up, and the interrupted code
/// is not on it already (then, as in the kernel, the handler goes on below
/// it, which is where we are); 0 for the current stack.
fn handler_stack(act: &KernelSigaction, uc: &libc::ucontext_t) -> usize {
    if act.flags & libc::SA_ONSTACK as u64 == 0 {
        return 0;
    }
    let ss = &uc.uc_stack;
    if ss.ss_flags & libc::SS_DISABLE != 0 || ss.ss_size == 0 {
        return 0;
    }
    // The kernel skips the red zone before it looks.
    let sp = (uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize).wrapping_sub(128);
    let base = ss.ss_sp as usize;
    if sp > base && sp - base <= ss.ss_size {
        return 0;
    }
    base + ss.ss_size
}

/// Call `handler` (of `act`) as the kernel enters a handler, on the stack
/// the kernel would pick.
pub unsafe fn call_handler(
    act: &KernelSigaction,
    handler: usize,
    sig: c_int,
    info: *mut libc::siginfo_t,
    uc: *mut libc::ucontext_t,
) {
    let sp = handler_stack(act, &*uc);
    lwkt_call_signal_handler(handler, sig, info, uc as *mut c_void, sp);
}

/// Deliver `info` to the program's handler `act` as the kernel would have,
/// from our handler, whose context `uc` the program's handler gets (what it
/// changes there takes effect when ours returns). `step_aside` is called
/// just before the handler runs, with its mask in force (true: the mask
/// blocks SIGSYS): it switches our dispatch off then (a trap would kill
/// the process) and says whether it did; `step_back` is then called after the
/// handler, with the mask the thread returns to.
pub unsafe fn deliver(
    act: &KernelSigaction,
    sig: c_int,
    info: *mut libc::siginfo_t,
    uc: *mut libc::ucontext_t,
    step_aside: impl FnOnce(bool) -> bool,
    step_back: impl FnOnce(u64),
) {
    if act.flags & libc::SA_RESETHAND as u64 != 0 {
        let h = act.handler;
        update_program_action(|cur| {
            let mut next = *cur;
            if cur.handler == h {
                next.handler = libc::SIG_DFL;
            }
            next
        });
    }
    let ctx_mask = &mut (*uc).uc_sigmask as *mut libc::sigset_t as *mut u64;
    let mut mask = *ctx_mask | act.mask;
    if act.flags & libc::SA_NODEFER as u64 == 0 {
        mask |= SIGSYS_BIT;
    }
    mask &= !UNBLOCKABLE;
    rt_sigprocmask(libc::SIG_SETMASK, &mask, core::ptr::null_mut());
    // Called last before the handler: it may make our system calls trap.
    let aside = step_aside(mask & SIGSYS_BIT != 0);
    call_handler(act, act.handler, sig, info, uc);
    if aside {
        step_back(*ctx_mask);
    }
    // Our return restores the context's mask, as the program's would.
}
