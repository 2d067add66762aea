//! The catch-all: blocking calls that libc makes inside itself.
//!
//! glibc binds its own calls privately (the `read` under `fgets`, the futex
//! under `sem_wait`, the wait inside `system`), so no exported-symbol hook
//! sees them. Syscall User Dispatch does: once a thread has switched it on,
//! every system call made from outside one address range raises SIGSYS
//! instead of running, while a per-thread selector byte says BLOCK.
//!
//! * A thread switches dispatch on ("arms", arming.rs) when it first uses
//!   tokens. Its selector is BLOCK while it holds at least one token and
//!   ALLOW otherwise; the token code flips it with plain stores
//!   (core/tls.rs), no system call. Threads that never take a token are
//!   untouched, and a process whose threads never take one is untouched:
//!   the SIGSYS handler is installed by the first thread that arms, not at
//!   load (install.rs).
//! * The always-allowed range is `.text.lwkt_allowed` (sys/allowed.rs): the shim's
//!   own syscall stub, this handler's signal restorer, the clone landing
//!   pad. The handler is installed with raw `rt_sigaction` and our own
//!   `SA_RESTORER`, so that its return does not itself trap.
//! * The handler (dispatch.rs) decodes the trapped call and runs it
//!   (run.rs): a call that cannot block at once; one that can, through the
//!   same function of `calls/` as its symbol hook, with the tokens
//!   released around it. It runs with `SA_NODEFER` and an empty handler
//!   mask, so the program's signals are delivered during a blocking call
//!   exactly as without the shim, restarts included.
//! * Calls that only make sense outside a handler are redirected
//!   (redirect.rs, clone.rs): `rt_sigreturn` (a program handler returning
//!   through libc's restorer) runs again from the allowed range;
//!   `rt_sigprocmask` is applied to the mask the handler returns to;
//!   `clone`/`vfork` children resume in the program, never inside the
//!   handler.
//! * By default (`LWKT_CATCHALL=1`) libc's own system-call sites are also
//!   rewritten at load into jumps to per-site stubs (patch/): a holder's
//!   call through one runs here without a signal (`run_blocking`), one of
//!   a thread holding nothing costs a jump and a byte test. Dispatch stays
//!   armed as above for everything not rewritten (`LWKT_CATCHALL=sud`:
//!   dispatch only).
//! * SIGSYS stays the program's (disposition.rs, delivery.rs, program.rs):
//!   every SIGSYS that is not a trap of a thread armed here goes to the
//!   program's own disposition. The kernel kills a thread that traps while
//!   it blocks SIGSYS, so an armed thread never blocks it for real: a
//!   thread that blocks SIGSYS through libc's exported functions gets it
//!   blocked and the catch-all steps aside in it (dispatch off, symbol
//!   hooks only) until it unblocks; libc's own short blocks of every
//!   signal while the thread holds tokens (`pthread_create`, `raise`,
//!   `posix_spawn`) are kept virtual: SIGSYS stays deliverable, reads back
//!   as blocked, and the program's SIGSYS that arrives meanwhile is held
//!   back until it is unblocked. A thread that switches dispatch on itself
//!   keeps it; the catch-all steps aside there too.

mod arming;
mod available;
mod clone;
mod delivery;
mod dispatch;
mod disposition;
mod forward;
mod install;
pub mod patch;
pub mod program;
mod redirect;
mod run;
mod state;
mod trapped;

pub use arming::{checkpoint, disable_for_thread, enable_for_thread};
pub use available::{init_process, on, why_off};
pub use install::installed;
pub use program::without_sigsys;
pub use state::used_here;

/// At load, after `init_process`: libc's system-call sites rewritten
/// (`LWKT_CATCHALL=1`), unless the catch-all is off or under valgrind;
/// what happened, for the announcement. The kernel is not asked: without
/// Syscall User Dispatch no thread is ever armed, and the stubs only pass
/// the calls through.
pub fn patch_at_load() -> Option<patch::Outcome> {
    let wanted = config::CATCHALL_PATCH.load(core::sync::atomic::Ordering::Relaxed);
    (wanted && available::not_ruled_out()).then(patch::init_process)
}

use crate::{config, sys};

/// `prctl`'s option for Syscall User Dispatch.
pub const PR_SET_SYSCALL_USER_DISPATCH: core::ffi::c_int = 59;
const PR_SYS_DISPATCH_OFF: usize = 0;
const PR_SYS_DISPATCH_ON: usize = 1;

/// `prctl(PR_SET_SYSCALL_USER_DISPATCH, mode, off, len, selector)`: the
/// kernel's answer.
fn dispatch_prctl(mode: usize, off: usize, len: usize, selector: usize) -> isize {
    let nr = PR_SET_SYSCALL_USER_DISPATCH as usize;
    // SAFETY: this prctl reads no memory; the selector is a byte the kernel
    // reads at each system call of this thread: ours lives as long as the
    // thread, the program's is the program's own.
    unsafe { sys::syscall6(libc::SYS_prctl, nr, mode, off, len, selector, 0) }
}

/// The always-allowed range, as `prctl` takes it: start and length.
fn allowed_range() -> (usize, usize) {
    let start = core::ptr::addr_of!(sys::lwkt_allowed_start) as usize;
    let end = core::ptr::addr_of!(sys::lwkt_allowed_end) as usize;
    (start, end - start)
}
