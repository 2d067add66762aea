/*
 * hook_util.h: the table-driven runner shared by the tests in c-tests/hooks/,
 * which test the release-on-block hooks of SPEC section 4 (S2, S3).
 *
 * A case names one libc call and how to provoke it; its `kind` says what is
 * proved (each case also runs once with no token held, checking only libc's
 * result):
 *
 * HK_BLOCK  S2 with an event. The holder takes T exclusively, S shared and T
 *           again (recursively), then makes the call, which must block. A
 *           helper thread spins on lwkt_trytoken(T) and (S) until it gets
 *           both -- it can only when the blocked holder released them --,
 *           records that, releases them and only then runs `unblock` (writes
 *           to the pipe, posts the semaphore, ...). The call must return
 *           with the helper's takeover recorded, the holder's references
 *           back (T twice exclusive, S shared, same order: released LIFO),
 *           lwkt_lost_since() reporting the loss, and libc's result/errno.
 * HK_TIMED  S2 without an event (a timeout, a short sleep): nobody else
 *           wants the tokens, so the proof that they were released and
 *           retaken is the tokens' acquisition counters (`t_seq`, documented
 *           in lwkt.h: acquisitions of the word by any thread), which the
 *           retake advances; no loss may be reported.
 * HK_KEPT   S3: the call would not block (data ready, zero timeout, ...),
 *           so it keeps the tokens: `t_seq` unchanged, no loss, and a
 *           thread already waiting in lwkt_gettoken(T) does not get in
 *           before the holder releases T.
 * HK_ANY    libc's result and the tokens held on return; whether the hook
 *           released them is not specified (it cannot know in advance).
 *
 * Expected result: `check` when given, else `ret == want` and errno ==
 * `err` (0: errno left as it was before the call, a sentinel).
 * `pre` runs on the helper before the call (say, to lock a mutex the holder
 * will wait for); in HK_TIMED/HK_KEPT/HK_ANY cases `unblock` runs on the
 * helper after the call returned (to undo `pre`).
 *
 * Run one file's cases selectively: `prog SUBSTRING` runs the cases whose
 * names contain SUBSTRING (`prog --list` lists them). HK_BARE_ONLY=1 runs
 * only the variants without tokens (libc's own behaviour, to validate a
 * case's expectations).
 */
#ifndef LWKT_HOOK_UTIL_H
#define LWKT_HOOK_UTIL_H

#include "check.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>

enum hk_kind { HK_BLOCK, HK_TIMED, HK_KEPT, HK_ANY };

/* errno before each call: a successful call must leave it so. */
#define HK_SENTINEL EDOM

typedef struct hk hk_t;

struct hk_case {
    const char *name;
    enum hk_kind kind;
    void (*setup)(hk_t *);   /* holder, no token held */
    void (*pre)(hk_t *);     /* helper, before the holder arms */
    long (*call)(hk_t *);    /* holder, holding the tokens: the call */
    void (*unblock)(hk_t *); /* helper (see above) */
    void (*check)(hk_t *, long ret, int err); /* holder, tokens released */
    void (*cleanup)(hk_t *); /* holder, after the helper finished */
    long want;
    int err;
};

/* Per-case scratch, zeroed before each run. */
struct hk {
    const struct hk_case *c;
    enum hk_kind kind; /* c->kind; `setup` may lower it to HK_ANY (say why) */
    const char *variant;
    int with_tokens;
    pthread_t holder;
    atomic_int pre_done, armed, took, returned;
    int fd[6];
    long v[8];
    void *p[4];
    char buf[512];
    char path[128];
    atomic_int flag[4];
};

static struct lwkt_token hk_T = LWKT_TOKEN_INITIALIZER(hk_T);
static struct lwkt_token hk_S = LWKT_TOKEN_INITIALIZER(hk_S);

/* Fail naming the case. */
#define HCHECK(h, cond)                                                          \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "FAIL %s:%d: [%s, %s] %s (errno now %d)\n",          \
                    __FILE__, __LINE__, (h)->c->name, (h)->variant, #cond,       \
                    errno);                                                      \
            fflush(stderr);                                                      \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

#define HCHECK_EQ(h, a, b)                                                       \
    do {                                                                         \
        long long _a = (long long)(a), _b = (long long)(b);                      \
        if (_a != _b) {                                                          \
            fprintf(stderr, "FAIL %s:%d: [%s, %s] %s == %s (%lld != %lld)\n",    \
                    __FILE__, __LINE__, (h)->c->name, (h)->variant, #a, #b, _a,  \
                    _b);                                                         \
            fflush(stderr);                                                      \
            _exit(1);                                                            \
        }                                                                        \
    } while (0)

#define HFAIL(h, ...)                                                            \
    do {                                                                         \
        fprintf(stderr, "FAIL %s:%d: [%s, %s] ", __FILE__, __LINE__,             \
                (h)->c->name, (h)->variant);                                     \
        fprintf(stderr, __VA_ARGS__);                                            \
        fputc('\n', stderr);                                                     \
        fflush(stderr);                                                          \
        _exit(1);                                                                \
    } while (0)

/* Spin (yielding the CPU, which releases no token) until *flag is set. */
#define HSPIN(h, flag)                                                           \
    do {                                                                         \
        double _end = now_s() + TEST_DEADLINE_S;                                 \
        while (!atomic_load(&(flag))) {                                          \
            if (now_s() > _end)                                                  \
                HFAIL(h, "timed out waiting for %s", #flag);                     \
            sched_yield();                                                       \
        }                                                                        \
    } while (0)

static inline uint64_t hk_seq(struct lwkt_token *t) {
    return __atomic_load_n(&t->t_seq, __ATOMIC_RELAXED);
}

/* A timespec `ms` milliseconds from now on `clk` (an absolute timeout). */
static inline struct timespec hk_abs(clockid_t clk, long ms) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Timeouts: "long" never expires in a passing test, "short" expires. */
#define HK_LONG_MS 30000
#define HK_SHORT_MS 30

/* Start a thread with every signal but SIGSYS blocked (signals in these tests are
 * aimed at the holder only). */
static inline pthread_t hk_spawn(void *(*fn)(void *), void *arg) {
    sigset_t all, old;
    pthread_t t;
    sigfillset(&all);
    /* SIGSYS stays open: in a thread that blocks it the catch-all steps
     * aside (SPEC section 7), and the catch-all tests start their threads
     * here. */
    sigdelset(&all, SIGSYS);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CHECK_EQ(rc, 0);
    return t;
}

/* --- watchdog: a hung call fails the test instead of hanging it -------- */

/* A case that has not finished by then hangs: fail it with its name, well
 * before the runner's kill of the whole file (60 s), and after the 20 s
 * deadlines inside a case, which report more precisely. */
#define HK_CASE_DEADLINE_S (TEST_DEADLINE_S + 15)

static _Atomic(const char *) hk_wd_case;
static atomic_int hk_wd_stage; /* 0 idle, 1 running */
static _Atomic double hk_wd_deadline;

static inline void *hk_watchdog(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL); /* holds no token: plain libc */
        if (atomic_load(&hk_wd_stage) && now_s() > atomic_load(&hk_wd_deadline)) {
            fprintf(stderr, "FAIL: case [%s] hung for %d s (call never returned or helper stuck)\n",
                    atomic_load(&hk_wd_case), HK_CASE_DEADLINE_S);
            fflush(stderr);
            _exit(1);
        }
    }
    return NULL;
}

/* --- the runner ---------------------------------------------------------- */

static inline void hk_take_spin(hk_t *h, struct lwkt_token *t, const char *what) {
    double end = now_s() + TEST_DEADLINE_S;
    while (!lwkt_trytoken(t)) {
        if (now_s() > end)
            HFAIL(h, "%s was not released while the holder was blocked in the call "
                     "(helper could not take it for %d s)", what, TEST_DEADLINE_S);
        sched_yield();
    }
}

static inline void *hk_helper(void *arg) {
    hk_t *h = arg;
    const struct hk_case *c = h->c;
    if (c->pre)
        c->pre(h);
    atomic_store(&h->pre_done, 1);
    if (h->kind == HK_BLOCK) {
        HSPIN(h, h->armed);
        if (h->with_tokens) {
            hk_take_spin(h, &hk_T, "T (held exclusively, twice)");
            hk_take_spin(h, &hk_S, "S (held shared)");
            atomic_store(&h->took, 1);
            lwkt_reltoken(&hk_S);
            lwkt_reltoken(&hk_T);
        }
        if (c->unblock)
            c->unblock(h);
    } else {
        HSPIN(h, h->returned);
        if (c->unblock)
            c->unblock(h);
    }
    return NULL;
}

struct hk_waiter {
    atomic_int started, got;
};

static inline void *hk_waiter_fn(void *arg) {
    struct hk_waiter *w = arg;
    atomic_store(&w->started, 1);
    lwkt_gettoken(&hk_T);
    atomic_store(&w->got, 1);
    lwkt_reltoken(&hk_T);
    return NULL;
}

static inline void hk_verify_held(hk_t *h) {
    HCHECK_EQ(h, lwkt_cnttoken(&hk_T), 2);
    HCHECK(h, LWKT_TOKEN_HELD_EXCL(&hk_T));
    HCHECK_EQ(h, lwkt_cnttoken(&hk_S), 1);
    HCHECK(h, LWKT_TOKEN_HELD_ANY(&hk_S));
    HCHECK(h, !LWKT_TOKEN_HELD_EXCL(&hk_S));
}

static inline const char *hk_kind_name(enum hk_kind k) {
    switch (k) {
    case HK_BLOCK: return "blocks; another thread takes T";
    case HK_TIMED: return "blocks until timeout; released and retaken";
    case HK_KEPT: return "would not block; keeps tokens";
    default: return "result and tokens on return";
    }
}

static inline void hk_run_one(const struct hk_case *c, int with_tokens) {
    static hk_t hs;
    hk_t *h = &hs;
    memset(h, 0, sizeof *h);
    h->c = c;
    h->kind = c->kind;
    h->with_tokens = with_tokens;
    h->variant = with_tokens ? hk_kind_name(c->kind) : "no token held";
    h->holder = pthread_self();
    for (int i = 0; i < 6; i++)
        h->fd[i] = -1;
    atomic_store(&hk_wd_case, c->name);
    atomic_store(&hk_wd_deadline, now_s() + HK_CASE_DEADLINE_S);
    atomic_store(&hk_wd_stage, 1);

    if (c->setup)
        c->setup(h);
    if (with_tokens)
        h->variant = hk_kind_name(h->kind);
    pthread_t helper = hk_spawn(hk_helper, h);
    HSPIN(h, h->pre_done);

    struct hk_waiter w = {0};
    pthread_t waiter;
    memset(&waiter, 0, sizeof waiter);
    if (with_tokens) {
        lwkt_gettoken(&hk_T);
        lwkt_gettoken_shared(&hk_S);
        lwkt_gettoken(&hk_T);
        hk_verify_held(h);
        if (h->kind == HK_KEPT) {
            waiter = hk_spawn(hk_waiter_fn, &w);
            HSPIN(h, w.started);
            /* Give it a chance to be asleep in lwkt_gettoken (t_waiters);
             * the proof does not depend on it. */
            double end = now_s() + 1.0;
            while (__atomic_load_n(&hk_T.t_waiters, __ATOMIC_RELAXED) == 0 && now_s() < end)
                sched_yield();
        }
    } else {
        ASSERT_NO_TOKENS_HELD();
    }
    lwkt_mark_t mark = lwkt_mark();
    uint64_t seq_t = hk_seq(&hk_T), seq_s = hk_seq(&hk_S);

    atomic_store(&h->armed, 1);
    errno = HK_SENTINEL;
    long ret = c->call(h);
    int err = errno;
    atomic_store(&h->returned, 1);

    if (with_tokens) {
        uint64_t seq_t2 = hk_seq(&hk_T), seq_s2 = hk_seq(&hk_S);
        int lost = lwkt_lost_since(mark);
        int lost_t = lwkt_token_lost_since(&hk_T, mark);
        int lost_s = lwkt_token_lost_since(&hk_S, mark);
        hk_verify_held(h);
        switch (h->kind) {
        case HK_BLOCK:
            if (!atomic_load(&h->took))
                HFAIL(h, "the call returned (ret %ld, errno %d) before the helper could take "
                         "the released tokens", ret, err);
            HCHECK(h, lost);
            HCHECK(h, lost_t);
            HCHECK(h, lost_s);
            break;
        case HK_TIMED:
            if (seq_t2 == seq_t || seq_s2 == seq_s)
                HFAIL(h, "tokens not released while blocked (t_seq of T %llu -> %llu, "
                         "of S %llu -> %llu)", (unsigned long long)seq_t,
                      (unsigned long long)seq_t2, (unsigned long long)seq_s,
                      (unsigned long long)seq_s2);
            HCHECK(h, !lost);
            break;
        case HK_KEPT:
            if (seq_t2 != seq_t || seq_s2 != seq_s)
                HFAIL(h, "a call that would not block released the tokens (S3; t_seq of "
                         "T %llu -> %llu, of S %llu -> %llu)", (unsigned long long)seq_t,
                      (unsigned long long)seq_t2, (unsigned long long)seq_s,
                      (unsigned long long)seq_s2);
            HCHECK(h, !lost);
            HCHECK(h, !atomic_load(&w.got));
            break;
        case HK_ANY:
            break;
        }
        lwkt_reltoken(&hk_T);
        lwkt_reltoken(&hk_S);
        lwkt_reltoken(&hk_T);
        ASSERT_NO_TOKENS_HELD();
        if (h->kind == HK_KEPT) {
            HCHECK_EQ(h, pthread_join(waiter, NULL), 0);
            HCHECK(h, atomic_load(&w.got));
        }
    }

    HCHECK_EQ(h, pthread_join(helper, NULL), 0); /* its unblock is complete */
    if (c->check) {
        c->check(h, ret, err);
    } else {
        HCHECK_EQ(h, ret, c->want);
        HCHECK_EQ(h, err, c->err ? c->err : HK_SENTINEL);
    }
    syscall(SYS_getpid); /* lets a signal still pending for us run now */
    if (c->cleanup)
        c->cleanup(h);
    atomic_store(&hk_wd_stage, 0);
}

/* Run every case (or those whose name contains argv[1]) with tokens, then
 * without. */
static inline int hk_run(const char *file, const struct hk_case *cases, size_t n, int argc,
                         char **argv) {
    static int wd_started;
    if (!wd_started) {
        wd_started = 1;
        pthread_t wd = hk_spawn(hk_watchdog, NULL);
        pthread_detach(wd);
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    if (only && strcmp(only, "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    /* HK_BARE_ONLY=1: only the runs without tokens, i.e. plain libc's
     * behaviour (to check a case's expectations without the hooks). */
    const char *bare = getenv("HK_BARE_ONLY");
    int bare_only = bare && *bare == '1';
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (only && !strstr(cases[i].name, only))
            continue;
        if (!bare_only)
            hk_run_one(&cases[i], 1);
        hk_run_one(&cases[i], 0);
        ran++;
    }
    fprintf(stderr, "%s: %zu cases passed\n", file, ran);
    return ran ? 0 : 1;
}

#define HK_RUN(cases, argc, argv) hk_run(__FILE__, cases, sizeof(cases) / sizeof(cases[0]), argc, argv)

/* --- helpers for cases ------------------------------------------------- */

/* In `setup`: this machine cannot arrange what the case needs to prove
 * release or keeping; check the result and tokens only. */
static inline void hk_lower_to_any(hk_t *h, const char *why) {
    if (h->with_tokens && h->kind != HK_ANY) {
        fprintf(stderr, "note: [%s] only result and tokens checked: %s\n", h->c->name, why);
        h->kind = HK_ANY;
    }
}

/* A signal handler that does nothing but interrupt (installed without
 * SA_RESTART). */
static atomic_int hk_signals;
static inline void hk_on_signal(int sig) {
    (void)sig;
    atomic_fetch_add(&hk_signals, 1);
}
static inline void hk_install_handler(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hk_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    CHECK_EQ(sigaction(sig, &sa, NULL), 0);
}

/* Interrupt the holder with `sig` until its call returned: the first signal
 * may land after the hook released the tokens but before the kernel put
 * the thread to sleep, where it interrupts nothing. */
static inline void hk_interrupt_until_returned(hk_t *h, int sig) {
    double end = now_s() + TEST_DEADLINE_S;
    while (!atomic_load(&h->returned)) {
        pthread_kill(h->holder, sig);
        double next = now_s() + 0.05;
        while (!atomic_load(&h->returned) && now_s() < next)
            sched_yield();
        if (now_s() > end)
            HFAIL(h, "the call did not return although signal %d was sent", sig);
    }
}

/* Write all of buf (the helper's side). */
static inline void hk_write_all(hk_t *h, int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        HCHECK(h, r > 0);
        p += r;
        n -= (size_t)r;
    }
}

static inline void hk_read_all(hk_t *h, int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        HCHECK(h, r > 0);
        p += r;
        n -= (size_t)r;
    }
}

static inline void hk_close_fds(hk_t *h) {
    for (int i = 0; i < 6; i++)
        if (h->fd[i] >= 0) {
            close(h->fd[i]);
            h->fd[i] = -1;
        }
}

#endif
