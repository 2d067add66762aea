//! Sleeps and pauses (calls/sleep.rs).

use core::ffi::{c_int, c_uint};
use libc::{clockid_t, timespec, useconds_t};

// `calls::sleep` by its path: the hook `sleep` has a module of that name.
use crate::interpose::calls;
use crate::interpose::release::released;

hook! {
    fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int
        => |real| calls::sleep::nanosleep("nanosleep", req, || real(req, rem))
}

hook! {
    fn clock_nanosleep(
        clock: clockid_t,
        flags: c_int,
        req: *const timespec,
        rem: *mut timespec,
    ) -> c_int
        => |real| calls::sleep::clock_nanosleep("clock_nanosleep", clock, flags, req, || {
            real(clock, flags, req, rem)
        })
}

hook! {
    fn sleep(secs: c_uint) -> c_uint
        => |real| calls::sleep::count("sleep", secs == 0, || real(secs))
}

hook! {
    fn usleep(usecs: useconds_t) -> c_int
        => |real| calls::sleep::count("usleep", usecs == 0, || real(usecs))
}

hook! {
    /// Returns only after a signal handler ran: it always blocks.
    fn pause() -> c_int
        => |real| released("pause", || real())
}
