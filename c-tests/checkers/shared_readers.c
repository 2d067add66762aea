/*
 * checkers/shared_readers.c: a table filled under an exclusive hold of a
 * token made with lwkt_token_init, then read by several threads at once
 * under shared holds (recursive, and one taken with lwkt_trytoken_shared),
 * then written again exclusively, and the token retired. A race checker
 * must report nothing.
 *
 * -DRACY: each reader also writes a variable while holding the token only
 * shared, which is a race between the readers that the checker must
 * report: shared holders are not ordered with each other.
 */
#include <lwkt.h>
#include <pthread.h>
#include <stdio.h>

#define READERS 4
#define SIZE 64

static struct lwkt_token table_token;
static long table[SIZE] LWKT_GUARDED_BY(&table_token);
static long hits LWKT_GUARDED_BY(&table_token);
static long sums[READERS];

static long sum_table(void) LWKT_REQUIRES_SHARED(&table_token);

static long sum_table(void) {
    long s = 0;
    for (int i = 0; i < SIZE; i++)
        s += table[i];
    return s;
}

static void *reader(void *arg) {
    long id = (long)arg;
    for (int round = 0; round < 3; round++) {
        lwkt_gettoken_shared(&table_token);
        lwkt_gettoken_shared(&table_token); /* recursive */
        sums[id] = sum_table();
#ifdef RACY
        hits++; /* a write under a shared hold */
#endif
        lwkt_reltoken(&table_token);
        lwkt_reltoken(&table_token);
        if (lwkt_trytoken_shared(&table_token)) {
            sums[id] = sum_table();
            lwkt_reltoken(&table_token);
        }
    }
    return NULL;
}

int main(void) {
    pthread_t r[READERS];
    lwkt_token_init(&table_token, "table_token");
    lwkt_gettoken(&table_token);
    for (int i = 0; i < SIZE; i++)
        table[i] = i;
    lwkt_reltoken(&table_token);
    for (long i = 0; i < READERS; i++)
        pthread_create(&r[i], NULL, reader, (void *)i);
    for (int i = 0; i < READERS; i++)
        pthread_join(r[i], NULL);
    lwkt_gettoken(&table_token);
    table[0] = -1;
    hits = 0;
    long after = sum_table();
    lwkt_reltoken(&table_token);
    lwkt_token_uninit(&table_token);
    int ok = 1;
    for (int i = 0; i < READERS; i++)
        ok &= sums[i] == SIZE * (SIZE - 1) / 2;
    printf("shared_readers: %s (sum after %ld)\n", ok ? "ok" : "WRONG", after);
    return ok ? 0 : 1;
}
