/*
 * hooks/sleep.c: nanosleep, clock_nanosleep, sleep, usleep, pause release the
 * caller's tokens while they sleep (SPEC S2) and keep them for a sleep of
 * zero or a deadline already past (S3). A sleep cannot be ended by another
 * thread except with a signal: the blocking cases sleep 30 s and the helper,
 * once it took the released tokens, interrupts them with SIGUSR1 (handler
 * without SA_RESTART), so they return EINTR at once.
 */
#include "hook_util.h"

#include <time.h>

#define LONG_S 30

static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }

/* The remaining time reported by an interrupted relative sleep. */
static void check_rem(hk_t *h, const struct timespec *rem) {
    HCHECK(h, rem->tv_sec >= 0 && rem->tv_nsec >= 0 && rem->tv_nsec < 1000000000L);
    HCHECK(h, rem->tv_sec > 0 || rem->tv_nsec > 0);
    HCHECK(h, rem->tv_sec <= LONG_S);
}

static long nanosleep_long(hk_t *h) {
    struct timespec ts = {LONG_S, 0};
    struct timespec *rem = (struct timespec *)h->buf;
    return nanosleep(&ts, rem);
}
static void check_nanosleep_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
    check_rem(h, (struct timespec *)h->buf);
}

static long clock_nanosleep_long(hk_t *h) {
    struct timespec ts = {LONG_S, 0};
    return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, (struct timespec *)h->buf);
}
static void check_clock_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, EINTR); /* returned, errno untouched */
    HCHECK_EQ(h, err, HK_SENTINEL);
    check_rem(h, (struct timespec *)h->buf);
}

static long clock_nanosleep_abs_long(hk_t *h) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, LONG_S * 1000);
    (void)h;
    return clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
}

static long sleep_long(hk_t *h) {
    (void)h;
    return sleep(LONG_S);
}
static void check_sleep_eintr(hk_t *h, long ret, int err) {
    HCHECK(h, ret > 0 && ret <= LONG_S);
    HCHECK_EQ(h, err, EINTR); /* glibc's sleep leaves its nanosleep's errno */
}

static long usleep_long(hk_t *h) {
    (void)h;
    return usleep(LONG_S * 1000000U);
}

static long pause_call(hk_t *h) {
    (void)h;
    return pause();
}

/* Short sleeps that run to completion. */
static long nanosleep_short(hk_t *h) {
    struct timespec ts = {0, HK_SHORT_MS * 1000000L};
    (void)h;
    return nanosleep(&ts, NULL);
}
static long clock_nanosleep_short(hk_t *h) {
    struct timespec ts = {0, HK_SHORT_MS * 1000000L};
    (void)h;
    return clock_nanosleep(CLOCK_REALTIME, 0, &ts, NULL);
}
static long clock_nanosleep_abs_short(hk_t *h) {
    struct timespec ts = hk_abs(CLOCK_MONOTONIC, HK_SHORT_MS);
    (void)h;
    return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}
static long sleep_1(hk_t *h) {
    (void)h;
    return sleep(1);
}
static long usleep_short(hk_t *h) {
    (void)h;
    return usleep(HK_SHORT_MS * 1000);
}

/* Sleeps of zero. */
static long nanosleep_zero(hk_t *h) {
    struct timespec ts = {0, 0};
    (void)h;
    return nanosleep(&ts, NULL);
}
static long clock_nanosleep_zero(hk_t *h) {
    struct timespec ts = {0, 0};
    (void)h;
    return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}
static long clock_nanosleep_past(hk_t *h) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, -1000);
    (void)h;
    return clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
}
static long clock_nanosleep_mono_past(hk_t *h) {
    struct timespec ts = {0, 1}; /* the monotonic clock's epoch: long past */
    (void)h;
    return clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}
static long sleep_zero(hk_t *h) {
    (void)h;
    return sleep(0);
}
static long usleep_zero(hk_t *h) {
    (void)h;
    return usleep(0);
}

/* Errors. */
static long nanosleep_einval(hk_t *h) {
    struct timespec ts = {0, 1000000000L};
    (void)h;
    return nanosleep(&ts, NULL);
}
static long clock_nanosleep_einval(hk_t *h) {
    struct timespec ts = {0, 1000000000L};
    (void)h;
    return clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static const struct hk_case cases[] = {
    {"nanosleep interrupted", HK_BLOCK, .call = nanosleep_long, .unblock = interrupt,
     .check = check_nanosleep_eintr},
    {"clock_nanosleep relative interrupted", HK_BLOCK, .call = clock_nanosleep_long,
     .unblock = interrupt, .check = check_clock_eintr},
    {"clock_nanosleep TIMER_ABSTIME interrupted", HK_BLOCK, .call = clock_nanosleep_abs_long,
     .unblock = interrupt, .want = EINTR},
    {"sleep interrupted", HK_BLOCK, .call = sleep_long, .unblock = interrupt,
     .check = check_sleep_eintr},
    {"usleep interrupted", HK_BLOCK, .call = usleep_long, .unblock = interrupt, .want = -1,
     .err = EINTR},
    {"pause interrupted", HK_BLOCK, .call = pause_call, .unblock = interrupt, .want = -1,
     .err = EINTR},

    {"nanosleep 30 ms", HK_TIMED, .call = nanosleep_short, .want = 0},
    {"clock_nanosleep 30 ms", HK_TIMED, .call = clock_nanosleep_short, .want = 0},
    {"clock_nanosleep TIMER_ABSTIME +30 ms", HK_TIMED, .call = clock_nanosleep_abs_short,
     .want = 0},
    {"sleep 1 s", HK_TIMED, .call = sleep_1, .want = 0},
    {"usleep 30 ms", HK_TIMED, .call = usleep_short, .want = 0},

    {"nanosleep zero", HK_KEPT, .call = nanosleep_zero, .want = 0},
    {"clock_nanosleep zero", HK_KEPT, .call = clock_nanosleep_zero, .want = 0},
    {"clock_nanosleep TIMER_ABSTIME past (realtime)", HK_KEPT, .call = clock_nanosleep_past,
     .want = 0},
    {"clock_nanosleep TIMER_ABSTIME past (monotonic)", HK_KEPT,
     .call = clock_nanosleep_mono_past, .want = 0},
    {"sleep zero", HK_KEPT, .call = sleep_zero, .want = 0},
    {"usleep zero", HK_KEPT, .call = usleep_zero, .want = 0},

    {"nanosleep EINVAL", HK_ANY, .call = nanosleep_einval, .want = -1, .err = EINVAL},
    {"clock_nanosleep EINVAL", HK_ANY, .call = clock_nanosleep_einval, .want = EINVAL},
};

int lwkt_test_main(int argc, char **argv) {
    hk_install_handler(SIGUSR1);
    return HK_RUN(cases, argc, argv);
}
