//! Exclusion across timeslicing and across other CPUs: threads increment a
//! counter by reading it and writing it back (not atomically) under the lock.
//! Any overlap inside loses updates, so "exact total" proves exclusion.

use super::{num, spawn, unmeasured, works_if, Cell, Row};
use crate::demo::locks::{Kind, Lock};
use crate::demo::{spin_until, DEADLINE};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

struct Counting {
    increments: u64,
    counter: u64,
    /// Times a thread came to take the lock and found another inside:
    /// pinned to one CPU, that one had been switched out inside.
    found_inside: u64,
    /// CPUs the threads ran on (bit mask).
    cpus: u64,
    /// Every thread was pinned as asked (if asked).
    pinned: bool,
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a cpu_set_t of zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the set and its size, written by the kernel.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return vec![];
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: c < CPU_SETSIZE, within the set.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Run the calling thread on `cpu` only.
fn pin_to(cpu: usize) -> bool {
    // SAFETY: a cpu_set_t of zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: cpu came from allowed_cpus, so it is < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set and its size, read by the kernel.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) == 0 }
}

fn counting(lock: Option<Lock>, threads: usize, pin: Option<usize>, run_for: Duration) -> Counting {
    struct Shared {
        counter: AtomicU64,
        inside: AtomicUsize,
        ready: AtomicUsize,
    }
    let s: &'static Shared = Box::leak(Box::new(Shared {
        counter: AtomicU64::new(0),
        inside: AtomicUsize::new(0),
        ready: AtomicUsize::new(0),
    }));
    let handles: Vec<_> = (1..=threads)
        .map(|me| {
            spawn("counter", move || {
                let pinned = pin.is_none_or(pin_to);
                // Start together, so that the threads overlap.
                s.ready.fetch_add(1, Relaxed);
                spin_until(|| s.ready.load(Relaxed) == threads, DEADLINE);
                let end = Instant::now() + run_for;
                let (mut done, mut found, mut cpus) = (0u64, 0u64, 0u64);
                while Instant::now() < end {
                    if let Some(l) = lock {
                        if s.inside.load(Relaxed) != 0 {
                            found += 1;
                        }
                        l.lock();
                    }
                    s.inside.store(me, Relaxed);
                    // A non-atomic increment with a window in the middle.
                    let v = s.counter.load(Relaxed);
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    s.counter.store(v + 1, Relaxed);
                    s.inside.store(0, Relaxed);
                    if let Some(l) = lock {
                        l.unlock();
                    }
                    done += 1;
                    if done.is_multiple_of(256) {
                        // SAFETY: no arguments; it only returns a number.
                        let cpu = unsafe { libc::sched_getcpu() };
                        if (0..64).contains(&cpu) {
                            cpus |= 1 << cpu;
                        }
                    }
                }
                (done, found, cpus, pinned)
            })
        })
        .collect();
    let mut r = Counting {
        increments: 0,
        counter: 0,
        found_inside: 0,
        cpus: 0,
        pinned: true,
    };
    for h in handles {
        let (done, found, cpus, pinned) = h.join().expect("counter thread");
        r.increments += done;
        r.found_inside += found;
        r.cpus |= cpus;
        r.pinned &= pinned;
    }
    r.counter = s.counter.load(Relaxed);
    r
}

fn lost(c: &Counting) -> u64 {
    c.increments - c.counter
}

fn cpu_list(mask: u64) -> String {
    let v: Vec<String> = (0..64)
        .filter(|c| mask & (1 << c) != 0)
        .map(|c| c.to_string())
        .collect();
    v.join(",")
}

pub(super) fn timeslicing() -> Row {
    const RUN: Duration = Duration::from_millis(250);
    let Some(&cpu) = allowed_cpus().first() else {
        return unmeasured(
            &["exclusion across timeslicing"],
            "works",
            "works",
            "cannot read CPU affinity",
        );
    };
    let ctl = counting(None, 2, Some(cpu), RUN);
    let mut pinned = ctl.pinned;
    let mut cell = |kind| {
        let c = counting(Some(Lock::new(kind, c"counter")), 2, Some(cpu), RUN);
        pinned &= c.pinned;
        Cell {
            verdict: works_if(lost(&c) == 0),
            expected: "works",
            evidence: vec![
                format!("{} of {} updates lost", num(lost(&c)), num(c.increments)),
                format!("switched out inside {} times", num(c.found_inside)),
            ],
        }
    };
    let tokens = cell(Kind::Token);
    let mutexes = cell(Kind::Mutex);
    let mut setup = vec![
        format!("2 threads pinned to CPU {cpu}, {} ms", RUN.as_millis()),
        "each: counter = counter + 1".into(),
        format!(
            "no lock: {} of {} lost",
            num(lost(&ctl)),
            num(ctl.increments)
        ),
    ];
    if !pinned {
        setup.push("(pinning failed: ran unpinned)".into());
    }
    Row {
        property: &["exclusion across timeslicing"],
        setup,
        tokens,
        mutexes,
    }
}

pub(super) fn other_cpus() -> Row {
    const RUN: Duration = Duration::from_millis(250);
    let cpus = allowed_cpus().len();
    let threads = cpus.clamp(2, 4);
    let ctl = counting(None, threads, None, RUN);
    let cell = |kind| {
        let c = counting(Some(Lock::new(kind, c"counter")), threads, None, RUN);
        Cell {
            verdict: works_if(lost(&c) == 0),
            expected: "works",
            evidence: vec![
                format!("{} of {} updates lost", num(lost(&c)), num(c.increments)),
                if c.cpus.count_ones() > 1 {
                    format!("ran on CPUs {}", cpu_list(c.cpus))
                } else {
                    // Honest: other load kept the threads on one CPU.
                    format!("ran on CPU {} only (busy?)", cpu_list(c.cpus))
                },
                format!("found it held {} times", num(c.found_inside)),
            ],
        }
    };
    let mut setup = vec![
        format!("{threads} threads, not pinned, {} ms", RUN.as_millis()),
        "each: counter = counter + 1".into(),
        format!(
            "no lock: {} of {} lost",
            num(lost(&ctl)),
            num(ctl.increments)
        ),
    ];
    if cpus < 2 {
        setup.push("(only 1 CPU here: not parallel)".into());
    }
    Row {
        property: &["exclusion across concurrent", "execution on other CPUs"],
        setup,
        tokens: cell(Kind::Token),
        mutexes: cell(Kind::Mutex),
    }
}
