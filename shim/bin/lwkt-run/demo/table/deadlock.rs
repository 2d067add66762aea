//! Deadlock avoidance: ABBA. X takes A then B, Y takes B then A, and each
//! asks for its second lock only once both hold their first: with mutexes
//! that is a certain deadlock.

use super::{ms, spawn, Cell, Row};
use crate::demo::locks::{Kind, Lock};
use crate::demo::{poll_until, spin_until, DEADLINE};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

/// One ABBA round; how long it took, or None if it did not finish within
/// `limit` (its threads are then left stuck: they die with the process).
fn abba(a: Lock, b: Lock, limit: Duration) -> Option<Duration> {
    struct Shared {
        x_has_a: AtomicBool,
        y_has_b: AtomicBool,
        finished: AtomicUsize,
    }
    let s: &'static Shared = Box::leak(Box::new(Shared {
        x_has_a: AtomicBool::new(false),
        y_has_b: AtomicBool::new(false),
        finished: AtomicUsize::new(0),
    }));
    let t0 = Instant::now();
    let x = spawn("X", move || {
        a.lock();
        s.x_has_a.store(true, SeqCst);
        spin_until(|| s.y_has_b.load(SeqCst), DEADLINE);
        b.lock();
        b.unlock();
        a.unlock();
        s.finished.fetch_add(1, SeqCst);
    });
    let y = spawn("Y", move || {
        b.lock();
        s.y_has_b.store(true, SeqCst);
        spin_until(|| s.x_has_a.load(SeqCst), DEADLINE);
        a.lock();
        a.unlock();
        b.unlock();
        s.finished.fetch_add(1, SeqCst);
    });
    if poll_until(|| s.finished.load(SeqCst) == 2, limit) {
        let took = t0.elapsed();
        let _ = x.join();
        let _ = y.join();
        Some(took)
    } else {
        // Deadlocked: do not join (that would hang); the threads stay stuck.
        None
    }
}

pub(super) fn deadlock() -> Row {
    const TOKEN_ROUNDS: usize = 20;
    const MUTEX_LIMIT: Duration = Duration::from_secs(1);
    let (a, b) = (Lock::new(Kind::Token, c"A"), Lock::new(Kind::Token, c"B"));
    let times: Vec<Duration> = (0..TOKEN_ROUNDS)
        .map_while(|_| abba(a, b, DEADLINE))
        .collect();
    let all = times.len() == TOKEN_ROUNDS;
    let mut evidence = vec![format!("{} of {TOKEN_ROUNDS} rounds finished", times.len())];
    if let Some(slowest) = times.iter().max() {
        evidence.push(format!("slowest round {}", ms(*slowest)));
    }
    if !all {
        evidence.push(format!("a round stuck > {} s", DEADLINE.as_secs()));
    }
    let tokens = Cell {
        verdict: if all { "yes" } else { "no" },
        expected: "yes",
        evidence,
    };

    let (a, b) = (Lock::new(Kind::Mutex, c"A"), Lock::new(Kind::Mutex, c"B"));
    let m = abba(a, b, MUTEX_LIMIT);
    let mutexes = match m {
        Some(t) => Cell {
            verdict: "yes",
            expected: "no",
            evidence: vec![format!("1 round finished in {}", ms(t))],
        },
        None => Cell {
            verdict: "no",
            expected: "no",
            evidence: vec![
                format!("deadlocked: none done in {} s", MUTEX_LIMIT.as_secs()),
                "(2 threads left stuck; the".into(),
                "process still exits cleanly)".into(),
            ],
        },
    };
    Row {
        property: &["avoids deadlock"],
        setup: vec![
            "ABBA: X takes A then B, Y takes".into(),
            "B then A; each asks for its".into(),
            "second once both hold the first".into(),
        ],
        tokens,
        mutexes,
    }
}
