/*
 * dlclose_host.c: a program that does not link lwkt loads liblwkt.so with
 * dlopen(), lets a thread take and release a token, closes the library
 * with dlclose() while that thread still lives, and carries on: the thread
 * exits (running the library's thread-exit destructor), new threads run,
 * memory is mapped over where the library may have been. SPEC section 7:
 * the library stays mapped once loaded, so none of this may crash.
 *
 * Usage: dlclose_host /path/to/liblwkt.so
 * Prints "still loaded after dlclose: yes|no", then "dlclose_host: ok";
 * exit 0. Exit 2: a set-up error (cannot load the library).
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lwkt.h>

static void (*p_init)(lwkt_token_t, const char *);
static void (*p_get)(lwkt_token_t);
static void (*p_rel)(lwkt_token_t);

static int used[2];   /* the user thread writes here once it used a token */
static int closed[2]; /* main writes here once the library is closed */
static struct lwkt_token tok;

static void *user(void *arg) {
    (void)arg;
    p_init(&tok, "dlclose_tok");
    p_get(&tok);
    p_rel(&tok);
    char c = 'u';
    if (write(used[1], &c, 1) != 1)
        abort();
    /* Still alive when the library is closed; exits afterwards. */
    if (read(closed[0], &c, 1) != 1)
        abort();
    return NULL;
}

static void *worker(void *arg) {
    long n = (long)arg, sum = 0;
    for (long i = 0; i < n; i++)
        sum += i;
    return (void *)sum;
}

static void *must_sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (p == NULL) {
        fprintf(stderr, "dlclose_host: %s: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc != 2) {
        fprintf(stderr, "usage: %s /path/to/liblwkt.so\n", argv[0]);
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "dlclose_host: dlopen: %s\n", dlerror());
        return 2;
    }
    /* POSIX guarantees these conversions of dlsym's result work. */
    *(void **)&p_init = must_sym(h, "lwkt_token_init");
    *(void **)&p_get = must_sym(h, "lwkt_gettoken");
    *(void **)&p_rel = must_sym(h, "lwkt_reltoken");
    if (pipe(used) != 0 || pipe(closed) != 0) {
        perror("dlclose_host: pipe");
        return 2;
    }

    pthread_t t;
    if (pthread_create(&t, NULL, user, NULL) != 0)
        return 2;
    char c;
    if (read(used[0], &c, 1) != 1)
        return 2;

    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose_host: dlclose: %s\n", dlerror());
        return 1;
    }
    void *again = dlopen(argv[1], RTLD_NOW | RTLD_NOLOAD);
    printf("still loaded after dlclose: %s\n", again != NULL ? "yes" : "no");

    /* Map memory where the library's code may have been, then let the
     * thread exit: its destructor must find the library's code. */
    for (int i = 0; i < 64; i++) {
        void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m != MAP_FAILED)
            memset(m, 0xcc, 1 << 20);
    }
    c = 'c';
    if (write(closed[1], &c, 1) != 1)
        return 2;
    pthread_join(t, NULL);

    /* More work: threads come and go. */
    for (long i = 0; i < 8; i++) {
        pthread_t w;
        void *r;
        if (pthread_create(&w, NULL, worker, (void *)(1000 * i)) != 0)
            return 2;
        pthread_join(w, &r);
        if ((long)r != (1000 * i) * (1000 * i - 1) / 2)
            return 1;
    }
    printf("dlclose_host: ok\n");
    return 0;
}
