//! The token layer's narrow interface upward. The layer reports misuse,
//! warnings and statistics events, names tokens and threads in its
//! messages, and arms the catch-all for a thread, all through one table
//! of function pointers that the crate root registers at load
//! (`register`); the layer itself uses only `sys`. The settings it tests
//! on its paths are owned here, so that the fast path's test stays one
//! load of a static; `observe`'s configuration writes them.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

use super::word::Token;

/// The slow-path switch: statistics, a hold warning or a race checker is
/// on, so every operation takes the general paths, which time holds and
/// tell the checker about words (see `observe`).
pub static TIMING: AtomicBool = AtomicBool::new(false);
/// `LWKT_DEBUG`: richer misuse reports.
pub static DEBUG: AtomicBool = AtomicBool::new(false);
/// `LWKT_DEBUG=hold_ms=N`: warn about holds longer than N ms (0: never).
pub static HOLD_WARN_MS: AtomicU32 = AtomicU32::new(0);
/// `LWKT_CHAOS=SEED`: release and retake at every hook; 0 is off.
pub static CHAOS_SEED: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
pub(super) fn timing() -> bool {
    TIMING.load(Relaxed)
}

pub(super) fn debug() -> bool {
    DEBUG.load(Relaxed)
}

/// What the layers above do for the token layer. Every entry must be
/// async-signal-safe: the layer calls them from hooks and handlers.
pub struct Observer {
    /// Report a misuse of `tok` by `call` and end the process.
    pub misuse: fn(&str, *const Token, fmt::Arguments<'_>) -> !,
    /// The same, for a call that takes no token.
    pub misuse_no_token: fn(&str, fmt::Arguments<'_>) -> !,
    /// Write one warning line.
    pub warn: fn(fmt::Arguments<'_>),
    /// Name a token in a message.
    pub describe: fn(*const Token, &mut fmt::Formatter<'_>) -> fmt::Result,
    /// Name the calling thread in a message.
    pub thread_name: fn(&mut fmt::Formatter<'_>) -> fmt::Result,
    /// Name a code address in a message.
    pub code_addr: fn(usize, &mut fmt::Formatter<'_>) -> fmt::Result,
    /// The program's code that called into the library (`LWKT_DEBUG`).
    pub caller: fn() -> usize,
    /// Statistics events.
    pub thread_started: fn(),
    pub acquired: fn(*const Token, bool, u32),
    pub held: fn(*const Token, u64),
    pub released_on_block: fn(*const Token, &'static str),
    pub waited: fn(*const Token, u64),
    pub lost: fn(*const Token),
    /// Race checkers (with `TIMING` on): the calling thread is about to
    /// try for the token's word, has just taken it (shared: true), is
    /// about to give it back.
    pub word_wanted: fn(*const Token),
    pub word_taken: fn(*const Token, bool),
    pub word_released: fn(*const Token, bool),
    /// Memory that threads share only through the library's own atomics
    /// (the registry): not to be checked for races.
    pub private_memory: fn(usize, usize),
    /// Arm the catch-all for the calling thread with its selector byte;
    /// false when it cannot run here.
    pub arm_thread: fn(*mut u8) -> bool,
    /// Disarm it (the thread is exiting).
    pub disarm_thread: fn(),
    /// A thread's first use found the catch-all unavailable.
    pub catchall_unavailable: fn(),
}

static OBSERVER: AtomicPtr<Observer> = AtomicPtr::new(ptr::null_mut());

/// Install what the layers above do; called once, first thing at load.
pub fn register(observer: &'static Observer) {
    OBSERVER.store(observer as *const Observer as *mut Observer, Release);
}

/// Until `register` runs (another library's constructor taking tokens
/// before ours): silent, and a misuse still ends the process.
static SILENT: Observer = Observer {
    misuse: |_, _, _| sys_abort(),
    misuse_no_token: |_, _| sys_abort(),
    warn: |_| {},
    describe: |tok, f| write!(f, "token {tok:p}"),
    thread_name: |f| f.write_str("a thread"),
    code_addr: |pc, f| write!(f, "{pc:#x}"),
    caller: || 0,
    thread_started: || {},
    acquired: |_, _, _| {},
    held: |_, _| {},
    released_on_block: |_, _| {},
    waited: |_, _| {},
    lost: |_| {},
    word_wanted: |_| {},
    word_taken: |_, _| {},
    word_released: |_, _| {},
    private_memory: |_, _| {},
    arm_thread: |_| false,
    disarm_thread: || {},
    catchall_unavailable: || {},
};

fn sys_abort() -> ! {
    crate::sys::abort()
}

/// Tell a race checker (`word_wanted`, `word_taken`, `word_released`).
/// Its runtime may make system calls of its own (ThreadSanitizer maps
/// memory and waits on its own locks, from outside the allowed range): the
/// selector says ALLOW meanwhile, so that the catch-all lets them through
/// and the hooks pass them on, and none releases tokens in the middle of
/// the operation being told.
#[cold]
#[inline(never)]
pub(super) fn tell_checker(tell: impl FnOnce(&Observer)) {
    let selector = super::tls::selector_slot();
    // SAFETY: this thread's own static TLS byte.
    let before = unsafe { ptr::read_volatile(selector) };
    // SAFETY: as above.
    unsafe { ptr::write_volatile(selector, super::tls::SELECT_ALLOW) };
    tell(observer());
    // SAFETY: as above.
    unsafe { ptr::write_volatile(selector, before) };
}

/// The registered table.
#[inline]
pub(super) fn observer() -> &'static Observer {
    let p = OBSERVER.load(Acquire);
    if p.is_null() {
        &SILENT
    } else {
        // SAFETY: only `register` stores here, from a `&'static`.
        unsafe { &*p }
    }
}

/// A token named as the layers above name it.
pub(super) struct Desc(pub *const Token);

impl fmt::Display for Desc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (observer().describe)(self.0, f)
    }
}

/// The calling thread named as the layers above name it.
pub(super) struct ThreadName;

impl fmt::Display for ThreadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (observer().thread_name)(f)
    }
}

/// A code address named as the layers above name it.
pub(super) struct CodeAddr(pub usize);

impl fmt::Display for CodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (observer().code_addr)(self.0, f)
    }
}

#[cold]
pub(super) fn misuse(call: &str, tok: *const Token, what: fmt::Arguments<'_>) -> ! {
    (observer().misuse)(call, tok, what)
}

#[cold]
pub(super) fn misuse_no_token(call: &str, what: fmt::Arguments<'_>) -> ! {
    (observer().misuse_no_token)(call, what)
}

#[cold]
pub(super) fn warn(what: fmt::Arguments<'_>) {
    (observer().warn)(what)
}
