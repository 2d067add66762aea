//! Unit tests of the token core through the C API functions (the hooks are
//! left out of the test build: the test harness must not interpose its own
//! calls). Waits use deadlines of seconds; holders that must keep a token
//! spin.

// Every block here calls the C API on tokens this test made and keeps
// alive until its threads are joined: a comment on each would say only that.
#![allow(clippy::undocumented_unsafe_blocks)]

use core::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::api::*;
use crate::thread as tstate;
use crate::token::Token;

const DEADLINE: Duration = Duration::from_secs(20);

fn new_token(name: &'static [u8]) -> Box<Token> {
    let mut t: Box<Token> = Box::new(unsafe { core::mem::zeroed() });
    unsafe { lwkt_token_init(&mut *t, name.as_ptr() as *const _) };
    t
}

/// A token shared between test threads.
#[derive(Clone, Copy)]
struct Shared(*mut Token);
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

fn leak(name: &'static [u8]) -> Shared {
    Shared(Box::into_raw(new_token(name)))
}

fn spin_until(flag: &AtomicBool) {
    let end = Instant::now() + DEADLINE;
    while !flag.load(SeqCst) {
        assert!(Instant::now() < end, "timed out");
        std::hint::spin_loop();
    }
}

#[test]
fn zero_filled_token_is_free_and_unnamed() {
    let mut t: Token = unsafe { core::mem::zeroed() };
    unsafe {
        lwkt_gettoken(&mut t);
        assert_eq!(lwkt_cnttoken(&mut t), 1);
        assert_eq!(lwkt_token_held_excl(&mut t), 1);
        lwkt_reltoken(&mut t);
        assert_eq!(lwkt_cnttoken(&mut t), 0);
        assert_eq!(t.t_word, 0, "released token must be free");
    }
}

#[test]
fn recursion_counts_every_reference() {
    let mut t = new_token(b"rec\0");
    unsafe {
        lwkt_gettoken(&mut *t);
        lwkt_gettoken(&mut *t);
        lwkt_gettoken_shared(&mut *t);
        assert_eq!(lwkt_cnttoken(&mut *t), 3);
        assert_eq!(lwkt_token_held_excl(&mut *t), 1);
        lwkt_reltoken(&mut *t);
        lwkt_reltoken(&mut *t);
        assert_eq!(lwkt_cnttoken(&mut *t), 1);
        assert_ne!(t.t_word, 0, "still held by the first reference");
        lwkt_reltoken(&mut *t);
        assert_eq!(t.t_word, 0);
    }
}

#[test]
fn shared_holders_coexist_and_exclude_exclusive() {
    let t = leak(b"sh\0");
    let inside = Arc::new(AtomicUsize::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (inside, go) = (inside.clone(), go.clone());
            thread::spawn(move || unsafe {
                let t = t;
                lwkt_gettoken_shared(t.0);
                inside.fetch_add(1, SeqCst);
                // Both must be inside together: wait for the other.
                let end = Instant::now() + DEADLINE;
                while inside.load(SeqCst) < 2 {
                    assert!(Instant::now() < end, "shared holders did not coexist");
                }
                // An exclusive try from here fails (we hold it shared is a
                // misuse for gettoken, but the other thread tries below).
                spin_until(&go);
                lwkt_reltoken(t.0);
            })
        })
        .collect();
    let end = Instant::now() + DEADLINE;
    while inside.load(SeqCst) < 2 {
        assert!(Instant::now() < end);
    }
    unsafe {
        assert_eq!(
            lwkt_trytoken(t.0),
            0,
            "exclusive must fail while shared holders run"
        );
        assert_eq!(
            lwkt_trytoken_shared(t.0),
            1,
            "another shared holder may join"
        );
        lwkt_reltoken(t.0);
    }
    go.store(true, SeqCst);
    for h in hs {
        h.join().unwrap();
    }
    unsafe {
        assert_eq!(lwkt_trytoken(t.0), 1);
        lwkt_reltoken(t.0);
    }
}

#[test]
fn swap_exchanges_the_two_most_recent_references() {
    let mut a = new_token(b"A\0");
    let mut b = new_token(b"B\0");
    unsafe {
        lwkt_gettoken(&mut *a);
        lwkt_gettoken(&mut *b);
        lwkt_token_swap();
        lwkt_reltoken(&mut *a); // A is on top now
        assert_eq!(a.t_word, 0);
        assert_ne!(b.t_word, 0);
        lwkt_reltoken(&mut *b);
        assert_eq!(b.t_word, 0);
    }
}

#[test]
fn swap_of_one_token_downgrades_when_the_exclusive_reference_goes() {
    let mut a = new_token(b"A\0");
    unsafe {
        lwkt_gettoken(&mut *a);
        lwkt_gettoken_shared(&mut *a);
        lwkt_token_swap();
        lwkt_reltoken(&mut *a); // the exclusive reference (now on top)
        assert_eq!(lwkt_token_held_excl(&mut *a), 0);
        assert_eq!(lwkt_cnttoken(&mut *a), 1);
        assert_ne!(
            a.t_word & crate::token::SHARED,
            0,
            "word must be shared now"
        );
        lwkt_reltoken(&mut *a);
        assert_eq!(a.t_word, 0);
    }
}

#[test]
fn pool_tokens_are_stable_and_aligned() {
    let x = 5u64;
    let p1 = lwkt_token_pool_lookup(&x as *const u64 as *const _);
    let p2 = lwkt_token_pool_lookup(&x as *const u64 as *const _);
    assert_eq!(p1, p2);
    assert_eq!(p1 as usize % 64, 0);
    let distinct: std::collections::HashSet<usize> = (0..4096usize)
        .map(|i| lwkt_token_pool_lookup((i * 64) as *const _) as usize)
        .collect();
    assert!(
        distinct.len() > 1024,
        "pool hash spreads addresses ({} slots used)",
        distinct.len()
    );
    unsafe {
        let t = lwkt_getpooltoken(&x as *const u64 as *const _);
        assert_eq!(t, p1);
        assert_eq!(lwkt_cnttoken(t), 1);
        lwkt_relpooltoken(&x as *const u64 as *const _);
        assert_eq!(lwkt_cnttoken(t), 0);
    }
}

#[test]
fn counter_under_one_token_is_exact() {
    let t = leak(b"counter\0");
    let counter = Arc::new(AtomicU64::new(0));
    const N: u64 = 200_000;
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let c = counter.clone();
            thread::spawn(move || unsafe {
                let t = t;
                for _ in 0..N {
                    lwkt_gettoken(t.0);
                    // A racy read-modify-write: only exclusion keeps it exact.
                    let v = c.load(Relaxed);
                    c.store(v + 1, Relaxed);
                    lwkt_reltoken(t.0);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(counter.load(SeqCst), 4 * N);
}

#[test]
fn contention_releases_the_waiters_other_tokens() {
    // A holds T1 and waits for T2 (held by C): meanwhile B can take T1.
    let t1 = leak(b"T1\0");
    let t2 = leak(b"T2\0");
    let c_holds = Arc::new(AtomicBool::new(false));
    let b_done = Arc::new(AtomicBool::new(false));
    let c = {
        let (c_holds, b_done) = (c_holds.clone(), b_done.clone());
        thread::spawn(move || unsafe {
            let t2 = t2;
            lwkt_gettoken(t2.0);
            c_holds.store(true, SeqCst);
            spin_until(&b_done);
            lwkt_reltoken(t2.0);
        })
    };
    spin_until(&c_holds);
    let a_holds = Arc::new(AtomicBool::new(false));
    let a = {
        let a_holds = a_holds.clone();
        thread::spawn(move || unsafe {
            let (t1, t2) = (t1, t2);
            lwkt_gettoken(t1.0);
            a_holds.store(true, SeqCst);
            let mark = lwkt_mark();
            lwkt_gettoken(t2.0); // waits; T1 is released meanwhile
            let lost = lwkt_token_lost_since(t1.0, mark);
            assert_eq!(lwkt_cnttoken(t1.0), 1);
            assert_eq!(lwkt_cnttoken(t2.0), 1);
            lwkt_reltoken(t2.0);
            lwkt_reltoken(t1.0);
            lost
        })
    };
    // B: take T1 while A waits (A holds it until it waits for T2).
    spin_until(&a_holds);
    let end = Instant::now() + DEADLINE;
    unsafe {
        while lwkt_trytoken(t1.0) == 0 {
            assert!(
                Instant::now() < end,
                "T1 was never released by the waiting thread"
            );
        }
        lwkt_reltoken(t1.0);
    }
    b_done.store(true, SeqCst);
    assert_eq!(a.join().unwrap(), 1, "A must learn that T1 was taken");
    c.join().unwrap();
}

#[test]
fn abba_never_deadlocks() {
    let t1 = leak(b"A\0");
    let t2 = leak(b"B\0");
    let hs: Vec<_> = (0..2)
        .map(|i| {
            thread::spawn(move || unsafe {
                let (x, y) = if i == 0 { (t1, t2) } else { (t2, t1) };
                for _ in 0..20_000 {
                    lwkt_gettoken(x.0);
                    lwkt_gettoken(y.0);
                    lwkt_reltoken(y.0);
                    lwkt_reltoken(x.0);
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}

#[test]
fn trytoken_fails_without_releasing_other_tokens() {
    let t1 = leak(b"T1\0");
    let t2 = leak(b"T2\0");
    let holds = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let h = {
        let (holds, done) = (holds.clone(), done.clone());
        thread::spawn(move || unsafe {
            let t2 = t2;
            lwkt_gettoken(t2.0);
            holds.store(true, SeqCst);
            spin_until(&done);
            lwkt_reltoken(t2.0);
        })
    };
    spin_until(&holds);
    unsafe {
        lwkt_gettoken(t1.0);
        let mark = lwkt_mark();
        assert_eq!(lwkt_trytoken(t2.0), 0);
        assert_eq!(lwkt_lost_since(mark), 0);
        assert_ne!((*t1.0).t_word, 0, "T1 still held");
        lwkt_reltoken(t1.0);
    }
    done.store(true, SeqCst);
    h.join().unwrap();
}

#[test]
fn release_all_and_retake_restore_modes_and_counts() {
    let mut a = new_token(b"A\0");
    let mut b = new_token(b"B\0");
    unsafe {
        lwkt_gettoken(&mut *a);
        lwkt_gettoken_shared(&mut *b);
        lwkt_gettoken(&mut *a);
        let r = tstate::release_all("test");
        assert!(!tstate::holds_tokens());
        assert_eq!(a.t_word, 0);
        assert_eq!(b.t_word, 0);
        tstate::retake(r, "test");
        assert!(tstate::holds_tokens());
        assert_eq!(lwkt_cnttoken(&mut *a), 2);
        assert_eq!(lwkt_token_held_excl(&mut *a), 1);
        assert_eq!(lwkt_token_held_excl(&mut *b), 0);
        assert_eq!(lwkt_cnttoken(&mut *b), 1);
        lwkt_reltoken(&mut *a);
        lwkt_reltoken(&mut *b);
        lwkt_reltoken(&mut *a);
        assert_eq!(a.t_word, 0);
        assert_eq!(b.t_word, 0);
    }
}

#[test]
fn a_waiter_is_served_while_others_keep_taking_the_token() {
    // Two threads hammer the token; a third must still get it, many times,
    // within the deadline (S7: no waiter starves).
    let t = leak(b"busy\0");
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..2)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || unsafe {
                let t = t;
                while !stop.load(Relaxed) {
                    lwkt_gettoken(t.0);
                    for _ in 0..50 {
                        std::hint::spin_loop();
                    }
                    lwkt_reltoken(t.0);
                }
            })
        })
        .collect();
    let end = Instant::now() + DEADLINE;
    for _ in 0..2000 {
        unsafe {
            lwkt_gettoken(t.0);
            lwkt_reltoken(t.0);
        }
        assert!(Instant::now() < end, "the third thread starved");
    }
    stop.store(true, SeqCst);
    for h in hammers {
        h.join().unwrap();
    }
}

#[test]
fn uninit_marks_the_token_dead() {
    let mut t = new_token(b"gone\0");
    unsafe {
        lwkt_token_uninit(&mut *t);
        assert!(crate::token::is_dead(t.t_word));
        lwkt_token_init(&mut *t, ptr::null());
        lwkt_gettoken(&mut *t);
        lwkt_reltoken(&mut *t);
    }
}

#[test]
fn version_is_cargo_tomls() {
    let field = |name: &str, v: &str| -> core::ffi::c_int {
        v.parse()
            .unwrap_or_else(|_| panic!("CARGO_PKG_VERSION_{name} {v:?}"))
    };
    assert_eq!(
        LWKT_VERSION_MAJOR,
        field("MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        "LWKT_VERSION_MAJOR in shim/api/version.rs differs from Cargo.toml's version"
    );
    assert_eq!(
        LWKT_VERSION_MINOR,
        field("MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        "LWKT_VERSION_MINOR in shim/api/version.rs differs from Cargo.toml's version"
    );
    assert_eq!(
        LWKT_VERSION_PATCH,
        field("PATCH", env!("CARGO_PKG_VERSION_PATCH")),
        "LWKT_VERSION_PATCH in shim/api/version.rs differs from Cargo.toml's version"
    );
    let s = unsafe { core::ffi::CStr::from_ptr(lwkt_version()) };
    assert_eq!(s.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

// ---- the hooks' parts that a test build can hold ----
//
// The hooks stay out of the test build (see lib.rs); their iovec
// arithmetic and the resolution of libc's functions do not interpose
// anything, and are compiled here from the same files.

#[path = "interpose/iov.rs"]
mod iov;
#[allow(unused_macros)]
#[path = "interpose/real.rs"]
mod real;

/// The bytes that `span.transfer` hands to its calls, in order, and how
/// many calls it made; every call moves all it is given, except that the
/// call numbered `short_at` moves one byte less.
///
/// # Safety
///
/// `span`'s vector must describe readable memory.
unsafe fn bytes_of(span: &iov::IovSpan, short_at: Option<usize>) -> (Vec<u8>, usize, usize) {
    let mut out = Vec::new();
    let mut calls = 0;
    let moved = span.transfer(|v, cnt, before| {
        assert_eq!(before, out.len(), "bytes moved before this part");
        let mut n = 0;
        for i in 0..cnt {
            // SAFETY: `transfer` passes `cnt` entries of the span's vector,
            // which describes readable memory (this function's contract).
            let e = unsafe { *v.add(i) };
            // SAFETY: as above.
            out.extend_from_slice(unsafe {
                core::slice::from_raw_parts(e.iov_base as *const u8, e.iov_len)
            });
            n += e.iov_len;
        }
        calls += 1;
        if short_at == Some(calls) {
            out.pop();
            n -= 1;
        }
        n as isize
    });
    (out, calls, moved)
}

#[test]
fn iov_span_covers_exactly_the_range_in_at_most_three_calls() {
    let data: Vec<u8> = (0..200u8).collect();
    // Uneven elements, empty ones at the start, inside and at the end.
    let lens = [0usize, 7, 1, 0, 0, 30, 64, 1, 0, 50, 47, 0];
    assert_eq!(lens.iter().sum::<usize>(), data.len());
    let mut vec = Vec::new();
    let mut pos = 0;
    for &l in &lens {
        vec.push(libc::iovec {
            iov_base: data[pos..].as_ptr() as *mut _,
            iov_len: l,
        });
        pos += l;
    }
    let (iov, cnt) = (vec.as_ptr(), vec.len());
    let array = iov as usize..iov as usize + cnt * core::mem::size_of::<libc::iovec>();
    unsafe {
        assert_eq!(iov::iov_request(iov, cnt), data.len());
        for from in 0..=data.len() {
            for to in from..=data.len() {
                let span = iov::IovSpan::new(iov, cnt, from, to);
                let (bytes, calls, moved) = bytes_of(&span, None);
                assert_eq!(&bytes[..], &data[from..to], "bytes [{from}, {to})");
                assert_eq!(moved, to - from);
                assert!(calls <= 3, "[{from}, {to}): {calls} calls");
                // The middle part is the caller's own array, not a copy.
                span.transfer(|v, n, _| {
                    if n > 1 {
                        assert!(array.contains(&(v as usize)), "a copied vector");
                    }
                    0
                });
            }
        }
    }
}

#[test]
fn iov_span_stops_at_a_short_part() {
    let data = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    let vec = [
        libc::iovec {
            iov_base: data.as_ptr() as *mut _,
            iov_len: 4,
        },
        libc::iovec {
            iov_base: data[4..].as_ptr() as *mut _,
            iov_len: 3,
        },
        libc::iovec {
            iov_base: data[7..].as_ptr() as *mut _,
            iov_len: 3,
        },
    ];
    unsafe {
        // Parts: [2, 4), [4, 7), [7, 9). A short first part ends it there.
        let span = iov::IovSpan::new(vec.as_ptr(), 3, 2, 9);
        let (bytes, calls, moved) = bytes_of(&span, Some(1));
        assert_eq!((&bytes[..], calls, moved), (&data[2..3], 1, 1));
        let (bytes, calls, moved) = bytes_of(&span, Some(2));
        assert_eq!((&bytes[..], calls, moved), (&data[2..6], 2, 4));
        // A failing part ends it with what went before.
        let mut n = 0;
        let moved = span.transfer(|_, _, _| {
            n += 1;
            if n == 1 {
                2
            } else {
                -1
            }
        });
        assert_eq!((moved, n), (2, 2));
    }
}

#[test]
fn iov_request_is_cut_where_the_kernel_cuts() {
    let huge = [
        libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: isize::MAX as usize,
        },
        libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: isize::MAX as usize,
        },
        libc::iovec {
            iov_base: ptr::null_mut(),
            iov_len: 5,
        },
    ];
    unsafe {
        assert_eq!(iov::iov_request(huge.as_ptr(), 3), iov::MAX_RW_COUNT);
        assert_eq!(iov::iov_request(huge[2..].as_ptr(), 1), 5);
        assert_eq!(iov::iov_request(huge.as_ptr(), 0), 0);
    }
}

#[test]
fn a_function_that_libc_lacks_resolves_to_the_stand_in() {
    const NAME: &str = "lwkt_test_no_libc_has_this_function\0";
    assert_eq!(real::lookup(NAME, None), None);
    assert_eq!(real::lookup(NAME, Some("GLIBC_2.2.5\0")), None);
    // No error is left for the program's dlerror().
    assert!(unsafe { libc::dlerror() }.is_null());
    let slot = AtomicUsize::new(0);
    assert_eq!(real::resolve(&slot, NAME, None, 0x5afe), 0x5afe);
    assert_eq!(slot.load(SeqCst), 0x5afe);
    assert!(real::was_missing(NAME));
    // Once resolved, the slot answers.
    assert_eq!(real::resolve(&slot, NAME, None, 0xdead), 0x5afe);
}

#[test]
fn a_function_that_libc_has_resolves_to_libc() {
    let read = real::lookup("read\0", None).expect("libc's read");
    assert_eq!(read, libc::read as *const () as usize);
    let slot = AtomicUsize::new(0);
    assert_eq!(real::resolve(&slot, "read\0", None, 0x5afe), read);
    assert!(!real::was_missing("read\0"));
    // A versioned name (pthread_cond_wait has two versions).
    assert!(real::lookup("pthread_cond_wait\0", Some("GLIBC_2.3.2\0")).is_some());
}

/// Messages name a token by its description, read without faulting: the
/// kernel copies (process_vm_readv, or a pipe where that is refused) and
/// stops at the first page that cannot be read.
#[test]
fn descriptions_are_read_without_faulting() {
    use crate::diag::{copy_readable, copy_through_pipe};
    unsafe {
        let page = 4096usize;
        let p = libc::mmap(
            ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        ) as *mut u8;
        assert_ne!(p as *mut libc::c_void, libc::MAP_FAILED);
        assert_eq!(
            libc::mprotect(p.add(page) as *mut libc::c_void, page, libc::PROT_NONE),
            0
        );
        ptr::copy_nonoverlapping(b"abcd".as_ptr(), p.add(page - 4), 4);
        let mut buf = [0u8; 64];
        // A string running into the unreadable page: its readable part.
        assert_eq!(copy_readable(p.add(page - 4), &mut buf), 4);
        assert_eq!(&buf[..4], b"abcd");
        // Nothing readable.
        assert_eq!(copy_readable(p.add(page), &mut buf), 0);
        // The fallback, within a page.
        let mut small = [0u8; 4];
        assert_eq!(copy_through_pipe(p.add(page - 4) as usize, &mut small), 4);
        assert_eq!(&small, b"abcd");
        assert_eq!(copy_through_pipe(p.add(page) as usize, &mut small), 0);
        libc::munmap(p as *mut libc::c_void, 2 * page);
    }
}
