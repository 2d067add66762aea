//! The pool of tokens (SPEC section 3): a fixed array of cache-line-aligned
//! tokens, one chosen by hashing an object's address, and the way back
//! from a token to its slot (for messages and statistics).
//!
//! It sits below the C API (which exports it) and the observation layer
//! (which names pool tokens by their slot), so that neither reaches into
//! the other. It is part of the token layer and moves there with it.

use core::cell::UnsafeCell;
use core::ffi::c_void;

use super::word::Token;

/// Number of pool tokens (a power of two).
pub const LWKT_POOL_SIZE: usize = 4096;

#[repr(C, align(64))]
struct PoolSlot(UnsafeCell<Token>);

struct Pool([PoolSlot; LWKT_POOL_SIZE]);
// SAFETY: a token's fields are only touched through atomics (word.rs),
// or read for its description, which a pool token never changes.
unsafe impl Sync for Pool {}

// The array initializer: every slot gets its own copy of this free token.
#[allow(clippy::declare_interior_mutable_const)]
const FREE_SLOT: PoolSlot = PoolSlot(UnsafeCell::new(Token::free(core::ptr::null())));
static POOL: Pool = Pool([FREE_SLOT; LWKT_POOL_SIZE]);

/// The pool token that guards the object at `ptr` (the same token for the
/// same address, always).
pub(crate) fn lookup(ptr: *const c_void) -> *mut Token {
    // Fibonacci hashing of the address; the low bits are alignment.
    let h = ((ptr as usize as u64) >> 4).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let slot = (h >> (64 - LWKT_POOL_SIZE.trailing_zeros())) as usize;
    POOL.0[slot].0.get()
}

/// The pool slot `tok` is, if it is one (for messages).
pub(crate) fn slot_of(tok: *const Token) -> Option<usize> {
    let base = POOL.0.as_ptr() as usize;
    let addr = tok as usize;
    let size = core::mem::size_of::<PoolSlot>();
    if addr >= base && addr < base + LWKT_POOL_SIZE * size && (addr - base).is_multiple_of(size) {
        Some((addr - base) / size)
    } else {
        None
    }
}
