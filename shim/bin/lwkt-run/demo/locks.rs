//! The token API of liblwkt.so, looked up at run time, and the two kinds of
//! lock that the demonstration compares.
//!
//! The launcher must not link the library crate: it is a cdylib whose hooks
//! would interpose the launcher's own calls by accident. The demonstration
//! runs with liblwkt.so preloaded instead, and finds the functions by name.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

/// `struct lwkt_token` of include/lwkt.h. Zero-filled, it is a free token.
#[repr(C)]
pub struct RawToken {
    t_word: u64,
    t_waiters: u32,
    t_wake: u32,
    t_handoff: u32,
    t_reserved: u32,
    t_seq: u64,
    t_desc: *const c_char,
}

type TokFn = unsafe extern "C" fn(*mut RawToken);

/// The functions of include/lwkt.h that the demonstration uses.
struct Api {
    token_init: unsafe extern "C" fn(*mut RawToken, *const c_char),
    gettoken: TokFn,
    reltoken: TokFn,
    cnttoken: unsafe extern "C" fn(*mut RawToken) -> c_int,
    mark: unsafe extern "C" fn() -> u64,
    token_lost_since: unsafe extern "C" fn(*mut RawToken, u64) -> c_int,
}

static API: OnceLock<Api> = OnceLock::new();

/// The address of `name` in the process, or None.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Look up `name` as a function of type `$t`, or return the name that is
/// missing.
macro_rules! lookup {
    ($name:literal as $t:ty) => {
        match symbol($name) {
            // SAFETY: the symbol is the function of that type in lwkt.h.
            Some(p) => unsafe { std::mem::transmute::<*mut c_void, $t>(p) },
            None => return Err($name.to_str().unwrap()),
        }
    };
}

/// Find the token API in the process (liblwkt.so must be loaded). On
/// failure, the name of the first function that is missing.
pub fn load() -> Result<(), &'static str> {
    let api = Api {
        token_init: lookup!(
            c"lwkt_token_init" as unsafe extern "C" fn(*mut RawToken, *const c_char)
        ),
        gettoken: lookup!(c"lwkt_gettoken" as TokFn),
        reltoken: lookup!(c"lwkt_reltoken" as TokFn),
        cnttoken: lookup!(c"lwkt_cnttoken" as unsafe extern "C" fn(*mut RawToken) -> c_int),
        mark: lookup!(c"lwkt_mark" as unsafe extern "C" fn() -> u64),
        token_lost_since: lookup!(
            c"lwkt_token_lost_since" as unsafe extern "C" fn(*mut RawToken, u64) -> c_int
        ),
    };
    let _ = API.set(api);
    Ok(())
}

fn api() -> &'static Api {
    API.get().expect("api::load() must succeed first")
}

/// The file of the loaded object that defines `name`, if any.
fn defined_in(name: &CStr) -> Option<String> {
    let p = symbol(name)?;
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    if unsafe { libc::dladdr(p, &mut info) } == 0 || info.dli_fname.is_null() {
        return None;
    }
    Some(
        unsafe { CStr::from_ptr(info.dli_fname) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// The path of the liblwkt.so that provides the token API.
pub fn library_path() -> Option<String> {
    defined_in(c"lwkt_gettoken")
}

/// Is the libc call `name` interposed by liblwkt.so (so that blocking in it
/// releases tokens)?
pub fn hooked(name: &CStr) -> bool {
    let lib = library_path();
    lib.is_some() && defined_in(name) == lib
}

/// A serializing token. It lives in a Box: its address must not change
/// once it has been used.
pub struct Token(UnsafeCell<RawToken>);

// The library synchronizes every access to the token's fields.
unsafe impl Sync for Token {}
unsafe impl Send for Token {}

impl Token {
    /// A named token that lives until the process exits (threads that the
    /// demonstration leaves stuck may still refer to it).
    pub fn leak(name: &'static CStr) -> &'static Token {
        let raw = RawToken {
            t_word: 0,
            t_waiters: 0,
            t_wake: 0,
            t_handoff: 0,
            t_reserved: 0,
            t_seq: 0,
            t_desc: std::ptr::null(),
        };
        let t: &'static Token = Box::leak(Box::new(Token(UnsafeCell::new(raw))));
        unsafe { (api().token_init)(t.0.get(), name.as_ptr()) };
        t
    }

    /// `lwkt_gettoken`: if another thread holds it, the caller's other
    /// tokens are released while it waits.
    pub fn get(&self) {
        unsafe { (api().gettoken)(self.0.get()) }
    }

    /// `lwkt_reltoken`: the caller's most recent reference must be this.
    pub fn rel(&self) {
        unsafe { (api().reltoken)(self.0.get()) }
    }

    /// `lwkt_cnttoken`: references the calling thread holds.
    pub fn count(&self) -> i32 {
        unsafe { (api().cnttoken)(self.0.get()) }
    }

    /// `lwkt_token_lost_since`: did another thread take this token (which
    /// the caller holds) since `mark`?
    pub fn lost_since(&self, mark: u64) -> bool {
        unsafe { (api().token_lost_since)(self.0.get(), mark) != 0 }
    }
}

/// `lwkt_mark`: a point in the calling thread's history.
pub fn mark() -> u64 {
    unsafe { (api().mark)() }
}

/// A plain `pthread_mutex_t`, called through libc (and so through the
/// shim's hooks, which pass it straight on: the caller holds no token).
pub struct Mutex(UnsafeCell<libc::pthread_mutex_t>);

unsafe impl Sync for Mutex {}
unsafe impl Send for Mutex {}

impl Mutex {
    pub fn leak() -> &'static Mutex {
        Box::leak(Box::new(Mutex(UnsafeCell::new(
            libc::PTHREAD_MUTEX_INITIALIZER,
        ))))
    }

    pub fn lock(&self) {
        let rc = unsafe { libc::pthread_mutex_lock(self.0.get()) };
        assert_eq!(rc, 0, "pthread_mutex_lock");
    }

    pub fn unlock(&self) {
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
        &mut *self.0.get()
    }
}
