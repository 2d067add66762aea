//! `flock` and `fcntl` record locks (calls/locks.rs).

use core::ffi::c_int;

use crate::interpose::calls::locks;

hook! {
    fn flock(fd: c_int, op: c_int) -> c_int
        => |real| locks::flock("flock", fd, op, || real(fd, op))
}

hook! {
    /// Only the waiting lock commands take the held path: `fcntl` is no
    /// blocking call otherwise.
    fn fcntl | fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int,
        unless locks::fcntl_try_form(cmd).is_none()
        => |real| locks::fcntl("fcntl", (fd, cmd, arg), || real(fd, cmd, arg))
}
