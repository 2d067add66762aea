//! The bottom layer: raw system calls, futex, errno, the clock.
//!
//! The shim exports `read`, `syscall`, `nanosleep`, ... itself, so calling
//! libc's wrappers from inside it would come back into our own hooks. Every
//! system call the shim makes for its own purposes goes through the stub
//! here instead: it never touches `errno`, never allocates, and is
//! async-signal-safe. This layer uses nothing else of the crate.
//!
//! - `allowed`: the always-allowed code range (the system call stub, the
//!   SIGSYS restorer, the clone landing pad), in assembly;
//! - `syscall`: `syscall3`/`syscall6` and `errno`;
//! - `futex`: sleeping on a word, waking it, membarrier;
//! - `process`: thread and process ids, stderr, abort;
//! - `time`: the monotonic clock;
//! - `valgrind`: valgrind's client requests.
//!
//! Two pieces of assembly still live outside this layer and are to move
//! here: the static-TLS access of the per-thread state (core/tls.rs) and the
//! catch-all's.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!(
    "lwkt supports Linux on x86-64 only: its system call stub, signal \
     restorer, clone landing pad and thread-local access are x86-64 \
     assembly for Linux's system call ABI, and the catch-all needs Linux's \
     Syscall User Dispatch"
);

mod allowed;
mod futex;
mod process;
mod syscall;
mod time;
mod valgrind;

// Only the hooks and the catch-all use these, and the unit-test build
// leaves them out.
#[cfg_attr(test, allow(unused_imports))]
pub use allowed::{
    lwkt_allowed_end, lwkt_allowed_start, lwkt_clone_tramp, lwkt_sigreturn_again,
    lwkt_sigsys_restorer,
};
pub use futex::{futex_wait, futex_wake, membarrier, membarrier_register};
pub use process::{abort, getpid, gettid, thread_alive, write_stderr};
#[cfg_attr(test, allow(unused_imports))]
pub use syscall::{errno, set_errno};
pub use syscall::{syscall3, syscall6};
pub use time::now_ns;
pub use valgrind::{running_on_valgrind, valgrind_request};

/// The address of this thread's copy of the static-TLS symbol `$sym`
/// (initial-exec: a GOT load and the thread pointer; no call, no
/// allocation), as `*mut u8`. The library's TLS symbols are defined in
/// `core/tls.rs` and the catch-all's state.
macro_rules! tls_address {
    ($sym:literal) => {{
        let slot: *mut u8;
        // SAFETY: reads the GOT entry of a TLS symbol and the thread
        // pointer; writes only `slot`.
        unsafe {
            core::arch::asm!(
                concat!("mov {s}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                "add {s}, qword ptr fs:[0]",
                s = out(reg) slot,
                options(pure, readonly, nostack),
            );
        }
        slot
    }};
}
pub(crate) use tls_address;
