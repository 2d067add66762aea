//! pthread mutexes, condition variables, rwlocks, joins, barriers and
//! semaphores (calls/pthread.rs). Locks are tried first; condition and
//! barrier waits always block.
//!
//! The non-blocking forms tried first are libc's own (`own`), not called
//! by name: ThreadSanitizer's interceptors come before this library, and
//! would take the try inside the program's call for a second lock of the
//! same mutex (or a second join of the thread).
//!
//! glibc exports `pthread_cond_*` in two versions: the current condition
//! variable (`GLIBC_2.3.2`, what programs linked today call) and the old
//! one (`GLIBC_2.2.5`, what an unversioned reference binds to). The wait
//! hooks are exported under both, each over libc's function of its own
//! version: unversioned, a hook would take the calls of both kinds to
//! the current functions (valgrind DRD's preload, unversioned, then waits
//! on an old condition variable with the new wait, and crashes), and
//! ThreadSanitizer's runtime, which looks for `GLIBC_2.3.2` by
//! `dlvsym`, would pass it by (its waits would keep the tokens).
//! `pthread_cond_clockwait` has one version (2.30) and no old twin.

use core::ffi::{c_int, c_void};
use libc::{
    clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t, pthread_t,
    sem_t, timespec,
};

use crate::interpose::calls::pthread;
use crate::interpose::release::released;

hook! {
    fn pthread_mutex_lock(m: *mut pthread_mutex_t) -> c_int
        => |real| pthread::lock("pthread_mutex_lock", || own::pthread_mutex_trylock::get()(m), || real(m))
}

hook! {
    fn pthread_mutex_timedlock(m: *mut pthread_mutex_t, ts: *const timespec) -> c_int
        => |real| pthread::lock("pthread_mutex_timedlock", || own::pthread_mutex_trylock::get()(m), || {
            real(m, ts)
        })
}

hook! {
    fn pthread_mutex_clocklock(
        m: *mut pthread_mutex_t,
        clock: clockid_t,
        ts: *const timespec,
    ) -> c_int
        => |real| pthread::lock("pthread_mutex_clocklock", || own::pthread_mutex_trylock::get()(m), || {
            real(m, clock, ts)
        })
}

hook! {
    fn pthread_cond_wait(c: *mut pthread_cond_t, m: *mut pthread_mutex_t) -> c_int,
        version = "GLIBC_2.3.2", compat = "GLIBC_2.2.5"
        => |real| released("pthread_cond_wait", || real(c, m))
}

hook! {
    fn pthread_cond_timedwait(
        c: *mut pthread_cond_t,
        m: *mut pthread_mutex_t,
        ts: *const timespec,
    ) -> c_int,
        version = "GLIBC_2.3.2", compat = "GLIBC_2.2.5"
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
        => |real| pthread::lock("pthread_rwlock_rdlock", || own::pthread_rwlock_tryrdlock::get()(l), || {
            real(l)
        })
}

hook! {
    fn pthread_rwlock_wrlock(l: *mut pthread_rwlock_t) -> c_int
        => |real| pthread::lock("pthread_rwlock_wrlock", || own::pthread_rwlock_trywrlock::get()(l), || {
            real(l)
        })
}

hook! {
    fn pthread_rwlock_timedrdlock(l: *mut pthread_rwlock_t, ts: *const timespec) -> c_int
        => |real| {
            let try_first = || own::pthread_rwlock_tryrdlock::get()(l);
            pthread::lock("pthread_rwlock_timedrdlock", try_first, || real(l, ts))
        }
}

hook! {
    fn pthread_rwlock_timedwrlock(l: *mut pthread_rwlock_t, ts: *const timespec) -> c_int
        => |real| {
            let try_first = || own::pthread_rwlock_trywrlock::get()(l);
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
            let try_first = || own::pthread_rwlock_tryrdlock::get()(l);
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
            let try_first = || own::pthread_rwlock_trywrlock::get()(l);
            pthread::lock("pthread_rwlock_clockwrlock", try_first, || real(l, clock, ts))
        }
}

hook! {
    fn pthread_join(t: pthread_t, ret: *mut *mut c_void) -> c_int
        => |real| pthread::lock("pthread_join", || own::pthread_tryjoin_np::get()(t, ret), || real(t, ret))
}

hook! {
    fn pthread_timedjoin_np(t: pthread_t, ret: *mut *mut c_void, ts: *const timespec) -> c_int
        => |real| pthread::lock("pthread_timedjoin_np", || own::pthread_tryjoin_np::get()(t, ret), || {
            real(t, ret, ts)
        })
}

hook! {
    fn pthread_barrier_wait(b: *mut pthread_barrier_t) -> c_int
        => |real| released("pthread_barrier_wait", || real(b))
}

hook! {
    fn sem_wait(s: *mut sem_t) -> c_int
        => |real| pthread::sem("sem_wait", || own::sem_trywait::get()(s), || real(s))
}

hook! {
    fn sem_timedwait(s: *mut sem_t, ts: *const timespec) -> c_int
        => |real| pthread::sem("sem_timedwait", || own::sem_trywait::get()(s), || real(s, ts))
}

hook! {
    fn sem_clockwait(s: *mut sem_t, clock: clockid_t, ts: *const timespec) -> c_int
        => |real| pthread::sem("sem_clockwait", || own::sem_trywait::get()(s), || real(s, clock, ts))
}

/// libc's non-blocking forms, found after this library like the hooks'
/// blocking ones.
mod own {
    use super::*;

    pub mod pthread_mutex_trylock {
        use super::*;
        real_slot!(pthread_mutex_trylock: fn(*mut pthread_mutex_t) -> c_int);
    }
    pub mod pthread_rwlock_tryrdlock {
        use super::*;
        real_slot!(pthread_rwlock_tryrdlock: fn(*mut pthread_rwlock_t) -> c_int);
    }
    pub mod pthread_rwlock_trywrlock {
        use super::*;
        real_slot!(pthread_rwlock_trywrlock: fn(*mut pthread_rwlock_t) -> c_int);
    }
    pub mod pthread_tryjoin_np {
        use super::*;
        real_slot!(pthread_tryjoin_np: fn(pthread_t, *mut *mut c_void) -> c_int);
    }
    pub mod sem_trywait {
        use super::*;
        real_slot!(sem_trywait: fn(*mut sem_t) -> c_int);
    }
}
