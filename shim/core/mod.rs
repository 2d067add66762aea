//! The token layer: DragonFly's serializing tokens for one process. Below
//! it only `sys`; the C API, the hooks, the catch-all and observation sit
//! above it. It reports misuse, warnings and statistics, and arms the
//! catch-all for a thread, through the table in `events` that the crate
//! root registers at load.
//!
//! Files: `word` (the lock word), `wait` (waiting for it), `tls` (the
//! thread's static TLS), `refs` (the per-thread reference stack),
//! `acquire` (get and rel), `block` (release on block and retake),
//! `chaos` (`LWKT_CHAOS`), `events` (the interface upward), `lifecycle` (first use, thread exit, fork),
//! `pool` (the pool of tokens), `registry` (thread states for an outside
//! reader, laid out as `registry_abi` says).
//!
//! # The lock word (compare DragonFly's `lwkt_token.c`)
//!
//! * `t_word` is the whole ownership state. 0 is free. An exclusive holder
//!   stores its thread id (low 32 bits, high bits clear). Shared holders set
//!   `SHARED`, count themselves in bits 32..56 and stamp the process id in the
//!   low 32 bits, so that a fork child can tell its parent's holders from its
//!   own. `EXCLREQ` is set by an exclusive waiter while the token is shared,
//!   and stops new shared holders so that the waiter gets in (S7). `DEAD`
//!   marks a token passed to `lwkt_token_uninit`. Any other bit pattern is
//!   memory that was never a token.
//! * The word counts threads, not references: a thread's recursive references
//!   live only in its own reference stack (`refs`); only the lowest
//!   reference to a token (the "primary") owns the word.
//! * An exclusive holder releases with a plain store. A waiter therefore
//!   first counts itself in `t_waiters` and then runs
//!   `membarrier(PRIVATE_EXPEDITED)`: after that, either the holder's store is
//!   visible to the waiter, or the holder's later load of `t_waiters` sees the
//!   waiter. Without membarrier the release pays a full fence instead.
//!   Only the first waiter of a contention episode pays it: one that finds
//!   another counted skips it (every later holder sees that one at its
//!   release), unless its thread has another reference to the token (the
//!   counted waiter may be its own wait, interrupted by this signal
//!   handler).
//! * `t_sleepers` counts unregistered waiters from the top of each round
//!   of their wait (before they read `t_wake` and look at the word) until
//!   a wake-up or the end of the wait. A release reads it with a locked
//!   instruction after giving the word back, and bumps `t_wake` and calls
//!   `futex_wake` only when it is not 0; it uncounts whom it woke (their
//!   wait returns 0).
//! * Waiters sleep on `t_wake`, an event counter that releasers bump before
//!   `FUTEX_WAKE`; a waiter reads it before its last look at the word, so a
//!   release between the look and the sleep makes the sleep return at once.
//! * A waiter that loses too many races registers in `t_handoff` (three,
//!   once the process-wide `FAIR_AT_NS` has passed, or 256); the next
//!   exclusive release then hands the word straight to it, and new shared
//!   requests stand back (S7: no waiter is bypassed without bound).
//! * A shared count is in the word exactly while its reference has
//!   `R_COUNTED` (set after, cleared before): a waiter takes the counts
//!   of a vanished thread's state (found in the registry, claimed by
//!   clearing its slot) off the words (S9).
//! * Nobody waits while holding a token: waiting is done by `acquire` and
//!   `block` with every reference of the thread released.
//!
//! # The per-thread reference stack
//!
//! * `refs[0..depth]` are the thread's references in acquisition order.
//!   The lowest reference to a token is its *primary*: only it owns the
//!   token's word; the others are recursion and touch no shared memory.
//! * A reference is recorded before its word is taken and dropped only
//!   after its word is given back (SPEC section 7, as DragonFly advances
//!   `td_toks_stop` before it acquires). So a signal handler, which runs on
//!   the same stack between any two steps of its thread, may find a
//!   primary whose word is not (or no longer) owned, never an owned word
//!   without a reference. Whether a primary owns its word is read from the
//!   word for an exclusive hold (only this thread stores its id there) and
//!   from `R_COUNTED` for a shared one (`holds_word`).
//! * `refs[0..released_below]` are released: the thread is blocked in a hook
//!   (or waiting for a token). A signal handler that runs meanwhile pushes
//!   above them and pops before it returns.
//! * A signal handler leaves every word of the references below its own as
//!   it found them: when it blocks it gives back what its thread owns (any
//!   word, judged one by one) and takes exactly that back.
//! * Retaking is all-or-nothing: when one word cannot be had, the ones taken
//!   so far are released again before waiting, so a waiting thread never
//!   holds a token (SPEC S4) and tokens cannot deadlock.
//! * The state is mapped for the thread the first time it uses tokens and
//!   reached through a static-TLS pointer; hooks only read the TLS selector
//!   byte, so they allocate nothing and register nothing. Thread exit is
//!   caught by a pthread key destructor, registered at that first use.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod acquire;
mod block;
mod chaos;
pub mod events;
mod lifecycle;
pub mod pool;
mod refs;
pub(crate) mod registry;
#[allow(dead_code)] // shared with the reader, which uses all of it
pub(crate) mod registry_abi;
mod tls;
mod wait;
mod word;

/// The lock word, by the path the other layers use (`crate::token`).
pub mod token {
    pub use super::word::*;
}

/// The per-thread side, by the path the other layers use
/// (`crate::thread`).
pub mod thread {
    pub use super::acquire::{
        get, get_exclusive_fast, get_shared_fast, rel, rel_exclusive_fast, try_get,
    };
    pub use super::block::{handing_off, release_all, retake};
    #[cfg(not(test))] // only the hooks call it
    pub use super::chaos::chaos_cycle;
    pub use super::lifecycle::init_process;
    pub use super::refs::{count, holds_exclusive, loss_mark, lost_since, swap, write_held};
    #[cfg(not(test))] // only the hooks call them
    pub use super::registry::{block_begin, block_end};
    pub use super::tls::{holds_tokens, used_tokens};
}
