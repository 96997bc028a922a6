// Free-form sections, as cilium/ebpf and goebpf programs name them: the part after the
// kind is a label, not a place. `--attach SECTION=TARGET` says where each goes.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} hits SEC(".maps");

static void hit(__u32 slot)
{
    __u64 *n = bpf_map_lookup_elem(&hits, &slot);
    if (n)
        __sync_fetch_and_add(n, 1);
}

SEC("uprobe/count_calls")
int count_calls(void *ctx)
{
    hit(0);
    return 0;
}

SEC("tracepoint/my_getppid")
int my_getppid(void *ctx)
{
    hit(1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
