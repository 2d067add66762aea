//! Calls that only make sense outside a handler, trapped while the thread
//! holds tokens: `rt_sigprocmask` and `sigaltstack` are applied to the
//! context the handler returns to (its return would undo them);
//! `rt_sigaction` keeps SIGSYS the program's. And the signal masks of
//! trapped waits, made safe for the catch-all.

use core::ffi::c_int;
use core::sync::atomic::Ordering::Relaxed;

use super::delivery::{queue_to_self, take_deferred};
use super::dispatch::SS_AUTODISARM;
use super::disposition::{
    note_mask_of, note_restorer, program_action, rt_sigprocmask, sigsys_was_in_mask,
    KernelSigaction, SIGSYS_BIT, UNBLOCKABLE,
};
use super::install::set_program_sigsys;
use super::state::{flags, VBLOCK};
use crate::sys;

/// `sigaltstack` run by the dispatch: the kernel puts back, when the
/// handler returns, the alternate stack the program had when it trapped
/// (`uc_stack`): a change is written there too, so that it stays.
///
/// # Safety
///
/// `a` are the arguments of the program's trapped `sigaltstack`, `uc`
/// the context it trapped in.
pub(super) unsafe fn sigaltstack_on_context(uc: &mut libc::ucontext_t, a: [usize; 6]) -> isize {
    // SAFETY: the program's call, as it made it.
    let r = unsafe { sys::syscall3(libc::SYS_sigaltstack, a[0], a[1], 0) };
    if r == 0 && a[0] != 0 {
        // SAFETY: the kernel just read it.
        let ss = unsafe { *(a[0] as *const libc::stack_t) };
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

/// `rt_sigaction` made inside libc while the thread holds tokens
/// (sigaction called through a path no hook sees): SIGSYS's is the
/// program's record; another signal's handler loses SIGSYS from its mask,
/// which still reads back.
///
/// # Safety
///
/// `a` are the arguments of the program's trapped `rt_sigaction`.
pub(super) unsafe fn trapped_rt_sigaction(a: [usize; 6]) -> isize {
    let (sig, act, old, size) = (
        a[0] as c_int,
        a[1] as *const KernelSigaction,
        a[2] as *mut KernelSigaction,
        a[3],
    );
    if size != 8 {
        return -(libc::EINVAL as isize);
    }
    // SAFETY: the program's action, null or readable (the kernel would
    // read it).
    let act = unsafe { act.as_ref() };
    if sig == libc::SIGSYS {
        let prev = match act {
            None => program_action(),
            Some(act) => {
                let new = act.kept();
                note_restorer(&new);
                set_program_sigsys(new)
            }
        };
        if !old.is_null() {
            // SAFETY: the program's `old`, writable (the kernel would
            // write it).
            unsafe { old.write(prev) };
        }
        return 0;
    }
    let had = sigsys_was_in_mask(sig);
    let mut b = a;
    let asks = act.is_some_and(|act| act.mask & SIGSYS_BIT != 0);
    let stripped = act.filter(|_| asks).map(|act| KernelSigaction {
        mask: act.mask & !SIGSYS_BIT,
        ..*act
    });
    if let Some(k) = &stripped {
        b[1] = k as *const KernelSigaction as usize;
    }
    // SAFETY: the program's call, with our copy of its action when it was
    // stripped.
    let r = unsafe { sys::syscall6(libc::SYS_rt_sigaction, b[0], b[1], b[2], b[3], 0, 0) };
    if r == 0 {
        if !old.is_null() && had {
            // SAFETY: the kernel just wrote it.
            unsafe { (*old).mask |= SIGSYS_BIT };
        }
        if act.is_some() {
            note_mask_of(sig, asks);
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
///
/// # Safety
///
/// `a` are the arguments of the program's trapped `rt_sigprocmask`, `uc`
/// the context it trapped in.
pub(super) unsafe fn sigprocmask_on_context(uc: &mut libc::ucontext_t, a: [usize; 6]) -> isize {
    let (how, set, old, size) = (a[0] as c_int, a[1] as *const u64, a[2] as *mut u64, a[3]);
    if size != 8 {
        return -(libc::EINVAL as isize);
    }
    let mask = &mut uc.uc_sigmask as *mut libc::sigset_t as *mut u64;
    let vblocked = flags().load(Relaxed) & VBLOCK != 0;
    // SAFETY: the kernel's part of the context's mask: its first 8 bytes.
    let current = unsafe { *mask } | if vblocked { SIGSYS_BIT } else { 0 };
    if !set.is_null() {
        // SAFETY: the program's set, readable (the kernel would read it).
        let s = unsafe { *set };
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
        // SAFETY: as above.
        unsafe { *mask = new & !SIGSYS_BIT & !UNBLOCKABLE };
    }
    if !old.is_null() {
        // SAFETY: the program's `old`, writable (the kernel would write
        // it).
        unsafe { *old = current };
    }
    0
}

/// SIGSYS is no longer (virtually) blocked: raise again the SIGSYS held
/// back meanwhile. In a handler, SIGSYS is blocked for its remaining
/// moments, so that the signal arrives when the program's mask is back, at
/// the point where the program unblocked it.
pub(super) fn end_virtual_block(in_handler: bool) {
    if flags().fetch_and(!VBLOCK, Relaxed) & VBLOCK == 0 {
        return;
    }
    // SAFETY: a siginfo is plain data, valid when zero-filled.
    let mut info: libc::siginfo_t = unsafe { core::mem::zeroed() };
    // SAFETY: `info` is ours to write.
    if unsafe { take_deferred(&mut info) } {
        if in_handler {
            let b = SIGSYS_BIT;
            // SAFETY: `b` is ours to read.
            unsafe { rt_sigprocmask(libc::SIG_BLOCK, &b, core::ptr::null_mut()) };
        }
        // SAFETY: `info` was filled by take_deferred.
        unsafe { queue_to_self(&info) };
    }
}

/// A kernel signal mask (8 bytes) that a trapped wait installs while it
/// waits, without SIGSYS: `copy` holds it.
///
/// # Safety
///
/// `mask` is 0 or the address of the program's readable mask.
unsafe fn kernel_mask_without_sigsys(mask: usize, copy: &mut u64) -> usize {
    if mask == 0 {
        return 0;
    }
    // SAFETY: the caller's contract.
    *copy = unsafe { *(mask as *const u64) } & !SIGSYS_BIT;
    copy as *mut u64 as usize
}

/// Copies of a trapped wait's mask without SIGSYS, living as long as the
/// wait runs.
#[derive(Default)]
pub(super) struct WaitMask {
    copy: u64,
    pselect_arg: [usize; 2],
}

impl WaitMask {
    /// The arguments of trapped call `nr` with the signal mask it installs
    /// while it waits (`rt_sigsuspend`, `ppoll`, `epoll_pwait*`,
    /// `pselect6`) taken from copies without SIGSYS: a handler that runs in
    /// that wait may take a token and trap.
    ///
    /// # Safety
    ///
    /// `a` are the arguments of the program's trapped call `nr`.
    pub(super) unsafe fn apply(&mut self, nr: i64, mut a: [usize; 6]) -> [usize; 6] {
        let copy = &mut self.copy;
        // The mask arguments of these calls are the program's masks, null
        // or readable (the kernel would read them).
        let without = |mask: usize, copy: &mut u64| {
            // SAFETY: as said above.
            unsafe { kernel_mask_without_sigsys(mask, copy) }
        };
        match nr {
            libc::SYS_rt_sigsuspend => a[0] = without(a[0], copy),
            libc::SYS_ppoll => a[3] = without(a[3], copy),
            libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => a[4] = without(a[4], copy),
            libc::SYS_pselect6 if a[5] != 0 => {
                // pselect6's sixth argument: the mask's address and size.
                // SAFETY: the program's argument, readable (the kernel
                // would read it).
                let arg = unsafe { *(a[5] as *const [usize; 2]) };
                self.pselect_arg = [without(arg[0], copy), arg[1]];
                a[5] = self.pselect_arg.as_ptr() as usize;
            }
            _ => {}
        }
        a
    }
}
