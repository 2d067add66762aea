//! A SIGSYS that is not a trap of ours (seccomp, the program's own
//! dispatch, or sent): to the program's disposition, as the kernel would
//! have delivered it (delivery.rs).

use core::ffi::{c_int, c_void};
use core::sync::atomic::Ordering::Relaxed;

use super::arming::{arm_or_look_again, step_aside_for_handler};
use super::delivery::{call_handler, defer, deliver, die_by_default};
use super::dispatch::{SYS_SECCOMP, SYS_USER_DISPATCH};
use super::disposition::{program_action, KernelSigaction, SA_RESTORER};
use super::state::{flags, own_thread, program_selector, selector, ARMED, PROGRAM, VBLOCK, WANT};

/// Deliver the SIGSYS our handler got, which is not a trap of ours, to
/// the program.
///
/// # Safety
///
/// `info` and `ctx` are what the kernel gave our handler.
pub(super) unsafe fn forward_to_program(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    // SAFETY: the kernel's siginfo.
    let code = unsafe { (*info).si_code };
    // Traps (seccomp, dispatch) are forced by the kernel: one that finds
    // SIGSYS blocked or ignored kills the process.
    let forced = code == SYS_SECCOMP || code == SYS_USER_DISPATCH;
    let f = flags().load(Relaxed);
    if f & (VBLOCK | PROGRAM) == VBLOCK {
        if forced {
            // SAFETY: the kernel's siginfo.
            return unsafe { die_by_default(info) };
        }
        // SAFETY: the kernel's siginfo.
        if unsafe { defer(info) } {
            return;
        }
    }
    let act = program_action();
    // In a thread with dispatch of its own, our system calls would trap
    // too: its selector says ALLOW while we make them, and is back as it
    // was when its handler runs. Without a selector, none is made.
    let own_selector = if f & PROGRAM != 0 {
        program_selector().load(Relaxed) as *mut u8
    } else {
        core::ptr::null_mut()
    };
    if f & PROGRAM != 0 && own_selector.is_null() {
        // SAFETY: the kernel's siginfo and context.
        return unsafe { call_raw(&act, sig, info, ctx) };
    }
    let was = if own_selector.is_null() {
        0
    } else {
        // SAFETY: the selector byte the program gave the kernel for this
        // thread: the kernel reads it at every system call, so it is
        // readable and writable as long as the program's dispatch is on.
        unsafe { core::ptr::replace(own_selector, 0) }
    };
    let selector_back = || {
        if !own_selector.is_null() {
            // SAFETY: as above.
            unsafe { core::ptr::write_volatile(own_selector, was) };
        }
    };
    match act.handler {
        libc::SIG_IGN if !forced => selector_back(),
        // SAFETY: the kernel's siginfo.
        libc::SIG_IGN | libc::SIG_DFL => unsafe { die_by_default(info) },
        _ => {
            let uc = ctx as *mut libc::ucontext_t;
            if f & PROGRAM != 0 && act.flags & SA_RESTORER != 0 && act.restorer != 0 {
                // A thread with dispatch of its own returns through its own
                // restorer, as it would without us (its dispatch may allow
                // that one's rt_sigreturn, not ours): our handler's return
                // address sits just below the context the kernel gave it.
                // SAFETY: that slot is our handler's return address, on
                // the signal frame the kernel built.
                unsafe { *(ctx as *mut usize).sub(1) = act.restorer };
            }
            let step_aside = |blocks_sigsys: bool| {
                let aside = blocks_sigsys && step_aside_for_handler();
                selector_back();
                aside
            };
            let step_back = |back_to| {
                // Armed again before our return puts the mask back: only
                // calls from the allowed range run until then.
                if flags().load(Relaxed) & (WANT | ARMED | PROGRAM) == WANT && own_thread() {
                    arm_or_look_again(selector(), back_to);
                }
            };
            // SAFETY: the program's handler, the kernel's siginfo and
            // context.
            unsafe { deliver(&act, sig, info, uc, step_aside, step_back) };
        }
    }
}

/// A thread whose own dispatch has no selector traps every system call
/// outside its range, ours too: its handler is called as it is, nothing
/// else done (no mask, no reset; the stack as the kernel would pick it).
///
/// # Safety
///
/// As `forward_to_program`; `act` is the program's action.
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
                // SAFETY: our handler's return address (see above).
                unsafe { *(ctx as *mut usize).sub(1) = act.restorer };
            }
            // SAFETY: the program's handler, as the kernel would call it.
            unsafe { call_handler(act, h, sig, info, ctx as *mut libc::ucontext_t) };
        }
    }
}
