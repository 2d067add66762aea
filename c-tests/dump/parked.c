/* Threads parked in known token states, for `lwkt-run --dump` and
 * `--top` to read from outside (driven by c-tests/dump.rs):
 *
 *   holder-x   holds "dump excl" exclusively (spins: sleeping would
 *              release it)
 *   holder-s1  holds "dump shared" shared (spins)
 *   holder-s2  holds "dump shared" shared (spins)
 *   waiter     waits for "dump excl" exclusively
 *   reader     holds "dump reader" exclusively and blocks in read() on an
 *              empty pipe, which releases it
 *
 * Prints "ready" once the holders hold and the others are started, then
 * waits for its standard input to close; then it lets everything go and
 * exits 0. The states the driver checks are reached soon after "ready"
 * (the waiter and the reader get there by themselves): the driver polls
 * with a deadline.
 */
#define _GNU_SOURCE
#include <lwkt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static struct lwkt_token excl_tok = LWKT_TOKEN_INITIALIZER(dump excl);
static struct lwkt_token shared_tok = LWKT_TOKEN_INITIALIZER(dump shared);
static struct lwkt_token reader_tok = LWKT_TOKEN_INITIALIZER(dump reader);

static atomic_int holding;
static atomic_int stop;
static int pipe_fds[2];

static void spin_until_stop(void) {
    while (!atomic_load(&stop)) {
        /* A spin, no system call: the token stays held. */
        __asm__ volatile("pause");
    }
}

static void *holder_x(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "holder-x");
    lwkt_gettoken(&excl_tok);
    atomic_fetch_add(&holding, 1);
    spin_until_stop();
    lwkt_reltoken(&excl_tok);
    return NULL;
}

static void *holder_s(void *arg) {
    pthread_setname_np(pthread_self(), (const char *)arg);
    lwkt_gettoken_shared(&shared_tok);
    atomic_fetch_add(&holding, 1);
    spin_until_stop();
    lwkt_reltoken(&shared_tok);
    return NULL;
}

static void *waiter(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "waiter");
    lwkt_gettoken(&excl_tok);
    lwkt_reltoken(&excl_tok);
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "reader");
    lwkt_gettoken(&reader_tok);
    char c;
    if (read(pipe_fds[0], &c, 1) != 1) {
        perror("parked: read");
        exit(1);
    }
    if (!lwkt_token_held_excl(&reader_tok)) {
        fprintf(stderr, "parked: reader lost its token across read()\n");
        exit(1);
    }
    lwkt_reltoken(&reader_tok);
    return NULL;
}

int main(void) {
    /* Where Yama allows only ancestors to read a process, allow the
     * driver's lwkt-run (a sibling) to. Elsewhere this fails harmlessly. */
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    if (pipe(pipe_fds) != 0) {
        perror("parked: pipe");
        return 1;
    }
    pthread_t t[6];
    pthread_create(&t[0], NULL, holder_x, NULL);
    pthread_create(&t[1], NULL, holder_s, "holder-s1");
    pthread_create(&t[2], NULL, holder_s, "holder-s2");
    while (atomic_load(&holding) < 3) {
        __asm__ volatile("pause");
    }
    pthread_create(&t[3], NULL, waiter, NULL);
    pthread_create(&t[4], NULL, reader, NULL);
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    atomic_store(&stop, 1);
    if (write(pipe_fds[1], "x", 1) != 1) {
        perror("parked: write");
        return 1;
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
    }
    printf("done\n");
    return 0;
}
