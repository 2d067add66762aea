//! Helgrind and DRD: valgrind's client requests, made with the magic
//! instruction sequence that valgrind recognises and that does nothing on
//! a real processor.
//!
//! A token is told as happens-before objects, not as a lock: a release
//! "happens before" the later acquisitions of the same token that a
//! reader-writer lock would order after it (`ANNOTATE_HAPPENS_BEFORE` /
//! `_AFTER`; Helgrind and DRD answer the same request numbers for them). As a lock, Helgrind would check the order in
//! which threads take tokens and call two threads that take A then B and B
//! then A a lock order violation, which is legal with tokens (SPEC S4),
//! and it has no per-lock switch to stop that. The token's own memory is
//! hidden from each tool with its own request (a tool ignores the other's).

use core::arch::asm;

use crate::token::Token;

/// `VG_USERREQ_TOOL_BASE(a, b)` of `<valgrind/valgrind.h>`.
const fn tool_base(a: u8, b: u8) -> usize {
    (a as usize) << 24 | (b as usize) << 16
}

/// valgrind's core request: non-zero under valgrind.
const RUNNING_ON_VALGRIND: usize = 0x1001;
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

/// One client request; `default` comes back when no valgrind answers.
#[inline(never)]
fn request(default: usize, args: [usize; 6]) -> usize {
    let mut result = default;
    // SAFETY: the four rotations of rdi add up to 128 bits (rdi comes back
    // unchanged) and `xchg rbx, rbx` changes nothing: natively this is a
    // no-op; under valgrind it reads `args` (rax points at it) and writes
    // the answer in rdx.
    unsafe {
        asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    result
}

pub(crate) fn running() -> bool {
    request(0, [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0
}

/// The library reads and writes the token's fields with atomics that
/// neither tool counts as synchronisation: hide them, before the thread
/// first touches them (a zero-filled or statically initialised token is
/// never created, so each attempt on a word says it again).
pub(crate) fn hide(tok: *const Token) {
    hide_range(tok as usize, core::mem::size_of::<Token>());
}

/// Neither tool checks `len` bytes at `addr`.
pub(crate) fn hide_range(addr: usize, len: usize) {
    request(0, [HG_UNTRACKED, addr, len, 0, 0, 0]);
    request(0, [DRD_SUPPRESS, addr, len, 0, 0, 0]);
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
