/*
 * catchall/rawclone.c: a raw clone(CLONE_VM|CLONE_THREAD|..., stack) made
 * by a `syscall` instruction in the program's own code (as Go's runtime
 * and static code make it), by a thread holding tokens: the catch-all runs
 * it from its SIGSYS handler and starts the child on its landing pad
 * (shim/sys/allowed.rs), which must start the child exactly as the kernel would:
 * rsp equal to the stack argument, every register but rax (0), rcx and
 * r11 as the parent had them at the syscall instruction (rbp: whatever
 * the compiler keeps there). The child records
 * what it sees and ends with a raw exit. The parent gets the child's id
 * and keeps its tokens. Also without tokens (no trap: the kernel's own
 * behaviour, which validates the expectations).
 */
#include "catchall_util.h"

#include <sched.h>

static struct lwkt_token T = LWKT_TOKEN_INITIALIZER(rawclone_T);

static volatile uint64_t child_rsp, child_rbx, child_r12, child_r13, child_r14, child_r15,
    child_rbp, parent_rbp, child_rdx, child_r8, child_r9;
static volatile int32_t child_tid_word; /* CLONE_CHILD_CLEARTID: 0 once it exited */
static atomic_int child_done;
static char stack_mem[64 * 1024] __attribute__((aligned(64)));

#define CLONE_THREAD_FLAGS                                                                 \
    (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |    \
     CLONE_CHILD_CLEARTID | CLONE_CHILD_SETTID)

/* clone(flags, stack, NULL, &child_tid_word, 0) with known values in the
 * registers the kernel preserves; the child stores them and exits. */
static long raw_clone(void *stack) {
    long ret;
    register long r10 __asm__("r10") = (long)&child_tid_word;
    register long r8 __asm__("r8") = 0x8888;
    register long r9 __asm__("r9") = 0x9999;
    __asm__ volatile("mov %%rbp, parent_rbp(%%rip)\n\t"
                     "mov $0x1111, %%rbx\n\t"
                     "mov $0x1212, %%r12\n\t"
                     "mov $0x1313, %%r13\n\t"
                     "mov $0x1414, %%r14\n\t"
                     "mov $0x1515, %%r15\n\t"
                     "syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "mov %%rsp, child_rsp(%%rip)\n\t"
                     "mov %%rbx, child_rbx(%%rip)\n\t"
                     "mov %%r12, child_r12(%%rip)\n\t"
                     "mov %%r13, child_r13(%%rip)\n\t"
                     "mov %%r14, child_r14(%%rip)\n\t"
                     "mov %%r15, child_r15(%%rip)\n\t"
                     "mov %%rbp, child_rbp(%%rip)\n\t"
                     "mov %%rdx, child_rdx(%%rip)\n\t"
                     "mov %%r8, child_r8(%%rip)\n\t"
                     "mov %%r9, child_r9(%%rip)\n\t"
                     "movl $1, child_done(%%rip)\n\t"
                     "mov $60, %%eax\n\t" /* exit (this thread) */
                     "xor %%edi, %%edi\n\t"
                     "syscall\n\t"
                     "ud2\n\t"
                     "1:\n\t"
                     : "=a"(ret), "+r"(r10), "+r"(r8), "+r"(r9)
                     : "a"((long)SYS_clone), "D"((long)CLONE_THREAD_FLAGS), "S"(stack),
                       "d"(0x5555L)
                     : "rcx", "r11", "rbx", "r12", "r13", "r14", "r15", "memory");
    return ret;
}

static void one(int hold, size_t below_top) {
    char *stack = stack_mem + sizeof stack_mem - below_top;
    child_rsp = child_rbx = child_r12 = child_r13 = child_r14 = child_r15 = child_rbp = 0;
    child_rdx = child_r8 = child_r9 = 0;
    atomic_store(&child_done, 0);
    if (hold) {
        lwkt_gettoken(&T);
        lwkt_gettoken(&T);
    }
    long tid = raw_clone(stack);
    if (hold) {
        CHECK_EQ(lwkt_cnttoken(&T), 2);
        CHECK(LWKT_TOKEN_HELD_EXCL(&T));
    }
    CHECK(tid > 0);
    SPIN_UNTIL(child_done);
    /* The child is gone (CLEARTID) before its stack is reused. */
    SPIN_UNTIL_COND(__atomic_load_n(&child_tid_word, __ATOMIC_ACQUIRE) == 0);
    if (hold) {
        lwkt_reltoken(&T);
        lwkt_reltoken(&T);
    }
    const char *how = hold ? "holding T (trapped)" : "no token (kernel)";
    if (child_rsp != (uint64_t)stack) {
        fprintf(stderr, "FAIL: raw clone %s, stack %zu below the top: the child started with "
                        "rsp %#llx, not the stack argument %p\n",
                how, below_top, (unsigned long long)child_rsp, (void *)stack);
        _exit(1);
    }
    if (child_rbx != 0x1111 || child_r12 != 0x1212 || child_r13 != 0x1313 ||
        child_r14 != 0x1414 || child_r15 != 0x1515 || child_rbp != parent_rbp ||
        child_rdx != 0x5555 || child_r8 != 0x8888 || child_r9 != 0x9999) {
        fprintf(stderr, "FAIL: raw clone %s: the child's registers differ: rbx %#llx r12 %#llx "
                        "r13 %#llx r14 %#llx r15 %#llx rbp %#llx rdx %#llx r8 %#llx r9 %#llx\n",
                how, (unsigned long long)child_rbx, (unsigned long long)child_r12,
                (unsigned long long)child_r13, (unsigned long long)child_r14,
                (unsigned long long)child_r15, (unsigned long long)child_rbp,
                (unsigned long long)child_rdx, (unsigned long long)child_r8,
                (unsigned long long)child_r9);
        _exit(1);
    }
}

/* Stack arguments, as distances below the top of the stack area: also
 * ones not 16-byte aligned (musl's clone passes an aligned address minus 8
 * and pops the argument it stored there in the child). */
static const size_t offsets[] = {0, 8, 16, 24, 64, 4096};

int lwkt_test_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    ca_require(__FILE__);
    start_watchdog(3 * TEST_DEADLINE_S);
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
        for (int round = 0; round < 10; round++) {
            one(0, offsets[i]);
            one(1, offsets[i]);
        }
    printf("catchall/rawclone: ok\n");
    return 0;
}
