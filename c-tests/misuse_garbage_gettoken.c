/*
 * misuse_garbage_gettoken.c: S10. lwkt_gettoken on memory that
 * never was a token (malloc'd, filled with a byte pattern, never passed to
 * lwkt_token_init and not zero-filled) aborts with one line naming the
 * call, instead of crashing or hanging. The description pointer of such
 * memory is garbage too (0xa5a5...), so the message cannot print it.
 * c-tests/fault_garbage.c runs the same with other patterns and calls.
 */
// expect-stderr: lwkt: lwkt_gettoken(
// expect-stderr: not an initialised token
#include "check.h"

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(TEST_DEADLINE_S);
    lwkt_token_t tok = malloc(sizeof *tok);
    CHECK(tok != NULL);
    memset(tok, 0xa5, sizeof *tok);
    lwkt_gettoken(tok);
    fprintf(stderr, "FAIL: lwkt_gettoken on garbage returned\n");
    return 1;
}
