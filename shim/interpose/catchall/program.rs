//! The program's own signal calls, through the hooks of hooks/signals.rs,
//! once the catch-all is about: SIGSYS's disposition is the program's
//! record (disposition.rs), masks are the program's (blocking SIGSYS makes
//! the catch-all step aside in that thread), a thread's own Syscall User
//! Dispatch is its own.

use core::ffi::c_int;
use core::mem::MaybeUninit;
use core::sync::atomic::Ordering::Relaxed;

use super::arming::{
    disarm, forget_parent_process, rearm_if_wanted, say_stepping_aside, SAID_BLOCKED, SAID_PROGRAM,
};
use super::delivery::{queue_to_self, take_deferred};
use super::disposition::{
    current_mask, note_mask_of, program_action, rt_sigaction, sigsys_was_in_mask, KernelSigaction,
    SIGSYS_BIT,
};
use super::install::{after_change_during_install, install_started, installed, set_program_sigsys};
use super::redirect::end_virtual_block;
use super::state::{
    armed_here, flags, own_thread, program_selector, ARMED, LOOK_AGAIN, PROGRAM, VBLOCK, WANT,
};
use super::{dispatch_prctl, PR_SYS_DISPATCH_OFF};

/// libc's `sigaction`.
type SigactionFn =
    unsafe extern "C" fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int;
/// libc's `sigprocmask` or `pthread_sigmask`.
type SigmaskFn = unsafe extern "C" fn(c_int, *const libc::sigset_t, *mut libc::sigset_t) -> c_int;

/// `sigaction` from the program. Before the catch-all took SIGSYS, libc's
/// own. After: SIGSYS's action is the program's record (read back as the
/// kernel would have kept it); another signal's handler is installed
/// without SIGSYS in its mask, which still reads back.
///
/// # Safety
///
/// `real` is libc's `sigaction`; the other arguments are the program's,
/// as `sigaction` takes them.
pub unsafe fn sigaction(
    real: SigactionFn,
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    if !installed() {
        // SAFETY: the program's call, as it made it.
        let r = unsafe { real(sig, act, old) };
        if r == 0 && !act.is_null() && install_started() {
            after_change_during_install(sig);
        }
        return r;
    }
    // SAFETY: the program's action, null or readable (libc would read it).
    let act_ref = unsafe { act.as_ref() };
    if sig == libc::SIGSYS {
        let prev = match act_ref {
            None => program_action(),
            Some(act) => set_program_sigsys(KernelSigaction::from_libc(act)),
        };
        if !old.is_null() {
            // SAFETY: the program's `old`, writable (libc would write it).
            unsafe { prev.write_libc(old) };
        }
        return 0;
    }
    let had = sigsys_was_in_mask(sig);
    // SAFETY: a signal set of the program's action, readable.
    let asks = act_ref.is_some_and(|a| unsafe { libc::sigismember(&a.sa_mask, libc::SIGSYS) } == 1);
    let stripped = act_ref.filter(|_| asks).map(|a| {
        let mut copy = *a;
        // SAFETY: our copy's signal set.
        unsafe { libc::sigdelset(&mut copy.sa_mask, libc::SIGSYS) };
        copy
    });
    let act2 = stripped
        .as_ref()
        .map_or(act, |c| c as *const libc::sigaction);
    // SAFETY: the program's call, with our copy of its action when it was
    // stripped.
    let r = unsafe { real(sig, act2, old) };
    if r == 0 {
        if !old.is_null() && had {
            // SAFETY: libc just wrote it.
            unsafe { libc::sigaddset(&mut (*old).sa_mask, libc::SIGSYS) };
        }
        if act_ref.is_some() {
            note_mask_of(sig, asks);
        }
    }
    r
}

/// `signal`, `bsd_signal`, `sysv_signal`, `sigset` and `sigignore` for SIGSYS
/// once the catch-all holds it: `act` (what libc would install) becomes
/// the program's record. None: not SIGSYS, or not held; the hook then
/// calls libc (`after_libc_signal` follows).
pub fn signal(sig: c_int, act: &libc::sigaction) -> Option<libc::sighandler_t> {
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
        note_mask_of(sig, false);
    } else if install_started() {
        after_change_during_install(sig);
    }
}

/// The program's SIGSYS handler as it stands (the record, or the kernel's
/// before the catch-all took SIGSYS).
pub fn sigsys_handler() -> libc::sighandler_t {
    if installed() {
        return program_action().handler;
    }
    let mut k = KernelSigaction::zeroed();
    // SAFETY: reads the action into `k`, ours; installs nothing.
    unsafe { rt_sigaction(libc::SIGSYS, core::ptr::null(), &mut k) };
    k.handler
}

/// Does the thread's mask (as the program sees it) block SIGSYS?
fn sigsys_blocked_as_seen(f: u8) -> bool {
    // An armed thread never blocks it for real.
    f & VBLOCK != 0 || (f & ARMED == 0 && current_mask() & SIGSYS_BIT != 0)
}

/// `sigprocmask` / `pthread_sigmask` from the program (`real`: libc's).
/// A thread that has never used tokens goes straight to libc, untouched.
/// In one that has, the mask is the program's, SIGSYS included: blocking
/// SIGSYS switches our dispatch off first (the catch-all steps aside in
/// that thread, which gets its SIGSYS for `sigwait` or `signalfd`), and
/// unblocking it switches it back on.
///
/// # Safety
///
/// `real` is libc's function; the other arguments are the program's, as
/// it takes them.
pub unsafe fn sigmask(
    real: SigmaskFn,
    how: c_int,
    set: *const libc::sigset_t,
    old: *mut libc::sigset_t,
) -> c_int {
    let f = flags().load(Relaxed);
    if f & (WANT | VBLOCK) == 0 {
        // SAFETY: the program's call, as it made it.
        return unsafe { real(how, set, old) };
    }
    let vblocked = f & VBLOCK != 0;
    let seen_old = |r: c_int| {
        if r == 0 && vblocked && !old.is_null() {
            // SAFETY: libc just wrote it.
            unsafe { libc::sigaddset(old, libc::SIGSYS) };
        }
        r
    };
    // SAFETY: the program's call, as it made it.
    let libc_call = || seen_old(unsafe { real(how, set, old) });
    if set.is_null() {
        return libc_call();
    }
    // SAFETY: the program's set, readable (libc would read it).
    let asks = unsafe { libc::sigismember(set, libc::SIGSYS) } == 1;
    // SIGSYS unblocked and staying so (an armed thread), or a bad `how`:
    // straight to libc.
    let known = matches!(how, libc::SIG_BLOCK | libc::SIG_UNBLOCK | libc::SIG_SETMASK);
    let plain = !known || (!asks && f & ARMED != 0 && !vblocked);
    if plain || !own_thread() {
        return libc_call();
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
        let r = libc_call();
        if vblocked {
            // Held back meanwhile: pending now, as it would have been.
            let mut info = MaybeUninit::<libc::siginfo_t>::uninit();
            // SAFETY: `info` is ours to write, read only once written.
            unsafe {
                if take_deferred(info.as_mut_ptr()) {
                    queue_to_self(info.as_ptr());
                }
            }
        }
        if r != 0 {
            rearm_if_wanted();
        }
        r
    } else {
        let r = libc_call();
        end_virtual_block(false);
        rearm_if_wanted();
        r
    }
}

/// `prctl(PR_SET_SYSCALL_USER_DISPATCH, ...)` from the program: a thread
/// that switches dispatch on itself keeps it, and the catch-all steps
/// aside there; switching it off gives the thread back to the catch-all.
/// Returns the kernel's value.
pub fn prctl_sud(mode: usize, off: usize, len: usize, sel: usize) -> isize {
    forget_parent_process();
    let f = flags().load(Relaxed);
    if mode == PR_SYS_DISPATCH_OFF {
        if f & PROGRAM != 0 {
            let r = dispatch_prctl(mode, off, len, sel);
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
        return dispatch_prctl(mode, off, len, sel);
    }
    let r = dispatch_prctl(mode, off, len, sel);
    if r == 0 {
        program_selector().store(sel, Relaxed);
        flags().fetch_and(!(ARMED | VBLOCK | LOOK_AGAIN), Relaxed);
        flags().fetch_or(PROGRAM, Relaxed);
        say_stepping_aside(&SAID_PROGRAM, "switched Syscall User Dispatch on itself");
    }
    r
}

/// The mask a wait of the program's (`sigsuspend`, `ppoll`, `pselect`,
/// `epoll_pwait`) installs while it waits, without SIGSYS in a thread the
/// catch-all has armed: a handler that runs in that wait may take a token
/// and trap. Untouched in any other thread (`copy` then unused).
///
/// # Safety
///
/// `set` is null or the program's readable signal set.
#[inline(always)]
pub unsafe fn without_sigsys(
    set: *const libc::sigset_t,
    copy: &mut MaybeUninit<libc::sigset_t>,
) -> *const libc::sigset_t {
    // SAFETY: the caller's contract.
    if set.is_null() || !armed_here() || unsafe { libc::sigismember(set, libc::SIGSYS) } != 1 {
        return set;
    }
    // SAFETY: the caller's contract; `copy` is ours, written before read.
    unsafe {
        let copy = copy.write(*set);
        libc::sigdelset(copy, libc::SIGSYS);
        copy
    }
}
