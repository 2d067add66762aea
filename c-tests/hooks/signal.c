/*
 * hooks/signal.c: sigsuspend, sigwait, sigwaitinfo, sigtimedwait (SPEC
 * section 4; pause is in hooks/sleep.c). The holder blocks the signal it
 * waits for, so the helper's signal stays pending until the wait consumes
 * it: no race, whenever it is sent. A signal already pending, or a zero
 * timeout, does not block: the tokens stay.
 */
#include "hook_util.h"

/* Block `sig` in the holder for the case; cleanup drains and unblocks. */
static void block_sig(hk_t *h, int sig) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    HCHECK_EQ(h, pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
}
static void setup_usr2(hk_t *h) { block_sig(h, SIGUSR2); }
static void setup_usr1(hk_t *h) { block_sig(h, SIGUSR1); }
static void setup_usr2_pending(hk_t *h) {
    block_sig(h, SIGUSR2);
    union sigval v = {.sival_int = 42};
    HCHECK_EQ(h, pthread_sigqueue(pthread_self(), SIGUSR2, v), 0);
}
static void setup_usr1_pending(hk_t *h) {
    block_sig(h, SIGUSR1);
    HCHECK_EQ(h, pthread_kill(pthread_self(), SIGUSR1), 0);
}
static void cleanup(hk_t *h) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    struct timespec zero = {0, 0};
    while (sigtimedwait(&s, NULL, &zero) > 0) {
    }
    HCHECK_EQ(h, pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
}

static void send_usr1(hk_t *h) { HCHECK_EQ(h, pthread_kill(h->holder, SIGUSR1), 0); }
static void send_usr2(hk_t *h) { HCHECK_EQ(h, pthread_kill(h->holder, SIGUSR2), 0); }
static void queue_usr2(hk_t *h) {
    union sigval v = {.sival_int = 42};
    HCHECK_EQ(h, pthread_sigqueue(h->holder, SIGUSR2, v), 0);
}
static void kill_usr2(hk_t *h) { HCHECK_EQ(h, kill(getpid(), SIGUSR2), 0); }

static const sigset_t *usr2_set(void) {
    static sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    return &s;
}

/* sigsuspend with SIGUSR1 unblocked; on return SIGUSR1 is blocked again. */
static long sigsuspend_call(hk_t *h) {
    sigset_t during;
    pthread_sigmask(SIG_SETMASK, NULL, &during);
    sigdelset(&during, SIGUSR1);
    h->v[0] = atomic_load(&hk_signals);
    return sigsuspend(&during);
}
static void check_sigsuspend(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
    HCHECK_EQ(h, atomic_load(&hk_signals), h->v[0] + 1); /* the handler ran */
    sigset_t now;
    pthread_sigmask(SIG_SETMASK, NULL, &now);
    HCHECK(h, sigismember(&now, SIGUSR1));
}

static long sigwait_call(hk_t *h) { return sigwait(usr2_set(), (int *)h->buf); }
static void check_sigwait(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, *(int *)h->buf, SIGUSR2);
}

static siginfo_t *info_of(hk_t *h) { return (siginfo_t *)(h->buf + 64); }
static long sigwaitinfo_call(hk_t *h) {
    memset(info_of(h), 0, sizeof(siginfo_t));
    return sigwaitinfo(usr2_set(), info_of(h));
}
static long sigtimedwait_ms(hk_t *h, long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    memset(info_of(h), 0, sizeof(siginfo_t));
    return sigtimedwait(usr2_set(), info_of(h), &ts);
}
static long sigtimedwait_long(hk_t *h) { return sigtimedwait_ms(h, HK_LONG_MS); }
static long sigtimedwait_short(hk_t *h) { return sigtimedwait_ms(h, HK_SHORT_MS); }
static long sigtimedwait_zero(hk_t *h) { return sigtimedwait_ms(h, 0); }

static void check_info(hk_t *h, long ret, int err, int code) {
    HCHECK_EQ(h, ret, SIGUSR2);
    HCHECK_EQ(h, err, HK_SENTINEL);
    siginfo_t *si = info_of(h);
    HCHECK_EQ(h, si->si_signo, SIGUSR2);
    if (code == SI_TKILL) /* pthread_kill: tgkill, or SI_USER in newer glibc */
        HCHECK(h, si->si_code == SI_TKILL || si->si_code == SI_USER);
    else
        HCHECK_EQ(h, si->si_code, code);
    HCHECK_EQ(h, si->si_pid, getpid());
    if (code == SI_QUEUE)
        HCHECK_EQ(h, si->si_value.sival_int, 42);
}
static void check_queued(hk_t *h, long ret, int err) { check_info(h, ret, err, SI_QUEUE); }
static void check_tkill(hk_t *h, long ret, int err) { check_info(h, ret, err, SI_TKILL); }
static void check_kill(hk_t *h, long ret, int err) { check_info(h, ret, err, SI_USER); }

static const struct hk_case cases[] = {
    {"sigsuspend until a signal", HK_BLOCK, .setup = setup_usr1, .call = sigsuspend_call,
     .unblock = send_usr1, .check = check_sigsuspend, .cleanup = cleanup},
    {"sigwait until a signal", HK_BLOCK, .setup = setup_usr2, .call = sigwait_call,
     .unblock = send_usr2, .check = check_sigwait, .cleanup = cleanup},
    {"sigwaitinfo until a queued signal", HK_BLOCK, .setup = setup_usr2,
     .call = sigwaitinfo_call, .unblock = queue_usr2, .check = check_queued,
     .cleanup = cleanup},
    {"sigwaitinfo until kill() of the process", HK_BLOCK, .setup = setup_usr2,
     .call = sigwaitinfo_call, .unblock = kill_usr2, .check = check_kill, .cleanup = cleanup},
    {"sigtimedwait (30 s) until a signal", HK_BLOCK, .setup = setup_usr2,
     .call = sigtimedwait_long, .unblock = send_usr2, .check = check_tkill,
     .cleanup = cleanup},
    {"sigtimedwait times out", HK_TIMED, .setup = setup_usr2, .call = sigtimedwait_short,
     .want = -1, .err = EAGAIN, .cleanup = cleanup},

    {"sigwait with the signal pending", HK_KEPT, .setup = setup_usr2_pending,
     .call = sigwait_call, .check = check_sigwait, .cleanup = cleanup},
    {"sigwaitinfo with the signal pending", HK_KEPT, .setup = setup_usr2_pending,
     .call = sigwaitinfo_call, .check = check_queued, .cleanup = cleanup},
    {"sigtimedwait with the signal pending", HK_KEPT, .setup = setup_usr2_pending,
     .call = sigtimedwait_long, .check = check_queued, .cleanup = cleanup},
    {"sigtimedwait zero timeout", HK_KEPT, .setup = setup_usr2, .call = sigtimedwait_zero,
     .want = -1, .err = EAGAIN, .cleanup = cleanup},
    {"sigsuspend with the signal pending", HK_ANY, .setup = setup_usr1_pending,
     .call = sigsuspend_call, .check = check_sigsuspend, .cleanup = cleanup},
};

int lwkt_test_main(int argc, char **argv) {
    hk_install_handler(SIGUSR1);
    hk_install_handler(SIGUSR2);
    return HK_RUN(cases, argc, argv);
}
