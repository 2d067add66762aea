//! The registry's layout: what the library keeps for an outside reader
//! and `lwkt-run --dump` reads from another process. One file, included
//! by both (the launcher by `#[path]`), so that the two cannot disagree;
//! a change of meaning is a new `VERSION`, which the reader refuses.
//!
//! The exported symbol `lwkt_registry` is a `Registry`: a header, the
//! offsets of the fields of the library's per-thread state that a reader
//! needs (that state is not `repr(C)`), and the first `Chunk` of slots,
//! each null or the address of a registered thread state. Further chunks
//! are mapped when the first is full, linked by `next`, never freed.
//! Inside each thread state a `ThreadRecord` holds what only the slow
//! paths write: which token the thread waits for, which call it is
//! blocked in, and `gen`, the record's sequence counter.

use ::core::sync::atomic::AtomicUsize;

/// First bytes of `lwkt_registry`.
pub const MAGIC: [u8; 8] = *b"LWKTREG\0";
/// The layout version: what the reader must know to read the rest.
pub const VERSION: u32 = 1;
/// `ThreadRecord::magic` of a registered state; 0 once it is retired.
pub const RECORD_MAGIC: u64 = u64::from_le_bytes(*b"LWKTTHRD");
/// Slots per chunk (a chunk is 2 KiB).
pub const CHUNK_SLOTS: usize = 255;

/// `ThreadRecord::gen`: the low 16 bits count writes in progress (a
/// signal handler's write can nest in its thread's); each finished write
/// adds `GEN_ONE`. A reader's copy is whole when `gen` had no write in
/// progress before it and the same value after it.
pub const GEN_WRITING: u64 = 0xffff;
pub const GEN_ONE: u64 = 1 << 16;

/// `ThreadRecord::wait_mode`.
pub const WAIT_NONE: u32 = 0;
pub const WAIT_EXCLUSIVE: u32 = 1;
pub const WAIT_SHARED: u32 = 2;

/// Where a reader finds what it needs in a thread state (byte offsets
/// from its start), and what the reference flags mean.
#[repr(C)]
pub struct StateLayout {
    pub state_size: u32,
    pub off_tid: u32,
    pub off_depth: u32,
    pub off_released_below: u32,
    pub off_refs: u32,
    /// When each primary reference's word was taken (CLOCK_MONOTONIC ns;
    /// 0 when not known: kept only while statistics are on).
    pub off_acquired_ns: u32,
    pub off_record: u32,
    pub max_refs: u32,
    pub ref_size: u32,
    pub ref_off_tok: u32,
    pub ref_off_flags: u32,
    /// Set in every reference (a slot being filled has flags 0).
    pub flag_ref: u32,
    /// The reference asked for an exclusive hold.
    pub flag_excl: u32,
    /// The reference owns its token's word.
    pub flag_primary: u32,
    /// (primary) the word is held exclusively.
    pub flag_word_excl: u32,
    /// (shared primary) its count is in the word.
    pub flag_counted: u32,
}

#[repr(C)]
pub struct Chunk {
    /// The next chunk, or 0; set once, never freed.
    pub next: AtomicUsize,
    /// Each 0 or the address of a registered thread state.
    pub slot: [AtomicUsize; CHUNK_SLOTS],
}

#[repr(C)]
pub struct Registry {
    pub magic: [u8; 8],
    pub version: u32,
    /// `size_of::<Registry>()`, a second check of the layout.
    pub size: u32,
    pub layout: StateLayout,
    pub first: Chunk,
}

/// The part of a thread state that the slow paths write for a reader.
/// All times are CLOCK_MONOTONIC nanoseconds (the same clock in every
/// process of the machine).
#[repr(C)]
pub struct ThreadRecord {
    /// `RECORD_MAGIC` while the state is registered.
    pub magic: u64,
    /// Sequence counter (see `GEN_WRITING`); written atomically.
    pub gen: u64,
    /// The token the thread waits for (with every reference released),
    /// or 0.
    pub wait_tok: u64,
    pub wait_since_ns: u64,
    /// The token's `t_seq` when the wait began: while it is unchanged,
    /// nobody took the token since, so its holders have held it at least
    /// as long as this thread has waited.
    pub wait_seq: u64,
    pub wait_mode: u32,
    pub block_call_len: u32,
    /// The hooked call the thread is blocked in with its tokens released
    /// (a string in the library, `block_call_len` bytes), or 0.
    pub block_call: u64,
    pub block_since_ns: u64,
    /// The registry slot that holds this state (the library's own note).
    pub slot: u64,
}

impl ThreadRecord {
    pub const NEW: ThreadRecord = ThreadRecord {
        magic: 0,
        gen: 0,
        wait_tok: 0,
        wait_since_ns: 0,
        wait_seq: 0,
        wait_mode: WAIT_NONE,
        block_call_len: 0,
        block_call: 0,
        block_since_ns: 0,
        slot: 0,
    };
}
