//! Voluntary blocking and priority inversion: the holder blocks inside its
//! critical section while another thread asks for the lock.

use super::{ms, spawn, Cell, Row};
use crate::demo::locks::{self, Kind, Lock};
use crate::demo::{poll_until, spin_until, DEADLINE};
use std::ffi::c_int;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::thread;
use std::time::{Duration, Instant};

/// How the holder blocks.
#[derive(Clone, Copy, PartialEq)]
enum Block {
    /// In nanosleep (std::thread::sleep), for the stated time once the
    /// waiter asks. Until then it runs (spins) inside, keeping the lock.
    Sleep,
    /// In read() on a pipe, from before the waiter asks until the main
    /// thread writes, the stated time after the waiter asked: a holder that
    /// gets little CPU (nice 19 on a busy machine) is blocked, not running,
    /// when the waiter asks.
    Read,
}

struct Blocked {
    /// Did the waiter get in while the holder was blocked inside?
    entered_while_blocked: bool,
    waited: Option<Duration>,
    /// Was the holder told that its lock was taken meanwhile?
    holder_told: bool,
    holder_nice: c_int,
    waiter_nice: c_int,
}

/// Set the calling thread's nice value; the value it has afterwards.
fn set_nice(nice: c_int) -> c_int {
    // SAFETY: plain system calls on this thread; errno is this thread's.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice);
        *libc::__errno_location() = 0;
        libc::getpriority(libc::PRIO_PROCESS, tid)
    }
}

fn blocked(lock: Lock, how: Block, block: Duration, priorities: bool) -> Blocked {
    struct Shared {
        inside: AtomicBool,
        waiter_asks: AtomicBool,
    }
    let s: &'static Shared = Box::leak(Box::new(Shared {
        inside: AtomicBool::new(false),
        waiter_asks: AtomicBool::new(false),
    }));
    let (mut reader, mut writer) = std::io::pipe().expect("pipe");
    let holder = spawn("holder", move || {
        let nice = if priorities { set_nice(19) } else { 0 };
        lock.lock();
        let mark = locks::mark();
        s.inside.store(true, SeqCst);
        // Either call blocks: with a token, the hook releases it.
        match how {
            Block::Sleep => {
                spin_until(|| s.waiter_asks.load(SeqCst), DEADLINE);
                thread::sleep(block);
            }
            Block::Read => {
                let _ = reader.read(&mut [0u8]);
            }
        }
        s.inside.store(false, SeqCst);
        let told = lock.lost_since(mark);
        lock.unlock();
        (told, nice)
    });
    let waiter = spawn("waiter", move || {
        let nice = if priorities { set_nice(-5) } else { 0 };
        if !spin_until(|| s.inside.load(SeqCst), DEADLINE) {
            return (false, None, nice);
        }
        s.waiter_asks.store(true, SeqCst);
        let t0 = Instant::now();
        lock.lock();
        let entered = s.inside.load(SeqCst);
        let waited = t0.elapsed();
        lock.unlock();
        (entered, Some(waited), nice)
    });
    if how == Block::Read {
        // The data the holder waits for comes `block` after the waiter
        // asked (or at the deadline: never leave the holder stuck).
        poll_until(|| s.waiter_asks.load(SeqCst), DEADLINE);
        thread::sleep(block);
        let _ = writer.write_all(b"x");
    }
    let (holder_told, holder_nice) = holder.join().unwrap_or((false, 0));
    let (entered_while_blocked, waited, waiter_nice) = waiter.join().unwrap_or((false, None, 0));
    Blocked {
        entered_while_blocked,
        waited,
        holder_told,
        holder_nice,
        waiter_nice,
    }
}

fn waited_line(b: &Blocked) -> String {
    match b.waited {
        Some(w) => format!("waiter in after {}", ms(w)),
        None => "waiter never asked".into(),
    }
}

pub(super) fn voluntary_blocking() -> Row {
    const BLOCK: Duration = Duration::from_millis(50);
    let cell = |kind, expected_when_entered| {
        let b = blocked(Lock::new(kind, c"L"), Block::Sleep, BLOCK, false);
        let mut evidence = vec![waited_line(&b)];
        if b.entered_while_blocked {
            evidence.push("while the holder slept".into());
        } else {
            evidence.push("only once the holder left".into());
        }
        if kind == Kind::Token {
            let told = if b.holder_told { "yes" } else { "no" };
            evidence.push(format!("holder told it lost it: {told}"));
        }
        let verdict = if b.entered_while_blocked {
            expected_when_entered
        } else {
            "works"
        };
        Cell {
            verdict,
            expected: if kind == Kind::Token {
                "fails (by design)"
            } else {
                "works"
            },
            evidence,
        }
    };
    Row {
        property: &["exclusion across voluntary", "blocking"],
        setup: vec![
            format!("holder sleeps {} ms inside", BLOCK.as_millis()),
            "(nanosleep) as a waiter asks".into(),
        ],
        tokens: cell(Kind::Token, "fails (by design)"),
        mutexes: cell(Kind::Mutex, "fails"),
    }
}

pub(super) fn priority_inversion() -> Row {
    const BLOCK: Duration = Duration::from_millis(100);
    let mut nices = (0, 0);
    let mut cell = |kind| {
        let b = blocked(Lock::new(kind, c"L"), Block::Read, BLOCK, true);
        nices = (b.holder_nice, b.waiter_nice);
        let when = if b.entered_while_blocked {
            "while the holder was blocked"
        } else {
            "only once the holder left"
        };
        Cell {
            verdict: if b.entered_while_blocked { "yes" } else { "no" },
            expected: if kind == Kind::Token { "yes" } else { "no" },
            evidence: vec![waited_line(&b), when.into()],
        }
    };
    let tokens = cell(Kind::Token);
    let mutexes = cell(Kind::Mutex);
    Row {
        property: &["avoids priority inversion", "(holder blocked)"],
        setup: vec![
            format!("low-priority holder (nice {})", nices.0),
            "blocks in read() on a pipe; a".into(),
            format!("high-priority waiter (nice {})", nices.1),
            format!("asks; data comes {} ms later", BLOCK.as_millis()),
        ],
        tokens,
        mutexes,
    }
}
