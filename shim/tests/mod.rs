//! Unit tests of the token core through the C API functions (the hooks are
//! left out of the test build: the test harness must not interpose its own
//! calls). Waits use deadlines of seconds; holders that must keep a token
//! spin.

// Every block here calls the C API on tokens this test made and keeps
// alive until its threads are joined: a comment on each would say only that.
#![allow(clippy::undocumented_unsafe_blocks)]

use core::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::api::*;
use crate::thread as tstate;
use crate::token::Token;

const DEADLINE: Duration = Duration::from_secs(20);

fn new_token(name: &'static [u8]) -> Box<Token> {
    let mut t: Box<Token> = Box::new(unsafe { core::mem::zeroed() });
    unsafe { lwkt_token_init(&mut *t, name.as_ptr() as *const _) };
    t
}

/// A token shared between test threads.
#[derive(Clone, Copy)]
struct Shared(*mut Token);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn leak(name: &'static [u8]) -> Shared {
    Shared(Box::into_raw(new_token(name)))
}

fn spin_until(flag: &AtomicBool) {
    let end = Instant::now() + DEADLINE;
    while !flag.load(SeqCst) {
        assert!(Instant::now() < end, "timed out");
        std::hint::spin_loop();
    }
}

#[test]
fn zero_filled_token_is_free_and_unnamed() {
    let mut t: Token = unsafe { core::mem::zeroed() };
    unsafe {
        lwkt_gettoken(&mut t);
        assert_eq!(lwkt_cnttoken(&mut t), 1);
        assert_eq!(lwkt_token_held_excl(&mut t), 1);
        lwkt_reltoken(&mut t);
        assert_eq!(lwkt_cnttoken(&mut t), 0);
        assert_eq!(t.t_word, 0, "released token must be free");
    }
}

#[test]
fn recursion_counts_every_reference() {
    let mut t = new_token(b"rec\0");
    unsafe {
        lwkt_gettoken(&mut *t);
        lwkt_gettoken(&mut *t);
        lwkt_gettoken_shared(&mut *t);
        assert_eq!(lwkt_cnttoken(&mut *t), 3);
        assert_eq!(lwkt_token_held_excl(&mut *t), 1);
        lwkt_reltoken(&mut *t);
        lwkt_reltoken(&mut *t);
        assert_eq!(lwkt_cnttoken(&mut *t), 1);
        assert_ne!(t.t_word, 0, "still held by the first reference");
        lwkt_reltoken(&mut *t);
        assert_eq!(t.t_word, 0);
    }
}

#[test]
fn shared_holders_coexist_and_exclude_exclusive() {
    let t = leak(b"sh\0");
    let inside = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (inside, go) = (inside.clone(), go.clone());
            thread::spawn(move || unsafe {
                let t = t;
                lwkt_gettoken_shared(t.0);
                inside.fetch_add(1, SeqCst);
                // Both must be inside together: wait for the other.
                let end = Instant::now() + DEADLINE;
                while inside.load(SeqCst) < 2 {
                    assert!(Instant::now() < end, "shared holders did not coexist");
                }
                // An exclusive try from here fails (we hold it shared is a
                // misuse for gettoken, but the other thread tries below).
                spin_until(&go);
                lwkt_reltoken(t.0);
            })
        })
        .collect();
    let end = Instant::now() + DEADLINE;
    while inside.load(SeqCst) < 2 {
        assert!(Instant::now() < end);
    }
    unsafe {
        assert_eq!(
            lwkt_trytoken(t.0),
            0,
            "exclusive must fail while shared holders run"
        );
        assert_eq!(
            lwkt_trytoken_shared(t.0),
            1,
            "another shared holder may join"
        );
        lwkt_reltoken(t.0);
    }
    go.store(true, SeqCst);
    for h in hs {
        h.join().unwrap();
    }
    unsafe {
        assert_eq!(lwkt_trytoken(t.0), 1);
        lwkt_reltoken(t.0);
    }
}

#[test]
fn swap_exchanges_the_two_most_recent_references() {
    let mut a = new_token(b"A\0");
    let mut b = new_token(b"B\0");
    unsafe {
        lwkt_gettoken(&mut *a);
        lwkt_gettoken(&mut *b);
        lwkt_token_swap();
        lwkt_reltoken(&mut *a); // A is on top now
        assert_eq!(a.t_word, 0);
        assert_ne!(b.t_word, 0);
        lwkt_reltoken(&mut *b);
        assert_eq!(b.t_word, 0);
    }
}

#[test]
fn swap_of_one_token_downgrades_when_the_exclusive_reference_goes() {
    let mut a = new_token(b"A\0");
    unsafe {
        lwkt_gettoken(&mut *a);
        lwkt_gettoken_shared(&mut *a);
        lwkt_token_swap();
        lwkt_reltoken(&mut *a); // the exclusive reference (now on top)
        assert_eq!(lwkt_token_held_excl(&mut *a), 0);
        assert_eq!(lwkt_cnttoken(&mut *a), 1);
        assert_ne!(
            a.t_word & crate::token::SHARED,
            0,
            "word must be shared now"
        );
        lwkt_reltoken(&mut *a);
        assert_eq!(a.t_word, 0);
    }
}

#[test]
fn pool_tokens_are_stable_and_aligned() {
    let x = 5u64;
    let p1 = lwkt_token_pool_lookup(&x as *const u64 as *const _);
    let p2 = lwkt_token_pool_lookup(&x as *const u64 as *const _);
    assert_eq!(p1, p2);
    assert_eq!(p1 as usize % 64, 0);
    let distinct: std::collections::HashSet<usize> = (0..4096usize)
        .map(|i| lwkt_token_pool_lookup((i * 64) as *const _) as usize)
        .collect();
    assert!(
        distinct.len() > 1024,
        "pool hash spreads addresses ({} slots used)",
        distinct.len()
    );
    unsafe {
        let t = lwkt_getpooltoken(&x as *const u64 as *const _);
        assert_eq!(t, p1);
        assert_eq!(lwkt_cnttoken(t), 1);
        lwkt_relpooltoken(&x as *const u64 as *const _);
        assert_eq!(lwkt_cnttoken(t), 0);
    }
}

#[test]
fn counter_under_one_token_is_exact() {
    let t = leak(b"counter\0");
    let counter = Arc::new(AtomicU64::new(0));
    const N: u64 = 200_000;
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let c = counter.clone();
            thread::spawn(move || unsafe {
                let t = t;
                for _ in 0..N {
                    lwkt_gettoken(t.0);
                    // A racy read-modify-write: only exclusion keeps it exact.
                    let v = c.load(Relaxed);
                    c.store(v + 1, Relaxed);
                    lwkt_reltoken(t.0);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(counter.load(SeqCst), 4 * N);
}

#[test]
fn contention_releases_the_waiters_other_tokens() {
    // A holds T1 and waits for T2 (held by C): meanwhile B can take T1.
    let t1 = leak(b"T1\0");
    let t2 = leak(b"T2\0");
    let c_holds = Arc::new(AtomicBool::new(false));
    let b_done = Arc::new(AtomicBool::new(false));
    let c = {
        let (c_holds, b_done) = (c_holds.clone(), b_done.clone());
        thread::spawn(move || unsafe {
            let t2 = t2;
            lwkt_gettoken(t2.0);
            c_holds.store(true, SeqCst);
            spin_until(&b_done);
            lwkt_reltoken(t2.0);
        })
    };
    spin_until(&c_holds);
    let a_holds = Arc::new(AtomicBool::new(false));
    let a = {
        let a_holds = a_holds.clone();
        thread::spawn(move || unsafe {
            let (t1, t2) = (t1, t2);
            lwkt_gettoken(t1.0);
            a_holds.store(true, SeqCst);
            let mark = lwkt_mark();
            lwkt_gettoken(t2.0); // waits; T1 is released meanwhile
            let lost = lwkt_token_lost_since(t1.0, mark);
            assert_eq!(lwkt_cnttoken(t1.0), 1);
            assert_eq!(lwkt_cnttoken(t2.0), 1);
            lwkt_reltoken(t2.0);
            lwkt_reltoken(t1.0);
            lost
        })
    };
    // B: take T1 while A waits (A holds it until it waits for T2).
    spin_until(&a_holds);
    let end = Instant::now() + DEADLINE;
    unsafe {
        while lwkt_trytoken(t1.0) == 0 {
            assert!(
                Instant::now() < end,
                "T1 was never released by the waiting thread"
            );
        }
        lwkt_reltoken(t1.0);
    }
    b_done.store(true, SeqCst);
    assert_eq!(a.join().unwrap(), 1, "A must learn that T1 was taken");
    c.join().unwrap();
}

#[test]
fn abba_never_deadlocks() {
    let t1 = leak(b"A\0");
    let t2 = leak(b"B\0");
    let hs: Vec<_> = (0..2)
        .map(|i| {
            thread::spawn(move || unsafe {
                let (x, y) = if i == 0 { (t1, t2) } else { (t2, t1) };
                for _ in 0..20_000 {
                    lwkt_gettoken(x.0);
                    lwkt_gettoken(y.0);
                    lwkt_reltoken(y.0);
                    lwkt_reltoken(x.0);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn trytoken_fails_without_releasing_other_tokens() {
    let t1 = leak(b"T1\0");
    let t2 = leak(b"T2\0");
    let holds = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let h = {
        let (holds, done) = (holds.clone(), done.clone());
        thread::spawn(move || unsafe {
            let t2 = t2;
            lwkt_gettoken(t2.0);
            holds.store(true, SeqCst);
            spin_until(&done);
            lwkt_reltoken(t2.0);
        })
    };
    spin_until(&holds);
    unsafe {
        lwkt_gettoken(t1.0);
        let mark = lwkt_mark();
        assert_eq!(lwkt_trytoken(t2.0), 0);
        assert_eq!(lwkt_lost_since(mark), 0);
        assert_ne!((*t1.0).t_word, 0, "T1 still held");
        lwkt_reltoken(t1.0);
    }
    done.store(true, SeqCst);
    h.join().unwrap();
}

#[test]
fn release_all_and_retake_restore_modes_and_counts() {
    let mut a = new_token(b"A\0");
    let mut b = new_token(b"B\0");
    unsafe {
        lwkt_gettoken(&mut *a);
        lwkt_gettoken_shared(&mut *b);
        lwkt_gettoken(&mut *a);
        let r = tstate::release_all("test");
        assert!(!tstate::holds_tokens());
        assert_eq!(a.t_word, 0);
        assert_eq!(b.t_word, 0);
        tstate::retake(r, "test");
        assert!(tstate::holds_tokens());
        assert_eq!(lwkt_cnttoken(&mut *a), 2);
        assert_eq!(lwkt_token_held_excl(&mut *a), 1);
        assert_eq!(lwkt_token_held_excl(&mut *b), 0);
        assert_eq!(lwkt_cnttoken(&mut *b), 1);
        lwkt_reltoken(&mut *a);
        lwkt_reltoken(&mut *b);
        lwkt_reltoken(&mut *a);
        assert_eq!(a.t_word, 0);
        assert_eq!(b.t_word, 0);
    }
}

#[test]
fn a_waiter_is_served_while_others_keep_taking_the_token() {
    // Two threads hammer the token; a third must still get it, many times,
    // within the deadline (S7: no waiter starves).
    let t = leak(b"busy\0");
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || unsafe {
                let t = t;
                while !stop.load(Relaxed) {
                    lwkt_gettoken(t.0);
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    lwkt_reltoken(t.0);
                }
            })
        })
        .collect();
    let end = Instant::now() + DEADLINE;
    for _ in 0..2000 {
        unsafe {
            lwkt_gettoken(t.0);
            lwkt_reltoken(t.0);
        }
        assert!(Instant::now() < end, "the third thread starved");
    }
    stop.store(true, SeqCst);
    for h in hammers {
        h.join().unwrap();
    }
}

#[test]
fn waiter_and_sleeper_counts_return_to_zero() {
    // Holds long enough that waiters go to sleep, exclusive and shared
    // mixed: every waiter and sleeper counted on the way (t_waiters,
    // t_sleepers, which a wake-up uncounts for the sleepers it wakes) must
    // be uncounted once everybody is done, or later releases would make
    // system calls for nobody, and waits skip membarrier for nobody.
    let t = leak(b"counts\0");
    let end = Instant::now() + DEADLINE;
    let hs: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || unsafe {
                let t = t;
                for k in 0..400 {
                    if (i + k) % 3 == 0 {
                        lwkt_gettoken_shared(t.0);
                    } else {
                        lwkt_gettoken(t.0);
                    }
                    let until = Instant::now() + Duration::from_micros(20);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                    lwkt_reltoken(t.0);
                    assert!(Instant::now() < end, "timed out");
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let tok = unsafe { &*t.0 };
    assert_eq!(tok.word().load(SeqCst), 0, "word left taken");
    assert_eq!(
        unsafe { ptr::read_volatile(&tok.t_waiters) },
        0,
        "t_waiters"
    );
    assert_eq!(
        unsafe { ptr::read_volatile(&tok.t_sleepers) },
        0,
        "t_sleepers"
    );
}

#[test]
fn uninit_marks_the_token_dead() {
    let mut t = new_token(b"gone\0");
    unsafe {
        lwkt_token_uninit(&mut *t);
        assert!(crate::token::is_dead(t.t_word));
        lwkt_token_init(&mut *t, ptr::null());
        lwkt_gettoken(&mut *t);
        lwkt_reltoken(&mut *t);
    }
}

#[test]
fn version_is_cargo_tomls() {
    let field = |name: &str, v: &str| -> core::ffi::c_int {
        v.parse()
            .unwrap_or_else(|_| panic!("CARGO_PKG_VERSION_{name} {v:?}"))
    };
    assert_eq!(
        LWKT_VERSION_MAJOR,
        field("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        "LWKT_VERSION_MAJOR in shim/api/version.rs differs from Cargo.toml's version"
    );
    assert_eq!(
        LWKT_VERSION_MINOR,
        field("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        "LWKT_VERSION_MINOR in shim/api/version.rs differs from Cargo.toml's version"
    );
    assert_eq!(
        LWKT_VERSION_PATCH,
        field("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
        "LWKT_VERSION_PATCH in shim/api/version.rs differs from Cargo.toml's version"
    );
    let s = unsafe { core::ffi::CStr::from_ptr(lwkt_version()) };
    assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

// The hooks' parts a test build can hold, and the fault-free reading of
// descriptions.
mod interpose_parts;

// The registry an outside reader finds the threads through.
mod registry;

/// A signal handler's shared wait (`alone` false: a wait of its thread is
/// interrupted) on a word held shared once and reserved for an exclusive
/// waiter: that hold may be the one handed to the interrupted wait, which
/// cannot give it back before the handler returns. The handler's wait
/// joins it instead of waiting behind the reservation for its own thread
/// (core::signal_handler_stress hung so).
#[test]
fn nested_shared_wait_joins_a_reserved_shared_word() {
    use crate::token::{Mode, Waited, COUNT_ONE, EXCLREQ, PROCESS_ID, SHARED};
    let t = leak(b"nested_shared\0");
    let pid = PROCESS_ID.load(Relaxed) as u64;
    let held = SHARED | EXCLREQ | COUNT_ONE | pid;
    // The interrupted wait's handed hold, an exclusive waiter's request.
    unsafe { (*t.0).t_word = held };
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    thread::spawn(move || {
        let t = t;
        let tok = unsafe { &*t.0 };
        let tid = crate::sys::gettid();
        let w = tok.acquire_slow(Mode::Shared, tid, false);
        assert!(matches!(w, Waited::Acquired));
        d.store(true, SeqCst);
    });
    spin_until(&done);
    let tok = unsafe { &*t.0 };
    assert_eq!(tok.t_word, held + COUNT_ONE);
}
