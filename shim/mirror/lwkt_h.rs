//! include/lwkt.h as Rust sees it from outside the library: the
//! `struct lwkt_token` layout and a table of the API's functions, found at
//! run time with dlsym.
//!
//! This file is not a module of the library crate (shim/lib.rs never names
//! it). The Rust programs that use liblwkt.so without linking it (the
//! launcher's demonstration, the benches, the Rust catch-all test program)
//! include it with `#[path = "…/shim/mirror/lwkt_h.rs"] mod lwkt_h;`. They
//! cannot link the library crate: it is a cdylib whose hooks would
//! interpose their own libc calls by accident. The catch-all test program
//! is compiled by a bare `rustc`, so this file uses `std` only (no `libc`).
//!
//! The layout is checked twice: below at compile time against the values of
//! lwkt.h on x86-64 Linux (the only target of the library), and by the
//! launcher's unit test `mirror_test` against the header itself, through the
//! C compiler (`offsetof`, `sizeof`, and every function's type).

// Each includer uses a part of this.
#![allow(dead_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::{align_of, offset_of, size_of};
use std::ptr::NonNull;

/// A field of `struct lwkt_token` as this mirror lays it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

/// Defines the struct and `FIELDS` from one list, so that the list the
/// header test checks is the struct itself, in order.
macro_rules! token_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }

        /// Every field of `struct lwkt_token`, in declaration order.
        pub const FIELDS: &[Field] = &[$(Field {
            name: stringify!($f),
            offset: offset_of!($name, $f),
            size: size_of::<$t>(),
        },)*];
    };
}

token_struct! {
    /// `struct lwkt_token`. Zero-filled (`LwktToken::FREE`), it is a valid,
    /// unnamed, free token. Its fields belong to the library: only its
    /// functions touch them, and they synchronise every access.
    #[repr(C)]
    pub struct LwktToken {
        pub t_word: u64,
        pub t_waiters: u32,
        pub t_wake: u32,
        pub t_handoff: u32,
        pub t_sleepers: u32,
        pub t_seq: u64,
        pub t_desc: *const c_char,
    }
}

impl LwktToken {
    /// A free, unnamed token (`{ 0 }` in C).
    pub const FREE: LwktToken = LwktToken {
        t_word: 0,
        t_waiters: 0,
        t_wake: 0,
        t_handoff: 0,
        t_sleepers: 0,
        t_seq: 0,
        t_desc: std::ptr::null(),
    };
}

/// `sizeof(struct lwkt_token)` and `_Alignof(struct lwkt_token)`.
pub const SIZE: usize = size_of::<LwktToken>();
pub const ALIGN: usize = align_of::<LwktToken>();

// The header's layout on x86-64: a change of the struct is an ABI change
// (SPEC section 3: a new SONAME), never an accident of this file.
const _: () = {
    assert!(SIZE == 40 && ALIGN == 8);
    assert!(offset_of!(LwktToken, t_word) == 0);
    assert!(offset_of!(LwktToken, t_waiters) == 8);
    assert!(offset_of!(LwktToken, t_wake) == 12);
    assert!(offset_of!(LwktToken, t_handoff) == 16);
    assert!(offset_of!(LwktToken, t_sleepers) == 20);
    assert!(offset_of!(LwktToken, t_seq) == 24);
    assert!(offset_of!(LwktToken, t_desc) == 32);
    assert!(FIELDS.len() == 7);
};

/// `lwkt_token_t`.
pub type TokenPtr = *mut LwktToken;
/// `lwkt_mark_t`.
pub type Mark = u64;

/// One function of the table: its C name and its Rust parameter and
/// result types as written in `api_table!` (the header test maps them to
/// C types).
#[derive(Clone, Copy, Debug)]
pub struct Signature {
    pub name: &'static str,
    pub args: &'static [&'static str],
    /// `None` for `void`.
    pub ret: Option<&'static str>,
}

/// Defines `Api` (one field per function, named as in C without the
/// `lwkt_` prefix), its loader and `Api::SIGNATURES`, from one list.
macro_rules! api_table {
    ($($(#[$doc:meta])* $f:ident: fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The functions of include/lwkt.h, as found in a loaded liblwkt.so.
        #[derive(Clone, Copy)]
        pub struct Api {
            $($(#[$doc])* pub $f: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Api {
            /// Every function, looked up in `lib`; on failure the name of
            /// the first one that is missing.
            pub fn load(lib: &Library) -> Result<Api, &'static str> {
                Ok(Api {$($f: {
                    const NAME: &str = concat!("lwkt_", stringify!($f), "\0");
                    let p = lib
                        .symbol_nul(NAME)
                        .ok_or(NAME.trim_end_matches('\0'))?;
                    // SAFETY: lwkt.h declares NAME with exactly this type
                    // (the launcher's `mirror_test` checks it with the C
                    // compiler), and a data pointer from dlsym has the size
                    // and value of the function pointer on Linux.
                    unsafe {
                        std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                            p.as_ptr(),
                        )
                    }
                },)*})
            }

            /// The type of every function, for the header test.
            pub const SIGNATURES: &'static [Signature] = &[$(Signature {
                name: concat!("lwkt_", stringify!($f)),
                args: &[$(stringify!($arg)),*],
                ret: api_table!(@ret $($ret)?),
            },)*];
        }
    };
    (@ret) => { None };
    (@ret $ret:ty) => { Some(stringify!($ret)) };
}

api_table! {
    token_init: fn(TokenPtr, *const c_char);
    token_uninit: fn(TokenPtr);
    gettoken: fn(TokenPtr);
    gettoken_shared: fn(TokenPtr);
    /// Non-zero on success.
    trytoken: fn(TokenPtr) -> c_int;
    trytoken_shared: fn(TokenPtr) -> c_int;
    reltoken: fn(TokenPtr);
    token_swap: fn();
    cnttoken: fn(TokenPtr) -> c_int;
    token_held_excl: fn(TokenPtr) -> c_int;
    /// (token, exclusive, expression, file, line)
    assert_held: fn(TokenPtr, c_int, *const c_char, *const c_char, c_int);
    assert_none_held: fn(*const c_char, c_int);
    mark: fn() -> Mark;
    lost_since: fn(Mark) -> c_int;
    token_lost_since: fn(TokenPtr, Mark) -> c_int;
    version: fn() -> *const c_char;
    token_pool_lookup: fn(*const c_void) -> TokenPtr;
    getpooltoken: fn(*const c_void) -> TokenPtr;
    relpooltoken: fn(*const c_void);
}

/// `lwkt_version()` of `lib` alone, without the rest of the table: a
/// library older than 0.1.0 has none, and a newer one may lack functions
/// of this table yet still tell its version.
pub fn version(lib: &Library) -> Option<&'static CStr> {
    let p = lib.symbol(c"lwkt_version")?;
    // SAFETY: lwkt.h declares `const char *lwkt_version(void)`, which
    // returns a static NUL-terminated string.
    unsafe {
        let f =
            std::mem::transmute::<*mut c_void, unsafe extern "C" fn() -> *const c_char>(p.as_ptr());
        Some(CStr::from_ptr(f()))
    }
}

/// glibc's `Dl_info` (dladdr).
#[repr(C)]
struct DlInfo {
    dli_fname: *const c_char,
    dli_fbase: *mut c_void,
    dli_sname: *const c_char,
    dli_saddr: *mut c_void,
}

extern "C" {
    fn dlopen(file: *const c_char, mode: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
    fn dlerror() -> *mut c_char;
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
}

/// glibc's values (dlfcn.h).
const RTLD_DEFAULT: *mut c_void = std::ptr::null_mut();
const RTLD_NOW: c_int = 2;
const RTLD_LOCAL: c_int = 0;

/// Where symbols are looked up: the whole process, or one liblwkt.so.
pub struct Library {
    handle: *mut c_void,
}

// SAFETY: a dlopen handle (or RTLD_DEFAULT) is valid in every thread
// until dlclose, which is never called; dlsym may be called from any.
unsafe impl Send for Library {}
// SAFETY: as for Send.
unsafe impl Sync for Library {}

impl Library {
    /// The process's global scope (`RTLD_DEFAULT`): liblwkt.so preloaded
    /// or linked, so that its hooks are the libc calls everybody makes.
    pub fn preloaded() -> Library {
        Library {
            handle: RTLD_DEFAULT,
        }
    }

    /// `dlopen(path, RTLD_NOW | RTLD_LOCAL)`: the library's definitions
    /// (its hooks of `read`, `nanosleep`, …) stay out of the global scope,
    /// so that the rest of the process keeps calling libc; every symbol is
    /// bound now, so that a broken library fails here, not later.
    pub fn open(path: &str) -> Result<Library, String> {
        let c = std::ffi::CString::new(path)
            .map_err(|_| format!("cannot load {path:?}: the path has a NUL byte"))?;
        // SAFETY: a NUL-terminated path; dlerror's message, when dlopen
        // fails, is a NUL-terminated string valid until the next dl call.
        unsafe {
            let handle = dlopen(c.as_ptr(), RTLD_NOW | RTLD_LOCAL);
            if handle.is_null() {
                let err = dlerror();
                let why = if err.is_null() {
                    "unknown error".into()
                } else {
                    CStr::from_ptr(err).to_string_lossy()
                };
                return Err(format!("cannot load {path}: {why}"));
            }
            Ok(Library { handle })
        }
    }

    /// The address of `name` as this library resolves it.
    pub fn symbol(&self, name: &CStr) -> Option<NonNull<c_void>> {
        // SAFETY: a valid handle and a NUL-terminated name.
        NonNull::new(unsafe { dlsym(self.handle, name.as_ptr()) })
    }

    /// `symbol` for a name that ends with its NUL byte (the table's names
    /// are built with `concat!` at compile time).
    fn symbol_nul(&self, name_nul: &str) -> Option<NonNull<c_void>> {
        self.symbol(CStr::from_bytes_with_nul(name_nul.as_bytes()).ok()?)
    }

    /// The file of the loaded object in which `name` resolves, if any.
    pub fn defined_in(&self, name: &CStr) -> Option<String> {
        object_of(self.symbol(name)?.as_ptr())
    }
}

/// The file of the loaded object that contains `addr`, if any.
pub fn object_of(addr: *const c_void) -> Option<String> {
    let mut info = DlInfo {
        dli_fname: std::ptr::null(),
        dli_fbase: std::ptr::null_mut(),
        dli_sname: std::ptr::null(),
        dli_saddr: std::ptr::null_mut(),
    };
    // SAFETY: dladdr only reads `addr` as a number and fills `info`; the
    // file name it returns belongs to the loaded object, which stays.
    unsafe {
        if dladdr(addr, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        Some(
            CStr::from_ptr(info.dli_fname)
                .to_string_lossy()
                .into_owned(),
        )
    }
}
