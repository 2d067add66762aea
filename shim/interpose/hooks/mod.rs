//! The exported hooks, one `hook!` each (hook.rs), by call family. Each
//! held path hands its arguments and libc's function to the family's one
//! source in `calls/`, which the catch-all uses too.
//!
//! Variadic C functions (`fcntl`, `open`, `syscall`) are defined with their
//! largest argument list: on x86-64 the extra registers are simply unused.

/// Shadow the signal mask argument `$mask` of a wait that installs it
/// (`sigsuspend`, `ppoll`, `pselect`, `epoll_pwait*`) with one that does
/// not block SIGSYS, in a thread the catch-all has armed, holder or not: a
/// handler that runs in that wait may take a token and trap (see
/// catchall/program.rs, `without_sigsys`).
macro_rules! mask_without_sigsys {
    ($mask:ident) => {
        let mut copy = core::mem::MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: the program's mask argument, null or readable, as the
        // wait itself reads it.
        let $mask = unsafe { $crate::interpose::catchall::without_sigsys($mask, &mut copy) };
    };
}

mod child;
mod fortify;
mod futex;
mod ipc;
mod locks;
mod net;
mod open;
mod pthread;
mod ready;
mod rw;
mod signals;
mod sigwait;
mod sleep;
