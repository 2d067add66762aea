/*
 * producer_consumer.c: tokens mixed with a mutex and condition variables.
 *
 * A bounded queue is guarded by a token, queue_token. Threads that find it
 * empty (consumers) or full (producers) sleep on a condition variable,
 * whose mutex, wake_mutex, serves only to make "check, then sleep" safe
 * against a wake-up sent in between.
 *
 * A thread waits on the condition variable while it holds queue_token.
 * With a mutex in place of the token that would be a deadlock: nobody
 * could change the queue, so nobody would ever wake it. With a token it is
 * fine: pthread_cond_wait blocks, so queue_token is released while the
 * thread sleeps and taken back before pthread_cond_wait returns. The
 * program shows it: it starts the consumers alone, waits until every one
 * of them sleeps holding queue_token, and only then takes queue_token
 * itself and starts the producers.
 *
 * After a wait the queue has changed (that is why the thread was woken),
 * so each waiter looks at it again, and lwkt_token_lost_since() confirms
 * that another thread held queue_token meanwhile.
 *
 * The exit status checks that every item produced was consumed exactly
 * once; a watchdog turns a hang into a message and exit status 1.
 *
 * Build and run from the repository root, after `cargo run --release`:
 *   cc -Iinclude examples/producer_consumer.c -Ltarget/release -llwkt \
 *      -Wl,-rpath,$PWD/target/release -pthread -o producer_consumer \
 *      && ./producer_consumer
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <lwkt.h>

#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS_PER_PRODUCER 2000
#define ITEMS (PRODUCERS * ITEMS_PER_PRODUCER)
#define QUEUE_SIZE 8

/* ---- Guarded by queue_token -------------------------------------------- */

static struct lwkt_token queue_token = LWKT_TOKEN_INITIALIZER(queue_token);
static int queue[QUEUE_SIZE]; /* a ring: q_count items from q_first on */
static int q_first, q_count;
static int producers_done;          /* no more items will come */
static int threads_asleep;          /* in pthread_cond_wait, holding it */
static int times_consumed[ITEMS];   /* how often each item was taken */
static int sleeps, sleeps_that_saw_the_token_taken; /* see wait_until() */

/* ---- Wake-ups ------------------------------------------------------------ */

static pthread_mutex_t wake_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;

/* Sleep on `cond` until `ready()` holds. Called holding queue_token and
 * wake_mutex, returns holding both; `ready` reads state guarded by
 * queue_token. Whoever makes `ready` true does it under queue_token, then
 * signals under wake_mutex, so the signal cannot slip in between our check
 * and our sleep: we hold wake_mutex from the check until
 * pthread_cond_wait releases it. */
static void wait_until(pthread_cond_t *cond, int (*ready)(void)) {
    if (ready())
        return;
    lwkt_mark_t mark = lwkt_mark();
    do {
        threads_asleep++;
        /* Blocks: queue_token is released until it returns. */
        pthread_cond_wait(cond, &wake_mutex);
        threads_asleep--;
        /* Back holding queue_token and wake_mutex. Look at the queue
         * again: the wake-up may have been spurious. */
    } while (!ready());
    /* ready() was false at the mark and is true now: another thread held
     * queue_token meanwhile, and lwkt_token_lost_since() must say so. */
    sleeps++;
    if (lwkt_token_lost_since(&queue_token, mark))
        sleeps_that_saw_the_token_taken++;
}

static int queue_not_empty_or_done(void) {
    return q_count > 0 || producers_done;
}

static int queue_not_full(void) {
    return q_count < QUEUE_SIZE;
}

static void signal_under_mutex(pthread_cond_t *cond) {
    pthread_mutex_lock(&wake_mutex);
    pthread_cond_signal(cond);
    pthread_mutex_unlock(&wake_mutex);
}

static void *producer(void *arg) {
    int first_item = (int)(long)arg * ITEMS_PER_PRODUCER;
    for (int item = first_item; item < first_item + ITEMS_PER_PRODUCER; item++) {
        lwkt_gettoken(&queue_token);
        /* May block (another thread holds it): queue_token is released
         * meanwhile, which is why wait_until() reads the queue after it. */
        pthread_mutex_lock(&wake_mutex);
        wait_until(&not_full, queue_not_full);
        pthread_mutex_unlock(&wake_mutex);
        queue[(q_first + q_count) % QUEUE_SIZE] = item;
        q_count++;
        signal_under_mutex(&not_empty);
        lwkt_reltoken(&queue_token);
    }
    return NULL;
}

static void *consumer(void *arg) {
    (void)arg;
    for (;;) {
        lwkt_gettoken(&queue_token);
        pthread_mutex_lock(&wake_mutex);
        wait_until(&not_empty, queue_not_empty_or_done);
        pthread_mutex_unlock(&wake_mutex);
        if (q_count == 0) { /* and producers_done: all consumed */
            lwkt_reltoken(&queue_token);
            return NULL;
        }
        int item = queue[q_first];
        q_first = (q_first + 1) % QUEUE_SIZE;
        q_count--;
        times_consumed[item]++;
        signal_under_mutex(&not_full);
        lwkt_reltoken(&queue_token);
    }
}

static void watchdog(int sig) {
    (void)sig;
    static const char msg[] = "producer_consumer: the watchdog fired: deadlock?\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(1);
}

static pthread_t start(void *(*fn)(void *), long arg) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, (void *)arg) != 0) {
        fprintf(stderr, "producer_consumer: pthread_create failed\n");
        exit(1);
    }
    return t;
}

int main(void) {
    signal(SIGALRM, watchdog);
    alarm(60);

    pthread_t consumers[CONSUMERS], producers[PRODUCERS];
    for (long i = 0; i < CONSUMERS; i++)
        consumers[i] = start(consumer, i);

    /* Wait until every consumer sleeps in pthread_cond_wait, each holding
     * queue_token as far as it knows. That this thread can take
     * queue_token to look is the proof that sleeping released it. */
    int asleep;
    do {
        lwkt_gettoken(&queue_token);
        asleep = threads_asleep;
        lwkt_reltoken(&queue_token);
    } while (asleep < CONSUMERS);
    printf("producer_consumer: %d consumers asleep holding queue_token; "
           "the producers can take it\n",
           asleep);

    for (long i = 0; i < PRODUCERS; i++)
        producers[i] = start(producer, i);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(producers[i], NULL);

    /* No more items: wake every consumer so that it sees it and returns. */
    lwkt_gettoken(&queue_token);
    producers_done = 1;
    pthread_mutex_lock(&wake_mutex);
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&wake_mutex);
    lwkt_reltoken(&queue_token);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(consumers[i], NULL);

    /* Every thread has returned: nothing else touches the queue. */
    int ok = 1;
    for (int item = 0; item < ITEMS; item++) {
        if (times_consumed[item] != 1) {
            fprintf(stderr, "producer_consumer: item %d consumed %d times\n", item,
                    times_consumed[item]);
            ok = 0;
        }
    }
    /* Every consumer slept at least once (main saw them all asleep), and
     * every sleep ended because another thread changed the queue. */
    if (sleeps < CONSUMERS || sleeps_that_saw_the_token_taken != sleeps) {
        fprintf(stderr, "producer_consumer: %d sleeps, %d saw queue_token taken meanwhile\n",
                sleeps, sleeps_that_saw_the_token_taken);
        ok = 0;
    }
    printf("producer_consumer: %d items from %d producers to %d consumers, %s; "
           "%d sleeps on a condition variable holding queue_token, "
           "%d of them saw it taken meanwhile\n",
           ITEMS, PRODUCERS, CONSUMERS, ok ? "each consumed exactly once" : "INCONSISTENT",
           sleeps, sleeps_that_saw_the_token_taken);
    return ok ? 0 : 1;
}
