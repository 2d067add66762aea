//! The per-thread reference stack: its entries, recording and dropping
//! them, and the questions asked of it (who owns which word).

use core::fmt::{self, Write};
use core::sync::atomic::{compiler_fence, Ordering::*};

use super::acquire::*;
use super::events::{self, *};
use super::tls::*;
use super::word::{token_at, Busy, Mode, Token};
use crate::sys;

/// Per-thread reference limit (SPEC S10: at least 64).
pub const MAX_REFS: usize = 64;

pub(super) const R_EXCL: u32 = 1; // this reference asked for an exclusive hold
pub(super) const R_PRIMARY: u32 = 2; // this reference owns the word
pub(super) const R_WORD_EXCL: u32 = 4; // (primary only) the word is held exclusively
/// Set in every reference; a slot being filled or emptied has flags 0 (see
/// `fill_top`), which no query counts.
pub(super) const R_REF: u32 = 16;
/// (shared primary only) its count is in the word: set after the
/// compare-and-swap that adds it, cleared before the one that removes it.
/// A handler that lands in between sees it unset and leaves that count
/// alone: it may keep a count while it blocks, never give back one that is
/// not its thread's.
pub(super) const R_COUNTED: u32 = 8;

#[derive(Clone, Copy)]
#[repr(C)]
pub struct TokRef {
    pub tok: *const Token,
    pub(super) flags: u32,
    /// The thread's loss counter when this token was last found taken by
    /// another thread while released (SPEC S8).
    pub(super) lost_at: u32,
}

impl TokRef {
    pub(super) fn is_ref(&self) -> bool {
        self.flags & R_REF != 0
    }
    pub(super) fn is_excl(&self) -> bool {
        self.flags & R_EXCL != 0
    }
    pub(super) fn is_primary(&self) -> bool {
        self.flags & R_PRIMARY != 0
    }
    pub(super) fn word_mode(&self) -> Mode {
        if self.flags & R_WORD_EXCL != 0 {
            Mode::Exclusive
        } else {
            Mode::Shared
        }
    }
}

/// A thread's state. Its initial value is all zero bits (counts 0, null
/// pointers, false), which is what a fresh anonymous mapping holds
/// (`state_first_use`): every field must be valid and mean "nothing yet"
/// at zero.
pub struct ThreadState {
    pub(super) depth: u32,
    pub(super) released_below: u32,
    /// Kernel thread id; 0 until the thread first takes a token.
    pub(super) tid: u32,
    /// Counts tokens found taken by others while released (SPEC S8).
    pub(super) losses: u32,
    pub(super) refs: [TokRef; MAX_REFS],
    /// For each released primary reference: the token's `t_seq` when it was
    /// released, plus our own acquisitions since (0: not to be checked).
    pub(super) seq_at_release: [u64; MAX_REFS],
    /// When each primary reference's word was taken (statistics only).
    pub(super) acquired_ns: [u64; MAX_REFS],
    /// `LWKT_CHAOS`: this thread's random sequence (0 until first used).
    pub(super) chaos_rng: u64,
    /// `LWKT_DEBUG`: where the program took each reference.
    pub(super) taken_at: [usize; MAX_REFS],
    /// Syscall User Dispatch is on for this thread (its switch is the
    /// `lwkt_thread_selector` byte).
    pub(super) dispatch: bool,
    /// The token whose word this thread's release is handing to a
    /// registered waiter right now (see `Token::finish_handoff`), or null.
    pub(super) handing_off: *const Token,
    /// What an outside reader learns from the slow paths (`registry`).
    pub(super) record: super::registry::ThreadRecord,
}

impl ThreadState {
    /// Statistics, hold warnings and debug: note when and where the
    /// reference was taken.
    #[cold]
    pub(super) fn on_acquire(&mut self, i: usize, tok: *const Token, flags: u32) {
        if debug() {
            self.taken_at[i] = (observer().caller)();
        }
        if flags & R_PRIMARY != 0 {
            self.acquired_ns[i] = sys::now_ns();
        }
        (observer().acquired)(tok, flags & R_EXCL != 0, self.depth);
    }

    /// Statistics and hold warnings: the word of reference `i` is released.
    #[cold]
    pub(super) fn on_word_release(&mut self, i: usize) {
        let tok = self.refs[i].tok;
        if self.acquired_ns[i] == 0 {
            // Taken before counting started (another library's constructor
            // ran before ours): no hold time to report.
            return;
        }
        let held = sys::now_ns().saturating_sub(self.acquired_ns[i]);
        (observer().held)(tok, held);
        let limit_ms = HOLD_WARN_MS.load(Relaxed) as u64;
        if limit_ms != 0 && held > limit_ms * 1_000_000 {
            events::warn(format_args!(
                "{} held {} ms without blocking by {} (LWKT_DEBUG=hold_ms={limit_ms})",
                Desc(tok),
                held / 1_000_000,
                ThreadName
            ));
        }
    }

    /// The thread's id (set when the state was first used).
    #[inline(always)]
    pub(super) fn me(&self) -> u32 {
        self.tid
    }

    pub(super) fn live(&self) -> &[TokRef] {
        &self.refs[self.released_below as usize..self.depth as usize]
    }

    /// Index of the live primary reference to `tok`, if the thread has one.
    pub(super) fn find_live(&self, tok: *const Token) -> Option<usize> {
        let lo = self.released_below as usize;
        self.live()
            .iter()
            .position(|r| r.tok == tok && r.is_primary())
            .map(|i| i + lo)
    }

    /// Does reference `i` own its token's word right now? Judged from the
    /// word itself for an exclusive hold (only this thread ever stores its
    /// id there), from `R_COUNTED` for a shared one. Any reference on the
    /// stack may: a signal handler can run while its thread is half-way
    /// through taking or giving back words.
    pub(super) fn holds_word(&self, i: usize) -> bool {
        let r = &self.refs[i];
        r.is_primary()
            && match r.word_mode() {
                Mode::Exclusive => token_at(r.tok).exclusive_holder() == self.me(),
                Mode::Shared => r.flags & R_COUNTED != 0,
            }
    }

    /// Does the thread own `tok`'s word (exclusively, or a shared count
    /// through a reference that noted it)?
    pub(super) fn holds_word_of(&self, tok: *const Token) -> bool {
        if token_at(tok).exclusive_holder() == self.me() {
            return true;
        }
        self.refs[..self.depth as usize]
            .iter()
            .any(|r| r.tok == tok && r.is_primary() && r.flags & R_COUNTED != 0)
    }

    /// Has the thread a primary reference to `tok` (but `except`) that does
    /// not own its word? Only where a signal handler interrupted its thread
    /// in a step on `tok` (acquire, release, wait): the thread may then
    /// hold a shared count that no reference has noted yet, or reserve the
    /// word for its own exclusive wait, and the handler must not wait for
    /// either.
    pub(super) fn has_unowned_primary(&self, tok: *const Token, except: usize) -> bool {
        (0..self.depth as usize).any(|i| {
            let r = &self.refs[i];
            i != except && r.tok == tok && r.is_primary() && !self.holds_word(i)
        })
    }

    /// Has the thread a shared primary reference to `tok`: does it hold,
    /// take, give back or wait for a shared count of it (maybe in code that
    /// a signal handler interrupted)? An exclusive wait could then be a
    /// wait for the thread's own count.
    pub(super) fn has_shared_primary(&self, tok: *const Token) -> bool {
        self.refs[..self.depth as usize]
            .iter()
            .any(|r| r.tok == tok && r.is_primary() && r.word_mode() == Mode::Shared)
    }

    /// Has the thread a live shared request for `tok`?
    pub(super) fn has_live_shared_request(&self, tok: *const Token) -> bool {
        self.live()
            .iter()
            .any(|r| r.tok == tok && r.is_ref() && !r.is_excl())
    }

    /// Record a reference on top of the stack, before its word is taken (a
    /// signal handler that runs after this sees it; `holds_word` tells it
    /// whether the word is taken yet). Returns its index.
    #[inline(always)]
    pub(super) fn record(&mut self, call: &'static str, tok: *const Token, flags: u32) -> usize {
        let d = self.depth as usize;
        if d == MAX_REFS {
            events::misuse(
                call,
                tok,
                format_args!("more than {MAX_REFS} token references held by one thread"),
            );
        }
        // SAFETY: d < MAX_REFS, checked above.
        unsafe { self.fill_top(d, tok, flags) };
        self.sync_selector();
        compiler_fence(SeqCst);
        d
    }

    /// Put a reference in slot `d` (< MAX_REFS), the first above the
    /// stack. The slot is claimed before it is written: a signal handler
    /// that ran between a write and the claim would push its own reference
    /// into the same slot and leave it there. Until the flags are written
    /// the slot holds flags 0 (every pop clears them), which a handler
    /// takes for a reference without a word of its own.
    ///
    /// # Safety
    ///
    /// `d` < `MAX_REFS` (the slot is not bounds-checked).
    #[inline(always)]
    pub(super) unsafe fn fill_top(&mut self, d: usize, tok: *const Token, flags: u32) {
        self.depth = d as u32 + 1;
        compiler_fence(SeqCst);
        // SAFETY: d < MAX_REFS (this function's contract).
        let slot = unsafe { self.refs.get_unchecked_mut(d) };
        slot.tok = tok;
        compiler_fence(SeqCst);
        slot.lost_at = 0;
        slot.flags = flags | R_REF;
        compiler_fence(SeqCst);
    }

    /// Reference `i`'s word was just taken.
    #[inline(always)]
    pub(super) fn took(&mut self, i: usize) {
        compiler_fence(SeqCst);
        let shared = self.refs[i].flags & R_WORD_EXCL == 0;
        if shared {
            self.refs[i].flags |= R_COUNTED;
        }
        if timing() {
            let tok = self.refs[i].tok;
            tell_checker(|o| (o.word_taken)(tok, shared));
        }
    }

    /// A recursive reference (or one riding on a word the thread owns):
    /// nothing to take.
    #[inline(always)]
    pub(super) fn push(&mut self, call: &'static str, tok: *const Token, flags: u32) {
        let i = self.record(call, tok, flags);
        if timing() {
            self.on_acquire(i, tok, flags);
        }
    }

    /// Record a primary reference, then take its word (SPEC section 7: the
    /// reference is recorded before the word is taken). On failure the
    /// reference is dropped again and the caller learns what it found.
    pub(super) fn take_new(
        &mut self,
        call: &'static str,
        tok: *const Token,
        mode: Mode,
    ) -> Result<(), Busy> {
        let flags = primary_flags(mode);
        let i = self.record(call, tok, flags);
        if timing() {
            tell_checker(|o| (o.word_wanted)(tok));
        }
        match token_at(tok).try_acquire(mode, self.me()) {
            Ok(()) => {
                self.took(i);
                if timing() {
                    self.on_acquire(i, tok, flags);
                }
                Ok(())
            }
            Err(busy) => {
                self.pop(i);
                Err(busy)
            }
        }
    }

    /// Drop the reference on top (`i`), after its word (if any) is given
    /// back, or because its word could not be had. Its flags are cleared
    /// first (see `fill_top`).
    #[inline(always)]
    pub(super) fn pop(&mut self, i: usize) {
        compiler_fence(SeqCst);
        // SAFETY: i < depth <= MAX_REFS.
        let slot = unsafe { self.refs.get_unchecked_mut(i) };
        slot.flags = 0;
        slot.lost_at = 0;
        compiler_fence(SeqCst);
        self.depth = i as u32;
        self.sync_selector_at(i as u32);
    }
}

/// `lwkt_token_swap`: exchange the two most recent references.
pub fn swap() {
    let st = state();
    let d = st.depth as usize;
    if d < 2 || d - 2 < st.released_below as usize {
        events::misuse_no_token(
            "lwkt_token_swap",
            format_args!("needs two token references held"),
        );
    }
    let (a, b) = (d - 2, d - 1);
    if st.refs[a].tok == st.refs[b].tok {
        // Same token: the lower reference stays the primary; only the
        // requested modes trade places.
        let ma = st.refs[a].flags & R_EXCL;
        let mb = st.refs[b].flags & R_EXCL;
        st.refs[a].flags = (st.refs[a].flags & !R_EXCL) | mb;
        st.refs[b].flags = (st.refs[b].flags & !R_EXCL) | ma;
    } else {
        st.refs.swap(a, b);
    }
}

/// References the calling thread holds to `tok` (`lwkt_cnttoken`).
pub fn count(tok: *const Token) -> usize {
    // A question takes no token: a thread that never took one gets no
    // state (nor the catch-all armed, maybe inside a handler) for asking.
    let Some(st) = state_if_used() else { return 0 };
    st.live()
        .iter()
        .filter(|r| r.tok == tok && r.is_ref())
        .count()
}

/// Does the calling thread hold `tok` exclusively?
pub fn holds_exclusive(tok: *const Token) -> bool {
    let Some(st) = state_if_used() else {
        return false;
    };
    st.find_live(tok).is_some() && token_at(tok).exclusive_holder() == st.me()
}

pub fn loss_mark() -> u64 {
    state().losses as u64
}

/// Was any token (or `tok`) of the thread taken by another thread since
/// `mark`?
pub fn lost_since(tok: Option<*const Token>, mark: u64) -> bool {
    let st = state();
    st.refs[..st.depth as usize]
        .iter()
        .any(|r| tok.is_none_or(|t| r.tok == t) && r.lost_at as u64 > mark)
}

/// Append ", holding: T1 [excl], T2 [shared]" for misuse messages; a run
/// of identical references is written once with its count ("T [excl] ×64").
pub fn write_held(out: &mut impl Write) -> fmt::Result {
    let st = state();
    if st.depth == 0 {
        return out.write_str(", holding no token");
    }
    out.write_str(", holding:")?;
    let refs = &st.refs[..st.depth as usize];
    let label = |i: usize| {
        let r = &refs[i];
        let released = (i as u32) < st.released_below;
        (r.tok, r.is_excl(), released)
    };
    let mut i = 0;
    while i < refs.len() {
        let mut n = 1;
        while i + n < refs.len() && label(i + n) == label(i) {
            n += 1;
        }
        let (tok, excl, released) = label(i);
        let sep = if i == 0 { " " } else { ", " };
        let mode = if excl { "excl" } else { "shared" };
        let released = if released { ", released" } else { "" };
        write!(out, "{sep}{} [{mode}{released}]", Desc(tok))?;
        if n > 1 {
            write!(out, " \u{d7}{n}")?;
        }
        i += n;
    }
    Ok(())
}
