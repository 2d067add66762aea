//! Race checkers (README.md, "Using checkers"): ThreadSanitizer, Helgrind and
//! DRD see none of the library's own synchronisation (the library is not
//! instrumented, and its lock word is plain atomics), so without help they
//! take every access made under a token for a race. Here each word
//! acquisition and release is told to the checker that runs the program,
//! keyed by the token's address:
//!
//! - `tsan`: the program links ThreadSanitizer's runtime; its
//!   `__tsan_mutex_*` annotations, found with dlsym at load;
//! - `valgrind`: the program runs under Helgrind or DRD; their client
//!   requests (happens-before, see there), which also hide the token's
//!   own memory from them.
//!
//! What is told is the word, not the references: recursion and release
//! on block are the thread's own bookkeeping, while the word is what
//! orders threads. A release on block is a release of every word the
//! thread holds, its retake their acquisition again, which is exactly
//! what happened. With a checker found, the token layer takes its slow
//! paths (`TIMING`), where these calls are; without one they cost nothing.

pub(crate) mod tsan;
pub(crate) mod valgrind;

use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use crate::config::TIMING;
use crate::token::Token;

const NONE: u8 = 0;
const TSAN: u8 = 1;
const VALGRIND: u8 = 2;

/// Which checker runs the program, decided once at load.
static CHECKER: AtomicU8 = AtomicU8::new(NONE);

/// At load, after the settings: find the checker, and send the token
/// layer down its slow paths if there is one.
pub(crate) fn init_process() {
    let which = if tsan::init_process() {
        TSAN
    } else if valgrind::running() {
        VALGRIND
    } else {
        NONE
    };
    CHECKER.store(which, Relaxed);
    if which == VALGRIND {
        valgrind::init_process();
    }
    if which == TSAN {
        crate::config::THREAD_SANITIZER.store(true, Relaxed);
    }
    if which != NONE {
        TIMING.store(true, Relaxed);
    }
}

/// A checker is told about tokens.
#[inline]
pub(crate) fn on() -> bool {
    CHECKER.load(Relaxed) != NONE
}

/// `lwkt_token_init`: a token starts at `tok`.
pub(crate) fn created(tok: *const Token) {
    match CHECKER.load(Relaxed) {
        TSAN => tsan::created(tok),
        VALGRIND => valgrind::created(tok),
        _ => {}
    }
}

/// `lwkt_token_uninit`: the token at `tok` is retired.
pub(crate) fn destroyed(tok: *const Token) {
    word_wanted(tok);
    match CHECKER.load(Relaxed) {
        TSAN => tsan::destroyed(tok),
        VALGRIND => valgrind::destroyed(tok),
        _ => {}
    }
}

/// The calling thread is about to try for `tok`'s word.
pub(crate) fn word_wanted(tok: *const Token) {
    if CHECKER.load(Relaxed) == VALGRIND {
        valgrind::hide(tok)
    }
}

/// The calling thread has just taken `tok`'s word (shared or exclusive).
pub(crate) fn word_taken(tok: *const Token, shared: bool) {
    match CHECKER.load(Relaxed) {
        TSAN => tsan::taken(tok, shared),
        VALGRIND => valgrind::taken(tok, shared),
        _ => {}
    }
}

/// The calling thread is about to give back `tok`'s word.
pub(crate) fn word_released(tok: *const Token, shared: bool) {
    match CHECKER.load(Relaxed) {
        TSAN => tsan::released(tok, shared),
        VALGRIND => valgrind::released(tok, shared),
        _ => {}
    }
}
