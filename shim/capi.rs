//! The C API: DragonFly BSD's token(9) names, plus the `lwkt_` extensions
//! documented in `include/lwkt.h`. cbindgen turns the doc comments here into
//! the header's comments.

#![allow(non_camel_case_types)]

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::Ordering::Relaxed;

use crate::diag;
use crate::thread;
use crate::token::{Mode, Token, DEAD};

/// token(9)'s handle type (`struct lwkt_token` is defined in token.rs).
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
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_init(tok: lwkt_token_t, desc: *const c_char) {
    let tok = checked("lwkt_token_init", tok) as *mut Token;
    tok.write(Token {
        t_word: 0,
        t_waiters: 0,
        t_wake: 0,
        t_handoff: 0,
        t_reserved: 0,
        t_seq: 0,
        t_desc: desc,
    });
}

/// Retire `tok`. It must not be held; any later use aborts with a message
/// until `lwkt_token_init` is called on it again.
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_uninit(tok: lwkt_token_t) {
    let tok = checked("lwkt_token_uninit", tok);
    let t = &*tok;
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
#[no_mangle]
pub unsafe extern "C" fn lwkt_gettoken_shared(tok: lwkt_token_t) {
    thread::get(
        "lwkt_gettoken_shared",
        checked("lwkt_gettoken_shared", tok),
        Mode::Shared,
    );
}

/// Try to take `tok` exclusively: non-zero on success. Never blocks, never
/// releases the caller's other tokens.
#[no_mangle]
pub unsafe extern "C" fn lwkt_trytoken(tok: lwkt_token_t) -> c_int {
    thread::try_get(
        "lwkt_trytoken",
        checked("lwkt_trytoken", tok),
        Mode::Exclusive,
    ) as c_int
}

/// Extension: try to take `tok` shared; non-zero on success.
#[no_mangle]
pub unsafe extern "C" fn lwkt_trytoken_shared(tok: lwkt_token_t) -> c_int {
    thread::try_get(
        "lwkt_trytoken_shared",
        checked("lwkt_trytoken_shared", tok),
        Mode::Shared,
    ) as c_int
}

/// Release the caller's most recent token reference, which must be `tok`.
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
#[no_mangle]
pub unsafe extern "C" fn lwkt_cnttoken(tok: lwkt_token_t) -> c_int {
    thread::count(tok) as c_int
}

/// Extension (used by `LWKT_TOKEN_HELD_EXCL`): non-zero when the calling
/// thread holds `tok` exclusively.
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_held_excl(tok: lwkt_token_t) -> c_int {
    thread::holds_exclusive(tok) as c_int
}

/// Extension (used by the `ASSERT_` macros): abort with a message naming
/// `expr`, `file` and `line` unless the calling thread holds `tok`
/// (exclusively when `exclusive` is non-zero).
#[no_mangle]
pub unsafe extern "C" fn lwkt_assert_held(
    tok: lwkt_token_t,
    exclusive: c_int,
    expr: *const c_char,
    file: *const c_char,
    line: c_int,
) {
    let ok = if exclusive != 0 {
        thread::holds_exclusive(tok)
    } else {
        thread::count(tok) > 0
    };
    if !ok {
        let what = if exclusive != 0 {
            "held exclusively"
        } else {
            "held"
        };
        let call = if exclusive != 0 {
            "ASSERT_LWKT_TOKEN_HELD_EXCL"
        } else {
            "ASSERT_LWKT_TOKEN_HELD"
        };
        diag::misuse(
            call,
            tok,
            format_args!(
                "assertion failed at {}:{line}: {} is not {what}",
                CStrArg(file),
                CStrArg(expr)
            ),
        );
    }
}

/// Extension (used by `ASSERT_NO_TOKENS_HELD`): abort with a message naming
/// `file` and `line` if the calling thread holds any token.
#[no_mangle]
pub unsafe extern "C" fn lwkt_assert_none_held(file: *const c_char, line: c_int) {
    if thread::holds_tokens() {
        diag::misuse_no_token(
            "ASSERT_NO_TOKENS_HELD",
            format_args!(
                "assertion failed at {}:{line}: the thread holds tokens",
                CStrArg(file)
            ),
        );
    }
}

/// Extension (SPEC S8): record a point in the calling thread's history.
#[no_mangle]
pub extern "C" fn lwkt_mark() -> lwkt_mark_t {
    thread::loss_mark()
}

/// Extension (SPEC S8): non-zero when any token the calling thread holds was
/// taken by another thread since `mark` (while the caller was blocked or
/// waiting), so that what was read under it must be re-validated.
#[no_mangle]
pub extern "C" fn lwkt_lost_since(mark: lwkt_mark_t) -> c_int {
    thread::lost_since(None, mark) as c_int
}

/// Extension (SPEC S8): like `lwkt_lost_since`, for one token the caller
/// holds.
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_lost_since(tok: lwkt_token_t, mark: lwkt_mark_t) -> c_int {
    thread::lost_since(Some(tok), mark) as c_int
}

// The version (SPEC section 3) is Cargo.toml's; the unit test
// `version_is_cargo_tomls` fails when these lag behind it.

/// The version of this header: MAJOR.MINOR.PATCH. The library's SONAME is
/// liblwkt.so.MAJOR; `lwkt_version()` gives the version loaded at run time.
pub const LWKT_VERSION_MAJOR: c_int = 0;
/// See `LWKT_VERSION_MAJOR`.
pub const LWKT_VERSION_MINOR: c_int = 1;
/// See `LWKT_VERSION_MAJOR`.
pub const LWKT_VERSION_PATCH: c_int = 0;

/// Extension: the version of the library loaded at run time,
/// `"MAJOR.MINOR.PATCH"` (a static string), to compare with the
/// `LWKT_VERSION_` macros the program was compiled with.
#[no_mangle]
pub extern "C" fn lwkt_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// Cargo.toml's version, NUL-terminated.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// Number of pool tokens (a power of two).
pub const LWKT_POOL_SIZE: usize = 4096;

#[repr(C, align(64))]
struct PoolSlot(core::cell::UnsafeCell<Token>);

struct Pool([PoolSlot; LWKT_POOL_SIZE]);
// SAFETY: tokens are only touched through atomics.
unsafe impl Sync for Pool {}

// The array initializer: every slot gets its own copy of this free token.
#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: PoolSlot = PoolSlot(core::cell::UnsafeCell::new(Token {
    t_word: 0,
    t_waiters: 0,
    t_wake: 0,
    t_handoff: 0,
    t_reserved: 0,
    t_seq: 0,
    t_desc: core::ptr::null(),
}));
static POOL: Pool = Pool([FREE_SLOT; LWKT_POOL_SIZE]);

/// The pool slot `tok` is, if it is one (for messages).
pub fn pool_slot_of(tok: *const Token) -> Option<usize> {
    let base = POOL.0.as_ptr() as usize;
    let addr = tok as usize;
    let size = core::mem::size_of::<PoolSlot>();
    if addr >= base && addr < base + LWKT_POOL_SIZE * size && (addr - base).is_multiple_of(size) {
        Some((addr - base) / size)
    } else {
        None
    }
}

/// The pool token that guards the object at `ptr` (the same token for the
/// same address, always).
#[no_mangle]
pub extern "C" fn lwkt_token_pool_lookup(ptr: *const c_void) -> lwkt_token_t {
    // Fibonacci hashing of the address; the low bits are alignment.
    let h = ((ptr as usize as u64) >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let slot = (h >> (64 - LWKT_POOL_SIZE.trailing_zeros())) as usize;
    POOL.0[slot].0.get()
}

/// Take the pool token of `ptr` exclusively and return it.
#[no_mangle]
pub unsafe extern "C" fn lwkt_getpooltoken(ptr: *const c_void) -> lwkt_token_t {
    let tok = lwkt_token_pool_lookup(ptr);
    thread::get("lwkt_getpooltoken", tok, Mode::Exclusive);
    tok
}

/// Release the pool token of `ptr` (the caller's most recent reference).
#[no_mangle]
pub unsafe extern "C" fn lwkt_relpooltoken(ptr: *const c_void) {
    thread::rel("lwkt_relpooltoken", lwkt_token_pool_lookup(ptr));
}

/// `const char *` argument shown in a message.
struct CStrArg(*const c_char);

impl core::fmt::Display for CStrArg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.is_null() {
            return f.write_str("?");
        }
        let s = unsafe { core::ffi::CStr::from_ptr(self.0) }.to_bytes();
        f.write_str(core::str::from_utf8(s).unwrap_or("?"))
    }
}
