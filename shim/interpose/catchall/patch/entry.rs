//! The held path of a patched site: a thread that holds tokens reaches
//! `lwkt_patched_held` from its site's stub (stub.rs) instead of trapping,
//! and the call runs as a trapped one would (run.rs), without a signal.
//!
//! The stub comes with the program's registers as its `syscall` would have
//! taken them (number in `rax`, arguments in `rdi rsi rdx r10 r8 r9`) and
//! the address of its own `syscall` instruction in `rcx` (which the system
//! call clobbers anyway). Everything else is the program's and is kept:
//! the general registers by the C convention and the save here, the vector
//! and x87 state by `xsave` (glibc keeps values in them across its system
//! calls; the SIGSYS path gets the same from the kernel's signal frame).
//! The 128 bytes below the stack pointer are left alone (the red zone of
//! the function that made the call).
//!
//! A call that cannot block (`getppid`) is made at once from the allowed
//! range, as the SIGSYS path would (one table bit tells). Back in the
//! stub, the answer picks the way on: the call done (result in `rax`, past
//! the stub's `syscall`), or the stub's own `syscall`, for the calls that
//! must trap as before (`clone`, `rt_sigprocmask`, ... act on a signal
//! context) or a thread the catch-all is not armed in.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::super::run::{blocking_family, run_blocking};
use super::super::state::{flags, own_thread, ARMED, CHILD_NEAR, PROGRAM};
use crate::sys;

/// One bit per system call number below 512: set for the calls the held
/// path hands to `lwkt_patched_call` (those that may block, and those that
/// act on a signal context); clear for those it makes at once.
static SLOW_CALLS: [AtomicU64; 8] = [const { AtomicU64::new(u64::MAX) }; 8];

/// Fill `SLOW_CALLS` (before the first site is patched).
pub(super) fn prepare_calls() {
    for (w, word) in SLOW_CALLS.iter().enumerate() {
        let mut bits = 0u64;
        for b in 0..64 {
            let nr = (w * 64 + b) as i64;
            if blocking_family(nr).is_some() || acts_on_signal_context(nr) {
                bits |= 1 << b;
            }
        }
        word.store(bits, Relaxed);
    }
}

/// The `xsave` area's size (a multiple of 64) and the state components
/// saved (XCR0 without AMX tiles), set before the first site is patched.
static LWKT_PATCHED_XSAVE_SIZE: AtomicU64 = AtomicU64::new(0);
static LWKT_PATCHED_XSAVE_MASK: AtomicU64 = AtomicU64::new(0);

core::arch::global_asm!(
    ".pushsection .text.lwkt_patched_held,\"ax\",@progbits",
    ".globl lwkt_patched_held",
    ".hidden lwkt_patched_held",
    ".type lwkt_patched_held,@function",
    "lwkt_patched_held:",
    // The caller's frame is the stub's (no return address pushed): its
    // stack pointer is ours on entry, its resume address is in rcx.
    ".cfi_startproc",
    ".cfi_def_cfa rsp, 0",
    ".cfi_register rip, rcx",
    "lea rsp, [rsp - 128]",
    ".cfi_adjust_cfa_offset 128",
    "push rcx",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rip, -136",
    // A call that cannot block (its bit clear in the table): made at once
    // from the allowed range, nothing else to save.
    "cmp rax, 511",
    "ja 3f",
    "bt qword ptr [rip + {table}], rax",
    "jc 3f",
    "call lwkt_allowed_syscall",
    ".cfi_remember_state",
    "pop rcx",
    ".cfi_def_cfa_offset 128",
    ".cfi_register rip, rcx",
    "lea rsp, [rsp + 128]",
    ".cfi_def_cfa_offset 0",
    "add rcx, 2",
    "jmp rcx",
    ".cfi_restore_state",
    "3:",
    "push rbp",
    ".cfi_adjust_cfa_offset 8",
    ".cfi_offset rbp, -144",
    "mov rbp, rsp",
    ".cfi_def_cfa_register rbp",
    // The call, read by `lwkt_patched_call` as `Regs`.
    "push rdi",
    "push rsi",
    "push rdx",
    "push r10",
    "push r8",
    "push r9",
    "push rax",
    "mov r11, rsp",
    "and rsp, -64",
    "sub rsp, [rip + {size}]",
    // The xsave header must start zeroed (xrstor checks it).
    "xor eax, eax",
    "mov [rsp + 512], rax",
    "mov [rsp + 520], rax",
    "mov [rsp + 528], rax",
    "mov [rsp + 536], rax",
    "mov [rsp + 544], rax",
    "mov [rsp + 552], rax",
    "mov [rsp + 560], rax",
    "mov [rsp + 568], rax",
    "mov eax, [rip + {mask}]",
    "mov edx, [rip + {mask} + 4]",
    "xsave64 [rsp]",
    "mov rdi, r11",
    "call {entry}",
    "mov r11, rax",
    "mov eax, [rip + {mask}]",
    "mov edx, [rip + {mask} + 4]",
    "xrstor64 [rsp]",
    "lea rsp, [rbp - 56]",
    "pop rax",
    "pop r9",
    "pop r8",
    "pop r10",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "pop rbp",
    ".cfi_def_cfa rsp, 136",
    ".cfi_restore rbp",
    "pop rcx",
    ".cfi_def_cfa_offset 128",
    ".cfi_register rip, rcx",
    "lea rsp, [rsp + 128]",
    ".cfi_def_cfa_offset 0",
    // 0: done, past the stub's syscall (2 bytes); else: make it there.
    "test r11, r11",
    "jnz 2f",
    "add rcx, 2",
    "2:",
    "jmp rcx",
    ".cfi_endproc",
    ".size lwkt_patched_held, . - lwkt_patched_held",
    ".popsection",
    size = sym LWKT_PATCHED_XSAVE_SIZE,
    mask = sym LWKT_PATCHED_XSAVE_MASK,
    entry = sym lwkt_patched_call,
    table = sym SLOW_CALLS,
);

extern "C" {
    /// The held path's entry (above): the stubs jump here.
    pub(super) fn lwkt_patched_held();
}

/// The registers `lwkt_patched_held` saved, lowest address first.
#[repr(C)]
struct Regs {
    rax: usize,
    r9: usize,
    r8: usize,
    r10: usize,
    rdx: usize,
    rsi: usize,
    rdi: usize,
}

const DONE: usize = 0;
const MAKE_IT: usize = 1;

/// A patched site's call by a thread whose selector says it holds tokens.
/// A call that may block runs as the SIGSYS path runs it (`run.rs`); one
/// that cannot runs at once; `MAKE_IT` sends the rest to the stub's own
/// `syscall` (where dispatch, if armed, traps it as before): the calls that
/// act on a signal context, a thread not armed by us (stepped aside, the
/// program's own dispatch), and a child running with the thread's TLS or
/// a copy of it (`vfork`, `posix_spawn`, `fork`: the kernel does not pass
/// dispatch on to it, so it traps nothing). Such children come only from
/// a trapped clone, which marks the TLS (`CHILD_NEAR`, clone.rs): only
/// then is the thread id asked for.
///
/// # Safety
///
/// `regs` is `lwkt_patched_held`'s block: the program's call.
unsafe extern "C" fn lwkt_patched_call(regs: *mut Regs) -> usize {
    // SAFETY: the block on our stack, as the caller's contract says.
    let r = unsafe { &mut *regs };
    let nr = r.rax as i64;
    if flags().load(Relaxed) & (ARMED | PROGRAM) != ARMED || acts_on_signal_context(nr) {
        return MAKE_IT;
    }
    let a = [r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9];
    let Some(family) = blocking_family(nr) else {
        // SAFETY: the program's call, as it made it.
        r.rax = unsafe { sys::syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]) } as usize;
        return DONE;
    };
    if flags().load(Relaxed) & CHILD_NEAR != 0 && !own_thread() {
        return MAKE_IT;
    }
    let saved = sys::errno();
    // SAFETY: the program's call, as it made it.
    r.rax = unsafe { run_blocking(family, nr, a) } as usize;
    sys::set_errno(saved);
    DONE
}

/// The calls dispatch.rs redirects: they act on the context the SIGSYS
/// handler returns to, so they keep going through it.
fn acts_on_signal_context(nr: i64) -> bool {
    matches!(
        nr,
        libc::SYS_rt_sigreturn
            | libc::SYS_rt_sigprocmask
            | libc::SYS_rt_sigaction
            | libc::SYS_sigaltstack
            | libc::SYS_prctl
            | libc::SYS_clone
            | libc::SYS_clone3
            | libc::SYS_vfork
            | libc::SYS_fork
    )
}

/// Can the held path save the vector state here (`xsave`, enabled by the
/// kernel)? Sets its size and components; false otherwise.
pub(super) fn prepare_xsave() -> bool {
    let leaf1 = core::arch::x86_64::__cpuid(1);
    const OSXSAVE: u32 = 1 << 27;
    if leaf1.ecx & OSXSAVE == 0 {
        return false;
    }
    // SAFETY: OSXSAVE says xgetbv and leaf 0xD are there.
    let (xcr0, size) = unsafe {
        (
            core::arch::x86_64::_xgetbv(0),
            core::arch::x86_64::__cpuid_count(0xd, 0).ebx as u64,
        )
    };
    // AMX tile state (bits 17-18): never used by libc or by us, and large.
    let mask = xcr0 & !(0b11 << 17);
    LWKT_PATCHED_XSAVE_MASK.store(mask, Relaxed);
    LWKT_PATCHED_XSAVE_SIZE.store(size.max(576).next_multiple_of(64), Relaxed);
    true
}
