//! valgrind's client requests: the magic instruction sequence that
//! valgrind recognises and that does nothing on a real processor. The
//! catch-all asks whether valgrind runs the program (its CPU emulation has
//! no Syscall User Dispatch); the checkers tell Helgrind and DRD about
//! tokens.

use core::arch::asm;

/// valgrind's core request: non-zero under valgrind.
const RUNNING_ON_VALGRIND: usize = 0x1001;

/// One client request (`args[0]` the request number, then its arguments);
/// `default` comes back when no valgrind answers.
#[inline(never)]
pub fn valgrind_request(default: usize, args: [usize; 6]) -> usize {
    let mut result = default;
    // SAFETY: the four rotations of rdi add up to 128 bits (rdi comes back
    // unchanged) and `xchg rbx, rbx` changes nothing: natively this is a
    // no-op; under valgrind it reads `args` (rax points at it) and writes
    // the answer in rdx.
    unsafe {
        asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") result,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    result
}

/// Does valgrind run this program?
pub fn running_on_valgrind() -> bool {
    valgrind_request(0, [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0
}
