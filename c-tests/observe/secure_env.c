/*
 * secure_env.c: run set-user-ID (or set-group-ID) by c-tests/observe.rs,
 * as an unprivileged user, to show that the library ignores every LWKT_
 * variable in secure mode (SPEC section 7). Prints first whether the kernel
 * put the process in secure mode, so that the driver knows its setup
 * worked.
 *
 *   run     take a named and an unnamed token; print "run: ok"
 *   misuse  release an unnamed token the thread does not hold: aborts, and
 *           the message must show no address
 */
#include "check.h"

#include <sys/auxv.h>

static struct lwkt_token named = LWKT_TOKEN_INITIALIZER(sec_T);
static struct lwkt_token unnamed;

int main(int argc, char **argv) {
    start_watchdog(TEST_DEADLINE_S);
    const char *mode = argc > 1 ? argv[1] : "";
    printf("secure=%lu uid=%d euid=%d gid=%d egid=%d\n", getauxval(AT_SECURE),
           (int)getuid(), (int)geteuid(), (int)getgid(), (int)getegid());
    fflush(stdout);
    if (strcmp(mode, "run") == 0) {
        lwkt_gettoken(&named);
        lwkt_gettoken(&unnamed);
        lwkt_reltoken(&unnamed);
        lwkt_reltoken(&named);
        printf("run: ok\n");
        return 0;
    }
    if (strcmp(mode, "misuse") == 0) {
        lwkt_reltoken(&unnamed);
        fprintf(stderr, "FAIL: releasing a token not held returned\n");
        return 1;
    }
    fprintf(stderr, "usage: secure_env run|misuse\n");
    return 2;
}
