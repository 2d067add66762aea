//! The interposition layer: libc's blocking calls, with the calling
//! thread's tokens released while they block (SPEC section 4).
//!
//! Two ways in, one way through:
//!
//! * **Hooks** (`hooks/`): the exported symbols `read`,
//!   `pthread_mutex_lock`, ... that the dynamic linker binds the program's
//!   calls to. Each one is written once, as a signature and a held path,
//!   with `hook!` (hook.rs); libc's own function is found with
//!   `dlsym(RTLD_NEXT)` (real.rs).
//! * **The catch-all** (`catchall/`): Syscall User Dispatch traps the
//!   system calls that libc makes inside itself while the thread holds
//!   tokens; the SIGSYS handler decodes the trapped call and runs it.
//!
//! Both run a blocking call through the same function of `calls/` (one
//! source per call: its non-blocking probe and its blocking path), handing
//! it `call`, the call itself in the C convention: libc's function for a
//! hook, the raw system call through the catch-all's adapter
//! (catchall/trapped.rs).
//!
//! A hooked call, step by step:
//!
//! 1. **Thread-local check** (the hook's fast path). A thread that holds
//!    no token goes straight to libc: a load of libc's address, one TLS
//!    byte test and a tail call, no stack frame of ours (SPEC S11).
//! 2. **Held path entry** (out of line, cold): the catch-all takes back a
//!    thread it stepped aside in, if it may now; under `LWKT_CHAOS` the
//!    thread gives its tokens away and takes them back here, blocking or
//!    not (hook.rs, `enter_held`).
//! 3. **Probe** (`calls/`). A call that cannot block with these arguments
//!    (a non-blocking flag, a zero timeout, a non-blocking descriptor) goes
//!    to libc as is. Otherwise the kernel's non-blocking form of the call
//!    is tried first (a trylock, `RWF_NOWAIT`, `MSG_DONTWAIT`, `WNOHANG`, a
//!    zero timeout); if it completes, its result is the call's and the
//!    thread keeps its tokens (SPEC S3).
//! 4. **Release** (release.rs, `released`): every token of the thread is
//!    released, `errno` kept.
//! 5. **Block**: libc's call runs, and waits.
//! 6. **Retake**: all the tokens are taken back, same modes, counts and
//!    order, before libc's result and `errno` are returned (SPEC S2). A
//!    probe that did part of the work (some of a write) does not decide the
//!    call: the rest runs this way and the call returns the sum, as libc
//!    alone would (SPEC section 7, no short counts).
//!
//! Rules for everything here (it runs inside other people's programs,
//! maybe in signal handlers): no allocation, no lock of ours, `errno`
//! preserved, async-signal-safe; the shim's own system calls go through
//! `sys` (never through libc, whose wrappers are our hooks).
//!
//! Below this layer: `thread` (holding, release and retake, chaos) and
//! `sys` (raw system calls, errno). Of the observation modules only the
//! narrow calls that exist for it: `config`'s settings (`debug`, `chaos`,
//! `CATCHALL_WANTED`) and `diag`'s one-line messages (`Line`,
//! `ThreadName`). Nothing below calls up into this layer but `thread`'s
//! two catch-all calls (`enable_for_thread` at a thread's first token,
//! `disable_for_thread` at its exit).
//!
//! Inside the layer, dependencies go one way: `hooks` uses `hook`,
//! `calls` and `catchall` (for the program's own signal calls and wait
//! masks); `catchall` uses `calls`; `calls` uses `release`, `descriptor`,
//! `timeout` and `iov`; `hook` uses `catchall`'s checkpoint.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

#[macro_use]
mod real;
#[macro_use]
mod hook;
mod calls;
pub(crate) mod catchall;
mod descriptor;
mod hooks;
mod iov;
mod release;
mod timeout;

/// Once the settings are read: under `LWKT_DEBUG`, name the libc functions
/// that this libc lacks and that are therefore not hooked (real.rs).
pub fn init_process() {
    real::announce_missing();
}
