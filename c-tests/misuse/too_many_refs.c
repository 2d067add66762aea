/*
 * misuse/too_many_refs.c: S10. More references than the per-thread limit
 * abort; the limit is at least 64 (the test says so on stderr before it
 * goes over: the runner looks for that line too). The held list writes the
 * 64 identical references once, with their count.
 */
// expect-stderr: reached 64 references
// expect-stderr: lwkt_gettoken(misuse_deep)
// expect-stderr: holding: misuse_deep [excl] ×64; aborting
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(misuse_deep);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    for (int i = 0; i < 64; i++)
        lwkt_gettoken(&T);
    CHECK_EQ(lwkt_cnttoken(&T), 64);
    fprintf(stderr, "reached 64 references\n");
    for (int i = 0; i < 100000; i++)
        lwkt_gettoken(&T);
    fprintf(stderr, "FAIL: no limit on references\n");
    return 1;
}
