/*
 * faults/garbage.c: S10, table-driven. Every API call on a
 * token whose memory is garbage (never initialised and not zero-filled),
 * for several kinds of garbage, each in a child process whose stderr is
 * captured. Each child must be killed by SIGABRT (not SIGSEGV, not a hang:
 * 10 s), having written exactly one line, in printable ASCII (the garbage
 * description pointer must not be printed through), that starts with
 * "lwkt: CALL(" for the call made. For the calls that take the token, the
 * line must say "not an initialised token" (the library's words for it;
 * "used after lwkt_token_uninit" would be wrong: the token never was one).
 *
 * The garbage: byte patterns (0xa5, the classic malloc-perturb pattern, has
 * the lock word's DEAD bit set; 0xff all bits; 0x5a others), memory full of
 * one valid pointer (stack-like garbage: the description then points at
 * readable memory that is no string), and memory whose lock word happens to
 * be zero but the rest is garbage: taking it may succeed (the fast path
 * cannot afford to look further), so only these calls are cases: take and
 * release (the release at the latest must abort: the line names
 * lwkt_gettoken or lwkt_reltoken), release alone, and lwkt_token_uninit
 * (a cold path, which can look at the whole token like the slow paths do).
 *
 * Each case runs in a child of its own, so one test covers every pattern
 * and call (the 0xa5 cases are the classic ones: a malloc'd token never
 * initialised). `prog --list` lists the cases; `prog PATTERN CALL` runs one
 * in-process, to see its abort by hand.
 */
#include "check.h"

#include <stdint.h>
#include <sys/wait.h>

enum call { C_GET, C_GET_SHARED, C_TRY, C_TRY_SHARED, C_REL, C_UNINIT, C_GET_REL, NCALLS };
static const char *call_name[NCALLS] = {
    "lwkt_gettoken",   "lwkt_gettoken_shared", "lwkt_trytoken",
    "lwkt_trytoken_shared", "lwkt_reltoken", "lwkt_token_uninit",
    "lwkt_gettoken+lwkt_reltoken",
};

enum pattern { P_A5, P_FF, P_5A, P_POINTERS, P_ZERO_WORD, NPATTERNS };
static const char *pattern_name[NPATTERNS] = {"0xa5", "0xff", "0x5a", "pointers", "zero word"};

static char some_object[64];

static lwkt_token_t make_garbage(enum pattern p) {
    lwkt_token_t t = malloc(sizeof *t + 64);
    CHECK(t != NULL);
    switch (p) {
    case P_A5: memset(t, 0xa5, sizeof *t); break;
    case P_FF: memset(t, 0xff, sizeof *t); break;
    case P_5A: memset(t, 0x5a, sizeof *t); break;
    case P_POINTERS: {
        memset(some_object, 0x07, sizeof some_object); /* no NUL for a while */
        void *ptr = some_object;
        for (size_t i = 0; i + sizeof ptr <= sizeof *t; i += sizeof ptr)
            memcpy((char *)t + i, &ptr, sizeof ptr);
        break;
    }
    case P_ZERO_WORD:
        memset(t, 0xa5, sizeof *t);
        memset(t, 0, sizeof t->t_word);
        break;
    default: break;
    }
    return t;
}

/* In the child: make the call; returning means it did not abort. */
static void do_call(enum pattern p, enum call c) {
    lwkt_token_t t = make_garbage(p);
    switch (c) {
    case C_GET: lwkt_gettoken(t); break;
    case C_GET_SHARED: lwkt_gettoken_shared(t); break;
    case C_TRY: (void)lwkt_trytoken(t); break;
    case C_TRY_SHARED: (void)lwkt_trytoken_shared(t); break;
    case C_REL: lwkt_reltoken(t); break;
    case C_UNINIT: lwkt_token_uninit(t); break;
    case C_GET_REL:
        lwkt_gettoken(t);
        lwkt_reltoken(t);
        break;
    default: break;
    }
}

/* Which calls may the line name, and must it say "not an initialised"? */
static int line_ok(enum pattern p, enum call c, const char *line, char *why, size_t n) {
    const char *names[2] = {NULL, NULL};
    int must_say_uninit = 0;
    switch (c) {
    case C_GET_REL:
        names[0] = "lwkt: lwkt_gettoken(";
        names[1] = "lwkt: lwkt_reltoken(";
        break;
    case C_GET: names[0] = "lwkt: lwkt_gettoken("; break;
    case C_GET_SHARED: names[0] = "lwkt: lwkt_gettoken_shared("; break;
    case C_TRY: names[0] = "lwkt: lwkt_trytoken("; break;
    case C_TRY_SHARED: names[0] = "lwkt: lwkt_trytoken_shared("; break;
    case C_REL: names[0] = "lwkt: lwkt_reltoken("; break;
    case C_UNINIT: names[0] = "lwkt: lwkt_token_uninit("; break;
    default: break;
    }
    must_say_uninit = c != C_REL && c != C_UNINIT && !(p == P_ZERO_WORD);
    int named = 0;
    for (int i = 0; i < 2; i++)
        if (names[i] && strncmp(line, names[i], strlen(names[i])) == 0)
            named = 1;
    if (!named) {
        snprintf(why, n, "does not start with %s%s%s", names[0], names[1] ? " or " : "",
                 names[1] ? names[1] : "");
        return 0;
    }
    if (must_say_uninit && !strstr(line, "not an initialised token")) {
        snprintf(why, n, "does not say \"not an initialised token\"");
        return 0;
    }
    return 1;
}

/* Zero word: taking alone may succeed. */
static int is_case(enum pattern p, enum call c) {
    return p != P_ZERO_WORD || c == C_GET_REL || c == C_REL || c == C_UNINIT;
}

static int run_case(enum pattern p, enum call c) {
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
        do_call(p, c);
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

    char why[256] = "";
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
        for (size_t i = 0; i < len; i++) {
            if (out[i] == '\n')
                lines++;
            else if (out[i] < 0x20 || out[i] > 0x7e) {
                snprintf(why, sizeof why, "byte %#x at %zu is not printable",
                         (unsigned char)out[i], i);
                ok = 0;
                break;
            }
        }
        if (ok && (lines != 1 || len == 0 || out[len - 1] != '\n')) {
            snprintf(why, sizeof why, "%zu lines, not one", lines);
            ok = 0;
        }
        if (ok)
            ok = line_ok(p, c, out, why, sizeof why);
    }
    if (!ok) {
        /* Show what it wrote, made printable. */
        for (size_t i = 0; i < len; i++)
            if ((out[i] < 0x20 || out[i] > 0x7e) && out[i] != '\n')
                out[i] = '?';
        fprintf(stderr, "FAIL [%s, %s]: %s; stderr was: %s%s", pattern_name[p], call_name[c],
                why, out, len && out[len - 1] == '\n' ? "" : "\n");
    }
    return ok;
}

int lwkt_test_main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int p = 0; p < NPATTERNS; p++)
            for (int c = 0; c < NCALLS; c++)
                if (is_case((enum pattern)p, (enum call)c))
                    printf("%s %s\n", pattern_name[p], call_name[c]);
        return 0;
    }
    if (argc > 2) {
        for (int p = 0; p < NPATTERNS; p++)
            for (int c = 0; c < NCALLS; c++)
                if (!strcmp(argv[1], pattern_name[p]) && !strcmp(argv[2], call_name[c]))
                    do_call((enum pattern)p, (enum call)c);
        fprintf(stderr, "returned (or no such case)\n");
        return 1;
    }
    start_watchdog(50);
    int failed = 0, n = 0;
    for (int p = 0; p < NPATTERNS; p++)
        for (int c = 0; c < NCALLS; c++) {
            if (!is_case((enum pattern)p, (enum call)c))
                continue;
            n++;
            if (!run_case((enum pattern)p, (enum call)c))
                failed++;
        }
    printf("faults/garbage: %d cases, %d failed\n", n, failed);
    return failed != 0;
}
