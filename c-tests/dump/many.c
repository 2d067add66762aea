/* More threads than the registry's first chunk has slots (255): each
 * takes and gives back a token, then waits in read() holding nothing
 * (driven by c-tests/dump.rs, which counts them in the dump). Prints
 * "ready" once all have used their token; ends when its standard input
 * closes.
 */
#define _GNU_SOURCE
#include <lwkt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>

#define THREADS 300

static struct lwkt_token tok = LWKT_TOKEN_INITIALIZER(many);
static atomic_int used;
static int pipe_fds[2];

static void *worker(void *arg) {
    (void)arg;
    lwkt_gettoken(&tok);
    lwkt_reltoken(&tok);
    atomic_fetch_add(&used, 1);
    char c;
    if (read(pipe_fds[0], &c, 1) < 0) {
        perror("many: read");
    }
    return NULL;
}

int main(void) {
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    if (pipe(pipe_fds) != 0) {
        perror("many: pipe");
        return 1;
    }
    static pthread_t t[THREADS];
    pthread_attr_t small;
    pthread_attr_init(&small);
    pthread_attr_setstacksize(&small, 64 * 1024);
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&t[i], &small, worker, NULL) != 0) {
            perror("many: pthread_create");
            return 1;
        }
    }
    while (atomic_load(&used) < THREADS) {
        usleep(1000);
    }
    printf("ready\n");
    fflush(stdout);
    char buf[64];
    while (read(0, buf, sizeof buf) > 0) {
    }
    /* Closing the write end wakes every reader with end-of-file. */
    close(pipe_fds[1]);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    return 0;
}
