//! Delivering a SIGSYS to the program's disposition from our handler, as
//! the kernel would have (see disposition.rs for why it is done this
//! way), and the program's SIGSYS held back while a thread has it
//! virtually blocked.

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicU64, Ordering::*};

use super::disposition::{
    rt_sigaction, rt_sigprocmask, update_program_action, KernelSigaction, SIGSYS_BIT, UNBLOCKABLE,
};
use crate::sys;

// ---- SIGSYS held back while a thread has it (virtually) blocked ----

/// One SIGSYS per thread, held back while that thread blocks SIGSYS in a
/// way the shim cannot let the kernel see (redirect.rs: a mask change made
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
///
/// # Safety
///
/// `info` is a readable siginfo (128 bytes).
pub unsafe fn defer(info: *const libc::siginfo_t) -> bool {
    let me = owner_key();
    let pid = me >> 32;
    if DEFERRED.iter().any(|d| d.owner.load(Acquire) == me) {
        return true;
    }
    for d in DEFERRED.iter() {
        let o = d.owner.load(Relaxed);
        if (o == 0 || o >> 32 != pid) && d.owner.compare_exchange(o, me, Acquire, Relaxed).is_ok() {
            // SAFETY: the caller's contract; the slot is this thread's now.
            unsafe {
                core::ptr::copy_nonoverlapping(info as *const u8, d.info.get() as *mut u8, 128)
            };
            return true;
        }
    }
    false
}

/// The calling thread's held-back SIGSYS, if any, into `out`.
///
/// # Safety
///
/// `out` is writable (128 bytes).
pub unsafe fn take_deferred(out: *mut libc::siginfo_t) -> bool {
    let me = owner_key();
    for d in DEFERRED.iter() {
        if d.owner.load(Acquire) == me {
            // SAFETY: the caller's contract; the slot is this thread's.
            unsafe {
                core::ptr::copy_nonoverlapping(d.info.get() as *const u8, out as *mut u8, 128)
            };
            d.owner.store(0, Release);
            return true;
        }
    }
    false
}

/// Make `info` pending again on the calling thread, with the same siginfo
/// (the kernel lets a process queue any siginfo to itself).
///
/// # Safety
///
/// `info` is a readable siginfo.
pub unsafe fn queue_to_self(info: *const libc::siginfo_t) {
    let (pid, tid) = (sys::getpid() as usize, sys::gettid() as usize);
    let sig = libc::SIGSYS as usize;
    // SAFETY: the caller's contract; the kernel reads the siginfo.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_rt_tgsigqueueinfo,
            pid,
            tid,
            sig,
            info as usize,
            0,
            0,
        )
    };
    if r != 0 {
        // SAFETY: tgkill reads no memory.
        unsafe { sys::syscall3(libc::SYS_tgkill, pid, tid, sig) };
    }
}

// ---- delivering to the program ----

/// The default action of SIGSYS: the process ends with a core dump, its
/// status naming SIGSYS. Done for real: the default disposition back in the
/// kernel, SIGSYS let through, and the same signal raised again.
///
/// # Safety
///
/// `info` is a readable siginfo.
pub unsafe fn die_by_default(info: *const libc::siginfo_t) {
    // SAFETY: the default action has no handler to run.
    unsafe {
        rt_sigaction(
            libc::SIGSYS,
            &KernelSigaction::DEFAULT,
            core::ptr::null_mut(),
        )
    };
    let unblock = SIGSYS_BIT;
    // SAFETY: `unblock` is ours.
    unsafe { rt_sigprocmask(libc::SIG_UNBLOCK, &unblock, core::ptr::null_mut()) };
    // SAFETY: the caller's contract.
    unsafe { queue_to_self(info) };
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
///
/// # Safety
///
/// `handler` is the program's signal handler, `info` and `uc` the siginfo
/// and context the kernel gave our handler.
pub unsafe fn call_handler(
    act: &KernelSigaction,
    handler: usize,
    sig: c_int,
    info: *mut libc::siginfo_t,
    uc: *mut libc::ucontext_t,
) {
    // SAFETY: the kernel's context, readable.
    let sp = handler_stack(act, unsafe { &*uc });
    // SAFETY: the caller's contract: the program's handler, called as the
    // kernel would call it, on the stack it would pick.
    unsafe { lwkt_call_signal_handler(handler, sig, info, uc as *mut c_void, sp) };
}

/// Deliver `info` to the program's handler `act` as the kernel would have,
/// from our handler, whose context `uc` the program's handler gets (what it
/// changes there takes effect when ours returns). `step_aside` is called
/// just before the handler runs, with its mask in force (true: the mask
/// blocks SIGSYS): it switches our dispatch off then (a trap would kill
/// the process) and says whether it did; `step_back` is then called after the
/// handler, with the mask the thread returns to.
///
/// # Safety
///
/// As `call_handler`, `act` being the program's action.
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
    // SAFETY: the kernel's part of the context's mask: its first 8 bytes.
    let ctx_mask = unsafe { &mut (*uc).uc_sigmask as *mut libc::sigset_t as *mut u64 };
    // SAFETY: as above.
    let mut mask = unsafe { *ctx_mask } | act.mask;
    if act.flags & libc::SA_NODEFER as u64 == 0 {
        mask |= SIGSYS_BIT;
    }
    mask &= !UNBLOCKABLE;
    // SAFETY: `mask` is ours.
    unsafe { rt_sigprocmask(libc::SIG_SETMASK, &mask, core::ptr::null_mut()) };
    // Called last before the handler: it may make our system calls trap.
    let aside = step_aside(mask & SIGSYS_BIT != 0);
    // SAFETY: the caller's contract.
    unsafe { call_handler(act, act.handler, sig, info, uc) };
    if aside {
        // SAFETY: as above.
        step_back(unsafe { *ctx_mask });
    }
    // Our return restores the context's mask, as the program's would.
}
