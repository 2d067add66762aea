//! `lwkt-run --top PID`: the `--dump` snapshot as a live view, redrawn
//! every second, the longest waits first; `q` or Ctrl-C quits and the
//! terminal is left as it was found.

use crate::dump::render::{self, duration, HeldFor};
use crate::dump::snapshot::{self, Snapshot, Thread};
use crate::dump::target::Target;
use crate::dump::Error;
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Set by SIGINT, SIGTERM and SIGHUP: quit at the next look.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Relaxed);
}

/// The terminal as found, put back on drop; the alternate screen while
/// the view is up.
struct Screen {
    saved: Option<libc::termios>,
}

impl Screen {
    fn enter() -> Screen {
        let mut t: libc::termios = unsafe_zeroed();
        // SAFETY: tcgetattr fills `t`, which we own.
        let saved = (unsafe { libc::tcgetattr(0, &mut t) } == 0).then_some(t);
        if let Some(mut raw) = saved {
            // Keys one at a time, not echoed; Ctrl-C still a signal.
            raw.c_lflag &= !(libc::ICANON | libc::ECHO);
            raw.c_cc[libc::VMIN] = 0;
            raw.c_cc[libc::VTIME] = 0;
            // SAFETY: a termios derived from the terminal's own.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &raw) };
        }
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?1049h\x1b[?25l");
        let _ = out.flush();
        Screen { saved }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let mut out = std::io::stdout();
        let _ = out.write_all(b"\x1b[?25h\x1b[?1049l");
        let _ = out.flush();
        if let Some(t) = &self.saved {
            // SAFETY: the settings tcgetattr gave us.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, t) };
        }
    }
}

fn unsafe_zeroed() -> libc::termios {
    // SAFETY: termios is plain integers and arrays: all zeros is valid.
    unsafe { std::mem::zeroed() }
}

fn catch_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a handler that stores one atomic; no SA_RESTART, so the
        // wait for a key returns at once.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// The terminal's size (rows, columns), 24x80 when it says nothing.
fn size() -> (usize, usize) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills one winsize that we own.
    let ok = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_row > 0 && ws.ws_col > 0 {
        (ws.ws_row as usize, ws.ws_col as usize)
    } else {
        (24, 80)
    }
}

/// Wait up to `ms` for a key; true when it says quit (q, Q, Ctrl-C).
/// Without keys to read (the input at its end, or not a terminal), just
/// wait.
fn quit_key(ms: u64) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_millis(ms);
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || STOP.load(Relaxed) {
            return false;
        }
        let mut p = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd that we own.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis() as i32 + 1) };
        if n <= 0 {
            continue; // the time is up, or a signal (STOP) came
        }
        let mut buf = [0u8; 64];
        // SAFETY: reads into our buffer.
        let got = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if got <= 0 {
            std::thread::sleep(left);
            return false;
        }
        if buf[..got as usize]
            .iter()
            .any(|&b| matches!(b, b'q' | b'Q' | 3))
        {
            return true;
        }
    }
}

/// When each hold was first seen held, for holds whose start the library
/// does not record: (tid, token, token's acquisitions for an exclusive
/// hold) to monotonic ns.
type Seen = HashMap<(u32, u64, u64), u64>;

/// One row per thread that holds, waits or blocks: its sort key and text.
fn rows(s: &Snapshot, seen: &mut Seen) -> Vec<((u8, std::cmp::Reverse<u64>), String)> {
    let mut now_seen = Seen::new();
    let mut out = Vec::new();
    for t in &s.threads {
        let held = |t: &Thread, seen: &Seen, now_seen: &mut Seen| {
            let h = t.holds.first()?;
            let seq = if h.exclusive {
                s.tokens.get(&h.tok).map_or(0, |k| k.seq)
            } else {
                0
            };
            let key = (t.tid, h.tok, seq);
            let first = *seen.get(&key).unwrap_or(&s.now_ns);
            now_seen.insert(key, first);
            let observed = s.now_ns.saturating_sub(first);
            Some(match render::held_for(s, h) {
                HeldFor::Exactly(n) => (n, duration(n)),
                HeldFor::AtLeast(n) => {
                    (n.max(observed), format!(">={}", duration(n.max(observed))))
                }
                HeldFor::Unknown => (observed, format!(">={}", duration(observed))),
            })
        };
        let held = held(t, seen, &mut now_seen);
        let (rank, dur, for_words, state, what) = if let Some(w) = &t.wait {
            let d = s.now_ns.saturating_sub(w.since_ns);
            let mode = if w.exclusive { "excl" } else { "shared" };
            let what = format!("{} {mode}", s.token_name(w.tok));
            (0, d, duration(d), "waiting", what)
        } else if let Some(b) = &t.block {
            let d = s.now_ns.saturating_sub(b.since_ns);
            (1, d, duration(d), "blocked", format!("{}()", b.call))
        } else if let Some((d, words)) = held {
            (2, d, words, "holding", String::new())
        } else {
            continue;
        };
        let holds: Vec<String> = t
            .holds
            .iter()
            .map(|h| {
                format!(
                    "{}{}",
                    s.token_name(h.tok),
                    if h.exclusive { "" } else { "(sh)" }
                )
            })
            .chain(
                t.released
                    .iter()
                    .map(|h| format!("{}(released)", s.token_name(h.tok))),
            )
            .collect();
        let line = format!(
            "{:>7} {:<16} {:<8} {:>9}  {:<28} {}",
            t.tid,
            t.name,
            state,
            for_words,
            what,
            holds.join(", ")
        );
        out.push(((rank, std::cmp::Reverse(dur)), line));
    }
    *seen = now_seen;
    out.sort_by_key(|a| a.0);
    out
}

fn frame(s: &Snapshot, seen: &mut Seen) -> String {
    let (height, width) = size();
    let rows = rows(s, seen);
    let waiting = s.threads.iter().filter(|t| t.wait.is_some()).count();
    let blocked = s.threads.iter().filter(|t| t.block.is_some()).count();
    let mut lines = vec![
        format!(
            "lwkt-run --top: process {} ({}): {} thread(s) use tokens, {} waiting, {} blocked    q: quit",
            s.pid,
            s.comm,
            s.threads.len(),
            waiting,
            blocked
        ),
        String::new(),
        format!(
            "{:>7} {:<16} {:<8} {:>9}  {:<28} {}",
            "TID", "NAME", "STATE", "FOR", "TOKEN / CALL", "HOLDS"
        ),
    ];
    lines.extend(rows.into_iter().map(|(_, l)| l));
    if s.unread > 0 {
        lines.push(format!(
            "({} thread(s) changed too fast to be read)",
            s.unread
        ));
    }
    let mut out = String::from("\x1b[H\x1b[2J");
    for l in lines.iter().take(height.saturating_sub(1)) {
        out.extend(l.chars().take(width));
        out.push('\n');
    }
    out
}

/// Run the view until a quit key, a signal, or the process's end.
pub fn top(pid: i32) -> Result<(), Error> {
    let t = Target::open(pid)?;
    // The first reading before the screen changes: errors stay readable.
    let mut s = snapshot::read(&t)?;
    catch_signals();
    let screen = Screen::enter();
    let mut seen = Seen::new();
    let end = loop {
        let _ = std::io::stdout().write_all(frame(&s, &mut seen).as_bytes());
        let _ = std::io::stdout().flush();
        if quit_key(1000) || STOP.load(Relaxed) {
            break Ok(None);
        }
        s = match snapshot::read(&t) {
            Ok(s) => s,
            Err(Error::Exited(_)) => break Ok(Some(format!("process {pid} exited"))),
            Err(Error::NoProcess(_)) => break Ok(Some(format!("process {pid} exited"))),
            Err(e) => break Err(e),
        };
    };
    drop(screen);
    match end {
        Ok(Some(note)) => {
            eprintln!("lwkt-run: {note}");
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(e),
    }
}
