//! Child waits (calls/child.rs): every one is `wait4` or `waitid`.

use core::ffi::c_int;
use libc::{id_t, idtype_t, pid_t, rusage, siginfo_t};

use crate::interpose::calls::child;

hook! {
    fn wait(status: *mut c_int) -> pid_t
        => |real| child::wait4("wait", (-1, status, 0, core::ptr::null_mut()), || real(status))
}

hook! {
    fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t
        => |real| child::wait4("waitpid", (pid, status, options, core::ptr::null_mut()), || {
            real(pid, status, options)
        })
}

hook! {
    fn wait3(status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t
        => |real| child::wait4("wait3", (-1, status, options, ru), || real(status, options, ru))
}

hook! {
    fn wait4(pid: pid_t, status: *mut c_int, options: c_int, ru: *mut rusage) -> pid_t
        => |real| child::wait4("wait4", (pid, status, options, ru), || {
            real(pid, status, options, ru)
        })
}

hook! {
    fn waitid(idtype: idtype_t, id: id_t, info: *mut siginfo_t, options: c_int) -> c_int
        => |real| child::waitid("waitid", (idtype, id, info, options), core::ptr::null_mut(), || {
            real(idtype, id, info, options)
        })
}
