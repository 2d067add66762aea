/*
 * stats_known.c: a program whose token behaviour is known exactly, for the
 * LWKT_STATS report (c-tests/observe.rs compares the report with the
 * figures below).
 *
 * Two threads use tokens: the main thread M and a worker W. Every step is
 * ordered by flags (spinning, never sleeping, while a token must stay held).
 *
 *   token obs_T   exclusive 12, shared 5, contended 1 (M waited >= 50 ms,
 *                 because W keeps it 50 ms after it saw M waiting), lost 1,
 *                 released on block: nanosleep 2, read 1; longest hold
 *                 >= 50 ms (W's)
 *   token obs_U   exclusive 2, released on block by lwkt_gettoken 1 (M held
 *                 it when it had to wait for obs_T), contended 0, lost 0
 *   pool tokens   three distinct ones: 2, 1 and 1 exclusive acquisitions
 *   threads 2, deepest reference stack 3
 */
#include "check.h"

#include <pthread.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(obs_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(obs_U);

/* Three objects guarded by pool tokens. */
static char objs[3][4096];

static int pipefd[2];
static atomic_int m_reading, read_done, w_holds_t, m_done_g;

static unsigned t_waiters(void) {
    /* The header's "threads preparing to sleep or asleep on this token". */
    return __atomic_load_n(&T.t_waiters, __ATOMIC_ACQUIRE);
}

static void *worker(void *arg) {
    (void)arg;
    /* f: M holds T and blocks in read(); T is released meanwhile, so a
     * trytoken succeeds exactly then. */
    SPIN_UNTIL(m_reading);
    double end = now_s() + TEST_DEADLINE_S;
    while (!lwkt_trytoken(&T)) { /* T excl (W) +1 when it succeeds */
        CHECK(now_s() < end);
    }
    lwkt_reltoken(&T);
    CHECK(write(pipefd[1], "x", 1) == 1); /* holds no token: plain write */

    /* g: hold T until M waits for it, then 50 ms more (spinning). */
    SPIN_UNTIL(read_done);
    lwkt_gettoken(&T); /* T excl (W) +1 */
    atomic_store(&w_holds_t, 1);
    SPIN_UNTIL_COND(t_waiters() != 0);
    spin_for(0.050);
    lwkt_reltoken(&T);

    /* h: two shared acquisitions, once M is done with T. */
    SPIN_UNTIL(m_done_g);
    for (int i = 0; i < 2; i++) {
        lwkt_gettoken_shared(&T); /* T shared +1 */
        lwkt_reltoken(&T);
    }
    return NULL;
}

int main(void) {
    start_watchdog(2 * TEST_DEADLINE_S);
    CHECK(pipe(pipefd) == 0);

    /* a: 5 exclusive, b: 3 shared. */
    for (int i = 0; i < 5; i++) {
        lwkt_gettoken(&T);
        lwkt_reltoken(&T);
    }
    for (int i = 0; i < 3; i++) {
        lwkt_gettoken_shared(&T);
        lwkt_reltoken(&T);
    }
    /* c: recursion, three references deep (T excl +2, U excl +1). */
    lwkt_gettoken(&T);
    lwkt_gettoken(&T);
    lwkt_gettoken(&U);
    CHECK_EQ(lwkt_cnttoken(&T), 2);
    lwkt_reltoken(&U);
    lwkt_reltoken(&T);
    lwkt_reltoken(&T);
    /* d: two real sleeps holding T (T excl +1, released by nanosleep 2). */
    lwkt_gettoken(&T);
    struct timespec ms = {0, 1000000};
    for (int i = 0; i < 2; i++)
        CHECK(nanosleep(&ms, NULL) == 0);
    CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    lwkt_reltoken(&T);
    /* e: pool tokens of three objects (2, 1 and 1 acquisitions). */
    lwkt_token_t p0 = lwkt_token_pool_lookup(objs[0]);
    lwkt_token_t p1 = lwkt_token_pool_lookup(objs[1]);
    lwkt_token_t p2 = lwkt_token_pool_lookup(objs[2]);
    CHECK(p0 != p1 && p1 != p2 && p0 != p2);
    for (int i = 0; i < 2; i++) {
        CHECK(lwkt_getpooltoken(objs[0]) == p0);
        lwkt_relpooltoken(objs[0]);
    }
    CHECK(lwkt_getpooltoken(objs[1]) == p1);
    lwkt_relpooltoken(objs[1]);
    CHECK(lwkt_getpooltoken(objs[2]) == p2);
    lwkt_relpooltoken(objs[2]);
    /* For the driver: the pool tokens' addresses (slot numbers in the
     * report must be proportional to their distances). */
    printf("pool %p %p %p\n", (void *)p0, (void *)p1, (void *)p2);

    pthread_t w = start_thread(worker, NULL);

    /* f: block in read() holding T; W takes T meanwhile (T excl +1, read 1,
     * lost 1). */
    lwkt_gettoken(&T);
    lwkt_mark_t mark = lwkt_mark();
    atomic_store(&m_reading, 1);
    char c;
    CHECK(read(pipefd[0], &c, 1) == 1);
    CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    CHECK(lwkt_token_lost_since(&T, mark));
    lwkt_reltoken(&T);
    atomic_store(&read_done, 1);

    /* g: holding U, wait for T, which W keeps >= 50 ms after M waits (U
     * released by lwkt_gettoken 1, U excl +1, T excl +1, T contended 1). */
    SPIN_UNTIL(w_holds_t);
    lwkt_gettoken(&U);
    double before = now_s();
    lwkt_gettoken(&T);
    CHECK(now_s() - before >= 0.050);
    CHECK(LWKT_TOKEN_HELD_EXCL(&U));
    lwkt_reltoken(&T);
    lwkt_reltoken(&U);
    atomic_store(&m_done_g, 1);

    join_thread(w); /* M holds nothing: nothing released */
    printf("stats_known: ok\n");
    return 0;
}
