/* A target that changes under its reader, then exits while being read
 * (driven by c-tests/dump.rs): threads that come and go, each taking
 * tokens (their states are registered and retired all the time), and
 * threads that take and give back tokens as fast as they can, exclusive
 * and shared, recursively. Runs for argv[1] milliseconds (default 2000)
 * after printing "ready", then exits without joining anybody.
 */
#define _GNU_SOURCE
#include <lwkt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static struct lwkt_token a_tok = LWKT_TOKEN_INITIALIZER(churn a);
static struct lwkt_token b_tok = LWKT_TOKEN_INITIALIZER(churn b);

static void *short_lived(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "short");
    lwkt_gettoken(&a_tok);
    lwkt_gettoken_shared(&b_tok);
    lwkt_reltoken(&b_tok);
    lwkt_reltoken(&a_tok);
    return NULL;
}

static void *spawner(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "spawner");
    for (;;) {
        pthread_t t;
        if (pthread_create(&t, NULL, short_lived, NULL) == 0) {
            pthread_join(t, NULL);
        }
    }
    return NULL;
}

static void *flipper(void *arg) {
    long shared = (long)arg;
    pthread_setname_np(pthread_self(), shared ? "flip-shared" : "flip-excl");
    for (;;) {
        if (shared) {
            lwkt_gettoken_shared(&b_tok);
            lwkt_gettoken_shared(&b_tok);
            lwkt_reltoken(&b_tok);
            lwkt_reltoken(&b_tok);
        } else {
            lwkt_gettoken(&a_tok);
            lwkt_gettoken(&b_tok);
            lwkt_gettoken(&a_tok);
            lwkt_reltoken(&a_tok);
            lwkt_reltoken(&b_tok);
            lwkt_reltoken(&a_tok);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    long ms = argc > 1 ? atol(argv[1]) : 2000;
    pthread_t t;
    pthread_create(&t, NULL, spawner, NULL);
    pthread_create(&t, NULL, spawner, NULL);
    pthread_create(&t, NULL, flipper, (void *)0);
    pthread_create(&t, NULL, flipper, (void *)0);
    pthread_create(&t, NULL, flipper, (void *)1);
    pthread_create(&t, NULL, flipper, (void *)1);
    printf("ready\n");
    fflush(stdout);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    _exit(0);
}
