/*
 * host.c: a program that does not link lwkt and loads a plugin that does.
 *
 * It dlopen()s the counter plugin (counter_plugin.c), which brings
 * liblwkt.so in as its own dependency, then counts names through it from
 * several threads at once and checks every count. The host never sees a
 * token: the plugin's table_token keeps its counters right, and is
 * released whenever a plugin call blocks.
 *
 * After building libcounter.so (counter_plugin.c), from the repository root:
 *   cc -Iexamples/plugin examples/plugin/host.c -pthread -ldl -o plugin_host
 *   ./plugin_host ./libcounter.so
 */
#define _GNU_SOURCE 1 /* RTLD_DEFAULT */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "counter_api.h"

#define THREADS 4
#define ROUNDS 50

static const char *const names[] = {
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
};
#define NAMES ((int)(sizeof names / sizeof names[0]))

static const struct counter_api *api;

/* Every thread counts every name ROUNDS times, all in the same order, so
 * that they often want to create the same counter at the same moment. */
static void *count_names(void *arg) {
    (void)arg;
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < NAMES; i++)
            api->add(names[i]);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH/TO/libcounter.so\n", argv[0]);
        return 2;
    }
    /* The point of this example: lwkt is not in this program until the
     * plugin brings it. */
    if (dlsym(RTLD_DEFAULT, "lwkt_gettoken") != NULL) {
        fprintf(stderr, "plugin_host: lwkt is already loaded (linked or preloaded): "
                        "this example wants a host without it\n");
        return 2;
    }
    void *plugin = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (plugin == NULL) {
        fprintf(stderr, "plugin_host: %s\n", dlerror());
        return 2;
    }
    api = dlsym(plugin, COUNTER_API_SYMBOL);
    if (api == NULL) {
        fprintf(stderr, "plugin_host: %s\n", dlerror());
        return 2;
    }

    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++) {
        if (pthread_create(&threads[t], NULL, count_names, NULL) != 0) {
            fprintf(stderr, "plugin_host: pthread_create failed\n");
            return 1;
        }
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);

    int ok = 1;
    for (int i = 0; i < NAMES; i++) {
        long count = api->get(names[i]);
        if (count != THREADS * ROUNDS) {
            fprintf(stderr, "plugin_host: %s counted %ld times, expected %d\n", names[i],
                    count, THREADS * ROUNDS);
            ok = 0;
        }
    }
    if (api->distinct() != NAMES) {
        fprintf(stderr, "plugin_host: %d counters for %d names\n", api->distinct(), NAMES);
        ok = 0;
    }
    printf("plugin_host: %d threads counted %d names %d times each through the plugin: %s; "
           "%ld counters made twice at once (one copy dropped each time)\n",
           THREADS, NAMES, ROUNDS, ok ? "every count right" : "WRONG COUNTS",
           api->made_twice());
    /* No dlclose: liblwkt.so stays loaded anyway once in (SPEC section 7). */
    return ok ? 0 : 1;
}
