//! Exclusion across preemption: a signal handler that does not block runs in
//! the middle of the holder's critical section, again and again, while
//! another thread asks for the lock.

use super::{ms, num, spawn, works_if, Cell, Row};
use crate::demo::locks::{Kind, Lock};
use crate::demo::{poll_until, spin_until, DEADLINE};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::thread;
use std::time::{Duration, Instant};

static HOLDER_INSIDE: AtomicBool = AtomicBool::new(false);
static SIGNALS_INSIDE: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: c_int) {
    // Atomics only: the handler never blocks.
    if HOLDER_INSIDE.load(Relaxed) {
        SIGNALS_INSIDE.fetch_add(1, Relaxed);
    }
}

fn install_handler() {
    // SAFETY: a sigaction of zeros is valid (no flags, empty mask).
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
    // SAFETY: the handler only touches atomics (async-signal-safe).
    unsafe {
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
    }
}

struct Preempted {
    signals_inside: u64,
    /// Did the waiter ever get in while the holder was inside?
    overlapped: bool,
    waited: Option<Duration>,
}

fn preempted(lock: Lock, hold: Duration) -> Preempted {
    struct Shared {
        holder: AtomicU64,
        waiter_asks: AtomicBool,
        stop_signals: AtomicBool,
    }
    let s: &'static Shared = Box::leak(Box::new(Shared {
        holder: AtomicU64::new(0),
        waiter_asks: AtomicBool::new(false),
        stop_signals: AtomicBool::new(false),
    }));
    HOLDER_INSIDE.store(false, SeqCst);
    SIGNALS_INSIDE.store(0, SeqCst);
    let holder = spawn("holder", move || {
        s.holder
            // SAFETY: no arguments; it only returns the thread's handle.
            .store(unsafe { libc::pthread_self() } as u64, SeqCst);
        lock.lock();
        HOLDER_INSIDE.store(true, SeqCst);
        // Run (never block) inside the critical section, for `hold` once
        // the waiter is about to ask (however late it gets a CPU).
        spin_until(|| s.waiter_asks.load(SeqCst), DEADLINE);
        let end = Instant::now() + hold;
        while Instant::now() < end {
            std::hint::spin_loop();
        }
        HOLDER_INSIDE.store(false, SeqCst);
        lock.unlock();
        // Stay alive while the main thread may still signal us.
        poll_until(|| s.stop_signals.load(SeqCst), DEADLINE);
    });
    let waiter = spawn("waiter", move || {
        if !spin_until(|| HOLDER_INSIDE.load(SeqCst), DEADLINE) {
            return (false, None);
        }
        s.waiter_asks.store(true, SeqCst);
        let t0 = Instant::now();
        lock.lock();
        let overlapped = HOLDER_INSIDE.load(SeqCst);
        let waited = t0.elapsed();
        lock.unlock();
        (overlapped, Some(waited))
    });
    // Interrupt the holder every millisecond while it is inside.
    poll_until(|| HOLDER_INSIDE.load(SeqCst), DEADLINE);
    let end = Instant::now() + DEADLINE;
    while HOLDER_INSIDE.load(SeqCst) && Instant::now() < end {
        // SAFETY: the holder thread is alive: it waits for stop_signals
        // before it returns.
        unsafe { libc::pthread_kill(s.holder.load(SeqCst) as libc::pthread_t, libc::SIGUSR1) };
        thread::sleep(Duration::from_millis(1));
    }
    s.stop_signals.store(true, SeqCst);
    let _ = holder.join();
    let (overlapped, waited) = waiter.join().unwrap_or((true, None));
    Preempted {
        signals_inside: SIGNALS_INSIDE.load(SeqCst),
        overlapped,
        waited,
    }
}

pub(super) fn preemption() -> Row {
    const HOLD: Duration = Duration::from_millis(200);
    install_handler();
    let cell = |kind| {
        let p = preempted(Lock::new(kind, c"L"), HOLD);
        let mut evidence = vec![format!("{} signals handled inside", num(p.signals_inside))];
        match p.waited {
            Some(w) => {
                evidence.push(format!("waiter in after {},", ms(w)));
                evidence.push(if p.overlapped {
                    "WHILE THE HOLDER WAS INSIDE".into()
                } else {
                    "when the holder left".into()
                });
            }
            None => evidence.push("waiter never asked".into()),
        }
        Cell {
            verdict: works_if(!p.overlapped && p.waited.is_some()),
            expected: "works",
            evidence,
        }
    };
    Row {
        property: &["exclusion across preemption"],
        setup: vec![
            format!("holder runs {} ms inside,", HOLD.as_millis()),
            "signalled every 1 ms (handler".into(),
            "does not block); a waiter asks".into(),
        ],
        tokens: cell(Kind::Token),
        mutexes: cell(Kind::Mutex),
    }
}
