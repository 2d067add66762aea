/*
 * core/vanished_shared.c: S9 for shared holds. A thread that vanishes
 * while holding tokens shared (it ends with a raw exit system call, so no
 * exit handler of the library runs) must not leave its shares counted for
 * ever: an exclusive request then gets in. The share of a live thread
 * holding the same token shared is not taken off with the dead one's.
 *
 * V: held shared by the vanishing thread alone; main then takes it
 *    exclusively (before the fix: waits for ever, the watchdog fails it).
 * W: held shared by the vanishing thread and by a live one that spins;
 *    a third thread asks for W exclusively and must not get it until the
 *    live thread releases (checked well past the recovery), then must.
 */
#include "check.h"

#include <sys/syscall.h>

static struct lwkt_token V = LWKT_TOKEN_INITIALIZER(vanished_V);
static struct lwkt_token W = LWKT_TOKEN_INITIALIZER(vanished_W);

static atomic_int vanish_tid, live_holding, live_release, writer_asking, writer_got;

static void *vanish(void *arg) {
    (void)arg;
    lwkt_gettoken_shared(&V);
    lwkt_gettoken_shared(&W);
    atomic_store(&vanish_tid, (int)syscall(SYS_gettid));
    syscall(SYS_exit, 0); /* no exit handlers, no pthread key destructors */
    return NULL;
}

static void *live_reader(void *arg) {
    (void)arg;
    lwkt_gettoken_shared(&W);
    atomic_store(&live_holding, 1);
    /* Spins (keeping W) as long as main needs; the watchdog bounds it. */
    while (!atomic_load(&live_release)) {
    }
    lwkt_reltoken(&W);
    return NULL;
}

static void *writer(void *arg) {
    (void)arg;
    atomic_store(&writer_asking, 1);
    lwkt_gettoken(&W);
    atomic_store(&writer_got, 1);
    lwkt_reltoken(&W);
    return NULL;
}

static int thread_gone(int tid) {
    return syscall(SYS_tgkill, getpid(), tid, 0) == -1 && errno == ESRCH;
}

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    start_watchdog(40);

    pthread_t live = start_thread(live_reader, NULL);
    SPIN_UNTIL(live_holding);
    /* Never joined: its thread descriptor is glibc's to worry about. */
    start_thread(vanish, NULL);
    SPIN_UNTIL(vanish_tid);
    SPIN_UNTIL_COND(thread_gone(atomic_load(&vanish_tid)));

    /* The dead thread's share of V alone stood in the way. */
    lwkt_gettoken(&V);
    lwkt_reltoken(&V);

    /* W: the live reader's share must survive the recovery. */
    pthread_t w = start_thread(writer, NULL);
    SPIN_UNTIL(writer_asking);
    /* Long enough for the writer to have looked for dead sharers several
     * times; not what the check relies on (it holds at any moment). */
    spin_for(2.0);
    CHECK(!atomic_load(&writer_got));
    atomic_store(&live_release, 1);
    join_thread(live);
    join_thread(w);
    CHECK(atomic_load(&writer_got));

    /* Everything is free again, both ways. */
    lwkt_gettoken_shared(&V);
    lwkt_reltoken(&V);
    lwkt_gettoken(&W);
    lwkt_reltoken(&W);
    return 0;
}
