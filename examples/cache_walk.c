/*
 * cache_walk.c: a cache whose refill blocks, re-validated after each block.
 *
 * The cache is a linked list of entries guarded by one token, cache_token.
 * The walker (the main thread) goes down the list and refills every entry
 * that is not filled yet. A refill asks the backend thread for the value
 * over a pipe and waits for the answer in read(): the read blocks, so
 * cache_token is released while it waits and taken back before read()
 * returns. Other threads may use the cache meanwhile. Here the backend
 * does, on purpose, during the first refills: it adds an entry, removes
 * one, and changes one, the kind of thing any other thread of a real
 * program could do at that moment.
 *
 * So after the read the walker cannot trust what it read before it: the
 * entry it was refilling may have been freed or changed, and its next
 * pointer may be stale. It asks lwkt_token_lost_since() whether another
 * thread held cache_token since a mark taken before the refill and, if so,
 * starts again from the head. If nobody took the token, everything it read
 * is still true and it goes on: no restart when none is needed.
 *
 * At the end it checks, still under the token, that every entry is filled
 * with the value the backend gives for its current version, and that the
 * list holds exactly the keys it should; it exits with status 1 otherwise.
 * The backend changes the cache only while the walker waits for it, so the
 * number of restarts is known in advance and checked too: no timing.
 *
 * Build and run from the repository root, after `cargo run --release`:
 *   cc -Iinclude examples/cache_walk.c -Ltarget/release -llwkt \
 *      -Wl,-rpath,$PWD/target/release -pthread -o cache_walk && ./cache_walk
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lwkt.h>

/* ---- The cache: a list of entries, all guarded by cache_token ---------- */

struct entry {
    struct entry *next;
    int key;
    int version; /* bumped when the data behind the key changes */
    int filled;  /* value holds the data of this version */
    long value;
};

static struct lwkt_token cache_token = LWKT_TOKEN_INITIALIZER(cache_token);
static struct entry *cache_head;

/* The data the backend holds for a key at a version. */
static long backend_value(int key, int version) {
    return key * 1000L + version;
}

static void die(const char *what) {
    fprintf(stderr, "cache_walk: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct entry *new_entry(int key, struct entry *next) {
    struct entry *e = calloc(1, sizeof *e);
    if (e == NULL)
        die("calloc");
    e->key = key;
    e->next = next;
    return e;
}

/* ---- The backend: answers refills over a pair of pipes ----------------- */

struct request {
    int key;
    int version;
};

static int request_pipe[2], reply_pipe[2];

/* read() until `len` bytes have come; 0 at end of file. */
static int read_all(int fd, void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n == 0)
            return 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("read");
        }
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

static void write_all(int fd, const void *buf, size_t len) {
    if (write(fd, buf, len) != (ssize_t)len) /* pipe writes this small are whole */
        die("write");
}

/* Ask the backend for a value and wait for it. The read blocks until the
 * backend answers: every token the caller holds is released meanwhile. */
static long fetch(int key, int version) {
    struct request rq = {key, version};
    long value;
    write_all(request_pipe[1], &rq, sizeof rq);
    if (!read_all(reply_pipe[0], &value, sizeof value)) {
        fprintf(stderr, "cache_walk: the backend went away\n");
        exit(1);
    }
    return value;
}

static struct entry *find(int key) {
    for (struct entry *e = cache_head; e != NULL; e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

/* Remove the entry of `key` from the list and free it. */
static void remove_entry(int key) {
    for (struct entry **link = &cache_head; *link != NULL; link = &(*link)->next) {
        if ((*link)->key == key) {
            struct entry *gone = *link;
            *link = gone->next;
            free(gone);
            return;
        }
    }
}

/* What the backend does to the cache while the walker waits for the value
 * of `key`: one change the first time key 2, 4 and 6 are asked for. It
 * takes cache_token to make it, and gets it at once: the walker, blocked
 * in read(), has released it. (It takes the token only to change
 * something: each time another thread takes it, the walker has to restart.) */
static int changes_made;

static void change_cache_while_walker_waits(int key) {
    static int added, removed, bumped;
    if (key == 2 && !added) {
        /* A new entry at the head, not filled yet: the walker has passed
         * the head and would never see it without starting again. */
        added = 1;
        lwkt_gettoken(&cache_token);
        cache_head = new_entry(100, cache_head);
        lwkt_reltoken(&cache_token);
    } else if (key == 4 && !removed) {
        /* Remove (and free) the very entry being refilled: the walker's
         * pointer to it, and so its next pointer, now point at freed memory. */
        removed = 1;
        lwkt_gettoken(&cache_token);
        remove_entry(4);
        lwkt_reltoken(&cache_token);
    } else if (key == 6 && !bumped) {
        /* The data behind the key being refilled changes: the value on its
         * way to the walker is already out of date. */
        bumped = 1;
        lwkt_gettoken(&cache_token);
        struct entry *e = find(6);
        e->version++;
        e->filled = 0;
        lwkt_reltoken(&cache_token);
    } else {
        return;
    }
    changes_made++;
}

static void *backend(void *arg) {
    (void)arg;
    struct request rq;
    /* Until the walker closes the request pipe. */
    while (read_all(request_pipe[0], &rq, sizeof rq)) {
        change_cache_while_walker_waits(rq.key);
        long value = backend_value(rq.key, rq.version);
        write_all(reply_pipe[1], &value, sizeof value);
    }
    return NULL;
}

/* ---- The walker --------------------------------------------------------- */

static int refills, restarts;

/* Fill every entry of the cache. Called holding cache_token. */
static void refill_all(void) {
    struct entry *e = cache_head;
    while (e != NULL) {
        if (!e->filled) {
            lwkt_mark_t mark = lwkt_mark();
            long value = fetch(e->key, e->version); /* blocks: cache_token is released */
            refills++;
            if (lwkt_token_lost_since(&cache_token, mark)) {
                /* Another thread held cache_token while we waited: e may be
                 * freed or changed, e->next may be stale, the value may be
                 * out of date. Forget all of it and start again. (A real
                 * cache could look the key up again and keep the value if
                 * the version still matches.) */
                restarts++;
                e = cache_head;
                continue;
            }
            /* Nobody took the token: e and the list are as we left them. */
            e->value = value;
            e->filled = 1;
        }
        e = e->next;
    }
}

/* After the walk, under cache_token: is every entry filled with the data
 * of its version, and does the list hold exactly the keys it should, in
 * order (1..8 without 4, which the backend removed, and 100 at the head,
 * which it added)? Prints what is wrong if not. */
static int cache_is_consistent(long *sum) {
    static const int expected_keys[] = {100, 1, 2, 3, 5, 6, 7, 8};
    const int expected_count = sizeof expected_keys / sizeof expected_keys[0];
    int n = 0;
    *sum = 0;
    for (struct entry *e = cache_head; e != NULL; e = e->next, n++) {
        if (n == expected_count || e->key != expected_keys[n]) {
            fprintf(stderr, "cache_walk: unexpected key %d at position %d\n", e->key, n);
            return 0;
        }
        if (!e->filled) {
            fprintf(stderr, "cache_walk: key %d was never filled\n", e->key);
            return 0;
        }
        if (e->value != backend_value(e->key, e->version)) {
            fprintf(stderr, "cache_walk: key %d holds %ld, the data of version %d is %ld\n",
                    e->key, e->value, e->version, backend_value(e->key, e->version));
            return 0;
        }
        *sum += e->value;
    }
    if (n != expected_count) {
        fprintf(stderr, "cache_walk: %d entries, expected %d\n", n, expected_count);
        return 0;
    }
    return 1;
}

int main(void) {
    /* The cache starts with keys 1..8, none filled. */
    for (int key = 8; key >= 1; key--)
        cache_head = new_entry(key, cache_head);

    if (pipe(request_pipe) != 0 || pipe(reply_pipe) != 0)
        die("pipe");
    pthread_t backend_thread;
    if (pthread_create(&backend_thread, NULL, backend, NULL) != 0) {
        fprintf(stderr, "cache_walk: pthread_create failed\n");
        return 1;
    }

    lwkt_gettoken(&cache_token);
    refill_all();
    long sum;
    int ok = cache_is_consistent(&sum);
    lwkt_reltoken(&cache_token);

    close(request_pipe[1]); /* the backend sees end of file and returns */
    pthread_join(backend_thread, NULL);

    /* Every change the backend made happened while a refill waited, so
     * every one of them must have caused exactly one restart. */
    if (restarts != changes_made) {
        fprintf(stderr, "cache_walk: %d restarts for %d changes made during refills\n",
                restarts, changes_made);
        ok = 0;
    }
    printf("cache_walk: %d refills, %d restarts after the cache changed during a refill, "
           "sum %ld: %s\n",
           refills, restarts, sum, ok ? "consistent" : "INCONSISTENT");

    while (cache_head != NULL) {
        struct entry *next = cache_head->next;
        free(cache_head);
        cache_head = next;
    }
    return ok ? 0 : 1;
}
