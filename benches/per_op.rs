//! Per-operation costs, one thread at a time (criterion): a token pair
//! against glibc's mutex pair, the hooks' cost for a thread that holds no
//! token, releasing and retaking held tokens around a blocking call, and
//! pool tokens. Every group puts the token next to the baseline that does
//! the same work; `scripts/bench` turns them into ratios.

mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

use common::{lwkt, PthreadMutex, PthreadRwLock, Token};
use criterion::{BenchmarkId, Criterion};

/// Lock, then unlock, the same object, many times.
fn uncontended(c: &mut Criterion) {
    let l = lwkt();
    let mut g = c.benchmark_group("uncontended");

    let tok = Token::new();
    g.bench_function("token_pair", |b| {
        b.iter(|| unsafe {
            let t = black_box(tok.ptr());
            (l.gettoken)(t);
            (l.reltoken)(t);
        })
    });

    // glibc's own functions: the shim is loaded RTLD_LOCAL, so `libc::`
    // calls in this process do not go through its hooks.
    let m = PthreadMutex::new();
    g.bench_function("pthread_mutex_pair", |b| {
        b.iter(|| unsafe {
            let p = black_box(m.ptr());
            libc::pthread_mutex_lock(p);
            libc::pthread_mutex_unlock(p);
        })
    });

    g.bench_function("token_shared_pair", |b| {
        b.iter(|| unsafe {
            let t = black_box(tok.ptr());
            (l.gettoken_shared)(t);
            (l.reltoken)(t);
        })
    });

    let rw = PthreadRwLock::new();
    g.bench_function("rwlock_read_pair", |b| {
        b.iter(|| unsafe {
            let p = black_box(rw.ptr());
            libc::pthread_rwlock_rdlock(p);
            libc::pthread_rwlock_unlock(p);
        })
    });

    let am = PthreadMutex::adaptive();
    g.bench_function("adaptive_mutex_pair", |b| {
        b.iter(|| unsafe {
            let p = black_box(am.ptr());
            libc::pthread_mutex_lock(p);
            libc::pthread_mutex_unlock(p);
        })
    });

    let pl = parking_lot::Mutex::new(0u64);
    g.bench_function("parking_lot_pair", |b| {
        b.iter(|| drop(black_box(&pl).lock()))
    });

    let sm = std::sync::Mutex::new(0u64);
    g.bench_function("std_mutex_pair", |b| {
        b.iter(|| drop(black_box(&sm).lock().unwrap()))
    });

    // The floor for any lock that a free thread takes with a locked
    // instruction and gives back with a store: exactly that, inline.
    #[repr(align(64))]
    struct Line(AtomicU64);
    let word = Line(AtomicU64::new(0));
    g.bench_function("floor_cas_store", |b| {
        b.iter(|| {
            let w = &black_box(&word).0;
            let _ = black_box(w.compare_exchange(0, 1, Acquire, Relaxed));
            w.store(0, Release);
        })
    });
    g.finish();
}

/// The shim's hook (found in liblwkt.so by name) against glibc's function
/// (called directly), for a thread that holds no token: the hook should
/// only add one thread-local check.
fn hook_overhead(c: &mut Criterion) {
    let l = lwkt();
    let mut g = c.benchmark_group("hook_overhead");

    let zero = unsafe { libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY) };
    assert!(zero >= 0, "open /dev/zero");
    let mut byte = 0u8;
    let buf = (&mut byte as *mut u8).cast();
    g.bench_function(BenchmarkId::new("read_dev_zero", "shim"), |b| {
        b.iter(|| unsafe { black_box((l.read)(black_box(zero), buf, 1)) })
    });
    g.bench_function(BenchmarkId::new("read_dev_zero", "libc"), |b| {
        b.iter(|| unsafe { black_box(libc::read(black_box(zero), buf, 1)) })
    });

    let m = PthreadMutex::new();
    g.bench_function(BenchmarkId::new("mutex_pair", "shim"), |b| {
        b.iter(|| unsafe {
            let p = black_box(m.ptr());
            (l.pthread_mutex_lock)(p);
            libc::pthread_mutex_unlock(p); // not a hook: unlocking never blocks
        })
    });
    g.bench_function(BenchmarkId::new("mutex_pair", "libc"), |b| {
        b.iter(|| unsafe {
            let p = black_box(m.ptr());
            libc::pthread_mutex_lock(p);
            libc::pthread_mutex_unlock(p);
        })
    });

    let ts0 = common::ts(0);
    g.bench_function(BenchmarkId::new("nanosleep_0", "shim"), |b| {
        b.iter(|| unsafe { (l.nanosleep)(black_box(&ts0), std::ptr::null_mut()) })
    });
    g.bench_function(BenchmarkId::new("nanosleep_0", "libc"), |b| {
        b.iter(|| unsafe { libc::nanosleep(black_box(&ts0), std::ptr::null_mut()) })
    });
    g.finish();
    unsafe { libc::close(zero) };
}

/// Release and retake: the thread holds `k` uncontended tokens and calls a
/// hook that releases them all, runs libc's call, and takes them all back.
/// The baseline is the same call made directly to glibc by the same thread
/// holding no token; the difference is the release and retake (plus the
/// hook's entry, a few ns: see `hook_overhead`).
///
/// The baseline must hold no token: while a thread holds tokens, the
/// library's catch-all (Syscall User Dispatch) traps every system call that
/// glibc makes on its own, so glibc called directly *with* tokens held pays
/// a SIGSYS round trip per system call. That is measured too
/// (`libc_held`), as what a holder pays for a libc call without a hook.
///
/// Two calls:
/// * `pthread_barrier_wait` on a barrier of one thread: the hook always
///   releases (a barrier wait cannot be probed), but the call itself
///   returns at once, so little noise hides the difference.
/// * `nanosleep` of 1 ns with the thread's timer slack at 1 ns: a call that
///   really goes to sleep in the kernel, briefly; noisier.
fn retake(c: &mut Criterion) {
    let l = lwkt();
    let counts = [1usize, 8, 32, 64];
    let tokens: Vec<Box<Token>> = (0..64).map(|_| Token::new()).collect();
    let hold = |k: usize| {
        for t in &tokens[..k] {
            unsafe { (l.gettoken)(t.ptr()) };
        }
    };
    let drop_all = |k: usize| {
        for t in tokens[..k].iter().rev() {
            unsafe { (l.reltoken)(t.ptr()) };
        }
    };

    let mut barrier: libc::pthread_barrier_t = unsafe { std::mem::zeroed() };
    assert_eq!(
        unsafe { libc::pthread_barrier_init(&mut barrier, std::ptr::null(), 1) },
        0
    );
    let bp: *mut libc::pthread_barrier_t = &mut barrier;
    let mut g = c.benchmark_group("retake_barrier");
    for &k in &counts {
        hold(k);
        g.bench_function(BenchmarkId::new("shim_held", k), |b| {
            b.iter(|| unsafe { (l.pthread_barrier_wait)(black_box(bp)) })
        });
        g.bench_function(BenchmarkId::new("libc_held", k), |b| {
            b.iter(|| unsafe { libc::pthread_barrier_wait(black_box(bp)) })
        });
        drop_all(k);
        g.bench_function(BenchmarkId::new("libc_none", k), |b| {
            b.iter(|| unsafe { libc::pthread_barrier_wait(black_box(bp)) })
        });
    }
    g.finish();
    unsafe { libc::pthread_barrier_destroy(bp) };

    // Default slack (50 us) would make every sleep last 50 us and drown the
    // difference; 1 ns makes the kernel wake the thread when asked.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    let one_ns = common::ts(1);
    let mut g = c.benchmark_group("retake_nanosleep");
    for &k in &counts {
        hold(k);
        g.bench_function(BenchmarkId::new("shim_held", k), |b| {
            b.iter(|| unsafe { (l.nanosleep)(black_box(&one_ns), std::ptr::null_mut()) })
        });
        drop_all(k);
        g.bench_function(BenchmarkId::new("libc_none", k), |b| {
            b.iter(|| unsafe { libc::nanosleep(black_box(&one_ns), std::ptr::null_mut()) })
        });
    }
    g.finish();
    // 0: back to the thread's default slack.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 0 as libc::c_ulong) };
}

/// The catch-all's cost (SPEC section 4), on system calls that libc makes
/// itself and the shim does not hook: `getppid` (cannot block) and
/// `fputs` + `fflush` to /dev/null (libc's own `write`, probed):
/// * `never_used`: a thread that never took a token (dispatch off: the
///   target is zero cost);
/// * `used_none_held`, `used_none_fputs_fflush`: a thread that has used
///   tokens and holds none now (dispatch on, selector ALLOW: the kernel's
///   per-syscall check);
/// * `held_trapped` (`patched_held`), `held_fputs_fflush`: a thread
///   holding a token.
///
/// In the mode of this process: loaded by dlopen() after other threads
/// started, the library leaves libc alone (dispatch only: the held calls
/// trap and the SIGSYS handler runs them). The same rows with libc's sites
/// patched (the default mode, `patched_` ids: the held calls enter the
/// catch-all through the sites' stubs) come from this bench run again with
/// the library preloaded, which the group starts itself.
fn catchall(c: &mut Criterion) {
    let patched = libc_patched();
    if !patched && std::env::var_os(PRELOADED_RUN).is_none() {
        run_preloaded_for_patched_rows();
    }
    let l = lwkt();
    let tok = Token::new();
    let id = |name: &str| {
        if patched {
            format!("patched_{name}")
        } else {
            name.to_string()
        }
    };
    let devnull = unsafe { libc::fopen(c"/dev/null".as_ptr(), c"w".as_ptr()) };
    assert!(!devnull.is_null(), "fopen(/dev/null)");
    let fputs_fflush = move || unsafe {
        libc::fputs(c"x\n".as_ptr(), devnull);
        libc::fflush(devnull)
    };
    let mut g = c.benchmark_group("catchall_syscall");
    // Each `_raw` row is the same system call made by a `syscall`
    // instruction of this program, which nobody rewrites: the baseline, in
    // the same process, that the libc row beside it is judged against.
    for (name, call) in [
        (
            "never_used",
            (|| unsafe { libc::getppid() as isize }) as fn() -> isize,
        ),
        ("never_used_raw", raw_getppid),
    ] {
        g.bench_function(id(name), |b| {
            b.iter_custom(|iters| {
                // A fresh thread: this one has used tokens by now.
                std::thread::spawn(move || {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        black_box(call());
                    }
                    start.elapsed()
                })
                .join()
                .unwrap()
            })
        });
    }
    // Make sure this thread has used tokens (switches dispatch on).
    unsafe {
        (l.gettoken)(tok.ptr());
        (l.reltoken)(tok.ptr());
    }
    g.bench_function(id("used_none_held"), |b| {
        b.iter(|| black_box(unsafe { libc::getppid() }))
    });
    g.bench_function(id("used_none_raw"), |b| b.iter(|| black_box(raw_getppid())));
    g.bench_function(id("used_none_fputs_fflush"), |b| {
        b.iter(|| black_box(fputs_fflush()))
    });
    unsafe { (l.gettoken)(tok.ptr()) };
    // Dispatch only, the call traps; patched, it does not.
    let held = if patched {
        "patched_held"
    } else {
        "held_trapped"
    };
    g.bench_function(held, |b| b.iter(|| black_box(unsafe { libc::getppid() })));
    g.bench_function(id("held_fputs_fflush"), |b| {
        b.iter(|| black_box(fputs_fflush()))
    });
    unsafe { (l.reltoken)(tok.ptr()) };
    g.finish();
    unsafe { libc::fclose(devnull) };
}

/// `getppid` by this program's own `syscall` instruction: not libc's, so
/// never rewritten (a thread holding no token runs it at once).
fn raw_getppid() -> isize {
    let r: isize;
    // SAFETY: getppid takes no argument and touches no memory; the
    // instruction clobbers rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") libc::SYS_getppid as isize => r,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        )
    };
    r
}

/// Set in the preloaded run, which must not start another.
const PRELOADED_RUN: &str = "LWKT_BENCH_PRELOADED_RUN";

/// Has the library rewritten libc's `getppid` (`mov $110, %eax; syscall`
/// into a jump)?
fn libc_patched() -> bool {
    let first = unsafe { *(libc::getppid as *const u8) };
    first == 0xe9
}

/// This bench again, only this group, with the library preloaded (loaded
/// before any thread, so it patches libc): its rows go to criterion's
/// output and files next to ours.
fn run_preloaded_for_patched_rows() {
    let exe = std::env::current_exe().expect("current_exe");
    // The same options; criterion's filter (the free argument) replaced by
    // this group's patched rows.
    const TAKE_VALUES: &[&str] = &[
        "--warm-up-time",
        "--measurement-time",
        "--sample-size",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--save-baseline",
        "--baseline",
        "--load-baseline",
        "--profile-time",
        "--output-format",
        "--color",
        "--plotting-backend",
        "--format",
    ];
    let mut args = Vec::new();
    let mut given = std::env::args().skip(1);
    while let Some(a) = given.next() {
        if TAKE_VALUES.contains(&a.as_str()) {
            args.push(a);
            args.extend(given.next());
        } else if a.starts_with('-') {
            args.push(a);
        }
    }
    args.push("catchall_syscall/patched_".into());
    let status = std::process::Command::new(exe)
        .args(&args)
        .env("LD_PRELOAD", &lwkt().path)
        .env(PRELOADED_RUN, "1")
        .env_remove("LWKT_CATCHALL")
        .status()
        .expect("run the bench preloaded");
    assert!(
        status.success(),
        "the preloaded catch-all bench failed: {status}"
    );
}

/// Pool tokens: finding the token of an address, and taking it.
fn pool(c: &mut Criterion) {
    let l = lwkt();
    let mut g = c.benchmark_group("pool");
    let object = Box::new([0u64; 8]);
    let p: *const std::ffi::c_void = (&*object as *const [u64; 8]).cast();
    g.bench_function("lookup", |b| {
        b.iter(|| unsafe { black_box((l.token_pool_lookup)(black_box(p))) })
    });
    g.bench_function("getpooltoken_pair", |b| {
        b.iter(|| unsafe {
            let p = black_box(p);
            (l.getpooltoken)(p);
            (l.relpooltoken)(p);
        })
    });
    g.finish();
}

fn main() {
    common::keep_a_second_thread_alive();
    eprintln!("lwkt benches: using {}", lwkt().path);
    // Defaults for a plain `cargo bench`; scripts/bench passes its own.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args();
    // First, while the thread has never taken a token: the hooks' cost
    // for code that does not use tokens at all.
    hook_overhead(&mut c);
    uncontended(&mut c);
    retake(&mut c);
    catchall(&mut c);
    pool(&mut c);
    c.final_summary();
}
