/*
 * hooks/ipc.c: msgrcv, msgsnd (System V) and mq_receive, mq_send,
 * mq_timedreceive, mq_timedsend (POSIX) (SPEC section 4). Queues block on
 * demand: a receive from an empty queue (or one without a message of the
 * type asked for), a send to a full one.
 *
 * Nothing outlives the test: each POSIX queue is unlinked as soon as it is
 * open, and the System V queue is removed at the end -- or, should the test
 * die first, by a small child that waits for the test to go away.
 */
#include "hook_util.h"

#include <fcntl.h>
#include <mqueue.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/wait.h>

struct msg {
    long mtype;
    char mtext[32];
};

static int qid = -1;      /* the System V queue */
static int reaper_fd = -1; /* closing it tells the reaper to remove qid */
static pid_t reaper;

static void interrupt(hk_t *h) { hk_interrupt_until_returned(h, SIGUSR1); }
static void check_eintr(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, -1);
    HCHECK_EQ(h, err, EINTR);
}

/* --- System V ------------------------------------------------------------- */

static void sysv_send(hk_t *h, long type, const char *text) {
    struct msg m = {.mtype = type};
    strcpy(m.mtext, text);
    HCHECK_EQ(h, msgsnd(qid, &m, strlen(text), IPC_NOWAIT), 0);
}
/* Empty the queue and give it room for four 16-byte messages. */
static void setup_empty(hk_t *h) {
    struct msg m;
    while (msgrcv(qid, &m, sizeof m.mtext, 0, IPC_NOWAIT | MSG_NOERROR) >= 0) {
    }
    HCHECK_EQ(h, errno, ENOMSG);
    struct msqid_ds ds;
    HCHECK_EQ(h, msgctl(qid, IPC_STAT, &ds), 0);
    ds.msg_qbytes = 64;
    HCHECK_EQ(h, msgctl(qid, IPC_SET, &ds), 0);
}
static void setup_type5(hk_t *h) {
    setup_empty(h);
    sysv_send(h, 5, "five");
}
static void setup_full(hk_t *h) {
    setup_empty(h);
    for (int i = 0; i < 4; i++)
        sysv_send(h, 1, "0123456789abcdef");
    struct msg m = {.mtype = 1};
    HCHECK_EQ(h, msgsnd(qid, &m, 16, IPC_NOWAIT), -1);
    HCHECK_EQ(h, errno, EAGAIN);
}
static void cleanup_sysv(hk_t *h) { setup_empty(h); }

static void send_hello7(hk_t *h) { sysv_send(h, 7, "hello"); }
static void receive_one(hk_t *h) {
    struct msg m;
    HCHECK_EQ(h, msgrcv(qid, &m, sizeof m.mtext, 0, 0), 16);
}

static struct msg *msg_of(hk_t *h) { return (struct msg *)h->buf; }
static long msgrcv_any(hk_t *h) { return msgrcv(qid, msg_of(h), sizeof msg_of(h)->mtext, 0, 0); }
static long msgrcv_type7(hk_t *h) { return msgrcv(qid, msg_of(h), sizeof msg_of(h)->mtext, 7, 0); }
static long msgrcv_nowait(hk_t *h) {
    return msgrcv(qid, msg_of(h), sizeof msg_of(h)->mtext, 0, IPC_NOWAIT);
}
static long msgrcv_too_small(hk_t *h) { return msgrcv(qid, msg_of(h), 2, 0, 0); }
static long msgrcv_bad_id(hk_t *h) { return msgrcv(-1, msg_of(h), 8, 0, 0); }
static long msgsnd_call(hk_t *h) {
    (void)h;
    struct msg m = {.mtype = 9, .mtext = "sent"};
    return msgsnd(qid, &m, 4, 0);
}
static long msgsnd_nowait(hk_t *h) {
    (void)h;
    struct msg m = {.mtype = 9, .mtext = "sent"};
    return msgsnd(qid, &m, 4, IPC_NOWAIT);
}

static void check_hello7(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, msg_of(h)->mtype, 7);
    HCHECK(h, memcmp(msg_of(h)->mtext, "hello", 5) == 0);
}
static void check_five(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 4);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, msg_of(h)->mtype, 5);
    HCHECK(h, memcmp(msg_of(h)->mtext, "five", 4) == 0);
}
/* The type-5 message is still there. */
static void check_hello7_type5_left(hk_t *h, long ret, int err) {
    check_hello7(h, ret, err);
    HCHECK_EQ(h, msgrcv(qid, msg_of(h), sizeof msg_of(h)->mtext, 0, IPC_NOWAIT), 4);
    HCHECK_EQ(h, msg_of(h)->mtype, 5);
}
static void check_sent(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK_EQ(h, msgrcv(qid, msg_of(h), sizeof msg_of(h)->mtext, 9, IPC_NOWAIT), 4);
    HCHECK(h, memcmp(msg_of(h)->mtext, "sent", 4) == 0);
}

/* --- POSIX ---------------------------------------------------------------- */

/* fd[0]: a queue of two 64-byte messages (mqd_t is an int descriptor). */
static void setup_mq_flags(hk_t *h, int flags) {
    static int n;
    char name[64];
    snprintf(name, sizeof name, "/lwkt-hook-ipc-%d-%d", (int)getpid(), ++n);
    struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 64};
    mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL | flags, 0600, &a);
    HCHECK(h, q != (mqd_t)-1);
    HCHECK_EQ(h, mq_unlink(name), 0);
    h->fd[0] = (int)q;
}
static void setup_mq(hk_t *h) { setup_mq_flags(h, 0); }
static void setup_mq_nonblock(hk_t *h) { setup_mq_flags(h, O_NONBLOCK); }
static void setup_mq_with_msg(hk_t *h) {
    setup_mq(h);
    HCHECK_EQ(h, mq_send(h->fd[0], "hello", 5, 3), 0);
}
static void setup_mq_full(hk_t *h) {
    setup_mq(h);
    HCHECK_EQ(h, mq_send(h->fd[0], "first", 5, 1), 0);
    HCHECK_EQ(h, mq_send(h->fd[0], "second", 6, 1), 0);
}
static void mq_send_hello(hk_t *h) { HCHECK_EQ(h, mq_send(h->fd[0], "hello", 5, 3), 0); }
static void mq_receive_one(hk_t *h) {
    char b[64];
    HCHECK_EQ(h, mq_receive(h->fd[0], b, sizeof b, NULL), 5);
}

static unsigned *prio_of(hk_t *h) { return (unsigned *)(h->buf + 128); }
static long mq_receive_call(hk_t *h) { return mq_receive(h->fd[0], h->buf, 64, prio_of(h)); }
static long mq_receive_small(hk_t *h) { return mq_receive(h->fd[0], h->buf, 8, prio_of(h)); }
static long mq_timedreceive_ms(hk_t *h, long ms) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, ms);
    return mq_timedreceive(h->fd[0], h->buf, 64, prio_of(h), &ts);
}
static long mq_timedreceive_long(hk_t *h) { return mq_timedreceive_ms(h, HK_LONG_MS); }
static long mq_timedreceive_short(hk_t *h) { return mq_timedreceive_ms(h, HK_SHORT_MS); }
static long mq_timedreceive_past(hk_t *h) { return mq_timedreceive_ms(h, -1000); }
static long mq_send_call(hk_t *h) { return mq_send(h->fd[0], "third", 5, 7); }
static long mq_timedsend_ms(hk_t *h, long ms) {
    struct timespec ts = hk_abs(CLOCK_REALTIME, ms);
    return mq_timedsend(h->fd[0], "third", 5, 7, &ts);
}
static long mq_timedsend_long(hk_t *h) { return mq_timedsend_ms(h, HK_LONG_MS); }
static long mq_timedsend_short(hk_t *h) { return mq_timedsend_ms(h, HK_SHORT_MS); }

static void check_mq_hello(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 5);
    HCHECK_EQ(h, err, HK_SENTINEL);
    HCHECK(h, memcmp(h->buf, "hello", 5) == 0);
    HCHECK_EQ(h, *prio_of(h), 3);
}
/* "third" (priority 7) is first in line now. */
static void check_mq_sent(hk_t *h, long ret, int err) {
    HCHECK_EQ(h, ret, 0);
    HCHECK_EQ(h, err, HK_SENTINEL);
    char b[64];
    unsigned prio;
    HCHECK_EQ(h, mq_receive(h->fd[0], b, sizeof b, &prio), 5);
    HCHECK(h, memcmp(b, "third", 5) == 0);
    HCHECK_EQ(h, prio, 7);
}

static const struct hk_case cases[] = {
    {"msgrcv from an empty queue", HK_BLOCK, .setup = setup_empty, .call = msgrcv_any,
     .unblock = send_hello7, .check = check_hello7, .cleanup = cleanup_sysv},
    {"msgrcv of a type not queued", HK_BLOCK, .setup = setup_type5, .call = msgrcv_type7,
     .unblock = send_hello7, .check = check_hello7_type5_left, .cleanup = cleanup_sysv},
    {"msgrcv interrupted", HK_BLOCK, .setup = setup_empty, .call = msgrcv_any,
     .unblock = interrupt, .check = check_eintr, .cleanup = cleanup_sysv},
    {"msgsnd to a full queue", HK_BLOCK, .setup = setup_full, .call = msgsnd_call,
     .unblock = receive_one, .check = check_sent, .cleanup = cleanup_sysv},
    {"msgrcv with a message queued", HK_KEPT, .setup = setup_type5, .call = msgrcv_any,
     .check = check_five, .cleanup = cleanup_sysv},
    {"msgrcv IPC_NOWAIT from an empty queue", HK_KEPT, .setup = setup_empty,
     .call = msgrcv_nowait, .want = -1, .err = ENOMSG, .cleanup = cleanup_sysv},
    {"msgrcv E2BIG", HK_KEPT, .setup = setup_type5, .call = msgrcv_too_small, .want = -1,
     .err = E2BIG, .cleanup = cleanup_sysv},
    {"msgsnd with room", HK_KEPT, .setup = setup_empty, .call = msgsnd_call,
     .check = check_sent, .cleanup = cleanup_sysv},
    {"msgsnd IPC_NOWAIT to a full queue", HK_KEPT, .setup = setup_full, .call = msgsnd_nowait,
     .want = -1, .err = EAGAIN, .cleanup = cleanup_sysv},
    {"msgrcv EINVAL", HK_ANY, .call = msgrcv_bad_id, .want = -1, .err = EINVAL},

    {"mq_receive from an empty queue", HK_BLOCK, .setup = setup_mq, .call = mq_receive_call,
     .unblock = mq_send_hello, .check = check_mq_hello, .cleanup = hk_close_fds},
    {"mq_timedreceive (30 s) from an empty queue", HK_BLOCK, .setup = setup_mq,
     .call = mq_timedreceive_long, .unblock = mq_send_hello, .check = check_mq_hello,
     .cleanup = hk_close_fds},
    {"mq_receive interrupted", HK_BLOCK, .setup = setup_mq, .call = mq_receive_call,
     .unblock = interrupt, .check = check_eintr, .cleanup = hk_close_fds},
    {"mq_send to a full queue", HK_BLOCK, .setup = setup_mq_full, .call = mq_send_call,
     .unblock = mq_receive_one, .check = check_mq_sent, .cleanup = hk_close_fds},
    {"mq_timedsend (30 s) to a full queue", HK_BLOCK, .setup = setup_mq_full,
     .call = mq_timedsend_long, .unblock = mq_receive_one, .check = check_mq_sent,
     .cleanup = hk_close_fds},
    {"mq_timedreceive times out", HK_TIMED, .setup = setup_mq, .call = mq_timedreceive_short,
     .want = -1, .err = ETIMEDOUT, .cleanup = hk_close_fds},
    {"mq_timedsend times out", HK_TIMED, .setup = setup_mq_full, .call = mq_timedsend_short,
     .want = -1, .err = ETIMEDOUT, .cleanup = hk_close_fds},
    {"mq_receive with a message queued", HK_KEPT, .setup = setup_mq_with_msg,
     .call = mq_receive_call, .check = check_mq_hello, .cleanup = hk_close_fds},
    {"mq_timedreceive with a message queued", HK_KEPT, .setup = setup_mq_with_msg,
     .call = mq_timedreceive_long, .check = check_mq_hello, .cleanup = hk_close_fds},
    {"mq_send with room", HK_KEPT, .setup = setup_mq, .call = mq_send_call,
     .check = check_mq_sent, .cleanup = hk_close_fds},
    {"mq_timedsend with room", HK_KEPT, .setup = setup_mq, .call = mq_timedsend_long,
     .check = check_mq_sent, .cleanup = hk_close_fds},
    {"mq_receive from an empty O_NONBLOCK queue", HK_KEPT, .setup = setup_mq_nonblock,
     .call = mq_receive_call, .want = -1, .err = EAGAIN, .cleanup = hk_close_fds},
    {"mq_timedreceive past deadline", HK_ANY, .setup = setup_mq, .call = mq_timedreceive_past,
     .want = -1, .err = ETIMEDOUT, .cleanup = hk_close_fds},
    {"mq_receive EMSGSIZE", HK_ANY, .setup = setup_mq_with_msg, .call = mq_receive_small,
     .want = -1, .err = EMSGSIZE, .cleanup = hk_close_fds},
};

/* Remove the System V queue once the test process is gone, however it
 * ended: the child waits for EOF on a pipe only the test holds open. */
static void start_reaper(void) {
    int p[2];
    CHECK_EQ(pipe(p), 0);
    reaper = fork();
    CHECK(reaper >= 0);
    if (reaper == 0) {
        for (int fd = 0; fd < 1024; fd++)
            if (fd != p[0])
                close(fd);
        char c;
        while (read(p[0], &c, 1) > 0) {
        }
        msgctl(qid, IPC_RMID, NULL);
        _exit(0);
    }
    close(p[0]);
    reaper_fd = p[1];
}

int lwkt_test_main(int argc, char **argv) {
    qid = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
    CHECK(qid >= 0);
    start_reaper();
    hk_install_handler(SIGUSR1);
    int rc = HK_RUN(cases, argc, argv);
    CHECK_EQ(msgctl(qid, IPC_RMID, NULL), 0);
    close(reaper_fd);
    CHECK_EQ(waitpid(reaper, NULL, 0), reaper);
    return rc;
}
