/*
 * faults/many.c: robustness. Thousands of threads and tokens at once.
 *
 * 1000 threads (small stacks) share 4000 tokens. Each thread, several
 * rounds, takes 8 distinct tokens chosen at random, in random order (with
 * mutexes that order would deadlock), one of them twice (recursion), and
 * blocks now and then between two acquisitions (nanosleep, a read of a pipe
 * that has data, a contended pthread_mutex_lock), which releases everything
 * it holds and retakes it. Holding all 8 (and running), it stamps each
 * token's record with its id, does a little work, checks that every stamp
 * is still its own (exclusion: S1), and increments each record's counter
 * with a plain, non-atomic read-modify-write; then it releases LIFO.
 *
 * A second phase does the same on only 16 tokens (heavy contention: every
 * acquisition waits, and waiting releases the others, S4). Bounded time:
 * each phase must end within its deadline. Nothing lost: every counter
 * equals the number of times threads took that token (tallied apart,
 * atomically), no thread ends holding a token, every token is free at the
 * end.
 */
#include "check.h"

#include <stdint.h>

#define NTHREADS 1000
#define MAXTOK 4000
#define PER 8

static struct lwkt_token toks[MAXTOK];
static struct {
    int stamp;
    long count;
} rec[MAXTOK];
static atomic_long want[MAXTOK];

static int ntok, rounds;
static atomic_long max_wait_us; /* longest single lwkt_gettoken, reported */
static atomic_int failures, done;
static pthread_mutex_t blocker = PTHREAD_MUTEX_INITIALIZER;
static int datapipe[2];

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void maybe_block(uint64_t *rs) {
    switch (next_rand(rs) % 8) {
    case 0: {
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
        break;
    }
    case 1: {
        char c;
        /* Data is always there (each reader puts its byte back): it may
         * not block, which keeps the tokens (S3); the pipe's lock may. */
        if (read(datapipe[0], &c, 1) == 1 && write(datapipe[1], &c, 1) != 1)
            atomic_fetch_add(&failures, 1);
        break;
    }
    case 2:
        pthread_mutex_lock(&blocker);
        pthread_mutex_unlock(&blocker);
        break;
    default:
        break;
    }
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg + 1;
    uint64_t rs = 0x9e3779b97f4a7c15ull * (uint64_t)me + 12345;
    int pick[PER];
    for (int r = 0; r < rounds; r++) {
        /* 8 distinct tokens, in random order. */
        for (int k = 0; k < PER; k++) {
            int again;
            do {
                pick[k] = (int)(next_rand(&rs) % (uint64_t)ntok);
                again = 0;
                for (int j = 0; j < k; j++)
                    again |= pick[j] == pick[k];
            } while (again);
        }
        int twice = (int)(next_rand(&rs) % PER);
        for (int k = 0; k < PER; k++) {
            double t0 = now_s();
            lwkt_gettoken(&toks[pick[k]]);
            long us = (long)((now_s() - t0) * 1e6), m = atomic_load(&max_wait_us);
            while (us > m && !atomic_compare_exchange_weak(&max_wait_us, &m, us)) {
            }
            if (k == twice)
                lwkt_gettoken(&toks[pick[k]]);
            maybe_block(&rs);
        }
        /* Holding all 8 and running: exclusive. */
        for (int k = 0; k < PER; k++)
            rec[pick[k]].stamp = me;
        for (volatile int spin = 0; spin < 200; spin++) {
        }
        for (int k = 0; k < PER; k++) {
            if (rec[pick[k]].stamp != me) {
                fprintf(stderr, "FAIL: thread %d holds token %d, but thread %d stamped it\n",
                        me, pick[k], rec[pick[k]].stamp);
                atomic_fetch_add(&failures, 1);
            }
            rec[pick[k]].count++;
            atomic_fetch_add(&want[pick[k]], 1);
        }
        for (int k = PER - 1; k >= 0; k--) {
            if (k == twice)
                lwkt_reltoken(&toks[pick[k]]);
            lwkt_reltoken(&toks[pick[k]]);
        }
        if (lwkt_cnttoken(&toks[pick[0]]) != 0)
            atomic_fetch_add(&failures, 1);
    }
    ASSERT_NO_TOKENS_HELD();
    atomic_fetch_add(&done, 1);
    return NULL;
}

static void phase(const char *name, int tokens, int nrounds, double deadline) {
    ntok = tokens;
    rounds = nrounds;
    atomic_store(&done, 0);
    atomic_store(&max_wait_us, 0);
    memset(rec, 0, sizeof rec);
    for (int i = 0; i < MAXTOK; i++) {
        atomic_store(&want[i], 0);
        lwkt_token_init(&toks[i], NULL);
    }
    pthread_attr_t attr;
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstacksize(&attr, 128 * 1024) == 0);
    static pthread_t th[NTHREADS];
    double t0 = now_s();
    for (int i = 0; i < NTHREADS; i++) {
        int e = pthread_create(&th[i], &attr, worker, (void *)(intptr_t)i);
        if (e != 0) {
            fprintf(stderr, "FAIL: %s: pthread_create of thread %d: %s\n", name, i, strerror(e));
            _exit(1);
        }
    }
    /* Bounded time: all done by the deadline (joining would hang on a
     * deadlock; the count does not). */
    while (atomic_load(&done) < NTHREADS) {
        if (now_s() - t0 > deadline) {
            fprintf(stderr, "FAIL: %s: only %d of %d threads finished in %.0f s\n", name,
                    atomic_load(&done), NTHREADS, deadline);
            _exit(1);
        }
        struct timespec ts = {0, 10 * 1000 * 1000}; /* polling a count, no token held */
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < NTHREADS; i++)
        join_thread(th[i]);
    double took = now_s() - t0;
    CHECK_EQ(atomic_load(&failures), 0);
    long total = 0;
    for (int i = 0; i < tokens; i++) {
        if (rec[i].count != atomic_load(&want[i])) {
            fprintf(stderr, "FAIL: %s: token %d's counter is %ld, taken %ld times\n", name, i,
                    rec[i].count, atomic_load(&want[i]));
            _exit(1);
        }
        total += rec[i].count;
        CHECK(lwkt_trytoken(&toks[i]));
        lwkt_reltoken(&toks[i]);
    }
    CHECK_EQ(total, (long)NTHREADS * nrounds * PER);
    printf("faults/many: %s: %d threads x %d rounds x %d of %d tokens in %.2f s (longest "
           "lwkt_gettoken %.3f s): ok\n",
           name, NTHREADS, nrounds, PER, tokens, took, atomic_load(&max_wait_us) / 1e6);
    pthread_attr_destroy(&attr);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(55);
    CHECK(pipe(datapipe) == 0);
    CHECK(write(datapipe[1], "x", 1) == 1);
    phase("4000 tokens", MAXTOK, 4, 20);
    phase("16 tokens (contended)", 16, 2, 25);
    return 0;
}
