/*
 * hooks/glibc_functions.c: a libc function that the running glibc lacks is
 * not hooked, never a reason to stop the program (SPEC section 7; the
 * library states glibc 2.34 as its oldest, which has no epoll_pwait2).
 * The process started (the library's constructors ran), and the library's
 * epoll_pwait2 -- found the way a program probing for the function finds
 * it -- gives libc's result where glibc has the function, and fails with
 * ENOSYS where it does not, with and without a token held.
 */
#include "check.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

typedef int (*pwait2_fn)(int, struct epoll_event *, int, const struct timespec *,
                         const sigset_t *);

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(T);

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    void *libc = dlopen("libc.so.6", RTLD_NOW);
    CHECK(libc != NULL);
    int present = dlsym(libc, "epoll_pwait2") != NULL;

    pwait2_fn pw2 = (pwait2_fn)dlsym(RTLD_DEFAULT, "epoll_pwait2");
    CHECK(pw2 != NULL);
    Dl_info info;
    CHECK(dladdr((void *)pw2, &info) && info.dli_fname && strstr(info.dli_fname, "liblwkt"));

    int ep = epoll_create1(0);
    int ev = eventfd(1, 0); /* readable */
    CHECK(ep >= 0 && ev >= 0);
    struct epoll_event want = {.events = EPOLLIN, .data.fd = ev};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, ev, &want), 0);

    for (int held = 0; held < 2; held++) {
        if (held)
            lwkt_gettoken(&T);
        struct timespec ts = {TEST_DEADLINE_S, 0};
        struct epoll_event got;
        memset(&got, 0, sizeof got);
        errno = 0;
        int r = pw2(ep, &got, 1, &ts, NULL);
        int err = errno;
        if (present) {
            CHECK_EQ(r, 1);
            CHECK_EQ(got.data.fd, ev);
        } else {
            CHECK_EQ(r, -1);
            CHECK_EQ(err, ENOSYS);
        }
        if (held) {
            CHECK_EQ(lwkt_cnttoken(&T), 1);
            lwkt_reltoken(&T);
        }
    }
    printf("glibc %s: epoll_pwait2 %s\n", gnu_get_libc_version(),
           present ? "present, hooked" : "absent, not hooked (ENOSYS)");
    close(ev);
    close(ep);
    return 0;
}
