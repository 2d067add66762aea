//! The SIGSYS handler's entry: a trap of ours is decoded from the
//! interrupted registers and run (or redirected); any other SIGSYS goes to
//! the program (forward.rs).

use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering::Relaxed;

use super::clone::clone_call;
use super::forward::forward_to_program;
use super::program::prctl_sud;
use super::redirect::{sigaltstack_on_context, sigprocmask_on_context, trapped_rt_sigaction};
use super::run::run;
use super::state::{flags, selector, ARMED, PROGRAM};
use super::PR_SET_SYSCALL_USER_DISPATCH;
use crate::sys;

/// `si_code` of a SIGSYS raised by Syscall User Dispatch.
pub(super) const SYS_USER_DISPATCH: c_int = 2;
/// `si_code` of a SIGSYS raised by a seccomp filter (`SECCOMP_RET_TRAP`).
pub(super) const SYS_SECCOMP: c_int = 1;

/// `SS_AUTODISARM` (linux/signal.h).
pub(super) const SS_AUTODISARM: c_int = 1 << 31;

/// The SIGSYS handler (installed by install.rs, with `SA_SIGINFO`).
pub(super) extern "C" fn on_sigsys(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo.
    let code = unsafe { (*info).si_code };
    if code == SYS_USER_DISPATCH && trap_is_ours() {
        let saved_errno = sys::errno();
        // SAFETY: the kernel passes the interrupted context, ours to read
        // and change until the handler returns.
        let uc = unsafe { &mut *(ctx as *mut libc::ucontext_t) };
        alternate_stack_back(uc);
        // SAFETY: a trap of ours: the context holds the trapped call.
        unsafe { dispatch(uc) };
        sys::set_errno(saved_errno);
    } else {
        // SAFETY: the kernel's siginfo and context, as it gave them.
        unsafe { forward_to_program(sig, info, ctx) };
    }
}

/// The kernel disarms an `SS_AUTODISARM` alternate stack for every
/// handler it enters, ours too, and arms it again when the handler
/// returns. While the dispatch runs the program's call, the stack is the
/// program's as it was: armed again (a signal of the program's during a
/// blocking call, its `sigaltstack` calls, see it so).
fn alternate_stack_back(uc: &libc::ucontext_t) {
    let ss = &uc.uc_stack;
    if ss.ss_flags & SS_AUTODISARM != 0 && ss.ss_size != 0 {
        // SAFETY: the kernel reads the stack_t, which it wrote itself.
        unsafe {
            sys::syscall3(
                libc::SYS_sigaltstack,
                ss as *const libc::stack_t as usize,
                0,
                0,
            )
        };
    }
}

/// A dispatch trap is ours when this thread is armed by us and holds
/// tokens (our selector says BLOCK): the kernel traps on no other.
fn trap_is_ours() -> bool {
    // SAFETY: this thread's selector byte (TLS), always readable.
    flags().load(Relaxed) & (ARMED | PROGRAM) == ARMED
        && unsafe { core::ptr::read_volatile(selector()) } != 0
}

/// Decode the trapped call from the interrupted registers (the system
/// call ABI: number in `rax`, arguments in `rdi rsi rdx r10 r8 r9`), run
/// it, and put its result in `rax` for the return. Calls that only make
/// sense outside a handler are redirected (redirect.rs, clone.rs).
///
/// # Safety
///
/// `uc` is the context of a trap of ours (`trap_is_ours`): the thread
/// made this call, from outside the allowed range.
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
    // In each arm: the program's own call, with its own arguments.
    let r = match nr {
        libc::SYS_rt_sigreturn => {
            // A program handler returning through libc's restorer: run the
            // same rt_sigreturn again from the allowed range, same stack.
            g[libc::REG_RIP as usize] = sys::lwkt_sigreturn_again as *const () as i64;
            return;
        }
        // SAFETY: the program's call; `uc` its context.
        libc::SYS_rt_sigprocmask => unsafe { sigprocmask_on_context(uc, a) },
        // SAFETY: the program's call.
        libc::SYS_rt_sigaction => unsafe { trapped_rt_sigaction(a) },
        // SAFETY: the program's call; `uc` its context.
        libc::SYS_sigaltstack => unsafe { sigaltstack_on_context(uc, a) },
        libc::SYS_prctl if a[0] as c_int == PR_SET_SYSCALL_USER_DISPATCH => {
            prctl_sud(a[1], a[2], a[3], a[4])
        }
        // SAFETY: the program's call; `uc` its context.
        libc::SYS_clone | libc::SYS_clone3 | libc::SYS_vfork | libc::SYS_fork => unsafe {
            clone_call(uc, nr, a)
        },
        // SAFETY: the program's call.
        _ => unsafe { run(nr, a) },
    };
    uc.uc_mcontext.gregs[libc::REG_RAX as usize] = r as i64;
}
