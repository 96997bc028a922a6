// Rule: a ring buffer (lifted in 5.8): a BTF-defined BPF_MAP_TYPE_RINGBUF and
// bpf_ringbuf_output.
#include "check_common.h"

#define __uint(name, val) int(*name)[val]

static long (*bpf_ringbuf_output)(void *rb, void *data, u64 size, u64 flags) = (void *)130;

struct {
    __uint(type, 27); /* RINGBUF */
    __uint(max_entries, 4096);
} events SEC(".maps");

SEC("kprobe/do_nanosleep")
int ring(void *ctx)
{
    u64 pid = bpf_get_current_pid_tgid();
    bpf_ringbuf_output(&events, &pid, sizeof(pid), 0);
    return 0;
}
