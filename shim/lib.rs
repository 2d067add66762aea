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
//! Not yet one way: the token layer calls up into `observe` (below) and
//! into the catch-all (to arm it for a thread).

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
// The token layer (core/lifecycle.rs, core/tls.rs) arms and disarms the catch-all by this path.
#[cfg(not(test))]
use interpose::catchall;
mod core;
mod observe;
mod sys;
#[cfg(test)]
mod tests;
// The other layers reach the token layer by these paths.
use crate::core::{pool, thread, token};

// The token layer, the hooks and the catch-all reach `observe` by these
// paths; they are the edges from below into observe that are to become a
// narrow interface.
use observe::{config, diag, stats};

/// Runs when the library is loaded (linked or preloaded), before `main`.
#[ctor::ctor]
fn init() {
    observe::init_process();
    token::init_process();
    thread::init_process();
    #[cfg(not(test))]
    catchall::init_process();
    #[cfg(not(test))]
    config::announce(catchall::on(), catchall::why_off());
    #[cfg(not(test))]
    interpose::init_process();
}
