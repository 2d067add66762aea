//! The adapter between a trapped system call and the functions of
//! `calls/`, which speak the C convention: the one place where the
//! catch-all turns a raw kernel result (a negative errno) into -1 and
//! `errno`, and back.

use crate::interpose::calls::c_result;
use crate::sys;

/// A trapped system call: its number and arguments, as the kernel would
/// have taken them.
#[derive(Clone, Copy)]
pub(super) struct Trapped {
    nr: i64,
    a: [usize; 6],
}

impl Trapped {
    /// # Safety
    ///
    /// `nr` and `a` are a system call the program made (trapped from its
    /// registers), or that call with some arguments replaced by parts of
    /// what it named (the calls of `calls/` only do that), so that making
    /// it does to the program's memory what the program asked.
    pub(super) unsafe fn new(nr: i64, a: [usize; 6]) -> Trapped {
        Trapped { nr, a }
    }

    /// The system call's number.
    pub(super) fn nr(&self) -> i64 {
        self.nr
    }

    /// Argument `i`.
    pub(super) fn arg(&self, i: usize) -> usize {
        self.a[i]
    }

    /// Argument `i` as a C `int`.
    pub(super) fn int(&self, i: usize) -> core::ffi::c_int {
        self.a[i] as core::ffi::c_int
    }

    /// Argument `i` as a pointer.
    pub(super) fn ptr<T>(&self, i: usize) -> *mut T {
        self.a[i] as *mut T
    }

    /// Argument `i` as a pointer to read only.
    pub(super) fn cptr<T>(&self, i: usize) -> *const T {
        self.a[i] as *const T
    }

    /// The call with arguments `a`: the kernel's raw result.
    pub(super) fn raw_with(&self, a: [usize; 6]) -> isize {
        // SAFETY: `new`'s contract: the program's call, or it on parts of
        // what it named.
        unsafe { sys::syscall6(self.nr, a[0], a[1], a[2], a[3], a[4], a[5]) }
    }

    /// The call as trapped: the kernel's raw result.
    pub(super) fn raw(&self) -> isize {
        self.raw_with(self.a)
    }

    /// The call with arguments `a`, in the C convention (-1 and `errno`).
    pub(super) fn call_with(&self, a: [usize; 6]) -> isize {
        c_result(self.raw_with(a))
    }

    /// The call as trapped, in the C convention.
    pub(super) fn call(&self) -> isize {
        self.call_with(self.a)
    }

    /// System call `nr` on what the trapped call named (the rest of a
    /// write to a stream socket, as `sendmsg`), in the C convention.
    pub(super) fn call_as(&self, nr: i64, a: [usize; 6]) -> isize {
        Trapped { nr, a }.call()
    }
}

/// A result in the C convention back to the kernel's: -1 and `errno`
/// become the negative errno that the trapped call returns.
pub(super) fn kernel_result(c: isize) -> isize {
    if c == -1 {
        -(sys::errno() as isize)
    } else {
        c
    }
}
