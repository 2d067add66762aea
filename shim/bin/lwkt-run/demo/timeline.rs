//! A live, timestamped event log that token holders can write to without
//! ever blocking.
//!
//! A thread that prints while it holds a token could block (on stdout's
//! lock, or in a write to a full pipe), and blocking releases its tokens:
//! the very thing the timeline shows would change. So an event is formatted
//! into a fixed slot with atomics only (no lock, no allocation, no system
//! call), and a printer thread that holds no token prints the slots in
//! order as they fill.

use std::cell::UnsafeCell;
use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const SLOTS: usize = 64;
const TEXT: usize = 96;
const WHO: usize = 8;

struct Slot {
    /// Set (Release) once the other fields are written.
    ready: AtomicBool,
    at_us: AtomicU64,
    who: UnsafeCell<([u8; WHO], usize)>,
    text: UnsafeCell<([u8; TEXT], usize)>,
}

pub struct Timeline {
    start: Instant,
    next: AtomicUsize,
    slots: Vec<Slot>,
    done: AtomicBool,
}

// SAFETY: a slot's cells are written once, by the thread that claimed its
// index, before `ready` is published; the printer reads them only after.
unsafe impl Sync for Timeline {}

/// Formats into a fixed buffer, cutting what does not fit.
struct Fixed<'a, const N: usize>(&'a mut ([u8; N], usize));

impl<const N: usize> fmt::Write for Fixed<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let (buf, len) = &mut *self.0;
        let mut n = s.len().min(N - *len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        buf[*len..*len + n].copy_from_slice(&s.as_bytes()[..n]);
        *len += n;
        Ok(())
    }
}

impl Timeline {
    pub fn new() -> &'static Timeline {
        let slots = (0..SLOTS)
            .map(|_| Slot {
                ready: AtomicBool::new(false),
                at_us: AtomicU64::new(0),
                who: UnsafeCell::new(([0; WHO], 0)),
                text: UnsafeCell::new(([0; TEXT], 0)),
            })
            .collect();
        Box::leak(Box::new(Timeline {
            start: Instant::now(),
            next: AtomicUsize::new(0),
            slots,
            done: AtomicBool::new(false),
        }))
    }

    /// Record an event of the calling thread (named by its thread name).
    /// Never blocks: safe while holding tokens.
    pub fn event(&self, args: fmt::Arguments) {
        let at = self.start.elapsed().as_micros() as u64;
        let i = self.next.fetch_add(1, Relaxed);
        let Some(slot) = self.slots.get(i) else {
            return;
        };
        let cur = thread::current();
        // SAFETY: index i is ours alone until `ready` is set.
        let _ = Fixed(unsafe { &mut *slot.who.get() }).write_str(cur.name().unwrap_or("?"));
        // SAFETY: as above.
        let _ = Fixed(unsafe { &mut *slot.text.get() }).write_fmt(args);
        slot.at_us.store(at, Relaxed);
        slot.ready.store(true, Release);
    }

    /// Print events as they are recorded, until `finish`.
    pub fn start_printer(&'static self) -> JoinHandle<()> {
        thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                let mut out = std::io::stdout();
                let _ = writeln!(out, "  {:>10}  {:<6}  event", "time", "thread");
                let mut i = 0;
                loop {
                    let finished = self.done.load(Acquire);
                    while i < SLOTS && self.slots[i].ready.load(Acquire) {
                        let s = &self.slots[i];
                        // SAFETY: `ready` (Acquire) is set: the writer is
                        // done with the slot's cells for good.
                        let (who, wl) = unsafe { &*s.who.get() };
                        // SAFETY: as above.
                        let (text, tl) = unsafe { &*s.text.get() };
                        let ms = s.at_us.load(Relaxed) as f64 / 1e3;
                        let who = String::from_utf8_lossy(&who[..*wl]);
                        let text = String::from_utf8_lossy(&text[..*tl]);
                        let _ = writeln!(out, "  {ms:7.1} ms  {who:<6}  {text}");
                        let _ = out.flush();
                        i += 1;
                    }
                    if finished && (i >= SLOTS || i >= self.next.load(Relaxed)) {
                        break;
                    }
                    // The printer holds no token: its sleeps release nothing.
                    thread::sleep(Duration::from_millis(1));
                }
            })
            .expect("spawn the printer thread")
    }

    /// Stop the printer once every recorded event is printed.
    pub fn finish(&self, printer: JoinHandle<()>) {
        self.done.store(true, Release);
        let _ = printer.join();
    }
}
