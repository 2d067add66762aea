//! The comparison table of SPEC section 1, every cell measured now: each
//! scenario runs once with a token and once with a pthread mutex, and the
//! cell shows the verdict with what was measured under it.

use super::locks::{self as api, Kind, Lock};
use super::{poll_until, spin_until, DEADLINE};
use std::ffi::c_int;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::thread;
use std::time::{Duration, Instant};

/// One cell: the verdict, what SPEC section 1 says, and the evidence.
struct Cell {
    verdict: &'static str,
    expected: &'static str,
    evidence: Vec<String>,
}

struct Row {
    /// The property, as SPEC words it (wrapped by hand).
    property: &'static [&'static str],
    /// How it was measured.
    setup: Vec<String>,
    tokens: Cell,
    mutexes: Cell,
}

const P: usize = 36;
const C: usize = 30;

fn rule() {
    println!("  {:-<P$}-+-{:-<C$}-+-{:-<C$}", "", "", "");
}

fn print_header() {
    println!("  {:<P$} | {:<C$} | mutexes", "property", "tokens");
    rule();
}

/// A verdict, marked when it is not what SPEC says.
fn verdict(c: &Cell) -> String {
    if c.verdict == c.expected {
        c.verdict.to_string()
    } else {
        format!("{} (!) SPEC: {}", c.verdict, c.expected)
    }
}

fn print_row(r: &Row) {
    let left: Vec<String> = r
        .property
        .iter()
        .map(|s| s.to_string())
        .chain(r.setup.iter().map(|s| format!("  {s}")))
        .collect();
    let tok: Vec<String> = std::iter::once(verdict(&r.tokens))
        .chain(r.tokens.evidence.iter().cloned())
        .collect();
    let mtx: Vec<String> = std::iter::once(verdict(&r.mutexes))
        .chain(r.mutexes.evidence.iter().cloned())
        .collect();
    let n = left.len().max(tok.len()).max(mtx.len());
    let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_default();
    for i in 0..n {
        let line = format!(
            "  {:<P$} | {:<C$} | {}",
            at(&left, i),
            at(&tok, i),
            at(&mtx, i)
        );
        println!("{}", line.trim_end());
    }
    rule();
}

/// 1234567 -> "1,234,567".
fn num(v: u64) -> String {
    let s = v.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn ms(d: Duration) -> String {
    let m = d.as_secs_f64() * 1e3;
    if m < 0.01 {
        format!("{:.1} µs", m * 1e3)
    } else if m < 1.0 {
        format!("{:.0} µs", m * 1e3)
    } else if m < 10.0 {
        format!("{m:.2} ms")
    } else {
        format!("{m:.0} ms")
    }
}

fn spawn<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .expect("spawn a thread")
}

// ---------------------------------------------------------------------------
// Exclusion across timeslicing and across other CPUs: threads increment a
// counter by reading it and writing it back (not atomically) under the lock.
// Any overlap inside loses updates, so "exact total" proves exclusion.

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
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return vec![];
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Run the calling thread on `cpu` only.
fn pin_to(cpu: usize) -> bool {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
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

fn works_if(ok: bool) -> &'static str {
    if ok {
        "works"
    } else {
        "fails"
    }
}

fn cpu_list(mask: u64) -> String {
    let v: Vec<String> = (0..64)
        .filter(|c| mask & (1 << c) != 0)
        .map(|c| c.to_string())
        .collect();
    v.join(",")
}

fn timeslicing() -> Row {
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

fn other_cpus() -> Row {
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

// ---------------------------------------------------------------------------
// Exclusion across preemption: a signal handler that does not block runs in
// the middle of the holder's critical section, again and again, while
// another thread asks for the lock.

static HOLDER_INSIDE: AtomicBool = AtomicBool::new(false);
static SIGNALS_INSIDE: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_signal(_: c_int) {
    // Atomics only: the handler never blocks.
    if HOLDER_INSIDE.load(Relaxed) {
        SIGNALS_INSIDE.fetch_add(1, Relaxed);
    }
}

fn install_handler() {
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = on_signal as *const () as usize;
    sa.sa_flags = libc::SA_RESTART;
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

fn preemption() -> Row {
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

// ---------------------------------------------------------------------------
// Voluntary blocking and priority inversion: the holder blocks inside its
// critical section while another thread asks for the lock.

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
        let mark = api::mark();
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

fn voluntary_blocking() -> Row {
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

fn priority_inversion() -> Row {
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

// ---------------------------------------------------------------------------
// Deadlock avoidance: ABBA. X takes A then B, Y takes B then A, and each
// asks for its second lock only once both hold their first: with mutexes
// that is a certain deadlock.

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

fn deadlock() -> Row {
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

/// A row that could not be measured here.
fn unmeasured(
    property: &'static [&'static str],
    tok: &'static str,
    mtx: &'static str,
    why: &str,
) -> Row {
    let cell = |expected| Cell {
        verdict: "not measured",
        expected,
        evidence: vec![why.to_string()],
    };
    Row {
        property,
        setup: vec![],
        tokens: cell(tok),
        mutexes: cell(mtx),
    }
}

/// Measure and print every row; the number of cells that differ from SPEC.
pub fn run() -> usize {
    print_header();
    let rows: [fn() -> Row; 6] = [
        timeslicing,
        other_cpus,
        preemption,
        voluntary_blocking,
        deadlock,
        priority_inversion,
    ];
    let mut mismatches = 0;
    for f in rows {
        let row = f();
        print_row(&row);
        mismatches += [&row.tokens, &row.mutexes]
            .iter()
            .filter(|c| c.verdict != c.expected)
            .count();
    }
    mismatches
}
