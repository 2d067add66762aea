//! `LWKT_CHAOS`: release and retake at hooked calls that did not block.

use core::sync::atomic::{AtomicUsize, Ordering::*};

use super::block::*;
use super::events::*;
use super::tls::*;
use crate::sys;

/// Threads that have used tokens, in order: seeds each thread's chaos.
pub(super) static THREAD_ORDINAL: AtomicUsize = AtomicUsize::new(0);

/// `LWKT_CHAOS`: give every token away and let other threads run, then
/// take them back, as if the hooked call had blocked. How long the thread
/// stands back comes from the seed, so a failing run can be replayed.
#[cold]
pub fn chaos_cycle() {
    let st = state();
    if st.chaos_rng == 0 {
        let n = THREAD_ORDINAL.fetch_add(1, Relaxed) as u64 + 1;
        st.chaos_rng = (CHAOS_SEED.load(Relaxed) ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1;
    }
    // xorshift64
    let mut x = st.chaos_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    st.chaos_rng = x;
    let tokens = release_all("chaos");
    for _ in 0..1 + x % 4 {
        // SAFETY: sched_yield takes no pointer.
        unsafe { sys::syscall3(libc::SYS_sched_yield, 0, 0, 0) };
    }
    retake(tokens, "chaos");
}
