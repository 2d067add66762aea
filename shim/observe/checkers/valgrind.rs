//! Helgrind and DRD: valgrind's client requests (`sys::valgrind_request`).
//!
//! A token is told as happens-before objects, not as a lock: a release
//! "happens before" the later acquisitions of the same token that a
//! reader-writer lock would order after it (`ANNOTATE_HAPPENS_BEFORE` /
//! `_AFTER`; Helgrind and DRD answer the same request numbers for them). As a lock, Helgrind would check the order in
//! which threads take tokens and call two threads that take A then B and B
//! then A a lock order violation, which is legal with tokens (SPEC S4),
//! and it has no per-lock switch to stop that. The token's own memory is
//! hidden from each tool with its own request (a tool ignores the other's).

use crate::sys;
use crate::token::Token;

/// `VG_USERREQ_TOOL_BASE(a, b)` of `<valgrind/valgrind.h>`.
const fn tool_base(a: u8, b: u8) -> usize {
    (a as usize) << 24 | (b as usize) << 16
}

const HG: usize = tool_base(b'H', b'G');
/// `ANNOTATE_HAPPENS_BEFORE (obj)`, `ANNOTATE_HAPPENS_AFTER (obj)`, and
/// Helgrind's `_FORGET_ALL (obj)` (a retired token's address may become
/// another token).
const HAPPENS_BEFORE: usize = HG + 256 + 33;
const HAPPENS_AFTER: usize = HG + 256 + 34;
const FORGET_ALL: usize = HG + 256 + 35;
/// Helgrind's `VALGRIND_HG_DISABLE_CHECKING (addr, len)`.
const HG_UNTRACKED: usize = HG + 256 + 39;
/// DRD's `ANNOTATE_BENIGN_RACE_SIZED (addr, len)`.
const DRD_SUPPRESS: usize = tool_base(b'D', b'R') + 2;

fn request(default: usize, args: [usize; 6]) -> usize {
    sys::valgrind_request(default, args)
}

pub(crate) fn running() -> bool {
    sys::running_on_valgrind()
}

/// Hide `len` bytes at `addr` from both tools (each ignores the other's
/// request).
pub(crate) fn hide_range(addr: usize, len: usize) {
    request(0, [HG_UNTRACKED, addr, len, 0, 0, 0]);
    request(0, [DRD_SUPPRESS, addr, len, 0, 0, 0]);
}

/// The library reads and writes the token's fields with atomics that
/// neither tool counts as synchronisation: hide them, before the thread
/// first touches them (a zero-filled or statically initialised token is
/// never created, so each attempt on a word says it again).
pub(crate) fn hide(tok: *const Token) {
    hide_range(tok as usize, core::mem::size_of::<Token>());
}

pub(crate) fn created(tok: *const Token) {
    hide(tok);
}

pub(crate) fn destroyed(tok: *const Token) {
    request(0, [FORGET_ALL, tok as usize, 0, 0, 0, 0]);
    request(0, [FORGET_ALL, readers(tok), 0, 0, 0, 0]);
}

/// The object shared holds release into: the token's address plus one
/// (a tag, never dereferenced). Readers are not ordered after each other,
/// only after writers, and writers after both, as with a reader-writer
/// lock: a write made under a shared hold stays a race.
fn readers(tok: *const Token) -> usize {
    tok as usize + 1
}

/// The word is the thread's: after every earlier exclusive release of it,
/// and, when exclusive, after every shared one too.
pub(crate) fn taken(tok: *const Token, shared: bool) {
    request(0, [HAPPENS_AFTER, tok as usize, 0, 0, 0, 0]);
    if !shared {
        request(0, [HAPPENS_AFTER, readers(tok), 0, 0, 0, 0]);
    }
}

/// Before the store that gives the word back.
pub(crate) fn released(tok: *const Token, shared: bool) {
    hide(tok);
    let object = if shared { readers(tok) } else { tok as usize };
    request(0, [HAPPENS_BEFORE, object, 0, 0, 0, 0]);
}
