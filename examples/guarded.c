/*
 * guarded.c: data guarded by a token, as the checkers see it.
 *
 * Four depositors add to a total under totals_token; an auditor takes the
 * token, notes the total, and blocks in read() while still holding it:
 * the token is released until read() returns, so the depositors go on,
 * and the auditor sees the total grow across the call.
 *
 * The same program for each checker (see "Using checkers" in README.md):
 * - clang's thread-safety analysis: `total` and `deposits` are declared
 *   LWKT_GUARDED_BY(&totals_token), deposit() LWKT_REQUIRES it, so
 *   touching them without the token does not compile with
 *   `clang -Wthread-safety -Werror`;
 * - ThreadSanitizer (`-fsanitize=thread`) and Helgrind: no report,
 *   although every access to the total is made by several threads.
 *
 * Build and run from the repository root, after `cargo run --release`:
 *   cc -Iinclude examples/guarded.c -Ltarget/release -llwkt \
 *      -Wl,-rpath,$PWD/target/release -pthread -o guarded && ./guarded
 *
 * The same under each checker:
 *   clang -Wthread-safety -Werror -Iinclude examples/guarded.c \
 *      -Ltarget/release -llwkt -Wl,-rpath,$PWD/target/release -pthread \
 *      -o guarded && ./guarded
 *   cc -fsanitize=thread -g -Iinclude examples/guarded.c -Ltarget/release \
 *      -llwkt -Wl,-rpath,$PWD/target/release -pthread -o guarded_tsan \
 *      && ./guarded_tsan
 *   valgrind --tool=helgrind ./guarded
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <lwkt.h>

#define DEPOSITORS 4
#define ROUNDS 1000

static struct lwkt_token totals_token = LWKT_TOKEN_INITIALIZER(totals_token);
static long total LWKT_GUARDED_BY(&totals_token);
static long deposits LWKT_GUARDED_BY(&totals_token);
static int wakeup[2]; /* the auditor's read() waits on this pipe */

static void deposit(long amount) LWKT_REQUIRES(&totals_token);

static void deposit(long amount) {
    total += amount;
    deposits++;
}

static void *depositor(void *arg) {
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        lwkt_gettoken(&totals_token);
        deposit(1);
        lwkt_reltoken(&totals_token);
    }
    return NULL;
}

/* Holds the token across a blocking read(); returns how much the total
 * grew meanwhile (the depositors ran while the token was released). */
static void *auditor(void *arg) {
    long *grew = arg;
    char c;
    lwkt_gettoken(&totals_token);
    long before = total;
    if (read(wakeup[0], &c, 1) != 1)
        perror("read");
    ASSERT_LWKT_TOKEN_HELD_EXCL(&totals_token); /* held again on return */
    *grew = total - before;
    lwkt_reltoken(&totals_token);
    return NULL;
}

int main(void) {
    pthread_t auditor_thread, depositors[DEPOSITORS];
    long grew = -1;
    if (pipe(wakeup) != 0) {
        perror("pipe");
        return 1;
    }
    pthread_create(&auditor_thread, NULL, auditor, &grew);
    for (int i = 0; i < DEPOSITORS; i++)
        pthread_create(&depositors[i], NULL, depositor, NULL);
    for (int i = 0; i < DEPOSITORS; i++)
        pthread_join(depositors[i], NULL);
    if (write(wakeup[1], "x", 1) != 1) {
        perror("write");
        return 1;
    }
    pthread_join(auditor_thread, NULL);

    long seen = -1, count = -1;
    if (lwkt_trytoken(&totals_token)) { /* nobody else holds it now */
        count = deposits;
        lwkt_reltoken(&totals_token);
    }
    lwkt_gettoken_shared(&totals_token);
    seen = total;
    lwkt_reltoken(&totals_token);

    int ok = seen == DEPOSITORS * ROUNDS && count == DEPOSITORS * ROUNDS && grew >= 0;
    printf("guarded: %ld deposits, total %ld: %s\n", count, seen, ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
