/*
 * header_check.cc: proves that include/lwkt.h compiles without a warning
 * both as C (-std=c11) and as C++ (build.rs compiles this file both ways
 * with -Wall -Wextra -Werror), and that every macro and function of it
 * expands and links. The C++ object is also linked into a program and run
 * by the test `header_check_cxx` in run.rs, so it must pass its checks.
 *
 * It does not include check.h, whose declarations are C only.
 */
#include <stdio.h>
#include <stdlib.h>

#include <lwkt.h>

#ifdef __cplusplus
extern "C" {
#endif
int lwkt_test_main(int argc, char **argv);
#ifdef __cplusplus
}
#endif

#define HC_CHECK(cond)                                                           \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);      \
            exit(1);                                                             \
        }                                                                        \
    } while (0)

/* A static initializer that names the token. */
static struct lwkt_token hc_static = LWKT_TOKEN_INITIALIZER(hc_static);
static char hc_object;

/* Every macro must be usable as an expression in both languages. */
typedef char hc_pool_is_power_of_two[(LWKT_POOL_SIZE & (LWKT_POOL_SIZE - 1)) == 0 ? 1 : -1];

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    hc_pool_is_power_of_two unused_pool_check;
    (void)unused_pool_check;
    HC_CHECK(LWKT_POOL_SIZE >= 1024);
    HC_CHECK(LWKT_VERSION_MAJOR >= 0 && LWKT_VERSION_MINOR >= 0 && LWKT_VERSION_PATCH >= 0);
    HC_CHECK(lwkt_version() != NULL);

    HC_CHECK(hc_static.t_desc != NULL);
    ASSERT_NO_TOKENS_HELD();

    struct lwkt_token dyn;
    lwkt_token_init(&dyn, "hc_dyn");
    lwkt_token_t t = &hc_static;

    lwkt_gettoken(t);
    ASSERT_LWKT_TOKEN_HELD(t);
    ASSERT_LWKT_TOKEN_HELD_EXCL(t);
    HC_CHECK(LWKT_TOKEN_HELD_ANY(t));
    HC_CHECK(LWKT_TOKEN_HELD_EXCL(t));
    lwkt_mark_t mark = lwkt_mark();
    lwkt_gettoken_shared(&dyn);
    HC_CHECK(!LWKT_TOKEN_HELD_EXCL(&dyn));
    HC_CHECK(lwkt_cnttoken(&dyn) == 1);
    lwkt_token_swap();
    lwkt_reltoken(t);
    lwkt_reltoken(&dyn);
    HC_CHECK(!lwkt_lost_since(mark));
    HC_CHECK(!lwkt_token_lost_since(t, mark));

    HC_CHECK(lwkt_trytoken(t));
    HC_CHECK(lwkt_trytoken_shared(&dyn));
    HC_CHECK(lwkt_token_held_excl(t) && !lwkt_token_held_excl(&dyn));
    lwkt_reltoken(&dyn);
    lwkt_reltoken(t);

    lwkt_token_t p = lwkt_getpooltoken(&hc_object);
    HC_CHECK(p == lwkt_token_pool_lookup(&hc_object));
    lwkt_relpooltoken(&hc_object);

    lwkt_assert_none_held(__FILE__, __LINE__);
    ASSERT_NO_TOKENS_HELD();
    lwkt_token_uninit(&dyn);
    puts("header_check: ok");
    return 0;
}
