//! Timeouts as the probes read them: zero (a call that will not wait) and
//! deadlines already past.

use libc::{clockid_t, timespec};

/// A timespec of zero (the "do not wait" timeout of the probes).
pub const ZERO_TS: timespec = timespec {
    tv_sec: 0,
    tv_nsec: 0,
};

/// Is the timespec at `ts` zero (a call that will not wait)? Null is not.
///
/// # Safety
///
/// `ts` is null or points to a readable timespec (the program's argument,
/// which libc would read too).
pub unsafe fn is_zero_ts(ts: *const timespec) -> bool {
    // SAFETY: non-null, readable by the caller's contract.
    !ts.is_null() && unsafe { (*ts).tv_sec == 0 && (*ts).tv_nsec == 0 }
}

/// Is the timeval at `tv` zero (`select`'s "do not wait")? Null is not.
///
/// # Safety
///
/// `tv` is null or points to a readable timeval.
pub unsafe fn is_zero_tv(tv: *const libc::timeval) -> bool {
    // SAFETY: non-null, readable by the caller's contract.
    !tv.is_null() && unsafe { (*tv).tv_sec == 0 && (*tv).tv_usec == 0 }
}

/// Is the absolute time `*ts` on `clock` already past? Null is not.
///
/// # Safety
///
/// `ts` is null or points to a readable timespec.
pub unsafe fn deadline_passed(clock: clockid_t, ts: *const timespec) -> bool {
    let mut now = ZERO_TS;
    // SAFETY: `now` is ours to write; clock_gettime is async-signal-safe.
    if ts.is_null() || unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return false;
    }
    // SAFETY: non-null, readable by the caller's contract.
    let ts = unsafe { *ts };
    (now.tv_sec, now.tv_nsec) >= (ts.tv_sec, ts.tv_nsec)
}
