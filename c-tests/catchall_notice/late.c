/*
 * c-tests/catchall_notice/late.c: liblwkt.so (argv[1]) loaded by dlopen()
 * into a process that already runs a second thread, as a plugin is. The
 * library must then leave libc's code alone (another thread could be
 * running the bytes it would rewrite): libc's getppid keeps its own first
 * byte, and a thread still takes and releases a token. Not linked with
 * -llwkt. Prints "late: done".
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include <lwkt.h>

static atomic_int stop;

static void *idle(void *arg) {
    (void)arg;
    while (!atomic_load(&stop))
        usleep(1000);
    return NULL;
}

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(late_T);
static void (*get)(struct lwkt_token *);
static void (*rel)(struct lwkt_token *);

static void *use_token(void *arg) {
    (void)arg;
    get(&T);
    rel(&T);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: late LIBLWKT\n");
        return 2;
    }
    pthread_t other, user;
    if (pthread_create(&other, NULL, idle, NULL) != 0)
        return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "late: dlopen: %s\n", dlerror());
        return 2;
    }
    get = (void (*)(struct lwkt_token *))dlsym(lib, "lwkt_gettoken");
    rel = (void (*)(struct lwkt_token *))dlsym(lib, "lwkt_reltoken");
    if (get == NULL || rel == NULL) {
        fprintf(stderr, "late: no lwkt_gettoken/lwkt_reltoken\n");
        return 2;
    }
    const unsigned char *g = (const unsigned char *)dlsym(RTLD_DEFAULT, "getppid");
    if (g == NULL || g[0] != 0xb8) {
        fprintf(stderr, "late: libc's getppid was rewritten in a threaded process\n");
        return 1;
    }
    if (pthread_create(&user, NULL, use_token, NULL) != 0 || pthread_join(user, NULL) != 0)
        return 2;
    atomic_store(&stop, 1);
    pthread_join(other, NULL);
    printf("late: done\n");
    return 0;
}
