/*
 * misuse/unreadable_desc.c: S10. A token whose description pointer leads to
 * memory that cannot be read (a PROT_NONE page; a string that runs into
 * one) is named by its address in a misuse message: the message is still
 * written and the process aborts, it does not crash while describing it.
 */
// expect-stderr: lwkt: lwkt_reltoken(misuse_readable): not the thread's most recent reference (that is token@0x
// expect-stderr: holding: misuse_readable [excl], token@0x
// expect-stderr: [excl]; aborting
#include "check.h"

#include <sys/mman.h>

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(misuse_readable);
static struct lwkt_token B, C;

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(TEST_DEADLINE_S);
    long page = sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    CHECK(mprotect(p + page, page, PROT_NONE) == 0);
    /* B: on the unreadable page. C: "abcd" with no NUL before it. */
    memcpy(p + page - 4, "abcd", 4);
    lwkt_token_init(&B, p + page);
    lwkt_token_init(&C, p + page - 4);
    lwkt_gettoken(&A);
    lwkt_gettoken(&B);
    lwkt_gettoken(&C);
    lwkt_reltoken(&A); /* not on top: the message names B and C */
    fprintf(stderr, "FAIL: lwkt_reltoken of a token not on top returned\n");
    return 1;
}
