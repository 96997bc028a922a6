// Rule: a map type newer than the kernel: BPF_MAP_TYPE_QUEUE (22, 4.20), in a legacy
// `maps` section.
#include "check_common.h"

struct bpf_map_def SEC("maps") queue = {
    .type = 22, /* QUEUE */
    .key_size = 0,
    .value_size = 8,
    .max_entries = 16,
};

SEC("kprobe/do_nanosleep")
int uses_queue(void *ctx)
{
    u64 pid = bpf_get_current_pid_tgid();
    bpf_map_update_elem(&queue, 0, &pid, 0);
    return 0;
}
