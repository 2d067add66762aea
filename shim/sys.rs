//! Raw system calls, futex and errno.
//!
//! The shim exports `read`, `syscall`, `nanosleep`, ... itself, so calling
//! libc's wrappers from inside it would come back into our own hooks. Every
//! system call the shim makes for its own purposes goes through the inline
//! `syscall` instruction below instead: it never touches `errno`, never
//! allocates, and is async-signal-safe. (Issue 4's catch-all also relies on
//! all of the shim's own syscalls coming from this one place.)

use core::arch::asm;
use core::sync::atomic::AtomicU32;

/// A raw system call with up to six arguments. Returns the kernel's value:
/// negative errno on failure.
#[inline(always)]
pub unsafe fn syscall6(
    nr: i64,
    a1: usize,
    a2: usize,
    a3: usize,
    a4: usize,
    a5: usize,
    a6: usize,
) -> isize {
    let ret: isize;
    asm!(
        "syscall",
        inlateout("rax") nr as isize => ret,
        in("rdi") a1,
        in("rsi") a2,
        in("rdx") a3,
        in("r10") a4,
        in("r8") a5,
        in("r9") a6,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

#[inline(always)]
pub unsafe fn syscall3(nr: i64, a1: usize, a2: usize, a3: usize) -> isize {
    syscall6(nr, a1, a2, a3, 0, 0, 0)
}

/// The calling thread's kernel id. Not cached here: the per-thread state
/// caches it (and a fork child must see its own).
pub fn gettid() -> u32 {
    unsafe { syscall6(libc::SYS_gettid, 0, 0, 0, 0, 0, 0) as u32 }
}

pub fn getpid() -> u32 {
    unsafe { syscall6(libc::SYS_getpid, 0, 0, 0, 0, 0, 0) as u32 }
}

/// Does thread `tid` still exist in process `pid`? (`tgkill` with signal 0.)
pub fn thread_alive(pid: u32, tid: u32) -> bool {
    let r = unsafe { syscall3(libc::SYS_tgkill, pid as usize, tid as usize, 0) };
    r != -(libc::ESRCH as isize)
}

/// Sleep while `*word == expected`, at most `timeout_ns` (0: no limit).
/// Spurious returns are fine: every caller re-checks its condition.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    let tsp = if timeout_ns == 0 {
        0
    } else {
        &ts as *const _ as usize
    };
    unsafe {
        syscall6(
            libc::SYS_futex,
            word as *const AtomicU32 as usize,
            (libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG) as usize,
            expected as usize,
            tsp,
            0,
            0,
        );
    }
}

pub fn futex_wake(word: &AtomicU32, count: u32) {
    unsafe {
        syscall6(
            libc::SYS_futex,
            word as *const AtomicU32 as usize,
            (libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG) as usize,
            count as usize,
            0,
            0,
            0,
        );
    }
}

const MEMBARRIER_CMD_PRIVATE_EXPEDITED: usize = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: usize = 1 << 4;

/// Register the process for `membarrier(PRIVATE_EXPEDITED)`. False when the
/// kernel lacks it; the token release then uses a fence instead.
pub fn membarrier_register() -> bool {
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
    unsafe {
        syscall3(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    }
}

/// Write `bytes` to stderr in one `write` (messages are built on the stack).
pub fn write_stderr(bytes: &[u8]) {
    unsafe {
        syscall3(libc::SYS_write, 2, bytes.as_ptr() as usize, bytes.len());
    }
}

pub fn abort() -> ! {
    // abort(3) raises SIGABRT (core dump, the parent sees a signal), which is
    // what a C programmer expects of a failed assertion.
    unsafe { libc::abort() }
}

#[cfg_attr(test, allow(dead_code))]
#[inline(always)]
pub fn errno() -> i32 {
    unsafe { *libc::__errno_location() }
}

#[cfg_attr(test, allow(dead_code))]
#[inline(always)]
pub fn set_errno(e: i32) {
    unsafe { *libc::__errno_location() = e }
}

/// Monotonic clock in nanoseconds (vDSO, no syscall, async-signal-safe).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
