//! libc's own functions behind our hooks.
//!
//! `real_slot!(name: fn(args) -> ret)` (used by `hook!`) makes the items
//! of a slot holding the address of the next definition of `name` after
//! this library (`dlsym(RTLD_NEXT)`), resolved by a constructor when the
//! library loads, so that hooks never call the dynamic linker themselves.
//! A hook that runs before that constructor (another library's constructor
//! blocking early) resolves it on the spot.
//!
//! A function that the running libc lacks (glibc 2.34 has no
//! `epoll_pwait2`) is simply not hooked, never a reason to stop the
//! program: its slot holds a stand-in that fails with ENOSYS (-1 and
//! `errno`), and `LWKT_DEBUG` says so once.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// Look up `name` (NUL-terminated) after this library; with `version`, that
/// symbol version (for the `pthread_cond_*` family, which glibc exports in
/// two versions). None when nothing after us defines it, or a name is not
/// NUL-terminated.
pub fn lookup(name: &'static str, version: Option<&'static str>) -> Option<usize> {
    if !name.ends_with('\0') || version.is_some_and(|v| !v.ends_with('\0')) {
        return None;
    }
    let sym = name.as_ptr() as *const c_char;
    // SAFETY: `name` and `version` are NUL-terminated (checked above);
    // dlsym and dlvsym only read them.
    let f = unsafe {
        match version {
            Some(v) => libc::dlvsym(libc::RTLD_NEXT, sym, v.as_ptr() as *const c_char),
            None => libc::dlsym(libc::RTLD_NEXT, sym),
        }
    };
    if f.is_null() {
        // Leave no error behind for the program's next dlerror().
        // SAFETY: dlerror takes nothing and only clears the thread's error.
        unsafe { libc::dlerror() };
        return None;
    }
    Some(f as *const c_void as usize)
}

/// The address for `slot`: libc's function `name`, or `stand_in` when libc
/// has none.
#[cold]
#[inline(never)]
pub fn resolve(
    slot: &AtomicUsize,
    name: &'static str,
    version: Option<&'static str>,
    stand_in: usize,
) -> usize {
    let p = slot.load(Relaxed);
    if p != 0 {
        return p;
    }
    let f = lookup(name, version).unwrap_or_else(|| {
        note_missing(name);
        stand_in
    });
    slot.store(f, Relaxed);
    f
}

/// Functions found missing before the settings were read (the resolving
/// constructors may run first), to be said under `LWKT_DEBUG` then.
static MISSING: [AtomicUsize; 16] = [const { AtomicUsize::new(0) }; 16];
static MISSING_COUNT: AtomicUsize = AtomicUsize::new(0);
/// The settings are read: say a missing function at once.
static ANNOUNCED: AtomicBool = AtomicBool::new(false);

/// Note `name` (NUL-terminated: `announce_missing` reads it back as a C
/// string; another is not noted) as missing from libc.
fn note_missing(name: &'static str) {
    if !name.ends_with('\0') {
        return;
    }
    if ANNOUNCED.load(Relaxed) {
        say_missing(name);
        return;
    }
    let i = MISSING_COUNT.fetch_add(1, Relaxed);
    if let Some(slot) = MISSING.get(i) {
        slot.store(name.as_ptr() as usize, Relaxed);
    }
}

/// Call once the settings are read: `LWKT_DEBUG` names each function that
/// libc lacks and the library therefore does not hook.
pub fn announce_missing() {
    ANNOUNCED.store(true, Relaxed);
    let n = MISSING_COUNT.load(Relaxed).min(MISSING.len());
    for slot in &MISSING[..n] {
        let p = slot.load(Relaxed);
        if p != 0 {
            // SAFETY: a NUL-terminated `&'static str` stored by note_missing
            // (it stores no other).
            let name = unsafe { core::ffi::CStr::from_ptr(p as *const c_char) };
            say_missing(name.to_str().unwrap_or("?"));
        }
    }
}

fn say_missing(name: &str) {
    if crate::config::debug() {
        let mut line = crate::diag::Line::new();
        let name = name.trim_end_matches('\0');
        let _ = core::fmt::Write::write_fmt(
            &mut line,
            format_args!("lwkt: this libc has no {name}: not hooked (it fails with ENOSYS)"),
        );
        line.emit();
    }
}

/// Was `name` found missing?
#[cfg(test)]
pub fn was_missing(name: &'static str) -> bool {
    let n = MISSING_COUNT.load(Relaxed).min(MISSING.len());
    MISSING[..n]
        .iter()
        .any(|s| s.load(Relaxed) == name.as_ptr() as usize)
}

/// The `version` of a slot: none, or a NUL-terminated symbol version.
macro_rules! real_version {
    () => {
        None
    };
    ($v:literal) => {
        Some(concat!($v, "\0"))
    };
}

/// The items of a hook's slot for libc's `$name` (placed in the hook's own
/// module by `hook!`): `get()` gives libc's function, resolved at load or
/// on first use; `present()` says whether libc has it; `ADDR` is the
/// address, 0 until resolved (the hook's fast path reads it directly).
macro_rules! real_slot {
    ($name:ident : fn($($arg:ty),*) -> $ret:ty $(, version = $ver:literal)?) => {
        pub static ADDR: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
        const VERSION: Option<&str> = real_version!($($ver)?);

        /// Stands in for the function when libc lacks it: what a call
        /// of a system call the kernel lacks gives.
        ///
        /// # Safety
        ///
        /// None: it reads no argument.
        unsafe extern "C" fn stand_in($(_: $arg),*) -> $ret {
            $crate::sys::set_errno(libc::ENOSYS);
            (-1i64) as $ret
        }

        fn stand_in_addr() -> usize {
            let f: unsafe extern "C" fn($($arg),*) -> $ret = stand_in;
            f as usize
        }

        #[cold]
        fn resolve_now() -> usize {
            let name = concat!(stringify!($name), "\0");
            $crate::interpose::real::resolve(&ADDR, name, VERSION, stand_in_addr())
        }

        #[ctor::ctor]
        fn resolve_at_load() {
            resolve_now();
        }

        /// The function at a resolved address.
        ///
        /// # Safety
        ///
        /// `p` is a value `ADDR` held, not 0.
        #[inline(always)]
        pub unsafe fn at(p: usize) -> unsafe extern "C" fn($($arg),*) -> $ret {
            // SAFETY: `ADDR` holds only libc's function of this name and
            // type, or the stand-in of the same type (the caller's
            // contract: `p` came from there).
            unsafe { core::mem::transmute::<usize, unsafe extern "C" fn($($arg),*) -> $ret>(p) }
        }

        /// libc's function, resolved now if it was not yet.
        #[inline(always)]
        pub fn get() -> unsafe extern "C" fn($($arg),*) -> $ret {
            let mut p = ADDR.load(core::sync::atomic::Ordering::Relaxed);
            if p == 0 {
                p = resolve_now();
            }
            // SAFETY: from `ADDR` or `resolve_now`, never 0.
            unsafe { at(p) }
        }

        /// Does libc have it? (A hook of a missing function stays out
        /// of the way: it calls the stand-in.)
        #[allow(dead_code)]
        pub fn present() -> bool {
            get() as usize != stand_in_addr()
        }
    };
}
