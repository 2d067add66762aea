//! `syscall(2)` (calls/futex.rs).

use core::ffi::c_long;

use crate::interpose::calls::futex;

hook! {
    fn syscall(
        nr: c_long,
        a1: c_long,
        a2: c_long,
        a3: c_long,
        a4: c_long,
        a5: c_long,
        a6: c_long,
    ) -> c_long
        => |real| futex::syscall("syscall", (nr, a1, a2, a3), || real(nr, a1, a2, a3, a4, a5, a6))
}
