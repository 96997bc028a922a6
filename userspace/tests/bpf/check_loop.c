// Rule: a loop, i.e. a back-edge (lifted in 5.3 with bounded loops).
#include "check_common.h"

SEC("kprobe/do_nanosleep")
int loop(void *ctx)
{
    volatile u64 sum = 0;
    u64 n = bpf_get_current_pid_tgid() & 15;
#pragma clang loop unroll(disable)
    for (u64 i = 0; i != n; i++)
        sum += i;
    return sum;
}
