/*
 * faults/null.c: S10. A NULL token passed to each API call
 * that takes, releases or (re)initialises a token: the process aborts
 * (SIGABRT, not SIGSEGV, not a hang: 10 s) with exactly one printable line
 * on stderr starting "lwkt: CALL(NULL token)". misuse/null_token.c is the
 * lwkt_gettoken case checked by the runner directly; this file covers the
 * other calls, each in a child process, and the same calls made while the
 * caller holds another token (the line then also names what it holds).
 *
 * Not cases: the questions (lwkt_cnttoken, lwkt_token_held_excl,
 * lwkt_token_lost_since) may answer "no" for NULL, and the pool functions
 * take any address.
 */
#include "check.h"

#include <sys/wait.h>

static struct lwkt_token Held = LWKT_TOKEN_INITIALIZER(null_case_holder);

enum call { C_INIT, C_UNINIT, C_GET, C_GET_SHARED, C_TRY, C_TRY_SHARED, C_REL, NCALLS };
static const char *call_name[NCALLS] = {
    "lwkt_token_init", "lwkt_token_uninit", "lwkt_gettoken", "lwkt_gettoken_shared",
    "lwkt_trytoken",   "lwkt_trytoken_shared", "lwkt_reltoken",
};

static void do_call(enum call c, int holding) {
    volatile lwkt_token_t none = NULL; /* hidden from the compiler */
    if (holding)
        lwkt_gettoken(&Held);
    switch (c) {
    case C_INIT: lwkt_token_init(none, "x"); break;
    case C_UNINIT: lwkt_token_uninit(none); break;
    case C_GET: lwkt_gettoken(none); break;
    case C_GET_SHARED: lwkt_gettoken_shared(none); break;
    case C_TRY: (void)lwkt_trytoken(none); break;
    case C_TRY_SHARED: (void)lwkt_trytoken_shared(none); break;
    case C_REL: lwkt_reltoken(none); break;
    default: break;
    }
}

static int run_case(enum call c, int holding) {
    int errp[2];
    CHECK(pipe(errp) == 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(errp[1], 2);
        close(errp[0]);
        close(errp[1]);
        start_watchdog(10);
        do_call(c, holding);
        fprintf(stderr, "RETURNED\n");
        _exit(0);
    }
    close(errp[1]);
    static char out[4096];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof out - 1 && (r = read(errp[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = 0;
    close(errp[0]);
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);

    char why[256] = "", want[96];
    snprintf(want, sizeof want, "lwkt: %s(NULL token)", call_name[c]);
    int ok = 1;
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT) {
        if (WIFSIGNALED(st))
            snprintf(why, sizeof why, "killed by signal %d (%s), not SIGABRT", WTERMSIG(st),
                     strsignal(WTERMSIG(st)));
        else
            snprintf(why, sizeof why, "exited with status %d instead of aborting",
                     WEXITSTATUS(st));
        ok = 0;
    } else {
        size_t lines = 0;
        for (size_t i = 0; ok && i < len; i++) {
            if (out[i] == '\n')
                lines++;
            else if (out[i] < 0x20 || out[i] > 0x7e) {
                snprintf(why, sizeof why, "byte %#x is not printable", (unsigned char)out[i]);
                ok = 0;
            }
        }
        if (ok && (lines != 1 || out[len - 1] != '\n')) {
            snprintf(why, sizeof why, "%zu lines, not one", lines);
            ok = 0;
        }
        if (ok && strncmp(out, want, strlen(want)) != 0) {
            snprintf(why, sizeof why, "does not start with \"%s\"", want);
            ok = 0;
        }
        if (ok && holding && !strstr(out, "null_case_holder")) {
            snprintf(why, sizeof why, "does not name the token the thread holds");
            ok = 0;
        }
    }
    if (!ok)
        fprintf(stderr, "FAIL [%s(NULL)%s]: %s; stderr was: %s%s", call_name[c],
                holding ? ", holding a token" : "", why, out,
                len && out[len - 1] == '\n' ? "" : "\n");
    return ok;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(50);
    int failed = 0, n = 0;
    for (int holding = 0; holding < 2; holding++)
        for (int c = 0; c < NCALLS; c++) {
            n++;
            if (!run_case((enum call)c, holding))
                failed++;
        }
    printf("faults/null: %d cases, %d failed\n", n, failed);
    return failed != 0;
}
