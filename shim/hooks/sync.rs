//! pthread mutexes, condition variables, rwlocks, joins, barriers and
//! semaphores. Locks are tried first (a free mutex keeps the tokens);
//! condition and barrier waits always block.
//!
//! Retaking tokens after a condition wait happens with the mutex held
//! again. That cannot deadlock: a token holder that wants the mutex blocks
//! in `pthread_mutex_lock`, which releases its tokens.

use core::ffi::{c_int, c_void};
use libc::{
    clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t, pthread_t,
    sem_t, timespec,
};

use super::{held, holding, released};
use crate::sys;

mod real {
    use core::ffi::{c_int, c_void};
    use libc::{
        clockid_t, pthread_barrier_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t, pthread_t,
        sem_t, timespec,
    };
    real_fn!(pthread_mutex_lock: fn(*mut pthread_mutex_t) -> c_int);
    real_fn!(pthread_mutex_timedlock: fn(*mut pthread_mutex_t, *const timespec) -> c_int);
    real_fn!(pthread_mutex_clocklock: fn(*mut pthread_mutex_t, clockid_t, *const timespec) -> c_int);
    real_fn!(pthread_cond_wait: fn(*mut pthread_cond_t, *mut pthread_mutex_t) -> c_int, version = "GLIBC_2.3.2");
    real_fn!(
        pthread_cond_timedwait: fn(*mut pthread_cond_t, *mut pthread_mutex_t, *const timespec) -> c_int,
        version = "GLIBC_2.3.2"
    );
    real_fn!(pthread_cond_clockwait: fn(*mut pthread_cond_t, *mut pthread_mutex_t, clockid_t, *const timespec) -> c_int);
    real_fn!(pthread_rwlock_rdlock: fn(*mut pthread_rwlock_t) -> c_int);
    real_fn!(pthread_rwlock_wrlock: fn(*mut pthread_rwlock_t) -> c_int);
    real_fn!(pthread_rwlock_timedrdlock: fn(*mut pthread_rwlock_t, *const timespec) -> c_int);
    real_fn!(pthread_rwlock_timedwrlock: fn(*mut pthread_rwlock_t, *const timespec) -> c_int);
    real_fn!(pthread_rwlock_clockrdlock: fn(*mut pthread_rwlock_t, clockid_t, *const timespec) -> c_int);
    real_fn!(pthread_rwlock_clockwrlock: fn(*mut pthread_rwlock_t, clockid_t, *const timespec) -> c_int);
    real_fn!(pthread_join: fn(pthread_t, *mut *mut c_void) -> c_int);
    real_fn!(pthread_timedjoin_np: fn(pthread_t, *mut *mut c_void, *const timespec) -> c_int);
    real_fn!(pthread_barrier_wait: fn(*mut pthread_barrier_t) -> c_int);
    real_fn!(sem_wait: fn(*mut sem_t) -> c_int);
    real_fn!(sem_timedwait: fn(*mut sem_t, *const timespec) -> c_int);
    real_fn!(sem_clockwait: fn(*mut sem_t, clockid_t, *const timespec) -> c_int);
}

/// pthread calls that report errors by return value: `try_first` gives 0
/// (done, holding the tokens), EBUSY (would wait) or another error (the
/// call's own answer, e.g. EINVAL or EOWNERDEAD).
unsafe fn lock_like(
    hook: &'static str,
    try_first: impl FnOnce() -> c_int,
    wait: impl FnOnce() -> c_int,
) -> c_int {
    let saved = sys::errno();
    let r = try_first();
    sys::set_errno(saved);
    if r == libc::EBUSY {
        released(hook, wait)
    } else {
        r
    }
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_lock(m: *mut pthread_mutex_t) -> c_int {
    let f = real::pthread_mutex_lock::get();
    if !holding() {
        return f(m);
    }
    held(move || {
        lock_like(
            "pthread_mutex_lock",
            || libc::pthread_mutex_trylock(m),
            || f(m),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_timedlock(
    m: *mut pthread_mutex_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_mutex_timedlock::get();
    if !holding() {
        return f(m, ts);
    }
    held(move || {
        lock_like(
            "pthread_mutex_timedlock",
            || libc::pthread_mutex_trylock(m),
            || f(m, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_mutex_clocklock(
    m: *mut pthread_mutex_t,
    clock: clockid_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_mutex_clocklock::get();
    if !holding() {
        return f(m, clock, ts);
    }
    held(move || {
        lock_like(
            "pthread_mutex_clocklock",
            || libc::pthread_mutex_trylock(m),
            || f(m, clock, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_wait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
) -> c_int {
    let f = real::pthread_cond_wait::get();
    if !holding() {
        return f(c, m);
    }
    held(move || released("pthread_cond_wait", || f(c, m)))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_timedwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_cond_timedwait::get();
    if !holding() {
        return f(c, m, ts);
    }
    held(move || released("pthread_cond_timedwait", || f(c, m, ts)))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_cond_clockwait(
    c: *mut pthread_cond_t,
    m: *mut pthread_mutex_t,
    clock: clockid_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_cond_clockwait::get();
    if !holding() {
        return f(c, m, clock, ts);
    }
    held(move || released("pthread_cond_clockwait", || f(c, m, clock, ts)))
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_rdlock(l: *mut pthread_rwlock_t) -> c_int {
    let f = real::pthread_rwlock_rdlock::get();
    if !holding() {
        return f(l);
    }
    held(move || {
        lock_like(
            "pthread_rwlock_rdlock",
            || libc::pthread_rwlock_tryrdlock(l),
            || f(l),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_wrlock(l: *mut pthread_rwlock_t) -> c_int {
    let f = real::pthread_rwlock_wrlock::get();
    if !holding() {
        return f(l);
    }
    held(move || {
        lock_like(
            "pthread_rwlock_wrlock",
            || libc::pthread_rwlock_trywrlock(l),
            || f(l),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_timedrdlock(
    l: *mut pthread_rwlock_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_rwlock_timedrdlock::get();
    if !holding() {
        return f(l, ts);
    }
    held(move || {
        lock_like(
            "pthread_rwlock_timedrdlock",
            || libc::pthread_rwlock_tryrdlock(l),
            || f(l, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_timedwrlock(
    l: *mut pthread_rwlock_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_rwlock_timedwrlock::get();
    if !holding() {
        return f(l, ts);
    }
    held(move || {
        lock_like(
            "pthread_rwlock_timedwrlock",
            || libc::pthread_rwlock_trywrlock(l),
            || f(l, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_clockrdlock(
    l: *mut pthread_rwlock_t,
    clock: clockid_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_rwlock_clockrdlock::get();
    if !holding() {
        return f(l, clock, ts);
    }
    held(move || {
        lock_like(
            "pthread_rwlock_clockrdlock",
            || libc::pthread_rwlock_tryrdlock(l),
            || f(l, clock, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_rwlock_clockwrlock(
    l: *mut pthread_rwlock_t,
    clock: clockid_t,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_rwlock_clockwrlock::get();
    if !holding() {
        return f(l, clock, ts);
    }
    held(move || {
        lock_like(
            "pthread_rwlock_clockwrlock",
            || libc::pthread_rwlock_trywrlock(l),
            || f(l, clock, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_join(t: pthread_t, ret: *mut *mut c_void) -> c_int {
    let f = real::pthread_join::get();
    if !holding() {
        return f(t, ret);
    }
    held(move || {
        lock_like(
            "pthread_join",
            || libc::pthread_tryjoin_np(t, ret),
            || f(t, ret),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_timedjoin_np(
    t: pthread_t,
    ret: *mut *mut c_void,
    ts: *const timespec,
) -> c_int {
    let f = real::pthread_timedjoin_np::get();
    if !holding() {
        return f(t, ret, ts);
    }
    held(move || {
        lock_like(
            "pthread_timedjoin_np",
            || libc::pthread_tryjoin_np(t, ret),
            || f(t, ret, ts),
        )
    })
}

#[no_mangle]
pub unsafe extern "C" fn pthread_barrier_wait(b: *mut pthread_barrier_t) -> c_int {
    let f = real::pthread_barrier_wait::get();
    if !holding() {
        return f(b);
    }
    held(move || released("pthread_barrier_wait", || f(b)))
}

/// Semaphores report errors through errno: try first, keep the caller's
/// errno when the try fails.
unsafe fn sem_like(hook: &'static str, s: *mut sem_t, wait: impl FnOnce() -> c_int) -> c_int {
    let saved = sys::errno();
    if libc::sem_trywait(s) == 0 {
        return 0;
    }
    sys::set_errno(saved);
    released(hook, wait)
}

#[no_mangle]
pub unsafe extern "C" fn sem_wait(s: *mut sem_t) -> c_int {
    let f = real::sem_wait::get();
    if !holding() {
        return f(s);
    }
    held(move || sem_like("sem_wait", s, || f(s)))
}

#[no_mangle]
pub unsafe extern "C" fn sem_timedwait(s: *mut sem_t, ts: *const timespec) -> c_int {
    let f = real::sem_timedwait::get();
    if !holding() {
        return f(s, ts);
    }
    held(move || sem_like("sem_timedwait", s, || f(s, ts)))
}

#[no_mangle]
pub unsafe extern "C" fn sem_clockwait(
    s: *mut sem_t,
    clock: clockid_t,
    ts: *const timespec,
) -> c_int {
    let f = real::sem_clockwait::get();
    if !holding() {
        return f(s, clock, ts);
    }
    held(move || sem_like("sem_clockwait", s, || f(s, clock, ts)))
}
