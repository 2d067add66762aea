//! Taking and giving back a reference: the exclusive fast paths that the
//! exported functions inline, and the general paths.

use core::sync::atomic::{compiler_fence, Ordering::*};

use super::block::*;
use super::events::{self, *};
use super::refs::*;
use super::tls::*;
use super::word::{token_at, Busy, Mode, Token};

/// The calling thread's state when the fast paths may run: the thread has
/// used tokens before, and neither statistics nor a checker want the
/// general paths (the one flag test, `timing`).
#[inline(always)]
fn fast_state<'a>() -> Option<&'a mut ThreadState> {
    // SAFETY: this thread's own static TLS pointer.
    let p = unsafe { *state_slot() };
    if p.is_null() || timing() {
        return None;
    }
    // SAFETY: non-null only once it points at this thread's state, which
    // only this thread (and its signal handlers, on its own stack) uses.
    Some(unsafe { &mut *p })
}

/// A fast path's new reference on top of the stack, recorded (and the
/// selector set) before its word is taken.
///
/// # Safety
/// `d` is the thread's depth and below `MAX_REFS`.
#[inline(always)]
unsafe fn record_top(st: &mut ThreadState, d: usize, tok: *const Token, flags: u32) {
    // SAFETY: the caller's promise.
    unsafe { st.fill_top(d, tok, flags) };
    st.sync_selector_at(d as u32 + 1);
    compiler_fence(SeqCst);
}

/// `lwkt_gettoken`'s common case, with nothing to call out of line (so the
/// exported function needs no stack frame): a thread that has used tokens
/// before takes a free token exclusively, with room on its stack and
/// nothing to count. False: take the general path (`get`).
#[inline(always)]
pub fn get_exclusive_fast(tok: *const Token) -> bool {
    let Some(st) = fast_state() else {
        return false;
    };
    let d = st.depth as usize;
    if d >= MAX_REFS {
        return false;
    }
    // The reference first, then the word (SPEC section 7): a signal
    // handler that lands in between finds a reference whose word is not
    // this thread's yet, and leaves it alone.
    // SAFETY: d < MAX_REFS, checked above.
    unsafe { record_top(st, d, tok, R_PRIMARY | R_EXCL | R_WORD_EXCL) };
    let t = token_at(tok);
    if t.word()
        .compare_exchange(0, st.tid as u64, Acquire, Relaxed)
        .is_err()
    {
        st.pop(d);
        return false;
    }
    t.seq()
        .store(t.seq().load(Relaxed).wrapping_add(1), Relaxed);
    true
}

/// `lwkt_reltoken`'s common case (see `get_exclusive_fast`): the most
/// recent reference is the thread's only one to a token it holds
/// exclusively, and nobody waits for it. False: take the general path
/// (`rel`).
#[inline(always)]
pub fn rel_exclusive_fast(tok: *const Token) -> bool {
    let Some(st) = fast_state() else {
        return false;
    };
    let d = st.depth as usize;
    if d == 0 || d > MAX_REFS || d as u32 <= st.released_below {
        return false;
    }
    let top = st.refs[d - 1];
    const EXCL_PRIMARY: u32 = R_PRIMARY | R_WORD_EXCL;
    if top.tok != tok || top.flags & EXCL_PRIMARY != EXCL_PRIMARY {
        return false;
    }
    let t = token_at(tok);
    // The word first, then the reference (SPEC section 7).
    let Some(wake) = t.release_exclusive_quick() else {
        return false;
    };
    st.pop(d - 1);
    if wake {
        t.wake_waiters();
    }
    true
}

/// `lwkt_gettoken_shared`'s common case (see `get_exclusive_fast`): a
/// thread with no reference to the token yet starts or joins a shared hold
/// of this process that no exclusive waiter has reserved. False: take the
/// general path (`get`), which also handles recursion.
#[inline(always)]
pub fn get_shared_fast(tok: *const Token) -> bool {
    let Some(st) = fast_state() else {
        return false;
    };
    let d = st.depth as usize;
    if d >= MAX_REFS {
        return false;
    }
    // Any reference to the token already (recursion, a hold of its own,
    // a step a signal handler interrupted): the general path decides.
    if st.refs[..d].iter().any(|r| r.tok == tok) {
        return false;
    }
    // The reference first, then the word (SPEC section 7); `took` notes
    // the count only once it is in the word.
    // SAFETY: d < MAX_REFS, checked above.
    unsafe { record_top(st, d, tok, R_PRIMARY) };
    if token_at(tok).try_acquire_shared(st.tid).is_err() {
        st.pop(d);
        return false;
    }
    st.took(d);
    true
}

/// `lwkt_gettoken` / `lwkt_gettoken_shared`.
#[inline(never)]
pub fn get(call: &'static str, tok: *const Token, mode: Mode) {
    let st = state();
    if mode == Mode::Shared && st.holds_word_of(tok) {
        // Shared on the thread's own hold: a recursive reference. (Taking
        // the word again would give the thread two primaries, two counts.)
        return st.push(call, tok, 0);
    }
    if let Err(busy) = st.take_new(call, tok, mode) {
        if !take_recursive(st, call, tok, mode, busy) {
            wait_for(st, call, tok, mode);
        }
    }
}

/// `lwkt_trytoken`: like `get`, but fails instead of waiting, and never
/// releases the thread's other tokens.
pub fn try_get(call: &'static str, tok: *const Token, mode: Mode) -> bool {
    let st = state();
    if mode == Mode::Shared && st.holds_word_of(tok) {
        st.push(call, tok, 0);
        return true;
    }
    match st.take_new(call, tok, mode) {
        Ok(()) => true,
        Err(busy) => take_recursive(st, call, tok, mode, busy),
    }
}

pub(super) fn primary_flags(mode: Mode) -> u32 {
    match mode {
        Mode::Exclusive => R_PRIMARY | R_EXCL | R_WORD_EXCL,
        Mode::Shared => R_PRIMARY,
    }
}

/// The word was not free. If the thread itself holds the token, push a
/// recursive reference (or report the misuse) and return true; false when
/// the caller must wait for another thread.
#[cold]
pub(super) fn take_recursive(
    st: &mut ThreadState,
    call: &'static str,
    tok: *const Token,
    mode: Mode,
    busy: Busy,
) -> bool {
    let w = token_at(tok).word().load(Relaxed);
    if crate::token::is_dead(w) {
        events::misuse(
            call,
            tok,
            format_args!("token used after lwkt_token_uninit"),
        );
    }
    if !token_at(tok).looks_initialised() {
        events::misuse(
            call,
            tok,
            format_args!("not an initialised token (lock word {w:#x})"),
        );
    }
    let excl = if mode == Mode::Exclusive { R_EXCL } else { 0 };
    match busy {
        Busy::SelfExclusive => {
            // The word is this thread's (only it stores its id there), and
            // stays so while this call runs: whether a live reference owns
            // it, or an interrupted acquire, retake or wait that a signal
            // handler (this call) will return to.
            st.push(call, tok, excl);
            true
        }
        Busy::Shared
            if mode == Mode::Exclusive
                && (st.has_shared_primary(tok) || st.has_live_shared_request(tok)) =>
        {
            exclusive_on_own_shared(st, call, tok)
        }
        Busy::Other if mode == Mode::Exclusive && st.has_shared_primary(tok) => {
            // A signal handler whose thread takes or waits for it shared.
            exclusive_on_own_shared(st, call, tok)
        }
        Busy::Shared | Busy::Other
            if mode == Mode::Shared && st.has_unowned_primary(tok, usize::MAX) =>
        {
            // A signal handler whose thread may hold a count of this word
            // that it has not noted yet, or has reserved it for its own
            // exclusive wait: waiting would never end. Join the shared
            // hold instead; if the word is neither shared nor reserved,
            // the thread holds no count of it and may wait like anybody.
            let i = st.record(call, tok, R_PRIMARY);
            if token_at(tok).join_shared() {
                st.took(i);
                if timing() {
                    st.on_acquire(i, tok, R_PRIMARY);
                }
                return true;
            }
            st.pop(i);
            false
        }
        _ => false,
    }
}

/// SPEC S5: exclusive on the thread's own shared hold can never succeed.
#[cold]
pub(super) fn exclusive_on_own_shared(
    st: &ThreadState,
    call: &'static str,
    tok: *const Token,
) -> ! {
    if debug() {
        warn_shared_elsewhere(st, tok);
    }
    events::misuse(
        call,
        tok,
        format_args!("exclusive request on a token the thread holds shared can never succeed"),
    )
}

/// `LWKT_DEBUG`: an exclusive request meets the thread's own shared hold,
/// taken in another frame: say where.
#[cold]
pub(super) fn warn_shared_elsewhere(st: &ThreadState, tok: *const Token) {
    if let Some(i) = (0..st.depth as usize).find(|&i| st.refs[i].tok == tok) {
        events::warn(format_args!(
            "{} requested exclusively by {}, which holds it shared, taken at {}",
            Desc(tok),
            ThreadName,
            CodeAddr(st.taken_at[i])
        ));
    }
}

/// Contention (SPEC S4): release everything, wait, and retake all with the
/// new reference on top.
#[cold]
pub(super) fn wait_for(st: &mut ThreadState, call: &'static str, tok: *const Token, mode: Mode) {
    let released = release_all(call);
    let flags = primary_flags(mode);
    let i = st.record(call, tok, flags);
    if timing() {
        st.on_acquire(i, tok, flags);
    }
    // Never held: nothing to compare when it is taken.
    st.seq_at_release[i] = 0;
    // The new reference is not held yet: it counts among the released.
    st.released_below = st.depth;
    st.sync_selector();
    retake(
        Released {
            below: released.below,
            upto: st.depth,
            words: released.words | 1 << i,
            noted: released.noted,
        },
        call,
    );
}

/// `lwkt_reltoken`: release the most recent reference, which must be `tok`.
#[inline(never)]
pub fn rel(call: &'static str, tok: *const Token) {
    let st = state();
    let d = st.depth as usize;
    if d == 0 || d > MAX_REFS || d as u32 <= st.released_below || st.refs[d - 1].tok != tok {
        return rel_unusual(st, call, tok);
    }
    let top = st.refs[d - 1];
    const EXCL_PRIMARY: u32 = R_PRIMARY | R_WORD_EXCL;
    if top.flags & EXCL_PRIMARY == EXCL_PRIMARY && !timing() {
        // The word first, then the reference (SPEC section 7).
        token_at(tok).release_exclusive(st.me());
        st.pop(d - 1);
    } else {
        rel_other(st, d - 1, top);
    }
}

/// `rel` of a shared or recursive reference, or with statistics on.
#[cold]
#[inline(never)]
pub(super) fn rel_other(st: &mut ThreadState, i: usize, top: TokRef) {
    if top.is_primary() {
        if timing() {
            st.on_word_release(i);
        }
        give_back(st, i);
        st.pop(i);
    } else {
        st.pop(i);
        if top.is_excl() {
            downgrade_if_last_exclusive(st, top.tok);
        }
    }
}

/// `rel` that is a misuse, or of a reference already released (a
/// cancellation cleanup handler unwinding out of a blocking call).
#[cold]
#[inline(never)]
pub(super) fn rel_unusual(st: &mut ThreadState, call: &'static str, tok: *const Token) {
    let d = st.depth as usize;
    if d == 0 {
        events::misuse(call, tok, format_args!("the thread holds no token"));
    }
    let top = st.refs[d - 1];
    if top.tok != tok {
        events::misuse(
            call,
            tok,
            format_args!(
                "not the thread's most recent reference (that is {})",
                Desc(top.tok)
            ),
        );
    }
    // Released already: nothing to give back (and no loss to check).
    st.seq_at_release[d - 1] = 0;
    st.released_below = d as u32 - 1;
    st.pop(d - 1);
}

/// A recursive exclusive reference went away: if only shared references
/// to the token remain (possible after `lwkt_token_swap`), the word becomes
/// shared.
#[cold]
pub(super) fn downgrade_if_last_exclusive(st: &mut ThreadState, tok: *const Token) {
    let lo = st.released_below as usize;
    let d = st.depth as usize;
    if st.refs[lo..d].iter().any(|r| r.tok == tok && r.is_excl()) {
        return;
    }
    if let Some(p) = st.find_live(tok) {
        if st.refs[p].word_mode() == Mode::Exclusive && st.holds_word(p) {
            // The word first: until the flags follow, a signal handler
            // sees an exclusive reference whose word is not its thread's,
            // and leaves it alone.
            if timing() {
                tell_checker(|o| (o.word_released)(tok, false));
            }
            token_at(tok).downgrade();
            if timing() {
                tell_checker(|o| (o.word_taken)(tok, true));
            }
            compiler_fence(SeqCst);
            st.refs[p].flags = (st.refs[p].flags & !R_WORD_EXCL) | R_COUNTED;
        }
    }
}
