/*
 * loadgen: N client threads against kvserver on 127.0.0.1, each doing a
 * bounded number of operations within a bounded time, with a final state
 * that is known exactly; then DUMP and CHECKSUM are checked against it.
 *
 *   loadgen PORT CLIENTS OPS SECONDS [--shutdown]
 *
 * Client i runs operation n = 0, 1, ... (up to OPS, or until SECONDS have
 * passed; it records how many it completed) of a fixed sequence:
 *
 *   with r = n / 6:
 *   n % 6 == 0  INCR c<i>.n<r%4> by 1+r%3      its own counters: exact replies
 *   n % 6 == 1  INCR s<r%4> by 1+r%5          shared counters: replies it sees rise
 *   n % 6 == 2  APPEND alog "<i>."            shared log: each tag exactly once per op
 *   n % 6 == 3  SET c<i>.s<r%3> v<i>_<n>
 *   n % 6 == 4  GET c<i>.s<r%3>               must be what it set last (or NIL)
 *   n % 6 == 5  APPEND c<i>.log <r%10>        its own log: exact length
 *   and every 97th operation also STATS.
 *
 * Meanwhile one more client stays connected and idle: its server thread
 * holds its connection's pool token while blocked in recv(), and every
 * STATS must take that token, so STATS answers only because the blocked
 * recv() released it.
 *
 * From the counts completed, the final table is known: every key, every
 * value (the shared log as a multiset of well-formed tags). A lost update,
 * a torn or duplicated record, a missing or extra key fails the run.
 * Exit status 0 when every check passed; 1 with a reason on stderr.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define N_OWN 4
#define N_SHARED 4
#define N_SETS 3

static int port, nclients, max_ops;
static double deadline;
static atomic_int failed;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (atomic_fetch_add(&failed, 1) < 10)
        fprintf(stderr, "loadgen: FAIL: %s\n", msg);
}

/* ------------------------------------------------------------------------ */
/* A connection with a line reader                                           */
/* ------------------------------------------------------------------------ */

struct client {
    int fd;
    size_t off, len, cap;
    char *buf;
    char *line; /* the last line read, NUL-terminated (points into buf) */
};

static int connect_server(struct client *c) {
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    /* A server that stops answering fails the run instead of hanging it. */
    struct timeval tv = {20, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(c->fd);
        return -1;
    }
    c->cap = 4096;
    c->buf = malloc(c->cap);
    return c->buf ? 0 : -1;
}

static void disconnect(struct client *c) {
    close(c->fd);
    free(c->buf);
}

static int send_line(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int send_line(struct client *c, const char *fmt, ...) {
    char out[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, sizeof out - 1, fmt, ap);
    va_end(ap);
    out[n++] = '\n';
    const char *p = out;
    while (n > 0) {
        ssize_t w = send(c->fd, p, (size_t)n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            fail("send: %s", strerror(errno));
            return -1;
        }
        p += w;
        n -= (int)w;
    }
    return 0;
}

/* Next line into c->line; -1 (and a failure) on error, timeout or EOF. */
static int read_line(struct client *c) {
    for (;;) {
        char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
        if (nl) {
            *nl = 0;
            c->line = c->buf + c->off;
            c->off = (size_t)(nl + 1 - c->buf);
            return 0;
        }
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
        if (c->len == c->cap) {
            c->cap *= 2;
            char *p = realloc(c->buf, c->cap);
            if (!p) {
                fail("out of memory");
                return -1;
            }
            c->buf = p;
        }
        ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            fail("reading a reply: %s", r < 0 ? strerror(errno) : "server closed the connection");
            return -1;
        }
        c->len += (size_t)r;
    }
}

/* ------------------------------------------------------------------------ */
/* The operation sequence, shared by the clients and the final check         */
/* ------------------------------------------------------------------------ */

/* Operation n of a client: its kind is n % 6, and r = n / 6 (the round)
 * picks the key and the delta, so that every key of each kind is used. */
static long long own_delta(int n) { return 1 + n / 6 % 3; }
static long long shared_delta(int n) { return 1 + n / 6 % 5; }

/* Operations each client completed. */
static int done_ops[MAX_CLIENTS];

static void *client_main(void *arg) {
    int i = (int)(intptr_t)arg;
    struct client c;
    if (connect_server(&c) < 0) {
        fail("client %d: connect: %s", i, strerror(errno));
        return NULL;
    }
    long long own[N_OWN] = {0};
    long long seen_shared[N_SHARED] = {0};
    long long last_set_n[N_SETS] = {-1, -1, -1};
    size_t alog_len = 0, mylog_len = 0;
    char tag[16];
    snprintf(tag, sizeof tag, "%d.", i);
    size_t taglen = strlen(tag);

    for (int n = 0; n < max_ops && !atomic_load(&failed); n++) {
        if (now_s() > deadline)
            break;
        long long v;
        size_t len;
        switch (n % 6) {
        case 0: {
            int k = n / 6 % N_OWN;
            if (send_line(&c, "INCR c%d.n%d %lld", i, k, own_delta(n)) || read_line(&c))
                goto out;
            own[k] += own_delta(n);
            if (sscanf(c.line, "VAL %lld", &v) != 1 || v != own[k]) {
                fail("client %d op %d: INCR c%d.n%d: got '%s', expected VAL %lld", i, n, i, k,
                     c.line, own[k]);
                goto out;
            }
            break;
        }
        case 1: {
            int k = n / 6 % N_SHARED;
            if (send_line(&c, "INCR s%d %lld", k, shared_delta(n)) || read_line(&c))
                goto out;
            /* Others add too, but never subtract: it must have risen by at
             * least our delta since we last saw it. */
            if (sscanf(c.line, "VAL %lld", &v) != 1 || v < seen_shared[k] + shared_delta(n)) {
                fail("client %d op %d: INCR s%d: got '%s', last saw %lld, added %lld", i, n, k,
                     c.line, seen_shared[k], shared_delta(n));
                goto out;
            }
            seen_shared[k] = v;
            break;
        }
        case 2:
            if (send_line(&c, "APPEND alog %s", tag) || read_line(&c))
                goto out;
            if (sscanf(c.line, "LEN %zu", &len) != 1 || len < alog_len + taglen) {
                fail("client %d op %d: APPEND alog: got '%s', last length %zu", i, n, c.line,
                     alog_len);
                goto out;
            }
            alog_len = len;
            break;
        case 3:
            if (send_line(&c, "SET c%d.s%d v%d_%d", i, n / 6 % N_SETS, i, n) || read_line(&c))
                goto out;
            if (strcmp(c.line, "OK") != 0) {
                fail("client %d op %d: SET: got '%s'", i, n, c.line);
                goto out;
            }
            last_set_n[n / 6 % N_SETS] = n;
            break;
        case 4: {
            int k = n / 6 % N_SETS;
            if (send_line(&c, "GET c%d.s%d", i, k) || read_line(&c))
                goto out;
            char want[64];
            if (last_set_n[k] < 0)
                snprintf(want, sizeof want, "NIL");
            else
                snprintf(want, sizeof want, "VAL v%d_%lld", i, last_set_n[k]);
            if (strcmp(c.line, want) != 0) {
                fail("client %d op %d: GET c%d.s%d: got '%s', expected '%s'", i, n, i, k, c.line,
                     want);
                goto out;
            }
            break;
        }
        case 5:
            if (send_line(&c, "APPEND c%d.log %d", i, n / 6 % 10) || read_line(&c))
                goto out;
            if (sscanf(c.line, "LEN %zu", &len) != 1 || len != mylog_len + 1) {
                fail("client %d op %d: APPEND c%d.log: got '%s', expected LEN %zu", i, n, i,
                     c.line, mylog_len + 1);
                goto out;
            }
            mylog_len = len;
            break;
        }
        if (n % 97 == 96) {
            if (send_line(&c, "STATS") || read_line(&c))
                goto out;
            if (strncmp(c.line, "STATS conns=", 12) != 0) {
                fail("client %d: STATS: got '%s'", i, c.line);
                goto out;
            }
        }
        done_ops[i] = n + 1;
    }
out:
    disconnect(&c);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The final state                                                           */
/* ------------------------------------------------------------------------ */

struct kv {
    char key[64];
    char *val;
    int seen;
};

static struct kv *expected;
static size_t nexpected;

static struct kv *expect(const char *key, const char *val) {
    struct kv *e = &expected[nexpected++];
    snprintf(e->key, sizeof e->key, "%s", key);
    e->val = strdup(val);
    e->seen = 0;
    return e;
}

static void build_expected(void) {
    expected = calloc((size_t)nclients * (N_OWN + N_SETS + 1) + N_SHARED + 1, sizeof *expected);
    long long shared[N_SHARED] = {0};
    int alog_total = 0;
    for (int i = 0; i < nclients; i++) {
        long long own[N_OWN] = {0};
        int touched_own[N_OWN] = {0};
        int last_set[N_SETS] = {-1, -1, -1};
        char *mylog = calloc((size_t)done_ops[i] + 1, 1);
        size_t mylen = 0;
        for (int n = 0; n < done_ops[i]; n++) {
            switch (n % 6) {
            case 0:
                own[n / 6 % N_OWN] += own_delta(n);
                touched_own[n / 6 % N_OWN] = 1;
                break;
            case 1:
                shared[n / 6 % N_SHARED] += shared_delta(n);
                break;
            case 2:
                alog_total++;
                break;
            case 3:
                last_set[n / 6 % N_SETS] = n;
                break;
            case 5:
                mylog[mylen++] = (char)('0' + n / 6 % 10);
                break;
            }
        }
        char key[64], val[64];
        for (int k = 0; k < N_OWN; k++) {
            if (!touched_own[k])
                continue;
            snprintf(key, sizeof key, "c%d.n%d", i, k);
            snprintf(val, sizeof val, "%lld", own[k]);
            expect(key, val);
        }
        for (int k = 0; k < N_SETS; k++) {
            if (last_set[k] < 0)
                continue;
            snprintf(key, sizeof key, "c%d.s%d", i, k);
            snprintf(val, sizeof val, "v%d_%d", i, last_set[k]);
            expect(key, val);
        }
        if (mylen) {
            snprintf(key, sizeof key, "c%d.log", i);
            expect(key, mylog);
        }
        free(mylog);
    }
    for (int k = 0; k < N_SHARED; k++) {
        if (!shared[k])
            continue;
        char key[16], val[32];
        snprintf(key, sizeof key, "s%d", k);
        snprintf(val, sizeof val, "%lld", shared[k]);
        expect(key, val);
    }
    if (alog_total)
        expect("alog", "")->val[0] = 0; /* checked as a multiset below */
}

/* alog must be exactly the tags "<i>." with client i's count of APPENDs. */
static int check_alog(const char *v) {
    int counts[MAX_CLIENTS] = {0};
    const char *p = v;
    while (*p) {
        char *end;
        long i = strtol(p, &end, 10);
        if (end == p || *end != '.' || i < 0 || i >= nclients) {
            fail("alog is corrupt at offset %zu: '%.40s'", (size_t)(p - v), p);
            return -1;
        }
        counts[i]++;
        p = end + 1;
    }
    int bad = 0;
    for (int i = 0; i < nclients; i++) {
        int want = 0;
        for (int n = 0; n < done_ops[i]; n++)
            want += n % 6 == 2;
        if (counts[i] != want) {
            fail("alog has %d tags of client %d, expected %d", counts[i], i, want);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* DUMP and CHECKSUM against the expected state. */
static void check_final(void) {
    struct client c;
    if (connect_server(&c) < 0) {
        fail("final check: connect: %s", strerror(errno));
        return;
    }
    size_t nkeys;
    if (send_line(&c, "DUMP") || read_line(&c))
        goto out;
    if (sscanf(c.line, "DUMP %zu", &nkeys) != 1) {
        fail("DUMP: got '%s'", c.line);
        goto out;
    }
    uint64_t x = 0;
    for (size_t j = 0; j < nkeys; j++) {
        if (read_line(&c))
            goto out;
        char *sp = strchr(c.line, ' ');
        if (!sp) {
            fail("DUMP line without a value: '%.60s'", c.line);
            continue;
        }
        *sp = 0;
        const char *key = c.line, *val = sp + 1;
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, key, strlen(key));
        h = fnv1a(h, "=", 1);
        x ^= fnv1a(h, val, strlen(val));
        struct kv *e = NULL;
        for (size_t k = 0; k < nexpected; k++)
            if (strcmp(expected[k].key, key) == 0)
                e = &expected[k];
        if (!e) {
            fail("DUMP has an unexpected key '%s' = '%.60s'", key, val);
            continue;
        }
        if (e->seen++) {
            fail("DUMP lists key '%s' twice", key);
            continue;
        }
        if (strcmp(key, "alog") == 0)
            check_alog(val);
        else if (strcmp(e->val, val) != 0)
            fail("key %s = '%.60s', expected '%.60s'", key, val, e->val);
    }
    if (read_line(&c))
        goto out;
    if (strcmp(c.line, "END") != 0)
        fail("DUMP not ended by END: '%.60s'", c.line);
    for (size_t k = 0; k < nexpected; k++)
        if (!expected[k].seen)
            fail("key %s is missing (expected '%.60s')", expected[k].key, expected[k].val);

    char want[64];
    snprintf(want, sizeof want, "CHECKSUM %zu %016" PRIx64, nkeys, x);
    if (send_line(&c, "CHECKSUM") || read_line(&c))
        goto out;
    if (strcmp(c.line, want) != 0)
        fail("CHECKSUM: got '%s', the DUMP gives '%s'", c.line, want);
out:
    disconnect(&c);
}

static void shutdown_server(void) {
    struct client c;
    if (connect_server(&c) < 0) {
        fail("shutdown: connect: %s", strerror(errno));
        return;
    }
    if (!send_line(&c, "SHUTDOWN") && !read_line(&c) && strcmp(c.line, "BYE") != 0)
        fail("SHUTDOWN: got '%s'", c.line);
    disconnect(&c);
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 6 || (argc == 6 && strcmp(argv[5], "--shutdown") != 0)) {
        fprintf(stderr, "usage: loadgen PORT CLIENTS OPS SECONDS [--shutdown]\n");
        return 2;
    }
    port = atoi(argv[1]);
    nclients = atoi(argv[2]);
    max_ops = atoi(argv[3]);
    double seconds = atof(argv[4]);
    if (port <= 0 || port > 65535 || nclients < 1 || nclients > MAX_CLIENTS || max_ops < 1 ||
        seconds <= 0) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    double start = now_s();
    deadline = start + seconds;

    /* An idle client: once it has been served, its server thread sits in
     * recv() holding its connection's pool token, and every STATS has to
     * take that token. STATS can only answer if the blocked recv() gave
     * it away. */
    struct client idle;
    if (connect_server(&idle) < 0) {
        fprintf(stderr, "loadgen: FAIL: connect: %s\n", strerror(errno));
        return 1;
    }
    if (send_line(&idle, "GET idle") || read_line(&idle) || strcmp(idle.line, "NIL") != 0) {
        fprintf(stderr, "loadgen: FAIL: the idle client's GET: '%s'\n", idle.line ? idle.line : "");
        return 1;
    }

    pthread_t th[MAX_CLIENTS];
    for (int i = 0; i < nclients; i++)
        if (pthread_create(&th[i], NULL, client_main, (void *)(intptr_t)i)) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            return 2;
        }
    for (int i = 0; i < nclients; i++)
        pthread_join(th[i], NULL);

    int total = 0, lo = max_ops, hi = 0;
    for (int i = 0; i < nclients; i++) {
        total += done_ops[i];
        lo = done_ops[i] < lo ? done_ops[i] : lo;
        hi = done_ops[i] > hi ? done_ops[i] : hi;
    }
    if (!atomic_load(&failed)) {
        build_expected();
        check_final();
    }
    /* The idle client is still served. */
    if (send_line(&idle, "GET idle") || read_line(&idle) || strcmp(idle.line, "NIL") != 0)
        fail("the idle client's last GET: '%s'", idle.line ? idle.line : "");
    disconnect(&idle);
    if (argc == 6)
        shutdown_server();
    if (atomic_load(&failed)) {
        fprintf(stderr, "loadgen: %d check(s) failed\n", atomic_load(&failed));
        return 1;
    }
    printf("loadgen: ok clients=%d ops=%d (per client %d..%d of %d) keys=%zu\n", nclients, total,
           lo, hi, max_ops, nexpected);
    return 0;
}
