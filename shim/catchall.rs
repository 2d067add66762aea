//! The catch-all: blocking calls that libc makes inside itself.
//!
//! glibc binds its own calls privately (the `read` under `fgets`, the futex
//! under `sem_wait`, the wait inside `system`), so no exported-symbol hook
//! sees them. Syscall User Dispatch does: once a thread has switched it on,
//! every system call made from outside one address range raises SIGSYS
//! instead of running, while a per-thread selector byte says BLOCK.
//!
//! * A thread switches dispatch on when it first uses tokens. Its selector
//!   is BLOCK while it holds at least one token and ALLOW otherwise; the
//!   token code flips it with plain stores (thread.rs), no system call.
//!   Threads that never take a token are untouched.
//! * The always-allowed range is `.text.lwkt_allowed` (sys.rs): the shim's
//!   own syscall stub, this handler's signal restorer, the clone landing
//!   pad. The handler is installed with raw `rt_sigaction` and our own
//!   `SA_RESTORER`, so that its return does not itself trap.
//! * The handler runs the trapped call itself: a call that cannot block at
//!   once; one that can, through the same probes as the symbol hooks, with
//!   the tokens released around it. It runs with `SA_NODEFER` and an empty
//!   handler mask, so the program's signals are delivered during a blocking
//!   call exactly as without the shim, restarts included.
//! * Calls that only make sense outside a handler are redirected:
//!   `rt_sigreturn` (a program handler returning through libc's restorer)
//!   runs again from the allowed range; `rt_sigprocmask` is applied to the
//!   mask the handler returns to; `clone`/`vfork` children resume in the
//!   program, never inside the handler (see `clone_call`).
//! * The program keeps its own use of SIGSYS: its handler is remembered
//!   (`sigaction`/`signal` hooks) and gets every SIGSYS that is not a
//!   dispatch (seccomp), and SIGSYS is never blocked while the shim needs it.

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};

use crate::hooks::{self, c_result, fdio, net, process, released, waiters, ZERO_TS};
use crate::{config, sys};

const PR_SET_SYSCALL_USER_DISPATCH: usize = 59;
const PR_SYS_DISPATCH_OFF: usize = 0;
const PR_SYS_DISPATCH_ON: usize = 1;
/// `si_code` of a SIGSYS raised by Syscall User Dispatch.
const SYS_USER_DISPATCH: c_int = 2;

const SA_RESTORER: u64 = 0x0400_0000;
const SIGSYS_BIT: u64 = 1 << (libc::SIGSYS - 1);

/// The kernel's `struct sigaction` (not libc's).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The catch-all is installed (kernel support, LWKT_CATCHALL not 0).
static ON: AtomicBool = AtomicBool::new(false);
/// The program's own SIGSYS disposition: handler address and flags.
static PROGRAM_SIGSYS: AtomicUsize = AtomicUsize::new(0);
static PROGRAM_SIGSYS_FLAGS: AtomicU64 = AtomicU64::new(0);

#[inline(always)]
pub fn on() -> bool {
    ON.load(Relaxed)
}

fn prctl(a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    unsafe { sys::syscall6(libc::SYS_prctl, a, b, c, d, e, 0) }
}

fn allowed_range() -> (usize, usize) {
    let start = core::ptr::addr_of!(sys::lwkt_allowed_start) as usize;
    let end = core::ptr::addr_of!(sys::lwkt_allowed_end) as usize;
    (start, end - start)
}

/// Are we running under valgrind? Its CPU emulation does not implement
/// Syscall User Dispatch (the program would hang), so the catch-all stays
/// off there. This is valgrind's documented client-request sequence, a
/// no-op on a real CPU: `rdx` keeps its value (0) unless valgrind answers.
fn running_on_valgrind() -> bool {
    const RUNNING_ON_VALGRIND: u64 = 0x1001;
    let args: [u64; 6] = [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0];
    let answer: u64;
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") 0u64 => answer,
            inout("rdi") 0u64 => _,
            options(nostack),
        );
    }
    answer != 0
}

/// Why the catch-all is off, for `LWKT_DEBUG`.
pub fn why_off() -> &'static str {
    match OFF_REASON.load(Relaxed) {
        OFF_BY_USER => "LWKT_CATCHALL=0",
        OFF_VALGRIND => "valgrind does not emulate Syscall User Dispatch",
        _ => "this kernel has no Syscall User Dispatch",
    }
}

const OFF_BY_USER: u8 = 1;
const OFF_VALGRIND: u8 = 2;
static OFF_REASON: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

pub fn init_process() {
    if !config::CATCHALL_WANTED.load(Relaxed) {
        OFF_REASON.store(OFF_BY_USER, Relaxed);
        return;
    }
    if running_on_valgrind() {
        OFF_REASON.store(OFF_VALGRIND, Relaxed);
        return;
    }
    // Where the kernel has the feature, switching it off succeeds.
    if prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0) != 0 {
        return;
    }
    let act = KernelSigaction {
        handler: on_sigsys as *const () as usize,
        flags: (libc::SA_SIGINFO | libc::SA_NODEFER) as u64 | SA_RESTORER,
        restorer: sys::lwkt_sigsys_restorer as *const () as usize,
        mask: 0,
    };
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let r = unsafe {
        sys::syscall6(
            libc::SYS_rt_sigaction,
            libc::SIGSYS as usize,
            &act as *const _ as usize,
            &mut old as *mut _ as usize,
            8,
            0,
            0,
        )
    };
    if r != 0 {
        return;
    }
    PROGRAM_SIGSYS.store(old.handler, Relaxed);
    PROGRAM_SIGSYS_FLAGS.store(old.flags, Relaxed);
    ON.store(true, Release);
}

/// Switch dispatch on for the calling thread, with `selector` as its
/// switch. False when the kernel refused.
pub fn enable_for_thread(selector: *mut u8) -> bool {
    if !on() {
        return false;
    }
    let (start, len) = allowed_range();
    if prctl(
        PR_SET_SYSCALL_USER_DISPATCH,
        PR_SYS_DISPATCH_ON,
        start,
        len,
        selector as usize,
    ) != 0
    {
        return false;
    }
    // A thread that blocks SIGSYS would be killed by its first trap.
    let unblock = SIGSYS_BIT;
    unsafe {
        sys::syscall6(
            libc::SYS_rt_sigprocmask,
            libc::SIG_UNBLOCK as usize,
            &unblock as *const u64 as usize,
            0,
            8,
            0,
            0,
        )
    };
    true
}

/// Switch dispatch off for the calling thread (it is exiting).
pub fn disable_for_thread() {
    prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_OFF, 0, 0, 0);
}

// ---- the SIGSYS handler ----

extern "C" fn on_sigsys(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let saved_errno = sys::errno();
    unsafe {
        if (*info).si_code != SYS_USER_DISPATCH {
            forward_to_program(sig, info, ctx);
        } else {
            dispatch(&mut *(ctx as *mut libc::ucontext_t));
        }
    }
    sys::set_errno(saved_errno);
}

unsafe fn dispatch(uc: &mut libc::ucontext_t) {
    let g = &mut uc.uc_mcontext.gregs;
    let nr = g[libc::REG_RAX as usize];
    let a = [
        g[libc::REG_RDI as usize] as usize,
        g[libc::REG_RSI as usize] as usize,
        g[libc::REG_RDX as usize] as usize,
        g[libc::REG_R10 as usize] as usize,
        g[libc::REG_R8 as usize] as usize,
        g[libc::REG_R9 as usize] as usize,
    ];
    let r = match nr {
        libc::SYS_rt_sigreturn => {
            // A program handler returning through libc's restorer: run the
            // same rt_sigreturn again from the allowed range, same stack.
            g[libc::REG_RIP as usize] = sys::lwkt_sigreturn_again as *const () as i64;
            return;
        }
        libc::SYS_rt_sigprocmask => sigprocmask_on_context(uc, a),
        libc::SYS_rt_sigaction if a[0] as c_int == libc::SIGSYS => program_rt_sigaction(a),
        libc::SYS_clone | libc::SYS_clone3 | libc::SYS_vfork | libc::SYS_fork => {
            clone_call(uc, nr, a)
        }
        _ => run(nr, a),
    };
    uc.uc_mcontext.gregs[libc::REG_RAX as usize] = r as i64;
}

/// A SIGSYS that is not ours (seccomp, or raised by hand): to the
/// program's handler, or the default action.
unsafe fn forward_to_program(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let h = PROGRAM_SIGSYS.load(Acquire);
    if h == libc::SIG_IGN {
        return;
    }
    if h == libc::SIG_DFL {
        // Let the default action (core dump) happen when we return.
        let dfl = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        sys::syscall6(
            libc::SYS_rt_sigaction,
            sig as usize,
            &dfl as *const _ as usize,
            0,
            8,
            0,
            0,
        );
        sys::syscall3(
            libc::SYS_tgkill,
            sys::getpid() as usize,
            sys::gettid() as usize,
            sig as usize,
        );
        return;
    }
    if PROGRAM_SIGSYS_FLAGS.load(Relaxed) & libc::SA_SIGINFO as u64 != 0 {
        let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void) = core::mem::transmute(h);
        f(sig, info, ctx);
    } else {
        let f: extern "C" fn(c_int) = core::mem::transmute(h);
        f(sig);
    }
}

/// `rt_sigaction(SIGSYS)` made inside libc (sigset, sysv_signal, its own
/// sigaction) while the thread holds a token: remember it for the program,
/// keep ours installed.
unsafe fn program_rt_sigaction(a: [usize; 6]) -> isize {
    let (act, old, size) = (
        a[1] as *const KernelSigaction,
        a[2] as *mut KernelSigaction,
        a[3],
    );
    if size != 8 {
        return -(libc::EINVAL as isize);
    }
    if !old.is_null() {
        old.write(KernelSigaction {
            handler: PROGRAM_SIGSYS.load(Acquire),
            flags: PROGRAM_SIGSYS_FLAGS.load(Relaxed),
            restorer: 0,
            mask: 0,
        });
    }
    if !act.is_null() {
        PROGRAM_SIGSYS_FLAGS.store((*act).flags, Relaxed);
        PROGRAM_SIGSYS.store((*act).handler, Release);
    }
    0
}

/// `rt_sigprocmask` from inside the handler would be undone by its return:
/// apply it to the mask the handler returns to. SIGSYS stays unblocked.
unsafe fn sigprocmask_on_context(uc: &mut libc::ucontext_t, a: [usize; 6]) -> isize {
    let (how, set, old, size) = (a[0] as c_int, a[1] as *const u64, a[2] as *mut u64, a[3]);
    if size != 8 {
        return -(libc::EINVAL as isize);
    }
    let mask = &mut uc.uc_sigmask as *mut libc::sigset_t as *mut u64;
    let current = *mask;
    if !set.is_null() {
        let s = *set;
        let new = match how {
            libc::SIG_BLOCK => current | s,
            libc::SIG_UNBLOCK => current & !s,
            libc::SIG_SETMASK => s,
            _ => return -(libc::EINVAL as isize),
        };
        *mask = new & !SIGSYS_BIT;
    }
    if !old.is_null() {
        *old = current;
    }
    0
}

/// The register block the clone landing pad loads (sys.rs): the
/// interrupted context's registers, and the child's stack pointer.
#[repr(C)]
struct ChildRegs {
    r8: u64,
    r9: u64,
    r10: u64,
    r11: u64,
    r12: u64,
    r13: u64,
    r14: u64,
    r15: u64,
    rdi: u64,
    rsi: u64,
    rbp: u64,
    rbx: u64,
    rdx: u64,
    rcx: u64,
    /// The child's stack pointer minus 8, where its return address is.
    ret_sp: u64,
}

/// clone, clone3, vfork and fork, trapped while the caller holds tokens.
/// A child must never resume inside this handler on a shared stack:
/// * a child with its own stack (threads, posix_spawn) starts on the
///   landing pad, which loads the interrupted registers and returns
///   straight into the program;
/// * a child without one gets its own copy of memory (fork semantics; a
///   vfork becomes a fork whose parent still waits for the exec), so it can
///   return through the handler.
unsafe fn clone_call(uc: &libc::ucontext_t, nr: i64, a: [usize; 6]) -> isize {
    // clone3 callers (glibc) fall back to clone when it is missing: one
    // path to get right.
    if nr == libc::SYS_clone3 {
        return -(libc::ENOSYS as isize);
    }
    let (mut flags, stack) = match nr {
        libc::SYS_clone => (a[0], a[1]),
        libc::SYS_vfork => ((libc::CLONE_VFORK | libc::SIGCHLD) as usize, 0),
        _ => (libc::SIGCHLD as usize, 0),
    };
    if stack == 0 {
        flags &= !(libc::CLONE_VM as usize);
        let (ptid, ctid, tls) = if nr == libc::SYS_clone {
            (a[2], a[3], a[4])
        } else {
            (0, 0, 0)
        };
        return sys::syscall6(libc::SYS_clone, flags, 0, ptid, ctid, tls, 0);
    }
    // The child's registers go on its own stack, below where it starts.
    let g = &uc.uc_mcontext.gregs;
    // The child must start with exactly the stack pointer it was given
    // (musl passes one 8 bytes off alignment and pops from it): its return
    // address goes just below it, the register block further down.
    let ret_sp = stack - 8;
    let block = ((stack - 512) & !15) as *mut ChildRegs;
    *(ret_sp as *mut u64) = g[libc::REG_RIP as usize] as u64;
    block.write(ChildRegs {
        r8: g[libc::REG_R8 as usize] as u64,
        r9: g[libc::REG_R9 as usize] as u64,
        r10: g[libc::REG_R10 as usize] as u64,
        r11: g[libc::REG_EFL as usize] as u64,
        r12: g[libc::REG_R12 as usize] as u64,
        r13: g[libc::REG_R13 as usize] as u64,
        r14: g[libc::REG_R14 as usize] as u64,
        r15: g[libc::REG_R15 as usize] as u64,
        rdi: g[libc::REG_RDI as usize] as u64,
        rsi: g[libc::REG_RSI as usize] as u64,
        rbp: g[libc::REG_RBP as usize] as u64,
        rbx: g[libc::REG_RBX as usize] as u64,
        rdx: g[libc::REG_RDX as usize] as u64,
        rcx: g[libc::REG_RIP as usize] as u64,
        ret_sp: ret_sp as u64,
    });
    // glibc's clone stores the start routine at the stack top and pops it
    // in the child: the child must start exactly at `stack`, which the
    // landing pad restores after returning.
    sys::lwkt_clone_tramp(
        libc::SYS_clone,
        flags,
        stack,
        a[2],
        a[3],
        a[4],
        block as *const u64,
    )
}

// ---- running a trapped call ----

/// Run the trapped system call `nr`: keep the tokens when it completes at
/// once, release them around it when it would block. Returns the kernel's
/// value (negative errno).
unsafe fn run(nr: i64, mut a: [usize; 6]) -> isize {
    // Waits that install a signal mask must not block SIGSYS with it.
    let mut mask_copy = 0u64;
    let mut pselect_arg = [0usize; 2];
    match nr {
        libc::SYS_rt_sigsuspend => a[0] = kernel_mask_without_sigsys(a[0], &mut mask_copy),
        libc::SYS_ppoll => a[3] = kernel_mask_without_sigsys(a[3], &mut mask_copy),
        libc::SYS_epoll_pwait | libc::SYS_epoll_pwait2 => {
            a[4] = kernel_mask_without_sigsys(a[4], &mut mask_copy)
        }
        libc::SYS_pselect6 if a[5] != 0 => {
            let arg = a[5] as *const [usize; 2];
            pselect_arg = [
                kernel_mask_without_sigsys((*arg)[0], &mut mask_copy),
                (*arg)[1],
            ];
            a[5] = pselect_arg.as_ptr() as usize;
        }
        _ => {}
    }
    let _ = &pselect_arg;
    let raw = |a: [usize; 6]| sys::syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    let blocking = || c_result(raw(a));
    let hook = "catch-all";
    let fd = a[0] as c_int;
    let c: isize = match nr {
        libc::SYS_read
        | libc::SYS_pread64
        | libc::SYS_readv
        | libc::SYS_preadv
        | libc::SYS_write
        | libc::SYS_pwrite64
        | libc::SYS_writev
        | libc::SYS_pwritev => {
            let vectored = matches!(
                nr,
                libc::SYS_readv | libc::SYS_preadv | libc::SYS_writev | libc::SYS_pwritev
            );
            let at_offset = matches!(
                nr,
                libc::SYS_pread64 | libc::SYS_preadv | libc::SYS_pwrite64 | libc::SYS_pwritev
            );
            let one = libc::iovec {
                iov_base: a[1] as *mut c_void,
                iov_len: a[2],
            };
            let (iov, cnt) = if vectored {
                (a[1] as *const libc::iovec, a[2] as c_int)
            } else {
                (&one as *const _, 1)
            };
            let off = if at_offset { a[3] as i64 } else { -1 };
            // The same call again, on (part of) the caller's buffers.
            let again = |v: *const libc::iovec, c: c_int, o: i64| {
                let (buf, len) = if vectored {
                    (v as usize, c as usize)
                } else {
                    ((*v).iov_base as usize, (*v).iov_len)
                };
                c_result(raw([a[0], buf, len, o as usize, 0, 0]))
            };
            // A negative offset: EINVAL at once (see fdio's AT_POSITION).
            if at_offset && off < 0 {
                return raw(a);
            }
            if matches!(
                nr,
                libc::SYS_read | libc::SYS_pread64 | libc::SYS_readv | libc::SYS_preadv
            ) {
                fdio::read_family(hook, fd, iov, cnt, off, again)
            } else {
                // The rest of a write to a stream socket (see write_family).
                let send = |v: *const libc::iovec, c: c_int| {
                    let mut m: libc::msghdr = core::mem::zeroed();
                    m.msg_iov = v as *mut _;
                    m.msg_iovlen = c as usize;
                    let flags = libc::MSG_NOSIGNAL as usize;
                    c_result(sys::syscall3(
                        libc::SYS_sendmsg,
                        a[0],
                        &m as *const _ as usize,
                        flags,
                    ))
                };
                fdio::write_family(hook, fd, iov, cnt, off, again, send)
            }
        }
        libc::SYS_recvfrom | libc::SYS_recvmsg => {
            let flags = if nr == libc::SYS_recvfrom { a[3] } else { a[2] } as c_int;
            if flags & libc::MSG_DONTWAIT != 0 {
                return raw(a);
            }
            let probe = |fl: c_int| {
                let mut b = a;
                b[if nr == libc::SYS_recvfrom { 3 } else { 2 }] = fl as usize;
                raw(b)
            };
            net::receive(hook, fd, flags, probe, blocking)
        }
        libc::SYS_sendto => {
            let flags = a[3] as c_int;
            if flags & libc::MSG_DONTWAIT != 0 {
                return raw(a);
            }
            let probe = || {
                raw([
                    a[0],
                    a[1],
                    a[2],
                    (flags | libc::MSG_DONTWAIT) as usize,
                    a[4],
                    a[5],
                ])
            };
            let rest = |from: usize, to: usize| {
                let fl = net::rest_flags(flags) as usize;
                raw([a[0], a[1] + from, to - from, fl, a[4], a[5]]).max(0) as usize
            };
            let request = || a[2].min(hooks::MAX_RW_COUNT);
            net::transmit(hook, fd, probe, request, blocking, rest)
        }
        libc::SYS_sendmsg => {
            let flags = a[2] as c_int;
            let msg = a[1] as *const libc::msghdr;
            if flags & libc::MSG_DONTWAIT != 0 || msg.is_null() {
                return raw(a);
            }
            let probe = || raw([a[0], a[1], (flags | libc::MSG_DONTWAIT) as usize, 0, 0, 0]);
            // `msg` is read only after the kernel accepted it.
            let request = || hooks::iov_request((*msg).msg_iov, (*msg).msg_iovlen);
            let rest = |from: usize, to: usize| {
                let fl = net::rest_flags(flags) as usize;
                net::send_span(&*msg, from, to, |part| {
                    raw([a[0], part as *const _ as usize, fl, 0, 0, 0])
                })
            };
            net::transmit(hook, fd, probe, request, blocking, rest)
        }
        libc::SYS_accept | libc::SYS_accept4 | libc::SYS_connect => {
            if hooks::nonblocking(fd) {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_nanosleep => {
            if hooks::is_zero_ts(a[0] as *const libc::timespec) {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_clock_nanosleep => {
            let ts = a[2] as *const libc::timespec;
            if hooks::is_zero_ts(ts)
                || (a[1] as c_int & libc::TIMER_ABSTIME != 0
                    && process::deadline_passed(a[0] as libc::clockid_t, ts))
            {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_poll => {
            if a[2] as c_int == 0 {
                return raw(a);
            }
            waiters::after_probe(hook, raw([a[0], a[1], 0, 0, 0, 0]), || blocking() as c_int)
                as isize
        }
        libc::SYS_ppoll | libc::SYS_epoll_pwait2 => {
            let ts_arg = if nr == libc::SYS_ppoll { 2 } else { 3 };
            if hooks::is_zero_ts(a[ts_arg] as *const libc::timespec) {
                return raw(a);
            }
            let zero = ZERO_TS;
            let mut b = a;
            b[ts_arg] = &zero as *const _ as usize;
            waiters::after_probe(hook, raw(b), || blocking() as c_int) as isize
        }
        libc::SYS_epoll_wait | libc::SYS_epoll_pwait => {
            if a[3] as c_int == 0 {
                return raw(a);
            }
            let mut b = a;
            b[3] = 0;
            waiters::after_probe(hook, raw(b), || blocking() as c_int) as isize
        }
        libc::SYS_select | libc::SYS_pselect6 => {
            let ts = a[4];
            let zero = if nr == libc::SYS_select {
                ts != 0
                    && (*(ts as *const libc::timeval)).tv_sec == 0
                    && (*(ts as *const libc::timeval)).tv_usec == 0
            } else {
                hooks::is_zero_ts(ts as *const libc::timespec)
            };
            if zero {
                return raw(a);
            }
            let sets = [
                a[1] as *mut libc::fd_set,
                a[2] as *mut libc::fd_set,
                a[3] as *mut libc::fd_set,
            ];
            let saved = waiters::SavedSets::save(sets);
            let mask = if nr == libc::SYS_pselect6 && a[5] != 0 {
                *(a[5] as *const *const libc::sigset_t)
            } else {
                core::ptr::null()
            };
            let r = waiters::select_probe(a[0] as c_int, sets, mask);
            if r == 0 {
                saved.restore(sets);
            }
            waiters::after_probe(hook, r, || blocking() as c_int) as isize
        }
        libc::SYS_wait4 => {
            let args = (
                a[0] as libc::pid_t,
                a[1] as *mut c_int,
                a[2] as c_int,
                a[3] as *mut libc::rusage,
            );
            process::wait_family(hook, args, || blocking() as libc::pid_t) as isize
        }
        libc::SYS_waitid => {
            let info = a[2] as *mut libc::siginfo_t;
            if a[3] as c_int & libc::WNOHANG != 0 || info.is_null() {
                return raw(a);
            }
            let r = raw([a[0], a[1], a[2], a[3] | libc::WNOHANG as usize, a[4], 0]);
            if r != 0 || (*info).si_pid() != 0 {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_rt_sigtimedwait => {
            if hooks::is_zero_ts(a[2] as *const libc::timespec) {
                return raw(a);
            }
            let r = process::sigtimedwait_probe(
                a[0] as *const libc::sigset_t,
                a[1] as *mut libc::siginfo_t,
            );
            if r > 0 {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_flock => {
            let op = a[1] as c_int;
            if op & (libc::LOCK_NB | libc::LOCK_UN) != 0 {
                return raw(a);
            }
            let r = raw([a[0], (op | libc::LOCK_NB) as usize, 0, 0, 0, 0]);
            if r != -(libc::EWOULDBLOCK as isize) {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_fcntl => {
            let try_cmd = match a[1] as c_int {
                libc::F_SETLKW => libc::F_SETLK,
                libc::F_OFD_SETLKW => libc::F_OFD_SETLK,
                _ => return raw(a),
            };
            let r = raw([a[0], try_cmd as usize, a[2], 0, 0, 0]);
            if r != -(libc::EAGAIN as isize) && r != -(libc::EACCES as isize) {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_msgrcv | libc::SYS_msgsnd => {
            let flag_arg = if nr == libc::SYS_msgrcv { 4 } else { 3 };
            if a[flag_arg] as c_int & libc::IPC_NOWAIT != 0 {
                return raw(a);
            }
            let mut b = a;
            b[flag_arg] |= libc::IPC_NOWAIT as usize;
            let r = raw(b);
            let would_wait = if nr == libc::SYS_msgrcv {
                libc::ENOMSG
            } else {
                libc::EAGAIN
            };
            if r != -(would_wait as isize) {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_mq_timedreceive | libc::SYS_mq_timedsend => {
            let past = ZERO_TS;
            let r = raw([a[0], a[1], a[2], a[3], &past as *const _ as usize, 0]);
            if r != process::WOULD_WAIT {
                return r;
            }
            released(hook, blocking)
        }
        libc::SYS_openat | libc::SYS_open => {
            let (dirfd, path, flags) = if nr == libc::SYS_openat {
                (a[0] as c_int, a[1] as *const libc::c_char, a[2] as c_int)
            } else {
                (libc::AT_FDCWD, a[0] as *const libc::c_char, a[1] as c_int)
            };
            if !fdio::is_waiting_fifo(dirfd, path, flags) {
                return raw(a);
            }
            fdio::fifo_open(hook, dirfd, path, flags, || blocking() as c_int) as isize
        }
        libc::SYS_futex => {
            if !process::syscall_blocks(nr, a[0] as i64, a[1] as i64, a[2] as i64) {
                return raw(a);
            }
            released(hook, blocking)
        }
        libc::SYS_futex_waitv
        | libc::SYS_pause
        | libc::SYS_rt_sigsuspend
        | libc::SYS_fsync
        | libc::SYS_fdatasync
        | libc::SYS_sync
        | libc::SYS_syncfs
        | libc::SYS_sync_file_range
        | libc::SYS_preadv2
        | libc::SYS_pwritev2
        | libc::SYS_recvmmsg
        | libc::SYS_sendmmsg => released(hook, blocking),
        _ => return raw(a),
    };
    if c == -1 {
        -(sys::errno() as isize)
    } else {
        c
    }
}

// ---- the program's own signal calls ----

/// `sigaction(SIGSYS, ...)` from the program while the catch-all is on:
/// remember its handler (it gets the SIGSYS that are not ours) instead of
/// replacing ours. Returns true when handled here.
pub unsafe fn program_sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> bool {
    if sig != libc::SIGSYS || !on() {
        return false;
    }
    if !old.is_null() {
        core::ptr::write_bytes(old, 0, 1);
        (*old).sa_sigaction = PROGRAM_SIGSYS.load(Acquire);
        (*old).sa_flags = PROGRAM_SIGSYS_FLAGS.load(Relaxed) as c_int;
    }
    if !act.is_null() {
        PROGRAM_SIGSYS_FLAGS.store((*act).sa_flags as u64, Relaxed);
        PROGRAM_SIGSYS.store((*act).sa_sigaction, Release);
    }
    true
}

/// A kernel signal mask (8 bytes) that a trapped wait installs while it
/// waits, without SIGSYS: `copy` holds it.
unsafe fn kernel_mask_without_sigsys(mask: usize, copy: &mut u64) -> usize {
    if mask == 0 {
        return 0;
    }
    *copy = *(mask as *const u64) & !SIGSYS_BIT;
    copy as *mut u64 as usize
}

/// A signal mask the program asks for, without SIGSYS while the
/// catch-all needs it.
pub unsafe fn without_sigsys(
    set: *const libc::sigset_t,
    copy: &mut libc::sigset_t,
) -> *const libc::sigset_t {
    if set.is_null() || !on() || libc::sigismember(set, libc::SIGSYS) != 1 {
        return set;
    }
    *copy = *set;
    libc::sigdelset(copy, libc::SIGSYS);
    copy
}
