/*
 * core/signal_handler_stress.c: SPEC S1 and section 7 ("signal handlers may
 * use tokens at any point of the interrupted thread's acquire or release").
 *
 * Thread A takes and releases T in a loop (sometimes under an outer token U,
 * sometimes blocking in nanosleep while holding, so that release on block and
 * retake run too) while another thread hammers it with SIGUSR1; A's handler
 * takes and releases T as well (and now and then blocks holding it). Thread
 * B contends for T all along. Whoever is
 * inside T checks, with plain (non-atomic) memory, that no other thread is
 * inside, and that T's lock word names its own thread: a handler that landed
 * between two steps of A's acquire or release and mistook the half-done step
 * would free the word under a holder, which shows here at once.
 *
 * A second phase does the same with shared holds: A and its handler take T
 * shared, B exclusively; B checks that no shared holder is inside.
 *
 * SIGNAL_STRESS_ACQUISITIONS (default 30000000) sets how many acquisitions
 * the two looping threads make in all (the handlers' come on top).
 */
#include "check.h"

#include <stdint.h>
#include <sys/syscall.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(stress_T);
static struct lwkt_token U = LWKT_TOKEN_INITIALIZER(stress_U);

/* Exclusive holders: which thread is inside, how deep (a handler nests
 * inside its own thread's hold). Shared holders: how many are inside. Plain
 * memory on purpose: only the token orders these accesses. */
static volatile int excl_owner;
static volatile int shared_inside;

static __thread int my_tid;
static pthread_t thread_a;
static atomic_int phase_shared, stop_signals, a_ready;
static atomic_long handler_runs, handler_acquisitions, signals_sent;
static long per_thread;

static void fail_inside(const char *who, const char *what, unsigned long long word) {
    char buf[200];
    int n = snprintf(buf, sizeof buf, "FAIL: %s: %s (tid %d, lock word %#llx)\n", who, what,
                     my_tid, word);
    ssize_t r = write(2, buf, (size_t)n);
    (void)r;
    _exit(1);
}

static unsigned long long word_now(void) {
    return __atomic_load_n(&T.t_word, __ATOMIC_RELAXED);
}

/* Inside T, held exclusively by this thread (maybe recursively). */
static void inside_exclusive(const char *who) {
    unsigned long long w = word_now();
    if (w != (unsigned long long)my_tid)
        fail_inside(who, "T's word does not name its exclusive holder", w);
    int prev = excl_owner;
    if (prev != 0 && prev != my_tid)
        fail_inside(who, "another thread is inside T", w);
    if (shared_inside != 0)
        fail_inside(who, "a shared holder is inside T", w);
    excl_owner = my_tid;
    for (int i = 0; i < 4; i++) {
        __asm__ volatile("" ::: "memory");
        if (excl_owner != my_tid || shared_inside != 0)
            fail_inside(who, "another holder entered T", word_now());
    }
    excl_owner = prev;
}

/* Inside T, held shared by this thread. */
static void inside_shared(const char *who) {
    unsigned long long w = word_now();
    if (!(w >> 63))
        fail_inside(who, "T's word is not shared under a shared holder", w);
    if (excl_owner != 0)
        fail_inside(who, "an exclusive holder is inside T", w);
    __atomic_fetch_add(&shared_inside, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 4; i++) {
        __asm__ volatile("" ::: "memory");
        if (excl_owner != 0)
            fail_inside(who, "an exclusive holder entered T", word_now());
    }
    __atomic_fetch_sub(&shared_inside, 1, __ATOMIC_RELAXED);
}

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    long run = atomic_fetch_add_explicit(&handler_runs, 1, memory_order_relaxed);
    int shared = atomic_load_explicit(&phase_shared, memory_order_relaxed);
    if (shared) {
        lwkt_gettoken_shared(&T);
        inside_shared("handler (shared)");
    } else {
        lwkt_gettoken(&T);
        inside_exclusive("handler");
    }
    if ((run & 15) == 5) {
        /* Block holding T: the handler gives back what its thread owns
         * (whatever step it interrupted) and takes it back. Meanwhile
         * others may hold T, so the interrupted critical section of A
         * (if any) steps out, as it would around a blocking call. */
        int saved_owner = excl_owner, saved_inside = shared_inside;
        excl_owner = 0;
        shared_inside = 0;
        struct timespec ts = {0, 1000};
        nanosleep(&ts, NULL);
        if (shared)
            inside_shared("handler (shared, after blocking)");
        else
            inside_exclusive("handler (after blocking)");
        if (excl_owner != 0 || shared_inside != 0)
            fail_inside("handler", "a holder left T marked", word_now());
        excl_owner = saved_owner;
        shared_inside = saved_inside;
    }
    lwkt_reltoken(&T);
    atomic_fetch_add_explicit(&handler_acquisitions, 1, memory_order_relaxed);
    errno = saved;
}

static void a_block_briefly(void) {
    struct timespec ts = {0, 1000};
    nanosleep(&ts, NULL); /* releases and retakes what A holds */
}

static void *thread_a_main(void *arg) {
    (void)arg;
    my_tid = (int)syscall(SYS_gettid);
    atomic_store(&a_ready, 1);
    long half = per_thread / 2;
    int holding_u = 0;
    for (long i = 0; i < per_thread; i++) {
        if (i == half) {
            /* The handler must see the phase change only when A holds
             * nothing of T: it is set between two iterations. */
            atomic_store(&phase_shared, 1);
        }
        int shared = i >= half;
        if ((i & 1023) == 0) {
            lwkt_gettoken(&U);
            holding_u = 1;
        }
        if (shared) {
            lwkt_gettoken_shared(&T);
            inside_shared("A (shared)");
        } else {
            lwkt_gettoken(&T);
            inside_exclusive("A");
        }
        if ((i & 4095) == 7)
            a_block_briefly();
        if (shared)
            inside_shared("A (shared, after)");
        else
            inside_exclusive("A (after)");
        lwkt_reltoken(&T);
        if ((i & 1023) == 511 || (holding_u && i + 1 == per_thread)) {
            lwkt_reltoken(&U);
            holding_u = 0;
        }
    }
    CHECK_EQ(lwkt_cnttoken(&T), 0);
    CHECK_EQ(lwkt_cnttoken(&U), 0);
    /* The stress proves something only if handlers really interrupted A
     * (with a small SIGNAL_STRESS_ACQUISITIONS the loop may end first). */
    SPIN_UNTIL_COND(atomic_load(&handler_acquisitions) > 0);
    /* pthread_kill must not name a joined thread: stop the signals first. */
    atomic_store(&stop_signals, 1);
    return NULL;
}

static void *thread_b_main(void *arg) {
    (void)arg;
    my_tid = (int)syscall(SYS_gettid);
    for (long i = 0; i < per_thread; i++) {
        lwkt_gettoken(&T);
        inside_exclusive("B");
        lwkt_reltoken(&T);
    }
    return NULL;
}

static void *signaller_main(void *arg) {
    (void)arg;
    SPIN_UNTIL(a_ready); /* the handler needs A's my_tid */
    while (!atomic_load(&stop_signals)) {
        if (pthread_kill(thread_a, SIGUSR1) != 0)
            break;
        atomic_fetch_add_explicit(&signals_sent, 1, memory_order_relaxed);
        for (int i = 0; i < 300; i++)
            __asm__ volatile("pause");
    }
    return NULL;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    long total = 30000000;
    const char *env = getenv("SIGNAL_STRESS_ACQUISITIONS");
    if (env && *env)
        total = strtol(env, NULL, 10);
    CHECK(total >= 4);
    per_thread = total / 2;
    start_watchdog(55);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);

    double t0 = now_s();
    thread_a = start_thread(thread_a_main, NULL);
    pthread_t b = start_thread(thread_b_main, NULL);
    pthread_t s = start_thread(signaller_main, NULL);
    CHECK(pthread_join(s, NULL) == 0);
    CHECK(pthread_join(thread_a, NULL) == 0);
    CHECK(pthread_join(b, NULL) == 0);
    CHECK_EQ(word_now(), 0);
    fprintf(stderr,
            "signal stress: %ld acquisitions by two threads, %ld signals sent, %ld handled "
            "(each taking T), %.1f s\n",
            2 * per_thread, atomic_load(&signals_sent), atomic_load(&handler_acquisitions),
            now_s() - t0);
    return 0;
}
