// Rule: BPF cpu v4 instructions (6.6). Debian's clang 14 has no -mcpu=v4, so the two
// instructions are spelled as raw bytes (little-endian 64-bit words):
//   bf 21 08 00 00 00 00 00   r1 = (s8) r2      movsx: ALU64|MOV|X with off 8
//   3f 21 01 00 00 00 00 00   r1 s/= r2         sdiv:  ALU64|DIV|X with off 1
#include "check_common.h"

SEC("kprobe/do_nanosleep")
int v4(void *ctx)
{
    asm volatile("r2 = 7\n"
                 "r1 = 100\n"
                 ".quad 0x00000000000821bf\n"
                 ".quad 0x000000000001213f\n" ::: "r1", "r2");
    return 0;
}
