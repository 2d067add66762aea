/*
 * list_walk.c: walk a list under a token, block on the way, re-validate.
 *
 * main walks a list guarded by list_token and fills each item with a value
 * that it asks the feeder thread for over a pipe. The read() of the answer
 * blocks, so list_token is released until it returns, and the feeder uses
 * that moment once to add an item at the head. lwkt_token_lost_since()
 * tells main that another thread held list_token meanwhile, so main starts
 * again from the head instead of trusting its old position.
 *
 * Build and run from the repository root, after `cargo run --release`:
 *   cc -Iinclude examples/list_walk.c -Ltarget/release -llwkt \
 *      -Wl,-rpath,$PWD/target/release -pthread -o list_walk && ./list_walk
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include <lwkt.h>

struct item {
    struct item *next;
    int key;
    int filled;
    long value;
};

static struct lwkt_token list_token = LWKT_TOKEN_INITIALIZER(list_token);
static struct item items[4];
static struct item *list_head; /* the list and its items: guarded by list_token */
static int requests[2], answers[2]; /* pipes to and from the feeder */

/* Answers each key with its value (key * 10). While main waits for the
 * value of key 2, it adds item 4 at the head of the list. */
static void *feeder(void *arg) {
    (void)arg;
    int key, added = 0;
    while (read(requests[0], &key, sizeof key) == sizeof key) {
        if (key == 2 && !added) {
            lwkt_gettoken(&list_token); /* free: main is blocked in read() */
            items[3].next = list_head;
            list_head = &items[3];
            lwkt_reltoken(&list_token);
            added = 1;
        }
        long value = key * 10L;
        if (write(answers[1], &value, sizeof value) != sizeof value)
            break;
    }
    return NULL;
}

int main(void) {
    for (int i = 0; i < 4; i++)
        items[i].key = i + 1;
    items[0].next = &items[1];
    items[1].next = &items[2];
    list_head = &items[0]; /* 1 -> 2 -> 3; item 4 comes later */
    pthread_t feeder_thread;
    if (pipe(requests) != 0 || pipe(answers) != 0 ||
        pthread_create(&feeder_thread, NULL, feeder, NULL) != 0)
        return 1;

    int restarts = 0;
    lwkt_gettoken(&list_token);
    struct item *it = list_head;
    while (it != NULL) {
        if (!it->filled) {
            lwkt_mark_t mark = lwkt_mark();
            long value;
            if (write(requests[1], &it->key, sizeof it->key) != sizeof it->key ||
                read(answers[0], &value, sizeof value) != sizeof value) /* blocks */
                return 1;
            if (lwkt_token_lost_since(&list_token, mark)) {
                /* Another thread held list_token while we were blocked:
                 * `it` and it->next may be stale. Start again. */
                restarts++;
                it = list_head;
                continue;
            }
            it->value = value; /* nobody else held it: `it` is still good */
            it->filled = 1;
        }
        it = it->next;
    }
    /* Every item is filled, the one added meanwhile too: 4 items, sum 100. */
    int count = 0;
    long sum = 0;
    for (it = list_head; it != NULL; it = it->next, count++)
        sum += it->filled ? it->value : 0;
    lwkt_reltoken(&list_token);

    close(requests[1]); /* the feeder's read() returns 0: it ends */
    pthread_join(feeder_thread, NULL);
    int ok = count == 4 && sum == 100 && restarts == 1;
    printf("list_walk: %d items, sum %ld, %d restart: %s\n", count, sum, restarts,
           ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}
