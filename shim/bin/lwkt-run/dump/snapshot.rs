//! One reading of the registry: every registered thread's state, each a
//! consistent copy, and the tokens they name.
//!
//! The target keeps running while it is read. A thread state is kept
//! only when its record's `gen` showed no write in progress before the
//! copy and the same value after it, and two copies of what the fast
//! paths write (depth, references) agree; an exclusive hold is kept only
//! when the token's word names the thread. Anything else is read again;
//! a thread that changes faster than it can be read is counted, never
//! shown half-read. A state that is unmapped, or retired (no magic), or
//! whose thread is gone, is a thread that exited: it is skipped.

use super::abi::*;
use super::target::{Memory, ReadFail, Target};
use super::Error;
use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};

/// How often a changing thread state is read again before it is given up.
const RETRIES: usize = 200;
/// More chunks than this is a registry that loops: refuse it.
const MAX_CHUNKS: usize = 1 << 16;
/// The longest token description shown.
const MAX_DESC: usize = 200;

/// `struct lwkt_token` (include/lwkt.h): the word, then `t_seq` at 24
/// and `t_desc` at 32.
const TOKEN_SIZE: usize = 40;
const TOKEN_OFF_SEQ: usize = 24;
const TOKEN_OFF_DESC: usize = 32;
const WORD_SHARED: u64 = 1 << 63;
const WORD_ID_MASK: u64 = 0xffff_ffff;

#[derive(Clone, Debug)]
pub struct Hold {
    pub tok: u64,
    pub exclusive: bool,
    /// References the thread has to it (recursion counts).
    pub refs: u32,
    /// Since when its word is held, when the library knows
    /// (CLOCK_MONOTONIC ns).
    pub since_ns: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Wait {
    pub tok: u64,
    pub exclusive: bool,
    pub since_ns: u64,
    /// The token's acquisitions when the wait began.
    pub seq: u64,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub call: String,
    pub since_ns: u64,
}

#[derive(Clone, Debug)]
pub struct Thread {
    pub tid: u32,
    pub name: String,
    /// What it holds now.
    pub holds: Vec<Hold>,
    /// What it gave back to block or wait, and takes back after.
    pub released: Vec<Hold>,
    pub wait: Option<Wait>,
    pub block: Option<Block>,
}

#[derive(Clone, Debug)]
pub struct Token {
    pub addr: u64,
    /// Its description, or None when it has none.
    pub name: Option<String>,
    pub seq: u64,
}

pub struct Snapshot {
    pub pid: i32,
    pub comm: String,
    pub library: String,
    /// When it was read (CLOCK_MONOTONIC ns).
    pub now_ns: u64,
    /// Threads in tid order.
    pub threads: Vec<Thread>,
    pub tokens: BTreeMap<u64, Token>,
    /// Threads that changed too fast to be read whole.
    pub unread: usize,
}

impl Snapshot {
    pub fn token_name(&self, tok: u64) -> String {
        match self.tokens.get(&tok).and_then(|t| t.name.clone()) {
            Some(n) => format!("\"{n}\""),
            None => format!("{tok:#x}"),
        }
    }

    /// At least how long `tok` has been held by its holders now: as long
    /// as the longest waiter has waited, when nobody took it since.
    pub fn held_at_least(&self, tok: u64) -> Option<u64> {
        let seq = self.tokens.get(&tok)?.seq;
        self.threads
            .iter()
            .filter_map(|t| t.wait.as_ref())
            .filter(|w| w.tok == tok && w.seq == seq)
            .map(|w| self.now_ns.saturating_sub(w.since_ns))
            .max()
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes(s.try_into().unwrap()))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8)
        .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap()))
}

/// The layout's numbers, read from the target's registry.
struct Layout {
    state_size: usize,
    tid: usize,
    depth: usize,
    released_below: usize,
    refs: usize,
    acquired_ns: usize,
    record: usize,
    max_refs: usize,
    ref_size: usize,
    ref_tok: usize,
    ref_flags: usize,
    f_ref: u32,
    f_primary: u32,
    f_word_excl: u32,
    f_counted: u32,
}

impl Layout {
    fn parse(b: &[u8]) -> Result<Layout, String> {
        let at = |off: usize| u32_at(b, offset_of!(Registry, layout) + off);
        let l = Layout {
            state_size: at(offset_of!(StateLayout, state_size)) as usize,
            tid: at(offset_of!(StateLayout, off_tid)) as usize,
            depth: at(offset_of!(StateLayout, off_depth)) as usize,
            released_below: at(offset_of!(StateLayout, off_released_below)) as usize,
            refs: at(offset_of!(StateLayout, off_refs)) as usize,
            acquired_ns: at(offset_of!(StateLayout, off_acquired_ns)) as usize,
            record: at(offset_of!(StateLayout, off_record)) as usize,
            max_refs: at(offset_of!(StateLayout, max_refs)) as usize,
            ref_size: at(offset_of!(StateLayout, ref_size)) as usize,
            ref_tok: at(offset_of!(StateLayout, ref_off_tok)) as usize,
            ref_flags: at(offset_of!(StateLayout, ref_off_flags)) as usize,
            f_ref: at(offset_of!(StateLayout, flag_ref)),
            f_primary: at(offset_of!(StateLayout, flag_primary)),
            f_word_excl: at(offset_of!(StateLayout, flag_word_excl)),
            f_counted: at(offset_of!(StateLayout, flag_counted)),
        };
        let fits = |off: usize, len: usize| off.checked_add(len).is_some_and(|e| e <= l.state_size);
        let sane = l.state_size <= 1 << 20
            && (1..=4096).contains(&l.max_refs)
            && l.ref_size >= 12
            && l.ref_tok + 8 <= l.ref_size
            && l.ref_flags + 4 <= l.ref_size
            && fits(l.tid, 4)
            && fits(l.depth, 4)
            && fits(l.released_below, 4)
            && fits(l.refs, l.max_refs * l.ref_size)
            && fits(l.acquired_ns, l.max_refs * 8)
            && fits(l.record, size_of::<ThreadRecord>());
        if sane {
            Ok(l)
        } else {
            Err("its thread-state layout makes no sense".to_string())
        }
    }

    fn record_u64(&self, state: &[u8], field: usize) -> u64 {
        u64_at(state, self.record + field)
    }
}

/// What a thread state says, before names and tokens are added.
struct Raw {
    tid: u32,
    holds: Vec<Hold>,
    released: Vec<Hold>,
    wait: Option<Wait>,
    block: Option<(u64, u32, u64)>,
}

enum Outcome {
    Read(Raw),
    /// Retired or unmapped: the thread exited.
    Gone,
    /// Changed under every copy.
    Busy,
}

/// Read the registry of `t` once.
pub fn read(t: &Target) -> Result<Snapshot, Error> {
    let head = t.read_all(t.registry, size_of::<Registry>())?;
    if head[..8] != MAGIC {
        return Err(Error::Other(format!(
            "{} in {} is not an lwkt registry (its first bytes are {:02x?})",
            super::target::SYMBOL,
            t.library,
            &head[..8]
        )));
    }
    let version = u32_at(&head, offset_of!(Registry, version));
    if version != VERSION {
        return Err(Error::Version(t.pid, version));
    }
    let size = u32_at(&head, offset_of!(Registry, size)) as usize;
    let layout = Layout::parse(&head)
        .ok()
        .filter(|_| size == size_of::<Registry>())
        .ok_or_else(|| Error::Other(format!(
            "process {}: the lwkt registry of version {VERSION} has a layout this lwkt-run does not know",
            t.pid
        )))?;
    let mut states = Vec::new();
    let first = offset_of!(Registry, first);
    let mut chunk = head[first..first + size_of::<Chunk>()].to_vec();
    for n in 0.. {
        for i in 0..CHUNK_SLOTS {
            let s = u64_at(&chunk, offset_of!(Chunk, slot) + i * 8);
            if s != 0 {
                states.push(s);
            }
        }
        let next = u64_at(&chunk, offset_of!(Chunk, next));
        if next == 0 {
            break;
        }
        if n == MAX_CHUNKS {
            return Err(Error::Other(format!(
                "process {}: the lwkt registry's chunks loop",
                t.pid
            )));
        }
        chunk = t.read_all(next, size_of::<Chunk>())?;
    }
    let live = t.tasks()?;
    let mut threads = Vec::new();
    let mut unread = 0;
    let mut tokens = BTreeMap::new();
    for addr in states {
        let raw = match read_state(t, &layout, addr)? {
            Outcome::Read(raw) => raw,
            Outcome::Gone => continue,
            Outcome::Busy => {
                unread += 1;
                continue;
            }
        };
        // A fork child's copy of its parent's threads, or a state left
        // by a thread that used tokens in its last destructors.
        if !live.contains(&raw.tid) {
            continue;
        }
        let block = raw.block.map(|(call, len, since)| Block {
            call: t
                .read(call, len.min(256) as usize)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|| "?".to_string()),
            since_ns: since,
        });
        let named = raw
            .holds
            .iter()
            .chain(&raw.released)
            .map(|h| h.tok)
            .chain(raw.wait.as_ref().map(|w| w.tok));
        for tok in named {
            if let std::collections::btree_map::Entry::Vacant(e) = tokens.entry(tok) {
                e.insert(read_token(t, tok)?);
            }
        }
        threads.push(Thread {
            tid: raw.tid,
            name: t.thread_name(raw.tid),
            holds: raw.holds,
            released: raw.released,
            wait: raw.wait,
            block,
        });
    }
    threads.sort_by_key(|th| th.tid);
    Ok(Snapshot {
        pid: t.pid,
        comm: t.comm.clone(),
        library: t.library.clone(),
        now_ns: super::clock::now_ns(),
        threads,
        tokens,
        unread,
    })
}

fn read_token(t: &Target, tok: u64) -> Result<Token, Error> {
    let (name, seq) = match t.read(tok, TOKEN_SIZE) {
        Ok(b) => {
            let desc = u64_at(&b, TOKEN_OFF_DESC);
            let name = (desc != 0).then(|| t.read_cstr(desc, MAX_DESC)).flatten();
            (name, u64_at(&b, TOKEN_OFF_SEQ))
        }
        Err(ReadFail::Unmapped) => (None, 0),
        Err(ReadFail::Fatal(e)) => return Err(e),
    };
    Ok(Token {
        addr: tok,
        name,
        seq,
    })
}

fn read_state(t: &impl Memory, l: &Layout, addr: u64) -> Result<Outcome, Error> {
    let gen_at = addr + (l.record + offset_of!(ThreadRecord, gen)) as u64;
    for _ in 0..RETRIES {
        let copy = |at: u64, len: usize| match t.read(at, len) {
            Ok(b) => Ok(Some(b)),
            Err(ReadFail::Unmapped) => Ok(None),
            Err(ReadFail::Fatal(e)) => Err(e),
        };
        let Some(g1) = copy(gen_at, 8)? else {
            return Ok(Outcome::Gone);
        };
        let g1 = u64_at(&g1, 0);
        if g1 & GEN_WRITING != 0 {
            std::thread::yield_now();
            continue;
        }
        let (Some(a), Some(b), Some(g2)) = (
            copy(addr, l.state_size)?,
            copy(addr, l.state_size)?,
            copy(gen_at, 8)?,
        ) else {
            return Ok(Outcome::Gone);
        };
        if u64_at(&g2, 0) != g1 || l.record_u64(&a, offset_of!(ThreadRecord, gen)) != g1 {
            continue;
        }
        if l.record_u64(&a, offset_of!(ThreadRecord, magic)) != RECORD_MAGIC {
            return Ok(Outcome::Gone);
        }
        if !same_stack(l, &a, &b) {
            continue;
        }
        if let Some(raw) = decode(t, l, &a)? {
            return Ok(Outcome::Read(raw));
        }
    }
    Ok(Outcome::Busy)
}

/// Do two copies agree on what the fast paths write?
fn same_stack(l: &Layout, a: &[u8], b: &[u8]) -> bool {
    let depth = u32_at(a, l.depth) as usize;
    let stack = l.refs..l.refs + depth.min(l.max_refs) * l.ref_size;
    let times = l.acquired_ns..l.acquired_ns + depth.min(l.max_refs) * 8;
    u32_at(a, l.depth) == u32_at(b, l.depth)
        && u32_at(a, l.released_below) == u32_at(b, l.released_below)
        && u32_at(a, l.tid) == u32_at(b, l.tid)
        && a[stack.clone()] == b[stack]
        && a[times.clone()] == b[times]
}

/// A consistent copy as holds, released holds, wait and block; None when
/// it caught the thread between two steps (a reference being filled, a
/// word not taken yet or already given back): read it again.
fn decode(t: &impl Memory, l: &Layout, s: &[u8]) -> Result<Option<Raw>, Error> {
    let tid = u32_at(s, l.tid);
    let depth = u32_at(s, l.depth) as usize;
    let below = u32_at(s, l.released_below) as usize;
    if depth > l.max_refs || below > depth {
        return Ok(None);
    }
    let mut holds: Vec<Hold> = Vec::new();
    let mut released: Vec<Hold> = Vec::new();
    for i in 0..depth {
        let r = l.refs + i * l.ref_size;
        let tok = u64_at(s, r + l.ref_tok);
        let flags = u32_at(s, r + l.ref_flags);
        if flags & l.f_ref == 0 || tok == 0 {
            return Ok(None); // being filled or emptied
        }
        let list = if i < below { &mut released } else { &mut holds };
        if let Some(h) = list.iter_mut().find(|h| h.tok == tok) {
            h.refs += 1;
            continue;
        }
        if flags & l.f_primary == 0 {
            // Recursion on a hold of an interrupted step: not shown.
            continue;
        }
        let exclusive = flags & l.f_word_excl != 0;
        if i >= below {
            // Confirm the live word with the token itself.
            let word = match t.read(tok, 8) {
                Ok(b) => u64_at(&b, 0),
                Err(ReadFail::Unmapped) => return Ok(None),
                Err(ReadFail::Fatal(e)) => return Err(e),
            };
            let owned = if exclusive {
                word & !WORD_ID_MASK == 0 && word & WORD_ID_MASK == tid as u64
            } else {
                flags & l.f_counted != 0 && word & WORD_SHARED != 0
            };
            if !owned {
                return Ok(None);
            }
        }
        let since = u64_at(s, l.acquired_ns + i * 8);
        list.push(Hold {
            tok,
            exclusive,
            refs: 1,
            since_ns: (since != 0).then_some(since),
        });
    }
    let rec = |f: usize| l.record_u64(s, f);
    let wait_tok = rec(offset_of!(ThreadRecord, wait_tok));
    let wait = (wait_tok != 0).then(|| Wait {
        tok: wait_tok,
        exclusive: u32_at(s, l.record + offset_of!(ThreadRecord, wait_mode)) == WAIT_EXCLUSIVE,
        since_ns: rec(offset_of!(ThreadRecord, wait_since_ns)),
        seq: rec(offset_of!(ThreadRecord, wait_seq)),
    });
    let call = rec(offset_of!(ThreadRecord, block_call));
    let block = (call != 0).then(|| {
        (
            call,
            u32_at(s, l.record + offset_of!(ThreadRecord, block_call_len)),
            rec(offset_of!(ThreadRecord, block_since_ns)),
        )
    });
    // The reference a thread waits with is the last of the released
    // (`lwkt_gettoken` records it there): shown as the wait.
    if let Some(w) = &wait {
        if released
            .last()
            .is_some_and(|h| h.tok == w.tok && h.refs == 1)
        {
            released.pop();
        }
    }
    Ok(Some(Raw {
        tid,
        holds,
        released,
        wait,
        block,
    }))
}

#[cfg(test)]
mod tests {
    //! The reading rules on memory that changes on purpose: a copy that
    //! is torn, taken during a write, or of a retired state is never
    //! shown.

    use super::*;
    use std::cell::Cell;

    const STATE: u64 = 0x10_000;
    const TOK: u64 = 0x90_000;
    const TID: u32 = 77;

    fn layout() -> Layout {
        Layout {
            state_size: 512,
            tid: 0,
            depth: 4,
            released_below: 8,
            refs: 16,
            acquired_ns: 160,
            record: 256,
            max_refs: 8,
            ref_size: 16,
            ref_tok: 0,
            ref_flags: 8,
            f_ref: 16,
            f_primary: 2,
            f_word_excl: 4,
            f_counted: 8,
        }
    }

    /// A thread state holding `n` references to TOK, the first the
    /// exclusive primary; `gen` its record's counter.
    fn state(n: u32, gen: u64, magic: u64) -> Vec<u8> {
        let l = layout();
        let mut s = vec![0u8; l.state_size];
        s[l.tid..l.tid + 4].copy_from_slice(&TID.to_le_bytes());
        s[l.depth..l.depth + 4].copy_from_slice(&n.to_le_bytes());
        for i in 0..n as usize {
            let r = l.refs + i * l.ref_size;
            let flags = if i == 0 { 16 | 2 | 4 } else { 16 };
            s[r..r + 8].copy_from_slice(&TOK.to_le_bytes());
            s[r + 8..r + 12].copy_from_slice(&(flags as u32).to_le_bytes());
        }
        let rec = l.record;
        s[rec..rec + 8].copy_from_slice(&magic.to_le_bytes());
        let g = rec + offset_of!(ThreadRecord, gen);
        s[g..g + 8].copy_from_slice(&gen.to_le_bytes());
        s
    }

    /// Memory whose thread state is `copy(n)` at the n-th copy of it,
    /// and whose token word is `word`.
    struct Changing<F: Fn(usize) -> Option<Vec<u8>>> {
        copy: F,
        copies: Cell<usize>,
        word: u64,
    }

    impl<F: Fn(usize) -> Option<Vec<u8>>> Memory for Changing<F> {
        fn read(&self, addr: u64, len: usize) -> Result<Vec<u8>, ReadFail> {
            if addr == TOK {
                return Ok(self.word.to_le_bytes()[..len].to_vec());
            }
            let n = self.copies.get();
            self.copies.set(n + 1);
            let s = (self.copy)(n).ok_or(ReadFail::Unmapped)?;
            let at = (addr - STATE) as usize;
            Ok(s[at..at + len].to_vec())
        }
    }

    fn outcome(copy: impl Fn(usize) -> Option<Vec<u8>>, word: u64) -> Outcome {
        let m = Changing {
            copy,
            copies: Cell::new(0),
            word,
        };
        match read_state(&m, &layout(), STATE) {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_still_state_is_read() {
        match outcome(|_| Some(state(2, 0, RECORD_MAGIC)), TID as u64) {
            Outcome::Read(raw) => {
                assert_eq!(raw.tid, TID);
                assert_eq!(raw.holds.len(), 1);
                assert_eq!((raw.holds[0].tok, raw.holds[0].refs), (TOK, 2));
                assert!(raw.holds[0].exclusive);
                assert!(raw.wait.is_none() && raw.block.is_none());
            }
            _ => panic!("a still state was not read"),
        }
    }

    #[test]
    fn copies_that_disagree_are_never_shown() {
        // Each copy of the state differs from the one before: a torn read
        // every time.
        let o = outcome(
            |n| Some(state(1 + (n % 2) as u32, 0, RECORD_MAGIC)),
            TID as u64,
        );
        assert!(matches!(o, Outcome::Busy));
    }

    #[test]
    fn copies_during_a_write_are_read_again() {
        // A write in progress for the first 40 copies, then none.
        let o = outcome(
            |n| Some(state(1, if n < 40 { 1 } else { GEN_ONE }, RECORD_MAGIC)),
            TID as u64,
        );
        assert!(matches!(o, Outcome::Read(_)));
        // Always writing: never shown.
        let o = outcome(|_| Some(state(1, 1, RECORD_MAGIC)), TID as u64);
        assert!(matches!(o, Outcome::Busy));
        // A write finished between the copies (the counter moved on).
        let o = outcome(
            |n| Some(state(1, n as u64 * GEN_ONE, RECORD_MAGIC)),
            TID as u64,
        );
        assert!(matches!(o, Outcome::Busy));
    }

    #[test]
    fn a_retired_or_unmapped_state_is_a_thread_gone() {
        assert!(matches!(
            outcome(|_| Some(state(1, 0, 0)), TID as u64),
            Outcome::Gone
        ));
        assert!(matches!(outcome(|_| None, TID as u64), Outcome::Gone));
    }

    #[test]
    fn an_exclusive_hold_the_word_does_not_confirm_is_not_shown() {
        // The reference is recorded, the word is somebody else's: the
        // thread is between two steps of taking it.
        let o = outcome(|_| Some(state(1, 0, RECORD_MAGIC)), 12345);
        assert!(matches!(o, Outcome::Busy));
    }

    #[test]
    fn a_reference_being_filled_is_not_shown() {
        let mut s = state(2, 0, RECORD_MAGIC);
        let l = layout();
        // The second slot claimed (depth 2), its flags not written yet.
        let f = l.refs + l.ref_size + l.ref_flags;
        s[f..f + 4].copy_from_slice(&0u32.to_le_bytes());
        let o = outcome(move |_| Some(s.clone()), TID as u64);
        assert!(matches!(o, Outcome::Busy));
    }
}
