//! The functions behind the header's `ASSERT_` macros: a failed assertion
//! is a misuse (SPEC S10), reported with the expression, file and line.

use core::ffi::{c_char, c_int};

use super::lwkt_token_t;
use crate::diag;
use crate::thread;

/// Extension (used by the `ASSERT_` macros): abort with a message naming
/// `expr`, `file` and `line` unless the calling thread holds `tok`
/// (exclusively when `exclusive` is non-zero).
#[doc = safety!(
    "`expr` and `file` are NULL or NUL-terminated strings (the macros pass \
     `#tok` and `__FILE__`); `tok` is only compared, never read."
)]
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
#[doc = safety!("`file` is NULL or a NUL-terminated string (`__FILE__`).")]
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

/// `const char *` argument shown in a message. Made only from the
/// arguments above, which their contracts say are NULL or NUL-terminated.
struct CStrArg(*const c_char);

impl core::fmt::Display for CStrArg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.is_null() {
            return f.write_str("?");
        }
        // SAFETY: not NULL, so a NUL-terminated string (see the type).
        let s = unsafe { core::ffi::CStr::from_ptr(self.0) }.to_bytes();
        f.write_str(core::str::from_utf8(s).unwrap_or("?"))
    }
}
