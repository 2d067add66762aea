//! The seed example of serializing tokens, as a live timeline.
//!
//! Thread A iterates list1 under token T1, then asks for T2, which C holds.
//! Waiting for T2 releases T1, so B takes T1 and changes list1. When C lets
//! go of T2, A gets both tokens back, learns that T1 was lost meanwhile
//! (lwkt_token_lost_since), and refreshes its iterator.
//!
//! The order of events comes from the token semantics, not from timing
//! luck: C keeps T2 until B has changed list1, B takes T1 only once A is
//! waiting for T2 (and T1 can only become free while A waits), and every
//! wait has a deadline, so the demonstration cannot hang.

use super::locks::{self, Guarded, Token};
use super::timeline::Timeline;
use super::{spin_until, DEADLINE};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::thread;
use std::time::{Duration, Instant};

/// How long C holds T2 at least, so that the wait is visible.
const C_HOLDS: Duration = Duration::from_millis(300);

struct Seed {
    tl: &'static Timeline,
    t1: &'static Token,
    t2: &'static Token,
    /// Protected by T1.
    list1: Guarded<Vec<u32>>,
    c_holds_t2: AtomicBool,
    a_waits_for_t2: AtomicBool,
    b_changed_list1: AtomicBool,
}

/// What A found when it woke up holding both tokens.
struct Outcome {
    t1_lost: bool,
    t2_lost: bool,
    refreshed: Vec<u32>,
}

macro_rules! ev {
    ($s:expr, $($arg:tt)*) => { $s.tl.event(format_args!($($arg)*)) };
}

fn thread_c(s: &Seed) {
    s.t2.get();
    ev!(
        s,
        "takes T2 and spins holding it (sleeping would release it)"
    );
    s.c_holds_t2.store(true, Release);
    // Spin, never block: keep T2 until B has changed list1, and at least
    // C_HOLDS, so that A's wait shows.
    let start = Instant::now();
    let ok = spin_until(
        || s.b_changed_list1.load(Acquire) && start.elapsed() >= C_HOLDS,
        DEADLINE,
    );
    if !ok {
        ev!(s, "gave up waiting for B to change list1 (deadline)");
    }
    ev!(
        s,
        "releases T2 after {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    s.t2.rel();
}

fn thread_a(s: &Seed) -> Option<Outcome> {
    if !spin_until(|| s.c_holds_t2.load(Acquire), DEADLINE) {
        ev!(s, "C never took T2 (deadline)");
        return None;
    }
    s.t1.get();
    // SAFETY: A holds T1, which protects list1.
    let list = unsafe { s.list1.get() };
    ev!(s, "takes T1; iterates list1 = {:?}", list);
    let mut pos = 0;
    while pos < 2 {
        ev!(s, "  visits list1[{pos}] = {}", list[pos]);
        pos += 1;
    }
    let last_seen = list[pos - 1];
    let mark = locks::mark();
    ev!(s, "asks for T2, held by C: waiting releases T1");
    s.a_waits_for_t2.store(true, Release);
    s.t2.get();
    ev!(
        s,
        "wakes holding T1 and T2 (references: T1 {}, T2 {})",
        s.t1.count(),
        s.t2.count()
    );
    let t1_lost = s.t1.lost_since(mark);
    let t2_lost = s.t2.lost_since(mark);
    ev!(
        s,
        "lwkt_token_lost_since: T1 {}, T2 {}",
        yes_no(t1_lost),
        yes_no(t2_lost)
    );
    // SAFETY: A holds T1 again.
    let list = unsafe { s.list1.get() };
    if t1_lost {
        // What A read under T1 may be stale: find its place again in the
        // list as it is now.
        pos = list
            .iter()
            .position(|&v| v == last_seen)
            .map_or(0, |p| p + 1);
        ev!(s, "T1 was lost: refreshes its iterator, list1 = {:?}", list);
    }
    while pos < list.len() {
        ev!(s, "  visits list1[{pos}] = {}", list[pos]);
        pos += 1;
    }
    let refreshed = list.clone();
    ev!(s, "done: releases T2 and T1");
    s.t2.rel();
    s.t1.rel();
    Some(Outcome {
        t1_lost,
        t2_lost,
        refreshed,
    })
}

fn thread_b(s: &Seed) -> Option<Vec<u32>> {
    if !spin_until(|| s.a_waits_for_t2.load(Acquire), DEADLINE) {
        ev!(s, "A never waited for T2 (deadline)");
        return None;
    }
    // T1 becomes free only while A waits for T2.
    ev!(s, "asks for T1");
    s.t1.get();
    // SAFETY: B holds T1.
    let list = unsafe { s.list1.get() };
    ev!(s, "takes T1 while A waits; changes list1");
    list.retain(|&v| v != 30);
    list.push(60);
    let changed = list.clone();
    ev!(s, "  removes 30, appends 60: list1 = {:?}", changed);
    ev!(s, "releases T1");
    s.t1.rel();
    s.b_changed_list1.store(true, Release);
    Some(changed)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "lost"
    } else {
        "not lost"
    }
}

/// Run the seed example; true when it went as the token semantics say.
pub fn run() -> bool {
    let tl = Timeline::new();
    let s: &'static Seed = Box::leak(Box::new(Seed {
        tl,
        t1: Token::leak(c"T1"),
        t2: Token::leak(c"T2"),
        list1: Guarded::new(vec![10, 20, 30, 40, 50]),
        c_holds_t2: AtomicBool::new(false),
        a_waits_for_t2: AtomicBool::new(false),
        b_changed_list1: AtomicBool::new(false),
    }));
    let printer = tl.start_printer();
    let spawn = |name: &str| thread::Builder::new().name(name.into());
    let c = spawn("C").spawn(move || thread_c(s)).expect("spawn C");
    let a = spawn("A").spawn(move || thread_a(s)).expect("spawn A");
    let b = spawn("B").spawn(move || thread_b(s)).expect("spawn B");
    // The main thread holds no token: joining (pthread_join) releases
    // nothing.
    let a = a.join().ok().flatten();
    let b = b.join().ok().flatten();
    let _ = c.join();
    tl.finish(printer);

    let ok = match (&a, &b) {
        (Some(a), Some(b)) => a.t1_lost && !a.t2_lost && a.refreshed == *b,
        _ => false,
    };
    if ok {
        println!("  -> A lost T1 while it waited for T2, was told so, and saw B's change.");
    } else {
        println!("  -> UNEXPECTED: the seed example did not go as the token semantics say.");
    }
    ok
}
