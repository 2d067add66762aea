/*
 * hooks/cond_versions.c: the condition waits of both of glibc's versions
 * release tokens (SPEC section 4), however a caller reaches them.
 *
 * glibc exports pthread_cond_wait and pthread_cond_timedwait twice: the
 * current condition variable (GLIBC_2.3.2) and the old one (GLIBC_2.2.5,
 * what an unversioned reference binds to: valgrind DRD's preload). A
 * runtime that looks a version up by dlvsym (ThreadSanitizer's asks for
 * GLIBC_2.3.2) must find the hook too, and each version must wait with
 * its own condition variable (the old wait signalled by the old signal).
 *
 * For each way (dlvsym of either version and dlsym, from RTLD_DEFAULT
 * and, linked, from RTLD_NEXT; each of wait and timedwait) a holder of T waits on a
 * condition variable; a helper must be able to take T (it tries for
 * seconds, never blocking on it) before it signals with the same
 * version's signal; the holder returns with T, told it was taken.
 *
 * The test runs itself again under LWKT_CATCHALL=0: the catch-all would
 * release the tokens inside libc's wait when a hook is passed by, as it
 * cannot under valgrind or ThreadSanitizer.
 */
#include "check.h"

#include <dlfcn.h>

typedef int (*wait_fn)(pthread_cond_t *, pthread_mutex_t *);
typedef int (*timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_fn)(pthread_cond_t *);

/* One way of reaching the wait, with the signal of the same version. */
struct way {
    char name[96];
    wait_fn wait;           /* or NULL: timedwait is used */
    timedwait_fn timedwait;
    cond_fn signal;
    cond_fn destroy;
};

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(cond_versions_T);
static pthread_mutex_t M = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t CV;
static int go;                /* guarded by M */
static atomic_int waiting;    /* the holder is about to wait */
static atomic_int helper_took;
static const struct way *current;

static void *found(void *handle, const char *sym, const char *version) {
    void *f = version ? dlvsym(handle, sym, version) : dlsym(handle, sym);
    if (f == NULL) {
        fprintf(stderr, "FAIL: %s%s%s not found: %s\n", sym, version ? "@" : "",
                version ? version : "", dlerror());
        _exit(1);
    }
    return f;
}

static void *helper(void *arg) {
    (void)arg;
    SPIN_UNTIL(waiting);
    /* Only the wait's release lets T go: try, never block on it. */
    double end = now_s() + TEST_DEADLINE_S;
    while (!lwkt_trytoken(&T)) {
        if (now_s() > end) {
            fprintf(stderr, "FAIL: %s: the holder's wait kept its token\n", current->name);
            _exit(1);
        }
    }
    atomic_store(&helper_took, 1);
    lwkt_reltoken(&T);
    pthread_mutex_lock(&M);
    go = 1;
    CHECK_EQ(current->signal(&CV), 0);
    pthread_mutex_unlock(&M);
    return NULL;
}

static void wait_one_way(const struct way *w) {
    current = w;
    memset(&CV, 0, sizeof CV); /* PTHREAD_COND_INITIALIZER of both versions */
    go = 0;
    atomic_store(&waiting, 0);
    atomic_store(&helper_took, 0);
    pthread_t h = start_thread(helper, NULL);

    lwkt_gettoken(&T);
    lwkt_mark_t mark = lwkt_mark();
    pthread_mutex_lock(&M);
    atomic_store(&waiting, 1);
    while (!go) {
        int e;
        if (w->wait) {
            e = w->wait(&CV, &M);
        } else {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 2 * TEST_DEADLINE_S;
            e = w->timedwait(&CV, &M, &until);
        }
        if (e != 0) {
            fprintf(stderr, "FAIL: %s returned %s\n", w->name, strerror(e));
            _exit(1);
        }
    }
    pthread_mutex_unlock(&M);
    if (!LWKT_TOKEN_HELD_EXCL(&T) || !lwkt_token_lost_since(&T, mark) ||
        !atomic_load(&helper_took)) {
        fprintf(stderr, "FAIL: %s: T not held again, or not told it was taken\n", w->name);
        _exit(1);
    }
    lwkt_reltoken(&T);
    join_thread(h);
    CHECK_EQ(w->destroy(&CV), 0);
}

/* Run this process's command again, with LWKT_CATCHALL=0 (the plugin
 * host's and the linked program's alike: /proc/self/cmdline). */
static void again_without_catchall(void) {
    const char *e = getenv("LWKT_CATCHALL");
    if (e && strcmp(e, "0") == 0)
        return;
    static char cmdline[8192];
    static char *args[64];
    FILE *f = fopen("/proc/self/cmdline", "r");
    CHECK(f != NULL);
    size_t n = fread(cmdline, 1, sizeof cmdline - 1, f);
    fclose(f);
    CHECK(n > 0 && n < sizeof cmdline - 1);
    int argc = 0;
    for (size_t i = 0; i < n && argc < 63; i += strlen(cmdline + i) + 1)
        args[argc++] = cmdline + i;
    args[argc] = NULL;
    setenv("LWKT_CATCHALL", "0", 1);
    fflush(NULL);
    execv("/proc/self/exe", args);
    fprintf(stderr, "FAIL: execv /proc/self/exe: %s\n", strerror(errno));
    _exit(1);
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    again_without_catchall();
    start_watchdog(4 * TEST_DEADLINE_S);
    /* RTLD_NEXT from here: what a runtime linked before the library (the
     * program itself, for clang's ThreadSanitizer) finds. Only where the
     * library comes after this code in its scope: not from the plugin,
     * whose own scope (itself and libc) lacks the preloaded library. */
    void *handles[2] = {RTLD_DEFAULT, RTLD_NEXT};
    const char *handle_names[2] = {"RTLD_DEFAULT", "RTLD_NEXT"};
    const char *versions[3] = {"GLIBC_2.3.2", "GLIBC_2.2.5", NULL};
    int lwkt_next = dlsym(RTLD_NEXT, "lwkt_gettoken") != NULL;
    int ways = 0;
    for (int hi = 0; hi < 1 + lwkt_next; hi++) {
        for (int vi = 0; vi < 3; vi++) {
            for (int timed = 0; timed < 2; timed++) {
                const char *v = versions[vi];
                struct way w = {0};
                snprintf(w.name, sizeof w.name, "%s of pthread_cond_%s@%s", handle_names[hi],
                         timed ? "timedwait" : "wait", v ? v : "(dlsym)");
                if (timed)
                    w.timedwait = (timedwait_fn)found(handles[hi], "pthread_cond_timedwait", v);
                else
                    w.wait = (wait_fn)found(handles[hi], "pthread_cond_wait", v);
                w.signal = (cond_fn)found(handles[hi], "pthread_cond_signal", v);
                w.destroy = (cond_fn)found(handles[hi], "pthread_cond_destroy", v);
                wait_one_way(&w);
                ways++;
            }
        }
    }
    CHECK_EQ(ways, lwkt_next ? 12 : 6);
    return 0;
}
