// The binary the uprobe test attaches to.
#include <unistd.h>
__attribute__((noinline)) long loader_test_target(long x) { __asm__ volatile(""); return x * 10; }
int main(void) { long s = 0; for (long i = 1; i <= 5; i++) s += loader_test_target(i); return s == 150 ? 0 : 1; }
