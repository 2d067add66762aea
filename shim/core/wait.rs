//! Waiting for a lock word: spin, then sleep on the futex, with the
//! handoff that bounds how often a waiter can be bypassed (SPEC S7),
//! and recovery of words whose holder no longer exists.

use core::sync::atomic::Ordering::*;

use super::word::*;
use crate::sys;

impl Token {
    /// Wait until the caller holds the word in `mode`. The caller holds no
    /// token (`acquire`, `block` released them all). Spins, then sleeps on the futex.
    /// `alone`: the thread has no other reference to this token (none of
    /// its own waits for it can be among the counted waiters).
    ///
    /// Long, and kept whole: the spin, the registration for a handoff, the
    /// `t_wake` read before the last look and the sleep are one protocol
    /// with `release_exclusive_contended`, read best in one place.
    #[cold]
    pub fn acquire_slow(&self, mode: Mode, me: u32, alone: bool) -> Waited {
        for _ in 0..SPIN_ROUNDS {
            // Somebody waits already: queue behind rather than burn a CPU
            // that the holder (or the woken waiter) may need.
            if self.waiters().load(Relaxed) != 0 {
                break;
            }
            core::hint::spin_loop();
            if self.word().load(Relaxed) == 0 && self.try_acquire(mode, me).is_ok() {
                return Waited::Acquired;
            }
        }
        let unit = if mode == Mode::Exclusive {
            EXCL_WAITER
        } else {
            SHARED_WAITER
        };
        let my_handoff = if mode == Mode::Exclusive {
            me
        } else {
            me | HANDOFF_SHARED
        };
        // membarrier once per contention episode: when another waiter is
        // counted already, every holder that took the word after it sees a
        // waiter at its release, and the holder from before it is that
        // waiter's membarrier's business (it looks at the word after its
        // membarrier, and stays counted till it has the word). Not when
        // that waiter may be this thread's own wait, interrupted by the
        // signal handler that runs this one: it cannot go on meanwhile.
        if self.waiters().fetch_add(unit, SeqCst) == 0 || !alone {
            publish_to_releasers();
        }
        let mut lost = 0;
        let mut registered = false;
        let mut slept_ns = 0u64;
        let mut next_share_check = DEAD_HOLDER_RECHECK_NS;
        let mut result = Waited::Acquired;
        // Counted in t_sleepers (unregistered) from before `seen` is read
        // and the word looked at, until a wake-up (the waker uncounts) or
        // the end of the wait: a release that finds nobody counted makes
        // neither the wake-up nor the `t_wake` bump (`wake_sleepers`), so
        // a sleeper is not woken, nor its sleep cut short, for nothing.
        let mut counted = false;
        loop {
            if !registered && !counted {
                self.sleepers().fetch_add(1, SeqCst);
                counted = true;
            } else if registered && counted {
                self.sleepers().fetch_sub(1, Relaxed);
                counted = false;
            }
            let seen = self.wake().load(Acquire);
            if registered {
                let h = self.handoff().load(Acquire);
                if h == my_handoff | HANDOFF_BUSY {
                    // Being handed the word: the releaser's last two
                    // stores are on their way.
                    core::hint::spin_loop();
                    continue;
                }
                if h != my_handoff {
                    // A releaser cleared our registration: the word is
                    // ours, unless a signal handler that interrupted this
                    // wait took it over meanwhile (`OwnExclusive` below) and
                    // has given it back: then wait on.
                    if mode == Mode::Exclusive && self.exclusive_holder() != me {
                        registered = false;
                        continue;
                    }
                    self.seq().fetch_add(1, Relaxed);
                    break;
                }
            }
            let tried = self.try_acquire(mode, me);
            if tried == Err(Busy::SelfExclusive) {
                // Handed to a wait of this thread that the signal handler
                // running this wait interrupted. The interrupted wait finds
                // out when it runs again (above).
                if registered {
                    let _ = self
                        .handoff()
                        .compare_exchange(my_handoff, 0, AcqRel, Relaxed);
                }
                if mode == Mode::Exclusive {
                    self.seq().fetch_add(1, Relaxed);
                } else {
                    result = Waited::OwnExclusive;
                }
                break;
            }
            // A shared hold handed to a wait of this thread that the signal
            // handler running this wait interrupted is invisible here (the
            // registration is cleared, the word counts one holder), and an
            // exclusive waiter's `EXCLREQ` keeps new shared holders out:
            // this wait would wait for its own thread. It joins the shared
            // holders instead, as a recursive hold would.
            let tried = if tried.is_err() && mode == Mode::Shared && !alone {
                self.join_reserved_shared()
            } else {
                tried
            };
            if tried.is_ok() {
                if registered
                    && self
                        .handoff()
                        .compare_exchange(my_handoff, 0, AcqRel, Relaxed)
                        .is_err()
                {
                    // Our registration is gone. Shared: handed over as
                    // well as taken; wait for the handoff to finish, keep
                    // one hold. Exclusive: an exclusive handoff cannot
                    // race with our own take; the registration went with a
                    // word handed to this thread, which the signal handler
                    // that interrupted this wait took and gave back.
                    if mode == Mode::Shared {
                        while self.handoff().load(Acquire) == my_handoff | HANDOFF_BUSY {
                            core::hint::spin_loop();
                        }
                        self.release_shared();
                    }
                }
                break;
            }
            let w = self.word().load(Relaxed);
            if is_dead(w) {
                result = Waited::Dead; // the caller reports the misuse
                break;
            }
            // A holder that no longer exists first: marking the word below
            // (EXCLREQ) would make the recovery's compare-and-swap miss.
            if (FORKED.load(Relaxed) || slept_ns >= DEAD_HOLDER_RECHECK_NS)
                && self.recover_dead_holder(w)
            {
                continue;
            }
            // Shares of threads that vanished (S9): the registry is looked
            // through once per DEAD_HOLDER_RECHECK_NS asleep.
            if w & SHARED != 0 && slept_ns >= next_share_check {
                next_share_check = slept_ns + DEAD_HOLDER_RECHECK_NS;
                if super::registry::recover_vanished_shares(me) {
                    continue;
                }
            }
            if mode == Mode::Exclusive && w & SHARED != 0 && w & EXCLREQ == 0 {
                let _ = self
                    .word()
                    .compare_exchange(w, w | EXCLREQ, Relaxed, Relaxed);
            }
            if mode == Mode::Shared
                && w == EXCLREQ
                && (self.waiters().load(Relaxed) & 0xffff == 0 || FORKED.load(Relaxed))
            {
                // Reserved for an exclusive waiter that is gone (or lived
                // in the parent of this fork child): free it.
                let _ = self.word().compare_exchange(w, 0, Relaxed, Relaxed);
                continue;
            }
            let before = sys::now_ns();
            if registered {
                // Woken by the handoff itself (targeted), or by a release
                // that did not see the registration yet; that one may have
                // gone to t_wake, hence the short timeout. First, awhile,
                // awake: a handoff to a running thread costs no wake-up,
                // and the token is not idle while the scheduler finds the
                // sleeper a CPU.
                if !self.handoff_arrives_soon(my_handoff) {
                    sys::futex_wait(self.handoff(), my_handoff, REGISTERED_RECHECK_NS);
                }
            } else {
                if sys::futex_wait(self.wake(), seen, DEAD_HOLDER_RECHECK_NS) == 0 {
                    // Woken: the waker uncounted us.
                    counted = false;
                }
            }
            let now = sys::now_ns();
            slept_ns += now.saturating_sub(before);
            lost += 1;
            let starving = lost >= LOST_RACES_LIMIT
                || (lost >= LOST_RACES_BEFORE_HANDOFF && now >= FAIR_AT_NS.load(Relaxed));
            if starving
                && !registered
                && self
                    .handoff()
                    .compare_exchange(0, my_handoff, AcqRel, Relaxed)
                    .is_ok()
            {
                registered = true;
                FAIR_AT_NS.store(now + fair_jitter(now), Relaxed);
                publish_to_releasers();
            }
        }
        if counted {
            self.sleepers().fetch_sub(1, Relaxed);
        }
        self.waiters().fetch_sub(unit, Relaxed);
        result
    }

    /// One more shared hold on a word held shared and reserved for an
    /// exclusive waiter (`EXCLREQ`): only for a wait whose thread may hold
    /// it already (see `acquire_slow`).
    #[cold]
    fn join_reserved_shared(&self) -> Result<(), Busy> {
        let pid = PROCESS_ID.load(Relaxed) as u64;
        let mut w = self.word().load(Relaxed);
        while w & (SHARED | EXCLREQ) == SHARED | EXCLREQ
            && w & (DEAD | RESERVED_BITS) == 0
            && w & ID_MASK == pid
            && w & COUNT_MASK != 0
        {
            match self
                .word()
                .compare_exchange_weak(w, w + COUNT_ONE, Acquire, Relaxed)
            {
                Ok(_) => {
                    self.seq().fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(x) => w = x,
            }
        }
        Err(Busy::Other)
    }

    /// The word is held by a thread that no longer exists (a fork child
    /// sees its parent's holders; a thread vanished without exiting
    /// normally): free it. True when something was freed.
    #[cold]
    pub(super) fn recover_dead_holder(&self, w: u64) -> bool {
        let pid = PROCESS_ID.load(Relaxed);
        let stale = if w & SHARED != 0 {
            (w & ID_MASK) as u32 != pid
        } else {
            let holder = (w & ID_MASK) as u32;
            holder != 0 && !sys::thread_alive(pid, holder)
        };
        if stale && self.word().compare_exchange(w, 0, AcqRel, Relaxed).is_ok() {
            let h = self.handoff().load(Relaxed);
            if h != 0 && !sys::thread_alive(pid, h & !(HANDOFF_SHARED | HANDOFF_BUSY)) {
                let _ = self.handoff().compare_exchange(h, 0, Relaxed, Relaxed);
            }
            super::events::warn(format_args!(
                "{}: its holder no longer exists; recovered by {}",
                super::events::Desc(self),
                super::events::ThreadName
            ));
            self.wake_waiters();
            return true;
        }
        false
    }
}

impl Token {
    /// Spin up to REGISTERED_SPIN_NS for `t_handoff` to stop being `mine`
    /// (the word handed over, or being handed).
    fn handoff_arrives_soon(&self, mine: u32) -> bool {
        let until = sys::now_ns() + REGISTERED_SPIN_NS;
        loop {
            for _ in 0..64 {
                if self.handoff().load(Relaxed) != mine {
                    return true;
                }
                core::hint::spin_loop();
            }
            if sys::now_ns() >= until {
                return false;
            }
        }
    }
}

/// A pseudo-random point of the next FAIR_INTERVAL_NS, from the clock.
fn fair_jitter(now: u64) -> u64 {
    let x = now.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 32) % FAIR_INTERVAL_NS
}
