//! ThreadSanitizer: a program built with `-fsanitize=thread` carries the
//! runtime, whose mutex annotations (`<sanitizer/tsan_interface.h>`) are
//! found at load with `dlsym(RTLD_DEFAULT)`; the library never links it.
//!
//! Every acquisition is announced with the try flag: a token cannot
//! deadlock (a waiting thread holds nothing, SPEC S4), and a try-lock is
//! what keeps TSan's lock-order detector from drawing edges between tokens
//! taken in different orders, which would be false deadlock reports.

use core::ffi::{c_int, c_uint, c_void, CStr};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::token::Token;

// Flags of `<sanitizer/tsan_interface.h>`.
const READ_LOCK: c_uint = 1 << 3;
const TRY_LOCK: c_uint = 1 << 4;

type Create = unsafe extern "C" fn(*mut c_void, c_uint);
type PostLock = unsafe extern "C" fn(*mut c_void, c_uint, c_int);
type PreUnlock = unsafe extern "C" fn(*mut c_void, c_uint) -> c_int;

/// The runtime's functions (0 until found): create, destroy, pre_lock,
/// post_lock, pre_unlock, post_unlock.
static CREATE: AtomicUsize = AtomicUsize::new(0);
static DESTROY: AtomicUsize = AtomicUsize::new(0);
static PRE_LOCK: AtomicUsize = AtomicUsize::new(0);
static POST_LOCK: AtomicUsize = AtomicUsize::new(0);
static PRE_UNLOCK: AtomicUsize = AtomicUsize::new(0);
static POST_UNLOCK: AtomicUsize = AtomicUsize::new(0);

fn lookup(name: &CStr) -> usize {
    // SAFETY: a NUL-terminated name; dlsym only reads it.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) as usize }
}

/// Find the runtime; true when the program has one (all six functions).
pub(crate) fn init_process() -> bool {
    let found = [
        (&CREATE, lookup(c"__tsan_mutex_create")),
        (&DESTROY, lookup(c"__tsan_mutex_destroy")),
        (&PRE_LOCK, lookup(c"__tsan_mutex_pre_lock")),
        (&POST_LOCK, lookup(c"__tsan_mutex_post_lock")),
        (&PRE_UNLOCK, lookup(c"__tsan_mutex_pre_unlock")),
        (&POST_UNLOCK, lookup(c"__tsan_mutex_post_unlock")),
    ];
    if found.iter().any(|&(_, f)| f == 0) {
        return false;
    }
    for (slot, f) in found {
        slot.store(f, Relaxed);
    }
    true
}

/// The function in `slot`, of type `F`.
///
/// # Safety
///
/// `slot` holds 0 or a function of type `F` (one of the runtime's, stored
/// by `init_process`); `F` is a function pointer type.
unsafe fn get<F: Copy>(slot: &AtomicUsize) -> Option<F> {
    let f = slot.load(Relaxed);
    // SAFETY: non-zero only as a function of type F (the contract above).
    (f != 0).then(|| unsafe { core::mem::transmute_copy::<usize, F>(&f) })
}

fn addr(tok: *const Token) -> *mut c_void {
    tok as *mut c_void
}

pub(crate) fn created(tok: *const Token) {
    // SAFETY: CREATE holds `__tsan_mutex_create` or 0.
    if let Some(f) = unsafe { get::<Create>(&CREATE) } {
        // SAFETY: the runtime only records the address.
        unsafe { f(addr(tok), 0) }
    }
}

pub(crate) fn destroyed(tok: *const Token) {
    // SAFETY: DESTROY holds `__tsan_mutex_destroy` or 0.
    if let Some(f) = unsafe { get::<Create>(&DESTROY) } {
        // SAFETY: as for `created`.
        unsafe { f(addr(tok), 0) }
    }
}

/// The word is this thread's now: a (try-)lock that succeeded.
pub(crate) fn taken(tok: *const Token, shared: bool) {
    let flags = TRY_LOCK | if shared { READ_LOCK } else { 0 };
    // SAFETY: the slots hold the runtime's functions of these types, or 0.
    let (pre, post) = unsafe { (get::<Create>(&PRE_LOCK), get::<PostLock>(&POST_LOCK)) };
    if let (Some(pre), Some(post)) = (pre, post) {
        // SAFETY: the runtime only records the address and the flags.
        unsafe {
            pre(addr(tok), flags);
            post(addr(tok), flags, 1);
        }
    }
}

/// The word is about to be given back: an unlock, announced before the
/// store that frees it, so that whoever takes it next is ordered after.
pub(crate) fn released(tok: *const Token, shared: bool) {
    let flags = if shared { READ_LOCK } else { 0 };
    // SAFETY: the slots hold the runtime's functions of these types, or 0.
    let (pre, post) = unsafe { (get::<PreUnlock>(&PRE_UNLOCK), get::<Create>(&POST_UNLOCK)) };
    if let (Some(pre), Some(post)) = (pre, post) {
        // SAFETY: as for `taken`.
        unsafe {
            pre(addr(tok), flags);
            post(addr(tok), flags);
        }
    }
}
