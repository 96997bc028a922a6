// The process the folded-stack tests profile: stack_test_leaf() reached through
// stack_test_a() argv[1] times, then through stack_test_b() argv[2] times. The leaf makes
// a getppid system call itself (no libc wrapper, whose frame would hide it from the
// frame-pointer walk), so a syscall tracepoint sees its user stack under the kernel's.
// Built with frame pointers and no sibling calls; it lingers so its mappings can be read.
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) long stack_test_leaf(long x)
{
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "0"(110L) : "rcx", "r11", "memory");
    return x + (r > 0);
}

__attribute__((noinline)) long stack_test_a(long x)
{
    long r = stack_test_leaf(x);
    __asm__ volatile("");
    return r;
}

__attribute__((noinline)) long stack_test_b(long x)
{
    long r = stack_test_leaf(x);
    __asm__ volatile("");
    return r;
}

int main(int argc, char **argv)
{
    int a = argc > 1 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 0;
    long s = 0;
    for (int i = 0; i < a; i++)
        s += stack_test_a(i);
    for (int i = 0; i < b; i++)
        s += stack_test_b(i);
    sleep(2);
    return s >= 0 ? 0 : 1;
}
