//! Unit tests of what the hooks and the diagnostics can show in a test
//! build: the iovec arithmetic, the resolution of libc's functions, and
//! reading a description without faulting.

// Each block works on memory this test mapped or made.
#![allow(clippy::undocumented_unsafe_blocks)]

use core::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};

// ---- the hooks' parts that a test build can hold ----
//
// The hooks stay out of the test build (see lib.rs); their iovec
// arithmetic and the resolution of libc's functions do not interpose
// anything, and are compiled here from the same files.

#[path = "../interpose/iov.rs"]
mod iov;
#[allow(unused_macros)]
#[path = "../interpose/real.rs"]
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
