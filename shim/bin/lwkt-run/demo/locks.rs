//! The token API of liblwkt.so, looked up at run time, and the two kinds of
//! lock that the demonstration compares.
//!
//! The launcher must not link the library crate: it is a cdylib whose hooks
//! would interpose the launcher's own calls by accident. The demonstration
//! runs with liblwkt.so preloaded instead, and finds the functions by name
//! through the mirror of include/lwkt.h (shim/mirror/lwkt_h.rs).

use crate::lwkt_h::{Api, Library, LwktToken};
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::sync::OnceLock;

static API: OnceLock<Api> = OnceLock::new();

/// Find the token API in the process (liblwkt.so must be loaded). On
/// failure, the name of the first function that is missing.
pub fn load() -> Result<(), &'static str> {
    let _ = API.set(Api::load(&Library::preloaded())?);
    Ok(())
}

fn api() -> &'static Api {
    API.get().expect("locks::load() must succeed first")
}

/// The path of the liblwkt.so that provides the token API.
pub fn library_path() -> Option<String> {
    Library::preloaded().defined_in(c"lwkt_gettoken")
}

/// Is the libc call `name` interposed by liblwkt.so (so that blocking in it
/// releases tokens)?
pub fn hooked(name: &CStr) -> bool {
    let lib = library_path();
    lib.is_some() && Library::preloaded().defined_in(name) == lib
}

/// A serializing token. It lives in a Box: its address must not change
/// once it has been used.
pub struct Token(UnsafeCell<LwktToken>);

// SAFETY: only the library touches the token's fields, and it
// synchronizes every access (atomics) across threads.
unsafe impl Sync for Token {}
// SAFETY: as for Sync; the token belongs to no thread.
unsafe impl Send for Token {}

impl Token {
    /// A named token that lives until the process exits (threads that the
    /// demonstration leaves stuck may still refer to it).
    pub fn leak(name: &'static CStr) -> &'static Token {
        let t: &'static Token = Box::leak(Box::new(Token(UnsafeCell::new(LwktToken::FREE))));
        // SAFETY: a fresh token that never moves (leaked box); `name` is a
        // static string, so it outlives the token as lwkt.h requires.
        unsafe { (api().token_init)(t.0.get(), name.as_ptr()) };
        t
    }

    /// `lwkt_gettoken`: if another thread holds it, the caller's other
    /// tokens are released while it waits.
    pub fn get(&self) {
        // SAFETY: a token initialised by `leak`, which never moves or dies;
        // the table was loaded before any Token exists.
        unsafe { (api().gettoken)(self.0.get()) }
    }

    /// `lwkt_reltoken`: the caller's most recent reference must be this.
    pub fn rel(&self) {
        // SAFETY: a token initialised by `leak`, which never moves or dies;
        // the table was loaded before any Token exists.
        unsafe { (api().reltoken)(self.0.get()) }
    }

    /// `lwkt_cnttoken`: references the calling thread holds.
    pub fn count(&self) -> i32 {
        // SAFETY: a token initialised by `leak`, which never moves or dies;
        // the table was loaded before any Token exists.
        unsafe { (api().cnttoken)(self.0.get()) }
    }

    /// `lwkt_token_lost_since`: did another thread take this token (which
    /// the caller holds) since `mark`?
    pub fn lost_since(&self, mark: u64) -> bool {
        // SAFETY: a token initialised by `leak`, which never moves or dies;
        // the table was loaded before any Token exists.
        unsafe { (api().token_lost_since)(self.0.get(), mark) != 0 }
    }
}

/// `lwkt_mark`: a point in the calling thread's history.
pub fn mark() -> u64 {
    // SAFETY: lwkt_mark takes nothing and only reads the caller's state.
    unsafe { (api().mark)() }
}

/// A plain `pthread_mutex_t`, called through libc (and so through the
/// shim's hooks, which pass it straight on: the caller holds no token).
pub struct Mutex(UnsafeCell<libc::pthread_mutex_t>);

// SAFETY: a pthread mutex is made to be shared between threads; it never
// moves (leaked box).
unsafe impl Sync for Mutex {}
// SAFETY: as for Sync.
unsafe impl Send for Mutex {}

impl Mutex {
    pub fn leak() -> &'static Mutex {
        Box::leak(Box::new(Mutex(UnsafeCell::new(
            libc::PTHREAD_MUTEX_INITIALIZER,
        ))))
    }

    pub fn lock(&self) {
        // SAFETY: an initialised mutex that never moves.
        let rc = unsafe { libc::pthread_mutex_lock(self.0.get()) };
        assert_eq!(rc, 0, "pthread_mutex_lock");
    }

    pub fn unlock(&self) {
        // SAFETY: an initialised mutex, locked by this thread.
        let rc = unsafe { libc::pthread_mutex_unlock(self.0.get()) };
        assert_eq!(rc, 0, "pthread_mutex_unlock");
    }
}

/// Which kind of lock a scenario runs with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Token,
    Mutex,
}

/// A token or a mutex, behind one interface, so that each scenario is
/// written once and run with both.
#[derive(Clone, Copy)]
pub enum Lock {
    Token(&'static Token),
    Mutex(&'static Mutex),
}

impl Lock {
    pub fn new(kind: Kind, name: &'static CStr) -> Lock {
        match kind {
            Kind::Token => Lock::Token(Token::leak(name)),
            Kind::Mutex => Lock::Mutex(Mutex::leak()),
        }
    }

    pub fn lock(self) {
        match self {
            Lock::Token(t) => t.get(),
            Lock::Mutex(m) => m.lock(),
        }
    }

    pub fn unlock(self) {
        match self {
            Lock::Token(t) => t.rel(),
            Lock::Mutex(m) => m.unlock(),
        }
    }

    /// Was the lock taken by another thread since `mark` while the caller
    /// held it? A mutex never is.
    pub fn lost_since(self, mark: u64) -> bool {
        match self {
            Lock::Token(t) => t.lost_since(mark),
            Lock::Mutex(_) => false,
        }
    }
}

/// Data that a lock protects: the code that touches it holds the lock.
pub struct Guarded<T>(UnsafeCell<T>);

// SAFETY: every access goes through `get`, whose callers hold the lock
// that protects the data (see there).
unsafe impl<T: Send> Sync for Guarded<T> {}

impl<T> Guarded<T> {
    pub const fn new(v: T) -> Guarded<T> {
        Guarded(UnsafeCell::new(v))
    }

    /// # Safety
    /// The caller holds the lock that protects the data (or, in the
    /// unprotected control runs, wants the data race on purpose).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: the caller holds the lock (this function's contract).
        unsafe { &mut *self.0.get() }
    }
}
