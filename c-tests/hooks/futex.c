/*
 * hooks/futex.c: syscall(SYS_futex, FUTEX_WAIT...) releases the caller's
 * tokens while it waits (SPEC S2) and keeps them when the word already
 * differs (S3: EAGAIN at once); other system calls made through syscall()
 * pass through with the tokens kept and their results intact.
 */
#include "hook_util.h"

#include <linux/futex.h>
#include <stdint.h>

static uint32_t word; /* futex word of the case (h->v unused) */

static void setup_zero(hk_t *h) {
    (void)h;
    __atomic_store_n(&word, 0, __ATOMIC_SEQ_CST);
}

/* Wake the waiter without changing the word, until the wake finds it (the
 * holder may still be on its way into the kernel). The result is then
 * deterministic: 0, woken. */
static void wake_until_woken(hk_t *h, int op, uint32_t bitset) {
    double end = now_s() + TEST_DEADLINE_S;
    for (;;) {
        long n = bitset ? syscall(SYS_futex, &word, op, 1, NULL, NULL, bitset)
                        : syscall(SYS_futex, &word, op, 1, NULL, NULL, 0);
        HCHECK(h, n >= 0);
        if (n > 0 || (!h->with_tokens && atomic_load(&h->returned)))
            return;
        if (now_s() > end)
            HFAIL(h, "FUTEX_WAKE never found the waiter");
        sched_yield();
    }
}
static void wake(hk_t *h) { wake_until_woken(h, FUTEX_WAKE, 0); }
static void wake_private(hk_t *h) { wake_until_woken(h, FUTEX_WAKE_PRIVATE, 0); }
static void wake_bitset(hk_t *h) { wake_until_woken(h, FUTEX_WAKE_BITSET_PRIVATE, 0x4); }

/* Without tokens the helper wakes as soon as the holder armed, which may be
 * before the holder waits: then the wake finds nobody, and it keeps trying
 * until the call returned -- which it never would. So the no-token run
 * changes the word too (result 0 or EAGAIN, both libc's). */
static void check_woken(hk_t *h, long ret, int err) {
    if (h->with_tokens) {
        HCHECK_EQ(h, ret, 0);
        HCHECK_EQ(h, err, HK_SENTINEL);
    } else {
        HCHECK(h, (ret == 0 && err == HK_SENTINEL) || (ret == -1 && err == EAGAIN));
    }
}

static long wait_call(hk_t *h, int op, const struct timespec *ts, uint32_t bitset) {
    if (!h->with_tokens && h->c->kind == HK_BLOCK)
        __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST); /* see check_woken */
    return syscall(SYS_futex, &word, op, 0, ts, NULL, bitset);
}
static long futex_wait(hk_t *h) { return wait_call(h, FUTEX_WAIT, NULL, 0); }
static long futex_wait_private(hk_t *h) { return wait_call(h, FUTEX_WAIT_PRIVATE, NULL, 0); }
static long futex_wait_long_timeout(hk_t *h) {
    struct timespec ts = {HK_LONG_MS / 1000, 0};
    return wait_call(h, FUTEX_WAIT_PRIVATE, &ts, 0);
}
static long futex_wait_bitset_abs(hk_t *h) {
    struct timespec ts = hk_abs(CLOCK_MONOTONIC, HK_LONG_MS);
    return wait_call(h, FUTEX_WAIT_BITSET_PRIVATE, &ts, 0x4);
}

static long futex_wait_short(hk_t *h) {
    struct timespec ts = {0, HK_SHORT_MS * 1000000L};
    return wait_call(h, FUTEX_WAIT_PRIVATE, &ts, 0);
}
static long futex_wait_bitset_realtime_short(hk_t *h) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, HK_SHORT_MS);
    return wait_call(h, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, &ts, FUTEX_BITSET_MATCH_ANY);
}

/* The word differs from the expected value: EAGAIN without sleeping. */
static void setup_one(hk_t *h) {
    (void)h;
    __atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
}
static long futex_wait_changed(hk_t *h) {
    (void)h;
    return syscall(SYS_futex, &word, FUTEX_WAIT, 0, NULL, NULL, 0);
}
static long futex_wait_private_changed(hk_t *h) {
    (void)h;
    return syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}
static long futex_wait_bitset_changed(hk_t *h) {
    struct timespec ts = hk_abs(CLOCK_MONOTONIC, HK_LONG_MS);
    (void)h;
    return syscall(SYS_futex, &word, FUTEX_WAIT_BITSET_PRIVATE, 0, &ts, NULL,
                   FUTEX_BITSET_MATCH_ANY);
}

/* Calls through syscall() that are not waits. */
static long futex_wake_nobody(hk_t *h) {
    (void)h;
    return syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
static long syscall_getpid(hk_t *h) {
    h->v[0] = getpid();
    return syscall(SYS_getpid);
}
static void check_getpid(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, h->v[0]);
    HCHECK_EQ(h, err, HK_SENTINEL);
}
static long syscall_write(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
    return syscall(SYS_write, p[1], "six ch", 6);
}
static void check_write(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 6);
    HCHECK_EQ(h, err, HK_SENTINEL);
    char b[8];
    HCHECK_EQ(h, read(h->fd[0], b, sizeof b), 6);
    HCHECK(h, memcmp(b, "six ch", 6) == 0);
}
static long syscall_ebadf(hk_t *h) {
    (void)h;
    return syscall(SYS_close, -1);
}
static long futex_bad_op(hk_t *h) {
    (void)h;
    return syscall(SYS_futex, &word, 0x7f, 0, NULL, NULL, 0);
}

static const struct hk_case cases[] = {
    {"FUTEX_WAIT woken", HK_BLOCK, .setup = setup_zero, .call = futex_wait, .unblock = wake,
     .check = check_woken, .cleanup = hk_close_fds},
    {"FUTEX_WAIT_PRIVATE woken", HK_BLOCK, .setup = setup_zero, .call = futex_wait_private,
     .unblock = wake_private, .check = check_woken},
    {"FUTEX_WAIT_PRIVATE with timeout woken", HK_BLOCK, .setup = setup_zero,
     .call = futex_wait_long_timeout, .unblock = wake_private, .check = check_woken},
    {"FUTEX_WAIT_BITSET absolute woken", HK_BLOCK, .setup = setup_zero,
     .call = futex_wait_bitset_abs, .unblock = wake_bitset, .check = check_woken},

    {"FUTEX_WAIT_PRIVATE times out", HK_TIMED, .setup = setup_zero, .call = futex_wait_short,
     .want = -1, .err = ETIMEDOUT},
    {"FUTEX_WAIT_BITSET|CLOCK_REALTIME times out", HK_TIMED, .setup = setup_zero,
     .call = futex_wait_bitset_realtime_short, .want = -1, .err = ETIMEDOUT},

    {"FUTEX_WAIT word already changed", HK_KEPT, .setup = setup_one,
     .call = futex_wait_changed, .want = -1, .err = EAGAIN},
    {"FUTEX_WAIT_PRIVATE word already changed", HK_KEPT, .setup = setup_one,
     .call = futex_wait_private_changed, .want = -1, .err = EAGAIN},
    {"FUTEX_WAIT_BITSET word already changed", HK_KEPT, .setup = setup_one,
     .call = futex_wait_bitset_changed, .want = -1, .err = EAGAIN},
    {"FUTEX_WAKE", HK_KEPT, .setup = setup_zero, .call = futex_wake_nobody, .want = 0},
    {"syscall(SYS_getpid)", HK_KEPT, .call = syscall_getpid, .check = check_getpid},
    {"syscall(SYS_write) to a pipe", HK_KEPT, .call = syscall_write, .check = check_write,
     .cleanup = hk_close_fds},
    {"syscall(SYS_close, -1) EBADF", HK_KEPT, .call = syscall_ebadf, .want = -1, .err = EBADF},
    {"FUTEX bad op ENOSYS", HK_ANY, .call = futex_bad_op, .want = -1, .err = ENOSYS},
};

int lwkt_test_main(int argc, char **argv) { return HK_RUN(cases, argc, argv); }
