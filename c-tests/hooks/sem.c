/*
 * hooks/sem.c: sem_wait, sem_timedwait, sem_clockwait (SPEC section 4), on
 * process-private and process-shared semaphores: a wait on zero blocks until
 * the helper posts (or a signal interrupts it, or it times out); a wait on
 * a positive value keeps the tokens (the sem_trywait probe).
 */
#include "hook_util.h"

#include <semaphore.h>
#include <sys/mman.h>

static sem_t private_sem;
static sem_t *sem = &private_sem;

static void setup_value(hk_t *h, unsigned value) { HCHECK_EQ(h, sem_init(sem, 0, value), 0); }
static void setup_zero(hk_t *h) { setup_value(h, 0); }
static void setup_one(hk_t *h) { setup_value(h, 1); }
/* A process-shared semaphore in shared memory. */
static void setup_shared_zero(hk_t *h) {
    void *p = mmap(NULL, sizeof(sem_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    HCHECK(h, p != MAP_FAILED);
    sem = p;
    HCHECK_EQ(h, sem_init(sem, 1, 0), 0);
}
static void cleanup(hk_t *h) {
    HCHECK_EQ(h, sem_destroy(sem), 0);
    if (sem != &private_sem) {
        munmap(sem, sizeof(sem_t));
        sem = &private_sem;
    }
}
static void post(hk_t *h) { HCHECK_EQ(h, sem_post(sem), 0); }
static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }

static long sem_wait_call(hk_t *h) {
    (void)h;
    return sem_wait(sem);
}
static long sem_timedwait_ms(long ms) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, ms);
    return sem_timedwait(sem, &ts);
}
static long sem_clockwait_ms(clockid_t clk, long ms) {
    struct timespec ts = hk_abs(clk, ms);
    return sem_clockwait(sem, clk, &ts);
}
static long sem_timedwait_long(hk_t *h) { (void)h; return sem_timedwait_ms(HK_LONG_MS); }
static long sem_timedwait_short(hk_t *h) { (void)h; return sem_timedwait_ms(HK_SHORT_MS); }
static long sem_timedwait_past(hk_t *h) { (void)h; return sem_timedwait_ms(-1000); }
static long sem_clockwait_long(hk_t *h) { (void)h; return sem_clockwait_ms(CLOCK_MONOTONIC, HK_LONG_MS); }
static long sem_clockwait_rt_long(hk_t *h) { (void)h; return sem_clockwait_ms(CLOCK_REALTIME, HK_LONG_MS); }
static long sem_clockwait_short(hk_t *h) { (void)h; return sem_clockwait_ms(CLOCK_MONOTONIC, HK_SHORT_MS); }
static long sem_timedwait_einval(hk_t *h) {
    (void)h;
    struct timespec ts = {0, 2000000000L}; /* tv_nsec out of range */
    return sem_timedwait(sem, &ts);
}

/* The wait consumed the post: the value is 0 again. */
static void check_taken(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    int v = -1;
    HCHECK_EQ(h, sem_getvalue(sem, &v), 0);
    HCHECK_EQ(h, v, 0);
}
static void check_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
}

static const struct hk_case cases[] = {
    {"sem_wait posted", HK_BLOCK, .setup = setup_zero, .call = sem_wait_call, .unblock = post,
     .check = check_taken, .cleanup = cleanup},
    {"sem_wait (process-shared) posted", HK_BLOCK, .setup = setup_shared_zero,
     .call = sem_wait_call, .unblock = post, .check = check_taken, .cleanup = cleanup},
    {"sem_wait interrupted", HK_BLOCK, .setup = setup_zero, .call = sem_wait_call,
     .unblock = interrupt, .check = check_eintr, .cleanup = cleanup},
    {"sem_timedwait posted", HK_BLOCK, .setup = setup_zero, .call = sem_timedwait_long,
     .unblock = post, .check = check_taken, .cleanup = cleanup},
    {"sem_clockwait posted", HK_BLOCK, .setup = setup_zero, .call = sem_clockwait_long,
     .unblock = post, .check = check_taken, .cleanup = cleanup},
    {"sem_clockwait (realtime) posted", HK_BLOCK, .setup = setup_zero,
     .call = sem_clockwait_rt_long, .unblock = post, .check = check_taken, .cleanup = cleanup},
    {"sem_timedwait times out", HK_TIMED, .setup = setup_zero, .call = sem_timedwait_short,
     .want = -1, .err = ETIMEDOUT, .cleanup = cleanup},
    {"sem_clockwait times out", HK_TIMED, .setup = setup_zero, .call = sem_clockwait_short,
     .want = -1, .err = ETIMEDOUT, .cleanup = cleanup},
    {"sem_wait on a positive value", HK_KEPT, .setup = setup_one, .call = sem_wait_call,
     .check = check_taken, .cleanup = cleanup},
    {"sem_timedwait on a positive value", HK_KEPT, .setup = setup_one,
     .call = sem_timedwait_long, .check = check_taken, .cleanup = cleanup},
    {"sem_clockwait on a positive value", HK_KEPT, .setup = setup_one,
     .call = sem_clockwait_long, .check = check_taken, .cleanup = cleanup},
    {"sem_timedwait past deadline", HK_ANY, .setup = setup_zero, .call = sem_timedwait_past,
     .want = -1, .err = ETIMEDOUT, .cleanup = cleanup},
    {"sem_timedwait EINVAL", HK_ANY, .setup = setup_zero, .call = sem_timedwait_einval,
     .want = -1, .err = EINVAL, .cleanup = cleanup},
};

int lwkt_test_main(int argc, char **argv) {
    hk_install_handler(SIGUSR1);
    return HK_RUN(cases, argc, argv);
}
