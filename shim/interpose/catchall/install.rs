//! Taking SIGSYS over, once per process, at the first arming: our
//! handler in the kernel, the program's disposition kept as a record
//! (disposition.rs).

use core::ffi::c_int;
use core::sync::atomic::{AtomicU8, Ordering::*};

use super::dispatch::on_sigsys;
use super::disposition::{
    note_restorer, rt_sigaction, strip_sigsys_from_handler_of, update_program_action,
    with_signals_blocked, KernelSigaction, SA_RESTORER,
};
use crate::sys;

/// Is the handler installed (SIGSYS held by the shim for the program)?
#[inline(always)]
pub fn installed() -> bool {
    INSTALL.load(Acquire) == INSTALLED
}

/// Is the handler being or been installed? (A program's own `sigaction`
/// that went to the kernel meanwhile must be taken over.)
pub(super) fn install_started() -> bool {
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

/// Install `act` for SIGSYS in the kernel; the action it replaced goes to
/// `old` (when given).
fn kernel_sigsys(act: &KernelSigaction, old: Option<&mut KernelSigaction>) {
    let old = old.map_or(core::ptr::null_mut(), |o| o as *mut KernelSigaction);
    // SAFETY: `act` is one of ours (`our_action`: our handler and our
    // restorer, which live as long as the process: the library stays
    // mapped); `old` is null or ours to write.
    unsafe { rt_sigaction(libc::SIGSYS, act, old) };
}

/// Take SIGSYS over, once per process, at the first arming: the
/// program's disposition becomes a record (kept verbatim, as the kernel
/// had it), and handlers that would block SIGSYS no longer do.
pub(super) fn install_once() {
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
    with_signals_blocked(|| {
        // One exchange: a program's sigaction in another thread lands
        // either before it (and is what we get back) or after it (and its
        // hook takes it over: `after_change_during_install`).
        let mut old = KernelSigaction::zeroed();
        let ours = our_action(&KernelSigaction::DEFAULT);
        kernel_sigsys(&ours, Some(&mut old));
        note_restorer(&old);
        let old = old.kept();
        if our_action(&old).flags != ours.flags {
            set_program_sigsys(old);
        } else {
            update_program_action(|_| old);
        }
        for sig in 1..=64 {
            strip_sigsys_from_handler_of(sig);
        }
        // Said before the mask comes back: a signal that came meanwhile is
        // delivered as the mask returns, and its handler, taking a token,
        // arms this thread again; it must find the installation done, not
        // wait for it (it would wait for its own interrupted thread).
        INSTALL.store(INSTALLED, Release);
    });
}

/// Record `new` as the program's SIGSYS action; returns the one it had.
pub(super) fn set_program_sigsys(new: KernelSigaction) -> KernelSigaction {
    update_program_action(|_| {
        kernel_sigsys(&our_action(&new), None);
        new
    })
}

/// The program changed a disposition through libc while the handler was
/// being installed: take SIGSYS over again (what the kernel had replaced
/// then is the program's), and strip the mask of another signal's handler.
pub(super) fn after_change_during_install(sig: c_int) {
    while !installed() {
        core::hint::spin_loop();
    }
    if sig != libc::SIGSYS {
        strip_sigsys_from_handler_of(sig);
        return;
    }
    update_program_action(|cur| {
        let mut prev = KernelSigaction::zeroed();
        kernel_sigsys(&our_action(cur), Some(&mut prev));
        if prev.handler == on_sigsys as *const () as usize {
            *cur
        } else {
            note_restorer(&prev);
            let p = prev.kept();
            kernel_sigsys(&our_action(&p), None);
            p
        }
    });
}
