// Rule: a helper newer than the kernel: bpf_probe_read_kernel (113, 5.5).
#include "check_common.h"

static long (*bpf_probe_read_kernel)(void *dst, u32 size, const void *src) = (void *)113;

SEC("kprobe/do_nanosleep")
int reader(void *ctx)
{
    u64 v = 0;
    bpf_probe_read_kernel(&v, sizeof(v), ctx);
    return v & 1;
}
