//! The lock word: its states and the transitions a holder makes (take,
//! release, join, downgrade, wake). Waiting for it is `wait.rs`.

use core::ffi::c_char;
use core::sync::atomic::{compiler_fence, fence, AtomicBool, AtomicU32, AtomicU64, Ordering::*};

use crate::sys;

/// `struct lwkt_token`, a serializing token. Zero-filled, it is a valid,
/// unnamed, free token; `LWKT_TOKEN_INITIALIZER(name)` names it. Its fields
/// belong to the library: use the functions below.
#[repr(C)]
pub struct Token {
    /// Ownership state (see shim/core/word.rs). Zero when free.
    pub t_word: u64,
    /// Threads preparing to sleep or asleep on this token (exclusive waiters
    /// in the low 16 bits, shared waiters in the high 16 bits).
    pub t_waiters: u32,
    /// Event counter that releasers bump to wake sleepers (futex word).
    pub t_wake: u32,
    /// A starving waiter that the next exclusive release hands the token to:
    /// its thread id, with bit 31 set when it waits for a shared hold.
    pub t_handoff: u32,
    /// Waiters that may sleep on `t_wake` (counted before they last look at
    /// the word): a release wakes only when one is counted.
    pub t_sleepers: u32,
    /// Acquisitions of the word, by any thread (lets a thread know that its
    /// token was taken while it was blocked, SPEC S8).
    pub t_seq: u64,
    /// Description used in messages and statistics, or NULL.
    pub t_desc: *const c_char,
}

pub(crate) const SHARED: u64 = 1 << 63;
pub(crate) const EXCLREQ: u64 = 1 << 62;
pub(crate) const DEAD: u64 = 1 << 61;
pub(super) const RESERVED_BITS: u64 = 0x1f << 56;
pub(super) const COUNT_SHIFT: u32 = 32;
pub(crate) const COUNT_ONE: u64 = 1 << COUNT_SHIFT;
pub(super) const COUNT_MASK: u64 = 0xff_ffff << COUNT_SHIFT;
pub(super) const ID_MASK: u64 = 0xffff_ffff;

pub(super) const EXCL_WAITER: u32 = 1;
pub(super) const SHARED_WAITER: u32 = 1 << 16;
pub(super) const HANDOFF_SHARED: u32 = 1 << 31;
/// Set on a registration by the releaser that is handing the word to it:
/// from then on the registered waiter's own deregistration fails.
pub(super) const HANDOFF_BUSY: u32 = 1 << 30;

/// A waiter asks for a direct handoff once it has lost this many races
/// for the released token and the process's "fair at" time (`FAIR_AT_NS`)
/// has passed, and in any case after LOST_RACES_LIMIT lost races (SPEC
/// S7: bounded). Barging keeps throughput up; a handoff costs a wake-up
/// and a context switch, during which nobody holds the token usefully:
/// like parking_lot's eventual fairness, handoffs come at most about once
/// per FAIR_INTERVAL_NS (a random part of it each time), not whenever
/// some waiter has waited long, which under oversubscription is always.
pub(super) const LOST_RACES_BEFORE_HANDOFF: u32 = 3;
pub(super) const LOST_RACES_LIMIT: u32 = 256;
pub(super) const FAIR_INTERVAL_NS: u64 = 1_000_000;
/// When the next handoff may be asked for (CLOCK_MONOTONIC ns), for
/// every token of the process: set at each registration to a random
/// point of the next FAIR_INTERVAL_NS.
pub(super) static FAIR_AT_NS: AtomicU64 = AtomicU64::new(0);
/// Spin this many rounds before sleeping in the kernel.
pub(super) const SPIN_ROUNDS: u32 = 200;
/// A waiter registered for a handoff sleeps on t_handoff; a release that
/// raced with its registration may have woken t_wake instead, so it looks
/// again this often.
pub(super) const REGISTERED_RECHECK_NS: u64 = 1_000_000;
/// A waiter registered for a handoff stays awake this long for it.
pub(super) const REGISTERED_SPIN_NS: u64 = 50_000;
/// A sleeping waiter re-checks that the holder still exists this often.
pub(super) const DEAD_HOLDER_RECHECK_NS: u64 = 500_000_000;

/// The process id stamped in shared words and compared with exclusive
/// holders' thread ids; reset in a fork child.
pub static PROCESS_ID: AtomicU32 = AtomicU32::new(0);
/// Set in a fork child: holders may be threads that do not exist here.
pub static FORKED: AtomicBool = AtomicBool::new(false);
/// membarrier(PRIVATE_EXPEDITED) is registered: releases need no fence.
pub(super) static MEMBARRIER: AtomicBool = AtomicBool::new(false);

pub fn init_process() {
    PROCESS_ID.store(sys::getpid(), Relaxed);
    MEMBARRIER.store(sys::membarrier_register(), Relaxed);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Exclusive,
    Shared,
}

/// How `acquire_slow` ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Waited {
    /// The caller holds the word in the mode it asked for.
    Acquired,
    /// The token was passed to `lwkt_token_uninit` (a misuse to report).
    Dead,
    /// A shared request found the word held exclusively by the calling
    /// thread: handed to a wait of this thread that a signal handler (the
    /// caller) interrupted. The caller's reference rides on that hold.
    OwnExclusive,
}

/// What a failed attempt found.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Busy {
    /// Another thread holds it (or a waiter has priority).
    Other,
    /// The calling thread holds it exclusively (recursion).
    SelfExclusive,
    /// Shared, possibly by the caller (the caller must check its own stack).
    Shared,
}

impl Token {
    /// A free token described by `desc` (NULL: unnamed), as
    /// `lwkt_token_init` leaves one and as the pool's slots start.
    pub const fn free(desc: *const c_char) -> Token {
        Token {
            t_word: 0,
            t_waiters: 0,
            t_wake: 0,
            t_handoff: 0,
            t_sleepers: 0,
            t_seq: 0,
            t_desc: desc,
        }
    }

    #[inline(always)]
    pub fn word(&self) -> &AtomicU64 {
        // SAFETY: same size and alignment; the C side never touches the
        // fields except through this library.
        unsafe { &*(&self.t_word as *const u64 as *const AtomicU64) }
    }
    #[inline(always)]
    pub(super) fn waiters(&self) -> &AtomicU32 {
        // SAFETY: as for `word`.
        unsafe { &*(&self.t_waiters as *const u32 as *const AtomicU32) }
    }
    #[inline(always)]
    pub(super) fn wake(&self) -> &AtomicU32 {
        // SAFETY: as for `word`.
        unsafe { &*(&self.t_wake as *const u32 as *const AtomicU32) }
    }
    #[inline(always)]
    pub(super) fn sleepers(&self) -> &AtomicU32 {
        // SAFETY: as for `word`.
        unsafe { &*(&self.t_sleepers as *const u32 as *const AtomicU32) }
    }
    #[inline(always)]
    pub(super) fn handoff(&self) -> &AtomicU32 {
        // SAFETY: as for `word`.
        unsafe { &*(&self.t_handoff as *const u32 as *const AtomicU32) }
    }
    #[inline(always)]
    pub fn seq(&self) -> &AtomicU64 {
        // SAFETY: as for `word`.
        unsafe { &*(&self.t_seq as *const u64 as *const AtomicU64) }
    }

    /// Is this word something a token can hold? (Uninitialised memory that
    /// is not zero-filled usually is not.)
    pub fn word_is_sane(w: u64) -> bool {
        if w & RESERVED_BITS != 0 {
            return false;
        }
        if w & SHARED != 0 {
            w & COUNT_MASK != 0
        } else {
            w == EXCLREQ || w & (COUNT_MASK | EXCLREQ) == 0
        }
    }

    /// Does this memory look like a token (zero-filled, initialised, or in
    /// use)? Memory that never was one (not zero-filled garbage) almost
    /// never passes: the word, the handoff and the sleeper count each
    /// have a narrow range of values.
    pub fn looks_initialised(&self) -> bool {
        const PID_MAX_LIMIT: u32 = 1 << 22;
        let w = self.word().load(Relaxed);
        let h = self.handoff().load(Relaxed) & !(HANDOFF_SHARED | HANDOFF_BUSY);
        self.sleepers().load(Relaxed) <= PID_MAX_LIMIT
            && Self::word_is_sane(w)
            && (w & SHARED != 0 || (w & ID_MASK) as u32 <= PID_MAX_LIMIT)
            && h <= PID_MAX_LIMIT
    }

    /// One attempt, never waiting. `me` is the caller's thread id.
    #[inline(always)]
    pub fn try_acquire(&self, mode: Mode, me: u32) -> Result<(), Busy> {
        match mode {
            Mode::Exclusive => {
                match self.word().compare_exchange(0, me as u64, Acquire, Relaxed) {
                    Ok(_) => {
                        // Only the exclusive holder writes t_seq now.
                        self.seq()
                            .store(self.seq().load(Relaxed).wrapping_add(1), Relaxed);
                        Ok(())
                    }
                    Err(EXCLREQ) => self.take_reserved(me),
                    Err(w) => Err(classify(w, me)),
                }
            }
            Mode::Shared => self.try_acquire_shared(me),
        }
    }

    /// The word is `EXCLREQ` alone: the last shared holder left while an
    /// exclusive waiter waited. Free for exclusive requests only.
    #[cold]
    pub(super) fn take_reserved(&self, me: u32) -> Result<(), Busy> {
        match self
            .word()
            .compare_exchange(EXCLREQ, me as u64, Acquire, Relaxed)
        {
            Ok(_) => {
                self.seq().fetch_add(1, Relaxed);
                Ok(())
            }
            Err(w) => Err(classify(w, me)),
        }
    }

    pub(super) fn try_acquire_shared(&self, me: u32) -> Result<(), Busy> {
        let pid = PROCESS_ID.load(Relaxed) as u64;
        let mut w = self.word().load(Relaxed);
        loop {
            let new = if w == 0 {
                // A starving waiter registered for a handoff goes first.
                let h = self.handoff().load(Relaxed);
                if h != 0 && h & !(HANDOFF_SHARED | HANDOFF_BUSY) != me {
                    return Err(Busy::Other);
                }
                SHARED | COUNT_ONE | pid
            } else if w & SHARED != 0
                && w & (EXCLREQ | DEAD | RESERVED_BITS) == 0
                && w & ID_MASK == pid
            {
                w + COUNT_ONE
            } else {
                return Err(classify(w, me));
            };
            match self.word().compare_exchange_weak(w, new, Acquire, Relaxed) {
                Ok(_) => {
                    self.seq().fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(x) => w = x,
            }
        }
    }

    /// `release_exclusive` when nobody waits (the caller's fast path): None,
    /// having done nothing, when waiters are counted; otherwise the word is
    /// released and the answer says whether a waiter came meanwhile (then
    /// the caller calls `wake_waiters`, after its own bookkeeping).
    #[inline(always)]
    pub fn release_exclusive_quick(&self) -> Option<bool> {
        if self.waiters().load(Relaxed) != 0 {
            return None;
        }
        self.word().store(0, Release);
        store_load_barrier();
        Some(self.waiters().load(Relaxed) != 0)
    }

    /// Release the word held exclusively by the caller (thread `me`).
    #[inline(always)]
    pub fn release_exclusive(&self, me: u32) {
        if self.waiters().load(Relaxed) == 0 {
            self.word().store(0, Release);
            store_load_barrier();
            if self.waiters().load(Relaxed) == 0 {
                return;
            }
            self.wake_waiters();
        } else {
            self.release_exclusive_contended(me);
        }
    }

    #[cold]
    pub(super) fn release_exclusive_contended(&self, me: u32) {
        if !self.looks_initialised() {
            super::events::misuse(
                "lwkt_reltoken",
                self,
                format_args!("not an initialised token (its memory was overwritten?)"),
            );
        }
        let mut h = self.handoff().load(Acquire);
        // A wait of this very thread (interrupted by the signal handler
        // releasing here) gets no handoff: the word would stay with the
        // thread while the handler goes on, maybe to block.
        if h & !(HANDOFF_SHARED | HANDOFF_BUSY) == me {
            h = 0;
        }
        // Claim the registration first, so that the waiter's own
        // compare-and-swap (after taking the word itself) fails and it
        // knows it was handed the word as well.
        while h != 0 && h & HANDOFF_BUSY == 0 {
            match self
                .handoff()
                .compare_exchange(h, h | HANDOFF_BUSY, AcqRel, Acquire)
            {
                Ok(_) => break,
                Err(x) if x & !(HANDOFF_SHARED | HANDOFF_BUSY) == me => h = 0,
                Err(x) => h = x,
            }
        }
        if h != 0 && h & HANDOFF_BUSY == 0 {
            // Hand the token over. The word first, the registration last:
            // the waiter takes a cleared registration to mean "the word is
            // mine", so it must never see that before the word says so.
            let w = if h & HANDOFF_SHARED != 0 {
                SHARED | COUNT_ONE | PROCESS_ID.load(Relaxed) as u64
            } else {
                (h & !HANDOFF_BUSY) as u64
            };
            // A signal handler that interrupts this thread between the two
            // stores finishes the handoff (`finish_handoff`): it must not
            // wait for a waiter that waits for us.
            let outer = crate::thread::handing_off(self);
            self.word().store(w, Release);
            // Cleared only if still ours: a handler may have done it, and
            // a new waiter registered since.
            let _ = self
                .handoff()
                .compare_exchange(h | HANDOFF_BUSY, 0, Release, Relaxed);
            crate::thread::handing_off(outer);
            // Only the registered waiter sleeps on t_handoff: no herd.
            sys::futex_wake(self.handoff(), 1);
        } else {
            self.word().store(0, Release);
            store_load_barrier();
            self.wake_waiters();
        }
    }

    /// Drop one shared hold of the caller.
    pub fn release_shared(&self) {
        let mut w = self.word().load(Relaxed);
        let left_reserved = loop {
            match self
                .word()
                .compare_exchange_weak(w, one_share_less(w), Release, Relaxed)
            {
                Ok(_) => break one_share_less(w) == EXCLREQ,
                Err(x) => w = x,
            }
        };
        self.wake_after_shared_release(left_reserved);
    }

    /// Drop one shared count of a thread that vanished without giving it
    /// back (S9), if the word is still shared by this process. False when
    /// it was not (nothing done).
    #[cold]
    pub(super) fn drop_vanished_share(&self) -> bool {
        let pid = PROCESS_ID.load(Relaxed) as u64;
        let mut w = self.word().load(Relaxed);
        let left_reserved = loop {
            if w & SHARED == 0
                || w & (DEAD | RESERVED_BITS) != 0
                || w & ID_MASK != pid
                || w & COUNT_MASK == 0
            {
                return false;
            }
            match self
                .word()
                .compare_exchange(w, one_share_less(w), AcqRel, Relaxed)
            {
                Ok(_) => break one_share_less(w) == EXCLREQ,
                Err(x) => w = x,
            }
        };
        self.wake_after_shared_release(left_reserved);
        true
    }

    #[inline(always)]
    fn wake_after_shared_release(&self, left_reserved: bool) {
        // The compare-exchange is a full barrier on x86: no membarrier needed.
        if self.waiters().load(Relaxed) != 0 {
            if left_reserved {
                // Reserved for an exclusive waiter: a shared waiter woken
                // alone would only sleep again. Wake them all.
                self.wake_sleepers(true);
            } else {
                self.wake_waiters();
            }
        }
    }

    /// Add a shared hold to a word that is shared by this process, even
    /// past `EXCLREQ` and a registered handoff, or reserved (`EXCLREQ`
    /// alone): for a signal handler whose thread may hold a count of this
    /// word already, or waits for it itself (a compare-and-swap it has not
    /// noted yet, a reservation of its interrupted wait), and which must
    /// never wait for its own thread. False when the word is neither (then
    /// the thread holds no count of it).
    #[cold]
    pub fn join_shared(&self) -> bool {
        let pid = PROCESS_ID.load(Relaxed) as u64;
        let mut w = self.word().load(Relaxed);
        loop {
            let new = if w == EXCLREQ {
                EXCLREQ | SHARED | COUNT_ONE | pid
            } else if w & SHARED != 0
                && w & (DEAD | RESERVED_BITS) == 0
                && w & ID_MASK == pid
                && w & COUNT_MASK != COUNT_MASK
            {
                w + COUNT_ONE
            } else {
                return false;
            };
            match self.word().compare_exchange_weak(w, new, Acquire, Relaxed) {
                Ok(_) => {
                    self.seq().fetch_add(1, Relaxed);
                    return true;
                }
                Err(x) => w = x,
            }
        }
    }

    /// Turn the caller's exclusive hold into a shared one.
    pub fn downgrade(&self) {
        let w = SHARED | COUNT_ONE | PROCESS_ID.load(Relaxed) as u64;
        self.word().store(w, Release);
        store_load_barrier();
        if self.waiters().load(Relaxed) != 0 {
            self.wake_waiters();
        }
    }

    /// Bump the event counter and wake sleepers: all of them when shared
    /// waiters could all get in, otherwise one, which wakes the next when
    /// it releases. A waiter registered for a handoff sleeps on
    /// `t_handoff` instead: it is woken there too, so that it sees a free
    /// word that was not handed to it.
    #[cold]
    pub fn wake_waiters(&self) {
        self.wake_sleepers(false);
    }

    /// Finish a handoff that this thread's release was making when a
    /// signal handler (the caller) interrupted it after the word was
    /// handed over: clear the registration the release claimed, and wake
    /// the waiter it was for.
    #[cold]
    pub fn finish_handoff(&self) {
        let h = self.handoff().load(Acquire);
        if h & HANDOFF_BUSY != 0
            && self
                .handoff()
                .compare_exchange(h, 0, Release, Relaxed)
                .is_ok()
        {
            sys::futex_wake(self.handoff(), 1);
        }
    }

    /// Wake every sleeper (a wake-up that a release interrupted by a
    /// signal handler has not made yet).
    #[cold]
    pub fn wake_everybody(&self) {
        self.wake_sleepers(true);
    }

    /// `wake_waiters`, but every sleeper on t_wake when `everybody`.
    ///
    /// Bump and wake only when a sleeper is counted. The read of the count
    /// is a locked instruction, after the caller's release of the word: a
    /// waiter counts itself (locked) before it reads `t_wake` and looks at
    /// the word, so either the read sees it, or its look sees the word
    /// given back. The waker uncounts the sleepers it woke (their wait
    /// returns 0 and they do not): a release that follows before a woken
    /// sleeper runs makes no system call, and does not cut short the
    /// sleep of the others.
    #[cold]
    pub(super) fn wake_sleepers(&self, everybody: bool) {
        if self.sleepers().fetch_add(0, SeqCst) != 0 {
            self.wake().fetch_add(1, Release);
            let w = self.waiters().load(Relaxed);
            let n = if everybody || w >= SHARED_WAITER {
                i32::MAX as u32
            } else {
                1
            };
            let woken = sys::futex_wake(self.wake(), n);
            if woken > 0 {
                self.sleepers().fetch_sub(woken as u32, Relaxed);
            }
        }
        if self.handoff().load(Relaxed) != 0 {
            sys::futex_wake(self.handoff(), 1);
        }
    }

    /// Holder's thread id if held exclusively, else 0.
    pub fn exclusive_holder(&self) -> u32 {
        let w = self.word().load(Relaxed);
        if w & (SHARED | DEAD) == 0 {
            (w & ID_MASK) as u32
        } else {
            0
        }
    }

    /// After fork, in the child: the forking thread keeps its holds under
    /// its new thread id and the child's process id.
    pub fn restamp_after_fork(&self, exclusive: bool, new_tid: u32, new_pid: u32) {
        let w = if exclusive {
            new_tid as u64
        } else {
            SHARED | COUNT_ONE | new_pid as u64
        };
        self.word().store(w, Relaxed);
    }
}

/// A shared word with one count less. The last one out keeps the token
/// reserved for the exclusive waiter that asked (S7), if any.
#[inline(always)]
fn one_share_less(w: u64) -> u64 {
    if w & COUNT_MASK == COUNT_ONE {
        w & EXCLREQ
    } else {
        w - COUNT_ONE
    }
}

#[inline(always)]
pub(super) fn classify(w: u64, me: u32) -> Busy {
    if w & SHARED != 0 {
        Busy::Shared
    } else if w == me as u64 {
        Busy::SelfExclusive
    } else {
        Busy::Other
    }
}

/// Between the releasing store and the load of `t_waiters`.
#[inline(always)]
pub(super) fn store_load_barrier() {
    if MEMBARRIER.load(Relaxed) {
        compiler_fence(SeqCst);
    } else {
        fence(SeqCst);
    }
}

/// After a waiter publishes itself: make every running holder's release
/// store visible, or make the waiter visible to its next load.
pub(super) fn publish_to_releasers() {
    if MEMBARRIER.load(Relaxed) {
        sys::membarrier();
    } else {
        fence(SeqCst);
    }
}

/// The token a pointer names: one the program passed to the API, or a
/// reference recorded from one. Safe to call by the API's contract rather
/// than by its type: a program keeps a token valid while it uses it (SPEC
/// section 3), and the library never frees or moves one.
#[inline(always)]
pub(super) fn token_at<'a>(tok: *const Token) -> &'a Token {
    // SAFETY: the program's token outlives its use (above); only atomics
    // and fields it never changes after init are read through it.
    unsafe { &*tok }
}

/// How the word looks, for messages: is it something a token could hold?
pub fn is_dead(w: u64) -> bool {
    // Exactly: a word with other bits besides is garbage, not a retired token.
    w == DEAD
}
