/*
 * core/version.c: SPEC section 3, the version. The library loaded at run
 * time says "MAJOR.MINOR.PATCH" through lwkt_version(), the same static
 * string on every call, and it is the version of the header this test was
 * compiled with (LWKT_VERSION_MAJOR/MINOR/PATCH).
 */
#include "check.h"

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", LWKT_VERSION_MAJOR, LWKT_VERSION_MINOR,
             LWKT_VERSION_PATCH);
    const char *v = lwkt_version();
    CHECK(v != NULL);
    if (strcmp(v, expected) != 0) {
        fprintf(stderr, "core/version: lwkt_version() is \"%s\", the header says %s\n", v,
                expected);
        return 1;
    }
    CHECK(lwkt_version() == v); /* static: the same pointer every time */
    printf("core/version: ok (%s)\n", v);
    return 0;
}
