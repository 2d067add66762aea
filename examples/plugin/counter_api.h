/*
 * counter_api.h: what the counter plugin offers its host.
 *
 * The plugin (counter_plugin.c, built as a shared object linked with
 * -llwkt) defines one object, `counter_api`, holding its functions. The
 * host (host.c, which does not link lwkt) finds it with dlsym() and calls
 * through it. Nothing here mentions tokens: they are the plugin's business.
 */
#ifndef COUNTER_API_H
#define COUNTER_API_H

struct counter_api {
    /* Count one more occurrence of `name` (a counter is created on first use). */
    void (*add)(const char *name);
    /* The count of `name` so far (0 if it was never added). */
    long (*get)(const char *name);
    /* How many counters exist. */
    int (*distinct)(void);
    /* How often add(), after making a counter, found that another thread
     * had made the same one meanwhile (and dropped its own). */
    long (*made_twice)(void);
};

/* The name of the plugin's `const struct counter_api` object. */
#define COUNTER_API_SYMBOL "counter_api"

#endif
