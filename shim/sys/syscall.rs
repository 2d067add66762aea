//! The raw system call and `errno`.

use super::allowed::lwkt_raw_syscall;

/// A raw system call with up to six arguments. Returns the kernel's value:
/// negative errno on failure. `errno` is left alone.
///
/// # Safety
///
/// The arguments must be what system call `nr` expects: every pointer valid
/// for what the kernel reads or writes through it, for the whole call. The
/// call must not undo what Rust relies on: unmap or remap memory still in
/// use, close a descriptor something else owns, start a thread or process
/// without a stack of its own (`clone` goes through `lwkt_clone_tramp`),
/// or end the thread behind Rust's back.
#[inline(always)]
pub unsafe fn syscall6(
    nr: i64,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    // SAFETY: the stub only moves the arguments into the kernel's
    // registers; the caller vouches for what they mean to the kernel.
    unsafe { lwkt_raw_syscall(nr, a1, a2, a3, a4, a5, a6) }
}

/// `syscall6` for the calls with at most three arguments.
///
/// # Safety
///
/// As for `syscall6`.
#[inline(always)]
pub unsafe fn syscall3(nr: i64, a1: usize, a2: usize, a3: usize) -> isize {
    // SAFETY: the caller keeps `syscall6`'s contract; the rest are zero.
    unsafe { syscall6(nr, a1, a2, a3, 0, 0, 0) }
}

/// The calling thread's `errno`.
#[inline(always)]
pub fn errno() -> i32 {
    // SAFETY: glibc's `__errno_location` is the calling thread's errno,
    // valid for as long as the thread runs.
    unsafe { *libc::__errno_location() }
}

/// Set the calling thread's `errno` (a hook's result, as libc's).
#[inline(always)]
pub fn set_errno(e: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = e }
}
