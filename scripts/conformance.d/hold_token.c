/*
 * hold_token.c: an LD_PRELOAD helper for scripts/conformance that makes an
 * unmodified program hold serializing tokens whenever it runs, so that its
 * blocking calls go through liblwkt's holder path (probe the non-blocking
 * form, release every token, block, take every token back) instead of the
 * pass-through that a thread holding nothing gets.
 *
 * Why "held while running" and not "around one function": a token held from
 * the moment a thread starts until it ends is exactly "a token around each
 * request" for an event-loop server (redis: every epoll_wait -> handlers ->
 * epoll_wait cycle runs under it, and each read, write and epoll_wait that
 * blocks releases it and takes it back), and it needs no knowledge of the
 * program's internal functions, which are static, inlined or absent from
 * the dynamic symbol table in packaged binaries. It covers every thread,
 * including those the program starts later, and fork children (the forking
 * thread keeps its tokens in the child, SPEC S9).
 *
 * How:
 *   - a constructor takes the tokens in the main thread (and never releases
 *     them: exit() does not need it);
 *   - pthread_create is interposed (liblwkt does not hook it) so that each
 *     new thread takes the tokens before its start routine and releases them
 *     after it, or in a cancellation cleanup handler when it ends through
 *     pthread_exit or pthread_cancel, so no "exited holding" warning is
 *     printed for threads that end normally.
 *
 * Which tokens (environment variable LWKT_HOLD):
 *   own    (default) each thread holds hold_shared shared, then a token of
 *          its own exclusively: two references, both modes, released and
 *          taken back at every blocking call; threads never exclude each
 *          other, so the program's timing and progress stay its own.
 *   global every thread holds the one token hold_global exclusively: the
 *          program's threads run one at a time, as under a big lock, and
 *          interleave only where one blocks in a hooked call. A program
 *          that busy-waits for another thread without blocking (spins on a
 *          flag, sched_yield loops) cannot progress under it: that is the
 *          token contract (SPEC S1), not a fault, so this mode is only for
 *          programs that wait by blocking (redis's event loop, its bio
 *          threads waiting on condition variables).
 *
 * Build (scripts/conformance does it): the helper links against liblwkt.so
 * with an rpath to the same directory, so that the loader initialises
 * liblwkt before this helper's constructor runs; put liblwkt.so first in
 * LD_PRELOAD, then this helper.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lwkt.h>

static struct lwkt_token hold_shared = LWKT_TOKEN_INITIALIZER(hold_shared);
static struct lwkt_token hold_global = LWKT_TOKEN_INITIALIZER(hold_global);
static int global_mode;

/* A thread's own token lives in its start record (heap), which outlives
 * every reference to it: the thread releases it before the record is
 * freed. The main thread's is static. */
static struct lwkt_token main_own = LWKT_TOKEN_INITIALIZER(hold_main);

static void take(struct lwkt_token *own) {
    if (global_mode) {
        lwkt_gettoken(&hold_global);
    } else {
        lwkt_gettoken_shared(&hold_shared);
        lwkt_gettoken(own);
    }
}

static void drop(struct lwkt_token *own) {
    /* Most recent reference first (SPEC S6). */
    if (global_mode) {
        lwkt_reltoken(&hold_global);
    } else {
        lwkt_reltoken(own);
        lwkt_reltoken(&hold_shared);
    }
}

__attribute__((constructor)) static void hold_init(void) {
    const char *m = getenv("LWKT_HOLD");
    if (m == NULL || *m == '\0' || strcmp(m, "own") == 0) {
        global_mode = 0;
    } else if (strcmp(m, "global") == 0) {
        global_mode = 1;
    } else {
        static const char msg[] = "hold_token: LWKT_HOLD must be own or global\n";
        ssize_t r = write(2, msg, sizeof msg - 1);
        (void)r;
        _exit(2);
    }
    take(&main_own);
}

struct start {
    void *(*fn)(void *);
    void *arg;
    struct lwkt_token own;
};

static void on_exit_path(void *p) {
    struct start *s = p;
    drop(&s->own);
    lwkt_token_uninit(&s->own);
    free(s);
}

static void *trampoline(void *p) {
    struct start *s = p;
    void *ret;
    take(&s->own);
    pthread_cleanup_push(on_exit_path, s);
    ret = s->fn(s->arg);
    pthread_cleanup_pop(1);
    return ret;
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    static create_fn real;
    if (real == NULL)
        real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
    struct start *s = malloc(sizeof *s);
    if (s == NULL)
        return real(t, attr, fn, arg);
    s->fn = fn;
    s->arg = arg;
    lwkt_token_init(&s->own, "hold_thread");
    int r = real(t, attr, trampoline, s);
    if (r != 0)
        free(s);
    return r;
}
