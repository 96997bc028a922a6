// Rule: a BPF-to-BPF call (lifted in 4.16).
#include "check_common.h"

static __noinline u64 twice(u64 x)
{
    return x * 2;
}

SEC("kprobe/do_nanosleep")
int caller(void *ctx)
{
    return twice(bpf_get_current_pid_tgid()) & 1;
}
