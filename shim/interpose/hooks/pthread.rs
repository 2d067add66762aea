//! pthread mutexes, condition variables, rwlocks, joins, barriers and
//! semaphores (calls/pthread.rs). Locks are tried first; condition and
//! barrier waits always block.
//!
//! glibc exports `pthread_cond_*` in two versions; the hooks, unversioned,
//! call the current one (`GLIBC_2.3.2`), which programs linked today use.

use core::ffi::{c_int, c_void};
use libc::{
    clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t, pthread_t,
    sem_t, timespec,
};

use crate::interpose::calls::pthread;
use crate::interpose::release::released;

hook! {
    fn pthread_mutex_lock(m: *mut pthread_mutex_t) -> c_int
        => |real| pthread::lock("pthread_mutex_lock", || libc::pthread_mutex_trylock(m), || real(m))
}

hook! {
    fn pthread_mutex_timedlock(m: *mut pthread_mutex_t, ts: *const timespec) -> c_int
        => |real| pthread::lock("pthread_mutex_timedlock", || libc::pthread_mutex_trylock(m), || {
            real(m, ts)
        })
}

hook! {
    fn pthread_mutex_clocklock(
        m: *mut pthread_mutex_t,
        clock: clockid_t,
        ts: *const timespec,
    ) -> c_int
        => |real| pthread::lock("pthread_mutex_clocklock", || libc::pthread_mutex_trylock(m), || {
            real(m, clock, ts)
        })
}

hook! {
    fn pthread_cond_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int,
        version = "GLIBC_2.3.2"
        => |real| released("pthread_cond_wait", || real(c, m))
}

hook! {
    fn pthread_cond_timedwait(
        c: *mut pthread_cond_t,
        m: *mut pthread_mutex_t,
        ts: *const timespec,
    ) -> c_int,
        version = "GLIBC_2.3.2"
        => |real| released("pthread_cond_timedwait", || real(c, m, ts))
}

hook! {
    fn pthread_cond_clockwait(
        c: *mut pthread_cond_t,
        m: *mut pthread_mutex_t,
        clock: clockid_t,
        ts: *const timespec,
    ) -> c_int
        => |real| released("pthread_cond_clockwait", || real(c, m, clock, ts))
}

hook! {
    fn pthread_rwlock_rdlock(l: *mut pthread_rwlock_t) -> c_int
        => |real| pthread::lock("pthread_rwlock_rdlock", || libc::pthread_rwlock_tryrdlock(l), || {
            real(l)
        })
}

hook! {
    fn pthread_rwlock_wrlock(l: *mut pthread_rwlock_t) -> c_int
        => |real| pthread::lock("pthread_rwlock_wrlock", || libc::pthread_rwlock_trywrlock(l), || {
            real(l)
        })
}

hook! {
    fn pthread_rwlock_timedrdlock(l: *mut pthread_rwlock_t, ts: *const timespec) -> c_int
        => |real| {
            let try_first = || libc::pthread_rwlock_tryrdlock(l);
            pthread::lock("pthread_rwlock_timedrdlock", try_first, || real(l, ts))
        }
}

hook! {
    fn pthread_rwlock_timedwrlock(l: *mut pthread_rwlock_t, ts: *const timespec) -> c_int
        => |real| {
            let try_first = || libc::pthread_rwlock_trywrlock(l);
            pthread::lock("pthread_rwlock_timedwrlock", try_first, || real(l, ts))
        }
}

hook! {
    fn pthread_rwlock_clockrdlock(
        l: *mut pthread_rwlock_t,
        clock: clockid_t,
        ts: *const timespec,
    ) -> c_int
        => |real| {
            let try_first = || libc::pthread_rwlock_tryrdlock(l);
            pthread::lock("pthread_rwlock_clockrdlock", try_first, || real(l, clock, ts))
        }
}

hook! {
    fn pthread_rwlock_clockwrlock(
        l: *mut pthread_rwlock_t,
        clock: clockid_t,
        ts: *const timespec,
    ) -> c_int
        => |real| {
            let try_first = || libc::pthread_rwlock_trywrlock(l);
            pthread::lock("pthread_rwlock_clockwrlock", try_first, || real(l, clock, ts))
        }
}

hook! {
    fn pthread_join(t: pthread_t, ret: *mut *mut c_void) -> c_int
        => |real| pthread::lock("pthread_join", || libc::pthread_tryjoin_np(t, ret), || real(t, ret))
}

hook! {
    fn pthread_timedjoin_np(t: pthread_t, ret: *mut *mut c_void, ts: *const timespec) -> c_int
        => |real| pthread::lock("pthread_timedjoin_np", || libc::pthread_tryjoin_np(t, ret), || {
            real(t, ret, ts)
        })
}

hook! {
    fn pthread_barrier_wait(b: *mut pthread_barrier_t) -> c_int
        => |real| released("pthread_barrier_wait", || real(b))
}

hook! {
    fn sem_wait(s: *mut sem_t) -> c_int
        => |real| pthread::sem("sem_wait", || libc::sem_trywait(s), || real(s))
}

hook! {
    fn sem_timedwait(s: *mut sem_t, ts: *const timespec) -> c_int
        => |real| pthread::sem("sem_timedwait", || libc::sem_trywait(s), || real(s, ts))
}

hook! {
    fn sem_clockwait(s: *mut sem_t, clock: clockid_t, ts: *const timespec) -> c_int
        => |real| pthread::sem("sem_clockwait", || libc::sem_trywait(s), || real(s, clock, ts))
}
