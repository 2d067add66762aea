//! `open` and `openat` of a FIFO (calls/open.rs).

use core::ffi::{c_char, c_int};
use libc::mode_t;

// `calls::open` by its path: the hook `open` has a module of that name.
use crate::interpose::calls;

hook! {
    fn open | open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int
        => |real| calls::open::openat("open", libc::AT_FDCWD, path, flags, || real(path, flags, mode))
}

hook! {
    fn openat | openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: mode_t) -> c_int
        => |real| calls::open::openat("openat", dirfd, path, flags, || real(dirfd, path, flags, mode))
}
