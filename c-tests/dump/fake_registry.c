/* A process that exports an `lwkt_registry` of a layout version no
 * lwkt-run knows (driven by c-tests/dump.rs, linked with -rdynamic so
 * the symbol is in its dynamic symbol table): --dump must refuse it in
 * one line naming the version. Waits for its standard input to close.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

struct fake_registry {
    char magic[8];
    unsigned version;
    unsigned size;
    char rest[4096];
};

struct fake_registry lwkt_registry = {"LWKTREG", 999, sizeof(struct fake_registry), {0}};

int main(void) {
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    printf("ready %u\n", lwkt_registry.version);
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    return 0;
}
