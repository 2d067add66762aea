//! The built-in demonstration (`lwkt-run` with no arguments): the seed
//! example as a live timeline, then the comparison table of SPEC section 1,
//! measured now.
//!
//! It runs in a copy of lwkt-run that was started with liblwkt.so in
//! LD_PRELOAD, so that its own blocking calls (std::thread::sleep is
//! nanosleep, pthread_mutex_lock, ...) go through the shim's hooks, as a C
//! program's would.

mod locks;
mod seed;
mod table;
mod timeline;

use std::thread;
use std::time::{Duration, Instant};

/// The longest the demonstration waits for anything that should happen
/// (it never hangs: a missed deadline is reported).
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Wait until `cond` holds, without blocking (a thread that holds a token
/// must not block, or it would release it); false after `limit`.
pub fn spin_until(cond: impl Fn() -> bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        // sched_yield is not a blocking call: tokens stay held. It lets the
        // threads we wait for run on a machine with few CPUs.
        thread::yield_now();
    }
    true
}

/// Wait until `cond` holds, sleeping between checks: only for threads that
/// hold no token. False after `limit`.
pub fn poll_until(cond: impl Fn() -> bool, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Blocking calls that the header reports as hooked (or not).
const HOOKS: [(&std::ffi::CStr, &str); 5] = [
    (c"nanosleep", "nanosleep"),
    (c"read", "read"),
    (c"pthread_mutex_lock", "pthread_mutex_lock"),
    (c"pthread_cond_wait", "pthread_cond_wait"),
    (c"syscall", "syscall"),
];

fn header() {
    let lib = locks::library_path().unwrap_or_else(|| "?".into());
    let hooked: Vec<&str> = HOOKS
        .iter()
        .filter(|(c, _)| locks::hooked(c))
        .map(|(_, n)| *n)
        .collect();
    println!("lwkt: DragonFly BSD serializing tokens, compared with pthread mutexes");
    println!("library: {lib} (preloaded)");
    if hooked.is_empty() {
        println!("hooked blocking calls: none found (blocking will not release tokens)");
    } else {
        println!(
            "hooked blocking calls: {} (of those checked)",
            hooked.join(", ")
        );
    }
    println!();
    println!("A token is a lock that serializes threads only while its holder runs.");
    println!("When the holder blocks in a libc call (nanosleep, read, pthread_mutex_lock,");
    println!("...), all its tokens are released, and they are taken back before the call");
    println!("returns. Waiting for a token that another thread holds releases the");
    println!("waiter's other tokens too. So tokens never deadlock, but code must");
    println!("re-validate what it read under a token after anything that may block.");
    println!();
}

/// Run the demonstration and exit: 0 when everything went as SPEC section 1
/// says, 1 otherwise.
pub fn run() -> ! {
    if let Err(name) = locks::load() {
        eprintln!("lwkt-run: the demonstration needs liblwkt.so preloaded ({name} not found); run `lwkt-run` with no arguments");
        std::process::exit(127);
    }
    // Rust ignores SIGPIPE, so `lwkt-run | head` would end in a panic; die
    // quietly of the signal instead, as a C program does.
    // SAFETY: restoring a default disposition; no handler of ours is involved.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let start = Instant::now();
    header();

    println!("1. The seed example: thread A iterates list1 under token T1, then waits for");
    println!("   T2 (held by C). Waiting releases T1, so B takes T1 and changes list1.");
    println!("   A gets both tokens back, learns that T1 was lost, and refreshes its");
    println!("   iterator. Events are printed as they happen.");
    println!();
    let seed_ok = seed::run();
    println!();

    println!("2. The classic comparison, measured now: each cell runs a real scenario");
    println!("   with tokens and with pthread mutexes (what was measured is under it).");
    println!();
    let mismatches = table::run();
    println!();

    let took = start.elapsed().as_secs_f64();
    if seed_ok && mismatches == 0 {
        println!("Every cell agrees with the table of SPEC section 1 (took {took:.1} s).");
        // Threads left stuck in the mutex deadlock die with the process.
        std::process::exit(0);
    }
    if !seed_ok {
        println!("The seed example did not go as expected.");
    }
    if mismatches > 0 {
        println!("{mismatches} cell(s) differ from SPEC section 1 (marked (!) above).");
    }
    std::process::exit(1);
}
