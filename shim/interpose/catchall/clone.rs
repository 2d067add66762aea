//! `clone`, `clone3`, `vfork` and `fork`, trapped while the caller holds
//! tokens: a child must never resume inside the SIGSYS handler on a
//! shared stack.

use core::sync::atomic::Ordering::Relaxed;

use super::state::{flags as tls_flags, CHILD_NEAR};
use crate::sys;

/// The register block the clone landing pad loads (sys/allowed.rs): the
/// interrupted context's registers, and the child's stack pointer.
#[repr(C)]
struct ChildRegs {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rcx: u64,
    /// The child's stack pointer minus 8, where its return address is.
    ret_sp: u64,
}

/// clone, clone3, vfork and fork, trapped while the caller holds tokens.
/// A child must never resume inside this handler on a shared stack:
/// * a child with its own stack (threads, posix_spawn) starts on the
///   landing pad, which loads the interrupted registers and returns
///   straight into the program;
/// * a child without one gets its own copy of memory (fork semantics; a
///   vfork becomes a fork whose parent still waits for the exec), so it can
///   return through the handler.
///
/// # Safety
///
/// `a` are the arguments of the program's trapped call `nr`, `uc` the
/// context it trapped in.
pub(super) unsafe fn clone_call(uc: &libc::ucontext_t, nr: i64, a: [usize; 6]) -> isize {
    // clone3 callers (glibc) fall back to clone when it is missing: one
    // path to get right.
    if nr == libc::SYS_clone3 {
        return -(libc::ENOSYS as isize);
    }
    // Marked before the child exists (it starts with the mark); kept in
    // a child, and in a parent whose child may still run with its TLS.
    tls_flags().fetch_or(CHILD_NEAR, Relaxed);
    // SAFETY: the caller's contract.
    let (r, shares_while_running) = unsafe { clone_or_fork(uc, nr, a) };
    if r != 0 && !shares_while_running {
        tls_flags().fetch_and(!CHILD_NEAR, Relaxed);
    }
    r
}

/// `clone_call`'s work: the kernel's answer, and whether the child (if
/// any) may still be running with the caller's TLS block when the call
/// returns in the parent (shared memory without `CLONE_VFORK`, which
/// returns only once the child has exec'd or exited, and without a TLS of
/// its own).
///
/// # Safety
///
/// As for `clone_call`.
unsafe fn clone_or_fork(uc: &libc::ucontext_t, nr: i64, a: [usize; 6]) -> (isize, bool) {
    let (mut flags, stack) = match nr {
        libc::SYS_clone => (a[0], a[1]),
        libc::SYS_vfork => ((libc::CLONE_VFORK | libc::SIGCHLD) as usize, 0),
        _ => (libc::SIGCHLD as usize, 0),
    };
    if stack == 0 {
        flags &= !(libc::CLONE_VM as usize);
        let (ptid, ctid, tls) = if nr == libc::SYS_clone {
            (a[2], a[3], a[4])
        } else {
            (0, 0, 0)
        };
        // SAFETY: a fork (no CLONE_VM): the child has its own copy of
        // memory and returns through the handler like the parent.
        let r = unsafe { sys::syscall6(libc::SYS_clone, flags, 0, ptid, ctid, tls, 0) };
        return (r, false);
    }
    let own_tls = libc::CLONE_VFORK | libc::CLONE_SETTLS;
    let shares_while_running =
        flags & libc::CLONE_VM as usize != 0 && flags & own_tls as usize == 0;
    // The child's registers go on its own stack, below where it starts.
    let g = &uc.uc_mcontext.gregs;
    // The child must start with exactly the stack pointer it was given
    // (musl passes one 8 bytes off alignment and pops from it): its return
    // address goes just below it, the register block further down.
    let ret_sp = stack - 8;
    let block = ((stack - 512) & !15) as *mut ChildRegs;
    // SAFETY: the child's stack, which the program gave the clone: the
    // 512 bytes below its top are the child's to use (a stack that small
    // would not hold a thread's first frame either).
    unsafe { *(ret_sp as *mut u64) = g[libc::REG_RIP as usize] as u64 };
    let regs = ChildRegs {
        r8: g[libc::REG_R8 as usize] as u64,
        r9: g[libc::REG_R9 as usize] as u64,
        r10: g[libc::REG_R10 as usize] as u64,
        r11: g[libc::REG_EFL as usize] as u64,
        r12: g[libc::REG_R12 as usize] as u64,
        r13: g[libc::REG_R13 as usize] as u64,
        r14: g[libc::REG_R14 as usize] as u64,
        r15: g[libc::REG_R15 as usize] as u64,
        rdi: g[libc::REG_RDI as usize] as u64,
        rsi: g[libc::REG_RSI as usize] as u64,
        rbp: g[libc::REG_RBP as usize] as u64,
        rbx: g[libc::REG_RBX as usize] as u64,
        rdx: g[libc::REG_RDX as usize] as u64,
        rcx: g[libc::REG_RIP as usize] as u64,
        ret_sp: ret_sp as u64,
    };
    // SAFETY: as above; `block` is 16-aligned.
    unsafe { block.write(regs) };
    // glibc's clone stores the start routine at the stack top and pops it
    // in the child: the child must start exactly at `stack`, which the
    // landing pad restores after returning.
    // SAFETY: the program's clone, its child starting on the landing pad
    // with the registers written above.
    let r = unsafe {
        sys::lwkt_clone_tramp(
            libc::SYS_clone,
            flags,
            stack,
            a[2],
            a[3],
            a[4],
            block as *const u64,
        )
    };
    (r, shares_while_running)
}
