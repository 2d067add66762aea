/*
 * pkgconfig_user.c: a program built against an installed lwkt the way a
 * user would (cc prog.c $(pkg-config --cflags --libs lwkt)): it takes and
 * releases a token across a blocking call and checks that the library it
 * runs with is the version of the header it was compiled with.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <lwkt.h>

static struct lwkt_token tok = LWKT_TOKEN_INITIALIZER(tok);

int main(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", LWKT_VERSION_MAJOR, LWKT_VERSION_MINOR,
             LWKT_VERSION_PATCH);
    if (strcmp(lwkt_version(), expected) != 0) {
        fprintf(stderr, "pkgconfig_user: library %s, header %s\n", lwkt_version(), expected);
        return 1;
    }
    lwkt_gettoken(&tok);
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, NULL); /* blocks: the token is released and taken back */
    if (!LWKT_TOKEN_HELD_EXCL(&tok)) {
        fprintf(stderr, "pkgconfig_user: the token was not taken back\n");
        return 1;
    }
    lwkt_reltoken(&tok);
    ASSERT_NO_TOKENS_HELD();
    printf("pkgconfig_user: ok (lwkt %s)\n", lwkt_version());
    return 0;
}
