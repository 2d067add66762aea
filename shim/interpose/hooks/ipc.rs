//! System V and POSIX message queues (calls/ipc.rs).

use core::ffi::{c_char, c_int, c_long, c_uint, c_void};
use libc::{mqd_t, size_t, ssize_t, timespec};

use crate::interpose::calls::ipc;

hook! {
    fn msgrcv(id: c_int, msg: *mut c_void, size: size_t, typ: c_long, flags: c_int) -> ssize_t
        => |real| ipc::msgrcv("msgrcv", (id, msg, size, typ), flags, || {
            real(id, msg, size, typ, flags)
        })
}

hook! {
    fn msgsnd(id: c_int, msg: *const c_void, size: size_t, flags: c_int) -> c_int
        => |real| ipc::msgsnd("msgsnd", (id, msg, size), flags, || real(id, msg, size, flags))
}

hook! {
    fn mq_receive(q: mqd_t, buf: *mut c_char, len: size_t, prio: *mut c_uint) -> ssize_t
        => |real| ipc::mq_receive("mq_receive", (q, buf, len, prio), || real(q, buf, len, prio))
}

hook! {
    fn mq_timedreceive(
        q: mqd_t,
        buf: *mut c_char,
        len: size_t,
        prio: *mut c_uint,
        ts: *const timespec,
    ) -> ssize_t
        => |real| ipc::mq_receive("mq_timedreceive", (q, buf, len, prio), || {
            real(q, buf, len, prio, ts)
        })
}

hook! {
    fn mq_send(q: mqd_t, buf: *const c_char, len: size_t, prio: c_uint) -> c_int
        => |real| ipc::mq_send("mq_send", (q, buf, len, prio), || real(q, buf, len, prio))
}

hook! {
    fn mq_timedsend(
        q: mqd_t,
        buf: *const c_char,
        len: size_t,
        prio: c_uint,
        ts: *const timespec,
    ) -> c_int
        => |real| ipc::mq_send("mq_timedsend", (q, buf, len, prio), || {
            real(q, buf, len, prio, ts)
        })
}
