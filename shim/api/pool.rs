//! The pool of tokens through the C API (token(9)'s pool functions): the
//! pool itself is `crate::pool`, below both this layer and `observe`.

use core::ffi::c_void;

use super::lwkt_token_t;
use crate::pool;
use crate::thread;
use crate::token::Mode;

/// The pool token that guards the object at `ptr` (the same token for the
/// same address, always).
#[no_mangle]
pub extern "C" fn lwkt_token_pool_lookup(ptr: *const c_void) -> lwkt_token_t {
    pool::lookup(ptr)
}

/// Take the pool token of `ptr` exclusively and return it.
#[doc = safety!("None beyond C's: `ptr` is only hashed, never read.")]
#[no_mangle]
pub unsafe extern "C" fn lwkt_getpooltoken(ptr: *const c_void) -> lwkt_token_t {
    let tok = lwkt_token_pool_lookup(ptr);
    thread::get("lwkt_getpooltoken", tok, Mode::Exclusive);
    tok
}

/// Release the pool token of `ptr` (the caller's most recent reference).
#[doc = safety!("None beyond C's: `ptr` is only hashed, never read.")]
#[no_mangle]
pub unsafe extern "C" fn lwkt_relpooltoken(ptr: *const c_void) {
    thread::rel("lwkt_relpooltoken", lwkt_token_pool_lookup(ptr));
}
