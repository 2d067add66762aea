//! lwkt: DragonFly BSD's serializing tokens for Linux user space.
//!
//! A token serializes threads only while its holder runs: when the holder
//! blocks in one of the libc calls hooked here, all of its tokens are
//! released, and they are all taken back before the call returns. See
//! `docs/SPEC.md` (the contract; "SPEC Sn" in comments cites it) and
//! `include/lwkt.h` (the C API).
//!
//! Layers, top to bottom (`docs/DESIGN.md` draws them):
//! - `api`: the exported token(9) API; uses the token layer and `diag`;
//! - `interpose`: the interposed blocking calls of libc (its hooks), and
//!   the catch-all (Syscall User Dispatch) for the calls libc makes inside
//!   itself, both through one source per blocking call;
//! - `observe`: the `LWKT_*` variables, misuse reports and warnings, the
//!   `LWKT_STATS` counters and report; reads the token layer to name
//!   tokens and threads;
//! - `core`, the token layer: the lock word and the waiting protocol,
//!   per-thread reference stacks, release on block and retake, thread exit
//!   and fork, the pool of tokens (reached as `token`, `thread`, `pool`);
//! - `sys`: raw system calls (the shim never calls its own hooks); uses
//!   nothing of the crate.
//!
//! The token layer reports upward only through the table of
//! `core::events`, which `init` registers here.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
// The unit-test build leaves the hooks and the catch-all out (see below),
// so what only they use is unused there.
#![cfg_attr(test, allow(dead_code))]

pub mod api;
// The test harness is an executable: exporting `read` & co. from it would
// interpose its own calls, so the hooks stay out of unit tests.
#[cfg(not(test))]
mod interpose;
#[cfg(not(test))]
use interpose::catchall;
mod core;
mod observe;
mod sys;
#[cfg(test)]
mod tests;
// The other layers reach the token layer by these paths.
use crate::core::{pool, thread, token};

// The hooks and the catch-all reach `observe` by these paths.
use observe::{checkers, config, diag, stats};

/// What the token layer reports, and to whom (`core::events`).
static OBSERVER: core::events::Observer = core::events::Observer {
    misuse: |call, tok, what| diag::misuse(call, tok, what),
    misuse_no_token: |call, what| diag::misuse_no_token(call, what),
    warn: |what| diag::warn(what),
    describe: |tok, f| ::core::fmt::Display::fmt(&diag::Desc(tok), f),
    thread_name: |f| ::core::fmt::Display::fmt(&diag::ThreadName, f),
    code_addr: |pc, f| ::core::fmt::Display::fmt(&diag::CodeAddr(pc), f),
    caller: diag::caller_outside_library,
    thread_started: || {
        if config::stats_on() {
            stats::thread_started()
        }
    },
    acquired: |tok, exclusive, depth| {
        if config::stats_on() {
            stats::acquired(tok, exclusive, depth)
        }
    },
    held: stats::held,
    released_on_block: stats::released_on_block,
    waited: |tok, ns| {
        if config::stats_on() {
            stats::waited(tok, ns)
        }
    },
    lost: |tok| {
        if config::stats_on() {
            stats::lost(tok)
        }
    },
    word_wanted: observe::checkers::word_wanted,
    word_taken: observe::checkers::word_taken,
    word_released: observe::checkers::word_released,
    private_memory: observe::checkers::private_memory,
    #[cfg(not(test))]
    arm_thread: catchall::enable_for_thread,
    #[cfg(test)]
    arm_thread: |_| false,
    #[cfg(not(test))]
    disarm_thread: catchall::disable_for_thread,
    #[cfg(test)]
    disarm_thread: || {},
    catchall_unavailable: say_catchall_unavailable,
};

/// Once a process, when a thread first uses tokens while the catch-all is
/// unavailable (valgrind, a kernel without Syscall User Dispatch; not when
/// LWKT_CATCHALL=0 turned it off): the blocking calls that libc makes
/// inside itself then keep the caller's tokens (SPEC section 4), and the
/// program should know.
#[cfg(not(test))]
#[cold]
fn say_catchall_unavailable() {
    static SAID: ::core::sync::atomic::AtomicBool = ::core::sync::atomic::AtomicBool::new(false);
    if !config::CATCHALL_WANTED.load(::core::sync::atomic::Ordering::Relaxed)
        || catchall::on()
        || SAID.swap(true, ::core::sync::atomic::Ordering::Relaxed)
    {
        return;
    }
    diag::warn(format_args!(
        "the catch-all is unavailable ({}): a thread that blocks inside libc \
         (stdio, sem_wait, system, ...) keeps its tokens; only the hooked \
         functions release them",
        catchall::why_off()
    ));
}
#[cfg(test)]
fn say_catchall_unavailable() {}

/// Runs when the library is loaded (linked or preloaded), before `main`.
#[ctor::ctor]
fn init() {
    core::events::register(&OBSERVER);
    observe::init_process();
    token::init_process();
    thread::init_process();
    #[cfg(not(test))]
    catchall::init_process();
    #[cfg(not(test))]
    {
        let patched = catchall::patch_at_load();
        let detail = patched.as_ref().map(|p| p as &dyn ::core::fmt::Display);
        config::announce(catchall::on(), catchall::why_off(), detail);
    }
    #[cfg(not(test))]
    interpose::init_process();
}
