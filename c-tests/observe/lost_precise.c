/*
 * lost_precise.c: lost-token detection (SPEC S8) reports a loss exactly
 * when, and exactly for the token that, another thread took while the
 * caller had it released.
 *
 * 1. M holds T1 and T2 and blocks (nanosleep, read) while nobody wants
 *    them: released and retaken, but no loss, for either token or any.
 *    (W, which feeds the read, touches no token.)
 * 2. M holds T1 and T2 and blocks in read(); W takes only T2 meanwhile (its
 *    trytoken can only succeed while M is blocked) and changes what T2
 *    guards: a loss, for T2 and not for T1; lwkt_lost_since says so too.
 *    A mark taken afterwards reports nothing; a token not held, nothing.
 * 3. The same with T1 and T2 both held shared by M and W taking T1
 *    exclusively: a loss for T1 only.
 */
#include "check.h"

#include <pthread.h>

static struct lwkt_token T1 = LWKT_TOKEN_INITIALIZER(lost_T1);
static struct lwkt_token T2 = LWKT_TOKEN_INITIALIZER(lost_T2);
static struct lwkt_token T3 = LWKT_TOKEN_INITIALIZER(lost_T3);

static int pipefd[2];
static atomic_int m_blocking;
static long guarded_by_t1, guarded_by_t2;

static void *worker(void *arg) {
    (void)arg;
    /* Phase 1: feed M's read without touching any token. */
    SPIN_UNTIL_COND(atomic_load(&m_blocking) == 1);
    CHECK(write(pipefd[1], "z", 1) == 1);

    /* Phase 2: take T2 only, while M is blocked in read(). */
    SPIN_UNTIL_COND(atomic_load(&m_blocking) == 2);
    double end = now_s() + TEST_DEADLINE_S;
    while (!lwkt_trytoken(&T2))
        CHECK(now_s() < end);
    guarded_by_t2++;
    lwkt_reltoken(&T2);
    CHECK(write(pipefd[1], "x", 1) == 1);

    /* Phase 3: take T1 only (exclusively; M holds both shared). */
    SPIN_UNTIL_COND(atomic_load(&m_blocking) == 3);
    end = now_s() + TEST_DEADLINE_S;
    while (!lwkt_trytoken(&T1))
        CHECK(now_s() < end);
    guarded_by_t1++;
    lwkt_reltoken(&T1);
    CHECK(write(pipefd[1], "y", 1) == 1);
    return NULL;
}

int main(void) {
    start_watchdog(2 * TEST_DEADLINE_S);
    CHECK(pipe(pipefd) == 0);
    char c;

    /* 1: blocking with nobody else around. */
    lwkt_gettoken(&T1);
    lwkt_gettoken(&T2);
    lwkt_mark_t m1 = lwkt_mark();
    struct timespec ms = {0, 1000000};
    CHECK(nanosleep(&ms, NULL) == 0);
    CHECK(!lwkt_lost_since(m1));
    CHECK(!lwkt_token_lost_since(&T1, m1));
    CHECK(!lwkt_token_lost_since(&T2, m1));
    /* A read that blocks (or finds the data W writes, touching no token,
     * already there): still nobody took a token. */
    pthread_t w = start_thread(worker, NULL);
    atomic_store(&m_blocking, 1);
    CHECK(read(pipefd[0], &c, 1) == 1);
    CHECK(!lwkt_lost_since(m1));
    CHECK(!lwkt_token_lost_since(&T1, m1));
    CHECK(!lwkt_token_lost_since(&T2, m1));
    CHECK(LWKT_TOKEN_HELD_EXCL(&T1) && LWKT_TOKEN_HELD_EXCL(&T2));

    /* 2: W takes T2 while M blocks in read(). */
    lwkt_mark_t m2 = lwkt_mark();
    long t1_before = guarded_by_t1, t2_before = guarded_by_t2;
    atomic_store(&m_blocking, 2);
    CHECK(read(pipefd[0], &c, 1) == 1);
    CHECK(LWKT_TOKEN_HELD_EXCL(&T1) && LWKT_TOKEN_HELD_EXCL(&T2));
    CHECK_EQ(guarded_by_t2, t2_before + 1); /* W really took T2 */
    CHECK_EQ(guarded_by_t1, t1_before);
    CHECK(lwkt_lost_since(m2));
    CHECK(lwkt_token_lost_since(&T2, m2));
    CHECK(!lwkt_token_lost_since(&T1, m2));
    CHECK(!lwkt_token_lost_since(&T3, m2)); /* not held */
    /* The earlier mark sees the loss too; a new one does not. */
    CHECK(lwkt_lost_since(m1));
    lwkt_mark_t m3 = lwkt_mark();
    CHECK(!lwkt_lost_since(m3));
    CHECK(!lwkt_token_lost_since(&T2, m3));
    lwkt_reltoken(&T2);
    lwkt_reltoken(&T1);

    /* 3: both held shared; W takes T1 exclusively while M blocks. */
    lwkt_gettoken_shared(&T1);
    lwkt_gettoken_shared(&T2);
    lwkt_mark_t m4 = lwkt_mark();
    atomic_store(&m_blocking, 3);
    CHECK(read(pipefd[0], &c, 1) == 1);
    CHECK_EQ(guarded_by_t1, t1_before + 1);
    CHECK(lwkt_lost_since(m4));
    CHECK(lwkt_token_lost_since(&T1, m4));
    CHECK(!lwkt_token_lost_since(&T2, m4));
    lwkt_reltoken(&T2);
    lwkt_reltoken(&T1);

    join_thread(w);
    printf("lost_precise: ok\n");
    return 0;
}
