//! Release on block and retake (SPEC S4, S8): every word given back
//! before the thread blocks, all taken back, all or nothing, before it
//! runs again; losses noted.

use core::ptr;
use core::sync::atomic::{compiler_fence, Ordering::*};

use super::acquire::*;
use super::events::{self, *};
use super::refs::*;
use super::tls::*;
use super::word::{token_at, Busy, Mode, Token, Waited};
use crate::sys;

/// Note that the calling thread's release is handing `tok`'s word over
/// (null: done); returns the previous note, which the caller restores (a
/// signal handler's release nests inside its thread's).
pub fn handing_off(tok: *const Token) -> *const Token {
    compiler_fence(SeqCst);
    let prev = match state_if_used() {
        Some(st) => core::mem::replace(&mut st.handing_off, tok),
        None => ptr::null(),
    };
    compiler_fence(SeqCst);
    prev
}

/// What `release_all` gave back; `retake` takes exactly that back.
#[must_use]
pub struct Released {
    /// `released_below` before, restored by `retake`.
    pub(super) below: u32,
    pub(super) upto: u32,
    /// The references whose words were given back (bit i: `refs[i]`).
    pub(super) words: u64,
    /// Of those, the ones whose `seq_at_release` this release noted (the
    /// others carry a note of an interrupted release, checked by that one).
    pub(super) noted: u64,
}

/// Release every word the calling thread owns (it is about to block).
/// Signal-safe: each reference stays recorded until its word is given
/// back, and whether a word is still owned is judged from the word (see
/// `holds_word`), so a handler that runs in between releases (and takes
/// back) exactly what is still owned. That may include words below the
/// live references: those of an interrupted retake, or one handed to an
/// interrupted wait.
pub fn release_all(why: &'static str) -> Released {
    let st = state();
    let below = st.released_below;
    let upto = st.depth;
    let mut words = 0u64;
    let mut noted = 0u64;
    // Release in reverse order of acquisition, as a sequence of reltokens
    // would.
    for i in (0..upto as usize).rev() {
        if !st.holds_word(i) {
            if st.refs[i].is_primary() {
                // A signal handler about to block while its thread was
                // between a release and what goes with it (or taking the
                // word): finish a handoff, wake the waiters now, or one
                // that the release handed the word to or reserved it for
                // (EXCLREQ) would wait until the handler returns.
                let t = token_at(st.refs[i].tok);
                if st.handing_off == st.refs[i].tok {
                    t.finish_handoff();
                }
                t.wake_everybody();
            }
            continue;
        }
        if st.seq_at_release[i] == 0 {
            st.seq_at_release[i] = token_at(st.refs[i].tok).seq().load(Relaxed);
            noted |= 1 << i;
        }
        if timing() {
            st.on_word_release(i);
            (observer().released_on_block)(st.refs[i].tok, why);
        }
        give_back(st, i);
        words |= 1 << i;
    }
    // Only now are the references released.
    compiler_fence(SeqCst);
    st.released_below = upto;
    st.sync_selector();
    Released {
        below,
        upto,
        words,
        noted,
    }
}

/// Take back what `release_all` released (and any reference pushed as not
/// yet held), all or nothing, in order; then the thread runs again.
///
/// Long, and kept whole: the retry loop, the waits and the loss check all
/// read and update `held` and the references in one order that a signal
/// handler may interrupt at any step; split, that order would be spread
/// over functions that each look safe alone.
pub fn retake(r: Released, call: &'static str) {
    let st = state();
    // References popped meanwhile (cancellation cleanup) are gone.
    let upto = r.upto.min(st.depth) as usize;
    let keep = if upto >= 64 {
        u64::MAX
    } else {
        (1u64 << upto) - 1
    };
    let words = r.words & keep;
    let below = r.below.min(upto as u32);
    let me = st.me();
    // The references are live again before their words are taken (SPEC
    // section 7); a handler that runs meanwhile judges each word itself.
    st.released_below = below;
    st.sync_selector();
    compiler_fence(SeqCst);
    // Which words this retake holds so far (MAX_REFS is 64).
    let mut held: u64 = 0;
    'again: loop {
        for i in 0..upto {
            if words & (1 << i) == 0 || held & (1 << i) != 0 {
                continue;
            }
            let rf = st.refs[i];
            let t = token_at(rf.tok);
            match t.try_acquire(rf.word_mode(), me) {
                Ok(()) => {
                    st.took(i);
                    held |= 1 << i;
                }
                Err(Busy::SelfExclusive) => {
                    // Handed to an interrupted wait of this thread (this
                    // retake runs in a signal handler): the word stays
                    // this thread's while the handler runs.
                    if rf.word_mode() == Mode::Exclusive {
                        held |= 1 << i;
                    } else {
                        st.refs[i].flags &= !R_PRIMARY;
                        st.seq_at_release[i] = 0;
                    }
                }
                Err(Busy::Shared | Busy::Other)
                    if rf.word_mode() == Mode::Shared
                        && st.has_unowned_primary(rf.tok, i)
                        && t.join_shared() =>
                {
                    // This thread may hold a count of the word already, or
                    // reserve it (see `take_recursive`): never wait for it.
                    st.took(i);
                    held |= 1 << i;
                }
                Err(_) if rf.word_mode() == Mode::Exclusive && st.has_shared_primary(rf.tok) => {
                    // A signal handler's exclusive hold, given back while
                    // it blocked, meets its thread's own shared hold (or
                    // wait): waiting would never end.
                    exclusive_on_own_shared(st, call, rf.tok)
                }
                Err(_) => {
                    // Give back what we took, wait for this one (holding
                    // nothing, references released), then try the rest
                    // again.
                    for j in (0..upto).rev() {
                        if held & (1 << j) != 0 {
                            give_back(st, j);
                            // That acquisition was ours: not a loss.
                            if st.seq_at_release[j] != 0 {
                                st.seq_at_release[j] += 1;
                            }
                        }
                    }
                    compiler_fence(SeqCst);
                    st.released_below = upto as u32;
                    st.sync_selector();
                    let started = if timing() { sys::now_ns() } else { 0 };
                    let alone = !(0..st.depth as usize).any(|j| j != i && st.refs[j].tok == rf.tok);
                    let note = super::registry::wait_begin(st, rf.tok, rf.word_mode());
                    let waited = t.acquire_slow(rf.word_mode(), me, alone);
                    super::registry::wait_end(st, note);
                    if timing() {
                        (observer().waited)(rf.tok, sys::now_ns().saturating_sub(started));
                    }
                    match waited {
                        Waited::Acquired => st.took(i),
                        Waited::OwnExclusive => {
                            // A signal handler's shared request on a word
                            // handed to its thread's interrupted wait: the
                            // reference rides on that hold, like a
                            // recursive one.
                            st.refs[i].flags &= !R_PRIMARY;
                        }
                        Waited::Dead => events::misuse(
                            call,
                            rf.tok,
                            format_args!("token used after lwkt_token_uninit"),
                        ),
                    }
                    compiler_fence(SeqCst);
                    st.released_below = below;
                    st.sync_selector();
                    held = if st.refs[i].is_primary() { 1 << i } else { 0 };
                    if !st.refs[i].is_primary() {
                        st.seq_at_release[i] = 0;
                    }
                    continue 'again;
                }
            }
        }
        break;
    }
    for i in 0..upto {
        if words & (1 << i) == 0 || !st.refs[i].is_primary() {
            continue;
        }
        let at_release = st.seq_at_release[i];
        if r.noted & (1 << i) == 0 {
            // An interrupted release noted it and checks it: count this
            // acquisition as ours.
            if at_release != 0 {
                st.seq_at_release[i] = at_release + 1;
            }
            continue;
        }
        if at_release != 0 {
            let t = token_at(st.refs[i].tok);
            // Our own retake added one acquisition; more means another
            // thread held the token in between.
            if t.seq().load(Relaxed) != at_release.wrapping_add(1) {
                st.losses = st.losses.wrapping_add(1);
                st.refs[i].lost_at = st.losses;
                (observer().lost)(st.refs[i].tok);
            }
            st.seq_at_release[i] = 0;
        }
    }
    if timing() {
        let now = sys::now_ns();
        for i in 0..upto {
            if words & (1 << i) != 0 {
                st.acquired_ns[i] = now;
            }
        }
    }
}

/// Give back the word of primary reference `i` (still recorded: the caller
/// drops or releases it after).
pub(super) fn give_back(st: &mut ThreadState, i: usize) {
    let rf = st.refs[i];
    let t = token_at(rf.tok);
    if timing() {
        let shared = rf.word_mode() == Mode::Shared;
        tell_checker(|o| (o.word_released)(rf.tok, shared));
    }
    match rf.word_mode() {
        Mode::Exclusive => t.release_exclusive(st.me()),
        Mode::Shared => {
            // Unnoted first: a handler that lands before the count is
            // gone leaves it alone rather than give it back twice.
            st.refs[i].flags &= !R_COUNTED;
            compiler_fence(SeqCst);
            t.release_shared();
        }
    }
}
