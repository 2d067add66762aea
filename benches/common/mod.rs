//! What both bench binaries share: liblwkt.so loaded at run time, the
//! locks under comparison behind one interface, a calibrated spin, and a
//! pool of worker threads for the throughput groups.
//!
//! The library crate is a cdylib only, so the benches cannot link it (and
//! must not: its hooks would interpose every libc call of the bench
//! process). They `dlopen` it with `RTLD_LOCAL` instead and look up the
//! token API *and the hooks* by name in that one object: calling the
//! pointer for `read` runs the shim's hook (which forwards to glibc's real
//! `read`), while `libc::read` in this process still reaches glibc
//! directly. Both paths are measured side by side in the same process.

// Each bench binary uses a part of this module.
#![allow(dead_code)]

#[path = "../../shim/mirror/lwkt_h.rs"]
mod lwkt_h;

use lwkt_h::{Api, Library, LwktToken};
use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void, CStr};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `struct lwkt_token` of include/lwkt.h, zero-filled: a valid, free
/// token. Each one gets its own cache line, as a token in a real program's
/// hot structure would, so that neighbours do not share it.
#[repr(C, align(64))]
pub struct Token(UnsafeCell<LwktToken>);

// The library synchronizes every access to the token's fields.
unsafe impl Sync for Token {}
unsafe impl Send for Token {}

impl Token {
    pub fn new() -> Box<Token> {
        Box::new(Token(UnsafeCell::new(LwktToken::FREE)))
    }
    pub fn ptr(&self) -> *mut LwktToken {
        self.0.get()
    }
}

/// liblwkt.so as the benches use it: the token API (`l.gettoken`, through
/// `Deref`) and the shim's hooks, all found in that one object.
pub struct Lwkt {
    api: Api,
    /// The shim's hooks (libc's names, the shim's definitions).
    pub read: unsafe extern "C" fn(c_int, *mut c_void, usize) -> isize,
    pub write: unsafe extern "C" fn(c_int, *const c_void, usize) -> isize,
    pub nanosleep: unsafe extern "C" fn(*const libc::timespec, *mut libc::timespec) -> c_int,
    pub pthread_mutex_lock: unsafe extern "C" fn(*mut libc::pthread_mutex_t) -> c_int,
    pub pthread_barrier_wait: unsafe extern "C" fn(*mut libc::pthread_barrier_t) -> c_int,
    /// Where it was loaded from (printed, so that a run says what it measured).
    pub path: String,
}

impl std::ops::Deref for Lwkt {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

static LWKT: OnceLock<Lwkt> = OnceLock::new();

/// liblwkt.so, loaded on first use. `LWKT_LIB` names it; by default it is
/// the one cargo built next to this bench: target/<profile>/deps/<bench>
/// -> target/<profile>/liblwkt.so.
pub fn lwkt() -> &'static Lwkt {
    LWKT.get_or_init(|| {
        let path = std::env::var("LWKT_LIB").unwrap_or_else(|_| {
            let exe = std::env::current_exe().expect("current_exe");
            let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
            profile_dir
                .join("liblwkt.so")
                .to_string_lossy()
                .into_owned()
        });
        load(&path).unwrap_or_else(|e| {
            eprintln!("lwkt benches: {e}");
            eprintln!("(build it with `cargo build --release`, or set LWKT_LIB)");
            std::process::exit(2);
        })
    })
}

fn load(path: &str) -> Result<Lwkt, String> {
    // Library::open: RTLD_LOCAL, so the shim's definitions of `read`,
    // `nanosleep`, ... do not enter the global scope and the rest of this
    // process (criterion, std, the baselines) keeps calling glibc;
    // RTLD_NOW, so that it fails here, not mid-run.
    let lib = Library::open(path)?;
    let api = Api::load(&lib).map_err(|name| format!("{path} has no {name}"))?;
    let hook = |name: &CStr| -> Result<*mut c_void, String> {
        let Some(p) = lib.symbol(name) else {
            return Err(format!("{path} has no {}", name.to_string_lossy()));
        };
        // A hook found in libc rather than in the shim would make the
        // "through the shim" rows measure libc twice: refuse.
        let from = lwkt_h::object_of(p.as_ptr()).unwrap_or_default();
        if !from.ends_with("liblwkt.so") {
            return Err(format!(
                "{} resolves to {from}, not to liblwkt.so",
                name.to_string_lossy()
            ));
        }
        Ok(p.as_ptr())
    };
    macro_rules! f {
        ($name:literal as $t:ty) => {
            // SAFETY: the symbol is the shim's hook of that libc function,
            // which has the libc prototype.
            unsafe { std::mem::transmute::<*mut c_void, $t>(hook($name)?) }
        };
    }
    type Ts = libc::timespec;
    Ok(Lwkt {
        api,
        read: f!(c"read" as unsafe extern "C" fn(c_int, *mut c_void, usize) -> isize),
        write: f!(c"write" as unsafe extern "C" fn(c_int, *const c_void, usize) -> isize),
        nanosleep: f!(c"nanosleep" as unsafe extern "C" fn(*const Ts, *mut Ts) -> c_int),
        pthread_mutex_lock: f!(
            c"pthread_mutex_lock" as unsafe extern "C" fn(*mut libc::pthread_mutex_t) -> c_int
        ),
        pthread_barrier_wait: f!(
            c"pthread_barrier_wait" as unsafe extern "C" fn(*mut libc::pthread_barrier_t) -> c_int
        ),
        path: path.to_string(),
    })
}

/// A `pthread_mutex_t` (default attributes), locked through glibc itself.
#[repr(C, align(64))]
pub struct PthreadMutex(UnsafeCell<libc::pthread_mutex_t>);

unsafe impl Sync for PthreadMutex {}
unsafe impl Send for PthreadMutex {}

impl PthreadMutex {
    pub fn new() -> Box<PthreadMutex> {
        Box::new(PthreadMutex(UnsafeCell::new(
            libc::PTHREAD_MUTEX_INITIALIZER,
        )))
    }
    /// glibc's adaptive mutex (`PTHREAD_MUTEX_ADAPTIVE_NP`): spins a
    /// while on a held lock before it sleeps.
    pub fn adaptive() -> Box<PthreadMutex> {
        let m = PthreadMutex::new();
        unsafe {
            let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
            assert_eq!(libc::pthread_mutexattr_init(&mut attr), 0);
            assert_eq!(
                libc::pthread_mutexattr_settype(&mut attr, libc::PTHREAD_MUTEX_ADAPTIVE_NP),
                0
            );
            assert_eq!(libc::pthread_mutex_init(m.ptr(), &attr), 0);
            libc::pthread_mutexattr_destroy(&mut attr);
        }
        m
    }
    pub fn ptr(&self) -> *mut libc::pthread_mutex_t {
        self.0.get()
    }
}

/// A `pthread_rwlock_t`, for the shared-readers group.
#[repr(C, align(64))]
pub struct PthreadRwLock(UnsafeCell<libc::pthread_rwlock_t>);

unsafe impl Sync for PthreadRwLock {}
unsafe impl Send for PthreadRwLock {}

impl PthreadRwLock {
    pub fn new() -> Box<PthreadRwLock> {
        Box::new(PthreadRwLock(UnsafeCell::new(
            libc::PTHREAD_RWLOCK_INITIALIZER,
        )))
    }
    pub fn ptr(&self) -> *mut libc::pthread_rwlock_t {
        self.0.get()
    }
}

/// The locks that the throughput groups compare, each doing the same work
/// inside.
pub enum Lock {
    /// `lwkt_gettoken` / `lwkt_reltoken`.
    Token(Box<Token>),
    /// `lwkt_gettoken_shared` / `lwkt_reltoken`.
    SharedToken(Box<Token>),
    /// glibc's `pthread_mutex_lock` / `unlock`.
    Mutex(Box<PthreadMutex>),
    /// glibc's `pthread_rwlock_rdlock` / `unlock`.
    RwRead(Box<PthreadRwLock>),
    /// glibc's adaptive mutex.
    Adaptive(Box<PthreadMutex>),
    /// Rust's `std::sync::Mutex`.
    Std(Box<Padded<Mutex<()>>>),
    /// `parking_lot::Mutex`.
    ParkingLot(Box<Padded<parking_lot::Mutex<()>>>),
}

/// A lock alone on its cache line, like the others here.
#[repr(align(64))]
pub struct Padded<T>(pub T);

impl Lock {
    pub fn token() -> Lock {
        Lock::Token(Token::new())
    }
    pub fn shared_token() -> Lock {
        Lock::SharedToken(Token::new())
    }
    pub fn mutex() -> Lock {
        Lock::Mutex(PthreadMutex::new())
    }
    pub fn adaptive_mutex() -> Lock {
        Lock::Adaptive(PthreadMutex::adaptive())
    }
    pub fn std_mutex() -> Lock {
        Lock::Std(Box::new(Padded(Mutex::new(()))))
    }
    pub fn parking_lot() -> Lock {
        Lock::ParkingLot(Box::new(Padded(parking_lot::Mutex::new(()))))
    }
    pub fn rwlock_read() -> Lock {
        Lock::RwRead(PthreadRwLock::new())
    }

    /// Run `f` holding the lock (the Rust locks give it back by guard).
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce() -> R) -> R {
        unsafe {
            match self {
                Lock::Token(t) | Lock::SharedToken(t) => {
                    if matches!(self, Lock::Token(_)) {
                        (lwkt().gettoken)(t.ptr())
                    } else {
                        (lwkt().gettoken_shared)(t.ptr())
                    }
                    let r = f();
                    (lwkt().reltoken)(t.ptr());
                    r
                }
                Lock::Mutex(m) | Lock::Adaptive(m) => {
                    libc::pthread_mutex_lock(m.ptr());
                    let r = f();
                    libc::pthread_mutex_unlock(m.ptr());
                    r
                }
                Lock::RwRead(l) => {
                    libc::pthread_rwlock_rdlock(l.0.get());
                    let r = f();
                    libc::pthread_rwlock_unlock(l.0.get());
                    r
                }
                Lock::Std(m) => {
                    let _g = m.0.lock().unwrap();
                    f()
                }
                Lock::ParkingLot(m) => {
                    let _g = m.0.lock();
                    f()
                }
            }
        }
    }

    /// Does the lock let several holders in (so that the workers cannot
    /// share a counter inside it)?
    fn is_shared(&self) -> bool {
        matches!(self, Lock::SharedToken(_) | Lock::RwRead(_))
    }
}

/// Spin iterations per nanosecond on this machine, measured once.
static SPIN_PER_NS: OnceLock<f64> = OnceLock::new();

/// Busy work that the compiler cannot remove: `n` dependent additions.
#[inline(always)]
pub fn spin(n: u64) {
    let mut x = 0u64;
    for _ in 0..n {
        x = black_box(x.wrapping_add(1));
    }
    black_box(x);
}

/// How many `spin` iterations take `ns` nanoseconds. A critical section
/// is simulated with this, not with a sleep: it must run, not block.
pub fn spin_iters_for(ns: u64) -> u64 {
    let per_ns = *SPIN_PER_NS.get_or_init(|| {
        spin(10_000_000); // warm up, let the clock ramp
                          // Best of several rounds: interruptions only make a round slower.
        let mut best = f64::MAX;
        for _ in 0..5 {
            let n = 20_000_000;
            let t = Instant::now();
            spin(n);
            best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
        }
        let per_ns = 1.0 / best;
        eprintln!("lwkt benches: spin calibrated at {per_ns:.3} iterations/ns");
        per_ns
    });
    ((ns as f64 * per_ns).round() as u64).max(1)
}

/// What a worker does while it holds the lock, besides counting.
#[derive(Clone, Copy)]
pub enum Work {
    /// Run for about that many nanoseconds (calibrated spin).
    Spin(u64),
    /// `nanosleep` for that many nanoseconds, through the shim's hook.
    Sleep(u64),
    /// Ask a server thread for a byte over a pipe and `read` the answer,
    /// which comes that many nanoseconds later (`write` and `read` through
    /// the shim's hooks).
    PipeRead(u64),
}

/// The pipe pair of one worker and its server thread.
struct Conversation {
    request_w: c_int,
    answer_r: c_int,
    server: Option<JoinHandle<()>>,
}

impl Conversation {
    /// A server that answers each request byte after `delay_ns`, like a
    /// device or a remote peer would. It calls glibc directly: it is the
    /// outside world, not code under test.
    fn start(delay_ns: u64) -> Conversation {
        let mut req = [0; 2];
        let mut ans = [0; 2];
        unsafe {
            assert_eq!(libc::pipe(req.as_mut_ptr()), 0);
            assert_eq!(libc::pipe(ans.as_mut_ptr()), 0);
        }
        let (request_r, answer_w) = (req[0], ans[1]);
        let server = std::thread::spawn(move || {
            let delay = ts(delay_ns);
            let mut b = 0u8;
            loop {
                let n = unsafe { libc::read(request_r, (&mut b as *mut u8).cast(), 1) };
                if n != 1 {
                    break; // the worker's end was closed
                }
                unsafe {
                    libc::nanosleep(&delay, std::ptr::null_mut());
                    libc::write(answer_w, (&b as *const u8).cast(), 1);
                }
            }
            unsafe {
                libc::close(request_r);
                libc::close(answer_w);
            }
        });
        Conversation {
            request_w: req[1],
            answer_r: ans[0],
            server: Some(server),
        }
    }

    #[inline(always)]
    fn ask(&self) {
        let l = lwkt();
        let mut b = 1u8;
        unsafe {
            let n = (l.write)(self.request_w, (&b as *const u8).cast(), 1);
            assert_eq!(n, 1, "write to the server");
            let n = (l.read)(self.answer_r, (&mut b as *mut u8).cast(), 1);
            assert_eq!(n, 1, "read from the server");
        }
    }
}

impl Drop for Conversation {
    fn drop(&mut self) {
        unsafe {
            libc::close(self.request_w);
        }
        if let Some(s) = self.server.take() {
            s.join().unwrap();
        }
        unsafe {
            libc::close(self.answer_r);
        }
    }
}

pub fn ts(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// State shared by a pool's threads: the lock, and the operation counter
/// that it protects (on its own cache line).
#[repr(C, align(64))]
struct Shared {
    done_ops: AtomicU64,
    _pad: [u64; 7],
    target: AtomicU64,
    quit: AtomicBool,
    lock: Lock,
    work: Work,
    spin_iters: u64,
    threads: u64,
    start: Barrier,
    finish: Barrier,
    /// Operations each worker did in the last run.
    last_run: Vec<AtomicU64>,
    /// Per-thread totals over all runs, and runs where a worker did nothing.
    share: Mutex<Share>,
}

/// How the operations of a pool's runs were spread over its threads.
#[derive(Clone, Default, Debug)]
pub struct Share {
    /// Operations per thread, all runs together.
    pub per_thread: Vec<u64>,
    /// Runs of at least STARVED_RUN_MS in which some thread did nothing.
    pub starved_runs: u64,
    /// Runs of at least STARVED_RUN_MS.
    pub long_runs: u64,
}

/// A run this long gives every thread time to get the lock at least once
/// under any bound on bypassing (a token waiter is handed the token after
/// at most 256 lost races, or 3 once the process has had no handoff for a
/// random 0–1 ms).
pub const STARVED_RUN_MS: u64 = 20;

impl Share {
    /// The busiest thread's operations over the idlest one's (infinite when
    /// one did none).
    pub fn max_over_min(&self) -> f64 {
        let max = self.per_thread.iter().copied().max().unwrap_or(0);
        let min = self.per_thread.iter().copied().min().unwrap_or(0);
        if min == 0 {
            f64::INFINITY
        } else {
            max as f64 / min as f64
        }
    }
}

/// `threads` workers that stay alive across criterion's samples, so that a
/// sample measures the lock, not thread creation.
///
/// For exclusive locks, one operation is: take the lock, read the shared
/// counter and stop if it reached the target, count one, do the work,
/// release. The counter is the state the lock protects (plain load and
/// store, no atomic read-modify-write), and it makes the total exact
/// whatever the lock's fairness: no thread idles at the end while others
/// still have a quota. A token's holder that blocks in the work has
/// already counted, so the count stays right when the token is taken by
/// another thread meanwhile.
///
/// Shared locks admit several holders, which could not share a counter
/// inside: each thread then does an equal share of the operations.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    pub fn new(threads: usize, lock: Lock, work: Work) -> Pool {
        let spin_iters = match work {
            Work::Spin(ns) => spin_iters_for(ns),
            _ => 0,
        };
        let shared = Arc::new(Shared {
            done_ops: AtomicU64::new(0),
            _pad: [0; 7],
            target: AtomicU64::new(0),
            quit: AtomicBool::new(false),
            lock,
            work,
            spin_iters,
            threads: threads as u64,
            start: Barrier::new(threads + 1),
            finish: Barrier::new(threads + 1),
            last_run: (0..threads).map(|_| AtomicU64::new(0)).collect(),
            share: Mutex::new(Share {
                per_thread: vec![0; threads],
                ..Share::default()
            }),
        });
        let workers = (0..threads)
            .map(|i| {
                let s = shared.clone();
                std::thread::spawn(move || worker(&s, i as u64))
            })
            .collect();
        Pool { shared, workers }
    }

    /// Run `ops` operations on all threads; the wall time they took.
    pub fn run(&self, ops: u64) -> Duration {
        let s = &self.shared;
        s.done_ops.store(0, Relaxed);
        s.target.store(ops, Relaxed);
        let t = Instant::now();
        s.start.wait();
        s.finish.wait();
        let elapsed = t.elapsed();
        if !s.lock.is_shared() {
            assert_eq!(s.done_ops.load(Relaxed), ops, "lost updates: broken lock");
        }
        let mut share = s.share.lock().unwrap();
        let long = elapsed >= Duration::from_millis(STARVED_RUN_MS);
        share.long_runs += u64::from(long);
        let mut starved = false;
        for (total, last) in share.per_thread.iter_mut().zip(&s.last_run) {
            let n = last.load(Relaxed);
            *total += n;
            starved |= n == 0;
        }
        share.starved_runs += u64::from(long && starved);
        elapsed
    }

    /// How the operations so far were spread over the threads.
    pub fn share(&self) -> Share {
        self.shared.share.lock().unwrap().clone()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.quit.store(true, Relaxed);
        self.shared.start.wait();
        for w in self.workers.drain(..) {
            w.join().unwrap();
        }
    }
}

fn worker(s: &Shared, index: u64) {
    let conversation = match s.work {
        Work::PipeRead(delay) => Some(Conversation::start(delay)),
        _ => None,
    };
    let sleep = match s.work {
        Work::Sleep(ns) => ts(ns),
        _ => ts(0),
    };
    loop {
        s.start.wait();
        if s.quit.load(Relaxed) {
            break;
        }
        let target = s.target.load(Relaxed);
        let mut mine = if s.lock.is_shared() {
            target / s.threads + u64::from(index < target % s.threads)
        } else {
            u64::MAX
        };
        let mut done = 0;
        while mine > 0 {
            let counted = s.lock.with(|| {
                if !s.lock.is_shared() {
                    let n = s.done_ops.load(Relaxed);
                    if n >= target {
                        return false;
                    }
                    s.done_ops.store(n + 1, Relaxed);
                }
                match s.work {
                    Work::Spin(_) => spin(s.spin_iters),
                    Work::Sleep(_) => unsafe {
                        (lwkt().nanosleep)(&sleep, std::ptr::null_mut());
                    },
                    Work::PipeRead(_) => conversation.as_ref().unwrap().ask(),
                }
                true
            });
            if !counted {
                break;
            }
            done += 1;
            mine -= 1;
        }
        s.last_run[index as usize].store(done, Relaxed);
        s.finish.wait();
    }
}

/// A thread that stays parked for the life of the process. glibc's mutex
/// fast path is cheaper in a process that never started a second thread;
/// real programs that need locks have several threads, and so does this.
pub fn keep_a_second_thread_alive() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::spawn(|| loop {
            std::thread::park();
        });
    });
}

/// Write what the report needs to know about this run besides criterion's
/// figures (the spin calibration) next to criterion's output.
pub fn record_meta(key: &str, value: &str) {
    let dir = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            let exe = std::env::current_exe().unwrap();
            exe.parent()
                .unwrap()
                .parent()
                .unwrap()
                .parent()
                .unwrap()
                .to_path_buf()
        })
        .join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join(format!("lwkt-meta-{key}.txt")), value);
}
