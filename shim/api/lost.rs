//! Knowing a token was lost (SPEC S8): a mark in the calling thread's
//! history, and whether a token it holds was taken by another thread since,
//! so that what was read under it is re-validated only when needed.

use core::ffi::c_int;

use super::{lwkt_mark_t, lwkt_token_t};
use crate::thread;

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
#[doc = safety!(
    "None beyond C's: `tok` is only compared with the calling thread's \
     references, never read (unsafe like the rest of the C API)."
)]
#[no_mangle]
pub unsafe extern "C" fn lwkt_token_lost_since(tok: lwkt_token_t, mark: lwkt_mark_t) -> c_int {
    thread::lost_since(Some(tok), mark) as c_int
}
