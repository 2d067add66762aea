//! The C API: DragonFly BSD's token(9) names, plus the `lwkt_` extensions
//! documented in `include/lwkt.h`. cbindgen turns the doc comments here into
//! the header's comments; it reads the files of this layer one by one, in
//! the header's order (build.rs, `HEADER_SOURCES`).
//!
//! The layer above the others: it checks what C hands it and calls the
//! token layer (`thread`, `token`, `pool`); a misuse it finds itself goes
//! to `diag`. Nothing below calls back into it.
//!
//! - here: init and uninit, get, try and release, swap, the questions;
//! - `assert`: the `ASSERT_` macros' functions;
//! - `lost`: knowing a token was lost (SPEC S8);
//! - `version`: the version, in the header and in the library;
//! - `pool`: the pool of tokens, by address.
//!
//! Each `unsafe fn` here has a `# Safety` section for Rust callers (the
//! unit tests), written with `safety!` so that it stays out of the header:
//! C callers read the same contract in the function's description there.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int};
use core::sync::atomic::Ordering::Relaxed;

use crate::checkers;
use crate::diag;
use crate::thread;
use crate::token::{Mode, Token, DEAD};

/// A `# Safety` section as a doc attribute's value: cbindgen copies only
/// plain doc comments into the header, rustdoc and clippy see this too.
macro_rules! safety {
    ($text:literal) => {
        concat!("\n# Safety\n\n", $text)
    };
}

// cbindgen reads these files itself, after this one (build.rs); following
// the `mod` lines too would declare their functions twice.
/// cbindgen:ignore
mod assert;
/// cbindgen:ignore
mod lost;
/// cbindgen:ignore
mod pool;
/// cbindgen:ignore
mod version;

// The whole C API in one namespace.
pub use assert::{lwkt_assert_held, lwkt_assert_none_held};
pub use lost::{lwkt_lost_since, lwkt_mark, lwkt_token_lost_since};
pub use pool::{lwkt_getpooltoken, lwkt_relpooltoken, lwkt_token_pool_lookup};
pub use version::{lwkt_version, LWKT_VERSION_MAJOR, LWKT_VERSION_MINOR, LWKT_VERSION_PATCH};

/// token(9)'s handle type (`struct lwkt_token` is defined in shim/core/word.rs).
pub type lwkt_token_t = *mut Token;

/// A point in the calling thread's history, for `lwkt_lost_since`.
pub type lwkt_mark_t = u64;

#[inline(always)]
fn checked(call: &str, tok: lwkt_token_t) -> *const Token {
    if tok.is_null() {
        diag::misuse(call, tok, format_args!("called with a NULL token"));
    }
    tok
}

/// Initialise `tok` as a free token described by `desc` (a string that must
/// outlive the token; NULL for none).
#[doc = safety!(
    "`tok` is NULL (reported, and the process aborts) or points to memory \
     for a token that no thread holds or waits for; `desc` is NULL or a \
     NUL-terminated string that outlives the token."
)]
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_init(tok: lwkt_token_t, desc: *const c_char) {
    let tok = checked("lwkt_token_init", tok) as *mut Token;
    // SAFETY: not NULL (checked), and the caller gives us the memory; a
    // plain write, because nobody may be using it as a token now.
    unsafe { tok.write(Token::free(desc)) };
    if checkers::on() {
        checkers::created(tok);
    }
}

/// Retire `tok`. It must not be held; any later use aborts with a message
/// until `lwkt_token_init` is called on it again.
#[doc = safety!(
    "`tok` is NULL (reported) or points to live token memory: initialised, \
     zero-filled or already retired (the last two are reported)."
)]
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_uninit(tok: lwkt_token_t) {
    let tok = checked("lwkt_token_uninit", tok);
    // SAFETY: not NULL (checked); live token memory by the contract above.
    let t = unsafe { &*tok };
    if checkers::on() {
        // Before the word is touched; a token still held aborts below.
        checkers::destroyed(tok);
    }
    if !t.looks_initialised() && !crate::token::is_dead(t.word().load(Relaxed)) {
        diag::misuse(
            "lwkt_token_uninit",
            tok,
            format_args!("not an initialised token"),
        );
    }
    if t.word()
        .compare_exchange(0, DEAD, Relaxed, Relaxed)
        .is_err()
    {
        let w = t.word().load(Relaxed);
        if crate::token::is_dead(w) {
            diag::misuse(
                "lwkt_token_uninit",
                tok,
                format_args!("token already uninitialised"),
            );
        }
        diag::misuse(
            "lwkt_token_uninit",
            tok,
            format_args!("token is still held (lock word {w:#x})"),
        );
    }
}

/// Take `tok` exclusively. If another thread holds it, every token the
/// caller holds is released while it waits, and all are held again on
/// return. Recursion on the caller's own exclusive hold is allowed.
#[doc = safety!(
    "`tok` is NULL (reported) or points to a token (initialised or \
     zero-filled) that stays valid while the calling thread holds it."
)]
/// cbindgen:postfix=LWKT_ACQUIRES(tok)
#[no_mangle]
pub unsafe extern "C" fn lwkt_gettoken(tok: lwkt_token_t) {
    if !tok.is_null() && thread::get_exclusive_fast(tok) {
        return;
    }
    thread::get(
        "lwkt_gettoken",
        checked("lwkt_gettoken", tok),
        Mode::Exclusive,
    );
}

/// Take `tok` shared: shared holders coexist, an exclusive holder excludes
/// them. Allowed recursively, and on the caller's own exclusive hold.
#[doc = safety!("As for `lwkt_gettoken`.")]
/// cbindgen:postfix=LWKT_ACQUIRES_SHARED(tok)
#[no_mangle]
pub unsafe extern "C" fn lwkt_gettoken_shared(tok: lwkt_token_t) {
    if !tok.is_null() && thread::get_shared_fast(tok) {
        return;
    }
    thread::get(
        "lwkt_gettoken_shared",
        checked("lwkt_gettoken_shared", tok),
        Mode::Shared,
    );
}

/// Try to take `tok` exclusively: non-zero on success. Never blocks, never
/// releases the caller's other tokens.
#[doc = safety!("As for `lwkt_gettoken`.")]
/// cbindgen:postfix=LWKT_TRY_ACQUIRES(1, tok)
#[no_mangle]
pub unsafe extern "C" fn lwkt_trytoken(tok: lwkt_token_t) -> c_int {
    thread::try_get(
        "lwkt_trytoken",
        checked("lwkt_trytoken", tok),
        Mode::Exclusive,
    ) as c_int
}

/// Extension: try to take `tok` shared; non-zero on success.
#[doc = safety!("As for `lwkt_gettoken`.")]
/// cbindgen:postfix=LWKT_TRY_ACQUIRES_SHARED(1, tok)
#[no_mangle]
pub unsafe extern "C" fn lwkt_trytoken_shared(tok: lwkt_token_t) -> c_int {
    thread::try_get(
        "lwkt_trytoken_shared",
        checked("lwkt_trytoken_shared", tok),
        Mode::Shared,
    ) as c_int
}

/// Release the caller's most recent token reference, which must be `tok`.
#[doc = safety!(
    "`tok` is NULL (reported) or points to a valid token; releasing one \
     that is not the caller's most recent reference is reported."
)]
/// cbindgen:postfix=LWKT_RELEASES(tok)
#[no_mangle]
pub unsafe extern "C" fn lwkt_reltoken(tok: lwkt_token_t) {
    if !tok.is_null() && thread::rel_exclusive_fast(tok) {
        return;
    }
    thread::rel("lwkt_reltoken", checked("lwkt_reltoken", tok));
}

/// Swap the caller's two most recent token references, so that the one
/// taken earlier can be released first.
#[no_mangle]
pub extern "C" fn lwkt_token_swap() {
    thread::swap();
}

/// How many references to `tok` the calling thread holds.
#[doc = safety!(
    "None beyond C's: `tok` is only compared with the calling thread's \
     references, never read (unsafe like the rest of the C API)."
)]
#[no_mangle]
pub unsafe extern "C" fn lwkt_cnttoken(tok: lwkt_token_t) -> c_int {
    thread::count(tok) as c_int
}

/// Extension (used by `LWKT_TOKEN_HELD_EXCL`): non-zero when the calling
/// thread holds `tok` exclusively.
#[doc = safety!("As for `lwkt_cnttoken`.")]
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_held_excl(tok: lwkt_token_t) -> c_int {
    thread::holds_exclusive(tok) as c_int
}
