/*
 * stats_report.c: processes whose LWKT_STATS report must arrive whole, in
 * the right place, and only when there is something to report (SPEC
 * section 7). c-tests/observe.rs runs it in these modes:
 *
 *   plain            take and release rep_T once; print "plain: ok"
 *   none             never touch a token; print "none: ok"
 *   close_std [FILE] take rep_T once; at exit close stdout and stderr as
 *                    GNU's close_stdout does (an atexit handler, which runs
 *                    before the library's), then, given FILE, open it as
 *                    descriptor 2
 *   chdir DIR        take rep_T once, then chdir(DIR) before exiting
 *   fork             take rep_P 10 times; fork: the child takes rep_C 3
 *                    times and exits; the parent waits, takes rep_P once
 *                    more; prints "child PID"
 *   four N           fork four children that each take N tokens of their
 *                    own ("c<child>_<j>") once, then wait until all four
 *                    are ready and exit together; the parent takes none
 *   many N           take N distinct tokens ("m<j>") twice each
 */
#include "check.h"

#include <fcntl.h>
#include <sys/wait.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(rep_T);
static struct lwkt_token P = LWKT_TOKEN_INITIALIZER(rep_P);
static struct lwkt_token C = LWKT_TOKEN_INITIALIZER(rep_C);

static const char *decoy;

static void take(lwkt_token_t t, int times) {
    for (int i = 0; i < times; i++) {
        lwkt_gettoken(t);
        lwkt_reltoken(t);
    }
}

/* What GNU's close_stdout does at exit, then maybe a new descriptor 2. */
static void close_std(void) {
    fclose(stdout);
    fclose(stderr);
    if (!decoy)
        return;
    int fd = open(decoy, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (fd != 2 && dup2(fd, 2) != 2))
        _exit(1);
}

/* n named tokens, each initialised with its own description. */
static struct lwkt_token *named_tokens(const char *prefix, long n) {
    struct lwkt_token *toks = calloc(n, sizeof *toks);
    CHECK(toks != NULL);
    for (long j = 0; j < n; j++) {
        char name[32];
        snprintf(name, sizeof name, "%s%ld", prefix, j);
        lwkt_token_init(&toks[j], strdup(name));
    }
    return toks;
}

static int four(long n) {
    int ready[2], go[2];
    CHECK(pipe(ready) == 0 && pipe(go) == 0);
    pid_t kids[4];
    for (int i = 0; i < 4; i++) {
        kids[i] = fork();
        CHECK(kids[i] >= 0);
        if (kids[i] == 0) {
            close(ready[0]);
            close(go[1]);
            char prefix[16];
            snprintf(prefix, sizeof prefix, "c%d_", i);
            struct lwkt_token *toks = named_tokens(prefix, n);
            for (long j = 0; j < n; j++)
                take(&toks[j], 1);
            CHECK(write(ready[1], "r", 1) == 1);
            char c;
            /* Returns 0 once the parent closes its end: all go at once. */
            CHECK(read(go[0], &c, 1) == 0);
            exit(0);
        }
    }
    close(ready[1]);
    close(go[0]);
    for (int i = 0; i < 4; i++) {
        char c;
        CHECK(read(ready[0], &c, 1) == 1);
    }
    close(go[1]);
    for (int i = 0; i < 4; i++) {
        int st;
        CHECK(waitpid(kids[i], &st, 0) == kids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    printf("four: ok\n");
    return 0;
}

int main(int argc, char **argv) {
    start_watchdog(TEST_DEADLINE_S);
    const char *mode = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : NULL;
    if (strcmp(mode, "plain") == 0) {
        take(&T, 1);
        printf("plain: ok\n");
        return 0;
    }
    if (strcmp(mode, "none") == 0) {
        printf("none: ok\n");
        return 0;
    }
    if (strcmp(mode, "close_std") == 0) {
        decoy = arg;
        take(&T, 1);
        CHECK(atexit(close_std) == 0);
        printf("close_std: ok\n");
        return 0;
    }
    if (strcmp(mode, "chdir") == 0 && arg) {
        take(&T, 1);
        CHECK(chdir(arg) == 0);
        printf("chdir: ok\n");
        return 0;
    }
    if (strcmp(mode, "fork") == 0) {
        take(&P, 10);
        fflush(stdout);
        pid_t kid = fork();
        CHECK(kid >= 0);
        if (kid == 0) {
            take(&C, 3);
            exit(0);
        }
        int st;
        CHECK(waitpid(kid, &st, 0) == kid);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        take(&P, 1);
        printf("child %d\n", (int)kid);
        return 0;
    }
    if (strcmp(mode, "four") == 0 && arg)
        return four(atol(arg));
    if (strcmp(mode, "many") == 0 && arg) {
        long n = atol(arg);
        struct lwkt_token *toks = named_tokens("m", n);
        for (long j = 0; j < n; j++)
            take(&toks[j], 2);
        printf("many: ok\n");
        return 0;
    }
    fprintf(stderr, "usage: stats_report MODE [ARG]\n");
    return 2;
}
