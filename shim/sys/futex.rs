//! Sleeping on a word and waking its sleepers (futex), and the
//! process-wide memory barrier (membarrier) the token release can use.

use core::sync::atomic::AtomicU32;

use super::syscall::{syscall3, syscall6};

/// Sleep while `*word == expected`, at most `timeout_ns` (0: no limit).
/// Spurious returns are fine: every caller re-checks its condition.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) -> isize {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    let tsp = if timeout_ns == 0 {
        0
    } else {
        &ts as *const _ as usize
    };
    // SAFETY: the kernel reads the word (a live atomic) and, if given, the
    // timespec on this stack; it writes nothing.
    unsafe { futex(word, libc::FUTEX_WAIT, expected, tsp) }
}

/// Wake up to `count` threads sleeping on `word`.
pub fn futex_wake(word: &AtomicU32, count: u32) -> isize {
    // SAFETY: FUTEX_WAKE only uses the word's address as a key.
    unsafe { futex(word, libc::FUTEX_WAKE, count, 0) }
}

/// `futex(word, op | FUTEX_PRIVATE_FLAG, val, timeout)`.
///
/// # Safety
///
/// `timeout` is 0 or the address of a `timespec` valid for the call, as
/// `op` requires.
unsafe fn futex(word: &AtomicU32, op: libc::c_int, val: u32, timeout: usize) -> isize {
    // SAFETY: the word is a live atomic; the caller vouches for `timeout`.
    unsafe {
        syscall6(
            libc::SYS_futex,
            word as *const AtomicU32 as usize,
            (op | libc::FUTEX_PRIVATE_FLAG) as usize,
            val as usize,
            timeout,
            0,
            0,
        )
    }
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: usize = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: usize = 1 << 4;

/// Register the process for `membarrier(PRIVATE_EXPEDITED)`. False when the
/// kernel lacks it; the token release then uses a fence instead.
pub fn membarrier_register() -> bool {
    // SAFETY: membarrier takes no pointer.
    unsafe {
        syscall3(
            libc::SYS_membarrier,
            MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED,
            0,
            0,
        ) == 0
    }
}

/// Make every running thread of this process execute a full memory barrier.
pub fn membarrier() {
    // SAFETY: membarrier takes no pointer.
    unsafe {
        syscall3(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    }
}
