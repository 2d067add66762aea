//! Where the catch-all can run: wanted (`LWKT_CATCHALL`), not under
//! valgrind or ThreadSanitizer, and a kernel with Syscall User Dispatch.

use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

use super::{dispatch_prctl, PR_SYS_DISPATCH_ON};
use crate::config;

/// Why the catch-all is off, for `LWKT_DEBUG`.
pub fn why_off() -> &'static str {
    match OFF_REASON.load(Relaxed) {
        OFF_BY_USER => "LWKT_CATCHALL=0",
        OFF_VALGRIND => "valgrind does not emulate Syscall User Dispatch",
        OFF_TSAN => "ThreadSanitizer's runtime makes system calls of its own",
        _ => "this kernel has no Syscall User Dispatch",
    }
}

const OFF_BY_USER: u8 = 1;
const OFF_VALGRIND: u8 = 2;
const OFF_NO_KERNEL: u8 = 3;
const OFF_TSAN: u8 = 4;
static OFF_REASON: AtomicU8 = AtomicU8::new(0);

const KERNEL_UNKNOWN: u8 = 0;
const KERNEL_HAS_SUD: u8 = 1;
const KERNEL_LACKS_SUD: u8 = 2;
static KERNEL: AtomicU8 = AtomicU8::new(KERNEL_UNKNOWN);

/// Nothing is touched at load: no handler, no mask, no `prctl` (a
/// process that never takes a token must see no change).
pub fn init_process() {
    if !config::CATCHALL_WANTED.load(Relaxed) {
        OFF_REASON.store(OFF_BY_USER, Relaxed);
    } else if crate::sys::running_on_valgrind() {
        OFF_REASON.store(OFF_VALGRIND, Relaxed);
    } else if config::THREAD_SANITIZER.load(Relaxed) {
        OFF_REASON.store(OFF_TSAN, Relaxed);
    }
}

/// Is the catch-all wanted, and not ruled out by valgrind? (The kernel is
/// not asked.)
pub(super) fn not_ruled_out() -> bool {
    OFF_REASON.load(Relaxed) == 0
}

/// Can the catch-all run here (wanted, and the kernel has the feature)?
/// The kernel is asked once, by a `prctl` that changes nothing: switching
/// dispatch on with a selector in kernel space fails with EFAULT where the
/// feature exists, EINVAL where it does not.
pub(super) fn available() -> bool {
    if OFF_REASON.load(Relaxed) != 0 {
        return false;
    }
    match KERNEL.load(Relaxed) {
        KERNEL_HAS_SUD => true,
        KERNEL_LACKS_SUD => false,
        _ => {
            const KERNEL_ADDRESS: usize = 0xffff_8000_0000_0000;
            let r = dispatch_prctl(PR_SYS_DISPATCH_ON, 0, 0, KERNEL_ADDRESS);
            let has = r == -(libc::EFAULT as isize);
            KERNEL.store(
                if has {
                    KERNEL_HAS_SUD
                } else {
                    KERNEL_LACKS_SUD
                },
                Relaxed,
            );
            if !has {
                OFF_REASON.store(OFF_NO_KERNEL, Relaxed);
            }
            has
        }
    }
}

/// For `LWKT_DEBUG`'s announcement at load: whether the catch-all will run.
/// The kernel is asked only then (the probe changes nothing either way).
pub fn on() -> bool {
    config::debug() && available()
}
