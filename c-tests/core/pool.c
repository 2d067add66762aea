/*
 * core/pool.c: pool tokens. The same address always maps to the same
 * token; lwkt_getpooltoken takes it (and returns it), lwkt_relpooltoken
 * releases it; pool tokens are real tokens (exclusion between threads, an
 * exact counter); the pool is spread out and its tokens are cache-line
 * aligned (SPEC section 3).
 */
#include "check.h"

#include <stdint.h>

#define OBJECTS 4096
static char objects[OBJECTS][64];

static atomic_int holder_has, holder_release;
static long shared_counter; /* guarded by the pool token of &shared_counter */

static void *holder(void *arg) {
    lwkt_getpooltoken(arg);
    atomic_store(&holder_has, 1);
    SPIN_UNTIL(holder_release);
    lwkt_relpooltoken(arg);
    return NULL;
}

static void *incrementer(void *arg) {
    (void)arg;
    for (int i = 0; i < 100000; i++) {
        lwkt_getpooltoken(&shared_counter);
        long v = shared_counter;
        shared_counter = v + 1;
        lwkt_relpooltoken(&shared_counter);
    }
    return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    CHECK(LWKT_POOL_SIZE >= 1024);
    CHECK((LWKT_POOL_SIZE & (LWKT_POOL_SIZE - 1)) == 0);

    void *obj = objects[7];
    lwkt_token_t t = lwkt_token_pool_lookup(obj);
    CHECK(t != NULL);
    CHECK(t == lwkt_token_pool_lookup(obj));
    CHECK_EQ((uintptr_t)t % 64, 0);

    lwkt_token_t got = lwkt_getpooltoken(obj);
    CHECK(got == t);
    CHECK(LWKT_TOKEN_HELD_EXCL(t));
    CHECK_EQ(lwkt_cnttoken(t), 1);
    CHECK(!other_thread_can_take(t, 0));
    /* Recursion through the pool, and through the token handle. */
    CHECK(lwkt_getpooltoken(obj) == t);
    lwkt_gettoken(t);
    CHECK_EQ(lwkt_cnttoken(t), 3);
    lwkt_reltoken(t);
    lwkt_relpooltoken(obj);
    lwkt_relpooltoken(obj);
    CHECK_EQ(lwkt_cnttoken(t), 0);
    CHECK(other_thread_can_take(t, 0));

    /* Another thread holds obj's pool token: we cannot take it. */
    pthread_t h = start_thread(holder, obj);
    SPIN_UNTIL(holder_has);
    CHECK(!lwkt_trytoken(lwkt_token_pool_lookup(obj)));
    atomic_store(&holder_release, 1);
    join_thread(h);
    CHECK(lwkt_trytoken(t));
    lwkt_reltoken(t);

    /* Spread: 4096 distinct cache lines land on many distinct tokens, all
     * aligned (a constant or near-constant hash would fail this). */
    static uintptr_t toks[OBJECTS];
    for (int i = 0; i < OBJECTS; i++) {
        toks[i] = (uintptr_t)lwkt_token_pool_lookup(objects[i]);
        CHECK_EQ(toks[i] % 64, 0);
    }
    qsort(toks, OBJECTS, sizeof toks[0], cmp_ptr);
    int distinct = 1;
    for (int i = 1; i < OBJECTS; i++)
        distinct += toks[i] != toks[i - 1];
    CHECK(distinct >= OBJECTS / 4);
    /* ... and they lie within one pool of LWKT_POOL_SIZE cache lines. */
    CHECK(toks[OBJECTS - 1] - toks[0] < (uintptr_t)LWKT_POOL_SIZE * 64 * 4);

    /* Exclusion between threads through the pool. */
    pthread_t a = start_thread(incrementer, NULL);
    pthread_t b = start_thread(incrementer, NULL);
    join_thread(a);
    join_thread(b);
    CHECK_EQ(shared_counter, 200000);

    ASSERT_NO_TOKENS_HELD();
    printf("core/pool: ok (%d distinct tokens for %d objects)\n", distinct, OBJECTS);
    return 0;
}
