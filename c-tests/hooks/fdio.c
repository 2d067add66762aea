/*
 * hooks/fdio.c: read, readv, pread, preadv, write, writev, pwrite, pwritev,
 * open/openat of a FIFO, fsync, fdatasync (SPEC section 4).
 *
 * Pipes block for as long as a test likes: a read of an empty pipe, a write
 * to a full one, the open of a FIFO with no partner. Positional I/O needs a
 * seekable file, and no seekable file blocks on demand: pread and preadv
 * are shown to release on a page evicted from the page cache (the read must
 * wait for the disk) and to keep the tokens on a cached page when the
 * kernel's RWF_NOWAIT probe works here; pwrite and pwritev are checked for
 * their result and the tokens on return. fsync and fdatasync of dirty data
 * cannot be known not to block: they release.
 */
#include "hook_util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

static char dir[64]; /* this process's scratch directory */

/* --- pipes ---------------------------------------------------------------- */

static void setup_pipe(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
}

/* A pipe whose one page of capacity is full: a blocking write waits. */
static void setup_full_pipe(hk_t *h) {
    setup_pipe(h);
    HCHECK(h, fcntl(h->fd[1], F_SETPIPE_SZ, 4096) > 0);
    HCHECK_EQ(h, fcntl(h->fd[1], F_SETFL, O_NONBLOCK), 0);
    char junk[4096];
    memset(junk, 'j', sizeof junk);
    long filled = 0;
    for (;;) {
        ssize_t r = write(h->fd[1], junk, sizeof junk);
        if (r < 0) {
            HCHECK_EQ(h, errno, EAGAIN);
            break;
        }
        filled += r;
    }
    HCHECK(h, filled > 0);
    h->v[0] = filled;
    HCHECK_EQ(h, fcntl(h->fd[1], F_SETFL, 0), 0);
}

static void setup_pipe_with_data(hk_t *h) {
    setup_pipe(h);
    HCHECK_EQ(h, write(h->fd[1], "hello", 5), 5);
}

static void setup_nonblocking_empty_pipe(hk_t *h) {
    setup_pipe(h);
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
}

static void setup_nonblocking_full_pipe(hk_t *h) {
    setup_full_pipe(h);
    HCHECK_EQ(h, fcntl(h->fd[1], F_SETFL, O_NONBLOCK), 0);
}

static void setup_pipe_at_eof(hk_t *h) {
    setup_pipe(h);
    close(h->fd[1]);
    h->fd[1] = -1;
}

static void write_hello(hk_t *h) { hk_write_all(h, h->fd[1], "hello", 5); }

/* Drain what setup_full_pipe put in (not what the holder writes after). */
static void drain_filler(hk_t *h) {
    char junk[4096];
    long left = h->v[0];
    while (left > 0) {
        ssize_t r = read(h->fd[0], junk, left < 4096 ? left : 4096);
        HCHECK(h, r > 0);
        left -= r;
    }
}

static long read_call(hk_t *h) { return read(h->fd[0], h->buf, sizeof h->buf); }
static void check_hello(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "hello", 5) == 0);
}

static long readv_call(hk_t *h) {
    struct iovec iov[2] = {{h->buf, 2}, {h->buf + 100, 50}};
    return readv(h->fd[0], iov, 2);
}
static void check_hello_v(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "he", 2) == 0);
    HCHECK(h, memcmp(h->buf + 100, "llo", 3) == 0);
}

static long write_call(hk_t *h) { return write(h->fd[1], "wxyz", 4); }
static long writev_call(hk_t *h) {
    struct iovec iov[2] = {{(void *)"wx", 2}, {(void *)"yz", 2}};
    return writev(h->fd[1], iov, 2);
}
/* The holder's four bytes arrived after the filler (drained by the
 * helper, or still there in a case without one). */
static void check_wxyz_after(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 4);
    HCHECK_EQ(h, err, HK_SENTINEL);
    char b[4];
    HCHECK_EQ(h, fcntl(h->fd[0], F_SETFL, O_NONBLOCK), 0);
    HCHECK_EQ(h, read(h->fd[0], b, 4), 4);
    HCHECK(h, memcmp(b, "wxyz", 4) == 0);
    HCHECK_EQ(h, read(h->fd[0], b, 4), -1);
}

static void check_eagain(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EAGAIN);
}

static long read_bad_fd(hk_t *h) {
    (void)h;
    return read(-1, (char[4]){0}, 4);
}
static long pread_pipe(hk_t *h) { return pread(h->fd[0], h->buf, 4, 0); }

/* --- regular files -------------------------------------------------------- */

static void setup_file(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/file", dir);
    h->fd[0] = open(h->path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    HCHECK(h, h->fd[0] >= 0);
    char block[4096];
    for (int i = 0; i < 4096; i++)
        block[i] = (char)('a' + i % 26);
    for (int i = 0; i < 16; i++)
        HCHECK_EQ(h, write(h->fd[0], block, sizeof block), (long)sizeof block);
}
static void cleanup_file(hk_t *h) {
    hk_close_fds(h);
    unlink(h->path);
}

/* Is the page at `off` in the page cache? -1: cannot tell. */
static int resident(int fd, off_t off) {
    void *m = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, off);
    if (m == MAP_FAILED)
        return -1;
    unsigned char v = 0;
    int r = mincore(m, 4096, &v);
    munmap(m, 4096);
    return r == 0 ? (v & 1) : -1;
}

/* A cached file where the RWF_NOWAIT probe can tell that a read will not
 * block; elsewhere (no RWF_NOWAIT on this file system) the hook must
 * assume it may. */
static void setup_cached_file(hk_t *h) {
    setup_file(h);
    char b[8];
    ssize_t r = preadv2(h->fd[0], &(struct iovec){b, 8}, 1, 4096, RWF_NOWAIT);
    if (r != 8)
        hk_lower_to_any(h, "preadv2(RWF_NOWAIT) does not work on this file system");
    else if (resident(h->fd[0], 4096) != 1)
        hk_lower_to_any(h, "cannot see the page in the page cache");
}

/* A file whose pages are not in the page cache: a read waits for the disk. */
static void setup_evicted_file(hk_t *h) {
    setup_file(h);
    HCHECK_EQ(h, fdatasync(h->fd[0]), 0);
    HCHECK_EQ(h, posix_fadvise(h->fd[0], 0, 0, POSIX_FADV_DONTNEED), 0);
    if (resident(h->fd[0], 4096) != 0)
        hk_lower_to_any(h, "this file system keeps the page cached (tmpfs?)");
}

static long pread_call(hk_t *h) { return pread(h->fd[0], h->buf, 10, 4096 + 3); }
static void check_file_data(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 10);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "defghijklm", 10) == 0);
}
static long preadv_call(hk_t *h) {
    struct iovec iov[2] = {{h->buf, 4}, {h->buf + 4, 6}};
    return preadv(h->fd[0], iov, 2, 4096 + 3);
}
static long read_file_call(hk_t *h) {
    HCHECK_EQ(h, lseek(h->fd[0], 4096 + 3, SEEK_SET), 4096 + 3);
    return read(h->fd[0], h->buf, 10);
}
static long pread_eof(hk_t *h) { return pread(h->fd[0], h->buf, 10, 1 << 20); }

static long pwrite_call(hk_t *h) { return pwrite(h->fd[0], "PWRITE", 6, 100); }
static long pwritev_call(hk_t *h) {
    struct iovec iov[2] = {{(void *)"PWR", 3}, {(void *)"ITE", 3}};
    return pwritev(h->fd[0], iov, 2, 100);
}
static void check_pwrite(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 6);
    HCHECK_EQ(h, err, HK_SENTINEL);
    char b[8];
    HCHECK_EQ(h, pread(h->fd[0], b, 8, 99), 8);
    HCHECK(h, memcmp(b, "vPWRITEc", 8) == 0);
}
static long pwrite_bad_fd(hk_t *h) {
    (void)h;
    return pwrite(-1, "x", 1, 0);
}

static long fsync_call(hk_t *h) {
    return fsync(h->fd[0]);
}
static long fdatasync_call(hk_t *h) { return fdatasync(h->fd[0]); }
static long fsync_pipe(hk_t *h) { return fsync(h->fd[0]); }
static long fdatasync_bad_fd(hk_t *h) {
    (void)h;
    return fdatasync(-1);
}

/* --- FIFOs ------------------------------------------------------------------ */

static void setup_fifo(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/fifo", dir);
    unlink(h->path);
    HCHECK_EQ(h, mkfifo(h->path, 0600), 0);
}
static void cleanup_fifo(hk_t *h) {
    hk_close_fds(h);
    unlink(h->path);
}
static void open_writer(hk_t *h) {
    h->fd[1] = open(h->path, O_WRONLY);
    HCHECK(h, h->fd[1] >= 0);
}
static void open_reader(hk_t *h) {
    h->fd[1] = open(h->path, O_RDONLY);
    HCHECK(h, h->fd[1] >= 0);
}
/* The holder's descriptor: valid, with the access mode asked for. */
static void check_fd(hk_t *h, long ret, int err, int mode) {
    HCHECK(h, ret >= 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    h->fd[0] = (int)ret;
    HCHECK_EQ(h, fcntl((int)ret, F_GETFL) & O_ACCMODE, mode);
}
static void check_rd(hk_t *h, long ret, int err) { check_fd(h, ret, err, O_RDONLY); }
static void check_wr(hk_t *h, long ret, int err) { check_fd(h, ret, err, O_WRONLY); }
static void check_rdwr(hk_t *h, long ret, int err) { check_fd(h, ret, err, O_RDWR); }

static long open_fifo_rd(hk_t *h) { return open(h->path, O_RDONLY); }
static long open_fifo_wr(hk_t *h) { return open(h->path, O_WRONLY); }
static long openat_fifo_rd(hk_t *h) {
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    HCHECK(h, d >= 0);
    h->fd[2] = d;
    return openat(d, "fifo", O_RDONLY);
}
static long openat_fifo_wr(hk_t *h) { return openat(AT_FDCWD, h->path, O_WRONLY); }
static long open_fifo_rd_nonblock(hk_t *h) { return open(h->path, O_RDONLY | O_NONBLOCK); }
static long open_fifo_rdwr(hk_t *h) { return open(h->path, O_RDWR); }

static void setup_fifo_with_reader(hk_t *h) {
    setup_fifo(h);
    h->fd[1] = open(h->path, O_RDONLY | O_NONBLOCK);
    HCHECK(h, h->fd[1] >= 0);
}
static void setup_fifo_with_writer(hk_t *h) {
    setup_fifo(h);
    h->fd[1] = open(h->path, O_RDWR); /* a reader and a writer */
    HCHECK(h, h->fd[1] >= 0);
}

static void setup_created_path(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/created", dir);
    unlink(h->path);
}
static long open_creat(hk_t *h) { return open(h->path, O_RDWR | O_CREAT | O_EXCL, 0640); }
static long openat_creat(hk_t *h) {
    return openat(AT_FDCWD, h->path, O_WRONLY | O_CREAT | O_EXCL, 0604);
}
static void check_created(hk_t *h, long ret, int err, int mode, int acc) {
    check_fd(h, ret, err, acc);
    struct stat st;
    HCHECK_EQ(h, fstat((int)ret, &st), 0);
    HCHECK(h, S_ISREG(st.st_mode));
    HCHECK_EQ(h, st.st_mode & 0777, mode); /* umask is 0 here */
}
static void check_created_640(hk_t *h, long ret, int err) {
    check_created(h, ret, err, 0640, O_RDWR);
}
static void check_created_604(hk_t *h, long ret, int err) {
    check_created(h, ret, err, 0604, O_WRONLY);
}
static long open_enoent(hk_t *h) {
    snprintf(h->path, sizeof h->path, "%s/missing", dir);
    return open(h->path, O_RDONLY);
}

static const struct hk_case cases[] = {
    /* Pipes. */
    {"read of an empty pipe", HK_BLOCK, .setup = setup_pipe, .call = read_call,
     .unblock = write_hello, .check = check_hello, .cleanup = hk_close_fds},
    {"readv of an empty pipe", HK_BLOCK, .setup = setup_pipe, .call = readv_call,
     .unblock = write_hello, .check = check_hello_v, .cleanup = hk_close_fds},
    {"write to a full pipe", HK_BLOCK, .setup = setup_full_pipe, .call = write_call,
     .unblock = drain_filler, .check = check_wxyz_after, .cleanup = hk_close_fds},
    {"writev to a full pipe", HK_BLOCK, .setup = setup_full_pipe, .call = writev_call,
     .unblock = drain_filler, .check = check_wxyz_after, .cleanup = hk_close_fds},

    {"read with data ready", HK_KEPT, .setup = setup_pipe_with_data, .call = read_call,
     .check = check_hello, .cleanup = hk_close_fds},
    {"readv with data ready", HK_KEPT, .setup = setup_pipe_with_data, .call = readv_call,
     .check = check_hello_v, .cleanup = hk_close_fds},
    {"read at end of file", HK_KEPT, .setup = setup_pipe_at_eof, .call = read_call, .want = 0,
     .cleanup = hk_close_fds},
    {"read of an empty O_NONBLOCK pipe", HK_KEPT, .setup = setup_nonblocking_empty_pipe,
     .call = read_call, .check = check_eagain, .cleanup = hk_close_fds},
    {"write with room", HK_KEPT, .setup = setup_pipe, .call = write_call,
     .check = check_wxyz_after, .cleanup = hk_close_fds},
    {"writev with room", HK_KEPT, .setup = setup_pipe, .call = writev_call,
     .check = check_wxyz_after, .cleanup = hk_close_fds},
    {"write to a full O_NONBLOCK pipe", HK_KEPT, .setup = setup_nonblocking_full_pipe,
     .call = write_call, .check = check_eagain, .cleanup = hk_close_fds},
    {"read EBADF", HK_ANY, .call = read_bad_fd, .want = -1, .err = EBADF},
    {"pread of a pipe ESPIPE", HK_ANY, .setup = setup_pipe, .call = pread_pipe, .want = -1,
     .err = ESPIPE, .cleanup = hk_close_fds},

    /* Regular files. */
    {"pread of an evicted page", HK_TIMED, .setup = setup_evicted_file, .call = pread_call,
     .check = check_file_data, .cleanup = cleanup_file},
    {"preadv of an evicted page", HK_TIMED, .setup = setup_evicted_file, .call = preadv_call,
     .check = check_file_data, .cleanup = cleanup_file},
    {"read of an evicted page", HK_TIMED, .setup = setup_evicted_file, .call = read_file_call,
     .check = check_file_data, .cleanup = cleanup_file},
    {"pread of a cached page", HK_KEPT, .setup = setup_cached_file, .call = pread_call,
     .check = check_file_data, .cleanup = cleanup_file},
    {"preadv of a cached page", HK_KEPT, .setup = setup_cached_file, .call = preadv_call,
     .check = check_file_data, .cleanup = cleanup_file},
    {"read of a cached page", HK_KEPT, .setup = setup_cached_file, .call = read_file_call,
     .check = check_file_data, .cleanup = cleanup_file},
    {"pread past end of file", HK_ANY, .setup = setup_file, .call = pread_eof, .want = 0,
     .cleanup = cleanup_file},
    {"pwrite", HK_ANY, .setup = setup_file, .call = pwrite_call, .check = check_pwrite,
     .cleanup = cleanup_file},
    {"pwritev", HK_ANY, .setup = setup_file, .call = pwritev_call, .check = check_pwrite,
     .cleanup = cleanup_file},
    {"pwrite EBADF", HK_ANY, .call = pwrite_bad_fd, .want = -1, .err = EBADF},
    {"fsync of dirty data", HK_TIMED, .setup = setup_file, .call = fsync_call, .want = 0,
     .cleanup = cleanup_file},
    {"fdatasync of dirty data", HK_TIMED, .setup = setup_file, .call = fdatasync_call,
     .want = 0, .cleanup = cleanup_file},
    {"fsync of a pipe EINVAL", HK_ANY, .setup = setup_pipe, .call = fsync_pipe, .want = -1,
     .err = EINVAL, .cleanup = hk_close_fds},
    {"fdatasync EBADF", HK_ANY, .call = fdatasync_bad_fd, .want = -1, .err = EBADF},

    /* FIFOs. */
    {"open of a FIFO for reading", HK_BLOCK, .setup = setup_fifo, .call = open_fifo_rd,
     .unblock = open_writer, .check = check_rd, .cleanup = cleanup_fifo},
    {"open of a FIFO for writing", HK_BLOCK, .setup = setup_fifo, .call = open_fifo_wr,
     .unblock = open_reader, .check = check_wr, .cleanup = cleanup_fifo},
    {"openat of a FIFO for reading", HK_BLOCK, .setup = setup_fifo, .call = openat_fifo_rd,
     .unblock = open_writer, .check = check_rd, .cleanup = cleanup_fifo},
    {"openat of a FIFO for writing", HK_BLOCK, .setup = setup_fifo, .call = openat_fifo_wr,
     .unblock = open_reader, .check = check_wr, .cleanup = cleanup_fifo},
    {"open of a FIFO O_NONBLOCK", HK_KEPT, .setup = setup_fifo, .call = open_fifo_rd_nonblock,
     .check = check_rd, .cleanup = cleanup_fifo},
    /* O_WRONLY|O_NONBLOCK is the kernel's probe: ENXIO without a reader. */
    {"open of a FIFO for writing with a reader", HK_KEPT, .setup = setup_fifo_with_reader,
     .call = open_fifo_wr, .check = check_wr, .cleanup = cleanup_fifo},
    {"open of a FIFO for reading with a writer", HK_ANY, .setup = setup_fifo_with_writer,
     .call = open_fifo_rd, .check = check_rd, .cleanup = cleanup_fifo},
    /* Linux never blocks an O_RDWR open of a FIFO. */
    {"open of a FIFO O_RDWR", HK_KEPT, .setup = setup_fifo, .call = open_fifo_rdwr,
     .check = check_rdwr, .cleanup = cleanup_fifo},
    {"open O_CREAT of a regular file (mode passed)", HK_KEPT, .setup = setup_created_path,
     .call = open_creat,
     .check = check_created_640, .cleanup = cleanup_fifo},
    {"openat O_CREAT of a regular file (mode passed)", HK_KEPT, .setup = setup_created_path,
     .call = openat_creat,
     .check = check_created_604, .cleanup = cleanup_fifo},
    {"open ENOENT", HK_ANY, .call = open_enoent, .want = -1, .err = ENOENT},
};

int lwkt_test_main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "/tmp/lwkt-hook-fdio-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    umask(0);
    int rc = HK_RUN(cases, argc, argv);
    CHECK_EQ(rmdir(dir), 0);
    return rc;
}
