//! The thread's life with tokens: its state mapped at first use, its
//! tokens released at exit, its holds kept across fork.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering::*};

use super::block::*;
use super::events::{self, *};
use super::refs::*;
use super::tls::*;
use super::word::{token_at, Mode, PROCESS_ID};
use crate::sys;

/// Map and register the calling thread's state on its first use.
///
/// # Safety
///
/// `slot` must be this thread's `lwkt_thread_state_ptr` (`state_slot`),
/// still null: the state is this thread's alone from here on.
#[cold]
#[inline(never)]
pub(super) unsafe fn state_first_use(slot: *mut *mut ThreadState) -> &'static mut ThreadState {
    // Mapped, not a thread_local!: a TLS block this size would have to be
    // static TLS (the fast path reads it initial-exec), and dlopen() cannot
    // place that much. Unmapped at thread exit.
    let size = core::mem::size_of::<ThreadState>();
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as usize;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as usize;
    // SAFETY: an anonymous private mapping; no pointer of ours is passed.
    let m = unsafe { sys::syscall6(libc::SYS_mmap, 0, size, prot, flags, usize::MAX, 0) };
    if m < 0 {
        events::misuse_no_token(
            "lwkt",
            format_args!("no memory for this thread's token state"),
        );
    }
    let p = m as *mut ThreadState;
    // The fresh mapping is the state's initial value, all zero (see
    // `ThreadState`); not written over: a write this size is a call of
    // memcpy, which ThreadSanitizer intercepts and would take for a race
    // with the exited thread whose state had the same pages.
    // SAFETY: a fresh mapping of the state's size, page-aligned, that
    // nothing else knows of yet, whose zeros are a valid state.
    let st = unsafe { &mut *p };
    st.tid = sys::gettid();
    super::registry::register(st);
    let key = EXIT_KEY.load(Relaxed);
    if key != usize::MAX {
        // Any non-null value makes the destructor run at thread exit.
        // SAFETY: a key created by `init_process`; the value is never
        // dereferenced.
        unsafe {
            libc::pthread_setspecific(
                key as libc::pthread_key_t,
                ptr::NonNull::<libc::c_void>::dangling().as_ptr(),
            )
        };
    }
    (observer().thread_started)();
    st.dispatch = dispatch_on(selector_slot());
    if !st.dispatch {
        (observer().catchall_unavailable)();
    }
    // SAFETY: `slot` is this thread's state pointer (the contract above).
    unsafe { *slot = p };
    st
}

/// pthread key whose destructor releases a dead thread's tokens.
pub(super) static EXIT_KEY: AtomicUsize = AtomicUsize::new(usize::MAX);

pub fn init_process() {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is ours to fill; the destructor is a plain function.
    if unsafe { libc::pthread_key_create(&mut key, Some(thread_exit)) } == 0 {
        EXIT_KEY.store(key as usize, Relaxed);
    }
    // SAFETY: registers a plain function, run in a fork child.
    unsafe { libc::pthread_atfork(None, None, Some(fork_child)) };
}

/// pthread key destructor: the thread is exiting. Release what it still
/// holds and say so (SPEC S9).
extern "C" fn thread_exit(_value: *mut libc::c_void) {
    let Some(st) = state_if_used() else { return };
    release_at_exit(st);
    if st.dispatch {
        // The selector lives in this thread's memory, which is about to be
        // reused: the kernel must stop reading it.
        dispatch_off();
        st.dispatch = false;
    }
    super::registry::retire(st);
    // Later destructors that use tokens get a fresh state (and leak it).
    // SAFETY: this thread's own TLS pointer; `st` is not used after the
    // unmapping, and nothing else points into the state.
    unsafe {
        *state_slot() = ptr::null_mut();
        let st: *mut ThreadState = st;
        sys::syscall3(
            libc::SYS_munmap,
            st as usize,
            core::mem::size_of::<ThreadState>(),
            0,
        );
    }
}

pub(super) fn release_at_exit(st: &mut ThreadState) {
    if st.depth == 0 {
        return;
    }
    events::warn(format_args!(
        "{} exited holding {} token reference(s){}; released them",
        ThreadName, st.depth, Held
    ));
    for i in (0..st.depth as usize).rev() {
        if st.holds_word(i) {
            give_back(st, i);
        }
    }
    st.depth = 0;
    st.released_below = 0;
    st.sync_selector();
}

/// In a fork child, on the forking thread: it keeps its tokens under its new
/// thread id; everybody else's holds belong to threads that do not exist
/// here and are recovered by whoever needs them.
extern "C" fn fork_child() {
    let pid = sys::getpid();
    PROCESS_ID.store(pid, Relaxed);
    crate::token::FORKED.store(true, Relaxed);
    let own = state_if_used().map_or(0, |st| st as *mut ThreadState as usize);
    super::registry::forget_other_threads(own);
    let Some(st) = state_if_used() else { return };
    // Which words are ours, judged under the parent's thread id.
    let mut owned = 0u64;
    for i in 0..st.depth as usize {
        if st.holds_word(i) {
            owned |= 1 << i;
        }
    }
    st.tid = sys::gettid();
    // Dispatch is not inherited by a child process.
    if st.dispatch {
        st.dispatch = dispatch_on(selector_slot());
    }
    for i in 0..st.depth as usize {
        if owned & (1 << i) != 0 {
            let r = st.refs[i];
            token_at(r.tok).restamp_after_fork(r.word_mode() == Mode::Exclusive, st.tid, pid);
        }
    }
}

/// `write_held` as a message part; a line too long for the buffer keeps
/// what fits, and the message goes on after it.
struct Held;

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = write_held(f);
        Ok(())
    }
}
