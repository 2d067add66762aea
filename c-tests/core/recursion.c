/*
 * core/recursion.c: S5. A thread takes a token it holds (exclusive on its
 * exclusive, shared on its exclusive, shared on its shared); every
 * acquisition needs its own release, which another thread can see: the
 * token stays unavailable to it until the last release.
 */
#include "check.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(recursion_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(recursion_U);

/* Probing from another thread never blocks this one (see check.h). */
#define other_can_take other_thread_can_take

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    ASSERT_NO_TOKENS_HELD();
    CHECK_EQ(lwkt_cnttoken(&T), 0);
    CHECK(!LWKT_TOKEN_HELD_ANY(&T));
    CHECK(!LWKT_TOKEN_HELD_EXCL(&T));

    /* Exclusive on exclusive, three deep, then shared on exclusive. */
    lwkt_gettoken(&T);
    lwkt_gettoken(&T);
    lwkt_gettoken(&T);
    CHECK_EQ(lwkt_cnttoken(&T), 3);
    lwkt_gettoken_shared(&T);
    CHECK_EQ(lwkt_cnttoken(&T), 4);
    CHECK(LWKT_TOKEN_HELD_ANY(&T));
    CHECK(LWKT_TOKEN_HELD_EXCL(&T)); /* a shared reference on top changes nothing */
    ASSERT_LWKT_TOKEN_HELD(&T);
    ASSERT_LWKT_TOKEN_HELD_EXCL(&T);
    /* Interleave another token: counts are per token. */
    lwkt_gettoken(&U);
    CHECK_EQ(lwkt_cnttoken(&U), 1);
    CHECK_EQ(lwkt_cnttoken(&T), 4);
    lwkt_reltoken(&U);

    /* Each release gives back one reference; the token stays held, for
     * others too, until the last one. */
    for (int left = 4; left > 0; left--) {
        CHECK_EQ(lwkt_cnttoken(&T), left);
        CHECK(!other_can_take(&T, 0));
        CHECK(!other_can_take(&T, 1));
        lwkt_reltoken(&T);
    }
    CHECK_EQ(lwkt_cnttoken(&T), 0);
    CHECK(!LWKT_TOKEN_HELD_ANY(&T));
    CHECK(other_can_take(&T, 0));

    /* Shared on shared: held, not exclusively; other shared holders may
     * join, exclusive takers may not, until the last release. */
    lwkt_gettoken_shared(&T);
    lwkt_gettoken_shared(&T);
    CHECK_EQ(lwkt_cnttoken(&T), 2);
    CHECK(LWKT_TOKEN_HELD_ANY(&T));
    CHECK(!LWKT_TOKEN_HELD_EXCL(&T));
    ASSERT_LWKT_TOKEN_HELD(&T);
    CHECK(other_can_take(&T, 1));
    CHECK(!other_can_take(&T, 0));
    lwkt_reltoken(&T);
    CHECK(!other_can_take(&T, 0));
    lwkt_reltoken(&T);
    CHECK(other_can_take(&T, 0));

    /* lwkt_trytoken recurses like lwkt_gettoken. */
    CHECK(lwkt_trytoken(&T));
    CHECK(lwkt_trytoken(&T));
    CHECK(lwkt_trytoken_shared(&T));
    CHECK_EQ(lwkt_cnttoken(&T), 3);
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);

    ASSERT_NO_TOKENS_HELD();
    printf("core/recursion: ok\n");
    return 0;
}
