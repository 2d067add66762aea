//! Finding libc's rewritable system-call sites: its executable text
//! decoded with iced-x86, every `syscall` instruction looked at.
//!
//! A site is the `syscall` with the instructions around it that move into
//! its stub with it: enough whole instructions for a `jmp rel32` (5
//! bytes), taken first from just before it (glibc's `mov $NR, %eax`,
//! argument moves), then from just after it (`cmp $-4095, %rax`). Such an
//! instruction must run the same anywhere and leave the stack pointer
//! alone (`relocatable`). A site is refused when a direct branch of the
//! decoded text lands inside the bytes to be replaced (past their first
//! byte), when it is libc's signal restorer (`mov $15, %rax; syscall`:
//! unwinders and debuggers recognise it by its bytes), or when too few
//! relocatable bytes surround it.

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};

/// A rewritable site: its first byte, its length, and where in it the
/// `syscall` (2 bytes) is.
#[derive(Clone, Copy)]
pub(super) struct Site {
    pub at: u64,
    pub len: usize,
    pub syscall_at: usize,
}

/// The most instruction bytes a stub carries besides its `syscall`.
pub(super) const MOVED_MAX: usize = 24;
/// How many instructions before a `syscall` are looked at.
const BEFORE: usize = 4;

/// The sites of `text` (mapped at `ip`): the rewritable ones, and how many
/// `syscall` instructions were refused.
pub(super) fn sites(text: &[u8], ip: u64) -> (Vec<Site>, usize) {
    let mut targets = Vec::new();
    let mut candidates = Vec::new();
    let mut refused = 0;
    // The last instructions decoded, newest last; a `syscall` waiting for
    // the instructions after it.
    let mut before: [Instruction; BEFORE] = [Instruction::default(); BEFORE];
    let mut pending: Option<Pending> = None;
    let mut decoder = Decoder::with_ip(64, text, ip, DecoderOptions::NONE);
    let mut insn = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut insn);
        if let Some(t) = direct_target(&insn) {
            targets.push(t);
        }
        if let Some(p) = pending.as_mut() {
            if relocatable(&insn) && p.end == insn.ip() && p.len() < 5 {
                p.end = insn.next_ip();
            } else {
                p.stopped = true;
            }
            if p.stopped || p.len() >= 5 {
                let p = pending.take().expect("pending");
                match p.site() {
                    Some(s) => candidates.push(s),
                    None => refused += 1,
                }
            }
        }
        if insn.code() == Code::Syscall {
            // Sites never overlap: this one starts after the last.
            let after = candidates.last().map_or(0, |s: &Site| s.at + s.len as u64);
            match start_of_run(&before, &insn, after) {
                None => refused += 1,
                Some(start) => {
                    let p = Pending {
                        start,
                        syscall: insn.ip(),
                        end: insn.next_ip(),
                        stopped: false,
                    };
                    if p.len() >= 5 {
                        candidates.extend(p.site());
                    } else {
                        pending = Some(p);
                    }
                }
            }
        }
        before.rotate_left(1);
        before[BEFORE - 1] = insn;
    }
    if let Some(p) = pending {
        match p.site() {
            Some(s) => candidates.push(s),
            None => refused += 1,
        }
    }
    targets.sort_unstable();
    let mut patched = Vec::with_capacity(candidates.len());
    for s in candidates {
        // A branch may land on the site's first byte (the jump goes there),
        // not inside.
        let inside = s.at + 1..s.at + s.len as u64;
        let from = targets.partition_point(|&t| t < inside.start);
        if targets.get(from).is_some_and(|t| inside.contains(t)) {
            refused += 1;
        } else {
            patched.push(s);
        }
    }
    (patched, refused)
}

/// A `syscall` and the relocatable bytes around it found so far.
struct Pending {
    start: u64,
    syscall: u64,
    end: u64,
    stopped: bool,
}

impl Pending {
    fn len(&self) -> u64 {
        self.end - self.start
    }

    /// The site, when it is long enough.
    fn site(&self) -> Option<Site> {
        let len = self.len() as usize;
        (len >= 5 && len - 2 <= MOVED_MAX).then_some(Site {
            at: self.start,
            len,
            syscall_at: (self.syscall - self.start) as usize,
        })
    }
}

/// Where the run of relocatable instructions just before `syscall`
/// starts: the fewest that make 5 bytes with it, or as many as there are
/// (none of the site before, which ends at `after`).
/// None for libc's signal restorer.
fn start_of_run(before: &[Instruction; BEFORE], syscall: &Instruction, after: u64) -> Option<u64> {
    let last = &before[BEFORE - 1];
    if last.next_ip() == syscall.ip() && loads_number(last) == Some(libc::SYS_rt_sigreturn as u32) {
        return None;
    }
    let mut start = syscall.ip();
    for i in before.iter().rev() {
        let room = syscall.next_ip() - start >= 5;
        if room || i.next_ip() != start || i.ip() < after || !relocatable(i) {
            break;
        }
        start = i.ip();
    }
    Some(start)
}

/// `mov $NR, %eax` or `mov $NR, %rax`: the number.
fn loads_number(i: &Instruction) -> Option<u32> {
    match i.code() {
        Code::Mov_r32_imm32 if i.op0_register() == Register::EAX => Some(i.immediate32()),
        Code::Mov_rm64_imm32
            if i.op0_kind() == OpKind::Register && i.op0_register() == Register::RAX =>
        {
            Some(i.immediate32to64() as u32)
        }
        _ => None,
    }
}

/// Does `i` run the same at another address, leaving the stack pointer
/// and the flow of control alone? Plain data moves and arithmetic on
/// registers and on memory not addressed relative to `rip`.
fn relocatable(i: &Instruction) -> bool {
    let plain = matches!(
        i.mnemonic(),
        Mnemonic::Mov
            | Mnemonic::Movzx
            | Mnemonic::Movsx
            | Mnemonic::Movsxd
            | Mnemonic::Xor
            | Mnemonic::And
            | Mnemonic::Or
            | Mnemonic::Add
            | Mnemonic::Sub
            | Mnemonic::Cmp
            | Mnemonic::Test
            | Mnemonic::Lea
    );
    let writes_sp = i.op_count() > 0
        && i.op0_kind() == OpKind::Register
        && matches!(
            i.op0_register(),
            Register::RSP | Register::ESP | Register::SP | Register::SPL
        );
    plain && !writes_sp && !i.is_ip_rel_memory_operand()
}

/// The target of a direct near branch (jump, conditional jump, call,
/// loop), if `i` is one.
fn direct_target(i: &Instruction) -> Option<u64> {
    match i.op0_kind() {
        OpKind::NearBranch64 | OpKind::NearBranch32 | OpKind::NearBranch16 => {
            Some(i.near_branch_target())
        }
        _ => None,
    }
}
