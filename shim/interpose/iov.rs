//! Vectored I/O arithmetic: how many bytes an iovec array asks for, and a
//! byte range of it as a few vectors that point into the caller's own
//! array. Kept apart from the hooks (which unit tests leave out) so that
//! `shim/tests/interpose_parts.rs` can check it.

/// The most bytes one read or write moves (Linux's `MAX_RW_COUNT`: `INT_MAX`
/// rounded down to a page); the kernel cuts a longer request there.
pub const MAX_RW_COUNT: usize = 0x7fff_f000;

/// The bytes a call on this iovec array asks for, as the kernel counts
/// them.
///
/// # Safety
///
/// Only for an array the kernel has just accepted (the probe did not
/// fail): then `cnt` is in range and every element readable.
pub unsafe fn iov_request(iov: *const libc::iovec, cnt: usize) -> usize {
    let mut total = 0usize;
    for i in 0..cnt {
        // SAFETY: element `i < cnt` of an accepted array.
        total = total.saturating_add(unsafe { (*iov.add(i)).iov_len });
    }
    total.min(MAX_RW_COUNT)
}

/// The bytes `[from, to)` of an iovec array, as at most three vectors in
/// order: the rest of the element `from` falls inside, the caller's own
/// elements wholly inside the range (not copied: a pointer into its
/// array), the start of the element `to` falls inside. Hooks do not
/// allocate, and `IOV_MAX` elements do not belong on a signal stack.
pub struct IovSpan {
    head: libc::iovec,
    whole: *const libc::iovec,
    whole_cnt: usize,
    whole_len: usize,
    tail: libc::iovec,
}

impl IovSpan {
    /// The bytes `[from, to)` of the array `iov` of `cnt` elements.
    ///
    /// # Safety
    ///
    /// For an array the kernel accepted (see `iov_request`), `from <= to`.
    pub unsafe fn new(iov: *const libc::iovec, cnt: usize, from: usize, to: usize) -> IovSpan {
        // SAFETY: element `i < cnt` of an accepted array (the callers
        // below check `i < cnt` first).
        let elem = |i: usize| unsafe { *iov.add(i) };
        let empty = libc::iovec {
            iov_base: core::ptr::null_mut(),
            iov_len: 0,
        };
        let mut span = IovSpan {
            head: empty,
            whole: iov,
            whole_cnt: 0,
            whole_len: 0,
            tail: empty,
        };
        // Skip the elements that end at or before `from`.
        let (mut i, mut pos) = (0, 0usize);
        while i < cnt && pos.saturating_add(elem(i).iov_len) <= from {
            pos += elem(i).iov_len;
            i += 1;
        }
        if i < cnt && pos < from {
            // `from` is inside element i: its rest, up to `to` at most.
            let v = elem(i);
            let skip = from - pos;
            span.head = libc::iovec {
                iov_base: (v.iov_base as *mut u8).wrapping_add(skip) as *mut _,
                iov_len: (v.iov_len - skip).min(to - from),
            };
            pos = pos.saturating_add(v.iov_len);
            i += 1;
        }
        span.whole = iov.wrapping_add(i);
        while i < cnt && pos < to && pos.saturating_add(elem(i).iov_len) <= to {
            span.whole_len += elem(i).iov_len;
            pos += elem(i).iov_len;
            span.whole_cnt += 1;
            i += 1;
        }
        if i < cnt && pos < to {
            span.tail = libc::iovec {
                iov_base: elem(i).iov_base,
                iov_len: to - pos,
            };
        }
        span
    }

    /// Move the span with `call(vector, count, bytes moved before it)`,
    /// one call a part, in order; stop at a failure or a short transfer
    /// (the end of a file; a blocking call cut short by a signal), as the
    /// one call over the whole range would have. Returns the bytes moved;
    /// a failure leaves `errno` as the call set it. (It reads no memory
    /// itself: the parts go to `call` as pointers.)
    pub fn transfer(
        &self,
        mut call: impl FnMut(*const libc::iovec, usize, usize) -> isize,
    ) -> usize {
        let parts = [
            (&self.head as *const libc::iovec, 1, self.head.iov_len),
            (self.whole, self.whole_cnt, self.whole_len),
            (&self.tail as *const libc::iovec, 1, self.tail.iov_len),
        ];
        let mut moved = 0;
        for (v, cnt, len) in parts {
            if len == 0 {
                continue;
            }
            let r = call(v, cnt, moved);
            if r < 0 {
                break;
            }
            moved += r as usize;
            if (r as usize) < len {
                break;
            }
        }
        moved
    }
}
