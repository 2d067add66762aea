//! The registry of thread states (`lwkt_registry`), read the way an
//! outside reader does: through its slots and the published offsets.

#![allow(clippy::undocumented_unsafe_blocks)]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{leak, spin_until, Shared};
use crate::api::*;
use crate::core::registry::lwkt_registry;
use crate::core::registry_abi::*;

const DEADLINE: Duration = Duration::from_secs(20);

/// Every registered state's address (the first chunk, then the others).
fn registered() -> Vec<usize> {
    let mut out = Vec::new();
    let mut chunk: &Chunk = &lwkt_registry.first;
    loop {
        out.extend(
            chunk
                .slot
                .iter()
                .map(|s| s.load(Acquire))
                .filter(|&a| a != 0),
        );
        let next = chunk.next.load(Acquire);
        if next == 0 {
            return out;
        }
        chunk = unsafe { &*(next as *const Chunk) };
    }
}

/// The registered state of thread `tid`, if any.
fn state_of(tid: u32) -> Option<usize> {
    let off = lwkt_registry.layout.off_tid as usize;
    registered()
        .into_iter()
        .find(|&a| unsafe { ((a + off) as *const u32).read_volatile() } == tid)
}

/// The record of the state at `addr`.
fn record(addr: usize) -> *const ThreadRecord {
    (addr + lwkt_registry.layout.off_record as usize) as *const ThreadRecord
}

fn gettid() -> u32 {
    unsafe { libc::gettid() as u32 }
}

#[test]
fn header_says_what_a_reader_needs() {
    assert_eq!(lwkt_registry.magic, MAGIC);
    assert_eq!(lwkt_registry.version, VERSION);
    assert_eq!(
        lwkt_registry.size as usize,
        core::mem::size_of::<Registry>()
    );
    let l = &lwkt_registry.layout;
    assert!(l.off_record as usize + core::mem::size_of::<ThreadRecord>() <= l.state_size as usize);
    assert_eq!(l.max_refs, 64);
}

#[test]
fn a_thread_is_registered_at_first_use_and_retired_at_exit() {
    let t = leak(b"reg\0");
    let (tid, addr) = thread::spawn(move || {
        let t: Shared = t;
        unsafe {
            lwkt_gettoken(t.0);
            lwkt_reltoken(t.0);
        }
        let tid = gettid();
        let addr = state_of(tid).expect("a thread that used a token is registered");
        assert_eq!(unsafe { (*record(addr)).magic }, RECORD_MAGIC);
        (tid, addr)
    })
    .join()
    .unwrap();
    // Its state is unmapped at exit: its slot went first. (Another test's
    // thread may have mapped and registered a state at the same address
    // since, in a slot of its own.)
    let slots = registered().iter().filter(|&&a| a == addr).count();
    let mapped = unsafe { libc::msync(addr as *mut libc::c_void, 4096, libc::MS_ASYNC) } == 0;
    assert!(
        slots == 0 || (slots == 1 && mapped && state_of(tid) != Some(addr)),
        "thread {tid}'s state at {addr:#x} is still registered (mapped: {mapped})"
    );
}

#[test]
fn a_wait_is_noted_while_it_lasts() {
    let t = leak(b"reg wait\0");
    let holding = Arc::new(AtomicBool::new(false));
    let release = Arc::new(AtomicBool::new(false));
    let waiter_tid = Arc::new(AtomicU32::new(0));
    let holder = {
        let (holding, release) = (holding.clone(), release.clone());
        thread::spawn(move || {
            let t: Shared = t;
            unsafe { lwkt_gettoken(t.0) };
            holding.store(true, SeqCst);
            spin_until(&release);
            unsafe { lwkt_reltoken(t.0) };
        })
    };
    spin_until(&holding);
    let waiter = {
        let waiter_tid = waiter_tid.clone();
        thread::spawn(move || {
            let t: Shared = t;
            waiter_tid.store(gettid(), SeqCst);
            unsafe {
                lwkt_gettoken(t.0);
                lwkt_reltoken(t.0);
            }
            // The wait is over: nothing noted any more.
            let addr = state_of(gettid()).unwrap();
            assert_eq!(unsafe { (*record(addr)).wait_tok }, 0);
        })
    };
    let end = Instant::now() + DEADLINE;
    loop {
        let tid = waiter_tid.load(SeqCst);
        let noted = state_of(tid).map(|a| unsafe {
            let r = record(a);
            (
                core::ptr::addr_of!((*r).wait_tok).read_volatile(),
                core::ptr::addr_of!((*r).wait_mode).read_volatile(),
            )
        });
        if noted == Some((t.0 as u64, WAIT_EXCLUSIVE)) {
            break;
        }
        assert!(Instant::now() < end, "the wait was never noted: {noted:?}");
        thread::sleep(Duration::from_millis(1));
    }
    release.store(true, SeqCst);
    holder.join().unwrap();
    waiter.join().unwrap();
}
