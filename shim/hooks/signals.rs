//! The program's own signal calls (SPEC section 7, "Signals stay the
//! program's"). Until a thread first takes a token they are libc's,
//! untouched. Once the catch-all holds SIGSYS (catchall.rs, sigsys.rs),
//! what the program sets for SIGSYS is kept for it and reads back as set,
//! and masks are the program's in every thread: a thread that blocks
//! SIGSYS gets it blocked, and the catch-all steps aside there. `prctl`
//! is here for the one option that concerns SIGSYS: a thread that switches
//! Syscall User Dispatch on itself keeps it.

use core::ffi::{c_int, c_ulong};
use libc::{sighandler_t, sigset_t};

use crate::catchall;
use crate::hooks::c_result;

mod real {
    use core::ffi::{c_int, c_ulong};
    use libc::{sighandler_t, sigset_t};
    real_fn!(sigaction: fn(c_int, *const libc::sigaction, *mut libc::sigaction) -> c_int);
    real_fn!(signal: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(sigset: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(bsd_signal: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(sysv_signal: fn(c_int, sighandler_t) -> sighandler_t);
    real_fn!(sigignore: fn(c_int) -> c_int);
    real_fn!(sighold: fn(c_int) -> c_int);
    real_fn!(sigrelse: fn(c_int) -> c_int);
    real_fn!(sigprocmask: fn(c_int, *const sigset_t, *mut sigset_t) -> c_int);
    real_fn!(pthread_sigmask: fn(c_int, *const sigset_t, *mut sigset_t) -> c_int);
    real_fn!(prctl: fn(c_int, c_ulong, c_ulong, c_ulong, c_ulong) -> c_int);
}

#[no_mangle]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    catchall::program_sigaction(real::sigaction::get(), sig, act, old)
}

/// The action glibc's `signal` family installs for `handler`: these
/// flags, and a mask of the signal itself or nothing.
unsafe fn libc_action(
    sig: c_int,
    handler: sighandler_t,
    flags: c_int,
    self_masked: bool,
) -> libc::sigaction {
    let mut act: libc::sigaction = core::mem::zeroed();
    act.sa_sigaction = handler;
    act.sa_flags = flags;
    if self_masked {
        libc::sigaddset(&mut act.sa_mask, sig);
    }
    act
}

/// `signal` and its cousins: SIGSYS's action becomes the program's record
/// once the catch-all holds SIGSYS; otherwise libc's, noted.
unsafe fn program_signal(
    sig: c_int,
    handler: sighandler_t,
    act: libc::sigaction,
    libc_call: impl FnOnce() -> sighandler_t,
) -> sighandler_t {
    if handler == libc::SIG_ERR {
        return libc_call();
    }
    match catchall::program_signal(sig, &act) {
        Some(old) => old,
        None => {
            let old = libc_call();
            if old != libc::SIG_ERR {
                catchall::after_libc_signal(sig);
            }
            old
        }
    }
}

#[no_mangle]
pub unsafe extern "C" fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    let act = libc_action(sig, handler, libc::SA_RESTART, true);
    program_signal(sig, handler, act, || real::signal::get()(sig, handler))
}

#[no_mangle]
pub unsafe extern "C" fn bsd_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    let act = libc_action(sig, handler, libc::SA_RESTART, true);
    program_signal(sig, handler, act, || real::bsd_signal::get()(sig, handler))
}

#[no_mangle]
pub unsafe extern "C" fn sysv_signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    let act = libc_action(sig, handler, libc::SA_RESETHAND | libc::SA_NODEFER, false);
    program_signal(sig, handler, act, || real::sysv_signal::get()(sig, handler))
}

#[no_mangle]
pub unsafe extern "C" fn sigignore(sig: c_int) -> c_int {
    let act = libc_action(sig, libc::SIG_IGN, 0, false);
    let old = program_signal(sig, libc::SIG_IGN, act, || {
        if real::sigignore::get()(sig) == 0 {
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

/// A one-signal mask change, through the mask hook's rules.
unsafe fn change_one(how: c_int, sig: c_int, old: *mut sigset_t) -> c_int {
    let mut set: sigset_t = core::mem::zeroed();
    libc::sigaddset(&mut set, sig);
    sigprocmask(how, &set, old)
}

/// `sigset` (System V), for SIGSYS: what libc does (a disposition, or
/// SIG_HOLD: block the signal), through the rules above.
#[no_mangle]
pub unsafe extern "C" fn sigset(sig: c_int, handler: sighandler_t) -> sighandler_t {
    const SIG_HOLD: sighandler_t = 2;
    if sig != libc::SIGSYS || (!catchall::installed() && !catchall::used_here()) {
        let old = real::sigset::get()(sig, handler);
        if old != libc::SIG_ERR && handler != SIG_HOLD {
            catchall::after_libc_signal(sig);
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
        return catchall::program_sigsys_handler();
    }
    let act = libc_action(sig, handler, 0, false);
    let mut oact: libc::sigaction = core::mem::zeroed();
    if sigaction(sig, &act, &mut oact) != 0 || change_one(libc::SIG_UNBLOCK, sig, &mut oset) != 0 {
        return libc::SIG_ERR;
    }
    if libc::sigismember(&oset, sig) == 1 {
        SIG_HOLD
    } else {
        oact.sa_sigaction
    }
}

#[no_mangle]
pub unsafe extern "C" fn sighold(sig: c_int) -> c_int {
    if sig != libc::SIGSYS {
        return real::sighold::get()(sig);
    }
    change_one(libc::SIG_BLOCK, sig, core::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn sigrelse(sig: c_int) -> c_int {
    if sig != libc::SIGSYS {
        return real::sigrelse::get()(sig);
    }
    change_one(libc::SIG_UNBLOCK, sig, core::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn sigprocmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    catchall::program_sigmask(real::sigprocmask::get(), how, set, old)
}

#[no_mangle]
pub unsafe extern "C" fn pthread_sigmask(
    how: c_int,
    set: *const sigset_t,
    old: *mut sigset_t,
) -> c_int {
    catchall::program_sigmask(real::pthread_sigmask::get(), how, set, old)
}

/// `prctl`: every option but Syscall User Dispatch goes to libc.
#[no_mangle]
pub unsafe extern "C" fn prctl(
    option: c_int,
    a2: c_ulong,
    a3: c_ulong,
    a4: c_ulong,
    a5: c_ulong,
) -> c_int {
    if option != catchall::PR_SET_SYSCALL_USER_DISPATCH {
        return real::prctl::get()(option, a2, a3, a4, a5);
    }
    let r = catchall::program_prctl_sud(a2 as usize, a3 as usize, a4 as usize, a5 as usize);
    c_result(r) as c_int
}
