/*
 * core/thread_exit.c: S9. A thread that exits holding tokens releases them
 * (all of them: exclusive, recursive, shared), a warning on stderr names
 * them, and a thread waiting for one of them gets it. A thread that exits
 * holding nothing prints nothing.
 *
 * stderr is captured by pointing fd 2 at a temporary file for the time the
 * exiting thread runs (no checks print meanwhile).
 */
#include "check.h"

static struct lwkt_token X1 = LWKT_TOKEN_INITIALIZER(exit_T1);
static struct lwkt_token X2 = LWKT_TOKEN_INITIALIZER(exit_T2);
static struct lwkt_token X3 = LWKT_TOKEN_INITIALIZER(exit_T3);

static atomic_int holding, waiter_asking, waiter_got;

static void deeper(void) {
    lwkt_gettoken_shared(&X2);
    pthread_exit(NULL); /* from a nested call, with three references */
}

static void *exit_holding(void *arg) {
    (void)arg;
    lwkt_gettoken(&X1);
    lwkt_gettoken(&X1);
    deeper();
    return NULL;
}

static void *exit_clean(void *arg) {
    (void)arg;
    lwkt_gettoken(&X1);
    lwkt_reltoken(&X1);
    return NULL;
}

/* Holds X3 until a waiter is asking for it, then returns holding it. */
static void *exit_with_waiter(void *arg) {
    (void)arg;
    lwkt_gettoken(&X3);
    atomic_store(&holding, 1);
    SPIN_UNTIL(waiter_asking);
    /* Give the waiter time to really wait (spin, then futex sleep); the
     * check below holds whether or not it got that far. */
    spin_for(0.05);
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    SPIN_UNTIL(holding);
    atomic_store(&waiter_asking, 1);
    lwkt_gettoken(&X3);
    atomic_store(&waiter_got, 1);
    lwkt_reltoken(&X3);
    return NULL;
}

/* Run fn in a thread, join it, and return what it wrote on stderr. */
static char *stderr_of_thread(void *(*fn)(void *)) {
    static char buf[4096];
    FILE *tmp = tmpfile();
    CHECK(tmp != NULL);
    fflush(stderr);
    int saved = dup(2);
    CHECK(saved >= 0);
    CHECK(dup2(fileno(tmp), 2) == 2);
    join_thread(start_thread(fn, NULL));
    CHECK(dup2(saved, 2) == 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = 0;
    fclose(tmp);
    return buf;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(2 * TEST_DEADLINE_S);

    char *err = stderr_of_thread(exit_holding);
    fprintf(stderr, "(captured: %s)\n", err);
    CHECK(strstr(err, "warning") != NULL);
    CHECK(strstr(err, "exit_T1") != NULL);
    CHECK(strstr(err, "exit_T2") != NULL);
    /* Free again, right after the join: taken exclusively, no waiting. */
    CHECK(lwkt_trytoken(&X1));
    CHECK(lwkt_trytoken(&X2));
    lwkt_reltoken(&X2);
    lwkt_reltoken(&X1);

    err = stderr_of_thread(exit_clean);
    CHECK(strstr(err, "lwkt") == NULL);
    CHECK(lwkt_trytoken(&X1));
    lwkt_reltoken(&X1);

    /* A waiter gets a token whose holder exits. */
    pthread_t w = start_thread(waiter, NULL);
    pthread_t h = start_thread(exit_with_waiter, NULL);
    join_thread(h);
    join_thread(w);
    CHECK(atomic_load(&waiter_got));

    printf("core/thread_exit: ok\n");
    return 0;
}
