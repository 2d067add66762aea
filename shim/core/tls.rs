//! The thread's static TLS: the pointer to its state and the selector
//! byte (the catch-all's switch, and "holds a token now" for the hooks).

use super::events::*;
use super::lifecycle::*;
use super::refs::*;

// The thread's state is reached through one pointer in static TLS
// (initial-exec model: a GOT load and an fs-relative load; a cdylib's
// thread_local! would cost a __tls_get_addr call on every access). It is
// null until the thread first uses tokens, then points at the state mapped
// for it. Next to it, the selector byte. The library's whole static TLS is
// these 9 bytes, so that it also loads with dlopen().
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    // Global for the other codegen units, hidden from other objects.
    ".globl lwkt_thread_state_ptr",
    ".hidden lwkt_thread_state_ptr",
    ".type lwkt_thread_state_ptr,@object",
    ".size lwkt_thread_state_ptr,8",
    "lwkt_thread_state_ptr:",
    ".zero 8",
    // The catch-all's selector byte, which doubles as "this thread holds a
    // token now": 1 exactly while depth > released_below.
    ".globl lwkt_thread_selector",
    ".hidden lwkt_thread_selector",
    ".type lwkt_thread_selector,@object",
    ".size lwkt_thread_selector,1",
    "lwkt_thread_selector:",
    ".zero 1",
    ".popsection",
);

/// Address of the calling thread's selector byte.
#[inline(always)]
pub(super) fn selector_slot() -> *mut u8 {
    crate::sys::tls_address!("lwkt_thread_selector")
}

/// Address of the calling thread's `lwkt_thread_state_ptr`.
#[inline(always)]
pub(super) fn state_slot() -> *mut *mut ThreadState {
    crate::sys::tls_address!("lwkt_thread_state_ptr").cast()
}

/// The calling thread's state. Only this thread touches it (and signal
/// handlers running on it, which keep to the stack discipline).
#[inline(always)]
pub fn state() -> &'static mut ThreadState {
    let slot = state_slot();
    // SAFETY: thread-local; never shared with another thread.
    unsafe {
        let p = *slot;
        if p.is_null() {
            return state_first_use(slot);
        }
        &mut *p
    }
}

/// The calling thread's state if it has ever used tokens.
pub(super) fn state_if_used() -> Option<&'static mut ThreadState> {
    // SAFETY: this thread's own static TLS pointer.
    let p = unsafe { *state_slot() };
    // SAFETY: non-null only once it points at this thread's state, which
    // only this thread (and its signal handlers) touch.
    (!p.is_null()).then(|| unsafe { &mut *p })
}

/// Has the calling thread ever used tokens? (A fork child's statistics
/// count the forking thread.)
pub fn used_tokens() -> bool {
    state_if_used().is_some()
}

/// Does the calling thread hold at least one token right now? The only cost
/// a hook adds for a thread without tokens: one thread-local byte load.
#[inline(always)]
pub fn holds_tokens() -> bool {
    // SAFETY: this thread's own static TLS byte.
    unsafe { core::ptr::read_volatile(selector_slot()) != SELECT_ALLOW }
}

pub(super) const SELECT_ALLOW: u8 = 0;
pub(super) const SELECT_BLOCK: u8 = 1;

pub(super) fn dispatch_on(selector: *mut u8) -> bool {
    (observer().arm_thread)(selector)
}

pub(super) fn dispatch_off() {
    (observer().disarm_thread)()
}

impl ThreadState {
    /// Point the selector at what the thread holds now: BLOCK while it
    /// holds a token. A plain store; the kernel reads it at every system
    /// call when dispatch is on, and the hooks read it as "holds tokens".
    #[inline(always)]
    pub(super) fn sync_selector(&mut self) {
        self.sync_selector_at(self.depth);
    }

    /// `sync_selector` when the caller knows `depth`.
    #[inline(always)]
    pub(super) fn sync_selector_at(&mut self, depth: u32) {
        let v = if depth > self.released_below {
            SELECT_BLOCK
        } else {
            SELECT_ALLOW
        };
        // SAFETY: this thread's own static TLS byte.
        unsafe { core::ptr::write_volatile(selector_slot(), v) };
    }
}
