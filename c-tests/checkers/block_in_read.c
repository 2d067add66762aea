/*
 * checkers/block_in_read.c: threads update shared data only under a token
 * while one of them holds it across a blocking read() (the token is
 * released until read() returns, SPEC S4) and across a wait for a
 * contended token (everything released, then retaken). A race checker
 * must report nothing: every access is ordered by the token.
 *
 * -DRACY: one thread makes one increment outside the token, a race that
 * the checker must report (c-tests/checkers.rs builds both). Another
 * thread touches the counter under the token after it, ordered in time by
 * a relaxed flag, which orders nothing for the checker: the race is there
 * in every run, whatever the scheduling.
 */
#include <lwkt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#define ADDERS 3
#define ROUNDS 100

static struct lwkt_token data_token = LWKT_TOKEN_INITIALIZER(data_token);
static struct lwkt_token other_token = LWKT_TOKEN_INITIALIZER(other_token);
static long counter LWKT_GUARDED_BY(&data_token);
static long other LWKT_GUARDED_BY(&other_token);
static int wakeup[2];
static atomic_int racy_done;

static void *reader(void *arg) {
    (void)arg;
    char c;
    lwkt_gettoken(&data_token);
    counter++;
    /* Blocks holding the token: released meanwhile, held again after. */
    if (read(wakeup[0], &c, 1) != 1)
        perror("read");
    counter++;
    lwkt_reltoken(&data_token);
    return NULL;
}

static void *adder(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < ROUNDS; i++) {
        /* Two tokens, taken in an order that depends on the thread: a
         * contended one makes the thread release both while it waits. */
        lwkt_token_t first = id % 2 ? &data_token : &other_token;
        lwkt_token_t second = id % 2 ? &other_token : &data_token;
        lwkt_gettoken(first);
        lwkt_gettoken(second);
        counter++;
        other++;
        lwkt_reltoken(second);
        lwkt_reltoken(first);
    }
#ifdef RACY
    if (id == 0) {
        counter++; /* outside the token */
        atomic_store_explicit(&racy_done, 1, memory_order_relaxed);
    } else if (id == 1) {
        while (!atomic_load_explicit(&racy_done, memory_order_relaxed))
            ;
        lwkt_gettoken(&data_token);
        counter++;
        lwkt_reltoken(&data_token);
    }
#endif
    return NULL;
}

int main(void) {
    pthread_t r, a[ADDERS];
    if (pipe(wakeup) != 0)
        return 2;
    pthread_create(&r, NULL, reader, NULL);
    for (long i = 0; i < ADDERS; i++)
        pthread_create(&a[i], NULL, adder, (void *)i);
    for (int i = 0; i < ADDERS; i++)
        pthread_join(a[i], NULL);
    if (write(wakeup[1], "x", 1) != 1)
        return 2;
    pthread_join(r, NULL);
    lwkt_gettoken(&data_token);
    long c = counter;
    lwkt_reltoken(&data_token);
    lwkt_gettoken(&other_token);
    long o = other;
    lwkt_reltoken(&other_token);
    long want = ADDERS * ROUNDS + 2;
#ifdef RACY
    want += 2;
#endif
    printf("block_in_read: counter %ld of %ld, other %ld\n", c, want, o);
    return c == want && o == ADDERS * ROUNDS ? 0 : 1;
}
