/*
 * faults/fork.c: S9. A fork while other threads hold tokens
 * and wait for them.
 *
 * In the parent, at the moment of the fork:
 *  - H1 holds A exclusively and B shared, H2 holds B shared and C
 *    exclusively; both spin (running: they keep them);
 *  - W1 holds D and waits in lwkt_gettoken(A) (asleep; D released, S4);
 *  - W2 waits in lwkt_gettoken_shared(C);
 *  - R holds E and is blocked in read() on a pipe (E released, S2);
 *  - the main thread holds F and forks.
 * The child (only the forking thread exists there) works: it still holds F;
 * it takes every token A..F at once, exclusively, without hanging (their
 * holders and waiters do not exist there); a thread it starts cannot take
 * them meanwhile and can after; release-on-block works there (a thread of
 * the child blocked in read() holding A lets the child's main thread take
 * A); it exits cleanly through exit().
 * The parent is unaffected: H1 and H2 still hold A, B and C; the waiters
 * still wait and get their tokens when the holders let go; R's read
 * returns the data holding E; in the end every token is free.
 */
#include "check.h"

#include <sys/wait.h>

static struct lwkt_token A = LWKT_TOKEN_INITIALIZER(fork_A);
static struct lwkt_token B = LWKT_TOKEN_INITIALIZER(fork_B);
static struct lwkt_token C = LWKT_TOKEN_INITIALIZER(fork_C);
static struct lwkt_token D = LWKT_TOKEN_INITIALIZER(fork_D);
static struct lwkt_token E = LWKT_TOKEN_INITIALIZER(fork_E);
static struct lwkt_token Fk = LWKT_TOKEN_INITIALIZER(fork_F);
static lwkt_token_t all[] = {&A, &B, &C, &D, &E, &Fk};
#define NALL 6

static atomic_int h1_holds, h2_holds, h1_release, h2_release;
static atomic_int w1_waiting, w1_got, w1_had_d, w2_waiting, w2_got;
static atomic_int r_armed, r_returned, r_held_e;
static int rpipe[2];

static void *h1(void *arg) {
    (void)arg;
    lwkt_gettoken(&A);
    lwkt_gettoken_shared(&B);
    atomic_store(&h1_holds, 1);
    SPIN_UNTIL(h1_release);
    lwkt_reltoken(&B);
    lwkt_reltoken(&A);
    return NULL;
}

static void *h2(void *arg) {
    (void)arg;
    lwkt_gettoken_shared(&B);
    lwkt_gettoken(&C);
    atomic_store(&h2_holds, 1);
    SPIN_UNTIL(h2_release);
    lwkt_reltoken(&C);
    lwkt_reltoken(&B);
    return NULL;
}

static void *w1(void *arg) {
    (void)arg;
    lwkt_gettoken(&D);
    atomic_store(&w1_waiting, 1);
    lwkt_gettoken(&A); /* H1 holds it */
    atomic_store(&w1_had_d, lwkt_cnttoken(&D) == 1 && LWKT_TOKEN_HELD_EXCL(&D));
    atomic_store(&w1_got, 1);
    lwkt_reltoken(&A);
    lwkt_reltoken(&D);
    return NULL;
}

static void *w2(void *arg) {
    (void)arg;
    atomic_store(&w2_waiting, 1);
    lwkt_gettoken_shared(&C); /* H2 holds it exclusively */
    atomic_store(&w2_got, 1);
    lwkt_reltoken(&C);
    return NULL;
}

static void *r(void *arg) {
    (void)arg;
    char c = 0;
    lwkt_gettoken(&E);
    atomic_store(&r_armed, 1);
    ssize_t n = read(rpipe[0], &c, 1);
    atomic_store(&r_held_e, n == 1 && c == 'p' && LWKT_TOKEN_HELD_EXCL(&E));
    atomic_store(&r_returned, 1);
    lwkt_reltoken(&E);
    return NULL;
}

/* Is a thread asleep waiting for tok? (t_waiters: documented in lwkt.h.) */
static int has_sleeper(lwkt_token_t tok) {
    return __atomic_load_n(&tok->t_waiters, __ATOMIC_RELAXED) != 0;
}

/* ---- the child ---------------------------------------------------------- */

static atomic_int c_done, c_got;
static void *c_probe(void *arg) {
    lwkt_token_t tok = arg;
    int got = lwkt_trytoken(tok);
    if (got)
        lwkt_reltoken(tok);
    atomic_store(&c_got, got);
    atomic_store(&c_done, 1);
    return NULL;
}
/* A thread of the child tries tok, the caller spins for the answer. */
static int c_other_can_take(lwkt_token_t tok) {
    atomic_store(&c_done, 0);
    pthread_t t = start_thread(c_probe, tok);
    SPIN_UNTIL(c_done);
    CHECK(pthread_detach(t) == 0);
    return atomic_load(&c_got);
}

static int cpipe[2];
static atomic_int cr_armed, cr_ok;
static void *c_reader(void *arg) {
    (void)arg;
    char c = 0;
    lwkt_gettoken(&A);
    atomic_store(&cr_armed, 1);
    ssize_t n = read(cpipe[0], &c, 1);
    atomic_store(&cr_ok, n == 1 && c == 'c' && LWKT_TOKEN_HELD_EXCL(&A));
    lwkt_reltoken(&A);
    return NULL;
}

static void child(void) {
    start_watchdog(TEST_DEADLINE_S);
    CHECK_EQ(lwkt_cnttoken(&Fk), 1);
    CHECK(LWKT_TOKEN_HELD_EXCL(&Fk));
    for (int i = 0; i < NALL; i++)
        lwkt_gettoken(all[i]); /* F recursively */
    for (int i = 0; i < NALL; i++) {
        CHECK(LWKT_TOKEN_HELD_EXCL(all[i]));
        CHECK(!c_other_can_take(all[i]));
    }
    for (int i = NALL - 1; i >= 0; i--)
        lwkt_reltoken(all[i]);
    lwkt_reltoken(&Fk);
    ASSERT_NO_TOKENS_HELD();
    for (int i = 0; i < NALL; i++)
        CHECK(c_other_can_take(all[i]));

    /* Release-on-block in the child. */
    CHECK(pipe(cpipe) == 0);
    pthread_t t = start_thread(c_reader, NULL);
    SPIN_UNTIL(cr_armed);
    lwkt_gettoken(&A); /* only once the reader blocked */
    lwkt_reltoken(&A);
    CHECK(write(cpipe[1], "c", 1) == 1);
    join_thread(t);
    CHECK(atomic_load(&cr_ok));

    /* Shared and waits: the words are ordinary tokens of the child now. */
    lwkt_gettoken_shared(&B);
    lwkt_gettoken_shared(&C);
    CHECK(!c_other_can_take(&B));
    lwkt_reltoken(&C);
    lwkt_reltoken(&B);
    printf("faults/fork child: ok\n");
    exit(0); /* atexit handlers and the library's exit path run */
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);
    CHECK(pipe(rpipe) == 0);
    pthread_t th1 = start_thread(h1, NULL), th2 = start_thread(h2, NULL);
    SPIN_UNTIL(h1_holds);
    SPIN_UNTIL(h2_holds);
    pthread_t tw1 = start_thread(w1, NULL), tw2 = start_thread(w2, NULL);
    pthread_t tr = start_thread(r, NULL);
    SPIN_UNTIL(w1_waiting);
    SPIN_UNTIL(w2_waiting);
    SPIN_UNTIL(r_armed);
    /* The waiters asleep in the kernel (they spin briefly first), R's E
     * released by its read(). */
    SPIN_UNTIL_COND(has_sleeper(&A) && has_sleeper(&C));
    SPIN_UNTIL_COND(other_thread_can_take(&D, 0) && other_thread_can_take(&E, 0));

    lwkt_gettoken(&Fk);
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0)
        child();

    /* The parent is unaffected. */
    CHECK(LWKT_TOKEN_HELD_EXCL(&Fk));
    lwkt_reltoken(&Fk);
    CHECK(!other_thread_can_take(&A, 0));
    CHECK(!other_thread_can_take(&B, 0));
    CHECK(other_thread_can_take(&B, 1)); /* shared by H1 and H2 */
    CHECK(!other_thread_can_take(&C, 1));

    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "FAIL: the fork child failed (status %#x)\n", st);
        return 1;
    }
    /* Still unaffected after the child took and released everything. */
    CHECK(!atomic_load(&w1_got));
    CHECK(!atomic_load(&w2_got));
    CHECK(!atomic_load(&r_returned));
    CHECK(!other_thread_can_take(&A, 0));
    CHECK(!other_thread_can_take(&C, 0));

    atomic_store(&h2_release, 1);
    join_thread(th2);
    join_thread(tw2);
    CHECK(atomic_load(&w2_got));
    CHECK(!atomic_load(&w1_got));
    atomic_store(&h1_release, 1);
    join_thread(th1);
    join_thread(tw1);
    CHECK(atomic_load(&w1_got));
    CHECK(atomic_load(&w1_had_d));
    CHECK(write(rpipe[1], "p", 1) == 1);
    join_thread(tr);
    CHECK(atomic_load(&r_held_e));
    for (int i = 0; i < NALL; i++) {
        CHECK(lwkt_trytoken(all[i]));
        lwkt_reltoken(all[i]);
    }
    printf("faults/fork: ok\n");
    return 0;
}
