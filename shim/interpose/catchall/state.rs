//! The catch-all's per-thread state: sixteen bytes of static TLS, and the
//! thread's selector byte (core/tls.rs's).

use core::sync::atomic::{AtomicU32, AtomicU8, AtomicUsize, Ordering::Relaxed};

use crate::sys;

// Sixteen bytes of static TLS next to core/tls.rs's nine: the thread id
// that armed (a vfork child shares its parent's TLS and must not change
// it), the flags below, and the selector of the program's own dispatch.
// Initial-exec, like core/tls.rs's: no allocation, usable in a handler.
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 3",
    ".globl lwkt_catchall_thread",
    ".hidden lwkt_catchall_thread",
    ".type lwkt_catchall_thread,@object",
    ".size lwkt_catchall_thread,16",
    "lwkt_catchall_thread:",
    ".zero 16",
    ".popsection",
);

/// The thread uses tokens: the catch-all belongs on it.
pub(super) const WANT: u8 = 1;
/// Dispatch is on, with our selector.
pub(super) const ARMED: u8 = 2;
/// The program switched dispatch on itself in this thread.
pub(super) const PROGRAM: u8 = 4;
/// SIGSYS is blocked by a mask change the catch-all trapped: kept
/// deliverable, the program's SIGSYS held back (see
/// redirect.rs, `sigprocmask_on_context`).
pub(super) const VBLOCK: u8 = 8;
/// Not armed because SIGSYS was blocked by something no hook saw (the
/// thread's first token taken in a handler that blocks SIGSYS, say): look
/// again at the thread's next hooked call.
pub(super) const LOOK_AGAIN: u8 = 16;

/// A trapped `clone`/`fork`/`vfork` made a child that may run with this
/// TLS block (a `vfork` or `posix_spawn` child shares it) or a copy of it
/// (a fork child): the patched path asks the kernel for the thread id
/// before it acts on the thread's tokens (patch/entry.rs). Cleared in the
/// parent when no child can still be running with the block, and by a
/// new arming.
pub(super) const CHILD_NEAR: u8 = 32;

/// This thread's block.
#[inline(always)]
fn thread_slot() -> *mut u8 {
    crate::sys::tls_address!("lwkt_catchall_thread")
}

/// The flags, changed with single instructions (a handler may interrupt).
#[inline(always)]
pub(super) fn flags() -> &'static AtomicU8 {
    // SAFETY: byte 4 of this thread's TLS block, which lives as long as
    // the thread; only this thread touches it.
    unsafe { &*(thread_slot().add(4) as *const AtomicU8) }
}

pub(super) fn armed_tid() -> &'static AtomicU32 {
    // SAFETY: bytes 0-3 of this thread's TLS block (aligned: the block
    // is 8-aligned), as long-lived and private as the flags.
    unsafe { &*(thread_slot() as *const AtomicU32) }
}

/// The selector the program gave its own dispatch in this thread (0: none).
pub(super) fn program_selector() -> &'static AtomicUsize {
    // SAFETY: bytes 8-15 of this thread's TLS block (8-aligned), as
    // long-lived and private as the flags.
    unsafe { &*(thread_slot().add(8) as *const AtomicUsize) }
}

/// Is this the thread that armed (not a vfork child on its stack)?
pub(super) fn own_thread() -> bool {
    armed_tid().load(Relaxed) == sys::gettid()
}

/// This thread's selector byte (core/tls.rs).
#[inline(always)]
pub(super) fn selector() -> *mut u8 {
    crate::sys::tls_address!("lwkt_thread_selector")
}

/// Has this thread used tokens (where the catch-all can run)?
pub fn used_here() -> bool {
    flags().load(Relaxed) & WANT != 0
}

/// Is this thread's dispatch on, as ours? Read by the hooks' wait masks.
#[inline(always)]
pub(super) fn armed_here() -> bool {
    flags().load(Relaxed) & ARMED != 0
}
