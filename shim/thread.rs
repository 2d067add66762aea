//! Per-thread state: the stack of token references, release on block and
//! retake, thread exit and fork.
//!
//! Invariants:
//!
//! * `refs[0..depth]` are the thread's references in acquisition order.
//!   The lowest reference to a token is its *primary*: only it owns the
//!   token's word; the others are recursion and touch no shared memory.
//! * A reference is recorded before its word is taken and dropped only
//!   after its word is given back (SPEC section 7, as DragonFly advances
//!   `td_toks_stop` before it acquires). So a signal handler, which runs on
//!   the same stack between any two steps of its thread, may find a
//!   primary whose word is not (or no longer) owned, never an owned word
//!   without a reference. Whether a primary owns its word is read from the
//!   word for an exclusive hold (only this thread stores its id there) and
//!   from `R_COUNTED` for a shared one (`holds_word`).
//! * `refs[0..released_below]` are released: the thread is blocked in a hook
//!   (or waiting for a token). A signal handler that runs meanwhile pushes
//!   above them and pops before it returns.
//! * A signal handler leaves every word of the references below its own as
//!   it found them: when it blocks it gives back what its thread owns (any
//!   word, judged one by one) and takes exactly that back.
//! * Retaking is all-or-nothing: when one word cannot be had, the ones taken
//!   so far are released again before waiting, so a waiting thread never
//!   holds a token (SPEC S4) and tokens cannot deadlock.
//! * The state is mapped for the thread the first time it uses tokens and
//!   reached through a static-TLS pointer; hooks only read the TLS selector
//!   byte, so they allocate nothing and register nothing. Thread exit is
//!   caught by a pthread key destructor, registered at that first use.

use core::fmt::{self, Write};
use core::ptr;
use core::sync::atomic::{compiler_fence, AtomicUsize, Ordering::*};

use crate::diag::{self, Desc};
use crate::sys;
use crate::token::{Busy, Mode, Token, Waited, PROCESS_ID};
use crate::{config, stats};

/// Per-thread reference limit (SPEC S10: at least 64).
pub const MAX_REFS: usize = 64;

const R_EXCL: u32 = 1; // this reference asked for an exclusive hold
const R_PRIMARY: u32 = 2; // this reference owns the word
const R_WORD_EXCL: u32 = 4; // (primary only) the word is held exclusively
/// Set in every reference; a slot being filled or emptied has flags 0 (see
/// `fill_top`), which no query counts.
const R_REF: u32 = 16;
/// (shared primary only) its count is in the word: set after the
/// compare-and-swap that adds it, cleared before the one that removes it.
/// A handler that lands in between sees it unset and leaves that count
/// alone: it may keep a count while it blocks, never give back one that is
/// not its thread's.
const R_COUNTED: u32 = 8;

#[derive(Clone, Copy)]
#[repr(C)]
pub struct TokRef {
    pub tok: *const Token,
    flags: u32,
    /// The thread's loss counter when this token was last found taken by
    /// another thread while released (SPEC S8).
    lost_at: u32,
}

impl TokRef {
    const EMPTY: TokRef = TokRef {
        tok: ptr::null(),
        flags: 0,
        lost_at: 0,
    };
    fn is_ref(&self) -> bool {
        self.flags & R_REF != 0
    }
    fn is_excl(&self) -> bool {
        self.flags & R_EXCL != 0
    }
    fn is_primary(&self) -> bool {
        self.flags & R_PRIMARY != 0
    }
    fn word_mode(&self) -> Mode {
        if self.flags & R_WORD_EXCL != 0 {
            Mode::Exclusive
        } else {
            Mode::Shared
        }
    }
}

pub struct ThreadState {
    depth: u32,
    released_below: u32,
    /// Kernel thread id; 0 until the thread first takes a token.
    tid: u32,
    /// Counts tokens found taken by others while released (SPEC S8).
    losses: u32,
    refs: [TokRef; MAX_REFS],
    /// For each released primary reference: the token's `t_seq` when it was
    /// released, plus our own acquisitions since (0: not to be checked).
    seq_at_release: [u64; MAX_REFS],
    /// When each primary reference's word was taken (statistics only).
    acquired_ns: [u64; MAX_REFS],
    /// `LWKT_CHAOS`: this thread's random sequence (0 until first used).
    chaos_rng: u64,
    /// `LWKT_DEBUG`: where the program took each reference.
    taken_at: [usize; MAX_REFS],
    /// Syscall User Dispatch is on for this thread (its switch is the
    /// `lwkt_thread_selector` byte).
    dispatch: bool,
    /// The token whose word this thread's release is handing to a
    /// registered waiter right now (see `Token::finish_handoff`), or null.
    handing_off: *const Token,
}

impl ThreadState {
    const NEW: ThreadState = ThreadState {
        depth: 0,
        released_below: 0,
        tid: 0,
        losses: 0,
        refs: [TokRef::EMPTY; MAX_REFS],
        seq_at_release: [0; MAX_REFS],
        acquired_ns: [0; MAX_REFS],
        chaos_rng: 0,
        taken_at: [0; MAX_REFS],
        dispatch: false,
        handing_off: ptr::null(),
    };
}

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
fn selector_slot() -> *mut u8 {
    let slot: *mut u8;
    // SAFETY: reads the GOT entry of a TLS symbol and the thread pointer.
    unsafe {
        core::arch::asm!(
            "mov {s}, qword ptr [rip + lwkt_thread_selector@GOTTPOFF]",
            "add {s}, qword ptr fs:[0]",
            s = out(reg) slot,
            options(pure, readonly, nostack),
        );
    }
    slot
}

/// Address of the calling thread's `lwkt_thread_state_ptr`.
#[inline(always)]
fn state_slot() -> *mut *mut ThreadState {
    let slot: *mut *mut ThreadState;
    // SAFETY: reads the GOT entry of a TLS symbol and the thread pointer.
    unsafe {
        core::arch::asm!(
            "mov {s}, qword ptr [rip + lwkt_thread_state_ptr@GOTTPOFF]",
            "add {s}, qword ptr fs:[0]",
            s = out(reg) slot,
            options(pure, readonly, nostack),
        );
    }
    slot
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
fn state_if_used() -> Option<&'static mut ThreadState> {
    let p = unsafe { *state_slot() };
    // SAFETY: non-null only once it points at this thread's STATE.
    (!p.is_null()).then(|| unsafe { &mut *p })
}

/// Has the calling thread ever used tokens? (A fork child's statistics
/// count the forking thread.)
pub fn used_tokens() -> bool {
    state_if_used().is_some()
}

#[cold]
#[inline(never)]
unsafe fn state_first_use(slot: *mut *mut ThreadState) -> &'static mut ThreadState {
    // Mapped, not a thread_local!: a TLS block this size would have to be
    // static TLS (the fast path reads it initial-exec), and dlopen() cannot
    // place that much. Unmapped at thread exit.
    let size = core::mem::size_of::<ThreadState>();
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as usize;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as usize;
    let m = sys::syscall6(libc::SYS_mmap, 0, size, prot, flags, usize::MAX, 0);
    if m < 0 {
        diag::misuse_no_token(
            "lwkt",
            format_args!("no memory for this thread's token state"),
        );
    }
    let p = m as *mut ThreadState;
    p.write(ThreadState::NEW);
    (*p).tid = sys::gettid();
    let key = EXIT_KEY.load(Relaxed);
    if key != usize::MAX {
        // Any non-null value makes the destructor run at thread exit.
        libc::pthread_setspecific(
            key as libc::pthread_key_t,
            ptr::NonNull::<libc::c_void>::dangling().as_ptr(),
        );
    }
    if config::stats_on() {
        stats::thread_started();
    }
    (*p).dispatch = dispatch_on(selector_slot());
    if !(*p).dispatch {
        say_catchall_unavailable();
    }
    *slot = p;
    &mut *p
}

/// Once a process, when a thread first uses tokens while the catch-all is
/// unavailable (valgrind, a kernel without Syscall User Dispatch; not when
/// LWKT_CATCHALL=0 turned it off): the blocking calls that libc makes
/// inside itself then keep the caller's tokens (SPEC section 4), and the
/// program should know.
#[cfg(not(test))]
#[cold]
fn say_catchall_unavailable() {
    static SAID: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    if !config::CATCHALL_WANTED.load(Relaxed) || crate::catchall::on() || SAID.swap(true, Relaxed) {
        return;
    }
    diag::warn(format_args!(
        "the catch-all is unavailable ({}): a thread that blocks inside libc \
         (stdio, sem_wait, system, ...) keeps its tokens; only the hooked \
         functions release them",
        crate::catchall::why_off()
    ));
}
#[cfg(test)]
fn say_catchall_unavailable() {}

/// Does the calling thread hold at least one token right now? The only cost
/// a hook adds for a thread without tokens: one thread-local byte load.
#[inline(always)]
pub fn holds_tokens() -> bool {
    // SAFETY: this thread's own static TLS byte.
    unsafe { core::ptr::read_volatile(selector_slot()) != SELECT_ALLOW }
}

const SELECT_ALLOW: u8 = 0;
const SELECT_BLOCK: u8 = 1;

#[cfg(not(test))]
fn dispatch_on(selector: *mut u8) -> bool {
    crate::catchall::enable_for_thread(selector)
}
#[cfg(test)]
fn dispatch_on(_: *mut u8) -> bool {
    false
}

#[cfg(not(test))]
fn dispatch_off() {
    crate::catchall::disable_for_thread()
}
#[cfg(test)]
fn dispatch_off() {}

impl ThreadState {
    /// Point the selector at what the thread holds now: BLOCK while it
    /// holds a token. A plain store; the kernel reads it at every system
    /// call when dispatch is on, and the hooks read it as "holds tokens".
    #[inline(always)]
    fn sync_selector(&mut self) {
        self.sync_selector_at(self.depth);
    }

    /// `sync_selector` when the caller knows `depth`.
    #[inline(always)]
    fn sync_selector_at(&mut self, depth: u32) {
        let v = if depth > self.released_below {
            SELECT_BLOCK
        } else {
            SELECT_ALLOW
        };
        unsafe { core::ptr::write_volatile(selector_slot(), v) };
    }
}

/// pthread key whose destructor releases a dead thread's tokens.
static EXIT_KEY: AtomicUsize = AtomicUsize::new(usize::MAX);

pub fn init_process() {
    let mut key: libc::pthread_key_t = 0;
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) } == 0 {
        EXIT_KEY.store(key as usize, Relaxed);
    }
    unsafe { libc::pthread_atfork(None, None, Some(fork_child)) };
}

impl ThreadState {
    /// Statistics, hold warnings and debug: note when and where the
    /// reference was taken.
    #[cold]
    fn on_acquire(&mut self, i: usize, tok: *const Token, flags: u32) {
        if config::debug() {
            self.taken_at[i] = diag::caller_outside_library();
        }
        if flags & R_PRIMARY != 0 {
            self.acquired_ns[i] = sys::now_ns();
        }
        if config::stats_on() {
            stats::acquired(tok, flags & R_EXCL != 0, self.depth);
        }
    }

    /// Statistics and hold warnings: the word of reference `i` is released.
    #[cold]
    fn on_word_release(&mut self, i: usize) {
        let tok = self.refs[i].tok;
        if self.acquired_ns[i] == 0 {
            // Taken before counting started (another library's constructor
            // ran before ours): no hold time to report.
            return;
        }
        let held = sys::now_ns().saturating_sub(self.acquired_ns[i]);
        stats::held(tok, held);
        let limit_ms = config::HOLD_WARN_MS.load(Relaxed) as u64;
        if limit_ms != 0 && held > limit_ms * 1_000_000 {
            diag::warn(format_args!(
                "{} held {} ms without blocking by {} (LWKT_DEBUG=hold_ms={limit_ms})",
                Desc(tok),
                held / 1_000_000,
                diag::ThreadName
            ));
        }
    }

    /// The thread's id (set when the state was first used).
    #[inline(always)]
    fn me(&self) -> u32 {
        self.tid
    }

    fn live(&self) -> &[TokRef] {
        &self.refs[self.released_below as usize..self.depth as usize]
    }

    /// Index of the live primary reference to `tok`, if the thread has one.
    fn find_live(&self, tok: *const Token) -> Option<usize> {
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
    fn holds_word(&self, i: usize) -> bool {
        let r = &self.refs[i];
        r.is_primary()
            && match r.word_mode() {
                Mode::Exclusive => unsafe { &*r.tok }.exclusive_holder() == self.me(),
                Mode::Shared => r.flags & R_COUNTED != 0,
            }
    }

    /// Does the thread own `tok`'s word (exclusively, or a shared count
    /// through a reference that noted it)?
    fn holds_word_of(&self, tok: *const Token) -> bool {
        if unsafe { &*tok }.exclusive_holder() == self.me() {
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
    fn has_unowned_primary(&self, tok: *const Token, except: usize) -> bool {
        (0..self.depth as usize).any(|i| {
            let r = &self.refs[i];
            i != except && r.tok == tok && r.is_primary() && !self.holds_word(i)
        })
    }

    /// Has the thread a shared primary reference to `tok`: does it hold,
    /// take, give back or wait for a shared count of it (maybe in code that
    /// a signal handler interrupted)? An exclusive wait could then be a
    /// wait for the thread's own count.
    fn has_shared_primary(&self, tok: *const Token) -> bool {
        self.refs[..self.depth as usize]
            .iter()
            .any(|r| r.tok == tok && r.is_primary() && r.word_mode() == Mode::Shared)
    }

    /// Has the thread a live shared request for `tok`?
    fn has_live_shared_request(&self, tok: *const Token) -> bool {
        self.live()
            .iter()
            .any(|r| r.tok == tok && r.is_ref() && !r.is_excl())
    }

    /// Record a reference on top of the stack, before its word is taken (a
    /// signal handler that runs after this sees it; `holds_word` tells it
    /// whether the word is taken yet). Returns its index.
    #[inline(always)]
    fn record(&mut self, call: &'static str, tok: *const Token, flags: u32) -> usize {
        let d = self.depth as usize;
        if d == MAX_REFS {
            diag::misuse(
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
    #[inline(always)]
    unsafe fn fill_top(&mut self, d: usize, tok: *const Token, flags: u32) {
        self.depth = d as u32 + 1;
        compiler_fence(SeqCst);
        let slot = self.refs.get_unchecked_mut(d);
        slot.tok = tok;
        compiler_fence(SeqCst);
        slot.lost_at = 0;
        slot.flags = flags | R_REF;
        compiler_fence(SeqCst);
    }

    /// Reference `i`'s word was just taken.
    #[inline(always)]
    fn took(&mut self, i: usize) {
        compiler_fence(SeqCst);
        if self.refs[i].flags & R_WORD_EXCL == 0 {
            self.refs[i].flags |= R_COUNTED;
        }
    }

    /// A recursive reference (or one riding on a word the thread owns):
    /// nothing to take.
    #[inline(always)]
    fn push(&mut self, call: &'static str, tok: *const Token, flags: u32) {
        let i = self.record(call, tok, flags);
        if config::timing() {
            self.on_acquire(i, tok, flags);
        }
    }

    /// Record a primary reference, then take its word (SPEC section 7: the
    /// reference is recorded before the word is taken). On failure the
    /// reference is dropped again and the caller learns what it found.
    fn take_new(&mut self, call: &'static str, tok: *const Token, mode: Mode) -> Result<(), Busy> {
        let flags = primary_flags(mode);
        let i = self.record(call, tok, flags);
        match unsafe { &*tok }.try_acquire(mode, self.me()) {
            Ok(()) => {
                self.took(i);
                if config::timing() {
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
    fn pop(&mut self, i: usize) {
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

/// `lwkt_gettoken`'s common case, with nothing to call out of line (so the
/// exported function needs no stack frame): a thread that has used tokens
/// before takes a free token exclusively, with room on its stack and
/// nothing to count. False: take the general path (`get`).
#[inline(always)]
pub fn get_exclusive_fast(tok: *const Token) -> bool {
    let p = unsafe { *state_slot() };
    if p.is_null() || config::timing() {
        return false;
    }
    // SAFETY: non-null only once it points at this thread's STATE.
    let st = unsafe { &mut *p };
    let d = st.depth as usize;
    if d >= MAX_REFS {
        return false;
    }
    // The reference first, then the word (SPEC section 7): a signal
    // handler that lands in between finds a reference whose word is not
    // this thread's yet, and leaves it alone.
    // SAFETY: d < MAX_REFS, checked above.
    unsafe { st.fill_top(d, tok, R_PRIMARY | R_EXCL | R_WORD_EXCL) };
    st.sync_selector_at(d as u32 + 1);
    compiler_fence(SeqCst);
    let t = unsafe { &*tok };
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
    let p = unsafe { *state_slot() };
    if p.is_null() || config::timing() {
        return false;
    }
    let st = unsafe { &mut *p };
    let d = st.depth as usize;
    if d == 0 || d > MAX_REFS || d as u32 <= st.released_below {
        return false;
    }
    let top = st.refs[d - 1];
    const EXCL_PRIMARY: u32 = R_PRIMARY | R_WORD_EXCL;
    if top.tok != tok || top.flags & EXCL_PRIMARY != EXCL_PRIMARY {
        return false;
    }
    let t = unsafe { &*tok };
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

fn primary_flags(mode: Mode) -> u32 {
    match mode {
        Mode::Exclusive => R_PRIMARY | R_EXCL | R_WORD_EXCL,
        Mode::Shared => R_PRIMARY,
    }
}

/// The word was not free. If the thread itself holds the token, push a
/// recursive reference (or report the misuse) and return true; false when
/// the caller must wait for another thread.
#[cold]
fn take_recursive(
    st: &mut ThreadState,
    call: &'static str,
    tok: *const Token,
    mode: Mode,
    busy: Busy,
) -> bool {
    let w = unsafe { &*tok }.word().load(Relaxed);
    if crate::token::is_dead(w) {
        diag::misuse(
            call,
            tok,
            format_args!("token used after lwkt_token_uninit"),
        );
    }
    if !unsafe { &*tok }.looks_initialised() {
        diag::misuse(
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
            if unsafe { &*tok }.join_shared() {
                st.took(i);
                if config::timing() {
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
fn exclusive_on_own_shared(st: &ThreadState, call: &'static str, tok: *const Token) -> ! {
    if config::debug() {
        warn_shared_elsewhere(st, tok);
    }
    diag::misuse(
        call,
        tok,
        format_args!("exclusive request on a token the thread holds shared can never succeed"),
    )
}

/// `LWKT_DEBUG`: an exclusive request meets the thread's own shared hold,
/// taken in another frame: say where.
#[cold]
fn warn_shared_elsewhere(st: &ThreadState, tok: *const Token) {
    if let Some(i) = (0..st.depth as usize).find(|&i| st.refs[i].tok == tok) {
        diag::warn(format_args!(
            "{} requested exclusively by {}, which holds it shared, taken at {}",
            Desc(tok),
            diag::ThreadName,
            diag::CodeAddr(st.taken_at[i])
        ));
    }
}

/// Contention (SPEC S4): release everything, wait, and retake all with the
/// new reference on top.
#[cold]
fn wait_for(st: &mut ThreadState, call: &'static str, tok: *const Token, mode: Mode) {
    let released = release_all(call);
    let flags = primary_flags(mode);
    let i = st.record(call, tok, flags);
    if config::timing() {
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
    if top.flags & EXCL_PRIMARY == EXCL_PRIMARY && !config::timing() {
        // The word first, then the reference (SPEC section 7).
        unsafe { &*tok }.release_exclusive(st.me());
        st.pop(d - 1);
    } else {
        rel_other(st, d - 1, top);
    }
}

/// `rel` of a shared or recursive reference, or with statistics on.
#[cold]
#[inline(never)]
fn rel_other(st: &mut ThreadState, i: usize, top: TokRef) {
    if top.is_primary() {
        if config::timing() {
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
fn rel_unusual(st: &mut ThreadState, call: &'static str, tok: *const Token) {
    let d = st.depth as usize;
    if d == 0 {
        diag::misuse(call, tok, format_args!("the thread holds no token"));
    }
    let top = st.refs[d - 1];
    if top.tok != tok {
        diag::misuse(
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
fn downgrade_if_last_exclusive(st: &mut ThreadState, tok: *const Token) {
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
            unsafe { &*tok }.downgrade();
            compiler_fence(SeqCst);
            st.refs[p].flags = (st.refs[p].flags & !R_WORD_EXCL) | R_COUNTED;
        }
    }
}

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

/// Threads that have used tokens, in order: seeds each thread's chaos.
static THREAD_ORDINAL: AtomicUsize = AtomicUsize::new(0);

/// `LWKT_CHAOS`: give every token away and let other threads run, then
/// take them back, as if the hooked call had blocked. How long the thread
/// stands back comes from the seed, so a failing run can be replayed.
#[cold]
pub fn chaos_cycle() {
    let st = state();
    if st.chaos_rng == 0 {
        let n = THREAD_ORDINAL.fetch_add(1, Relaxed) as u64 + 1;
        st.chaos_rng =
            (config::CHAOS_SEED.load(Relaxed) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    }
    // xorshift64
    let mut x = st.chaos_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st.chaos_rng = x;
    let tokens = release_all("chaos");
    for _ in 0..1 + x % 4 {
        unsafe { sys::syscall3(libc::SYS_sched_yield, 0, 0, 0) };
    }
    retake(tokens, "chaos");
}

/// `lwkt_token_swap`: exchange the two most recent references.
pub fn swap() {
    let st = state();
    let d = st.depth as usize;
    if d < 2 || d - 2 < st.released_below as usize {
        diag::misuse_no_token(
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
    st.find_live(tok).is_some() && unsafe { &*tok }.exclusive_holder() == st.me()
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

/// What `release_all` gave back; `retake` takes exactly that back.
#[must_use]
pub struct Released {
    /// `released_below` before, restored by `retake`.
    below: u32,
    upto: u32,
    /// The references whose words were given back (bit i: `refs[i]`).
    words: u64,
    /// Of those, the ones whose `seq_at_release` this release noted (the
    /// others carry a note of an interrupted release, checked by that one).
    noted: u64,
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
                let t = unsafe { &*st.refs[i].tok };
                if st.handing_off == st.refs[i].tok {
                    t.finish_handoff();
                }
                t.wake_everybody();
            }
            continue;
        }
        if st.seq_at_release[i] == 0 {
            st.seq_at_release[i] = unsafe { &*st.refs[i].tok }.seq().load(Relaxed);
            noted |= 1 << i;
        }
        if config::timing() {
            st.on_word_release(i);
            stats::released_on_block(st.refs[i].tok, why);
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
            let t = unsafe { &*rf.tok };
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
                    let started = if config::timing() { sys::now_ns() } else { 0 };
                    let waited = t.acquire_slow(rf.word_mode(), me);
                    if config::stats_on() {
                        stats::waited(rf.tok, sys::now_ns().saturating_sub(started));
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
                        Waited::Dead => diag::misuse(
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
            let t = unsafe { &*st.refs[i].tok };
            // Our own retake added one acquisition; more means another
            // thread held the token in between.
            if t.seq().load(Relaxed) != at_release.wrapping_add(1) {
                st.losses = st.losses.wrapping_add(1);
                st.refs[i].lost_at = st.losses;
                if config::stats_on() {
                    stats::lost(st.refs[i].tok);
                }
            }
            st.seq_at_release[i] = 0;
        }
    }
    if config::timing() {
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
fn give_back(st: &mut ThreadState, i: usize) {
    let rf = st.refs[i];
    let t = unsafe { &*rf.tok };
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

/// pthread key destructor: the thread is exiting. Release what it still
/// holds and say so (SPEC S9).
extern "C" fn thread_exit(_value: *mut libc::c_void) {
    let Some(st) = state_if_used() else { return };
    release_at_exit(st);
    if st.dispatch {
        // The selector lives in this thread's memory, which is about to be
        // reused: the kernel must stop reading it.
        dispatch_off();
        st.dispatch = false;
    }
    // Later destructors that use tokens get a fresh state (and leak it).
    unsafe {
        *state_slot() = ptr::null_mut();
        let st: *mut ThreadState = st;
        sys::syscall3(
            libc::SYS_munmap,
            st as usize,
            core::mem::size_of::<ThreadState>(),
            0,
        );
    }
}

fn release_at_exit(st: &mut ThreadState) {
    if st.depth == 0 {
        return;
    }
    let mut line = diag::Line::new();
    let _ = write!(
        line,
        "lwkt: warning: {} exited holding {} token reference(s)",
        diag::ThreadName,
        st.depth
    );
    let _ = write_held(&mut line);
    let _ = line.write_str("; released them");
    line.emit();
    for i in (0..st.depth as usize).rev() {
        if st.holds_word(i) {
            give_back(st, i);
        }
    }
    st.depth = 0;
    st.released_below = 0;
    st.sync_selector();
}

/// In a fork child, on the forking thread: it keeps its tokens under its new
/// thread id; everybody else's holds belong to threads that do not exist
/// here and are recovered by whoever needs them.
extern "C" fn fork_child() {
    let pid = sys::getpid();
    PROCESS_ID.store(pid, Relaxed);
    crate::token::FORKED.store(true, Relaxed);
    let Some(st) = state_if_used() else { return };
    // Which words are ours, judged under the parent's thread id.
    let mut owned = 0u64;
    for i in 0..st.depth as usize {
        if st.holds_word(i) {
            owned |= 1 << i;
        }
    }
    st.tid = sys::gettid();
    // Dispatch is not inherited by a child process.
    if st.dispatch {
        st.dispatch = dispatch_on(selector_slot());
    }
    for i in 0..st.depth as usize {
        if owned & (1 << i) != 0 {
            let r = st.refs[i];
            unsafe { &*r.tok }.restamp_after_fork(r.word_mode() == Mode::Exclusive, st.tid, pid);
        }
    }
}
