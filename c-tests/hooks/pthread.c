/*
 * hooks/pthread.c: pthread_mutex_lock/timedlock/clocklock,
 * pthread_cond_wait/timedwait/clockwait, pthread_rwlock_rdlock/wrlock and
 * their timed and clock forms, pthread_join, pthread_timedjoin_np,
 * pthread_barrier_wait (SPEC section 4).
 *
 * The helper owns what the holder waits for (it locks the mutex or rwlock
 * in `pre`, before the holder arms), takes the holder's released tokens,
 * and only then unlocks, signals, lets the joined thread finish or arrives
 * at the barrier. A free lock, and a thread already gone, keep the tokens
 * (the trylock / tryjoin probes).
 */
#include "hook_util.h"

#include <sys/syscall.h>

static pthread_mutex_t m;
static pthread_cond_t cv;
static pthread_rwlock_t rw;
static pthread_barrier_t bar;
static atomic_int pred;

/* --- mutexes ---------------------------------------------------------------- */

static void init_mutex(hk_t *h, int type, int protocol) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, type);
    pthread_mutexattr_setprotocol(&a, protocol);
    HCHECK_EQ(h, pthread_mutex_init(&m, &a), 0);
    pthread_mutexattr_destroy(&a);
}
static void setup_errorcheck(hk_t *h) { init_mutex(h, PTHREAD_MUTEX_ERRORCHECK, PTHREAD_PRIO_NONE); }
static void setup_normal(hk_t *h) { init_mutex(h, PTHREAD_MUTEX_NORMAL, PTHREAD_PRIO_NONE); }
static void setup_pi(hk_t *h) { init_mutex(h, PTHREAD_MUTEX_ERRORCHECK, PTHREAD_PRIO_INHERIT); }
static void setup_recursive_owned(hk_t *h) {
    init_mutex(h, PTHREAD_MUTEX_RECURSIVE, PTHREAD_PRIO_NONE);
    HCHECK_EQ(h, pthread_mutex_lock(&m), 0);
}
static void setup_errorcheck_owned(hk_t *h) {
    setup_errorcheck(h);
    HCHECK_EQ(h, pthread_mutex_lock(&m), 0);
}
static void cleanup_mutex(hk_t *h) { HCHECK_EQ(h, pthread_mutex_destroy(&m), 0); }
static void cleanup_recursive(hk_t *h) {
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0);
    cleanup_mutex(h);
}

static void lock_m(hk_t *h) { HCHECK_EQ(h, pthread_mutex_lock(&m), 0); }
static void unlock_m(hk_t *h) { HCHECK_EQ(h, pthread_mutex_unlock(&m), 0); }

static long mutex_lock(hk_t *h) {
    (void)h;
    return pthread_mutex_lock(&m);
}
static long mutex_timedlock_ms(long ms) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, ms);
    return pthread_mutex_timedlock(&m, &ts);
}
static long mutex_clocklock_ms(clockid_t clk, long ms) {
    struct timespec ts = hk_abs(clk, ms);
    return pthread_mutex_clocklock(&m, clk, &ts);
}
static long mutex_timedlock_long(hk_t *h) {
    (void)h;
    return mutex_timedlock_ms(HK_LONG_MS);
}
static long mutex_timedlock_short(hk_t *h) {
    (void)h;
    return mutex_timedlock_ms(HK_SHORT_MS);
}
static long mutex_clocklock_long(hk_t *h) {
    (void)h;
    return mutex_clocklock_ms(CLOCK_MONOTONIC, HK_LONG_MS);
}
static long mutex_clocklock_rt_long(hk_t *h) {
    (void)h;
    return mutex_clocklock_ms(CLOCK_REALTIME, HK_LONG_MS);
}
static long mutex_clocklock_short(hk_t *h) {
    (void)h;
    return mutex_clocklock_ms(CLOCK_MONOTONIC, HK_SHORT_MS);
}

/* The holder owns the mutex (an errorcheck unlock by a non-owner fails). */
static void check_owned(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0);
}
static void check_owned_normal(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, pthread_mutex_trylock(&m), EBUSY);
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0);
}
static void check_recursive(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0); /* the second level */
}
static void check_timedout(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, ETIMEDOUT);
    HCHECK_EQ(h, err, HK_SENTINEL);
}

/* --- condition variables ------------------------------------------------- */

static void setup_cond_clock(hk_t *h, clockid_t clk) {
    setup_errorcheck(h);
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, clk);
    HCHECK_EQ(h, pthread_cond_init(&cv, &a), 0);
    pthread_condattr_destroy(&a);
    atomic_store(&pred, 0);
    HCHECK_EQ(h, pthread_mutex_lock(&m), 0); /* the holder waits with m held */
}
static void setup_cond(hk_t *h) { setup_cond_clock(h, CLOCK_REALTIME); }
static void setup_cond_mono(hk_t *h) { setup_cond_clock(h, CLOCK_MONOTONIC); }
static void cleanup_cond(hk_t *h) {
    HCHECK_EQ(h, pthread_cond_destroy(&cv), 0);
    cleanup_mutex(h);
}
static void signal_cv(hk_t *h) {
    HCHECK_EQ(h, pthread_mutex_lock(&m), 0);
    atomic_store(&pred, 1);
    HCHECK_EQ(h, pthread_cond_signal(&cv), 0);
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0);
}
static void broadcast_cv(hk_t *h) {
    HCHECK_EQ(h, pthread_mutex_lock(&m), 0);
    atomic_store(&pred, 1);
    HCHECK_EQ(h, pthread_cond_broadcast(&cv), 0);
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0);
}

/* Wait for the predicate (a spurious wake-up waits again). */
static long cond_wait(hk_t *h) {
    (void)h;
    int r = 0;
    while (!atomic_load(&pred) && r == 0)
        r = pthread_cond_wait(&cv, &m);
    return r;
}
static long cond_timedwait_ms(long ms, clockid_t clk) {
    struct timespec ts = hk_abs(clk, ms);
    int r = 0;
    while (!atomic_load(&pred) && r == 0)
        r = pthread_cond_timedwait(&cv, &m, &ts);
    return r;
}
static long cond_clockwait_ms(long ms, clockid_t clk) {
    struct timespec ts = hk_abs(clk, ms);
    int r = 0;
    while (!atomic_load(&pred) && r == 0)
        r = pthread_cond_clockwait(&cv, &m, clk, &ts);
    return r;
}
static long cond_timedwait_long(hk_t *h) {
    (void)h;
    return cond_timedwait_ms(HK_LONG_MS, CLOCK_REALTIME);
}
static long cond_timedwait_mono_long(hk_t *h) {
    (void)h;
    return cond_timedwait_ms(HK_LONG_MS, CLOCK_MONOTONIC);
}
static long cond_timedwait_short(hk_t *h) {
    (void)h;
    return cond_timedwait_ms(HK_SHORT_MS, CLOCK_REALTIME);
}
static long cond_timedwait_past(hk_t *h) {
    (void)h;
    return cond_timedwait_ms(-1000, CLOCK_REALTIME);
}
static long cond_clockwait_long(hk_t *h) {
    (void)h;
    return cond_clockwait_ms(HK_LONG_MS, CLOCK_MONOTONIC);
}
static long cond_clockwait_short(hk_t *h) {
    (void)h;
    return cond_clockwait_ms(HK_SHORT_MS, CLOCK_MONOTONIC);
}
static long cond_clockwait_rt_short(hk_t *h) {
    (void)h;
    return cond_clockwait_ms(HK_SHORT_MS, CLOCK_REALTIME);
}
/* Woken or timed out, the waiter holds the mutex again. */
static void check_cond_owned(hk_t *h, long ret, int err) {
    check_owned(h, ret, err);
    HCHECK(h, atomic_load(&pred));
}
static void check_cond_timedout(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, ETIMEDOUT);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, pthread_mutex_unlock(&m), 0);
}

/* --- rwlocks ----------------------------------------------------------------- */

static void setup_rw(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_init(&rw, NULL), 0); }
static void setup_rw_own_write(hk_t *h) {
    setup_rw(h);
    HCHECK_EQ(h, pthread_rwlock_wrlock(&rw), 0);
}
static void cleanup_rw(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_destroy(&rw), 0); }
static void cleanup_rw_own(hk_t *h) {
    HCHECK_EQ(h, pthread_rwlock_unlock(&rw), 0);
    cleanup_rw(h);
}
static void rw_wrlock(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_wrlock(&rw), 0); }
static void rw_rdlock(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_rdlock(&rw), 0); }
static void rw_unlock(hk_t *h) { HCHECK_EQ(h, pthread_rwlock_unlock(&rw), 0); }

static long rdlock(hk_t *h) {
    (void)h;
    return pthread_rwlock_rdlock(&rw);
}
static long wrlock(hk_t *h) {
    (void)h;
    return pthread_rwlock_wrlock(&rw);
}
static long timed_rw(int write, long ms) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, ms);
    return write ? pthread_rwlock_timedwrlock(&rw, &ts) : pthread_rwlock_timedrdlock(&rw, &ts);
}
static long clock_rw(int write, long ms) {
    struct timespec ts = hk_abs(CLOCK_MONOTONIC, ms);
    return write ? pthread_rwlock_clockwrlock(&rw, CLOCK_MONOTONIC, &ts)
                 : pthread_rwlock_clockrdlock(&rw, CLOCK_MONOTONIC, &ts);
}
static long timedrdlock_long(hk_t *h) { (void)h; return timed_rw(0, HK_LONG_MS); }
static long timedwrlock_long(hk_t *h) { (void)h; return timed_rw(1, HK_LONG_MS); }
static long clockrdlock_long(hk_t *h) { (void)h; return clock_rw(0, HK_LONG_MS); }
static long clockwrlock_long(hk_t *h) { (void)h; return clock_rw(1, HK_LONG_MS); }
static long timedrdlock_short(hk_t *h) { (void)h; return timed_rw(0, HK_SHORT_MS); }
static long timedwrlock_short(hk_t *h) { (void)h; return timed_rw(1, HK_SHORT_MS); }
static long clockrdlock_short(hk_t *h) { (void)h; return clock_rw(0, HK_SHORT_MS); }
static long clockwrlock_short(hk_t *h) { (void)h; return clock_rw(1, HK_SHORT_MS); }

/* The holder has the lock: a write try fails; then it unlocks. */
static void check_rw_held(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    int t = pthread_rwlock_trywrlock(&rw);
    HCHECK(h, t == EBUSY || t == EDEADLK);
    HCHECK_EQ(h, pthread_rwlock_unlock(&rw), 0);
}

/* --- join -------------------------------------------------------------------- */

static pthread_t target;
static atomic_long target_tid;
/* Runs until the helper writes to the pipe fd[1] (blocking in read: it
 * holds no token). */
static void *target_fn(void *arg) {
    hk_t *h = arg;
    atomic_store(&target_tid, (long)syscall(SYS_gettid));
    char c;
    ssize_t r = read(h->fd[0], &c, 1);
    return (void *)(r == 1 ? 42L : 99L);
}
static void setup_target(hk_t *h) {
    int p[2];
    HCHECK_EQ(h, pipe(p), 0);
    h->fd[0] = p[0];
    h->fd[1] = p[1];
    atomic_store(&target_tid, 0);
    target = hk_spawn(target_fn, h);
    h->v[2] = 0; /* not joined yet */
}
static void finish_target(hk_t *h) { HCHECK_EQ(h, write(h->fd[1], "x", 1), 1); }
/* The target has exited completely (its tid is gone), not yet joined. */
static void setup_target_gone(hk_t *h) {
    setup_target(h);
    finish_target(h);
    HSPIN(h, target_tid);
    double end = now_s() + TEST_DEADLINE_S;
    while (syscall(SYS_tgkill, getpid(), atomic_load(&target_tid), 0) == 0) {
        if (now_s() > end)
            HFAIL(h, "the target thread never exited");
        sched_yield();
    }
}
static void cleanup_target(hk_t *h) {
    if (!h->v[2]) {
        finish_target(h);
        HCHECK_EQ(h, pthread_join(target, NULL), 0);
    }
    hk_close_fds(h);
}
static long join_call(hk_t *h) {
    void **ret = (void **)h->buf;
    return pthread_join(target, ret);
}
static long timedjoin_ms(hk_t *h, long ms) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, ms);
    return pthread_timedjoin_np(target, (void **)h->buf, &ts);
}
static long timedjoin_long(hk_t *h) { return timedjoin_ms(h, HK_LONG_MS); }
static long timedjoin_short(hk_t *h) { return timedjoin_ms(h, HK_SHORT_MS); }
static void check_joined(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, (long)*(void **)h->buf, 42);
    h->v[2] = 1;
}
static long join_self(hk_t *h) {
    (void)h;
    return pthread_join(pthread_self(), NULL);
}

/* --- barrier ----------------------------------------------------------------- */

static void setup_barrier2(hk_t *h) { HCHECK_EQ(h, pthread_barrier_init(&bar, NULL, 2), 0); }
static void setup_barrier1(hk_t *h) { HCHECK_EQ(h, pthread_barrier_init(&bar, NULL, 1), 0); }
static void cleanup_barrier(hk_t *h) { HCHECK_EQ(h, pthread_barrier_destroy(&bar), 0); }
static void arrive(hk_t *h) { h->v[1] = pthread_barrier_wait(&bar); }
static long barrier_wait(hk_t *h) {
    (void)h;
    return pthread_barrier_wait(&bar);
}
/* Both passed; exactly one of them is the serial thread. */
static void check_barrier2(hk_t *h, long ret, int err) {
    HCHECK(h, ret == 0 || ret == PTHREAD_BARRIER_SERIAL_THREAD);
    HCHECK(h, h->v[1] == 0 || h->v[1] == PTHREAD_BARRIER_SERIAL_THREAD);
    HCHECK((h), (ret == PTHREAD_BARRIER_SERIAL_THREAD) != (h->v[1] == PTHREAD_BARRIER_SERIAL_THREAD));
    HCHECK_EQ(h, err, HK_SENTINEL);
}

static const struct hk_case cases[] = {
    /* Mutexes. */
    {"pthread_mutex_lock contended", HK_BLOCK, .setup = setup_errorcheck, .pre = lock_m,
     .call = mutex_lock, .unblock = unlock_m, .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_lock contended (normal)", HK_BLOCK, .setup = setup_normal, .pre = lock_m,
     .call = mutex_lock, .unblock = unlock_m, .check = check_owned_normal,
     .cleanup = cleanup_mutex},
    {"pthread_mutex_lock contended (PI)", HK_BLOCK, .setup = setup_pi, .pre = lock_m,
     .call = mutex_lock, .unblock = unlock_m, .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_timedlock contended", HK_BLOCK, .setup = setup_errorcheck, .pre = lock_m,
     .call = mutex_timedlock_long, .unblock = unlock_m, .check = check_owned,
     .cleanup = cleanup_mutex},
    {"pthread_mutex_clocklock contended", HK_BLOCK, .setup = setup_errorcheck, .pre = lock_m,
     .call = mutex_clocklock_long, .unblock = unlock_m, .check = check_owned,
     .cleanup = cleanup_mutex},
    {"pthread_mutex_clocklock (realtime) contended", HK_BLOCK, .setup = setup_errorcheck,
     .pre = lock_m, .call = mutex_clocklock_rt_long, .unblock = unlock_m,
     .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_timedlock times out", HK_TIMED, .setup = setup_errorcheck, .pre = lock_m,
     .call = mutex_timedlock_short, .unblock = unlock_m, .check = check_timedout,
     .cleanup = cleanup_mutex},
    {"pthread_mutex_clocklock times out", HK_TIMED, .setup = setup_errorcheck, .pre = lock_m,
     .call = mutex_clocklock_short, .unblock = unlock_m, .check = check_timedout,
     .cleanup = cleanup_mutex},
    {"pthread_mutex_lock free", HK_KEPT, .setup = setup_errorcheck, .call = mutex_lock,
     .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_lock free (PI)", HK_KEPT, .setup = setup_pi, .call = mutex_lock,
     .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_timedlock free", HK_KEPT, .setup = setup_errorcheck,
     .call = mutex_timedlock_long, .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_clocklock free", HK_KEPT, .setup = setup_errorcheck,
     .call = mutex_clocklock_long, .check = check_owned, .cleanup = cleanup_mutex},
    {"pthread_mutex_lock recursive, own", HK_KEPT, .setup = setup_recursive_owned,
     .call = mutex_lock, .check = check_recursive, .cleanup = cleanup_recursive},
    {"pthread_mutex_lock errorcheck, own: EDEADLK", HK_ANY, .setup = setup_errorcheck_owned,
     .call = mutex_lock, .want = EDEADLK, .cleanup = cleanup_recursive},

    /* Condition variables. */
    {"pthread_cond_wait signalled", HK_BLOCK, .setup = setup_cond, .call = cond_wait,
     .unblock = signal_cv, .check = check_cond_owned, .cleanup = cleanup_cond},
    {"pthread_cond_wait broadcast", HK_BLOCK, .setup = setup_cond, .call = cond_wait,
     .unblock = broadcast_cv, .check = check_cond_owned, .cleanup = cleanup_cond},
    {"pthread_cond_timedwait signalled", HK_BLOCK, .setup = setup_cond,
     .call = cond_timedwait_long, .unblock = signal_cv, .check = check_cond_owned,
     .cleanup = cleanup_cond},
    {"pthread_cond_timedwait (monotonic) signalled", HK_BLOCK, .setup = setup_cond_mono,
     .call = cond_timedwait_mono_long, .unblock = signal_cv, .check = check_cond_owned,
     .cleanup = cleanup_cond},
    {"pthread_cond_clockwait signalled", HK_BLOCK, .setup = setup_cond,
     .call = cond_clockwait_long, .unblock = signal_cv, .check = check_cond_owned,
     .cleanup = cleanup_cond},
    {"pthread_cond_timedwait times out", HK_TIMED, .setup = setup_cond,
     .call = cond_timedwait_short, .check = check_cond_timedout, .cleanup = cleanup_cond},
    {"pthread_cond_clockwait times out", HK_TIMED, .setup = setup_cond,
     .call = cond_clockwait_short, .check = check_cond_timedout, .cleanup = cleanup_cond},
    {"pthread_cond_clockwait (realtime) times out", HK_TIMED, .setup = setup_cond,
     .call = cond_clockwait_rt_short, .check = check_cond_timedout, .cleanup = cleanup_cond},
    {"pthread_cond_timedwait past deadline", HK_ANY, .setup = setup_cond,
     .call = cond_timedwait_past, .check = check_cond_timedout, .cleanup = cleanup_cond},

    /* Rwlocks. */
    {"pthread_rwlock_rdlock, writer holds", HK_BLOCK, .setup = setup_rw, .pre = rw_wrlock,
     .call = rdlock, .unblock = rw_unlock, .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_wrlock, reader holds", HK_BLOCK, .setup = setup_rw, .pre = rw_rdlock,
     .call = wrlock, .unblock = rw_unlock, .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_wrlock, writer holds", HK_BLOCK, .setup = setup_rw, .pre = rw_wrlock,
     .call = wrlock, .unblock = rw_unlock, .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_timedrdlock, writer holds", HK_BLOCK, .setup = setup_rw,
     .pre = rw_wrlock, .call = timedrdlock_long, .unblock = rw_unlock,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_timedwrlock, reader holds", HK_BLOCK, .setup = setup_rw,
     .pre = rw_rdlock, .call = timedwrlock_long, .unblock = rw_unlock,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_clockrdlock, writer holds", HK_BLOCK, .setup = setup_rw,
     .pre = rw_wrlock, .call = clockrdlock_long, .unblock = rw_unlock,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_clockwrlock, reader holds", HK_BLOCK, .setup = setup_rw,
     .pre = rw_rdlock, .call = clockwrlock_long, .unblock = rw_unlock,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_timedrdlock times out", HK_TIMED, .setup = setup_rw, .pre = rw_wrlock,
     .call = timedrdlock_short, .unblock = rw_unlock, .check = check_timedout,
     .cleanup = cleanup_rw},
    {"pthread_rwlock_timedwrlock times out", HK_TIMED, .setup = setup_rw, .pre = rw_rdlock,
     .call = timedwrlock_short, .unblock = rw_unlock, .check = check_timedout,
     .cleanup = cleanup_rw},
    {"pthread_rwlock_clockrdlock times out", HK_TIMED, .setup = setup_rw, .pre = rw_wrlock,
     .call = clockrdlock_short, .unblock = rw_unlock, .check = check_timedout,
     .cleanup = cleanup_rw},
    {"pthread_rwlock_clockwrlock times out", HK_TIMED, .setup = setup_rw, .pre = rw_rdlock,
     .call = clockwrlock_short, .unblock = rw_unlock, .check = check_timedout,
     .cleanup = cleanup_rw},
    {"pthread_rwlock_rdlock free", HK_KEPT, .setup = setup_rw, .call = rdlock,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_rdlock, reader holds", HK_KEPT, .setup = setup_rw, .pre = rw_rdlock,
     .call = rdlock, .unblock = rw_unlock, .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_wrlock free", HK_KEPT, .setup = setup_rw, .call = wrlock,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_timedrdlock free", HK_KEPT, .setup = setup_rw, .call = timedrdlock_long,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_timedwrlock free", HK_KEPT, .setup = setup_rw, .call = timedwrlock_long,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_clockrdlock free", HK_KEPT, .setup = setup_rw, .call = clockrdlock_long,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_clockwrlock free", HK_KEPT, .setup = setup_rw, .call = clockwrlock_long,
     .check = check_rw_held, .cleanup = cleanup_rw},
    {"pthread_rwlock_wrlock, own: EDEADLK", HK_ANY, .setup = setup_rw_own_write,
     .call = wrlock, .want = EDEADLK, .cleanup = cleanup_rw_own},

    /* Join. */
    {"pthread_join of a running thread", HK_BLOCK, .setup = setup_target, .call = join_call,
     .unblock = finish_target, .check = check_joined, .cleanup = cleanup_target},
    {"pthread_timedjoin_np of a running thread", HK_BLOCK, .setup = setup_target,
     .call = timedjoin_long, .unblock = finish_target, .check = check_joined,
     .cleanup = cleanup_target},
    {"pthread_timedjoin_np times out", HK_TIMED, .setup = setup_target,
     .call = timedjoin_short, .check = check_timedout, .cleanup = cleanup_target},
    {"pthread_join of a finished thread", HK_KEPT, .setup = setup_target_gone,
     .call = join_call, .check = check_joined, .cleanup = cleanup_target},
    {"pthread_timedjoin_np of a finished thread", HK_KEPT, .setup = setup_target_gone,
     .call = timedjoin_long, .check = check_joined, .cleanup = cleanup_target},
    {"pthread_join self: EDEADLK", HK_ANY, .call = join_self, .want = EDEADLK},

    /* Barrier. */
    {"pthread_barrier_wait for the other thread", HK_BLOCK, .setup = setup_barrier2,
     .call = barrier_wait, .unblock = arrive, .check = check_barrier2,
     .cleanup = cleanup_barrier},
    {"pthread_barrier_wait, count 1", HK_ANY, .setup = setup_barrier1, .call = barrier_wait,
     .want = PTHREAD_BARRIER_SERIAL_THREAD, .cleanup = cleanup_barrier},
};

int lwkt_test_main(int argc, char **argv) { return HK_RUN(cases, argc, argv); }
