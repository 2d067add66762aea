//! What the probes need to know of a file descriptor, asked of the kernel
//! through the raw stub: is it non-blocking, is it a socket, and would a
//! blocking call on it have gone on after a short transfer.

use crate::sys;

/// `fstat(fd)` through the raw stub; None when it fails.
fn fstat(fd: i32) -> Option<libc::stat> {
    // SAFETY: a stat struct is plain data, valid when zero-filled.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: the kernel writes one stat struct to `st`, which is ours.
    let r = unsafe { sys::syscall3(libc::SYS_fstat, fd as usize, &mut st as *mut _ as usize, 0) };
    (r == 0).then_some(st)
}

/// Is `fd` in non-blocking mode? (`F_GETFL`.)
pub fn nonblocking(fd: i32) -> bool {
    // SAFETY: F_GETFL reads no memory of ours.
    let fl = unsafe { sys::syscall3(libc::SYS_fcntl, fd as usize, libc::F_GETFL as usize, 0) };
    fl >= 0 && fl as i32 & libc::O_NONBLOCK != 0
}

/// After a short non-blocking read of `n` bytes at `off` (-1: the file
/// position): is there more of a disk file (regular file or block device)
/// that the blocking read would go on to fetch? Not at the end of the file,
/// and not for pipes, sockets or terminals, where short is final.
pub fn more_on_disk(fd: i32, off: i64, n: isize) -> bool {
    let Some(st) = fstat(fd) else {
        return false;
    };
    let fmt = st.st_mode & libc::S_IFMT;
    if fmt == libc::S_IFBLK {
        return true;
    }
    if fmt != libc::S_IFREG {
        return false;
    }
    let pos = if off >= 0 {
        off + n as i64
    } else {
        // SAFETY: lseek reads no memory of ours.
        unsafe { sys::syscall3(libc::SYS_lseek, fd as usize, 0, libc::SEEK_CUR as usize) as i64 }
    };
    pos >= 0 && pos < st.st_size
}

/// After a blocking send or write moved part of its data without waiting,
/// would the blocking call have gone on with the rest? Yes for pipes,
/// files, terminals and stream sockets; never for a socket of messages
/// (datagram, seqpacket): one message is never split.
pub fn continues_after_part(fd: i32) -> bool {
    let Some(st) = fstat(fd) else {
        return false;
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return true;
    }
    let mut ty: i32 = 0;
    let mut len = core::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes to `ty` and the length
    // to `len`, both ours.
    let r = unsafe {
        sys::syscall6(
            libc::SYS_getsockopt,
            fd as usize,
            libc::SOL_SOCKET as usize,
            libc::SO_TYPE as usize,
            &mut ty as *mut i32 as usize,
            &mut len as *mut libc::socklen_t as usize,
            0,
        )
    };
    r == 0 && ty == libc::SOCK_STREAM
}

/// Is `fd` a socket? (A stream socket's continued send must not raise the
/// SIGPIPE that the one blocking call, having sent part, would not.)
pub fn is_socket(fd: i32) -> bool {
    fstat(fd).is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}
