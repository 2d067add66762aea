/*
 * scripts/model/token.pml: a Spin model of the token core (S1, S4, S5, S7).
 *
 * What is modelled, and where it lives in the Rust code:
 *
 *   shim/token.rs   the lock word t_word (free, exclusive holder, shared
 *                   count, EXCLREQ), t_waiters, t_wake (futex event
 *                   counter), t_handoff; try_acquire, take_reserved,
 *                   try_acquire_shared, release_exclusive(+_contended),
 *                   release_shared, downgrade, wake_waiters/wake_some,
 *                   acquire_slow (spin, count in t_waiters, membarrier,
 *                   EXCLREQ, clearing a stale EXCLREQ, futex wait, handoff
 *                   registration and receipt).
 *   shim/thread.rs  the per-thread reference stack (primary and recursive
 *                   references, word mode), get/take_recursive/wait_for,
 *                   rel/rel_other/downgrade_if_last_exclusive, swap,
 *                   release_all and retake (all-or-nothing, give back and
 *                   wait holding nothing).
 *
 * Memory model: x86-TSO. Every plain store (the word and handoff stores of
 * release_exclusive, the downgrade store) goes into the storing thread's
 * FIFO store buffer and reaches memory later (proctype Flusher); the
 * thread's own loads see its buffered stores. Locked instructions (CAS,
 * fetch_add) and fences wait until the thread's buffer is empty, as on x86.
 * membarrier(PRIVATE_EXPEDITED) empties every other thread's buffer, each
 * at its own moment during the call (in any order), which is what the IPI
 * barrier on each CPU (or the context switch of a thread not running)
 * does. With MEMBARRIER 0 the model checks the fallback instead: a full
 * fence on both sides.
 *
 * Left out (no bearing on the protocol between live threads): signal
 * handlers and the `stolen` path, fork (FORKED, restamp, PROCESS_ID in the
 * shared word), dead-holder recovery, DEAD/uninit, statistics, t_seq and
 * lost_since, compare_exchange_weak's spurious failures (a retry), the
 * futex wait's 500 ms timeout (left out on purpose: with it, a lost wake-up
 * would be a 500 ms stall instead of a hang the checker can see; set
 * FUTEX_TIMEOUT 1 to model it).
 *
 * Checked (Spin safety run, every interleaving):
 *   - assertions: mutual exclusion (one exclusive holder and no shared
 *     holder with it: ghost holders updated in the same atomic step as the
 *     word changes, and at a releasing store's program point);
 *     no thread waits (futex) or enters acquire_slow holding a word;
 *     after every API call the thread holds exactly the words of its live
 *     primary references, in their modes (retake all-or-nothing);
 *     a handoff receipt finds the word really handed over;
 *     no misuse is reachable from correct use (take_recursive cases);
 *   - invalid end states: a thread stuck for ever (deadlock, or a waiter
 *     asleep on the futex with nobody left to wake it: a lost wake-up).
 *
 * Parameters (spin -DNAME=value): NT threads (2..3), NK tokens (1..2),
 * K token requests per thread (releases, BLOCKS blocking calls and one
 * swap come on top, at any point), D references per thread, MEMBARRIER,
 * HANDOFF_WAKES_ALL (1: the handoff release wakes every sleeper, as
 * shim/token.rs now does; 0: it wakes one like any exclusive release, as
 * commit d205cc3 did), FUTEX_TIMEOUT, SWAP (use lwkt_token_swap),
 * BLOCKS; HANDOFF_FIX and RESERVED_WAKES_ALL model the fixes of the
 * two defects this model found (see scripts/model-check).
 */

#ifndef NT
#define NT 2
#endif
#ifndef NK
#define NK 2
#endif
#ifndef K
#define K 3
#endif
#ifndef D
#define D 3
#endif
#ifndef BLOCKS
#define BLOCKS 1
#endif
#ifndef MEMBARRIER
#define MEMBARRIER 1
#endif
#ifndef HANDOFF_WAKES_ALL
#define HANDOFF_WAKES_ALL 1
#endif
/* Both fixes are in shim/token.rs now (HANDOFF_BUSY; wake_all when the
 * last shared holder leaves the word reserved): 0 models the code before. */
#ifndef HANDOFF_FIX
#define HANDOFF_FIX 1
#endif
#ifndef RESERVED_WAKES_ALL
#define RESERVED_WAKES_ALL 1
#endif
#ifndef FUTEX_TIMEOUT
#define FUTEX_TIMEOUT 0
#endif
#ifndef SWAP
#define SWAP 1
#endif

#define MAXT 3   /* array sizes: up to 3 threads */
#define SB 4     /* store buffer entries per thread */

/* t_word, scaled down: owner thread id + 1 (exclusive) in bits 0-1, the
 * shared count in bits 2-4, EXCLREQ, SHARED. (token.rs: id in the low 32
 * bits, count at bit 32, EXCLREQ bit 62, SHARED bit 63; the process id in a
 * shared word is always ours here: no fork.) */
#define ID_MASK 3
#define COUNT1 4
#define COUNT_MASK 28
#define EXCLREQ 32
#define SHARED 64
/* t_handoff: thread id + 1, HS when the waiter wants a shared hold
 * (token.rs HANDOFF_SHARED). */
#define HS 8
#define HID 7
/* HANDOFF_FIX only: a releaser is handing the word to this registration */
#define HBUSY 16

/* memory locations written by plain stores (the store buffer's addresses) */
#define WORD(t) (t)
#define HOFF(t) (NK + (t))

#define EXCL 1
#define SHRD 0

/* try_acquire's results (token.rs Result<(), Busy>) */
#define OK 0
#define OTHER 1   /* Busy::Other */
#define SELFX 2   /* Busy::SelfExclusive */
#define BSH 3     /* Busy::Shared */
#define RETRY 4

/* reference flags (thread.rs R_EXCL, R_PRIMARY, R_WORD_EXCL) */
#define R_EXCL 1
#define R_PRIM 2
#define R_WEXCL 4

#define ALL 255   /* futex_wake(i32::MAX) */

byte mem[2 * NK];     /* t_word[t], t_handoff[t] */
byte wexcl[NK];       /* t_waiters, exclusive part (low 16 bits) */
byte wsh[NK];         /* t_waiters, shared part (high 16 bits) */
/* t_wake, the futex event counter. Only "has it moved since the waiter read
 * it" matters: wchg[thread*NK+t] is set by every bump and cleared when the
 * thread reads the counter (exact, and keeps the state space finite). */
bit wchg[MAXT * NK];
byte sleeping[MAXT];  /* futex sleepers: token + 1, or 0 */

typedef SBuf {
    byte var[SB];
    byte val[SB];
    byte n
};
SBuf sb[MAXT];

/* ghost state: who holds each word, in program order */
byte g_excl[NK];          /* exclusive holder id + 1 */
byte g_sh[NK];            /* shared holds, all threads */
byte g_mysh[MAXT * NK];   /* shared holds of thread i on token t */
byte g_words[MAXT];       /* holds of any kind of thread i */
/* a word handed over to thread i (registered waiter) that it has not yet
 * noticed: it may still go to sleep once before the handoff's wake-up */
bit g_handed[MAXT];

/* (inline arguments are substituted as text: hence the parentheses) */
inline g_acq_excl(i, t) {
    assert(g_excl[t] == 0 && g_sh[t] == 0);
    g_excl[t] = (i) + 1;
    g_words[i]++
}
inline g_rel_excl(i, t) {
    assert(g_excl[t] == (i) + 1);
    g_excl[t] = 0;
    g_words[i]--
}
inline g_acq_sh(i, t) {
    assert(g_excl[t] == 0);
    g_sh[t]++;
    g_mysh[(i) * NK + (t)]++;
    g_words[i]++
}
inline g_rel_sh(i, t) {
    assert(g_mysh[(i) * NK + (t)] > 0);
    g_sh[t]--;
    g_mysh[(i) * NK + (t)]--;
    g_words[i]--
}

/* ---- x86-TSO store buffers */

/* Oldest entry of thread j's buffer to memory. */
inline flush1(j) {
    mem[sb[j].var[0]] = sb[j].val[0];
    fq = 1;
    do
    :: fq < sb[j].n ->
        sb[j].var[fq - 1] = sb[j].var[fq];
        sb[j].val[fq - 1] = sb[j].val[fq];
        fq++
    :: else -> break
    od;
    sb[j].n--;
    sb[j].var[sb[j].n] = 0;
    sb[j].val[sb[j].n] = 0;
    fq = 0
}

inline flush_all(j) {
    do
    :: sb[j].n > 0 -> flush1(j)
    :: else -> break
    od
}

/* A plain store (Relaxed/Release: a mov on x86) enters the buffer; the
 * caller puts it in an atomic block with the ghost update. */
inline sbpush(v, x) {
    sb[me].n < SB;
    sb[me].var[sb[me].n] = v;
    sb[me].val[sb[me].n] = x;
    sb[me].n++
}

/* A plain load: the thread's own newest buffered store to v, else memory. */
inline load(v, r) {
    d_step {
        r = mem[v];
        li = 0;
        do
        :: li < sb[me].n ->
            if
            :: sb[me].var[li] == v -> r = sb[me].val[li]
            :: else -> skip
            fi;
            li++
        :: else -> break
        od;
        li = 0
    }
}

/* The store buffer drains on its own, at any time. */
proctype Flusher(byte j) {
    byte fq;
end:
    do
    :: atomic { sb[j].n > 0 -> flush1(j) }
    od
}

/* token.rs store_load_barrier(): compiler_fence with membarrier, else
 * fence(SeqCst) (mfence: the buffer drains). */
inline store_load_barrier() {
#if MEMBARRIER
    skip
#else
    sb[me].n == 0
#endif
}

/* sys::membarrier(): a full barrier on the caller, and on every other
 * thread at some moment during the call (in some order). */
inline membarrier() {
    sb[me].n == 0;
    mb = 1 << me;
    do
    :: mb == (1 << NT) - 1 -> break
    :: mb != (1 << NT) - 1 && NT > 0 && !(mb & 1) -> d_step { flush_all(0); mb = mb | 1 }
    :: mb != (1 << NT) - 1 && NT > 1 && !(mb & 2) -> d_step { flush_all(1); mb = mb | 2 }
    :: mb != (1 << NT) - 1 && NT > 2 && !(mb & 4) -> d_step { flush_all(2); mb = mb | 4 }
    od;
    mb = 0
}

/* token.rs publish_to_releasers() */
inline publish_to_releasers() {
#if MEMBARRIER
    membarrier()
#else
    sb[me].n == 0
#endif
}

/* ---- futex on t_wake (the kernel's compare-and-sleep is atomic; the
 * syscall is a full barrier) */

/* sys::futex_wait(wake, seen, timeout) in acquire_slow */
inline futex_wait(t) {
    atomic {
        sb[me].n == 0;
        /* nobody waits holding a token (but a word just handed over,
         * whose wake-up is on its way) */
        assert(g_words[me] == g_handed[me]);
        if
        :: wchg[me * NK + t] == 0 -> sleeping[me] = t + 1
        :: else -> skip
        fi
    }
#if FUTEX_TIMEOUT
    if
    :: sleeping[me] == 0
    :: atomic { sleeping[me] != 0 -> sleeping[me] = 0 }
    fi
#else
    sleeping[me] == 0
#endif
}

/* sys::futex_wake(wake, n): n is 1 or ALL; the kernel picks which one. */
inline futex_wake(t, nwake) {
    atomic {
        sb[me].n == 0;
        if
        :: nwake == ALL ->
            fj = 0;
            do
            :: fj < MAXT ->
                if
                :: sleeping[fj] == t + 1 -> sleeping[fj] = 0
                :: else -> skip
                fi;
                fj++
            :: else -> break
            od;
            fj = 0
        :: else ->
            if
            :: sleeping[0] == t + 1 -> sleeping[0] = 0
            :: sleeping[1] == t + 1 -> sleeping[1] = 0
            :: sleeping[2] == t + 1 -> sleeping[2] = 0
            :: else -> skip
            fi
        fi
    }
}

/* token.rs wake_some(everybody) (wake_waiters() is wake_some(false)):
 * bump t_wake (fetch_add: locked), load t_waiters, load t_handoff, wake. */
inline wake_some(t, everybody) {
    atomic {
        sb[me].n == 0;
        fj = 0;
        do
        :: fj < NT -> wchg[fj * NK + t] = 1; fj++
        :: else -> break
        od;
        fj = 0
    }
    wx = wsh[t];
    load(HOFF(t), wh);
    if
    :: everybody || wx > 0 || wh != 0 -> wn = ALL
    :: else -> wn = 1
    fi;
    wx = 0;
    wh = 0;
    futex_wake(t, wn);
    wn = 0
}

/* ---- token.rs: the word */

/* classify(w, me) */
inline classify(w, r) {
    if
    :: (w & SHARED) -> r = BSH
    :: else ->
        if
        :: w == me + 1 -> r = SELFX
        :: else -> r = OTHER
        fi
    fi
}

/* try_acquire_shared(me) */
inline try_acquire_shared(t) {
    load(WORD(t), tw);
    do
    :: true ->
        if
        :: tw == 0 ->
            /* a starving waiter registered for a handoff goes first */
            load(HOFF(t), th);
            if
            :: th != 0 && (th & HID) != me + 1 -> tres = OTHER; th = 0; break
            :: else -> th = 0; tnew = SHARED | COUNT1
            fi
        :: tw != 0 && (tw & SHARED) && !(tw & EXCLREQ) -> tnew = tw + COUNT1
        :: else -> classify(tw, tres); break
        fi;
        /* compare_exchange_weak(w, new) */
        atomic {
            sb[me].n == 0;
            if
            :: mem[WORD(t)] == tw -> mem[WORD(t)] = tnew; g_acq_sh(me, t); tres = OK
            :: else -> tw = mem[WORD(t)]; tres = RETRY
            fi
        }
        if
        :: tres == OK -> break
        :: else -> skip
        fi
    od;
    tw = 0;
    tnew = 0
}

/* try_acquire(mode, me): result in tres */
inline try_acquire(t, mode) {
    if
    :: mode == EXCL ->
        /* compare_exchange(0, me) */
        atomic {
            sb[me].n == 0;
            if
            :: mem[WORD(t)] == 0 -> mem[WORD(t)] = me + 1; g_acq_excl(me, t); tres = OK
            :: else -> tw = mem[WORD(t)]; tres = OTHER
            fi
        }
        if
        :: tres != OK && tw == EXCLREQ ->
            /* take_reserved: compare_exchange(EXCLREQ, me) */
            atomic {
                sb[me].n == 0;
                if
                :: mem[WORD(t)] == EXCLREQ -> mem[WORD(t)] = me + 1; g_acq_excl(me, t); tres = OK
                :: else -> tw = mem[WORD(t)]; classify(tw, tres)
                fi
            }
        :: tres != OK && tw != EXCLREQ -> classify(tw, tres)
        :: else -> skip
        fi;
        tw = 0
    :: else -> try_acquire_shared(t)
    fi
}

/* release_exclusive() and release_exclusive_contended() */
inline release_exclusive(t) {
    if
    :: wexcl[t] + wsh[t] == 0 ->   /* waiters().load() == 0 */
        atomic { sbpush(WORD(t), 0); g_rel_excl(me, t) }
        store_load_barrier();
        if
        :: wexcl[t] + wsh[t] == 0 -> skip
        :: else -> wake_some(t, 0)
        fi
    :: else ->
        /* release_exclusive_contended (looks_initialised: always here) */
        load(HOFF(t), th);
#if HANDOFF_FIX
        /* Proposed fix: claim the registration first (locked: h to
         * h|HBUSY), so that the registered waiter's own
         * compare_exchange(my, 0) fails from here on and it knows the word
         * is (being) handed to it; the waiter breaks out only once the
         * registration is neither my nor my|HBUSY; a releaser skips an
         * HBUSY registration. */
        do
        :: th == 0 || (th & HBUSY) ->
            /* none, or another releaser's handoff whose clearing store is
             * still on its way: not a registration */
            th = 0;
            break
        :: th != 0 && !(th & HBUSY) ->
            atomic {
                sb[me].n == 0;
                if
                :: mem[HOFF(t)] == th -> mem[HOFF(t)] = th | HBUSY; tres2 = OK
                :: else -> th = mem[HOFF(t)]; tres2 = RETRY
                fi
            }
            if
            :: tres2 == OK -> tres2 = 0; break
            :: else -> tres2 = 0
            fi
        od;
#endif
        if
        :: th != 0 ->
            /* hand the token over: the word first, the registration last */
            if
            :: (th & HS) -> tnew = SHARED | COUNT1
            :: else -> tnew = th
            fi;
            atomic {
                sbpush(WORD(t), tnew);
                g_rel_excl(me, t);
                if
                :: (th & HS) -> g_acq_sh((th & HID) - 1, t)
                :: else -> g_acq_excl((th & HID) - 1, t)
                fi;
                g_handed[(th & HID) - 1] = 1
            }
            atomic { sbpush(HOFF(t), 0) }
            th = 0;
            tnew = 0;
            store_load_barrier();
#if HANDOFF_WAKES_ALL
            wake_some(t, 1)
#else
            wake_some(t, 0)
#endif
        :: else ->
            atomic { sbpush(WORD(t), 0); g_rel_excl(me, t) }
            store_load_barrier();
            wake_some(t, 0)
        fi
    fi
}

/* release_shared() */
inline release_shared(t) {
    load(WORD(t), tw);
    do
    :: true ->
        if
        :: (tw & COUNT_MASK) == COUNT1 -> tnew = tw & EXCLREQ /* the last one out keeps EXCLREQ */
        :: else -> tnew = tw - COUNT1
        fi;
        atomic {
            sb[me].n == 0;
            if
            :: mem[WORD(t)] == tw -> mem[WORD(t)] = tnew; g_rel_sh(me, t); tres2 = OK
            :: else -> tw = mem[WORD(t)]; tres2 = RETRY
            fi
        }
        if
        :: tres2 == OK -> break
        :: else -> skip
        fi
    od;
    tres2 = 0;
    if
    :: wexcl[t] + wsh[t] != 0 ->
#if RESERVED_WAKES_ALL
        /* the fix: the last one out leaving EXCLREQ wakes everybody
         * (a shared waiter woken alone would sleep again on EXCLREQ) */
        wake_some(t, tnew == EXCLREQ)
#else
        wake_some(t, 0)
#endif
    :: else -> skip
    fi;
    tw = 0;
    tnew = 0
}

/* downgrade() */
inline downgrade(t) {
    atomic { sbpush(WORD(t), SHARED | COUNT1); g_rel_excl(me, t); g_acq_sh(me, t) }
    store_load_barrier();
    if
    :: wexcl[t] + wsh[t] != 0 -> wake_some(t, 0)
    :: else -> skip
    fi
}

/* acquire_slow(mode, me): the caller holds no word; returns holding t. */
inline acquire_slow(t, mode) {
    assert(g_words[me] == 0);
    /* SPIN_ROUNDS rounds of "if word == 0, try": failed tries change
     * nothing, so at most one try, at any moment, covers them all. */
    tres = OTHER;
    if
    :: skip
    :: load(WORD(t), aw);
        if
        :: aw == 0 -> try_acquire(t, mode)
        :: else -> skip
        fi;
        aw = 0
    fi;
    if
    :: tres == OK -> skip
    :: else ->
        atomic {
            sb[me].n == 0;   /* fetch_add(unit, SeqCst) */
            if
            :: mode == EXCL -> wexcl[t]++
            :: else -> wsh[t]++
            fi
        }
        publish_to_releasers();
        if
        :: mode == EXCL -> amy = me + 1
        :: else -> amy = (me + 1) | HS
        fi;
        areg = 0;
        do
        :: true ->
            wchg[me * NK + t] = 0;   /* seen = wake.load() */
            if
            :: areg ->
                load(HOFF(t), ah);
                if
#if HANDOFF_FIX
                :: ah != amy && ah != (amy | HBUSY) ->
#else
                :: ah != amy ->
#endif
                    /* a releaser cleared our registration: the word is ours */
                    ah = 0;
                    if
                    :: mode == EXCL -> assert(g_excl[t] == me + 1)
                    :: else -> assert(g_mysh[me * NK + t] > 0)
                    fi;
                    assert(g_handed[me]);
                    g_handed[me] = 0;
                    break
                :: else -> ah = 0
                fi
            :: else -> skip
            fi;
            try_acquire(t, mode);
            if
            :: tres == OK ->
                if
                :: areg ->
                    /* compare_exchange(my_handoff, 0) */
                    atomic {
                        sb[me].n == 0;
                        if
                        :: mem[HOFF(t)] == amy -> mem[HOFF(t)] = 0; tres2 = OK
                        :: else -> tres2 = RETRY; assert(g_handed[me]); g_handed[me] = 0
                        fi
                    }
                    if
                    :: tres2 != OK ->
                        /* handed over as well as taken: keep one shared hold */
                        assert(mode == SHRD);
                        tres2 = 0;
                        release_shared(t)
                    :: else -> skip
                    fi
                :: else -> skip
                fi;
                break
            :: else -> skip
            fi;
            load(WORD(t), aw);
            if
            :: mode == EXCL && (aw & SHARED) && !(aw & EXCLREQ) ->
                /* reserve: compare_exchange(w, w | EXCLREQ) */
                atomic {
                    sb[me].n == 0;
                    if
                    :: mem[WORD(t)] == aw -> mem[WORD(t)] = aw | EXCLREQ
                    :: else -> skip
                    fi
                }
            :: else -> skip
            fi;
            if
            :: mode == SHRD && aw == EXCLREQ && wexcl[t] == 0 ->
                /* reserved for an exclusive waiter that is gone: free it */
                atomic {
                    sb[me].n == 0;
                    if
                    :: mem[WORD(t)] == EXCLREQ -> mem[WORD(t)] = 0
                    :: else -> skip
                    fi
                }
                aw = 0   /* continue */
            :: else ->
                aw = 0;
                futex_wait(t);
                /* lost += 1; once starving (after LOST_RACES_BEFORE_HANDOFF
                 * and HANDOFF_AFTER_NS, or LOST_RACES_LIMIT): here, at any
                 * lost race */
                if
                :: !areg ->
                    atomic {
                        sb[me].n == 0;
                        if
                        :: mem[HOFF(t)] == 0 -> mem[HOFF(t)] = amy; areg = 1
                        :: else -> skip
                        fi
                    }
                    if
                    :: areg -> publish_to_releasers()
                    :: else -> skip
                    fi
                :: true -> skip
                fi
            fi
        od;
        atomic {
            sb[me].n == 0;   /* fetch_sub(unit) */
            if
            :: mode == EXCL -> wexcl[t]--
            :: else -> wsh[t]--
            fi
        }
        amy = 0;
        areg = 0
    fi;
    tres = 0
}

/* ---- thread.rs: the reference stack */

inline push(t, fl) {
    d_step {
    assert(depth < D);
    rtok[depth] = t;
    rfl[depth] = fl;
    depth++
    }
}

/* find_live(tok): the live primary reference, or 255 */
inline find_live(t, r) {
    d_step {
    r = 255;
    fk = rb;
    do
    :: fk < depth && r == 255 ->
        if
        :: rtok[fk] == t && (rfl[fk] & R_PRIM) -> r = fk
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0
    }
}

/* give_back_one(): release the word of a primary reference */
inline give_back_one(i) {
    if
    :: (rfl[i] & R_WEXCL) -> release_exclusive(rtok[i])
    :: else -> release_shared(rtok[i])
    fi
}

/* release_all(): every live reference released, most recent first */
inline release_all() {
    rel_below = rb;
    rel_upto = depth;
    rb = depth;
    ri = rel_upto;
    do
    :: ri > rel_below ->
        ri--;
        if
        :: (rfl[ri] & R_PRIM) -> give_back_one(ri)
        :: else -> skip
        fi
    :: else -> break
    od;
    ri = 0
}

/* retake(Released { below, upto }): all or nothing */
inline retake() {
    held = 0;
    do
    :: true ->
        rfail = 0;
        ri = rel_below;
        do
        :: ri < rel_upto ->
            if
            :: (rfl[ri] & R_PRIM) && !(held & (1 << ri)) ->
                if
                :: (rfl[ri] & R_WEXCL) -> try_acquire(rtok[ri], EXCL)
                :: else -> try_acquire(rtok[ri], SHRD)
                fi;
                if
                :: tres == OK || tres == SELFX ->
                    assert(tres == OK); /* SelfExclusive: only after a signal handler */
                    held = held | (1 << ri)
                :: else ->
                    /* give back what we took, wait for this one holding
                     * nothing, then try the rest again */
                    rj = rel_upto;
                    do
                    :: rj > rel_below ->
                        rj--;
                        if
                        :: (held & (1 << rj)) ->
                            /* ours: shared, or exclusive_holder() == me */
                            if
                            :: !(rfl[rj] & R_WEXCL) -> skip
                            :: else -> load(WORD(rtok[rj]), tw); assert(tw == me + 1); tw = 0
                            fi;
                            give_back_one(rj)
                        :: else -> skip
                        fi
                    :: else -> break
                    od;
                    rj = 0;
                    if
                    :: (rfl[ri] & R_WEXCL) -> acquire_slow(rtok[ri], EXCL)
                    :: else -> acquire_slow(rtok[ri], SHRD)
                    fi;
                    held = 1 << ri;
                    rfail = 1;
                    break
                fi
            :: else -> skip
            fi;
            ri++
        :: else -> break
        od;
        ri = 0;
        if
        :: rfail -> skip   /* continue 'again */
        :: else -> break
        fi
    od;
    held = 0;
    rb = rel_below;
    rel_below = 0;
    rel_upto = 0
}

/* After every API call: the thread holds exactly the words of its live
 * primary references, in their word modes. (A shared request on a token
 * the thread holds shared, with no EXCLREQ on it, succeeds in
 * try_acquire and pushes a second primary reference with its own count:
 * so a thread's shared holds of a token are its shared primaries.) */
inline check_held() {
    d_step {
    assert(rb == 0);
    cs = 0;
    do
    :: cs < NK ->
        fk = 0;
        ck = 0;
        do
        :: fk < depth ->
            if
            :: rtok[fk] == cs && (rfl[fk] & R_PRIM) ->
                if
                :: (rfl[fk] & R_WEXCL) -> assert(g_excl[cs] == me + 1)
                :: else -> ck++
                fi
            :: else -> skip
            fi;
            fk++
        :: else -> break
        od;
        assert(g_mysh[me * NK + cs] == ck);
        if
        :: g_excl[cs] == me + 1 ->
            /* exactly one exclusive primary */
            fk = 0;
            ck = 0;
            do
            :: fk < depth ->
                if
                :: rtok[fk] == cs && (rfl[fk] & R_PRIM) -> ck++
                :: else -> skip
                fi;
                fk++
            :: else -> break
            od;
            assert(ck == 1)
        :: else -> skip
        fi;
        cs++
    :: else -> break
    od;
    /* and nothing else */
    fk = 0;
    ck = 0;
    do
    :: fk < depth ->
        if
        :: (rfl[fk] & R_PRIM) -> ck++
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    assert(g_words[me] == ck);
    fk = 0;
    ck = 0;
    cs = 0
    }
}

/* get(): lwkt_gettoken / lwkt_gettoken_shared */
inline get(t, mode) {
    try_acquire(t, mode);
    if
    :: tres == OK ->
        if
        :: mode == EXCL -> push(t, R_PRIM | R_EXCL | R_WEXCL)
        :: else -> push(t, R_PRIM)
        fi
    :: else ->
        /* take_recursive() */
        find_live(t, p);
        if
        :: tres == SELFX ->
            assert(p != 255 && (rfl[p] & R_WEXCL)); /* else: the signal case */
            if
            :: mode == EXCL -> push(t, R_EXCL)
            :: else -> push(t, 0)
            fi
        :: tres == BSH && p != 255 ->
            assert(mode == SHRD); /* exclusive on own shared: misuse */
            push(t, 0)
        :: else ->
            /* wait_for(): release all, push the new reference as not yet
             * held, retake all with it on top */
            release_all();
            if
            :: mode == EXCL -> push(t, R_PRIM | R_EXCL | R_WEXCL)
            :: else -> push(t, R_PRIM)
            fi;
            rb = depth;
            rel_upto = depth;
            retake()
        fi;
        p = 0
    fi;
    tres = 0
}

/* downgrade_if_last_exclusive(tok) */
inline downgrade_if_last_exclusive(t) {
    ck = 0;
    fk = rb;
    do
    :: fk < depth ->
        if
        :: rtok[fk] == t && (rfl[fk] & R_EXCL) -> ck = 1
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0;
    if
    :: ck == 0 ->
        find_live(t, p);
        if
        :: p != 255 && (rfl[p] & R_WEXCL) ->
            rfl[p] = rfl[p] & ~R_WEXCL;
            downgrade(t)
        :: else -> skip
        fi;
        p = 0
    :: else -> skip
    fi;
    ck = 0
}

/* rel(): lwkt_reltoken of the most recent reference */
inline rel() {
    d_step {
        assert(depth > rb);
        depth--;
        ct = rtok[depth];
        cf = rfl[depth];
        rtok[depth] = 0;
        rfl[depth] = 0
    }
    if
    :: (cf & R_PRIM) && (cf & R_WEXCL) -> release_exclusive(ct)
    :: (cf & R_PRIM) && !(cf & R_WEXCL) -> release_shared(ct)
    :: !(cf & R_PRIM) && (cf & R_EXCL) -> downgrade_if_last_exclusive(ct)
    :: else -> skip
    fi;
    ct = 0;
    cf = 0
}

/* swap(): lwkt_token_swap */
inline swap() {
    d_step {
    if
    :: rtok[depth - 2] == rtok[depth - 1] ->
        /* same token: the lower reference stays the primary; the
         * requested modes trade places */
        cf = rfl[depth - 2] & R_EXCL;
        ct = rfl[depth - 1] & R_EXCL;
        rfl[depth - 2] = (rfl[depth - 2] & ~R_EXCL) | ct;
        rfl[depth - 1] = (rfl[depth - 1] & ~R_EXCL) | cf
    :: else ->
        ct = rtok[depth - 2];
        cf = rfl[depth - 2];
        rtok[depth - 2] = rtok[depth - 1];
        rfl[depth - 2] = rfl[depth - 1];
        rtok[depth - 1] = ct;
        rfl[depth - 1] = cf
    fi;
    ct = 0;
    cf = 0
    }
}

/* A thread: any sequence of correct API use (no misuse): up to K requests
 * (exclusive or shared, of any token, recursive or not), releases of the
 * most recent reference, up to BLOCKS blocking calls while holding, one
 * lwkt_token_swap; it ends holding nothing. */
proctype Thread(byte me) {
    byte rtok[D];
    byte rfl[D];
    byte depth, rb;
    byte step, ct, cf, p, fk, ck, cs, nblock;
    bit swapped;
    /* locals of the inlines */
    byte li, fj, mb, fq, wx, wh, wn, tw, tnew, th, tres, tres2;
    byte aw, ah, amy;
    bit areg, rfail;
    byte ri, rj, held, rel_below, rel_upto;

    do
    :: step < K && depth < D ->
        /* lwkt_gettoken(t) or lwkt_gettoken_shared(t) */
        atomic {
            if
            :: ct = 0
            :: NK > 1 -> ct = 1
            fi;
            find_live(ct, p);
            if
            :: p == 255 -> cf = EXCL
            :: p != 255 && (rfl[p] & R_WEXCL) -> cf = EXCL /* not on own shared */
            :: cf = SHRD
            fi;
            p = 0
        }
        get(ct, cf);
        ct = 0;
        cf = 0;
        step++;
        check_held()
    :: depth > 0 ->
        rel();
        check_held()
    :: nblock < BLOCKS && depth > 0 ->
        /* a blocking call: the hooks' released() */
        release_all();
        retake();
        nblock++;
        check_held()
    :: SWAP && !swapped && depth >= 2 ->
        swap();
        swapped = 1
    :: depth == 0 -> break
    od;
    check_held();
    assert(g_words[me] == 0)
}

init {
    byte i;
    atomic {
        do
        :: i < NT -> run Thread(i); run Flusher(i); i++
        :: else -> break
        od
    }
}
