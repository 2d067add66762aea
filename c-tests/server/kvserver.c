/*
 * kvserver: a threaded key-value server whose shared tables are protected
 * by lwkt tokens held ACROSS blocking socket I/O.
 *
 *   kvserver [LIFETIME_S]
 *
 * Listens on 127.0.0.1, port chosen by the kernel, and prints "PORT <n>" on
 * stdout. One thread per connection. It stops by itself on a SHUTDOWN
 * request, or after LIFETIME_S seconds (default 50) with exit status 3.
 *
 * Protocol: one request per line, one-word keys and values.
 *   SET k v       -> OK
 *   GET k         -> VAL v | NIL
 *   INCR k [d]    -> VAL n         (a missing key counts as 0)
 *   APPEND k v    -> LEN n
 *   STATS         -> STATS conns=.. requests=.. set=.. ... retries=..
 *   DUMP          -> DUMP n, then n lines "k v", then END
 *   CHECKSUM      -> CHECKSUM nkeys xorhash   (xor of fnv1a64("k=v"))
 *   SHUTDOWN      -> BYE, and the server stops
 *
 * Tokens, and why each must be re-validated:
 *
 *  - Each connection thread takes its connection's POOL token
 *    (lwkt_getpooltoken(conn)) once and holds it until the client goes away:
 *    across every recv() and send(). The hooks release it whenever the
 *    socket blocks, so STATS on another connection can read the record's
 *    counters under the same pool token.
 *  - The key table is a fixed array of buckets; each bucket is guarded by
 *    its pool token (lwkt_getpooltoken(bucket)). SET, INCR and APPEND are
 *    read-modify-writes that write the new value to a journal (a pipe to a
 *    journal thread, under a pthread mutex: both may block) and count the
 *    attempt in the stats table (the named token kv_stats: contention
 *    releases the bucket token too) BETWEEN reading the old value and
 *    storing the new one. After those calls the bucket token may have been
 *    taken by another thread: lwkt_token_lost_since() says when, and then
 *    the entry's version tells whether it was stored meanwhile; if it was,
 *    the operation starts over from the read (and journals again).
 *    -DKV_NO_REVALIDATE leaves that check out, to prove that the tests see
 *    the difference.
 *  - The list of connections is guarded by the named token kv_conns, which
 *    the accept loop holds across accept(). STATS walks that list taking
 *    each connection's pool token, which may wait and so release kv_conns:
 *    the walk re-validates and restarts, because the connection it points
 *    at may have been unlinked and freed meanwhile.
 *
 * The journal thread replays the records (key, version, value) into a
 * shadow table. At shutdown every version of every key must have had its
 * record, none beyond the version stored last, and each key's last record
 * must be its value: a store that was not re-validated after its journal
 * write, or that was retried without a record of its own, breaks that.
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <lwkt.h>

#define NBUCKETS 64
#define LINE_CAP 1024

static void die(const char *what) {
    fprintf(stderr, "kvserver: %s: %s\n", what, strerror(errno));
    fflush(stderr);
    _exit(2);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "kvserver: out of memory\n");
        _exit(2);
    }
    return p;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t entry_hash(const char *k, const char *v, size_t vlen) {
    uint64_t h = fnv1a(0xcbf29ce484222325ULL, k, strlen(k));
    h = fnv1a(h, "=", 1);
    return fnv1a(h, v, vlen);
}

/* ------------------------------------------------------------------------ */
/* The table: buckets guarded by their pool tokens                           */
/* ------------------------------------------------------------------------ */

struct entry {
    struct entry *next;
    char *key;
    char *val; /* NUL-terminated; replaced whole on every store */
    size_t vlen;
    uint64_t version; /* stores so far */
};

/* One cache line per bucket, so that buckets hash to different pool tokens
 * (a collision would only mean recursion on a held token: still correct). */
struct bucket {
    struct entry *head;
    char pad[64 - sizeof(struct entry *)];
};

static struct bucket table[NBUCKETS];

static struct bucket *bucket_of(const char *key) {
    return &table[fnv1a(0xcbf29ce484222325ULL, key, strlen(key)) % NBUCKETS];
}

/* Caller holds the bucket's pool token; no call in here can block. */
static struct entry *find(struct bucket *b, const char *key) {
    for (struct entry *e = b->head; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* Caller holds tok, the bucket's pool token. Allocating may block (a
 * futex inside malloc: the catch-all releases tokens there too), so after
 * it the search is valid only if tok was not lost meanwhile. */
static struct entry *find_or_insert(struct bucket *b, lwkt_token_t tok, const char *key) {
    for (;;) {
        struct entry *e = find(b, key);
        if (e)
            return e;
        lwkt_mark_t mark = lwkt_mark();
        e = xmalloc(sizeof *e);
        e->key = strdup(key);
        e->val = strdup("");
        if (!e->key || !e->val)
            die("strdup");
        e->vlen = 0;
        e->version = 0;
        if (!lwkt_token_lost_since(tok, mark)) {
            e->next = b->head;
            b->head = e; /* entries are never removed: pointers stay valid */
            return e;
        }
        /* Somebody may have inserted the key meanwhile: search again. */
        free(e->key);
        free(e->val);
        free(e);
    }
}

/* ------------------------------------------------------------------------ */
/* Stats: a global table under a named token                                 */
/* ------------------------------------------------------------------------ */

enum { C_SET, C_GET, C_INCR, C_APPEND, C_STATS, C_DUMP, C_CHECKSUM, NCMD };
static const char *const cmd_names[NCMD] = {"set",   "get",  "incr",    "append",
                                            "stats", "dump", "checksum"};

static struct lwkt_token stats_tok = LWKT_TOKEN_INITIALIZER(kv_stats);
static struct {
    uint64_t attempts[NCMD]; /* tries of each command (a retried one counts again) */
    uint64_t retries[NCMD];  /* tries abandoned because a token was lost */
    uint64_t conns_total;
    uint64_t revalidations; /* stores that found their bucket token lost */
    uint64_t walk_restarts; /* STATS walks restarted after losing kv_conns */
} stats;

/* May wait for kv_stats, and so release every token the caller holds. */
static void stats_add(uint64_t *counter) {
    lwkt_gettoken(&stats_tok);
    (*counter)++;
    lwkt_reltoken(&stats_tok);
}

/* ------------------------------------------------------------------------ */
/* The journal: a pipe to a thread that replays it into a shadow table       */
/* ------------------------------------------------------------------------ */

static int journal_fd[2];
static pthread_mutex_t journal_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t journal_records; /* under journal_mu */

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("journal write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Record "KEY := VALUE as version VERSION". Blocks on the mutex, and in
 * write() when the pipe is full: the caller's tokens are released
 * meanwhile. */
static void journal(const char *key, uint64_t version, const char *val, size_t vlen) {
    size_t klen = strlen(key);
    char head[80];
    int hn = snprintf(head, sizeof head, "%zu %zu %" PRIu64 "\n", klen, vlen, version);
    size_t n = (size_t)hn + klen + vlen;
    char *rec = xmalloc(n);
    memcpy(rec, head, (size_t)hn);
    memcpy(rec + hn, key, klen);
    memcpy(rec + hn + klen, val, vlen);
    pthread_mutex_lock(&journal_mu);
    write_all(journal_fd[1], rec, n);
    journal_records++;
    pthread_mutex_unlock(&journal_mu);
    free(rec);
}

/* The shadow table belongs to the journal thread alone until it is joined:
 * per key, the last record's value and version, and which versions had a
 * record at all. */
struct shadow_entry {
    struct shadow_entry *next;
    char *key;
    char *val;
    size_t vlen;
    uint64_t last_version;
    uint64_t max_version;
    unsigned char *seen; /* seen[v]: a record for version v */
    size_t seen_cap;
};
static struct shadow_entry *shadow[NBUCKETS];
static uint64_t shadow_records;

static struct shadow_entry *shadow_find(const char *key) {
    struct shadow_entry *e = shadow[fnv1a(0xcbf29ce484222325ULL, key, strlen(key)) % NBUCKETS];
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    return e;
}

static void shadow_store(char *key, uint64_t version, char *val, size_t vlen) {
    struct shadow_entry *e = shadow_find(key);
    if (e) {
        free(key);
        free(e->val);
    } else {
        struct shadow_entry **head =
            &shadow[fnv1a(0xcbf29ce484222325ULL, key, strlen(key)) % NBUCKETS];
        e = xmalloc(sizeof *e);
        memset(e, 0, sizeof *e);
        e->key = key;
        e->next = *head;
        *head = e;
    }
    e->val = val;
    e->vlen = vlen;
    e->last_version = version;
    if (version > e->max_version)
        e->max_version = version;
    if (version >= e->seen_cap) {
        size_t cap = e->seen_cap ? e->seen_cap : 64;
        while (version >= cap)
            cap *= 2;
        unsigned char *p = realloc(e->seen, cap);
        if (!p)
            die("realloc");
        memset(p + e->seen_cap, 0, cap - e->seen_cap);
        e->seen = p;
        e->seen_cap = cap;
    }
    e->seen[version] = 1;
}

/* Read exactly n bytes from the journal pipe; 0 at a clean EOF. */
static int journal_read(char *buf, size_t n, int eof_ok) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(journal_fd[0], buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            die("journal read");
        }
        if (r == 0) {
            if (got == 0 && eof_ok)
                return 0;
            fprintf(stderr, "kvserver: journal: truncated record\n");
            _exit(2);
        }
        got += (size_t)r;
    }
    return 1;
}

static void *journal_thread(void *arg) {
    (void)arg;
    for (;;) {
        char head[80];
        size_t hn = 0;
        for (;;) { /* the header line, byte by byte (records are small) */
            if (!journal_read(head + hn, 1, hn == 0))
                return NULL;
            if (head[hn] == '\n')
                break;
            if (++hn == sizeof head - 1) {
                fprintf(stderr, "kvserver: journal: corrupt header\n");
                _exit(2);
            }
        }
        head[hn] = 0;
        size_t klen, vlen;
        uint64_t version;
        if (sscanf(head, "%zu %zu %" SCNu64, &klen, &vlen, &version) != 3) {
            fprintf(stderr, "kvserver: journal: corrupt header '%s'\n", head);
            _exit(2);
        }
        char *key = xmalloc(klen + 1), *val = xmalloc(vlen + 1);
        journal_read(key, klen, 0);
        journal_read(val, vlen, 0);
        key[klen] = 0;
        val[vlen] = 0;
        shadow_store(key, version, val, vlen);
        shadow_records++;
    }
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

struct conn {
    struct conn *next; /* in conns, under kv_conns */
    int fd;
    int id;
    uint64_t requests; /* under the connection's pool token */
    size_t roff, rlen;
    char rbuf[LINE_CAP];
};

static struct lwkt_token conns_tok = LWKT_TOKEN_INITIALIZER(kv_conns);
static struct conn *conns;
static int nconns;
static atomic_int shutting_down;
static int listen_fd;

/* One request line into out (NUL-terminated, without the newline).
 * Returns its length, or -1 at end of stream. recv() may block: the
 * caller's tokens are released meanwhile. */
static int read_line(struct conn *c, char *out) {
    for (;;) {
        char *nl = memchr(c->rbuf + c->roff, '\n', c->rlen - c->roff);
        if (nl) {
            size_t n = (size_t)(nl - (c->rbuf + c->roff));
            memcpy(out, c->rbuf + c->roff, n);
            out[n] = 0;
            if (n > 0 && out[n - 1] == '\r')
                out[--n] = 0;
            c->roff = (size_t)(nl + 1 - c->rbuf);
            return (int)n;
        }
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
        if (c->rlen == sizeof c->rbuf)
            return -1; /* a line too long: drop the client */
        ssize_t r = recv(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->rlen += (size_t)r;
    }
}

static int send_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A growable reply buffer. */
struct buf {
    char *p;
    size_t len, cap;
};

/* Room for n more bytes (and a NUL): may allocate, and so may block. */
static void buf_reserve(struct buf *b, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            die("realloc");
        b->p = p;
        b->cap = cap;
    }
}

/* Append; allocates (and may block) only when there is no room. */
static void buf_add(struct buf *b, const char *s, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        fprintf(stderr, "kvserver: reply line too long\n");
        _exit(2);
    }
    buf_add(b, tmp, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* The operations                                                            */
/* ------------------------------------------------------------------------ */

/* SET, INCR, APPEND: read the old value, compute the new one, journal it
 * (may block), count the attempt (may wait for kv_stats), and store it only
 * if it is still based on the value stored now. Every call that may block
 * (malloc and free included: a futex inside them releases tokens too) is
 * followed by a re-validation before anything read before it is used. */
static void update(int cmd, const char *key, const char *arg, struct buf *reply) {
    struct bucket *b = bucket_of(key);
    lwkt_token_t tok = lwkt_getpooltoken(b);
    char line[64];
    char *old_val = NULL;
    for (;;) {
        struct entry *e = find_or_insert(b, tok, key);
        lwkt_mark_t mark = lwkt_mark();
        uint64_t version = e->version;
        char *nv;
        size_t nlen;
        if (cmd == C_SET) {
            nv = strdup(arg); /* reads nothing of the table */
            if (!nv)
                die("strdup");
            nlen = strlen(nv);
        } else if (cmd == C_INCR) {
            char *end;
            errno = 0;
            long long d = arg ? strtoll(arg, &end, 10) : 1;
            if (arg && (errno || *end)) {
                snprintf(line, sizeof line, "ERR bad delta\n");
                break;
            }
            long long old = 0;
            if (e->vlen) {
                errno = 0;
                old = strtoll(e->val, &end, 10);
                if (errno || *end) {
                    snprintf(line, sizeof line, "ERR not a number\n");
                    break;
                }
            }
            char tmp[32];
            int n = snprintf(tmp, sizeof tmp, "%lld", old + d);
            nv = strdup(tmp); /* old is in hand: may block now */
            if (!nv)
                die("strdup");
            nlen = (size_t)n;
        } else { /* C_APPEND */
            size_t alen = strlen(arg);
            nlen = e->vlen + alen;
            nv = xmalloc(nlen + 1); /* may block: e->val may be gone after it */
            if (lwkt_token_lost_since(tok, mark) && e->version != version) {
                free(nv);
                stats_add(&stats.retries[cmd]);
                continue;
            }
            memcpy(nv, e->val, e->vlen);
            memcpy(nv + e->vlen, arg, alen + 1);
        }

        /* The window: both calls may give the bucket token away. */
        journal(key, version + 1, nv, nlen);
        stats_add(&stats.attempts[cmd]);

#ifndef KV_NO_REVALIDATE
        if (lwkt_token_lost_since(tok, mark)) {
            /* Somebody held the bucket while we were blocked: re-validate.
             * (Not lost: nothing can have changed, no need to look.) */
            stats_add(&stats.revalidations);
            if (e->version != version) {
                /* Stored meanwhile: the value we started from is stale, and
                 * that store's journal record may follow ours. Start over
                 * from the fresh value; it gets a record of its own. */
                free(nv);
                stats_add(&stats.retries[cmd]);
                continue;
            }
        }
#endif
        /* Store, and the reply, with no call that could block in between. */
        old_val = e->val;
        e->val = nv;
        e->vlen = nlen;
        e->version++;
        if (cmd == C_SET)
            snprintf(line, sizeof line, "OK\n");
        else if (cmd == C_INCR)
            snprintf(line, sizeof line, "VAL %s\n", nv);
        else
            snprintf(line, sizeof line, "LEN %zu\n", nlen);
        break;
    }
    lwkt_relpooltoken(b);
    free(old_val); /* unreachable by now: free it without the token */
    buf_add(reply, line, strlen(line));
}

static void get(const char *key, struct buf *reply) {
    struct bucket *b = bucket_of(key);
    lwkt_token_t tok = lwkt_getpooltoken(b);
    for (;;) {
        struct entry *e = find(b, key);
        if (!e) {
            buf_add(reply, "NIL\n", 4);
            break;
        }
        lwkt_mark_t mark = lwkt_mark();
        uint64_t version = e->version;
        buf_reserve(reply, 4 + e->vlen + 1); /* may block */
        if (lwkt_token_lost_since(tok, mark) && e->version != version)
            continue; /* a new value, maybe longer, and the old one freed */
        /* Room is reserved: no allocation, nothing blocks from here. */
        buf_add(reply, "VAL ", 4);
        buf_add(reply, e->val, e->vlen);
        buf_add(reply, "\n", 1);
        break;
    }
    lwkt_relpooltoken(b);
    stats_add(&stats.attempts[C_GET]);
}

/* DUMP and CHECKSUM: one bucket at a time, each under its pool token: room
 * for the bucket is reserved first (may block), then, if nobody took the
 * token meanwhile, it is copied with no call that could block. */
static void dump(struct buf *reply, int checksum_only) {
    struct buf body = {0};
    uint64_t nkeys = 0, x = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        lwkt_token_t tok = lwkt_getpooltoken(&table[i]);
        for (;;) {
            lwkt_mark_t mark = lwkt_mark();
            size_t need = 0;
            for (struct entry *e = table[i].head; e; e = e->next)
                need += strlen(e->key) + 1 + e->vlen + 1;
            if (!checksum_only)
                buf_reserve(&body, need);
            if (lwkt_token_lost_since(tok, mark))
                continue; /* the bucket may have changed: measure again */
            for (struct entry *e = table[i].head; e; e = e->next) {
                nkeys++;
                x ^= entry_hash(e->key, e->val, e->vlen);
                if (!checksum_only) {
                    buf_add(&body, e->key, strlen(e->key));
                    buf_add(&body, " ", 1);
                    buf_add(&body, e->val, e->vlen);
                    buf_add(&body, "\n", 1);
                }
            }
            break;
        }
        lwkt_relpooltoken(&table[i]);
    }
    if (checksum_only) {
        buf_printf(reply, "CHECKSUM %" PRIu64 " %016" PRIx64 "\n", nkeys, x);
    } else {
        buf_printf(reply, "DUMP %" PRIu64 "\n", nkeys);
        if (body.len)
            buf_add(reply, body.p, body.len);
        buf_printf(reply, "END\n");
    }
    free(body.p);
    stats_add(&stats.attempts[checksum_only ? C_CHECKSUM : C_DUMP]);
}

/* STATS: the global table, plus the request counters of every connection,
 * each read under that connection's pool token. */
static void stats_cmd(struct buf *reply) {
    uint64_t requests, nc;
    lwkt_gettoken(&conns_tok);
restart:
    requests = 0;
    nc = 0;
    {
        lwkt_mark_t mark = lwkt_mark();
        for (struct conn *o = conns; o; o = o->next) {
            /* May wait for the owner to block, releasing kv_conns. */
            lwkt_getpooltoken(o);
            if (lwkt_token_lost_since(&conns_tok, mark)) {
                /* The list may have changed, o may be freed: start over. */
                lwkt_relpooltoken(o);
                stats_add(&stats.walk_restarts);
                goto restart;
            }
            requests += o->requests;
            nc++;
            lwkt_relpooltoken(o);
        }
    }
    lwkt_reltoken(&conns_tok);

    /* A consistent copy under kv_stats, formatted after (that allocates). */
    lwkt_gettoken(&stats_tok);
    stats.attempts[C_STATS]++;
    uint64_t attempts[NCMD], retries = 0;
    memcpy(attempts, stats.attempts, sizeof attempts);
    for (int i = 0; i < NCMD; i++)
        retries += stats.retries[i];
    lwkt_reltoken(&stats_tok);

    buf_printf(reply, "STATS conns=%" PRIu64 " requests=%" PRIu64, nc, requests);
    for (int i = 0; i < NCMD; i++)
        buf_printf(reply, " %s=%" PRIu64, cmd_names[i], attempts[i]);
    buf_printf(reply, " retries=%" PRIu64 "\n", retries);
}

static void begin_shutdown(void) {
    atomic_store(&shutting_down, 1);
    shutdown(listen_fd, SHUT_RDWR); /* wakes accept() */
    lwkt_gettoken(&conns_tok);
    for (struct conn *o = conns; o; o = o->next)
        shutdown(o->fd, SHUT_RD); /* their recv() returns 0 */
    lwkt_reltoken(&conns_tok);
}

static void *serve(void *arg) {
    struct conn *c = arg;
    char line[LINE_CAP];
    struct buf reply = {0};
    int bye = 0;

    /* Held for the connection's whole life; released whenever it blocks. */
    lwkt_getpooltoken(c);
    while (!bye) {
        if (read_line(c, line) < 0)
            break;
        c->requests++;
        reply.len = 0;
        char *save = NULL;
        char *cmd = strtok_r(line, " ", &save);
        char *a1 = cmd ? strtok_r(NULL, " ", &save) : NULL;
        char *a2 = a1 ? strtok_r(NULL, " ", &save) : NULL;
        char *extra = a2 ? strtok_r(NULL, " ", &save) : NULL;
        if (!cmd || extra) {
            buf_printf(&reply, "ERR syntax\n");
        } else if (!strcmp(cmd, "SET") && a1 && a2) {
            update(C_SET, a1, a2, &reply);
        } else if (!strcmp(cmd, "GET") && a1 && !a2) {
            get(a1, &reply);
        } else if (!strcmp(cmd, "INCR") && a1) {
            update(C_INCR, a1, a2, &reply);
        } else if (!strcmp(cmd, "APPEND") && a1 && a2) {
            update(C_APPEND, a1, a2, &reply);
        } else if (!strcmp(cmd, "STATS") && !a1) {
            stats_cmd(&reply);
        } else if (!strcmp(cmd, "DUMP") && !a1) {
            dump(&reply, 0);
        } else if (!strcmp(cmd, "CHECKSUM") && !a1) {
            dump(&reply, 1);
        } else if (!strcmp(cmd, "SHUTDOWN") && !a1) {
            buf_printf(&reply, "BYE\n");
            bye = 1;
        } else {
            buf_printf(&reply, "ERR unknown request\n");
        }
        ASSERT_LWKT_TOKEN_HELD_EXCL(lwkt_token_pool_lookup(c));
        if (send_all(c->fd, reply.p, reply.len) < 0)
            break;
    }
    lwkt_relpooltoken(c);
    ASSERT_NO_TOKENS_HELD();
    free(reply.p);
    if (bye)
        begin_shutdown();

    lwkt_gettoken(&conns_tok);
    for (struct conn **pp = &conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    nconns--;
    lwkt_reltoken(&conns_tok);
    close(c->fd);
    free(c);
    return NULL;
}

/* ------------------------------------------------------------------------ */

static long lifetime_s = 50;

static void *watchdog(void *arg) {
    (void)arg;
    struct timespec ts = {lifetime_s, 0};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    fprintf(stderr, "kvserver: lifetime of %ld s exceeded, exiting\n", lifetime_s);
    fflush(stderr);
    _exit(3);
}

/* Built as a shared object that does not link lwkt (-DKV_PLUGIN), for a
 * host (kvhost.c) run with liblwkt.so preloaded, the entry point is
 * kvserver_main. */
#ifdef KV_PLUGIN
#define main kvserver_main
int kvserver_main(int argc, char **argv);
#endif

int main(int argc, char **argv) {
    if (argc > 2 || (argc == 2 && (lifetime_s = strtol(argv[1], NULL, 10)) <= 0)) {
        fprintf(stderr, "usage: kvserver [LIFETIME_S]\n");
        return 2;
    }
    pthread_t wd, jt;
    if (pthread_create(&wd, NULL, watchdog, NULL))
        die("pthread_create");
    if (pipe(journal_fd) < 0)
        die("pipe");
    if (pthread_create(&jt, NULL, journal_thread, NULL))
        die("pthread_create");

    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0)
        die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* loopback only */
    socklen_t sl = sizeof sa;
    if (bind(listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die("bind 127.0.0.1");
    if (listen(listen_fd, 128) < 0)
        die("listen");
    if (getsockname(listen_fd, (struct sockaddr *)&sa, &sl) < 0)
        die("getsockname");
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    pthread_t *threads = NULL;
    size_t nthreads = 0, cap = 0;
    int next_id = 0;

    /* kv_conns is held across accept(): released while it waits. */
    lwkt_gettoken(&conns_tok);
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (atomic_load(&shutting_down)) {
            if (fd >= 0)
                close(fd);
            break;
        }
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            die("accept");
        }
        struct timeval tv = {30, 0}; /* a client that hangs is dropped */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        struct conn *c = xmalloc(sizeof *c);
        memset(c, 0, offsetof(struct conn, rbuf));
        c->fd = fd;
        c->id = next_id++;
        c->next = conns;
        conns = c;
        nconns++;
        stats_add(&stats.conns_total); /* may release kv_conns: harmless here */
        if (nthreads == cap) {
            cap = cap ? cap * 2 : 16;
            threads = realloc(threads, cap * sizeof *threads);
            if (!threads)
                die("realloc");
        }
        if (pthread_create(&threads[nthreads], NULL, serve, c))
            die("pthread_create");
        nthreads++;
    }
    lwkt_reltoken(&conns_tok);
    ASSERT_NO_TOKENS_HELD();

    for (size_t i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    close(listen_fd);

    /* Every writer is gone: close the journal, let its thread finish. */
    close(journal_fd[1]);
    pthread_join(jt, NULL);

    /* The journal must account for the table: every version of every key
     * that was stored had a record written before the store, none beyond
     * the last version stored, and the key's last record is the value
     * stored last. */
    uint64_t nkeys = 0, nshadow = 0, bad = 0;
    for (int i = 0; i < NBUCKETS; i++)
        for (struct shadow_entry *s = shadow[i]; s; s = s->next)
            nshadow++;
    for (int i = 0; i < NBUCKETS; i++) {
        for (struct entry *e = table[i].head; e; e = e->next) {
            nkeys++;
            struct shadow_entry *s = shadow_find(e->key);
            const char *why = NULL;
            uint64_t v = 0;
            if (!s && e->version > 0)
                why = "no record at all";
            else if (s && s->max_version != e->version)
                why = "records up to another version";
            else if (s && (s->last_version != e->version || s->vlen != e->vlen ||
                           memcmp(s->val, e->val, e->vlen) != 0))
                why = "the last record is not the value stored";
            for (v = 1; s && !why && v <= e->version; v++)
                if (!s->seen[v])
                    why = "a version stored without its record";
            if (why && bad++ < 5)
                fprintf(stderr,
                        "kvserver: JOURNAL MISMATCH for %s: %s (version %" PRIu64
                        ", '%.40s'; journal: last version %" PRIu64 " of %" PRIu64
                        ", '%.40s'; first missing %" PRIu64 ")\n",
                        e->key, why, e->version, e->val, s ? s->last_version : 0,
                        s ? s->max_version : 0, s ? s->val : "", v - 1);
        }
    }
    if (nkeys != nshadow) {
        fprintf(stderr, "kvserver: JOURNAL MISMATCH: %" PRIu64 " keys, journal has %" PRIu64 "\n",
                nkeys, nshadow);
        bad++;
    }
    uint64_t retries = 0;
    for (int i = 0; i < NCMD; i++)
        retries += stats.retries[i];
    printf("kvserver: connections=%" PRIu64 " keys=%" PRIu64 " journal_records=%" PRIu64
           " replayed=%" PRIu64 " revalidations=%" PRIu64 " retries=%" PRIu64
           " walk_restarts=%" PRIu64 " journal=%s\n",
           stats.conns_total, nkeys, journal_records, shadow_records, stats.revalidations, retries,
           stats.walk_restarts,
           bad ? "MISMATCH" : "consistent");
    fflush(stdout);
    return bad ? 1 : 0;
}
