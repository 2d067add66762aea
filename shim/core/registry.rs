//! The registry of thread states for an outside reader (`lwkt-run
//! --dump`, `--top`), reached through the exported `lwkt_registry`; its
//! layout is `registry_abi`.
//!
//! Cost: nothing on the fast paths. What a thread holds is its reference
//! stack, which the fast paths write anyway; the registry only points at
//! it. The rest is written on slow paths: a slot claimed at the thread's
//! first token use and cleared at its exit, the wait noted around the
//! futex wait, the blocking call noted around it with the tokens released.
//!
//! Safety for the reader (another process, copying with
//! `process_vm_readv`, no locks): a state is registered (record magic
//! set) before its slot is published, and retired (magic cleared, slot
//! cleared) before it is unmapped; a reader that still holds its address
//! finds it unmapped (the copy fails), retired (no magic) or reused by
//! another thread's state (whose own tid it reads). The record's fields
//! are written between two steps of `gen` (see `GEN_WRITING`); the
//! reference stack, which changes without telling anyone, the reader
//! copies twice and keeps only when both copies agree.

use core::mem::{offset_of, size_of};
use core::sync::atomic::{compiler_fence, AtomicU64, AtomicUsize, Ordering::*};

use super::events::tell_checker;
use super::refs::*;
pub use super::registry_abi::*;
use super::tls::state_if_used;
use super::word::{token_at, Mode, Token};
use crate::sys;

/// The registry. Its name is the ABI: `lwkt-run` looks it up in the
/// library's dynamic symbol table.
#[allow(non_upper_case_globals)]
#[no_mangle]
pub static lwkt_registry: Registry = Registry {
    magic: MAGIC,
    version: VERSION,
    size: size_of::<Registry>() as u32,
    layout: StateLayout {
        state_size: size_of::<ThreadState>() as u32,
        off_tid: offset_of!(ThreadState, tid) as u32,
        off_depth: offset_of!(ThreadState, depth) as u32,
        off_released_below: offset_of!(ThreadState, released_below) as u32,
        off_refs: offset_of!(ThreadState, refs) as u32,
        off_acquired_ns: offset_of!(ThreadState, acquired_ns) as u32,
        off_record: offset_of!(ThreadState, record) as u32,
        max_refs: MAX_REFS as u32,
        ref_size: size_of::<TokRef>() as u32,
        ref_off_tok: offset_of!(TokRef, tok) as u32,
        ref_off_flags: offset_of!(TokRef, flags) as u32,
        flag_ref: R_REF,
        flag_excl: R_EXCL,
        flag_primary: R_PRIMARY,
        flag_word_excl: R_WORD_EXCL,
        flag_counted: R_COUNTED,
    },
    first: Chunk {
        next: AtomicUsize::new(0),
        slot: [const { AtomicUsize::new(0) }; CHUNK_SLOTS],
    },
};

/// Run `write` on the record between the two steps of its `gen`.
#[inline]
fn write_record(rec: &mut ThreadRecord, write: impl FnOnce(&mut ThreadRecord)) {
    // SAFETY: `gen` is a u64 field of the thread's own record, aligned;
    // it is only ever accessed atomically (here, and by readers copying).
    let gen = unsafe { AtomicU64::from_ptr(&mut rec.gen) };
    gen.fetch_add(1, SeqCst);
    compiler_fence(SeqCst);
    write(rec);
    compiler_fence(SeqCst);
    // SAFETY: as above.
    let gen = unsafe { AtomicU64::from_ptr(&mut rec.gen) };
    gen.fetch_add(GEN_ONE - 1, SeqCst);
}

/// Publish the calling thread's freshly mapped state (its first token
/// use). A process with every slot taken maps another chunk; if even
/// that fails the thread is simply not listed.
pub(super) fn register(st: &mut ThreadState) {
    let addr = st as *mut ThreadState as usize;
    write_record(&mut st.record, |r| r.magic = RECORD_MAGIC);
    let mut chunk: &Chunk = &lwkt_registry.first;
    hide_from_checkers(chunk);
    loop {
        for s in &chunk.slot {
            if s.load(Relaxed) == 0 && s.compare_exchange(0, addr, Release, Relaxed).is_ok() {
                st.record.slot = s as *const AtomicUsize as u64;
                return;
            }
        }
        let mut next = chunk.next.load(Acquire);
        if next == 0 {
            next = map_chunk();
            if next == 0 {
                return;
            }
            if let Err(other) = chunk.next.compare_exchange(0, next, AcqRel, Acquire) {
                // SAFETY: our own chunk, which nobody else has seen.
                unsafe { sys::syscall3(libc::SYS_munmap, next, size_of::<Chunk>(), 0) };
                next = other;
            }
        }
        // SAFETY: a published chunk is a mapped, zero-filled `Chunk` that
        // is never unmapped.
        chunk = unsafe { &*(next as *const Chunk) };
        hide_from_checkers(chunk);
    }
}

/// Threads claim and clear slots with atomics that Helgrind and DRD do
/// not count as synchronisation.
fn hide_from_checkers(chunk: &Chunk) {
    let addr = chunk as *const Chunk as usize;
    tell_checker(|o| (o.private_memory)(addr, size_of::<Chunk>()));
}

/// A zero-filled chunk (all slots free), or 0 when there is no memory.
fn map_chunk() -> usize {
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as usize;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as usize;
    // SAFETY: an anonymous private mapping; no pointer of ours is passed.
    let m = unsafe {
        sys::syscall6(
            libc::SYS_mmap,
            0,
            size_of::<Chunk>(),
            prot,
            flags,
            usize::MAX,
            0,
        )
    };
    if m < 0 {
        0
    } else {
        m as usize
    }
}

/// The calling thread is about to unmap its state (thread exit): take it
/// off the registry first, and mark it retired for a reader that already
/// has its address.
pub(super) fn retire(st: &mut ThreadState) {
    let slot = st.record.slot as *const AtomicUsize;
    if !slot.is_null() {
        // SAFETY: the slot this state claimed, in a chunk never unmapped.
        unsafe { (*slot).store(0, Release) };
    }
    write_record(&mut st.record, |r| {
        r.magic = 0;
        r.slot = 0;
    });
}

/// Every registered state, by its slot (chunks are never unmapped).
fn for_each_slot(mut f: impl FnMut(&AtomicUsize)) {
    let mut chunk: &Chunk = &lwkt_registry.first;
    loop {
        for s in &chunk.slot {
            f(s);
        }
        let next = chunk.next.load(Acquire);
        if next == 0 {
            return;
        }
        // SAFETY: a published chunk is a mapped `Chunk`, never unmapped.
        chunk = unsafe { &*(next as *const Chunk) };
    }
}

/// S9 for shared holds: a thread that vanished (ended without its exit
/// handlers, e.g. by a raw `exit` system call) left its state registered
/// and its shared counts in the words. Take them off, once per such
/// state: whoever clears its slot does it. Exclusive holds need no help
/// (the word names the dead thread: `recover_dead_holder`). True when a
/// count was dropped.
///
/// A count is dropped only where the dead thread's reference says it is
/// in the word (`R_COUNTED`, set after the count is added and cleared
/// before it is taken off): a thread that vanished between those steps
/// leaves its count counted, never makes another's be taken off. The
/// state is left mapped (another recoverer may be reading it) and marked
/// retired for an outside reader.
#[cold]
pub(super) fn recover_vanished_shares(me: u32) -> bool {
    let pid = sys::getpid();
    let mut dropped = false;
    for_each_slot(|s| {
        let addr = s.load(Acquire);
        if addr == 0 {
            return;
        }
        // SAFETY: a registered state stays mapped while it is in its slot,
        // and only this check's reads are made until the slot is ours; a
        // state unmapped meanwhile would have been retired (slot cleared)
        // by its thread first: the compare-and-swap below then fails. Its
        // tid is written before it is published.
        let tid = unsafe { core::ptr::read_volatile(&(*(addr as *const ThreadState)).tid) };
        if tid == 0 || tid == me || sys::thread_alive(pid, tid) {
            return;
        }
        // Dead: its state is never touched by its thread again, and the
        // slot, once ours, by no other recoverer.
        if s.compare_exchange(addr, 0, AcqRel, Relaxed).is_err() {
            return;
        }
        // SAFETY: as above; the state is ours alone now.
        let st = unsafe { &mut *(addr as *mut ThreadState) };
        for i in 0..(st.depth as usize).min(MAX_REFS) {
            let r = st.refs[i];
            if r.is_primary() && r.word_mode() == Mode::Shared && r.flags & R_COUNTED != 0 {
                st.refs[i].flags &= !R_COUNTED;
                let t = token_at(r.tok);
                if t.drop_vanished_share() {
                    dropped = true;
                    super::events::warn(format_args!(
                        "{}: thread {} held it shared and no longer exists; its share recovered by {}",
                        super::events::Desc(t),
                        tid,
                        super::events::ThreadName
                    ));
                }
            }
        }
        write_record(&mut st.record, |r| {
            r.magic = 0;
            r.slot = 0;
        });
    });
    dropped
}

/// In a fork child: the other threads' states describe threads of the
/// parent (their holds are judged by the words' process id, not by
/// state); only the forking thread's, `own` (0: none), stays listed.
pub(super) fn forget_other_threads(own: usize) {
    for_each_slot(|s| {
        let addr = s.load(Relaxed);
        if addr != 0 && addr != own {
            s.store(0, Relaxed);
        }
    });
}

/// What a wait replaced in the record; `wait_end` puts it back (a signal
/// handler's wait nests inside its thread's).
pub(super) struct WaitNote {
    tok: u64,
    since: u64,
    seq: u64,
    mode: u32,
}

/// The thread waits for `tok` from now, every reference released.
#[cold]
pub(super) fn wait_begin(st: &mut ThreadState, tok: *const Token, mode: Mode) -> WaitNote {
    let r = &st.record;
    let note = WaitNote {
        tok: r.wait_tok,
        since: r.wait_since_ns,
        seq: r.wait_seq,
        mode: r.wait_mode,
    };
    let seq = token_at(tok).seq().load(Relaxed);
    let now = sys::now_ns();
    write_record(&mut st.record, |r| {
        r.wait_tok = tok as u64;
        r.wait_since_ns = now;
        r.wait_seq = seq;
        r.wait_mode = match mode {
            Mode::Exclusive => WAIT_EXCLUSIVE,
            Mode::Shared => WAIT_SHARED,
        };
    });
    note
}

/// The wait is over.
#[cold]
pub(super) fn wait_end(st: &mut ThreadState, note: WaitNote) {
    write_record(&mut st.record, |r| {
        r.wait_tok = note.tok;
        r.wait_since_ns = note.since;
        r.wait_seq = note.seq;
        r.wait_mode = note.mode;
    });
}

/// What a blocking call replaced in the record; `block_end` puts it back.
pub struct BlockNote {
    call: u64,
    len: u32,
    since: u64,
}

/// The calling thread enters the hooked call `call` with its tokens
/// released (a thread that never used tokens has nothing to note).
#[cold]
pub fn block_begin(call: &'static str) -> BlockNote {
    let Some(st) = state_if_used() else {
        return BlockNote {
            call: 0,
            len: 0,
            since: 0,
        };
    };
    let r = &st.record;
    let note = BlockNote {
        call: r.block_call,
        len: r.block_call_len,
        since: r.block_since_ns,
    };
    let now = sys::now_ns();
    write_record(&mut st.record, |r| {
        r.block_call = call.as_ptr() as u64;
        r.block_call_len = call.len().min(u32::MAX as usize) as u32;
        r.block_since_ns = now;
    });
    note
}

/// The hooked call returned (its tokens are not taken back yet).
#[cold]
pub fn block_end(note: BlockNote) {
    let Some(st) = state_if_used() else { return };
    write_record(&mut st.record, |r| {
        r.block_call = note.call;
        r.block_call_len = note.len;
        r.block_since_ns = note.since;
    });
}

const _: () = assert!(size_of::<Chunk>() == 2048);
const _: () = assert!(size_of::<ThreadRecord>().is_multiple_of(8));
