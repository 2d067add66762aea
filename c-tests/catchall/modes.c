/*
 * catchall/modes.c: every way of coming to hold a token switches the
 * catch-all on for the thread and its selector to BLOCK (SPEC section 4),
 * on the thread's very first token operation too: a fresh thread takes a
 * token one way -- lwkt_trytoken, lwkt_gettoken_shared,
 * lwkt_trytoken_shared, lwkt_getpooltoken, a recursive exclusive hold, a
 * shared hold under its own exclusive one, two tokens swapped with
 * lwkt_token_swap -- and blocks in libc's own sem_wait (dlsym: no hook
 * sees it). The main thread must then get the token exclusively; it
 * records that, releases and only then posts. The holder's call returns
 * 0 with the token held again as before (count and mode), and after it
 * released everything (selector back to ALLOW) a libc-internal block of
 * a thread holding nothing still works.
 */
#include "catchall_util.h"

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(modes_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(modes_U);
static char pool_object;

static sem_t sem;
static atomic_int armed, took, done;

struct mode {
    const char *name;
    void (*take)(void);
    void (*give)(void);
    lwkt_token_t (*tok)(void); /* the token the main thread takes */
    int count, excl;           /* how the holder holds it */
};

static lwkt_token_t tok_T(void) { return &T; }
static lwkt_token_t tok_pool(void) { return lwkt_token_pool_lookup(&pool_object); }

static void take_try(void) { CHECK(lwkt_trytoken(&T)); }
static void take_shared(void) { lwkt_gettoken_shared(&T); }
static void take_try_shared(void) { CHECK(lwkt_trytoken_shared(&T)); }
static void give_T(void) { lwkt_reltoken(&T); }
static void take_pool(void) { CHECK(lwkt_getpooltoken(&pool_object) == tok_pool()); }
static void give_pool(void) { lwkt_relpooltoken(&pool_object); }
static void take_recursive(void) {
    lwkt_gettoken(&T);
    lwkt_gettoken(&T);
    lwkt_gettoken(&T);
}
static void give_recursive(void) {
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
}
static void take_excl_then_shared(void) {
    lwkt_gettoken(&T);
    lwkt_gettoken_shared(&T);
}
static void give_two(void) {
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
}
/* T then U, swapped: T is the most recent reference. */
static void take_swapped(void) {
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    lwkt_token_swap();
}
static void give_swapped(void) {
    lwkt_reltoken(&T);
    lwkt_reltoken(&U);
}

static const struct mode modes[] = {
    {"lwkt_trytoken (first use)", take_try, give_T, tok_T, 1, 1},
    {"lwkt_gettoken_shared", take_shared, give_T, tok_T, 1, 0},
    {"lwkt_trytoken_shared (first use)", take_try_shared, give_T, tok_T, 1, 0},
    {"lwkt_getpooltoken", take_pool, give_pool, tok_pool, 1, 1},
    {"recursive exclusive, 3 deep", take_recursive, give_recursive, tok_T, 3, 1},
    {"shared under its own exclusive", take_excl_then_shared, give_two, tok_T, 2, 1},
    {"after lwkt_token_swap", take_swapped, give_swapped, tok_T, 1, 1},
};

static const struct mode *cur;

static void *holder(void *arg) {
    (void)arg;
    int (*wait)(sem_t *) = (int (*)(sem_t *))ca_sym("sem_wait");
    cur->take();
    lwkt_token_t tok = cur->tok();
    CHECK_EQ(lwkt_cnttoken(tok), cur->count);
    atomic_store(&armed, 1);
    errno = EDOM;
    int r = wait(&sem);
    CHECK_EQ(r, 0);
    CHECK_EQ(errno, EDOM);
    if (!atomic_load(&took)) {
        fprintf(stderr, "FAIL: %s: sem_wait returned before the main thread took the token\n",
                cur->name);
        _exit(1);
    }
    if (lwkt_cnttoken(tok) != cur->count || LWKT_TOKEN_HELD_EXCL(tok) != cur->excl) {
        fprintf(stderr, "FAIL: %s: after the block, count %d excl %d (want %d, %d)\n", cur->name,
                lwkt_cnttoken(tok), LWKT_TOKEN_HELD_EXCL(tok), cur->count, cur->excl);
        _exit(1);
    }
    if (cur->take == take_swapped)
        CHECK_EQ(lwkt_cnttoken(&U), 1);
    cur->give();
    ASSERT_NO_TOKENS_HELD();
    /* Holding nothing now: a libc-internal block is just a block. */
    CHECK_EQ(wait(&sem), 0);
    atomic_store(&done, 1);
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    start_watchdog(4 * TEST_DEADLINE_S);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        cur = &modes[i];
        atomic_store(&armed, 0);
        atomic_store(&took, 0);
        atomic_store(&done, 0);
        CHECK_EQ(sem_init(&sem, 0, 0), 0);
        pthread_t t = start_thread(holder, NULL); /* a fresh thread: first use */
        SPIN_UNTIL(armed);
        lwkt_token_t tok = cur->tok();
        double end = now_s() + TEST_DEADLINE_S;
        while (!lwkt_trytoken(tok)) {
            if (now_s() > end) {
                fprintf(stderr, "FAIL: %s: the holder blocked in libc's sem_wait kept the token\n",
                        cur->name);
                _exit(1);
            }
            sched_yield();
        }
        atomic_store(&took, 1);
        lwkt_reltoken(tok);
        CHECK_EQ(sem_post(&sem), 0);
        CHECK_EQ(sem_post(&sem), 0);
        join_thread(t);
        CHECK(atomic_load(&done));
        CHECK_EQ(sem_destroy(&sem), 0);
        printf("catchall/modes: %s: released and retaken\n", cur->name);
    }
    printf("catchall/modes: ok\n");
    return 0;
}
