//! The program's own signal calls (SPEC section 7, "Signals stay the
//! program's"). Until a thread first takes a token they are libc's,
//! untouched. Once the catch-all holds SIGSYS (catchall/program.rs), what
//! the program sets for SIGSYS is kept for it and reads back as set, and
//! masks are the program's in every thread: a thread that blocks SIGSYS
//! gets it blocked, and the catch-all steps aside there. `prctl` is here
//! for the one option that concerns SIGSYS: a thread that switches
//! Syscall User Dispatch on itself keeps it.

use core::ffi::{c_int, c_ulong};
use libc::{sighandler_t, sigset_t};

use crate::interpose::calls::c_result;
use crate::interpose::catchall::{self, program};

hook! {
    fn sigaction(sig: c_int, act: *const libc::sigaction, old: *mut libc::sigaction) -> c_int
        => always |real| program::sigaction(real, sig, act, old)
}

/// The action glibc's `signal` family installs for `handler`: these
/// flags, and a mask of the signal itself or nothing.
fn libc_action(
    sig: c_int,
    handler: sighandler_t,
    flags: c_int,
    self_masked: bool,
) -> libc::sigaction {
    // SAFETY: a sigaction struct is plain data, valid when zero-filled.
    let mut act: libc::sigaction = unsafe { core::mem::zeroed() };
    act.sa_sigaction = handler;
    act.sa_flags = flags;
    if self_masked {
        // SAFETY: `act.sa_mask` is ours; a bad signal number is refused.
        unsafe { libc::sigaddset(&mut act.sa_mask, sig) };
    }
    act
}

/// `signal` and its cousins: SIGSYS's action becomes the program's record
/// once the catch-all holds SIGSYS; otherwise libc's, noted.
fn program_signal(
    sig: c_int,
    handler: sighandler_t,
    act: libc::sigaction,
    libc_call: impl FnOnce() -> sighandler_t,
) -> sighandler_t {
    if handler == libc::SIG_ERR {
        return libc_call();
    }
    match program::signal(sig, &act) {
        Some(old) => old,
        None => {
            let old = libc_call();
            if old != libc::SIG_ERR {
                program::after_libc_signal(sig);
            }
            old
        }
    }
}

hook! {
    fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t
        => always |real| {
            let act = libc_action(sig, handler, libc::SA_RESTART, true);
            program_signal(sig, handler, act, || real(sig, handler))
        }
}

hook! {
    fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t
        => always |real| {
            let act = libc_action(sig, handler, libc::SA_RESTART, true);
            program_signal(sig, handler, act, || real(sig, handler))
        }
}

hook! {
    fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t
        => always |real| {
            let act = libc_action(sig, handler, libc::SA_RESETHAND | libc::SA_NODEFER, false);
            program_signal(sig, handler, act, || real(sig, handler))
        }
}

hook! {
    fn sigignore(sig: c_int) -> c_int
        => always |real| {
            let act = libc_action(sig, libc::SIG_IGN, 0, false);
            let old = program_signal(sig, libc::SIG_IGN, act, || {
                if real(sig) == 0 {
                    libc::SIG_IGN
                } else {
                    libc::SIG_ERR
                }
            });
            if old == libc::SIG_ERR {
                -1
            } else {
                0
            }
        }
}

/// A one-signal mask change, through the mask hook's rules.
///
/// # Safety
///
/// `old` is null or writable.
unsafe fn change_one(how: c_int, sig: c_int, old: *mut sigset_t) -> c_int {
    // SAFETY: a signal set is plain data, valid when zero-filled; `set` is
    // ours.
    let mut set: sigset_t = unsafe { core::mem::zeroed() };
    // SAFETY: `set` is ours; `old` by the caller's contract.
    unsafe {
        libc::sigaddset(&mut set, sig);
        sigprocmask(how, &set, old)
    }
}

/// `SIG_HOLD` (System V): block the signal.
const SIG_HOLD: sighandler_t = 2;

hook! {
    /// `sigset` (System V), for SIGSYS: what libc does (a disposition, or
    /// SIG_HOLD: block the signal), through the rules above.
    fn sigset(sig: c_int, handler: sighandler_t) -> sighandler_t
        => always |real| {
            if sig != libc::SIGSYS || (!catchall::installed() && !catchall::used_here()) {
                let old = real(sig, handler);
                if old != libc::SIG_ERR && handler != SIG_HOLD {
                    program::after_libc_signal(sig);
                }
                return old;
            }
            let mut oset: sigset_t = core::mem::zeroed();
            if handler == SIG_HOLD {
                if change_one(libc::SIG_BLOCK, sig, &mut oset) != 0 {
                    return libc::SIG_ERR;
                }
                if libc::sigismember(&oset, sig) == 1 {
                    return SIG_HOLD;
                }
                return program::sigsys_handler();
            }
            let act = libc_action(sig, handler, 0, false);
            let mut oact: libc::sigaction = core::mem::zeroed();
            if sigaction(sig, &act, &mut oact) != 0
                || change_one(libc::SIG_UNBLOCK, sig, &mut oset) != 0
            {
                return libc::SIG_ERR;
            }
            if libc::sigismember(&oset, sig) == 1 {
                SIG_HOLD
            } else {
                oact.sa_sigaction
            }
        }
}

hook! {
    fn sighold(sig: c_int) -> c_int
        => always |real| {
            if sig != libc::SIGSYS {
                return real(sig);
            }
            change_one(libc::SIG_BLOCK, sig, core::ptr::null_mut())
        }
}

hook! {
    fn sigrelse(sig: c_int) -> c_int
        => always |real| {
            if sig != libc::SIGSYS {
                return real(sig);
            }
            change_one(libc::SIG_UNBLOCK, sig, core::ptr::null_mut())
        }
}

hook! {
    fn sigprocmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int
        => always |real| program::sigmask(real, how, set, old)
}

hook! {
    fn pthread_sigmask(how: c_int, set: *const sigset_t, old: *mut sigset_t) -> c_int
        => always |real| program::sigmask(real, how, set, old)
}

hook! {
    /// `prctl`: every option but Syscall User Dispatch goes to libc.
    fn prctl(option: c_int, a2: c_ulong, a3: c_ulong, a4: c_ulong, a5: c_ulong) -> c_int
        => always |real| {
            if option != catchall::PR_SET_SYSCALL_USER_DISPATCH {
                return real(option, a2, a3, a4, a5);
            }
            let r = program::prctl_sud(a2 as usize, a3 as usize, a4 as usize, a5 as usize);
            c_result(r) as c_int
        }
}
