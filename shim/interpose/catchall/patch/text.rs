//! libc's executable text: where it is, whether it may be rewritten now,
//! and rewriting it.

use core::ffi::{c_int, c_void};

use crate::sys;

/// libc's executable segment: its start and length.
pub(super) fn libc_text() -> Option<(u64, usize)> {
    struct Find {
        inside: u64,
        found: Option<(u64, usize)>,
    }
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _: usize, data: *mut c_void) -> c_int {
        // SAFETY: dl_iterate_phdr passes its record and our `Find`.
        let (info, find) = unsafe { (&*info, &mut *(data as *mut Find)) };
        for i in 0..info.dlpi_phnum as usize {
            // SAFETY: dlpi_phnum program headers at dlpi_phdr.
            let ph = unsafe { &*info.dlpi_phdr.add(i) };
            if ph.p_type != libc::PT_LOAD || ph.p_flags & libc::PF_X == 0 {
                continue;
            }
            let start = info.dlpi_addr + ph.p_vaddr;
            if (start..start + ph.p_memsz).contains(&find.inside) {
                find.found = Some((start, ph.p_memsz as usize));
                return 1;
            }
        }
        0
    }
    // A function only libc defines (the shim hooks none of getppid).
    let mut find = Find {
        inside: libc::getppid as *const () as u64,
        found: None,
    };
    // SAFETY: the callback reads the loader's records and writes `find`.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut find as *mut Find as *mut c_void) };
    find.found
}

/// Is the calling thread the process's only one? Asked of /proc (no
/// answer: not known to be, so no).
pub(super) fn single_threaded() -> bool {
    let mut buf = [0u8; 512];
    let path = c"/proc/self/stat";
    let flags = (libc::O_RDONLY | libc::O_CLOEXEC) as usize;
    // SAFETY: a NUL-terminated path; `buf` is ours to fill; the descriptor
    // is ours.
    let n = unsafe {
        let fd = sys::syscall3(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            path.as_ptr() as usize,
            flags,
        );
        if fd < 0 {
            return false;
        }
        let n = sys::syscall3(
            libc::SYS_read,
            fd as usize,
            buf.as_mut_ptr() as usize,
            buf.len(),
        );
        sys::syscall3(libc::SYS_close, fd as usize, 0, 0);
        n
    };
    if n <= 0 {
        return false;
    }
    let stat = &buf[..n as usize];
    // After the command name (which may hold anything, up to the last
    // ')'): the fields from the third on; num_threads is the 20th.
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    let field = stat[close + 1..]
        .split(|&b| b == b' ')
        .filter(|f| !f.is_empty())
        .nth(20 - 3);
    field == Some(b"1")
}

/// Make `[start, start + len)` writable (and still executable), run `f`,
/// make it read-only and executable again. False when the system refuses
/// writable code (a W^X policy): nothing was changed then.
pub(super) fn while_writable(start: u64, len: usize, f: impl FnOnce()) -> bool {
    let page = start & !0xfff;
    let len = (start + len as u64).next_multiple_of(4096) - page;
    let rwx = libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC;
    // SAFETY: libc's own text pages; only this thread runs, and the code
    // changing them is ours, not libc's.
    if unsafe { mprotect(page, len, rwx) } != 0 {
        return false;
    }
    f();
    // SAFETY: as above.
    unsafe { mprotect(page, len, libc::PROT_READ | libc::PROT_EXEC) };
    true
}

/// # Safety
///
/// `[page, page + len)` is ours to change the protection of.
unsafe fn mprotect(page: u64, len: u64, prot: c_int) -> isize {
    // SAFETY: the caller's contract.
    unsafe {
        sys::syscall3(
            libc::SYS_mprotect,
            page as usize,
            len as usize,
            prot as usize,
        )
    }
}

/// Since glibc 2.41 a thread's cancellation signal acts only when the
/// thread was interrupted between two labels of `__syscall_cancel_arch`
/// (before its `syscall` ran, or in it): that `syscall` must stay where it
/// is. Its range (the function's first 128 bytes, more than it has) on
/// such a glibc; an error when it cannot be found there (nothing is
/// rewritten then).
pub(super) fn cancellation_range() -> Result<Option<core::ops::Range<u64>>, &'static str> {
    // SAFETY: a static NUL-terminated string of glibc's.
    let v = unsafe { core::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
    let mut parts = v.to_bytes().split(|&b| b == b'.').map(|p| {
        p.iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0u32, |n, d| n * 10 + (d - b'0') as u32)
    });
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (2, 41) {
        return Ok(None);
    }
    // SAFETY: a NUL-terminated name; dlsym only looks it up.
    let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"__syscall_cancel_arch".as_ptr()) };
    if f.is_null() {
        return Err(
            "glibc 2.41 or later, whose cancellation checks where its system calls run, \
                    and its __syscall_cancel_arch was not found",
        );
    }
    Ok(Some(f as u64..f as u64 + 128))
}
