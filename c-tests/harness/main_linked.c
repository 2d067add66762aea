/*
 * main_linked.c: the program a C test is linked into with -llwkt.
 *
 * The test's own code lives in lwkt_test_main() (see check.h); this is only
 * the entry point, so that the same test object can also be loaded as a
 * plugin by plugin_host.c.
 */
#include "check.h"

int main(int argc, char **argv) {
    /* Unbuffered stdout: a test that _exit()s keeps what it printed. */
    setvbuf(stdout, NULL, _IONBF, 0);
    return lwkt_test_main(argc, argv);
}
