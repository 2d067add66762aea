//! The version (SPEC section 3): in the header, for the program compiled
//! against it, and in the library, for the one loaded at run time.

use core::ffi::{c_char, c_int};

// The version (SPEC section 3) is Cargo.toml's; the unit test
// `version_is_cargo_tomls` fails when these lag behind it.

/// The version of this header: MAJOR.MINOR.PATCH. The library's SONAME is
/// liblwkt.so.MAJOR; `lwkt_version()` gives the version loaded at run time.
pub const LWKT_VERSION_MAJOR: c_int = 0;
/// See `LWKT_VERSION_MAJOR`.
pub const LWKT_VERSION_MINOR: c_int = 1;
/// See `LWKT_VERSION_MAJOR`.
pub const LWKT_VERSION_PATCH: c_int = 0;

/// Extension: the version of the library loaded at run time,
/// `"MAJOR.MINOR.PATCH"` (a static string), to compare with the
/// `LWKT_VERSION_` macros the program was compiled with.
#[no_mangle]
pub extern "C" fn lwkt_version() -> *const c_char {
    VERSION.as_ptr().cast()
}

/// Cargo.toml's version, NUL-terminated.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
