//! One source per blocking call: its non-blocking probe and its blocking
//! path, used by its symbol hook (hooks/) and by the catch-all
//! (catchall/run.rs) alike.
//!
//! Every function here takes the call's own arguments and `call`, a
//! closure that runs the call for real in the C convention (-1 and
//! `errno` on failure): libc's function in a hook, the raw system call
//! through the catch-all's adapter (catchall/trapped.rs). Some calls also
//! take the same call on part of the arguments (the rest of a transfer).
//! Each returns the call's result in the C convention, having:
//!
//! * run `call` at once when the call cannot block (a non-blocking flag,
//!   a zero timeout, a non-blocking descriptor);
//! * else tried the kernel's non-blocking probe: if it completed, its
//!   result is the call's (`c_result`), the tokens kept (SPEC S3);
//! * else run `call` with the tokens released (`released`, SPEC S2).
//!
//! The probes themselves are raw system calls (`sys`): the kernel's answer
//! (a negative errno) is what decides.

pub mod child;
pub mod futex;
pub mod ipc;
pub mod locks;
pub mod net;
pub mod open;
pub mod pthread;
pub mod ready;
pub mod rw;
pub mod sigwait;
pub mod sleep;

use crate::sys;

/// Turn a raw kernel result into the C convention: -1 and `errno`.
pub fn c_result(r: isize) -> isize {
    if r < 0 {
        sys::set_errno(-r as i32);
        -1
    } else {
        r
    }
}

/// The kernel's sigset size, for the probes of the `p*` waits.
pub const SIGSET_BYTES: usize = 8;
