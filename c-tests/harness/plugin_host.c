/*
 * plugin_host.c: a program that does NOT link lwkt and runs a C test built
 * as a plugin (a shared object), the way a module of an existing server
 * would use tokens: the library comes in with LD_PRELOAD=liblwkt.so, the
 * plugin is dlopen()ed, and its lwkt_* references resolve to the preloaded
 * library.
 *
 * Usage: LD_PRELOAD=/abs/liblwkt.so plugin_host PLUGIN.so [ARGS...]
 *    or: LD_PRELOAD=... LWKT_TEST_PLUGIN=PLUGIN.so plugin_host [ARGS...]
 * The test's lwkt_test_main() gets argv[0] = the plugin's path, then ARGS.
 *
 * Exit status 2 means the set-up was wrong (no plugin, library not
 * preloaded): a runner bug, not a test failure.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*test_main_fn)(int, char **);

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *plugin = getenv("LWKT_TEST_PLUGIN");
    char **targv = argv + 1;
    int targc = argc - 1;
    if (plugin == NULL) {
        if (argc < 2) {
            fprintf(stderr, "usage: %s PLUGIN.so [ARGS...]\n", argv[0]);
            return 2;
        }
        plugin = argv[1];
    } else {
        /* The plugin came from the environment: argv[0] becomes its path. */
        targv = argv;
        targv[0] = (char *)plugin;
        targc = argc;
    }

    /* The point of this mode: lwkt must come from the preload, not from
     * this program's own dependencies (it has none on lwkt). */
    if (dlsym(RTLD_DEFAULT, "lwkt_gettoken") == NULL) {
        fprintf(stderr, "plugin_host: liblwkt.so is not preloaded (set LD_PRELOAD)\n");
        return 2;
    }

    void *h = dlopen(plugin, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        fprintf(stderr, "plugin_host: dlopen: %s\n", dlerror());
        return 2;
    }
    /* POSIX guarantees this conversion of dlsym's result works. */
    test_main_fn fn = (test_main_fn)dlsym(h, "lwkt_test_main");
    if (fn == NULL) {
        fprintf(stderr, "plugin_host: %s has no lwkt_test_main: %s\n", plugin, dlerror());
        return 2;
    }
    /* No dlclose: threads the test left behind may still run its code. */
    return fn(targc, targv);
}
