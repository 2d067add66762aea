//! The always-allowed code range, `.text.lwkt_allowed`: the raw system
//! call stub (and its bare form for the catch-all's patched sites), the
//! SIGSYS handler's signal restorer, and the clone child's landing pad. This is the address range the catch-all tells the kernel
//! to always allow (Syscall User Dispatch), so that the shim's own system
//! calls never trap; nothing else may be placed in it.

core::arch::global_asm!(
    ".pushsection .text.lwkt_allowed,\"ax\",@progbits",
    ".globl lwkt_allowed_start",
    ".hidden lwkt_allowed_start",
    "lwkt_allowed_start:",
    // isize lwkt_raw_syscall(nr, a1, a2, a3, a4, a5, a6): a6 on the stack.
    ".globl lwkt_raw_syscall",
    ".hidden lwkt_raw_syscall",
    ".type lwkt_raw_syscall,@function",
    "lwkt_raw_syscall:",
    ".cfi_startproc",
    "mov rax, rdi",
    "mov rdi, rsi",
    "mov rsi, rdx",
    "mov rdx, rcx",
    "mov r10, r8",
    "mov r8, r9",
    "mov r9, [rsp + 8]",
    "syscall",
    "ret",
    ".cfi_endproc",
    ".size lwkt_raw_syscall, . - lwkt_raw_syscall",
    // The catch-all's patched sites, for a token holder's call that cannot
    // block: the call, with the registers as the program set them.
    ".globl lwkt_allowed_syscall",
    ".hidden lwkt_allowed_syscall",
    ".type lwkt_allowed_syscall,@function",
    "lwkt_allowed_syscall:",
    ".cfi_startproc",
    "syscall",
    "ret",
    ".cfi_endproc",
    ".size lwkt_allowed_syscall, . - lwkt_allowed_syscall",
    // The SIGSYS handler's restorer. Its unwind information describes the
    // signal frame (where the interrupted registers were saved), so that a
    // pthread_cancel unwinding out of a call the handler ran can pass
    // through it. The nop is inside the FDE because unwinders look up the
    // return address minus one.
    ".cfi_startproc simple",
    ".cfi_signal_frame",
    ".cfi_escape 0x0f, 4, 0x77, 0xa0, 0x01, 0x06", // CFA = saved rsp
    ".cfi_escape 0x10, 8, 2, 0x77, 0x28",          // r8
    ".cfi_escape 0x10, 9, 2, 0x77, 0x30",          // r9
    ".cfi_escape 0x10, 10, 2, 0x77, 0x38",         // r10
    ".cfi_escape 0x10, 11, 3, 0x77, 0xc0, 0x00",   // r11
    ".cfi_escape 0x10, 12, 3, 0x77, 0xc8, 0x00",   // r12
    ".cfi_escape 0x10, 13, 3, 0x77, 0xd0, 0x00",   // r13
    ".cfi_escape 0x10, 14, 3, 0x77, 0xd8, 0x00",   // r14
    ".cfi_escape 0x10, 15, 3, 0x77, 0xe0, 0x00",   // r15
    ".cfi_escape 0x10, 5, 3, 0x77, 0xe8, 0x00",    // rdi
    ".cfi_escape 0x10, 4, 3, 0x77, 0xf0, 0x00",    // rsi
    ".cfi_escape 0x10, 6, 3, 0x77, 0xf8, 0x00",    // rbp
    ".cfi_escape 0x10, 3, 3, 0x77, 0x80, 0x01",    // rbx
    ".cfi_escape 0x10, 1, 3, 0x77, 0x88, 0x01",    // rdx
    ".cfi_escape 0x10, 0, 3, 0x77, 0x90, 0x01",    // rax
    ".cfi_escape 0x10, 2, 3, 0x77, 0x98, 0x01",    // rcx
    ".cfi_escape 0x10, 16, 3, 0x77, 0xa8, 0x01",   // rip
    "nop",
    ".globl lwkt_sigsys_restorer",
    ".hidden lwkt_sigsys_restorer",
    "lwkt_sigsys_restorer:",
    "mov eax, 15", // rt_sigreturn
    "syscall",
    ".cfi_endproc",
    // Where a trapped rt_sigreturn (the program's own signal handler
    // returning through libc's restorer) is sent to run again, allowed.
    ".globl lwkt_sigreturn_again",
    ".hidden lwkt_sigreturn_again",
    "lwkt_sigreturn_again:",
    "mov eax, 15",
    "syscall",
    "ud2",
    // isize lwkt_clone_tramp(nr, a1, a2, a3, a4, a5, regs): clone or
    // clone3 for a trapped call. In the child, which starts here on its
    // own new stack, the interrupted context's registers are loaded from
    // `regs` (which the parent wrote on that stack) and it returns straight
    // into the program, as if its own syscall instruction had run.
    ".globl lwkt_clone_tramp",
    ".hidden lwkt_clone_tramp",
    "lwkt_clone_tramp:",
    "push r12",
    "mov r12, [rsp + 16]",
    "mov rax, rdi",
    "mov rdi, rsi",
    "mov rsi, rdx",
    "mov rdx, rcx",
    "mov r10, r8",
    "mov r8, r9",
    "xor r9d, r9d",
    "syscall",
    "test rax, rax",
    "jz 2f",
    "pop r12",
    "ret",
    "2:",
    "mov rsp, [r12 + 112]",
    "mov r8, [r12]",
    "mov r9, [r12 + 8]",
    "mov r10, [r12 + 16]",
    "mov r11, [r12 + 24]",
    "mov r13, [r12 + 40]",
    "mov r14, [r12 + 48]",
    "mov r15, [r12 + 56]",
    "mov rdi, [r12 + 64]",
    "mov rsi, [r12 + 72]",
    "mov rbp, [r12 + 80]",
    "mov rbx, [r12 + 88]",
    "mov rdx, [r12 + 96]",
    "mov rcx, [r12 + 104]",
    "mov r12, [r12 + 32]",
    "xor eax, eax",
    "ret",
    ".globl lwkt_allowed_end",
    ".hidden lwkt_allowed_end",
    "lwkt_allowed_end:",
    ".popsection",
);

extern "C" {
    /// `isize lwkt_raw_syscall(nr, a1, …, a6)`: the kernel's result, a
    /// negative errno on failure. Reached through `syscall3`/`syscall6`.
    pub(super) fn lwkt_raw_syscall(
        nr: i64,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
        a6: usize,
    ) -> isize;
    /// `clone`/`clone3` for a trapped call: the child starts on its new
    /// stack with the registers of `regs` (the catch-all's clone handling).
    pub fn lwkt_clone_tramp(
        nr: i64,
        a1: usize,
        a2: usize,
        a3: usize,
        a4: usize,
        a5: usize,
        regs: *const u64,
    ) -> isize;
    /// The bounds of the always-allowed range (addresses only: never read).
    pub static lwkt_allowed_start: u8;
    pub static lwkt_allowed_end: u8;
    /// The SIGSYS handler's `sa_restorer`.
    pub fn lwkt_sigsys_restorer();
    /// Where a trapped `rt_sigreturn` is sent to run again, allowed.
    pub fn lwkt_sigreturn_again();
}
