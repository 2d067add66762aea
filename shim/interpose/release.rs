//! Running a blocking call with the calling thread's tokens released (SPEC
//! S2): the one place where the interposition layer gives tokens away and
//! takes them back.

use crate::{sys, thread};

/// Run `call` with the calling thread's tokens released; take them all back
/// before returning its result, with the `errno` the call left. `hook`
/// names the call in reports (`LWKT_STATS`, misuse lines).
#[inline(never)]
pub fn released<R>(hook: &'static str, call: impl FnOnce() -> R) -> R {
    let saved = sys::errno();
    let tokens = thread::release_all(hook);
    let note = thread::block_begin(hook);
    sys::set_errno(saved);
    let out = call();
    let e = sys::errno();
    thread::block_end(note);
    thread::retake(tokens, hook);
    sys::set_errno(e);
    out
}

/// Does the calling thread hold tokens? The hooks' only cost otherwise
/// (SPEC S11): one thread-local byte load.
#[inline(always)]
pub fn holding() -> bool {
    thread::holds_tokens()
}
