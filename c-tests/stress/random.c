/*
 * stress/random.c: randomized stress of the token core (S1, S4, S5, S7).
 *
 * THREADS threads share NAMED named tokens and the pool tokens of POOLOBJS
 * objects. Each thread runs a random walk: take a random token (exclusive,
 * shared, by trytoken, or again if it holds it already: recursion), release
 * its most recent reference, swap its two most recent references, block
 * while holding (nanosleep of a few microseconds, a write and read of a
 * pipe, a contended pthread mutex), yield, or work under what it holds.
 *
 * Exclusion is checked with plain memory only the tokens protect:
 *  - per token, `excl_owner` (the thread inside exclusively, or 0) and
 *    `shared_in` (threads inside shared): an exclusive holder finds nobody
 *    inside, a shared holder finds no exclusive holder inside (S1);
 *  - per token a plain counter that exclusive holders increment with a
 *    read, some work and a write (lost updates show in the final sum), and
 *    that shared holders read twice around some work (it must not move).
 * A call that may block releases every token (S2): the thread leaves all
 * its markers before it and enters them again after it, and what it read
 * before must still be true unless lwkt_token_lost_since says the token
 * was taken meanwhile (S8). sched_yield is not a blocking call: the markers
 * stay and nobody may come in.
 *
 * Bounded: LWKT_STRESS_SECONDS (default 2) of random walk, then the final
 * counts must be exact. Deterministic choices: the seed is argv[1], or
 * LWKT_STRESS_SEED, or a fixed default, and is printed. LWKT_STRESS_THREADS
 * overrides the thread count. A watchdog fails the test if no thread makes
 * progress for 10 s, and the process after 40 s.
 */
#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#define MAX_THREADS 32
#define NAMED 8
#define POOLOBJS 6
#define MAXTOK (NAMED + POOLOBJS)
#define MAXREFS 12 /* per thread, well below the library's 64 */

static struct lwkt_token named[NAMED];
/* Only their addresses matter; spread out so that they hash to several
 * pool tokens (and now and then two to one). */
static struct {
    long v;
    char pad[248];
} pool_obj[POOLOBJS];

/* The distinct tokens (pool objects may share a pool token). */
static lwkt_token_t toks[MAXTOK];
static int tok_pool_obj[MAXTOK]; /* index into pool_obj, or -1 */
static int ntok;

/* Plain memory protected by the tokens alone (volatile: every access
 * really happens, so that a broken token shows). */
static volatile long counter[MAXTOK];
static volatile int excl_owner[MAXTOK];
static atomic_int shared_in[MAXTOK]; /* shared holders inside (coexist) */

static pthread_mutex_t contended = PTHREAD_MUTEX_INITIALIZER;

static atomic_int stop;
static atomic_long progress[MAX_THREADS];
static uint64_t seed;
static int nthreads = 12;

struct ref {
    int t;     /* index into toks */
    int excl;  /* asked for exclusive */
    int pooled; /* taken with lwkt_getpooltoken: released with relpooltoken */
};

struct worker {
    int id; /* 1-based: 0 means "nobody" in excl_owner */
    uint64_t rng;
    struct ref refs[MAXREFS];
    int depth;
    long incs[MAXTOK]; /* this thread's increments of each counter */
    int pipefd[2];
    long ops, blocks, lost_seen, tries_failed;
} workers[MAX_THREADS];

static uint64_t rnd(struct worker *w) {
    /* xorshift64* */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static int below(struct worker *w, int n) { return (int)(rnd(w) % (uint64_t)n); }

/* What the thread holds of token t: 0 nothing, 1 shared, 2 exclusive.
 * The word is exclusive while any of the thread's references to it asked
 * for exclusive (a recursive exclusive reference released after a swap
 * downgrades it: thread.rs downgrade_if_last_exclusive). */
static int hold_mode(struct worker *w, int t) {
    int any = 0;
    for (int i = 0; i < w->depth; i++) {
        if (w->refs[i].t == t) {
            if (w->refs[i].excl)
                return 2;
            any = 1;
        }
    }
    return any;
}

static int refs_to(struct worker *w, int t) {
    int n = 0;
    for (int i = 0; i < w->depth; i++)
        n += w->refs[i].t == t;
    return n;
}

static void busy_work(struct worker *w) {
    int n = below(w, 64);
    for (volatile int k = 0; k < n; k++) {
    }
}

/* ---- markers: entering and leaving a token's protection */

static void enter(struct worker *w, int t, int mode) {
    if (mode == 2) {
        CHECK_EQ(excl_owner[t], 0);
        CHECK_EQ(atomic_load(&shared_in[t]), 0);
        excl_owner[t] = w->id;
    } else {
        atomic_fetch_add(&shared_in[t], 1);
        CHECK_EQ(excl_owner[t], 0);
    }
}

static void leave(struct worker *w, int t, int mode) {
    if (mode == 2) {
        CHECK_EQ(excl_owner[t], w->id);
        CHECK_EQ(atomic_load(&shared_in[t]), 0);
        excl_owner[t] = 0;
    } else {
        CHECK_EQ(excl_owner[t], 0);
        atomic_fetch_sub(&shared_in[t], 1);
    }
}

/* The library agrees with our own bookkeeping. */
static void check_view(struct worker *w, int t) {
    int m = hold_mode(w, t);
    CHECK_EQ(lwkt_cnttoken(toks[t]), refs_to(w, t));
    CHECK_EQ(lwkt_token_held_excl(toks[t]) != 0, m == 2);
    if (m == 2) {
        CHECK_EQ(excl_owner[t], w->id);
        CHECK_EQ(atomic_load(&shared_in[t]), 0);
    } else if (m == 1) {
        CHECK_EQ(excl_owner[t], 0);
        CHECK(atomic_load(&shared_in[t]) >= 1);
    }
}

/* Work under every held token: exclusive ones get a slow increment,
 * shared ones a double read that must agree. */
static void work_all(struct worker *w) {
    for (int t = 0; t < ntok; t++) {
        int m = hold_mode(w, t);
        if (m == 2) {
            long v = counter[t];
            busy_work(w);
            CHECK_EQ(excl_owner[t], w->id);
            counter[t] = v + 1;
            w->incs[t]++;
        } else if (m == 1) {
            long v = counter[t];
            busy_work(w);
            CHECK_EQ(counter[t], v);
            CHECK_EQ(excl_owner[t], 0);
        }
    }
}

/* ---- the operations of the random walk */

/* What a thread read before a call that may release its tokens. */
struct bracket {
    long snap[MAXTOK];
    int mode[MAXTOK];
    lwkt_mark_t mark;
};

static void bracket_enter(struct worker *w, struct bracket *b);
static void bracket_leave(struct worker *w, struct bracket *b);

static void op_get(struct worker *w) {
    if (w->depth == MAXREFS)
        return;
    int t = below(w, ntok);
    int m = hold_mode(w, t);
    /* Exclusive on one's own shared hold is a misuse (S5): never. */
    int excl = m == 1 ? 0 : below(w, 3) != 0;
    int how = below(w, 8); /* 0: trytoken, 1-2: pool call, else gettoken */
    int pooled = 0;
    if (how == 0) {
        /* trytoken never waits and never releases: the markers stay */
        int ok = excl ? lwkt_trytoken(toks[t]) : lwkt_trytoken_shared(toks[t]);
        /* Recursion always succeeds. */
        if (!ok) {
            CHECK(m == 0);
            w->tries_failed++;
            return;
        }
    } else if (m) {
        /* Recursion never waits: the markers stay, nobody may come in. */
        if (how <= 2 && excl && tok_pool_obj[t] >= 0) {
            CHECK(lwkt_getpooltoken(&pool_obj[tok_pool_obj[t]]) == toks[t]);
            pooled = 1;
        } else if (excl) {
            lwkt_gettoken(toks[t]);
        } else {
            lwkt_gettoken_shared(toks[t]);
        }
    } else {
        /* May wait (S4), and then releases all we hold meanwhile. */
        struct bracket b;
        bracket_enter(w, &b);
        if (how <= 2 && excl && tok_pool_obj[t] >= 0) {
            CHECK(lwkt_getpooltoken(&pool_obj[tok_pool_obj[t]]) == toks[t]);
            pooled = 1;
        } else if (excl) {
            lwkt_gettoken(toks[t]);
        } else {
            lwkt_gettoken_shared(toks[t]);
        }
        bracket_leave(w, &b);
    }
    w->refs[w->depth++] = (struct ref){t, excl, pooled};
    if (m == 0)
        enter(w, t, excl ? 2 : 1);
    for (int i = 0; i < ntok; i++)
        if (hold_mode(w, i))
            check_view(w, i);
}

static void op_rel(struct worker *w) {
    if (w->depth == 0)
        return;
    struct ref r = w->refs[w->depth - 1];
    int before = hold_mode(w, r.t);
    w->depth--;
    int after = hold_mode(w, r.t);
    /* Markers change before the token does (nobody else can come in while
     * we still hold it). */
    if (after == 0)
        leave(w, r.t, before);
    else if (before == 2 && after == 1) {
        /* downgrade: become a shared holder, then stop being exclusive */
        atomic_fetch_add(&shared_in[r.t], 1);
        CHECK_EQ(excl_owner[r.t], w->id);
        excl_owner[r.t] = 0;
    }
    if (r.pooled)
        lwkt_relpooltoken(&pool_obj[tok_pool_obj[r.t]]);
    else
        lwkt_reltoken(toks[r.t]);
    if (after)
        check_view(w, r.t);
    else
        CHECK_EQ(lwkt_cnttoken(toks[r.t]), 0);
}

static void op_swap(struct worker *w) {
    if (w->depth < 2)
        return;
    struct ref *a = &w->refs[w->depth - 2], *b = &w->refs[w->depth - 1];
    lwkt_token_swap();
    if (a->t == b->t) {
        /* same token: the requested modes trade places */
        int e = a->excl;
        a->excl = b->excl;
        b->excl = e;
    } else {
        struct ref x = *a;
        *a = *b;
        *b = x;
    }
    /* A pooled reference stays pooled: relpooltoken releases the top, which
     * must be the pool token of the object (same token either way). */
}

/* Before a call that may block (or wait for a token: S4): leave every
 * marker, since the library releases every token, and note what was read. */
static void bracket_enter(struct worker *w, struct bracket *b) {
    for (int t = 0; t < ntok; t++) {
        b->mode[t] = hold_mode(w, t);
        b->snap[t] = counter[t];
        if (b->mode[t])
            leave(w, t, b->mode[t]);
    }
    b->mark = lwkt_mark();
}

/* After it: every token is held again, in the same mode; enter the markers
 * again, and what was read before is still true unless lwkt_lost_since
 * says that another thread took the token meanwhile (S8). */
static void bracket_leave(struct worker *w, struct bracket *b) {
    int lost_any = lwkt_lost_since(b->mark);
    for (int t = 0; t < ntok; t++) {
        if (!b->mode[t])
            continue;
        enter(w, t, b->mode[t]);
        int lost = lwkt_token_lost_since(toks[t], b->mark);
        CHECK(!lost || lost_any);
        if (!lost)
            CHECK_EQ(counter[t], b->snap[t]); /* nobody wrote it meanwhile */
        else
            w->lost_seen++;
    }
}

/* A call that blocks, or may: nanosleep, a pipe write and read, a
 * contended mutex (held across a sleep, so that others block on it). */
static void op_block(struct worker *w) {
    struct bracket b;
    bracket_enter(w, &b);
    switch (below(w, 3)) {
    case 0: {
        struct timespec ts = {0, 1000 + below(w, 4000)};
        CHECK(nanosleep(&ts, NULL) == 0);
        break;
    }
    case 1: {
        char c = (char)w->id, d = 0;
        CHECK(write(w->pipefd[1], &c, 1) == 1);
        CHECK(read(w->pipefd[0], &d, 1) == 1);
        CHECK_EQ(d, c);
        break;
    }
    default: {
        CHECK(pthread_mutex_lock(&contended) == 0);
        struct timespec ts = {0, 1000 + below(w, 2000)};
        CHECK(nanosleep(&ts, NULL) == 0);
        CHECK(pthread_mutex_unlock(&contended) == 0);
        break;
    }
    }
    w->blocks++;
    bracket_leave(w, &b);
    for (int t = 0; t < ntok; t++)
        if (b.mode[t])
            check_view(w, t);
}

/* Not a blocking call: the tokens stay, so do the markers. */
static void op_yield(struct worker *w) {
    long snap[MAXTOK];
    for (int t = 0; t < ntok; t++)
        snap[t] = counter[t];
    lwkt_mark_t mark = lwkt_mark();
    sched_yield();
    CHECK(!lwkt_lost_since(mark));
    for (int t = 0; t < ntok; t++) {
        if (hold_mode(w, t)) {
            CHECK_EQ(counter[t], snap[t]);
            check_view(w, t);
        }
    }
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    CHECK(pipe(w->pipefd) == 0);
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        int r = below(w, 100);
        if (r < 35 + (w->depth == 0 ? 20 : 0))
            op_get(w);
        else if (r < 65 + w->depth * 2)
            op_rel(w);
        else if (r < 75)
            work_all(w);
        else if (r < 88)
            op_block(w);
        else if (r < 94)
            op_yield(w);
        else
            op_swap(w);
        w->ops++;
        if (w->depth == 0 || (w->ops & 15) == 0)
            atomic_store_explicit(&progress[w->id - 1], w->ops, memory_order_relaxed);
    }
    while (w->depth > 0)
        op_rel(w);
    ASSERT_NO_TOKENS_HELD();
    atomic_store(&progress[w->id - 1], -1); /* finished */
    close(w->pipefd[0]);
    close(w->pipefd[1]);
    return NULL;
}

static double env_num(const char *name, double dflt) {
    const char *s = getenv(name);
    return s && *s ? strtod(s, NULL) : dflt;
}

int lwkt_test_main(int argc, char **argv) {
    start_watchdog(2 * TEST_DEADLINE_S);
    const char *s = argc > 1 ? argv[1] : getenv("LWKT_STRESS_SEED");
    seed = s && *s ? strtoull(s, NULL, 0) : 0x5eed2026;
    double seconds = env_num("LWKT_STRESS_SECONDS", 2);
    nthreads = (int)env_num("LWKT_STRESS_THREADS", 12);
    CHECK(nthreads >= 1 && nthreads <= MAX_THREADS);
    CHECK(seconds > 0 && seconds < TEST_DEADLINE_S);
    printf("stress/random: seed=%#llx threads=%d seconds=%g "
           "(replay: LWKT_STRESS_SEED=%#llx)\n",
           (unsigned long long)seed, nthreads, seconds, (unsigned long long)seed);

    static char names[NAMED][16];
    for (int i = 0; i < NAMED; i++) {
        snprintf(names[i], sizeof names[i], "stress_T%d", i);
        lwkt_token_init(&named[i], names[i]);
        toks[ntok] = &named[i];
        tok_pool_obj[ntok++] = -1;
    }
    for (int i = 0; i < POOLOBJS; i++) {
        lwkt_token_t p = lwkt_token_pool_lookup(&pool_obj[i]);
        int dup = 0;
        for (int j = NAMED; j < ntok; j++)
            dup |= toks[j] == p;
        if (!dup) {
            toks[ntok] = p;
            tok_pool_obj[ntok++] = i;
        }
    }

    pthread_t th[MAX_THREADS];
    for (int i = 0; i < nthreads; i++) {
        workers[i].id = i + 1;
        workers[i].rng = (seed ^ ((uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL)) | 1;
        th[i] = start_thread(worker_main, &workers[i]);
    }

    /* Run for `seconds`; meanwhile, fail if nobody moves for 10 s. The main
     * thread holds no token: its sleeps pass straight to libc. */
    double start = now_s(), last_move = start;
    long last[MAX_THREADS] = {0};
    while (now_s() - start < seconds) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        int moved = 0;
        for (int i = 0; i < nthreads; i++) {
            long p = atomic_load(&progress[i]);
            moved |= p != last[i];
            last[i] = p;
        }
        if (moved)
            last_move = now_s();
        CHECK(now_s() - last_move < 10); /* a deadlock or a lost wake-up */
    }
    atomic_store(&stop, 1);
    double stop_at = now_s();
    for (;;) {
        int done = 0;
        for (int i = 0; i < nthreads; i++)
            done += atomic_load(&progress[i]) == -1;
        if (done == nthreads)
            break;
        CHECK(now_s() - stop_at < 10); /* could not wind down */
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < nthreads; i++)
        join_thread(th[i]);

    long ops = 0, blocks = 0, lost = 0, failed = 0, total = 0;
    for (int t = 0; t < ntok; t++) {
        long sum = 0;
        for (int i = 0; i < nthreads; i++)
            sum += workers[i].incs[t];
        CHECK_EQ(counter[t], sum);
        CHECK_EQ(excl_owner[t], 0);
        CHECK_EQ(atomic_load(&shared_in[t]), 0);
        /* free again: another thread could take it now */
        CHECK(other_thread_can_take(toks[t], 0));
        total += sum;
    }
    for (int i = 0; i < nthreads; i++) {
        ops += workers[i].ops;
        blocks += workers[i].blocks;
        lost += workers[i].lost_seen;
        failed += workers[i].tries_failed;
    }
    CHECK(total > 0 && blocks > 0);
    printf("stress/random: ok (%d tokens, %ld ops, %ld increments, %ld blocking "
           "calls, %ld losses seen, %ld failed trytoken, %.2f s)\n",
           ntok, ops, total, blocks, lost, failed, now_s() - start);
    return 0;
}
