/*
 * hooks/iov.c: readv, writev, preadv, pwritev, sendmsg and recvmsg through
 * the exported hooks give libc's count for any number of iovecs up to
 * IOV_MAX (SPEC section 7, "No short counts"): the cases are in
 * iov_cases.h, shared with catchall/iov.c.
 */
#include "hook_util.h"

#define IOV(name) name
#include "iov_cases.h"

static const struct hk_case cases[] = {IOV_CASES};

int lwkt_test_main(int argc, char **argv) {
    return iov_main(cases, sizeof cases / sizeof cases[0], argc, argv, __FILE__);
}
