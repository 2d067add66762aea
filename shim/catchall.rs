//! The catch-all: blocking calls that libc makes inside itself.
//!
//! glibc binds its own calls privately (the `read` under `fgets`, the futex
//! under `sem_wait`, the wait inside `system`), so no exported-symbol hook
//! sees them. Syscall User Dispatch does: once a thread has switched it on,
//! every system call made from outside one address range raises SIGSYS
//! instead of running, while a per-thread selector byte says BLOCK.
//!
//! * A thread switches dispatch on ("arms") when it first uses tokens. Its
//!   selector is BLOCK while it holds at least one token and ALLOW
//!   otherwise; the token code flips it with plain stores (thread.rs), no
//!   system call. Threads that never take a token are untouched, and a
//!   process whose threads never take one is untouched: the SIGSYS handler
//!   is installed by the first thread that arms, not at load.
//! * The always-allowed range is `.text.lwkt_allowed` (sys.rs): the shim's
//!   own syscall stub, this handler's signal restorer, the clone landing
//!   pad. The handler is installed with raw `rt_sigaction` and our own
//!   `SA_RESTORER`, so that its return does not itself trap.
//! * The handler runs the trapped call itself: a call that cannot block at
//!   once; one that can, through the same probes as the symbol hooks, with
//!   the tokens released around it. It runs with `SA_NODEFER` and an empty
//!   handler mask, so the program's signals are delivered during a blocking
//!   call exactly as without the shim, restarts included.
//! * Calls that only make sense outside a handler are redirected:
//!   `rt_sigreturn` (a program handler returning through libc's restorer)
//!   runs again from the allowed range; `rt_sigprocmask` is applied to the
//!   mask the handler returns to; `clone`/`vfork` children resume in the
//!   program, never inside the handler (see `clone_call`).
//! * SIGSYS stays the program's (sigsys.rs): every SIGSYS that is not a
//!   trap of a thread armed here goes to the program's own disposition.
//!   The kernel kills a thread that traps while it blocks SIGSYS, so an
//!   armed thread never blocks it for real: a thread that blocks SIGSYS
//!   through libc's exported functions gets it blocked and the catch-all
//!   steps aside in it (dispatch off, symbol hooks only) until it unblocks;
//!   libc's own short blocks of every signal while the thread holds tokens
//!   (`pthread_create`, `raise`, `posix_spawn`) are kept virtual: SIGSYS
//!   stays deliverable, reads back as blocked, and the program's SIGSYS
//!   that arrives meanwhile is held back until it is unblocked. A thread
//!   that switches dispatch on itself keeps it; the catch-all steps aside
//!   there too.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering::*};

use crate::hooks::{self, c_result, fdio, net, process, released, waiters, ZERO_TS};
use crate::sigsys::{self, KernelSigaction, SA_RESTORER, SIGSYS_BIT, UNBLOCKABLE};
use crate::{config, diag, sys};

pub const PR_SET_SYSCALL_USER_DISPATCH: c_int = 59;
const PR_SYS_DISPATCH_OFF: usize = 0;
const PR_SYS_DISPATCH_ON: usize = 1;
/// `si_code` of a SIGSYS raised by Syscall User Dispatch.
const SYS_USER_DISPATCH: c_int = 2;
/// `si_code` of a SIGSYS raised by a seccomp filter (`SECCOMP_RET_TRAP`).
const SYS_SECCOMP: c_int = 1;

fn prctl(a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    unsafe { sys::syscall6(libc::SYS_prctl, a, b, c, d, e, 0) }
}

fn allowed_range() -> (usize, usize) {
    let start = core::ptr::addr_of!(sys::lwkt_allowed_start) as usize;
    let end = core::ptr::addr_of!(sys::lwkt_allowed_end) as usize;
    (start, end - start)
}

// ---- where the catch-all can run ----

/// Are we running under valgrind? Its CPU emulation does not implement
/// Syscall User Dispatch (the program would hang), so the catch-all stays
/// off there. This is valgrind's documented client-request sequence, a
/// no-op on a real CPU: `rdx` keeps its value (0) unless valgrind answers.
fn running_on_valgrind() -> bool {
    const RUNNING_ON_VALGRIND: u64 = 0x1001;
    let args: [u64; 6] = [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0];
    let answer: u64;
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0u64 => answer,
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
    answer != 0
}

/// Why the catch-all is off, for `LWKT_DEBUG`.
pub fn why_off() -> &'static str {
    match OFF_REASON.load(Relaxed) {
        OFF_BY_USER => "LWKT_CATCHALL=0",
        OFF_VALGRIND => "valgrind does not emulate Syscall User Dispatch",
        _ => "this kernel has no Syscall User Dispatch",
    }
}

const OFF_BY_USER: u8 = 1;
const OFF_VALGRIND: u8 = 2;
const OFF_NO_KERNEL: u8 = 3;
static OFF_REASON: AtomicU8 = AtomicU8::new(0);

const KERNEL_UNKNOWN: u8 = 0;
const KERNEL_HAS_SUD: u8 = 1;
const KERNEL_LACKS_SUD: u8 = 2;
static KERNEL: AtomicU8 = AtomicU8::new(KERNEL_UNKNOWN);

/// Nothing is touched at load: no handler, no mask, no `prctl` (a
/// process that never takes a token must see no change).
pub fn init_process() {
    if !config::CATCHALL_WANTED.load(Relaxed) {
        OFF_REASON.store(OFF_BY_USER, Relaxed);
    } else if running_on_valgrind() {
        OFF_REASON.store(OFF_VALGRIND, Relaxed);
    }
}

/// Can the catch-all run here (wanted, and the kernel has the feature)?
/// The kernel is asked once, by a `prctl` that changes nothing: switching
/// dispatch on with a selector in kernel space fails with EFAULT where the
/// feature exists, EINVAL where it does not.
fn available() -> bool {
    if OFF_REASON.load(Relaxed) != 0 {
        return false;
    }
    match KERNEL.load(Relaxed) {
        KERNEL_HAS_SUD => true,
        KERNEL_LACKS_SUD => false,
        _ => {
            const KERNEL_ADDRESS: usize = 0xffff_8000_0000_0000;
            let r = prctl(
                PR_SET_SYSCALL_USER_DISPATCH as usize,
                PR_SYS_DISPATCH_ON,
                0,
                0,
                KERNEL_ADDRESS,
            );
            let has = r == -(libc::EFAULT as isize);
            KERNEL.store(
                if has {
                    KERNEL_HAS_SUD
                } else {
                    KERNEL_LACKS_SUD
                },
                Relaxed,
            );
            if !has {
                OFF_REASON.store(OFF_NO_KERNEL, Relaxed);
            }
            has
        }
    }
}

/// For `LWKT_DEBUG`'s announcement at load: whether the catch-all will run.
/// The kernel is asked only then (the probe changes nothing either way).
pub fn on() -> bool {
    config::debug() && available()
}

/// Is the handler installed (SIGSYS held by the shim for the program)?
#[inline(always)]
pub fn installed() -> bool {
    INSTALL.load(Acquire) == INSTALLED
}

/// Is the handler being or been installed? (A program's own `sigaction`
/// that went to the kernel meanwhile must be taken over.)
fn install_started() -> bool {
    INSTALL.load(Acquire) != NOT_INSTALLED
}

const NOT_INSTALLED: u8 = 0;
const INSTALLING: u8 = 1;
const INSTALLED: u8 = 2;
static INSTALL: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

/// Our SIGSYS action. `SA_RESTART` follows the program's: a SIGSYS of the
/// program's that interrupts a blocking call restarts it or not as the
/// program's disposition would (an ignored one restarts it).
fn our_action(program: &KernelSigaction) -> KernelSigaction {
    let restart = program.flags & libc::SA_RESTART as u64 != 0 || program.handler == libc::SIG_IGN;
    KernelSigaction {
        handler: on_sigsys as *const () as usize,
        flags: (libc::SA_SIGINFO | libc::SA_NODEFER) as u64
            | SA_RESTORER
            | if restart { libc::SA_RESTART as u64 } else { 0 },
        restorer: sys::lwkt_sigsys_restorer as *const () as usize,
        mask: 0,
    }
}

/// Take SIGSYS over, once per process, at the first arming: the
/// program's disposition becomes a record (kept verbatim, as the kernel
/// had it), and handlers that would block SIGSYS no longer do.
fn install_once() {
    if installed() {
        return;
    }
    if INSTALL
        .compare_exchange(NOT_INSTALLED, INSTALLING, Acquire, Acquire)
        .is_err()
    {
        while !installed() {
            core::hint::spin_loop();
        }
        return;
    }
    // No handler of this thread may run in between (it could wait for the
    // installation forever).
    sigsys::with_signals_blocked(|| unsafe {
        // One exchange: a program's sigaction in another thread lands
        // either before it (and is what we get back) or after it (and its
        // hook takes it over: `after_change_during_install`).
        let mut old = KernelSigaction::zeroed();
        let ours = our_action(&KernelSigaction::DEFAULT);
        sigsys::rt_sigaction(libc::SIGSYS, &ours, &mut old);
        sigsys::note_restorer(&old);
        let old = old.kept();
        if our_action(&old).flags != ours.flags {
            set_program_sigsys(old);
        } else {
            sigsys::update_program_action(|_| old);
        }
        for sig in 1..=64 {
            sigsys::strip_sigsys_from_handler_of(sig);
        }
    });
    INSTALL.store(INSTALLED, Release);
}

/// Record `new` as the program's SIGSYS action; returns the one it had.
fn set_program_sigsys(new: KernelSigaction) -> KernelSigaction {
    sigsys::update_program_action(|_| {
        unsafe { sigsys::rt_sigaction(libc::SIGSYS, &our_action(&new), core::ptr::null_mut()) };
        new
    })
}

/// The program changed a disposition through libc while the handler was
/// being installed: take SIGSYS over again (what the kernel had replaced
/// then is the program's), and strip the mask of another signal's handler.
fn after_change_during_install(sig: c_int) {
    while !installed() {
        core::hint::spin_loop();
    }
    if sig != libc::SIGSYS {
        sigsys::strip_sigsys_from_handler_of(sig);
        return;
    }
    sigsys::update_program_action(|cur| unsafe {
        let mut prev = KernelSigaction::zeroed();
        sigsys::rt_sigaction(libc::SIGSYS, &our_action(cur), &mut prev);
        if prev.handler == on_sigsys as *const () as usize {
            *cur
        } else {
            sigsys::note_restorer(&prev);
            let p = prev.kept();
            sigsys::rt_sigaction(libc::SIGSYS, &our_action(&p), core::ptr::null_mut());
            p
        }
    });
}

// ---- the thread's state ----

// Sixteen bytes of static TLS next to thread.rs's nine: the thread id
// that armed (a vfork child shares its parent's TLS and must not change
// it), the flags below, and the selector of the program's own dispatch.
// Initial-exec, like thread.rs's: no allocation, usable in a handler.
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl lwkt_catchall_thread",
    ".hidden lwkt_catchall_thread",
    ".type lwkt_catchall_thread,@object",
    ".size lwkt_catchall_thread,16",
    "lwkt_catchall_thread:",
    ".zero 16",
    ".popsection",
);

/// The thread uses tokens: the catch-all belongs on it.
const WANT: u8 = 1;
/// Dispatch is on, with our selector.
const ARMED: u8 = 2;
/// The program switched dispatch on itself in this thread.
const PROGRAM: u8 = 4;
/// SIGSYS is blocked by a mask change the catch-all trapped: kept
/// deliverable, the program's SIGSYS held back (see
/// `sigprocmask_on_context`).
const VBLOCK: u8 = 8;
/// Not armed because SIGSYS was blocked by something no hook saw (the
/// thread's first token taken in a handler that blocks SIGSYS, say): look
/// again at the thread's next hooked call.
const LOOK_AGAIN: u8 = 16;

#[inline(always)]
fn thread_slot() -> *mut u8 {
    let slot: *mut u8;
    // SAFETY: reads the GOT entry of a TLS symbol and the thread pointer.
    unsafe {
        core::arch::asm!(
            "mov {s}, qword ptr [rip + lwkt_catchall_thread@GOTTPOFF]",
            "add {s}, qword ptr fs:[0]",
            s = out(reg) slot,
            options(pure, readonly, nostack),
        );
    }
    slot
}

/// The flags, changed with single instructions (a handler may interrupt).
#[inline(always)]
fn flags() -> &'static AtomicU8 {
    // SAFETY: byte 4 of this thread's TLS block.
    unsafe { &*(thread_slot().add(4) as *const AtomicU8) }
}

fn armed_tid() -> &'static AtomicU32 {
    // SAFETY: bytes 0-3 of this thread's TLS block.
    unsafe { &*(thread_slot() as *const AtomicU32) }
}

/// The selector the program gave its own dispatch in this thread (0: none).
fn program_selector() -> &'static AtomicUsize {
    // SAFETY: bytes 8-15 of this thread's TLS block.
    unsafe { &*(thread_slot().add(8) as *const AtomicUsize) }
}

/// Is this the thread that armed (not a vfork child on its stack)?
fn own_thread() -> bool {
    armed_tid().load(Relaxed) == sys::gettid()
}

/// This thread's selector byte (thread.rs).
#[inline(always)]
fn selector() -> *mut u8 {
    let slot: *mut u8;
    // SAFETY: reads the GOT entry of a TLS symbol and the thread pointer.
    unsafe {
        core::arch::asm!(
            "mov {s}, qword ptr [rip + lwkt_thread_selector@GOTTPOFF]",
            "add {s}, qword ptr fs:[0]",
            s = out(reg) slot,
            options(pure, readonly, nostack),
        );
    }
    slot
}

/// Has this thread used tokens (where the catch-all can run)?
pub fn used_here() -> bool {
    flags().load(Relaxed) & WANT != 0
}

/// Is this thread's dispatch on, as ours? Read by the hooks' wait masks.
#[inline(always)]
pub fn armed_here() -> bool {
    flags().load(Relaxed) & ARMED != 0
}

/// Switch dispatch on for the calling thread, with `selector` as its
/// switch, the first time it uses tokens (thread.rs), and again in a fork
/// child. Stays off while the thread blocks SIGSYS or runs dispatch of its
/// own. True when the catch-all can run here: thread.rs then tells us when
/// the thread exits or forks.
pub fn enable_for_thread(selector: *mut u8) -> bool {
    if !available() {
        return false;
    }
    forget_parent_process();
    flags().fetch_or(WANT, Relaxed);
    arm_or_look_again(selector, sigsys::current_mask());
    true
}

/// Take the TLS block over for this thread: in a fork child it still says
/// what held in the parent's thread, and the kernel does not pass dispatch
/// on to a child, neither ours nor the program's.
fn forget_parent_process() {
    let me = sys::gettid();
    if armed_tid().swap(me, Relaxed) != me {
        flags().fetch_and(!(ARMED | PROGRAM), Relaxed);
        program_selector().store(0, Relaxed);
    }
}

/// Arm, or else (SIGSYS blocked by something no hook saw) look again at
/// the thread's next hooked call.
fn arm_or_look_again(selector: *mut u8, mask: u64) {
    if !arm_for_mask(selector, mask) && flags().load(Relaxed) & (WANT | ARMED | PROGRAM) == WANT {
        flags().fetch_or(LOOK_AGAIN, Relaxed);
    }
}

/// Arm the calling thread, which will run with signal mask `mask`.
fn arm_for_mask(selector: *mut u8, mask: u64) -> bool {
    let f = flags().load(Relaxed);
    if f & WANT == 0 || f & PROGRAM != 0 {
        return false;
    }
    if mask & SIGSYS_BIT != 0 {
        say_stepping_aside(&SAID_BLOCKED, "blocks SIGSYS");
        return false;
    }
    install_once();
    // Marked first: a handler that interrupts us right after the prctl
    // and traps must find its trap ours.
    flags().fetch_or(ARMED, Relaxed);
    let (start, len) = allowed_range();
    let on = prctl(
        PR_SET_SYSCALL_USER_DISPATCH as usize,
        PR_SYS_DISPATCH_ON,
        start,
        len,
        selector as usize,
    ) == 0;
    if on {
        flags().fetch_and(!LOOK_AGAIN, Relaxed);
    } else {
        flags().fetch_and(!ARMED, Relaxed);
    }
    on
}

/// Switch our dispatch off in the calling thread (it is about to block
/// SIGSYS, or the program takes dispatch over).
fn disarm() {
    if flags().load(Relaxed) & ARMED != 0 {
        prctl(
            PR_SET_SYSCALL_USER_DISPATCH as usize,
            PR_SYS_DISPATCH_OFF,
            0,
            0,
            0,
        );
        flags().fetch_and(!ARMED, Relaxed);
    }
}

/// Re-arm a thread the catch-all stepped aside in, once it no longer
/// blocks SIGSYS.
fn rearm_if_wanted() {
    if flags().load(Relaxed) & (WANT | ARMED | PROGRAM) != WANT {
        return;
    }
    let mask = sigsys::current_mask();
    if mask & SIGSYS_BIT == 0 && own_thread() {
        arm_for_mask(selector(), mask);
    }
}

/// A hooked call of a thread that holds tokens: a thread the catch-all
/// stepped aside in for a block no hook saw (a first token taken in a
/// handler, a program handler left by `longjmp`) gets it back if it no
/// longer blocks SIGSYS. One byte load otherwise.
#[inline(always)]
pub fn checkpoint() {
    if flags().load(Relaxed) & LOOK_AGAIN != 0 {
        rearm_if_wanted();
    }
}

/// Switch dispatch off for the calling thread (it is exiting). Dispatch
/// the program switched on itself is the program's.
pub fn disable_for_thread() {
    disarm();
    flags().fetch_and(!(WANT | VBLOCK | LOOK_AGAIN), Relaxed);
}

static SAID_BLOCKED: AtomicBool = AtomicBool::new(false);
static SAID_PROGRAM: AtomicBool = AtomicBool::new(false);

/// `LWKT_DEBUG`: say once a process that the catch-all steps aside in a
/// thread, and why.
#[cold]
fn say_stepping_aside(said: &AtomicBool, why: &str) {
    use core::fmt::Write;
    if !config::debug() || said.swap(true, Relaxed) {
        return;
    }
    let mut line = diag::Line::new();
    let _ = write!(
        line,
        "lwkt: debug: {} {why}: the catch-all steps aside in that thread \
         (symbol hooks only; said once)",
        diag::ThreadName
    );
    line.emit();
}

// ---- the SIGSYS handler ----

extern "C" fn on_sigsys(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    unsafe {
        if (*info).si_code == SYS_USER_DISPATCH && trap_is_ours() {
            let saved_errno = sys::errno();
            let uc = &mut *(ctx as *mut libc::ucontext_t);
            alternate_stack_back(uc);
            dispatch(uc);
            sys::set_errno(saved_errno);
        } else {
            forward_to_program(sig, info, ctx);
        }
    }
}

/// The kernel disarms an `SS_AUTODISARM` alternate stack for every
/// handler it enters, ours too, and arms it again when the handler
/// returns. While the dispatch runs the program's call, the stack is the
/// program's as it was: armed again (a signal of the program's during a
/// blocking call, its `sigaltstack` calls, see it so).
unsafe fn alternate_stack_back(uc: &libc::ucontext_t) {
    let ss = &uc.uc_stack;
    if ss.ss_flags & SS_AUTODISARM != 0 && ss.ss_size != 0 {
        sys::syscall3(
            libc::SYS_sigaltstack,
            ss as *const libc::stack_t as usize,
            0,
            0,
        );
    }
}

/// `SS_AUTODISARM` (linux/signal.h).
const SS_AUTODISARM: c_int = 1 << 31;

/// `sigaltstack` run by the dispatch: the kernel puts back, when the
/// handler returns, the alternate stack the program had when it trapped
/// (`uc_stack`): a change is written there too, so that it stays.
unsafe fn sigaltstack_on_context(uc: &mut libc::ucontext_t, a: [usize; 6]) -> isize {
    let r = sys::syscall3(libc::SYS_sigaltstack, a[0], a[1], 0);
    if r == 0 && a[0] != 0 {
        let ss = *(a[0] as *const libc::stack_t);
        uc.uc_stack = if ss.ss_flags & !SS_AUTODISARM == libc::SS_DISABLE {
            libc::stack_t {
                ss_sp: core::ptr::null_mut(),
                ss_flags: ss.ss_flags,
                ss_size: 0,
            }
        } else {
            ss
        };
    }
    r
}

/// A dispatch trap is ours when this thread is armed by us and holds
/// tokens (our selector says BLOCK): the kernel traps on no other.
fn trap_is_ours() -> bool {
    flags().load(Relaxed) & (ARMED | PROGRAM) == ARMED
        && unsafe { core::ptr::read_volatile(selector()) } != 0
}

unsafe fn dispatch(uc: &mut libc::ucontext_t) {
    let g = &mut uc.uc_mcontext.gregs;
    let nr = g[libc::REG_RAX as usize];
    let a = [
        g[libc::REG_RDI as usize] as usize,
        g[libc::REG_RSI as usize] as usize,
        g[libc::REG_RDX as usize] as usize,
        g[libc::REG_R10 as usize] as usize,
        g[libc::REG_R8 as usize] as usize,
        g[libc::REG_R9 as usize] as usize,
    ];
    let r = match nr {
        libc::SYS_rt_sigreturn => {
            // A program handler returning through libc's restorer: run the
            // same rt_sigreturn again from the allowed range, same stack.
            g[libc::REG_RIP as usize] = sys::lwkt_sigreturn_again as *const () as i64;
            return;
        }
        libc::SYS_rt_sigprocmask => sigprocmask_on_context(uc, a),
        libc::SYS_rt_sigaction => trapped_rt_sigaction(a),
        libc::SYS_sigaltstack => sigaltstack_on_context(uc, a),
        libc::SYS_prctl if a[0] as c_int == PR_SET_SYSCALL_USER_DISPATCH => {
            program_prctl_sud(a[1], a[2], a[3], a[4])
        }
        libc::SYS_clone | libc::SYS_clone3 | libc::SYS_vfork | libc::SYS_fork => {
            clone_call(uc, nr, a)
        }
        _ => run(nr, a),
    };
    uc.uc_mcontext.gregs[libc::REG_RAX as usize] = r as i64;
}

/// A SIGSYS that is not a trap of ours (seccomp, the program's own
/// dispatch, or sent): to the program's disposition, as the kernel would
/// have delivered it.
unsafe fn forward_to_program(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let code = (*info).si_code;
    // Traps (seccomp, dispatch) are forced by the kernel: one that finds
    // SIGSYS blocked or ignored kills the process.
    let forced = code == SYS_SECCOMP || code == SYS_USER_DISPATCH;
    let f = flags().load(Relaxed);
    if f & (VBLOCK | PROGRAM) == VBLOCK {
        if forced {
            return sigsys::die_by_default(info);
        }
        if sigsys::defer(info) {
            return;
        }
    }
    let act = sigsys::program_action();
    // In a thread with dispatch of its own, our system calls would trap
    // too: its selector says ALLOW while we make them, and is back as it
    // was when its handler runs. Without a selector, none is made.
    let own_selector = if f & PROGRAM != 0 {
        program_selector().load(Relaxed) as *mut u8
    } else {
        core::ptr::null_mut()
    };
    if f & PROGRAM != 0 && own_selector.is_null() {
        return call_raw(&act, sig, info, ctx);
    }
    let was = if own_selector.is_null() {
        0
    } else {
        core::ptr::replace(own_selector, 0)
    };
    let selector_back = || {
        if !own_selector.is_null() {
            core::ptr::write_volatile(own_selector, was);
        }
    };
    match act.handler {
        libc::SIG_IGN if !forced => selector_back(),
        libc::SIG_IGN | libc::SIG_DFL => sigsys::die_by_default(info),
        _ => {
            let uc = ctx as *mut libc::ucontext_t;
            if f & PROGRAM != 0 && act.flags & SA_RESTORER != 0 && act.restorer != 0 {
                // A thread with dispatch of its own returns through its own
                // restorer, as it would without us (its dispatch may allow
                // that one's rt_sigreturn, not ours): our handler's return
                // address sits just below the context the kernel gave it.
                *(ctx as *mut usize).sub(1) = act.restorer;
            }
            let step_aside = |blocks_sigsys: bool| {
                let aside = blocks_sigsys && step_aside_for_handler();
                selector_back();
                aside
            };
            sigsys::deliver(&act, sig, info, uc, step_aside, |back_to| {
                // Armed again before our return puts the mask back: only
                // calls from the allowed range run until then.
                if flags().load(Relaxed) & (WANT | ARMED | PROGRAM) == WANT && own_thread() {
                    arm_or_look_again(selector(), back_to);
                }
            });
        }
    }
}

/// A thread whose own dispatch has no selector traps every system call
/// outside its range, ours too: its handler is called as it is, nothing
/// else done (no mask, no reset; the stack as the kernel would pick it).
unsafe fn call_raw(
    act: &KernelSigaction,
    sig: c_int,
    info: *mut libc::siginfo_t,
    ctx: *mut c_void,
) {
    match act.handler {
        libc::SIG_IGN | libc::SIG_DFL => {}
        h => {
            if act.flags & SA_RESTORER != 0 && act.restorer != 0 {
                *(ctx as *mut usize).sub(1) = act.restorer;
            }
            sigsys::call_handler(act, h, sig, info, ctx as *mut libc::ucontext_t);
        }
    }
}

/// The program's SIGSYS handler is about to run with SIGSYS blocked: a
/// trap in it would kill the process, so our dispatch goes off while it
/// runs. True when it did. Should the handler never return (`longjmp`),
/// the thread's next hooked call looks again.
fn step_aside_for_handler() -> bool {
    if flags().load(Relaxed) & ARMED == 0 {
        return false;
    }
    disarm();
    flags().fetch_or(LOOK_AGAIN, Relaxed);
    true
}

/// `rt_sigaction` made inside libc while the thread holds tokens
/// (sigaction called through a path no hook sees): SIGSYS's is the
/// program's record; another signal's handler loses SIGSYS from its mask,
/// which still reads back.
unsafe fn trapped_rt_sigaction(a: [usize; 6]) -> isize {
    let (sig, act, old, size) = (
        a[0] as c_int,
        a[1] as *const KernelSigaction,
        a[2] as *mut KernelSigaction,
        a[3],
    );
    if size != 8 {
        return -(libc::EINVAL as isize);
    }
    if sig == libc::SIGSYS {
        let prev = if act.is_null() {
            sigsys::program_action()
        } else {
            let new = (*act).kept();
            sigsys::note_restorer(&new);
            set_program_sigsys(new)
        };
        if !old.is_null() {
            old.write(prev);
        }
        return 0;
    }
    let had = sigsys::sigsys_was_in_mask(sig);
    let mut b = a;
    let asks = !act.is_null() && (*act).mask & SIGSYS_BIT != 0;
    let stripped = asks.then(|| KernelSigaction {
        mask: (*act).mask & !SIGSYS_BIT,
        ..*act
    });
    if let Some(k) = &stripped {
        b[1] = k as *const KernelSigaction as usize;
    }
    let r = sys::syscall6(libc::SYS_rt_sigaction, b[0], b[1], b[2], b[3], 0, 0);
    if r == 0 {
        if !old.is_null() && had {
            (*old).mask |= SIGSYS_BIT;
        }
        if !act.is_null() {
            sigsys::note_mask_of(sig, asks);
        }
    }
    r
}

/// `rt_sigprocmask` from inside the handler would be undone by its return:
/// apply it to the mask the handler returns to. The thread holds tokens
/// and is armed, and the change is libc's own (the exported functions are
/// hooked): most often a moment of "block everything" around `clone` or
/// `tgkill`. SIGSYS cannot really be blocked then (the next trapped call
/// would kill the process), so a block of SIGSYS is kept virtual: it reads
/// back, and a SIGSYS of the program's that arrives meanwhile is held back
/// and raised again when SIGSYS is unblocked.
unsafe fn sigprocmask_on_context(uc: &mut libc::ucontext_t, a: [usize; 6]) -> isize {
    let (how, set, old, size) = (a[0] as c_int, a[1] as *const u64, a[2] as *mut u64, a[3]);
    if size != 8 {
        return -(libc::EINVAL as isize);
    }
    let mask = &mut uc.uc_sigmask as *mut libc::sigset_t as *mut u64;
    let vblocked = flags().load(Relaxed) & VBLOCK != 0;
    let current = *mask | if vblocked { SIGSYS_BIT } else { 0 };
    if !set.is_null() {
        let s = *set;
        let new = match how {
            libc::SIG_BLOCK => current | s,
            libc::SIG_UNBLOCK => current & !s,
            libc::SIG_SETMASK => s,
            _ => return -(libc::EINVAL as isize),
        };
        if new & SIGSYS_BIT != 0 {
            flags().fetch_or(VBLOCK, Relaxed);
        } else if vblocked {
            end_virtual_block(true);
        }
        *mask = new & !SIGSYS_BIT & !UNBLOCKABLE;
    }
    if !old.is_null() {
        *old = current;
    }
    0
}

/// SIGSYS is no longer (virtually) blocked: raise again the SIGSYS held
/// back meanwhile. In a handler, SIGSYS is blocked for its remaining
/// moments, so that the signal arrives when the program's mask is back, at
/// the point where the program unblocked it.
unsafe fn end_virtual_block(in_handler: bool) {
    if flags().fetch_and(!VBLOCK, Relaxed) & VBLOCK == 0 {
        return;
    }
    let mut info: libc::siginfo_t = core::mem::zeroed();
    if sigsys::take_deferred(&mut info) {
        if in_handler {
            let b = SIGSYS_BIT;
            sigsys::rt_sigprocmask(libc::SIG_BLOCK, &b, core::ptr::null_mut());
        }
        sigsys::queue_to_self(&info);
    }
}

/// The register block the clone landing pad loads (sys.rs): the
/// interrupted context's registers, and the child's stack pointer.
#[repr(C)]
struct ChildRegs {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rcx: u64,
    /// The child's stack pointer minus 8, where its return address is.
    ret_sp: u64,
}

/// clone, clone3, vfork and fork, trapped while the caller holds tokens.
/// A child must never resume inside this handler on a shared stack:
/// * a child with its own stack (threads, posix_spawn) starts on the
///   landing pad, which loads the interrupted registers and returns
///   straight into the program;
/// * a child without one gets its own copy of memory (fork semantics; a
///   vfork becomes a fork whose parent still waits for the exec), so it can
///   return through the handler.
unsafe fn clone_call(uc: &libc::ucontext_t, nr: i64, a: [usize; 6]) -> isize {
    // clone3 callers (glibc) fall back to clone when it is missing: one
    // path to get right.
    if nr == libc::SYS_clone3 {
        return -(libc::ENOSYS as isize);
    }
    let (mut flags, stack) = match nr {
        libc::SYS_clone => (a[0], a[1]),
        libc::SYS_vfork => ((libc::CLONE_VFORK | libc::SIGCHLD) as usize, 0),
        _ => (libc::SIGCHLD as usize, 0),
    };
    if stack == 0 {
        flags &= !(libc::CLONE_VM as usize);
        let (ptid, ctid, tls) = if nr == libc::SYS_clone {
            (a[2], a[3], a[4])
        } else {
            (0, 0, 0)
        };
        return sys::syscall6(libc::SYS_clone, flags, 0, ptid, ctid, tls, 0);
    }
    // The child's registers go on its own stack, below where it starts.
    let g = &uc.uc_mcontext.gregs;
    // The child must start with exactly the stack pointer it was given
    // (musl passes one 8 bytes off alignment and pops from it): its return
    // address goes just below it, the register block further down.
    let ret_sp = stack - 8;
    let block = ((stack - 512) & !15) as *mut ChildRegs;
    *(ret_sp as *mut u64) = g[libc::REG_RIP as usize] as u64;
    block.write(ChildRegs {
        r8: g[libc::REG_R8 as usize] as u64,
        r9: g[libc::REG_R9 as usize] as u64,
        r10: g[libc::REG_R10 as usize] as u64,
        r11: g[libc::REG_EFL as usize] as u64,
        r12: g[libc::REG_R12 as usize] as u64,
        r13: g[libc::REG_R13 as usize] as u64,
        r14: g[libc::REG_R14 as usize] as u64,
        r15: g[libc::REG_R15 as usize] as u64,
        rdi: g[libc::REG_RDI as usize] as u64,
        rsi: g[libc::REG_RSI as usize] as u64,
        rbp: g[libc::REG_RBP as usize] as u64,
        rbx: g[libc::REG_RBX as usize] as u64,
        rdx: g[libc::REG_RDX as usize] as u64,
        rcx: g[libc::REG_RIP as usize] as u64,
        ret_sp: ret_sp as u64,
    });
    // glibc's clone stores the start routine at the stack top and pops it
    // in the child: the child must start exactly at `stack`, which the
    // landing pad restores after returning.
    sys::lwkt_clone_tramp(
        libc::SYS_clone,
        flags,
        stack,
        a[2],
        a[3],
        a[4],
        block as *const u64,
    )
}

// ---- running a trapped call ----

/// Run the trapped system call `nr`: keep the tokens when it completes at
/// once, release them around it when it would block. Returns the kernel's
/// value (negative errno).
unsafe fn run(nr: i64, mut a: [usize; 6]) -> isize {
    // Waits that install a signal mask must not block SIGSYS with it.
    let mut mask_copy = 0u64;
    let mut pselect_arg = [0usize; 2];
    match nr {
        libc::SYS_rt_sigsuspend => a[0] = kernel_mask_without_sigsys(a[0], &mut mask_copy),
        libc::SYS_ppoll => a[3] = kernel_mask_without_sigsys(a[3], &mut mask_copy),
        libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => {
            a[4] = kernel_mask_without_sigsys(a[4], &mut mask_copy)
        }
        libc::SYS_pselect6 if a[5] != 0 => {
            let arg = a[5] as *const [usize; 2];
            pselect_arg = [
                kernel_mask_without_sigsys((*arg)[0], &mut mask_copy),
                (*arg)[1],
            ];
            a[5] = pselect_arg.as_ptr() as usize;
        }
        _ => {}
    }
    let _ = &pselect_arg;
    let raw = |a: [usize; 6]| sys::syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    let blocking = || c_result(raw(a));
    let hook = "catch-all";
    let fd = a[0] as c_int;
    let c: isize = match nr {
        libc::SYS_read
        | libc::SYS_pread64
        | libc::SYS_readv
        | libc::SYS_preadv
        | libc::SYS_write
        | libc::SYS_pwrite64
        | libc::SYS_writev
        | libc::SYS_pwritev => {
            let vectored = matches!(
                nr,
                libc::SYS_readv | libc::SYS_preadv | libc::SYS_writev | libc::SYS_pwritev
            );
            let at_offset = matches!(
                nr,
                libc::SYS_pread64 | libc::SYS_preadv | libc::SYS_pwrite64 | libc::SYS_pwritev
            );
            let one = libc::iovec {
                iov_base: a[1] as *mut c_void,
                iov_len: a[2],
            };
            let (iov, cnt) = if vectored {
                (a[1] as *const libc::iovec, a[2] as c_int)
            } else {
                (&one as *const _, 1)
            };
            let off = if at_offset { a[3] as i64 } else { -1 };
            // The same call again, on (part of) the caller's buffers.
            let again = |v: *const libc::iovec, c: c_int, o: i64| {
                let (buf, len) = if vectored {
                    (v as usize, c as usize)
                } else {
                    ((*v).iov_base as usize, (*v).iov_len)
                };
                c_result(raw([a[0], buf, len, o as usize, 0, 0]))
            };
            // A negative offset: EINVAL at once (see fdio's AT_POSITION).
            if at_offset && off < 0 {
                return raw(a);
            }
            if matches!(
                nr,
                libc::SYS_read | libc::SYS_pread64 | libc::SYS_readv | libc::SYS_preadv
            ) {
                fdio::read_family(hook, fd, iov, cnt, off, again)
            } else {
                // The rest of a write to a stream socket (see write_family).
                let send = |v: *const libc::iovec, c: c_int| {
                    let mut m: libc::msghdr = core::mem::zeroed();
                    m.msg_iov = v as *mut _;
                    m.msg_iovlen = c as usize;
                    let flags = libc::MSG_NOSIGNAL as usize;
                    c_result(sys::syscall3(
                        libc::SYS_sendmsg,
                        a[0],
                        &m as *const _ as usize,
                        flags,
                    ))
                };
                fdio::write_family(hook, fd, iov, cnt, off, again, send)
            }
        }
        libc::SYS_recvfrom | libc::SYS_recvmsg => {
            let flags = if nr == libc::SYS_recvfrom { a[3] } else { a[2] } as c_int;
            if flags & libc::MSG_DONTWAIT != 0 {
                return raw(a);
            }
            let probe = |fl: c_int| {
                let mut b = a;
                b[if nr == libc::SYS_recvfrom { 3 } else { 2 }] = fl as usize;
                raw(b)
            };
            net::receive(hook, fd, flags, probe, blocking)
        }
        libc::SYS_sendto => {
            let flags = a[3] as c_int;
            if flags & libc::MSG_DONTWAIT != 0 {
                return raw(a);
            }
            let probe = || {
                raw([
                    a[0],
                    a[1],
                    a[2],
                    (flags | libc::MSG_DONTWAIT) as usize,
                    a[4],
                    a[5],
                ])
            };
            let rest = |from: usize, to: usize| {
                let fl = net::rest_flags(flags) as usize;
                raw([a[0], a[1] + from, to - from, fl, a[4], a[5]]).max(0) as usize
            };
            let request = || a[2].min(hooks::MAX_RW_COUNT);
            net::transmit(hook, fd, probe, request, blocking, rest)
        }
        libc::SYS_sendmsg => {
            let flags = a[2] as c_int;
            let msg = a[1] as *const libc::msghdr;
            if flags & libc::MSG_DONTWAIT != 0 || msg.is_null() {
                return raw(a);
            }
            let probe = || raw([a[0], a[1], (flags | libc::MSG_DONTWAIT) as usize, 0, 0, 0]);
            // `msg` is read only after the kernel accepted it.
            let request = || hooks::iov_request((*msg).msg_iov, (*msg).msg_iovlen);
            let rest = |from: usize, to: usize| {
                let fl = net::rest_flags(flags) as usize;
                net::send_span(&*msg, from, to, |part| {
                    raw([a[0], part as *const _ as usize, fl, 0, 0, 0])
                })
            };
            net::transmit(hook, fd, probe, request, blocking, rest)
        }
        libc::SYS_accept | libc::SYS_accept4 | libc::SYS_connect => {
            if hooks::nonblocking(fd) {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_nanosleep => {
            if hooks::is_zero_ts(a[0] as *const libc::timespec) {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_clock_nanosleep => {
            let ts = a[2] as *const libc::timespec;
            if hooks::is_zero_ts(ts)
                || (a[1] as c_int & libc::TIMER_ABSTIME != 0
                    && process::deadline_passed(a[0] as libc::clockid_t, ts))
            {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_poll => {
            if a[2] as c_int == 0 {
                return raw(a);
            }
            waiters::after_probe(hook, raw([a[0], a[1], 0, 0, 0, 0]), || blocking() as c_int)
                as isize
        }
        libc::SYS_ppoll | libc::SYS_epoll_pwait2 => {
            let ts_arg = if nr == libc::SYS_ppoll { 2 } else { 3 };
            if hooks::is_zero_ts(a[ts_arg] as *const libc::timespec) {
                return raw(a);
            }
            let zero = ZERO_TS;
            let mut b = a;
            b[ts_arg] = &zero as *const _ as usize;
            waiters::after_probe(hook, raw(b), || blocking() as c_int) as isize
        }
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait => {
            if a[3] as c_int == 0 {
                return raw(a);
            }
            let mut b = a;
            b[3] = 0;
            waiters::after_probe(hook, raw(b), || blocking() as c_int) as isize
        }
        libc::SYS_select | libc::SYS_pselect6 => {
            let ts = a[4];
            let zero = if nr == libc::SYS_select {
                ts != 0
                    && (*(ts as *const libc::timeval)).tv_sec == 0
                    && (*(ts as *const libc::timeval)).tv_usec == 0
            } else {
                hooks::is_zero_ts(ts as *const libc::timespec)
            };
            if zero {
                return raw(a);
            }
            let sets = [
                a[1] as *mut libc::fd_set,
                a[2] as *mut libc::fd_set,
                a[3] as *mut libc::fd_set,
            ];
            let saved = waiters::SavedSets::save(sets);
            let mask = if nr == libc::SYS_pselect6 && a[5] != 0 {
                *(a[5] as *const *const libc::sigset_t)
            } else {
                core::ptr::null()
            };
            let r = waiters::select_probe(a[0] as c_int, sets, mask);
            if r == 0 {
                saved.restore(sets);
            }
            waiters::after_probe(hook, r, || blocking() as c_int) as isize
        }
        libc::SYS_wait4 => {
            let args = (
                a[0] as libc::pid_t,
                a[1] as *mut c_int,
                a[2] as c_int,
                a[3] as *mut libc::rusage,
            );
            process::wait_family(hook, args, || blocking() as libc::pid_t) as isize
        }
        libc::SYS_waitid => {
            let info = a[2] as *mut libc::siginfo_t;
            if a[3] as c_int & libc::WNOHANG != 0 || info.is_null() {
                return raw(a);
            }
            let r = raw([a[0], a[1], a[2], a[3] | libc::WNOHANG as usize, a[4], 0]);
            if r != 0 || (*info).si_pid() != 0 {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_rt_sigtimedwait => {
            if hooks::is_zero_ts(a[2] as *const libc::timespec) {
                return raw(a);
            }
            let r = process::sigtimedwait_probe(
                a[0] as *const libc::sigset_t,
                a[1] as *mut libc::siginfo_t,
            );
            if r > 0 {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_flock => {
            let op = a[1] as c_int;
            if op & (libc::LOCK_NB | libc::LOCK_UN) != 0 {
                return raw(a);
            }
            let r = raw([a[0], (op | libc::LOCK_NB) as usize, 0, 0, 0, 0]);
            if r != -(libc::EWOULDBLOCK as isize) {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_fcntl => {
            let try_cmd = match a[1] as c_int {
                libc::F_SETLKW => libc::F_SETLK,
                libc::F_OFD_SETLKW => libc::F_OFD_SETLK,
                _ => return raw(a),
            };
            let r = raw([a[0], try_cmd as usize, a[2], 0, 0, 0]);
            if r != -(libc::EAGAIN as isize) && r != -(libc::EACCES as isize) {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_msgrcv | libc::SYS_msgsnd => {
            let flag_arg = if nr == libc::SYS_msgrcv { 4 } else { 3 };
            if a[flag_arg] as c_int & libc::IPC_NOWAIT != 0 {
                return raw(a);
            }
            let mut b = a;
            b[flag_arg] |= libc::IPC_NOWAIT as usize;
            let r = raw(b);
            let would_wait = if nr == libc::SYS_msgrcv {
                libc::ENOMSG
            } else {
                libc::EAGAIN
            };
            if r != -(would_wait as isize) {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_mq_timedreceive | libc::SYS_mq_timedsend => {
            let past = ZERO_TS;
            let r = raw([a[0], a[1], a[2], a[3], &past as *const _ as usize, 0]);
            if r != process::WOULD_WAIT {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_openat | libc::SYS_open => {
            let (dirfd, path, flags) = if nr == libc::SYS_openat {
                (a[0] as c_int, a[1] as *const libc::c_char, a[2] as c_int)
            } else {
                (libc::AT_FDCWD, a[0] as *const libc::c_char, a[1] as c_int)
            };
            if !fdio::is_waiting_fifo(dirfd, path, flags) {
                return raw(a);
            }
            fdio::fifo_open(hook, dirfd, path, flags, || blocking() as c_int) as isize
        }
        libc::SYS_futex => {
            if !process::syscall_blocks(nr, a[0] as i64, a[1] as i64, a[2] as i64) {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_futex_waitv
        | libc::SYS_pause
        | libc::SYS_rt_sigsuspend
        | libc::SYS_fsync
        | libc::SYS_fdatasync
        | libc::SYS_sync
        | libc::SYS_syncfs
        | libc::SYS_sync_file_range
        | libc::SYS_preadv2
        | libc::SYS_pwritev2
        | libc::SYS_recvmmsg
        | libc::SYS_sendmmsg => released(hook, blocking),
        _ => return raw(a),
    };
    if c == -1 {
        -(sys::errno() as isize)
    } else {
        c
    }
}

// ---- the program's own signal calls (hooks/signals.rs) ----

type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
type SigmaskFn = unsafe extern "C" fn(c_int, *const libc::sigset_t, *mut libc::sigset_t) -> c_int;

/// `sigaction` from the program. Before the catch-all took SIGSYS, libc's
/// own. After: SIGSYS's action is the program's record (read back as the
/// kernel would have kept it); another signal's handler is installed
/// without SIGSYS in its mask, which still reads back.
pub unsafe fn program_sigaction(
    real: SigactionFn,
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if !installed() {
        let r = real(sig, act, old);
        if r == 0 && !act.is_null() && install_started() {
            after_change_during_install(sig);
        }
        return r;
    }
    if sig == libc::SIGSYS {
        let prev = if act.is_null() {
            sigsys::program_action()
        } else {
            set_program_sigsys(KernelSigaction::from_libc(&*act))
        };
        if !old.is_null() {
            prev.write_libc(old);
        }
        return 0;
    }
    let had = sigsys::sigsys_was_in_mask(sig);
    let asks = !act.is_null() && libc::sigismember(&(*act).sa_mask, libc::SIGSYS) == 1;
    let stripped = asks.then(|| {
        let mut copy = *act;
        libc::sigdelset(&mut copy.sa_mask, libc::SIGSYS);
        copy
    });
    let act2 = stripped
        .as_ref()
        .map_or(act, |c| c as *const libc::sigaction);
    let r = real(sig, act2, old);
    if r == 0 {
        if !old.is_null() && had {
            libc::sigaddset(&mut (*old).sa_mask, libc::SIGSYS);
        }
        if !act.is_null() {
            sigsys::note_mask_of(sig, asks);
        }
    }
    r
}

/// `signal`, `bsd_signal`, `sysv_signal`, `sigset` and `sigignore` for SIGSYS
/// once the catch-all holds it: `act` (what libc would install) becomes
/// the program's record. None: not SIGSYS, or not held; the hook then
/// calls libc (`after_libc_signal` follows).
pub unsafe fn program_signal(sig: c_int, act: &libc::sigaction) -> Option<libc::sighandler_t> {
    if sig != libc::SIGSYS || !installed() {
        return None;
    }
    Some(set_program_sigsys(KernelSigaction::from_libc(act)).handler)
}

/// libc's `signal` family set `sig`'s action itself: its mask holds no
/// SIGSYS now; and a SIGSYS action that raced with the catch-all taking
/// SIGSYS over is taken over now.
pub fn after_libc_signal(sig: c_int) {
    if installed() {
        sigsys::note_mask_of(sig, false);
    } else if install_started() {
        after_change_during_install(sig);
    }
}

/// The program's SIGSYS handler as it stands (the record, or the kernel's
/// before the catch-all took SIGSYS).
pub fn program_sigsys_handler() -> libc::sighandler_t {
    if installed() {
        return sigsys::program_action().handler;
    }
    let mut k = KernelSigaction::zeroed();
    unsafe { sigsys::rt_sigaction(libc::SIGSYS, core::ptr::null(), &mut k) };
    k.handler
}

/// Does the thread's mask (as the program sees it) block SIGSYS?
fn sigsys_blocked_as_seen(f: u8) -> bool {
    // An armed thread never blocks it for real.
    f & VBLOCK != 0 || (f & ARMED == 0 && sigsys::current_mask() & SIGSYS_BIT != 0)
}

/// `sigprocmask` / `pthread_sigmask` from the program (`real`: libc's).
/// A thread that has never used tokens goes straight to libc, untouched.
/// In one that has, the mask is the program's, SIGSYS included: blocking
/// SIGSYS switches our dispatch off first (the catch-all steps aside in
/// that thread, which gets its SIGSYS for `sigwait` or `signalfd`), and
/// unblocking it switches it back on.
pub unsafe fn program_sigmask(
    real: SigmaskFn,
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    let f = flags().load(Relaxed);
    if f & (WANT | VBLOCK) == 0 {
        return real(how, set, old);
    }
    let vblocked = f & VBLOCK != 0;
    let seen_old = |r: c_int| {
        if r == 0 && vblocked && !old.is_null() {
            libc::sigaddset(old, libc::SIGSYS);
        }
        r
    };
    if set.is_null() {
        return seen_old(real(how, set, old));
    }
    let asks = libc::sigismember(set, libc::SIGSYS) == 1;
    // SIGSYS unblocked and staying so (an armed thread), or a bad `how`:
    // straight to libc.
    let known = matches!(how, libc::SIG_BLOCK | libc::SIG_UNBLOCK | libc::SIG_SETMASK);
    let plain = !known || (!asks && f & ARMED != 0 && !vblocked);
    if plain || !own_thread() {
        return seen_old(real(how, set, old));
    }
    let blocked_now = sigsys_blocked_as_seen(f);
    let blocked_after = match how {
        libc::SIG_BLOCK => blocked_now || asks,
        libc::SIG_UNBLOCK => blocked_now && !asks,
        _ => asks,
    };
    if blocked_after {
        if f & ARMED != 0 {
            disarm();
            say_stepping_aside(&SAID_BLOCKED, "blocks SIGSYS");
        }
        // A block seen here: its unblock will be too, no need to look
        // again at every hooked call.
        flags().fetch_and(!(VBLOCK | LOOK_AGAIN), Relaxed);
        let r = seen_old(real(how, set, old));
        if vblocked {
            // Held back meanwhile: pending now, as it would have been.
            let mut info: libc::siginfo_t = core::mem::zeroed();
            if sigsys::take_deferred(&mut info) {
                sigsys::queue_to_self(&info);
            }
        }
        if r != 0 {
            rearm_if_wanted();
        }
        r
    } else {
        let r = seen_old(real(how, set, old));
        end_virtual_block(false);
        rearm_if_wanted();
        r
    }
}

/// `prctl(PR_SET_SYSCALL_USER_DISPATCH, ...)` from the program: a thread
/// that switches dispatch on itself keeps it, and the catch-all steps
/// aside there; switching it off gives the thread back to the catch-all.
/// Returns the kernel's value.
pub fn program_prctl_sud(mode: usize, off: usize, len: usize, sel: usize) -> isize {
    let nr = PR_SET_SYSCALL_USER_DISPATCH as usize;
    forget_parent_process();
    let f = flags().load(Relaxed);
    if mode == PR_SYS_DISPATCH_OFF {
        if f & PROGRAM != 0 {
            let r = prctl(nr, mode, off, len, sel);
            if r == 0 {
                flags().fetch_and(!PROGRAM, Relaxed);
                program_selector().store(0, Relaxed);
                rearm_if_wanted();
            }
            return r;
        }
        if f & ARMED != 0 {
            // Off already, as far as the program knows: ours stays.
            return if off | len | sel != 0 {
                -(libc::EINVAL as isize)
            } else {
                0
            };
        }
        return prctl(nr, mode, off, len, sel);
    }
    let r = prctl(nr, mode, off, len, sel);
    if r == 0 {
        program_selector().store(sel, Relaxed);
        flags().fetch_and(!(ARMED | VBLOCK | LOOK_AGAIN), Relaxed);
        flags().fetch_or(PROGRAM, Relaxed);
        say_stepping_aside(&SAID_PROGRAM, "switched Syscall User Dispatch on itself");
    }
    r
}

/// A kernel signal mask (8 bytes) that a trapped wait installs while it
/// waits, without SIGSYS: `copy` holds it.
unsafe fn kernel_mask_without_sigsys(mask: usize, copy: &mut u64) -> usize {
    if mask == 0 {
        return 0;
    }
    *copy = *(mask as *const u64) & !SIGSYS_BIT;
    copy as *mut u64 as usize
}

/// The mask a wait of the program's (`sigsuspend`, `ppoll`, `pselect`,
/// `epoll_pwait`) installs while it waits, without SIGSYS in a thread the
/// catch-all has armed: a handler that runs in that wait may take a token
/// and trap. Untouched in any other thread.
pub unsafe fn without_sigsys(
    set: *const libc::sigset_t,
    copy: &mut libc::sigset_t,
) -> *const libc::sigset_t {
    if set.is_null() || !armed_here() || libc::sigismember(set, libc::SIGSYS) != 1 {
        return set;
    }
    *copy = *set;
    libc::sigdelset(copy, libc::SIGSYS);
    copy
}
