/*
 * counter_plugin.c: a plugin that uses tokens inside a host that knows
 * nothing about them.
 *
 * It keeps named counters in a list guarded by one token, table_token.
 * Creating a counter is slow and blocks (here a 1 ms sleep stands for
 * loading the counter's saved value from a file or a database), and
 * table_token is released while it blocks: other threads keep counting
 * meanwhile, and may create the same counter. So after creating one,
 * add() asks lwkt_token_lost_since() whether anybody else held
 * table_token, and if so looks the name up again before inserting: two
 * counters for one name would split its count.
 *
 * Counters are never removed, so a pointer found under table_token stays
 * valid; only "is it there?" needs asking again.
 *
 * How the release happens in a plugin: its calls to libc (the sleep, the
 * futex waits inside malloc) resolve to the host's libc, not to the
 * symbols that liblwkt.so interposes; it is liblwkt's catch-all (on by
 * default, see the README) that releases the token around them. With the
 * catch-all off (LWKT_CATCHALL=0) the plugin stays correct: table_token is
 * then simply kept across the sleep, and no counter is made twice.
 *
 * Build from the repository root, after `cargo run --release`:
 *   cc -shared -fPIC -Iinclude examples/plugin/counter_plugin.c \
 *      -Ltarget/release -llwkt -Wl,-rpath,$PWD/target/release -o libcounter.so
 * and see host.c to run it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lwkt.h>

#include "counter_api.h"

struct counter {
    struct counter *next;
    char *name;
    long count;
};

/* Guarded by table_token. */
static struct lwkt_token table_token = LWKT_TOKEN_INITIALIZER(counter_table);
static struct counter *table;
static long made_twice_count;

static struct counter *find(const char *name) {
    for (struct counter *c = table; c != NULL; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

/* A new counter for `name`: slow, and it blocks. */
static struct counter *new_counter(const char *name) {
    struct counter *c = malloc(sizeof *c);
    if (c == NULL || (c->name = strdup(name)) == NULL) {
        fprintf(stderr, "counter_plugin: out of memory\n");
        abort();
    }
    c->next = NULL;
    c->count = 0;
    struct timespec one_ms = {0, 1000000};
    nanosleep(&one_ms, NULL); /* stands for loading its saved value */
    return c;
}

static void counter_add(const char *name) {
    struct counter *unused = NULL;
    lwkt_gettoken(&table_token);
    struct counter *c = find(name);
    if (c == NULL) {
        lwkt_mark_t mark = lwkt_mark();
        struct counter *fresh = new_counter(name); /* blocks: table_token is released */
        if (lwkt_token_lost_since(&table_token, mark) && (c = find(name)) != NULL) {
            /* Another thread created it while we were away: use theirs. */
            unused = fresh;
            made_twice_count++;
        } else {
            /* Nobody held table_token meanwhile (so it is still missing),
             * or somebody did and it is still missing: insert ours. */
            fresh->next = table;
            table = fresh;
            c = fresh;
        }
    }
    c->count++;
    lwkt_reltoken(&table_token);
    if (unused != NULL) { /* freed after releasing: free() may block too */
        free(unused->name);
        free(unused);
    }
}

/* Readers take table_token shared: they run side by side. */
static long counter_get(const char *name) {
    lwkt_gettoken_shared(&table_token);
    struct counter *c = find(name);
    long count = c != NULL ? c->count : 0;
    lwkt_reltoken(&table_token);
    return count;
}

static int counter_distinct(void) {
    int n = 0;
    lwkt_gettoken_shared(&table_token);
    for (struct counter *c = table; c != NULL; c = c->next)
        n++;
    lwkt_reltoken(&table_token);
    return n;
}

static long counter_made_twice(void) {
    lwkt_gettoken_shared(&table_token);
    long n = made_twice_count;
    lwkt_reltoken(&table_token);
    return n;
}

/* The one symbol the host looks up. */
const struct counter_api counter_api = {
    counter_add,
    counter_get,
    counter_distinct,
    counter_made_twice,
};
