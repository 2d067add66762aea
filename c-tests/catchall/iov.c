/*
 * catchall/iov.c: the cases of hooks/iov.c (iov_cases.h) through libc's own
 * readv, writev, preadv, pwritev, sendmsg and recvmsg, which no exported
 * hook sees: the catch-all must give the same full counts. Plus a raw
 * `syscall` instruction (static or Go code) writing 1000 iovecs.
 */
#include "catchall_util.h"

#define IOV(name) CA(name)
#include "iov_cases.h"

/* The kernel's convention: the count, or -errno. */
static long raw_writev_big(hk_t *h) {
    return ca_raw3(SYS_writev, h->fd[1], (long)iov_vec, 1000);
}

static const struct hk_case cases[] = {
    IOV_CASES,
    {"raw syscall writev of 1000 iovecs, 100000 bytes, to a pipe drained slowly", HK_BLOCK,
     .setup = iov_setup_big_write, .call = raw_writev_big, .unblock = iov_drain_big,
     .check = iov_check_big, .cleanup = hk_close_fds},
};

int lwkt_test_main(int argc, char **argv) {
    ca_require(__FILE__);
    return iov_main(cases, sizeof cases / sizeof cases[0], argc, argv, __FILE__);
}
