// Rule: global data, here a .bss variable and a .data one (lifted in 5.2).
#include "check_common.h"

u64 calls;
u64 last_pid = 1;

SEC("kprobe/do_nanosleep")
int global(void *ctx)
{
    calls++;
    last_pid = bpf_get_current_pid_tgid();
    return 0;
}
