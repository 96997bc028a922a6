// The process whose user stacks the stack test symbolizes: leaf() called from middle()
// from main(), frame pointers kept; it stays alive a while so its mappings can be read.
#include <unistd.h>
__attribute__((noinline)) long stack_test_leaf(long x) { __asm__ volatile(""); return x + 1; }
__attribute__((noinline)) long stack_test_middle(long x) { long r = stack_test_leaf(x); __asm__ volatile(""); return r * 2; }
int main(void) { long s = 0; for (int i = 0; i < 3; i++) s += stack_test_middle(i); sleep(3); return s == 12 ? 0 : 1; }
