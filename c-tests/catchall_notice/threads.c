/*
 * c-tests/catchall_notice/threads.c: three threads take and release a
 * token (each one's first use of tokens), then "threads: done".
 *
 * With --no-dispatch as the first argument it first runs itself again
 * under a seccomp filter that answers prctl(PR_SET_SYSCALL_USER_DISPATCH)
 * with EINVAL, as a kernel without the feature does: the library then
 * finds the catch-all unavailable when it loads. With --no-writable-code,
 * under one that refuses mprotect asking for writable and executable
 * memory (W^X): the library cannot rewrite libc's system-call sites and
 * keeps the catch-all to Syscall User Dispatch.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <lwkt.h>

#define PR_SET_SYSCALL_USER_DISPATCH_ 59

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(notice_T);

static void *use_token(void *arg) {
    (void)arg;
    lwkt_gettoken(&T);
    lwkt_reltoken(&T);
    return NULL;
}

/* Run this program again (without its first argument) under `filter`. */
static int exec_filtered(char **argv, struct sock_filter *filter, unsigned short len) {
    struct sock_fprog prog = {len, filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        fprintf(stderr, "threads: cannot install the seccomp filter: %s\n", strerror(errno));
        return 2;
    }
    argv[1] = argv[0];
    execv("/proc/self/exe", argv + 1);
    fprintf(stderr, "threads: exec: %s\n", strerror(errno));
    return 2;
}

/* A system that refuses writable code (W^X): mprotect asking for both
 * PROT_WRITE and PROT_EXEC fails with EACCES, as under SELinux's execmod
 * or PaX's MPROTECT. */
static int no_writable_code_then_exec(char **argv) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, PROT_WRITE | PROT_EXEC),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PROT_WRITE | PROT_EXEC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return exec_filtered(argv, filter, sizeof filter / sizeof filter[0]);
}

static int no_dispatch_then_exec(char **argv) {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prctl, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_SET_SYSCALL_USER_DISPATCH_, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    return exec_filtered(argv, filter, sizeof filter / sizeof filter[0]);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--no-dispatch") == 0)
        return no_dispatch_then_exec(argv);
    if (argc > 1 && strcmp(argv[1], "--no-writable-code") == 0)
        return no_writable_code_then_exec(argv);
    for (int i = 0; i < 3; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, use_token, NULL) != 0 || pthread_join(t, NULL) != 0) {
            fprintf(stderr, "threads: pthread failed\n");
            return 2;
        }
    }
    printf("threads: done\n");
    return 0;
}
