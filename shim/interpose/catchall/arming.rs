//! Arming: switching Syscall User Dispatch on for a thread that uses
//! tokens, off where the catch-all must step aside (the thread blocks
//! SIGSYS, or runs dispatch of its own), and on again when it may.

use core::sync::atomic::{AtomicBool, Ordering::Relaxed};

use super::available::available;
use super::disposition::{current_mask, SIGSYS_BIT};
use super::install::install_once;
use super::state::{
    armed_tid, flags, own_thread, program_selector, selector, ARMED, CHILD_NEAR, LOOK_AGAIN,
    PROGRAM, VBLOCK, WANT,
};
use super::{allowed_range, dispatch_prctl, PR_SYS_DISPATCH_OFF, PR_SYS_DISPATCH_ON};
use crate::{config, diag, sys};

/// Switch dispatch on for the calling thread, with `selector` as its
/// child. Stays off while the thread blocks SIGSYS or runs dispatch of its
/// own. True when the catch-all can run here: the token layer then tells us when
/// the thread exits or forks.
pub fn enable_for_thread(selector: *mut u8) -> bool {
    if !available() {
        return false;
    }
    forget_parent_process();
    flags().fetch_or(WANT, Relaxed);
    arm_or_look_again(selector, current_mask());
    true
}

/// Take the TLS block over for this thread: in a fork child it still says
/// what held in the parent's thread, and the kernel does not pass dispatch
/// on to a child, neither ours nor the program's.
pub(super) fn forget_parent_process() {
    let me = sys::gettid();
    if armed_tid().swap(me, Relaxed) != me {
        flags().fetch_and(!(ARMED | PROGRAM | CHILD_NEAR), Relaxed);
        program_selector().store(0, Relaxed);
    }
}

/// Arm, or else (SIGSYS blocked by something no hook saw) look again at
/// the thread's next hooked call.
pub(super) fn arm_or_look_again(selector: *mut u8, mask: u64) {
    if !arm_for_mask(selector, mask) && flags().load(Relaxed) & (WANT | ARMED | PROGRAM) == WANT {
        flags().fetch_or(LOOK_AGAIN, Relaxed);
    }
}

/// Arm the calling thread, which will run with signal mask `mask`.
pub(super) fn arm_for_mask(selector: *mut u8, mask: u64) -> bool {
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
    let on = dispatch_prctl(PR_SYS_DISPATCH_ON, start, len, selector as usize) == 0;
    if on {
        flags().fetch_and(!LOOK_AGAIN, Relaxed);
    } else {
        flags().fetch_and(!ARMED, Relaxed);
    }
    on
}

/// Switch our dispatch off in the calling thread (it is about to block
/// SIGSYS, or the program takes dispatch over).
pub(super) fn disarm() {
    if flags().load(Relaxed) & ARMED != 0 {
        dispatch_prctl(PR_SYS_DISPATCH_OFF, 0, 0, 0);
        flags().fetch_and(!ARMED, Relaxed);
    }
}

/// Re-arm a thread the catch-all stepped aside in, once it no longer
/// blocks SIGSYS.
pub(super) fn rearm_if_wanted() {
    if flags().load(Relaxed) & (WANT | ARMED | PROGRAM) != WANT {
        return;
    }
    let mask = current_mask();
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

pub(super) static SAID_BLOCKED: AtomicBool = AtomicBool::new(false);
pub(super) static SAID_PROGRAM: AtomicBool = AtomicBool::new(false);

/// `LWKT_DEBUG`: say once a process that the catch-all steps aside in a
/// thread, and why.
#[cold]
pub(super) fn say_stepping_aside(said: &AtomicBool, why: &str) {
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

/// The program's SIGSYS handler is about to run with SIGSYS blocked: a
/// trap in it would kill the process, so our dispatch goes off while it
/// runs. True when it did. Should the handler never return (`longjmp`),
/// the thread's next hooked call looks again.
pub(super) fn step_aside_for_handler() -> bool {
    if flags().load(Relaxed) & ARMED == 0 {
        return false;
    }
    disarm();
    flags().fetch_or(LOOK_AGAIN, Relaxed);
    true
}
