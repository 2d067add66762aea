/*
 * scripts/model/token.pml: a Spin model of the token core (SPEC S1, S4, S7
 * and section 7's signal handlers).
 *
 * What is modelled, and where it lives in the Rust code:
 *
 *   shim/token.rs   the lock word t_word (free, exclusive holder, shared
 *                   count, EXCLREQ), t_waiters, t_wake (futex event
 *                   counter), t_handoff, t_sleepers (futex_wake only when
 *                   a sleeper is counted; membarrier only for the first
 *                   waiter counted); try_acquire, take_reserved,
 *                   try_acquire_shared, release_exclusive(+_contended),
 *                   release_shared, downgrade, wake_waiters/wake_sleepers,
 *                   acquire_slow (spin, count in t_waiters, membarrier,
 *                   EXCLREQ, clearing a stale EXCLREQ, futex wait, handoff
 *                   registration and receipt).
 *   shim/thread.rs  the per-thread reference stack (primary and recursive
 *                   references, word mode, R_COUNTED), get/take_new/
 *                   take_recursive/wait_for, rel/rel_other/
 *                   downgrade_if_last_exclusive, swap, release_all and
 *                   retake (all-or-nothing, give back and wait holding
 *                   nothing), and with HANDLER a signal handler on thread
 *                   0: the reference recorded before its word is taken
 *                   and dropped after it is given back, holds_word,
 *                   join_shared, finishing an interrupted handoff and
 *                   wake-up, the misuse an exclusive request on the
 *                   thread's own shared hold is.
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
 * A signal handler (proctype Handler) runs on thread 0's stack and store
 * buffer, between any two steps of thread 0 (a `provided` clause stops
 * thread 0 meanwhile; an atomic step is one instruction, or a sequence
 * thread.rs makes safe against its own handler, such as claiming a stack
 * slot and then filling it).
 *
 * Left out (no bearing on the protocol between live threads): fork
 * (FORKED, restamp, PROCESS_ID in the
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
 *     a signal handler holds what it took, and leaves every reference
 *     below its own owning exactly the words it owned;
 *   - invalid end states: a thread stuck for ever (deadlock, or a waiter
 *     asleep on the futex with nobody left to wake it: a lost wake-up).
 *
 * Parameters (spin -DNAME=value): NT threads (2..3), NK tokens (1..2),
 * K token requests per thread (releases, BLOCKS blocking calls and one
 * swap come on top, at any point), D references per thread, MEMBARRIER,
 * HANDOFF_WAKES_ALL (1: the handoff release wakes every sleeper, as
 * shim/token.rs now does; 0: it wakes one like any exclusive release, as
 * commit d205cc3 did), FUTEX_TIMEOUT, SWAP (use lwkt_token_swap),
 * BLOCKS, HANDLER, HBLOCKS, HMODES; HANDOFF_FIX, RESERVED_WAKES_ALL and
 * RECORD_FIRST model fixes, each of a defect this model finds without it
 * (see scripts/model-check --without-fixes).
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
/* HANDLER 1: thread 0 has a signal handler (proctype Handler) that may run
 * once, between any two steps of thread 0, on thread 0's own reference
 * stack, and take and release token 0 (HBLOCKS: block once while holding
 * it); HMODES 1: exclusively only, 2: shared or exclusively. */
#ifndef HANDLER
#define HANDLER 0
#endif
#ifndef HBLOCKS
#define HBLOCKS 0
#endif
#ifndef HMODES
#define HMODES 2
#endif
/* RECORD_FIRST 1: thread.rs as it is (a reference is recorded before its
 * word is taken and dropped after it is given back; whether a reference
 * owns its word is read from the word or R_CNT). 0: the order before
 * (word first; a handler that found its thread's id in the word with no
 * live reference took the word over, the "stolen" path). */
#ifndef RECORD_FIRST
#define RECORD_FIRST 1
#endif
/* t_sleepers: a release calls futex_wake only when a sleeper is counted */
#ifndef COUNT_SLEEPERS
#define COUNT_SLEEPERS 1
#endif
/* ... and a waiter counts itself before it reads t_wake and looks at the
 * word (0: just before it sleeps) */
#ifndef SLEEPERS_FIRST
#define SLEEPERS_FIRST 1
#endif
/* a waiter runs membarrier only when it is the first one counted */
#ifndef SKIP_MB_WHEN_COUNTED
#define SKIP_MB_WHEN_COUNTED 1
#endif
/* ... or when its thread has another reference to the token (a wait of
 * its own that a signal handler interrupted may be the one counted) */
#ifndef NEST_GUARD
#define NEST_GUARD 1
#endif

#define MAXT 3   /* array sizes: up to 3 threads */
#define SB 4     /* store buffer entries per thread */
/* Futex contexts: each thread, and thread 0's handler (NT), which waits on
 * its own while thread 0 is interrupted. */
#define NC (NT + HANDLER)
#define MAXC 4

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

/* acquire_slow's results (token.rs Waited) */
#define ACQ 0
#define OWNX 1

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
/* t_sleepers: unregistered waiters between the top of a wait loop
 * iteration (before they read t_wake and look at the word) and a wake-up
 * (the waker uncounts whom it wakes) or the end of the wait. */
byte nsleep[NK];
/* t_wake, the futex event counter. Only "has it moved since the waiter read
 * it" matters: wchg[thread*NK+t] is set by every bump and cleared when the
 * thread reads the counter (exact, and keeps the state space finite). */
bit wchg[MAXC * NK];
byte sleeping[MAXC];  /* futex sleepers (by context): token + 1, or 0 */
/* the waiter (by context) is counted in t_sleepers: from the top of a
 * wait loop iteration, until a futex_wake wakes it (the waker uncounts it)
 * or it stops waiting */
bit counted[MAXC];
bit hin[MAXT];        /* thread i is running its signal handler */
/* thread.rs handing_off: the token thread i's release is handing over, or
 * 255 (a handler's release never nests inside its thread's here: it
 * releases only after the interrupted handoff is finished) */
byte g_handing[MAXT] = 255;

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
/* handoffs to thread i so far (a handler's balance check allows for one
 * that arrived while it ran) */
byte g_handoffs[MAXT];

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
        :: wchg[ctx * NK + t] == 0 -> sleeping[ctx] = t + 1
        :: else -> skip   /* EAGAIN */
        fi
    }
#if FUTEX_TIMEOUT
    if
    :: sleeping[ctx] == 0
    :: atomic { sleeping[ctx] != 0 -> sleeping[ctx] = 0 }
    fi
#else
    sleeping[ctx] == 0
#endif
}

/* sys::futex_wake(wake, n): n is 1 or ALL; the kernel picks which one.
 * Returns how many it woke in fn. With COUNT_SLEEPERS the waker uncounts
 * each sleeper it woke (here in the same step: in the code a moment
 * later, which only over-counts meanwhile). */
#if COUNT_SLEEPERS
#define WOKEN(j) if :: counted[j] -> counted[j] = 0; nsleep[t]-- :: else -> skip fi
#else
#define WOKEN(j) skip
#endif
inline futex_wake(t, nwake) {
    atomic {
        sb[me].n == 0;
        fn = 0;
        if
        :: nwake == ALL ->
            fj = 0;
            do
            :: fj < MAXC ->
                if
                :: sleeping[fj] == t + 1 -> sleeping[fj] = 0; WOKEN(fj); fn++
                :: else -> skip
                fi;
                fj++
            :: else -> break
            od;
            fj = 0
        :: else ->
            if
            :: sleeping[0] == t + 1 -> sleeping[0] = 0; WOKEN(0); fn = 1
            :: sleeping[1] == t + 1 -> sleeping[1] = 0; WOKEN(1); fn = 1
            :: sleeping[2] == t + 1 -> sleeping[2] = 0; WOKEN(2); fn = 1
            :: sleeping[3] == t + 1 -> sleeping[3] = 0; WOKEN(3); fn = 1
            :: else -> skip
            fi
        fi
    }
}

/* token.rs wake_sleepers(everybody) (wake_waiters() is wake_sleepers(false)):
 * bump t_wake (fetch_add: locked), load t_waiters, load t_handoff, wake.
 * With COUNT_SLEEPERS first a locked read of t_sleepers: when it is 0 and
 * no handoff is registered, neither bump nor wake (a waiter counts itself
 * before it reads t_wake and looks at the word: either this read sees it,
 * or its look sees the word this release gave back). */
inline wake_sleepers(t, everybody) {
#if COUNT_SLEEPERS
    atomic { sb[me].n == 0; ws = nsleep[t] }
    load(HOFF(t), wh);
    if
    :: ws == 0 && wh == 0 && !wforce -> skip
    :: else ->
#endif
    atomic {
        sb[me].n == 0;
        fj = 0;
        do
        :: fj < NC -> wchg[fj * NK + t] = 1; fj++
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
    futex_wake(t, wn);
    fn = 0
#if COUNT_SLEEPERS
    fi;
    ws = 0
#endif
    ;
    wh = 0;
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
        :: else -> wake_sleepers(t, 0)
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
        :: th == 0 || (th & HBUSY) || (RECORD_FIRST && (th & HID) == me + 1) ->
            /* none, or another releaser's handoff whose clearing store is
             * still on its way: not a registration; or one of this very
             * thread (a wait its handler, releasing here, interrupted): no
             * handoff to itself */
            th = 0;
            break
        :: th != 0 && !(th & HBUSY) && !(RECORD_FIRST && (th & HID) == me + 1) ->
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
#if RECORD_FIRST
            d_step { g_handing[me] = t };   /* thread.rs handing_off() */
#endif
            atomic {
                sbpush(WORD(t), tnew);
                g_rel_excl(me, t);
                if
                :: (th & HS) -> g_acq_sh((th & HID) - 1, t)
                :: else -> g_acq_excl((th & HID) - 1, t)
                fi;
                g_handed[(th & HID) - 1] = 1;
                g_handoffs[(th & HID) - 1]++
            }
#if RECORD_FIRST
            /* cleared only if still ours (this thread's handler may have
             * finished the handoff, and a new waiter registered since) */
            atomic {
                sb[me].n == 0;
                if
                :: mem[HOFF(t)] == (th | HBUSY) -> mem[HOFF(t)] = 0
                :: else -> skip
                fi
            }
            d_step { g_handing[me] = 255 };
#else
            atomic { sbpush(HOFF(t), 0) }
#endif
            th = 0;
            tnew = 0;
            store_load_barrier();
            /* the code wakes the registered waiter on t_handoff
             * whatever t_sleepers says (the model has one futex) */
            wforce = 1;
#if HANDOFF_WAKES_ALL
            wake_sleepers(t, 1);
#else
            wake_sleepers(t, 0);
#endif
            wforce = 0
        :: else ->
            atomic { sbpush(WORD(t), 0); g_rel_excl(me, t) }
            store_load_barrier();
            wake_sleepers(t, 0)
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
        wake_sleepers(t, tnew == EXCLREQ)
#else
        wake_sleepers(t, 0)
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
    :: wexcl[t] + wsh[t] != 0 -> wake_sleepers(t, 0)
    :: else -> skip
    fi
}

/* acquire_slow(mode, me): the caller holds no word; returns holding t. */
inline acquire_slow(t, mode) {
    /* holding nothing (but a word just handed to the thread's wait that
     * its handler, waiting here, interrupted) */
    assert(g_words[me] == g_handed[me]);
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
            aprev = wexcl[t] + wsh[t];
            if
            :: mode == EXCL -> wexcl[t]++
            :: else -> wsh[t]++
            fi
        }
#if SKIP_MB_WHEN_COUNTED
        /* Another waiter was counted already: every holder that took the
         * word since sees a waiter when it releases, and the holder from
         * before it is that waiter's membarrier's business. Unless that
         * waiter may be this thread's own wait, which this handler
         * interrupted (another reference of the thread to the token; the
         * caller, retake, found one: anest): it cannot go on until the
         * handler returns. */
        if
        :: anest -> aprev = 0
        :: else -> skip
        fi;
        if
        :: aprev == 0 -> publish_to_releasers()
        :: else -> skip
        fi;
#else
        publish_to_releasers();
#endif
        aprev = 0;
        if
        :: mode == EXCL -> amy = me + 1
        :: else -> amy = (me + 1) | HS
        fi;
        areg = 0;
        aresult = ACQ;
        do
        :: true ->
#if COUNT_SLEEPERS
            /* counted in t_sleepers before seen is read (unregistered) */
            if
            :: SLEEPERS_FIRST && !areg && !counted[ctx] -> atomic { sb[me].n == 0; nsleep[t]++; counted[ctx] = 1 }
            :: areg && counted[ctx] -> atomic { sb[me].n == 0; nsleep[t]--; counted[ctx] = 0 }
            :: else -> skip
            fi;
#endif
            wchg[ctx * NK + t] = 0;   /* seen = wake.load() */
            if
            :: areg ->
                load(HOFF(t), ah);
                if
#if HANDOFF_FIX
                :: ah != amy && ah != (amy | HBUSY) ->
#else
                :: ah != amy ->
#endif
                    /* a releaser cleared our registration: the word is
                     * ours, unless a handler on this thread took it over
                     * meanwhile and gave it back (then wait on) */
                    ah = 0;
#if RECORD_FIRST
                    load(WORD(t), aw);
                    if
                    :: mode == EXCL && aw != me + 1 ->
                        /* continue: read the counter again, then try */
                        areg = 0;
                        wchg[ctx * NK + t] = 0
                    :: else ->
#endif
                    if
                    :: mode == EXCL -> assert(g_excl[t] == me + 1)
                    :: else -> assert(g_mysh[me * NK + t] > 0)
                    fi;
                    assert(g_handed[me]);
                    g_handed[me] = 0;
                    break
#if RECORD_FIRST
                    fi;
                    aw = 0
#endif
                :: else -> ah = 0
                fi
            :: else -> skip
            fi;
            try_acquire(t, mode);
#if RECORD_FIRST
            if
            :: tres == SELFX ->
                /* handed to the wait of this thread that this handler
                 * interrupted: take it (exclusive), or ride on it */
                if
                :: areg ->
                    atomic {
                        sb[me].n == 0;
                        if
                        :: mem[HOFF(t)] == amy -> mem[HOFF(t)] = 0
                        :: else -> skip
                        fi
                    }
                :: else -> skip
                fi;
                if
                :: mode == EXCL -> aresult = ACQ; g_handed[me] = 0
                :: else -> aresult = OWNX   /* the interrupted wait notices */
                fi;
                break
            :: else -> skip
            fi;
#endif
            if
            :: tres == OK ->
                if
                :: areg ->
                    /* compare_exchange(my_handoff, 0) */
                    atomic {
                        sb[me].n == 0;
                        if
                        :: mem[HOFF(t)] == amy -> mem[HOFF(t)] = 0; tres2 = OK
                        :: else ->
                            tres2 = RETRY;
                            if
                            :: mode == SHRD -> assert(g_handed[me]); g_handed[me] = 0
                            :: else -> assert(HANDLER && RECORD_FIRST)
                            fi
                        fi
                    }
                    if
                    :: tres2 != OK && mode == SHRD ->
                        /* handed over as well as taken: keep one shared hold */
                        tres2 = 0;
                        release_shared(t)
                    :: tres2 != OK && mode == EXCL ->
                        /* the registration went with a word handed to
                         * this thread, which its handler took and gave
                         * back (an exclusive handoff cannot race with our
                         * own take) */
                        tres2 = 0
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
#if COUNT_SLEEPERS && !SLEEPERS_FIRST
                /* (the order that fails: counted only just before the sleep) */
                if
                :: !areg && !counted[ctx] -> atomic { sb[me].n == 0; nsleep[t]++; counted[ctx] = 1 }
                :: else -> skip
                fi;
#endif
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
#if COUNT_SLEEPERS
        if
        :: counted[ctx] -> atomic { sb[me].n == 0; nsleep[t]--; counted[ctx] = 0 }
        :: else -> skip
        fi;
#endif
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

/* Each thread's reference stack is global, so that its signal handler
 * (proctype Handler: the same `me`, the same store buffer) works on the
 * same one. push and pop are single steps: thread.rs claims a slot before
 * it writes it and clears its flags before it gives it up, so a handler
 * never sees nor overwrites a half-written reference (at most one with
 * flags 0, which no decision below looks at). */
#define DS (D + HANDLER)   /* the handler's reference on top */
#if HANDLER
byte stok[MAXT * DS];
byte sfl[MAXT * DS];
byte sdepth[MAXT];
byte srb[MAXT];
#define RTOK(i) stok[me * DS + (i)]
#define RFL(i) sfl[me * DS + (i)]
#define depth sdepth[me]
#define rb srb[me]
#define STACK_LOCALS byte stack_is_global
#else
/* Without a handler the stack is the thread's own (local variables keep
 * Spin's partial order reduction effective). */
#define RTOK(i) rtok[i]
#define RFL(i) rfl[i]
#define STACK_LOCALS byte rtok[DS]; byte rfl[DS]; byte depth, rb
#endif

#define R_CNT 8   /* thread.rs R_COUNTED: a shared primary's count is in */

/* retake: has the thread a reference to t besides ri (the one it is about
 * to wait for)? Then a wait of its own may be among the counted waiters. */
inline other_ref(t) {
    d_step {
    anest = 0;
    aw = 0;
    do
    :: aw < depth ->
        if
        :: aw != ri && RTOK(aw) == t -> anest = NEST_GUARD
        :: else -> skip
        fi;
        aw++
    :: else -> break
    od;
    aw = 0
    }
}

inline push(t, fl) {
    d_step {
    assert(depth < DS);
    RTOK(depth) = t;
    RFL(depth) = fl;
    pi = depth;
    depth++
    }
}

/* drop the top reference (thread.rs pop / unrecord) */
inline pop() {
    d_step {
    depth--;
    RTOK(depth) = 0;
    RFL(depth) = 0
    }
}

/* load() without its own d_step, for use inside one */
inline load_in(v, r) {
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

/* find_live(tok): the live primary reference, or 255 */
inline find_live(t, r) {
    d_step {
    r = 255;
    fk = rb;
    do
    :: fk < depth && r == 255 ->
        if
        :: RTOK(fk) == t && (RFL(fk) & R_PRIM) -> r = fk
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0
    }
}

/* has_shared_primary(tok) */
inline has_shared_primary(t, r) {
    d_step {
    r = 0;
    fk = 0;
    do
    :: fk < depth && !r ->
        if
        :: RTOK(fk) == t && (RFL(fk) & R_PRIM) && !(RFL(fk) & R_WEXCL) -> r = 1
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0
    }
}

/* has_shared_primary(tok) || has_live_shared_request(tok) */
inline takes_or_holds_shared(t, r) {
    d_step {
    r = 0;
    fk = 0;
    do
    :: fk < depth && !r ->
        if
        :: RTOK(fk) == t && (((RFL(fk) & R_PRIM) && !(RFL(fk) & R_WEXCL)) || (fk >= rb && !(RFL(fk) & R_EXCL))) -> r = 1
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0
    }
}

#if RECORD_FIRST

/* holds_word(i) (inside a d_step): does reference i own its word? Read
 * from the word for an exclusive hold, from R_CNT for a shared one. */
inline holds_word(i, r) {
    r = 0;
    if
    :: (RFL(i) & R_PRIM) && (RFL(i) & R_WEXCL) ->
        load_in(WORD(RTOK(i)), hwv);
        if
        :: hwv == me + 1 -> r = 1
        :: else -> skip
        fi;
        hwv = 0
    :: (RFL(i) & R_PRIM) && !(RFL(i) & R_WEXCL) && (RFL(i) & R_CNT) -> r = 1
    :: else -> skip
    fi
}

/* Without a handler the calls below come only at points where the thread
 * owns exactly the words of its live primaries (a thread's API calls and
 * blocking calls start there, and no other thread can give it a word or
 * take one from it then). There the reads of the word that thread.rs makes
 * give what the thread's own stack says, so the configurations without a
 * handler compute them from the stack (local: Spin's partial order
 * reduction keeps them cheap); those with a handler read the word. */
#if HANDLER
#define HOLDS_WORD_SCAN(i, r) d_step { holds_word(i, r) }
#else
#define HOLDS_WORD_SCAN(i, r) r = ((RFL(i) & R_PRIM) && (i) >= rb)
#endif

/* holds_word_of(tok) */
#if !HANDLER
inline holds_word_of(t, r) {
    find_live(t, r);
    r = (r != 255)
}
#else
inline holds_word_of(t, r) {
    d_step {
    load_in(WORD(t), hwv);
    r = (hwv == me + 1);
    hwv = 0;
    fk = 0;
    do
    :: fk < depth && !r ->
        if
        :: RTOK(fk) == t && (RFL(fk) & R_PRIM) && (RFL(fk) & R_CNT) -> r = 1
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0
    }
}
#endif

/* has_unowned_primary(tok, except) */
#if !HANDLER
inline has_unowned_primary(t, except, r) {
    r = 0
}
#else
inline has_unowned_primary(t, except, r) {
    d_step {
    r = 0;
    fk = 0;
    do
    :: fk < depth && !r ->
        if
        :: fk != except && RTOK(fk) == t && (RFL(fk) & R_PRIM) ->
            holds_word(fk, cs);
            r = !cs
        :: else -> skip
        fi;
        fk++
    :: else -> break
    od;
    fk = 0;
    cs = 0
    }
}
#endif

/* took(i): reference i's word was just taken */
inline took(i) {
    d_step {
    if
    :: !(RFL(i) & R_WEXCL) -> RFL(i) = RFL(i) | R_CNT
    :: else -> skip
    fi
    }
}

/* join_shared(tok): tres2 OK when a shared count was added (to a shared
 * word, past EXCLREQ, or to a reserved one) */
inline join_shared(t) {
    load(WORD(t), tw);
    tres2 = RETRY;
    do
    :: (tw & SHARED) || tw == EXCLREQ ->
        if
        :: tw == EXCLREQ -> tnew = EXCLREQ | SHARED | COUNT1
        :: else -> tnew = tw + COUNT1
        fi;
        atomic {
            sb[me].n == 0;
            if
            :: mem[WORD(t)] == tw -> mem[WORD(t)] = tnew; g_acq_sh(me, t); tres2 = OK
            :: else -> tw = mem[WORD(t)]
            fi
        }
        if
        :: tres2 == OK -> break
        :: else -> skip
        fi
    :: else -> break
    od;
    tw = 0;
    tnew = 0
}

/* give_back(i): the word of primary reference i (still recorded) */
inline give_back(i) {
    if
    :: (RFL(i) & R_WEXCL) -> release_exclusive(RTOK(i))
    :: else ->
        d_step { RFL(i) = RFL(i) & ~R_CNT };
        release_shared(RTOK(i))
    fi
}

/* release_all(): every word the thread owns (judged one by one, from the
 * top), then the references count as released */
inline release_all() {
    rel_below = rb;
    rel_upto = depth;
    words = 0;
    ri = rel_upto;
    do
    :: ri > 0 ->
        ri--;
        HOLDS_WORD_SCAN(ri, ck);
        if
        :: ck -> ck = 0; give_back(ri); words = words | (1 << ri)
        :: !ck && (RFL(ri) & R_PRIM) ->
            /* a handler about to block while its thread is between a
             * release and what goes with it: finish its handoff, wake
             * everybody now */
            if
            :: g_handing[me] == RTOK(ri) ->
                load(HOFF(RTOK(ri)), th);
                if
                :: (th & HBUSY) ->
                    atomic {
                        sb[me].n == 0;
                        if
                        :: mem[HOFF(RTOK(ri))] == th -> mem[HOFF(RTOK(ri))] = 0
                        :: else -> skip
                        fi
                    };
                    /* finish_handoff wakes t_handoff itself */
                    wforce = 1
                :: else -> skip
                fi;
                th = 0
            :: else -> skip
            fi;
            wake_sleepers(RTOK(ri), 1);
            wforce = 0
        :: else -> skip
        fi
    :: else -> break
    od;
    ri = 0;
    rb = rel_upto
}

/* retake(Released { below, upto, words }): the references are live again
 * first, then their words are taken, all or nothing */
inline retake() {
    rb = rel_below;
    held = 0;
    do
    :: true ->
        rfail = 0;
        ri = 0;
        do
        :: ri < rel_upto ->
            if
            :: (words & (1 << ri)) && !(held & (1 << ri)) ->
                gw = 0;
                try_acquire(RTOK(ri), ((RFL(ri) & R_WEXCL) -> EXCL : SHRD));
                if
                :: tres == OK -> took(ri); held = held | (1 << ri)
                :: tres == SELFX ->
                    /* handed to the interrupted wait of this thread (this
                     * is its handler) */
                    assert(HANDLER);
                    if
                    :: (RFL(ri) & R_WEXCL) -> held = held | (1 << ri); g_handed[me] = 0
                    :: else -> d_step { RFL(ri) = RFL(ri) & ~R_PRIM }
                    fi
                :: (tres == BSH || tres == OTHER) && !(RFL(ri) & R_WEXCL) ->
                    has_unowned_primary(RTOK(ri), ri, ck);
                    if
                    :: ck -> join_shared(RTOK(ri))
                    :: else -> tres2 = RETRY
                    fi;
                    ck = 0;
                    if
                    :: tres2 == OK -> took(ri); held = held | (1 << ri)
                    :: else -> gw = 1
                    fi;
                    tres2 = 0
                :: else -> gw = 1
                fi;
                if
                :: gw && (RFL(ri) & R_WEXCL) ->
                    /* an exclusive request on the thread's own shared hold
                     * or wait is a misuse (SPEC S5): never here */
                    has_shared_primary(RTOK(ri), ck);
                    assert(!ck)
                :: else -> skip
                fi;
                if
                :: gw ->
                    /* give back what we took, wait for this one holding
                     * nothing (references released), then again */
                    gw = 0;
                    rj = rel_upto;
                    do
                    :: rj > 0 ->
                        rj--;
                        if
                        :: (held & (1 << rj)) -> give_back(rj)
                        :: else -> skip
                        fi
                    :: else -> break
                    od;
                    rj = 0;
                    rb = rel_upto;
                    other_ref(RTOK(ri));
                    acquire_slow(RTOK(ri), ((RFL(ri) & R_WEXCL) -> EXCL : SHRD));
                    anest = 0;
                    if
                    :: aresult == ACQ -> took(ri); held = 1 << ri
                    :: else -> d_step { RFL(ri) = RFL(ri) & ~R_PRIM }; held = 0
                    fi;
                    aresult = 0;
                    rb = rel_below;
                    rfail = 1;
                    break
                :: else -> skip
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
    words = 0;
    rel_below = 0;
    rel_upto = 0
}

/* wait_for(): release all, push the new reference as not yet held, retake
 * all with it on top */
inline wait_for(t, mode) {
    release_all();
    if
    :: mode == EXCL -> push(t, R_PRIM | R_EXCL | R_WEXCL)
    :: else -> push(t, R_PRIM)
    fi;
    rb = depth;
    words = words | (1 << pi);
    rel_upto = depth;
    retake()
}

/* get(): lwkt_gettoken / lwkt_gettoken_shared. hmis: the request is a
 * misuse (the process would abort; the model goes on as if it had not
 * been made: nothing was changed). */
inline get(t, mode) {
    hmis = 0;
    hwait = 0;
    if
    :: mode == SHRD -> holds_word_of(t, ck)
    :: else -> ck = 0
    fi;
    if
    :: ck -> ck = 0; push(t, 0)   /* shared on the thread's own hold */
    :: else ->
        /* take_new(): the reference first, then the word */
        if
        :: mode == EXCL -> push(t, R_PRIM | R_EXCL | R_WEXCL)
        :: else -> push(t, R_PRIM)
        fi;
        try_acquire(t, mode);
        if
        :: tres == OK -> took(pi)
        :: else ->
            pop();
            /* take_recursive() */
            if
            :: tres == SELFX ->
                if
                :: mode == EXCL -> push(t, R_EXCL)
                :: else -> push(t, 0)
                fi
            :: (tres == BSH || tres == OTHER) && mode == EXCL ->
                if
                :: tres == BSH -> takes_or_holds_shared(t, ck)
                :: else -> has_shared_primary(t, ck)
                fi;
                if
                :: ck -> hmis = 1
                :: else -> hwait = 1
                fi;
                ck = 0
            :: (tres == BSH || tres == OTHER) && mode == SHRD ->
                has_unowned_primary(t, 255, ck);
                if
                :: ck ->
                    ck = 0;
                    push(t, R_PRIM);
                    join_shared(t);
                    if
                    :: tres2 == OK -> took(pi)
                    :: else -> pop(); hwait = 1
                    fi;
                    tres2 = 0
                :: else -> hwait = 1
                fi
            fi
        fi
    fi;
    tres = 0;
    if
    :: hwait -> hwait = 0; wait_for(t, mode)
    :: else -> skip
    fi
}

/* downgrade_if_last_exclusive(tok): the word first, then the flags */
inline downgrade_if_last_exclusive(t) {
    ck = 0;
    fk = rb;
    do
    :: fk < depth ->
        if
        :: RTOK(fk) == t && (RFL(fk) & R_EXCL) -> ck = 1
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
        :: p != 255 && (RFL(p) & R_WEXCL) ->
            HOLDS_WORD_SCAN(p, ck);
            if
            :: ck ->
                downgrade(t);
                d_step { RFL(p) = (RFL(p) & ~R_WEXCL) | R_CNT }
            :: else -> skip
            fi
        :: else -> skip
        fi;
        p = 0
    :: else -> skip
    fi;
    ck = 0
}

/* rel(): lwkt_reltoken of the most recent reference: its word first, then
 * the reference */
inline rel() {
    d_step {
        assert(depth > rb);
        ct = RTOK(depth - 1);
        cf = RFL(depth - 1)
    }
    if
    :: (cf & R_PRIM) && (cf & R_WEXCL) -> release_exclusive(ct); pop()
    :: (cf & R_PRIM) && !(cf & R_WEXCL) ->
        d_step { RFL(depth - 1) = RFL(depth - 1) & ~R_CNT };
        release_shared(ct);
        pop()
    :: !(cf & R_PRIM) ->
        pop();
        if
        :: (cf & R_EXCL) -> downgrade_if_last_exclusive(ct)
        :: else -> skip
        fi
    fi;
    ct = 0;
    cf = 0
}

#else /* !RECORD_FIRST: the order before */

/* holds_word(i) for the handler's balance check: a live primary owns its
 * word (an exclusive one: if the word says so) */
inline holds_word(i, r) {
    r = 0;
    if
    :: (RFL(i) & R_PRIM) && (RFL(i) & R_WEXCL) ->
        load_in(WORD(RTOK(i)), hwv);
        if
        :: hwv == me + 1 -> r = 1
        :: else -> skip
        fi;
        hwv = 0
    :: (RFL(i) & R_PRIM) && !(RFL(i) & R_WEXCL) && i >= rb -> r = 1
    :: else -> skip
    fi
}

/* give_back_one(): release the word of a primary reference */
inline give_back(i) {
    if
    :: (RFL(i) & R_WEXCL) -> release_exclusive(RTOK(i))
    :: else -> release_shared(RTOK(i))
    fi
}

/* release_all(): the boundary first, then every live word, most recent
 * first */
inline release_all() {
    rel_below = rb;
    rel_upto = depth;
    rb = depth;
    ri = rel_upto;
    do
    :: ri > rel_below ->
        ri--;
        if
        :: (RFL(ri) & R_PRIM) -> give_back(ri)
        :: else -> skip
        fi
    :: else -> break
    od;
    ri = 0
}

/* retake(): the words first, the boundary last */
inline retake() {
    held = 0;
    do
    :: true ->
        rfail = 0;
        ri = rel_below;
        do
        :: ri < rel_upto ->
            if
            :: (RFL(ri) & R_PRIM) && !(held & (1 << ri)) ->
                try_acquire(RTOK(ri), ((RFL(ri) & R_WEXCL) -> EXCL : SHRD));
                if
                :: tres == OK || tres == SELFX ->
                    /* SelfExclusive: "taken in an earlier pass" */
                    held = held | (1 << ri)
                :: else ->
                    rj = rel_upto;
                    do
                    :: rj > rel_below ->
                        rj--;
                        if
                        :: (held & (1 << rj)) -> give_back(rj)
                        :: else -> skip
                        fi
                    :: else -> break
                    od;
                    rj = 0;
                    other_ref(RTOK(ri));
                    acquire_slow(RTOK(ri), ((RFL(ri) & R_WEXCL) -> EXCL : SHRD));
                    anest = 0;
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
        :: rfail -> skip
        :: else -> break
        fi
    od;
    held = 0;
    rb = rel_below;
    rel_below = 0;
    rel_upto = 0
}

/* get(): the word first, then the reference */
inline get(t, mode) {
    hmis = 0;
    try_acquire(t, mode);
    if
    :: tres == OK ->
        if
        :: mode == EXCL -> push(t, R_PRIM | R_EXCL | R_WEXCL)
        :: else -> push(t, R_PRIM)
        fi
    :: else ->
        find_live(t, p);
        if
        :: tres == SELFX && (p == 255 || !(RFL(p) & R_WEXCL)) ->
            /* its own id in the word and no live reference: "an
             * interrupted retake"; the handler takes the word over */
            if
            :: mode == EXCL -> push(t, R_PRIM | R_EXCL | R_WEXCL)
            :: else -> push(t, R_PRIM | R_WEXCL)
            fi
        :: tres == SELFX ->
            if
            :: mode == EXCL -> push(t, R_EXCL)
            :: else -> push(t, 0)
            fi
        :: tres == BSH && p != 255 ->
            if
            :: mode == EXCL -> hmis = 1
            :: else -> push(t, 0)
            fi
        :: else ->
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

inline downgrade_if_last_exclusive(t) {
    ck = 0;
    fk = rb;
    do
    :: fk < depth ->
        if
        :: RTOK(fk) == t && (RFL(fk) & R_EXCL) -> ck = 1
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
        :: p != 255 && (RFL(p) & R_WEXCL) ->
            RFL(p) = RFL(p) & ~R_WEXCL;
            downgrade(t)
        :: else -> skip
        fi;
        p = 0
    :: else -> skip
    fi;
    ck = 0
}

/* rel(): the reference first, then the word */
inline rel() {
    d_step {
        assert(depth > rb);
        depth--;
        ct = RTOK(depth);
        cf = RFL(depth);
        RTOK(depth) = 0;
        RFL(depth) = 0
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

#endif /* RECORD_FIRST */

/* After every API call: the thread holds exactly the words of its live
 * primary references, in their word modes (and a shared primary has
 * noted its count). */
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
            :: RTOK(fk) == cs && (RFL(fk) & R_PRIM) ->
                if
                :: (RFL(fk) & R_WEXCL) -> assert(g_excl[cs] == me + 1)
                :: else ->
                    ck++;
                    assert(!RECORD_FIRST || (RFL(fk) & R_CNT))
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
                :: RTOK(fk) == cs && (RFL(fk) & R_PRIM) -> ck++
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
        :: (RFL(fk) & R_PRIM) -> ck++
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

/* swap(): lwkt_token_swap */
inline swap() {
    d_step {
    if
    :: RTOK(depth - 2) == RTOK(depth - 1) ->
        /* same token: the lower reference stays the primary; the
         * requested modes trade places */
        cf = RFL(depth - 2) & R_EXCL;
        ct = RFL(depth - 1) & R_EXCL;
        RFL(depth - 2) = (RFL(depth - 2) & ~R_EXCL) | ct;
        RFL(depth - 1) = (RFL(depth - 1) & ~R_EXCL) | cf
    :: else ->
        ct = RTOK(depth - 2);
        cf = RFL(depth - 2);
        RTOK(depth - 2) = RTOK(depth - 1);
        RFL(depth - 2) = RFL(depth - 1);
        RTOK(depth - 1) = ct;
        RFL(depth - 1) = cf
    fi;
    ct = 0;
    cf = 0
    }
}

/* the locals every inline above uses */
#define INLINE_LOCALS \
    byte ctx, pi, ct, cf, p, fk, ck, cs, hwv, hmis, hwait; \
    byte li, fj, mb, fq, wx, wh, wn, tw, tnew, th, tres, tres2; \
    byte aw, ah, amy, aresult, aprev, fn, ws; \
    bit anest, wforce; \
    bit areg, rfail, gw; \
    byte ri, rj, held, words, rel_below, rel_upto

/* A thread: any sequence of correct API use (no misuse): up to K requests
 * (exclusive or shared, of any token, recursive or not), releases of the
 * most recent reference, up to BLOCKS blocking calls while holding, one
 * lwkt_token_swap; it ends holding nothing. Thread 0 does nothing while
 * its handler runs. */
inline thread_body() {
    ctx = me;
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
            :: p != 255 && (RFL(p) & R_WEXCL) -> cf = EXCL /* not on own shared */
            :: cf = SHRD
            fi;
            p = 0
        }
        get(ct, cf);
        assert(!hmis);
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

proctype Thread(byte me) {
    INLINE_LOCALS;
    STACK_LOCALS;
    byte step, nblock;
    bit swapped;
    thread_body()
}

#if HANDLER
/* Thread 0 does nothing while its handler runs. */
proctype Thread0(byte me) provided (hin[0] == 0) {
    INLINE_LOCALS;
    STACK_LOCALS;
    byte step, nblock;
    bit swapped;
    thread_body()
}

/* Thread 0's signal handler: runs once (or never), at any point of thread
 * 0 (which does nothing meanwhile; a futex wait it interrupts returns, as
 * with EINTR), on thread 0's stack: takes token 0 exclusively or shared,
 * maybe blocks holding it (HBLOCKS), releases it. It must hold what it
 * took, and leave every reference below its own owning exactly the words
 * it owned before (but a word handed to the thread's wait). */
proctype Handler(byte me) {
    INLINE_LOCALS;
    byte hmode, hsnap, hdepth, hhand, hi;
    bit hhanded;

    ctx = NT;
end:
    if
    :: atomic { hin[me] == 0 -> hin[me] = 1; sleeping[me] = 0 }
    fi;
    d_step {
        hdepth = depth;
        hhand = g_handoffs[me];
        hhanded = g_handed[me];
        hsnap = 0;
        hi = 0;
        do
        :: hi < depth ->
            holds_word(hi, ck);
            hsnap = hsnap | (ck << hi);
            hi++
        :: else -> break
        od;
        hi = 0;
        ck = 0
    }
    /* Exclusively only where that is no misuse: the thread does not hold,
     * take or wait for token 0 shared (it cannot start to meanwhile). */
    takes_or_holds_shared(0, ck);
    if
    :: !ck -> hmode = EXCL
    :: HMODES > 1 -> hmode = SHRD
    :: else -> hmode = 255   /* nothing to take */
    fi;
    ck = 0;
    if
    :: hmode != 255 -> get(0, hmode)
    :: else -> hmis = 1
    fi;
    if
    :: hmis -> skip   /* a misuse: the process aborts */
    :: else ->
        assert(g_excl[0] == me + 1 || g_mysh[me * NK + 0] > 0);
        if
        :: HBLOCKS ->
            release_all();
            retake();
            assert(g_excl[0] == me + 1 || g_mysh[me * NK + 0] > 0)
        :: true -> skip
        fi;
        rel()
    fi;
    d_step {
        assert(depth == hdepth);
        hi = 0;
        do
        :: hi < depth ->
            holds_word(hi, ck);
            /* (a word handed to the thread's wait may arrive, be noticed
             * or be taken over meanwhile: then it may differ) */
            assert(ck == ((hsnap >> hi) & 1) || g_handoffs[me] != hhand || hhanded || g_handed[me]);
            hi++
        :: else -> break
        od;
        hi = 0;
        ck = 0
    }
    hin[me] = 0
}
#endif

init {
    byte i;
    atomic {
        do
        :: i < NT ->
#if HANDLER
            if
            :: i == 0 -> run Thread0(i); run Handler(0)
            :: else -> run Thread(i)
            fi;
#else
            run Thread(i);
#endif
            run Flusher(i);
            i++
        :: else -> break
        od
    }
}
