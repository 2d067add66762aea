//! A Rust program under the shim (SPEC section 4), compiled by
//! c-tests/catchall.rs with a bare `rustc` and run with
//! LD_PRELOAD=liblwkt.so. It links nothing of lwkt: the token functions
//! come from the preloaded library through dlsym(RTLD_DEFAULT, ...), by
//! the mirror of include/lwkt.h that the launcher and the benches use
//! (shim/mirror/lwkt_h.rs, std only).
//!
//! The main thread holds T exclusively twice and S shared, and blocks in
//! * `std::thread::sleep`, repeatedly, until a helper thread has taken T
//!   and S -- which it can only while the sleeper released them;
//! * `std::sync::Mutex::lock` of a mutex the helper holds (a futex wait):
//!   the helper waits until /proc shows the main thread asleep in the
//!   futex, takes T and S, records that, releases them, stores 42 under
//!   the mutex and only then unlocks it.
//!
//! * a raw `syscall` instruction (`asm!`, as code that bypasses libc
//!   makes it): a futex wait that the helper ends once it took T and S.
//!
//! After each call the main thread must hold T (exclusively, twice) and S
//! (shared, once) again, and see the call's normal result. Exit status 0
//! and "catchall_rust: ok" on success; 1 with "FAIL ..." on a failed
//! check; 2 when the library is not preloaded.
//!
//! `--no-catchall` (run under LWKT_CATCHALL=0): std's sleep and Mutex go
//! through libc's exported `nanosleep` and `syscall`, which the symbol
//! hooks catch, so they must still release; the raw syscall only the
//! catch-all can see, so it must keep T: the helper's lwkt_trytoken fails
//! throughout 0.3 s while /proc shows the main thread asleep in the futex.

#[path = "../../shim/mirror/lwkt_h.rs"]
mod lwkt_h;

use lwkt_h::{Api, Library, LwktToken};
use std::ffi::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

extern "C" {
    fn gettid() -> c_int;
    fn syscall(nr: std::ffi::c_long, ...) -> std::ffi::c_long;
}

static mut T: LwktToken = LwktToken::FREE;
static mut S: LwktToken = LwktToken::FREE;

/// The token API of the preloaded liblwkt.so (exit 2 without it).
fn lwkt() -> &'static Api {
    use std::sync::OnceLock;
    static L: OnceLock<Api> = OnceLock::new();
    L.get_or_init(|| {
        Api::load(&Library::preloaded()).unwrap_or_else(|name| {
            eprintln!("catchall_rust: {name:?} not found: run with LD_PRELOAD=liblwkt.so");
            std::process::exit(2);
        })
    })
}

fn t() -> *mut LwktToken {
    std::ptr::addr_of_mut!(T)
}
fn s() -> *mut LwktToken {
    std::ptr::addr_of_mut!(S)
}

macro_rules! check {
    ($cond:expr, $($msg:tt)*) => {
        if !$cond {
            eprintln!("FAIL {}:{}: {}: {}", file!(), line!(), stringify!($cond), format!($($msg)*));
            std::process::exit(1);
        }
    };
}

const DEADLINE: Duration = Duration::from_secs(20);

fn hold() {
    let l = lwkt();
    unsafe {
        (l.gettoken)(t());
        (l.gettoken_shared)(s());
        (l.gettoken)(t());
    }
}

fn check_held(what: &str) {
    let l = lwkt();
    unsafe {
        check!(
            (l.cnttoken)(t()) == 2 && (l.token_held_excl)(t()) != 0,
            "{what}: T not held exclusively twice (count {})",
            (l.cnttoken)(t())
        );
        check!(
            (l.cnttoken)(s()) == 1 && (l.token_held_excl)(s()) == 0,
            "{what}: S not held shared once (count {})",
            (l.cnttoken)(s())
        );
    }
}

fn unhold() {
    let l = lwkt();
    unsafe {
        (l.reltoken)(t());
        (l.reltoken)(s());
        (l.reltoken)(t());
        check!(
            (l.cnttoken)(t()) == 0 && (l.cnttoken)(s()) == 0,
            "tokens left"
        );
    }
}

/// Spin (a thread that must not block) until `f()` holds.
fn spin_until(what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + DEADLINE;
    while !f() {
        check!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Take T exclusively and S shared, spinning on the try functions (the
/// helper holds nothing, so nothing of its own is released meanwhile).
fn take_both(what: &str) {
    let l = lwkt();
    spin_until(what, || unsafe { (l.trytoken)(t()) } != 0);
    spin_until(what, || unsafe { (l.trytoken_shared)(s()) } != 0);
    unsafe {
        (l.reltoken)(s());
        (l.reltoken)(t());
    }
}

/// The system call thread `tid` is in now (/proc/self/task/TID/syscall),
/// and whether it sleeps there.
fn asleep_in(tid: c_int, nr: i64) -> bool {
    let sc = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).unwrap_or_default();
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.chars().next().unwrap_or('?'));
    sc.split(' ').next().and_then(|n| n.parse::<i64>().ok()) == Some(nr) && state == Some('S')
}

const SYS_FUTEX: i64 = 202;

fn sleep_releases() {
    let took = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(AtomicBool::new(false));
    let helper = {
        let (took, armed) = (took.clone(), armed.clone());
        std::thread::spawn(move || {
            spin_until("the sleeper to hold T", || armed.load(SeqCst));
            take_both("T and S, released by std::thread::sleep");
            took.store(true, SeqCst);
        })
    };
    hold();
    armed.store(true, SeqCst);
    let end = Instant::now() + DEADLINE;
    let mut sleeps = 0;
    while !took.load(SeqCst) {
        let before = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        check!(
            before.elapsed() >= Duration::from_millis(20),
            "slept too short"
        );
        check_held("after std::thread::sleep");
        sleeps += 1;
        check!(
            Instant::now() < end,
            "the helper never took T while we slept"
        );
    }
    unhold();
    helper.join().unwrap();
    println!("catchall_rust: std::thread::sleep released T and S ({sleeps} sleeps): ok");
}

fn mutex_releases() {
    let m = Arc::new(Mutex::new(0u32));
    let locked = Arc::new(AtomicBool::new(false));
    let armed = Arc::new(AtomicI32::new(0));
    let took = Arc::new(AtomicBool::new(false));
    let helper = {
        let (m, locked, armed, took) = (m.clone(), locked.clone(), armed.clone(), took.clone());
        std::thread::spawn(move || {
            let mut g = m.lock().unwrap();
            locked.store(true, SeqCst);
            spin_until("the holder to block", || armed.load(SeqCst) != 0);
            let tid = armed.load(SeqCst);
            spin_until("the holder asleep in the mutex's futex", || {
                asleep_in(tid, SYS_FUTEX)
            });
            take_both("T and S, released in Mutex::lock");
            took.store(true, SeqCst);
            *g = 42;
            drop(g);
        })
    };
    spin_until("the helper to lock the mutex", || locked.load(SeqCst));
    hold();
    armed.store(unsafe { gettid() }, SeqCst);
    let v = {
        let g = m.lock().unwrap();
        *g
    };
    check_held("after Mutex::lock");
    check!(
        took.load(SeqCst),
        "Mutex::lock returned before the helper took T"
    );
    check!(v == 42, "the mutex held {v}, not what the helper stored");
    unhold();
    helper.join().unwrap();
    println!("catchall_rust: std::sync::Mutex::lock released T and S: ok");
}

/// One FUTEX_WAIT on `word` while it is 0, by a `syscall` instruction in
/// this program's own code. 0 when woken, -EAGAIN when the word changed
/// first: both normal results.
fn raw_futex_wait(word: &std::sync::atomic::AtomicU32) -> i64 {
    let ret: i64;
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_FUTEX => ret,
            in("rdi") word.as_ptr(),
            in("rsi") 128i64, // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
            in("rdx") 0i64,
            in("r10") 0i64, // no timeout
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

fn raw_syscall_futex(catchall: bool) {
    use std::sync::atomic::AtomicU32;
    let word = Arc::new(AtomicU32::new(0));
    let armed = Arc::new(AtomicI32::new(0));
    let took = Arc::new(AtomicBool::new(false));
    let helper = {
        let (word, armed, took) = (word.clone(), armed.clone(), took.clone());
        std::thread::spawn(move || {
            spin_until("the holder to block", || armed.load(SeqCst) != 0);
            let tid = armed.load(SeqCst);
            spin_until("the holder asleep in the futex", || {
                asleep_in(tid, SYS_FUTEX)
            });
            if catchall {
                take_both("T and S, released in a raw futex wait");
                took.store(true, SeqCst);
            } else {
                let l = lwkt();
                let end = Instant::now() + Duration::from_millis(300);
                while Instant::now() < end {
                    check!(
                        unsafe { (l.trytoken)(t()) } == 0,
                        "LWKT_CATCHALL=0, yet T was released in a raw syscall"
                    );
                    std::thread::yield_now();
                }
                check!(
                    asleep_in(tid, SYS_FUTEX),
                    "the holder left the futex wait early"
                );
            }
            word.store(1, SeqCst);
            unsafe { syscall(SYS_FUTEX, word.as_ptr(), 129i64, 1i64) }; // FUTEX_WAKE_PRIVATE
        })
    };
    hold();
    armed.store(unsafe { gettid() }, SeqCst);
    let mut waits = 0;
    while word.load(SeqCst) == 0 {
        let r = raw_futex_wait(&word);
        check!(r == 0 || r == -11, "the raw futex wait returned {r}");
        check_held("after a raw futex wait");
        waits += 1;
        check!(waits < 1000, "spurious wake-ups");
    }
    check!(
        took.load(SeqCst) == catchall,
        "the helper took T: {}",
        took.load(SeqCst)
    );
    unhold();
    helper.join().unwrap();
    if catchall {
        println!("catchall_rust: a raw syscall futex wait released T and S: ok");
    } else {
        println!("catchall_rust: LWKT_CATCHALL=0: a raw syscall futex wait kept T: ok");
    }
}

fn main() {
    let catchall = match std::env::args().nth(1).as_deref() {
        None => true,
        Some("--no-catchall") => false,
        Some(other) => {
            eprintln!("catchall_rust: unknown argument {other}");
            std::process::exit(2);
        }
    };
    lwkt();
    sleep_releases();
    mutex_releases();
    raw_syscall_futex(catchall);
    println!("catchall_rust: ok");
}
