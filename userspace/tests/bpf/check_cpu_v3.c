// Rule: BPF cpu v3 instructions (5.1), built with -mcpu=v3: 32-bit compares become
// JMP32 jumps (`if w1 < 100 goto ...`).
#include "check_common.h"

SEC("kprobe/do_nanosleep")
int v3(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid();
    if (pid < 100)
        return 1;
    if (pid > 5000)
        return 2;
    return 0;
}
