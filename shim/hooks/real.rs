//! libc's own functions behind our hooks.
//!
//! `real_fn!(name: fn(args) -> ret)` makes a module `name` holding the
//! address of the next definition of `name` after this library
//! (`dlsym(RTLD_NEXT)`), resolved by a constructor when the library loads,
//! so that hooks never call the dynamic linker themselves. A hook that runs
//! before that constructor (another library's constructor blocking early)
//! resolves it on the spot.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Look up `name` (NUL-terminated) after this library; with `version`, that
/// symbol version (for the `pthread_cond_*` family, which glibc exports in
/// two versions).
#[cold]
#[inline(never)]
pub fn resolve(slot: &AtomicUsize, name: &'static str, version: Option<&'static str>) -> usize {
    let p = slot.load(Relaxed);
    if p != 0 {
        return p;
    }
    let sym = name.as_ptr() as *const c_char;
    let f = unsafe {
        match version {
            Some(v) => libc::dlvsym(libc::RTLD_NEXT, sym, v.as_ptr() as *const c_char),
            None => libc::dlsym(libc::RTLD_NEXT, sym),
        }
    };
    if f.is_null() {
        crate::diag::warn(format_args!(
            "libc has no {}; the shim cannot run it",
            name.trim_end_matches('\0')
        ));
        crate::sys::abort();
    }
    slot.store(f as usize, Relaxed);
    f as *const c_void as usize
}

macro_rules! real_version {
    () => {
        None
    };
    ($v:literal) => {
        Some(concat!($v, "\0"))
    };
}

macro_rules! real_fn {
    ($name:ident : fn($($arg:ty),*) -> $ret:ty $(, version = $ver:literal)?) => {
        #[allow(non_snake_case, dead_code)]
        pub mod $name {
            #[allow(unused_imports)]
            use super::*;
            use core::sync::atomic::AtomicUsize;
            static ADDR: AtomicUsize = AtomicUsize::new(0);
            const VERSION: Option<&str> = real_version!($($ver)?);

            #[ctor::ctor]
            fn resolve_at_load() {
                $crate::hooks::real::resolve(&ADDR, concat!(stringify!($name), "\0"), VERSION);
            }

            #[inline(always)]
            pub fn get() -> unsafe extern "C" fn($($arg),*) -> $ret {
                let mut p = ADDR.load(core::sync::atomic::Ordering::Relaxed);
                if p == 0 {
                    p = $crate::hooks::real::resolve(&ADDR, concat!(stringify!($name), "\0"), VERSION);
                }
                // SAFETY: the address of libc's function of this name and type.
                unsafe { core::mem::transmute::<usize, unsafe extern "C" fn($($arg),*) -> $ret>(p) }
            }
        }
    };
}
