// Calls per (pid, kind) in a BTF hash map with a struct key: what --metrics turns into
// labelled Prometheus series. kind 1: getppid, kind 2: getpgid.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct call_key {
    __u32 pid;
    __u32 kind;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct call_key);
    __type(value, __u64);
} calls SEC(".maps");

static void count(__u32 kind)
{
    struct call_key k = {.pid = bpf_get_current_pid_tgid() >> 32, .kind = kind};
    __u64 one = 1, *n = bpf_map_lookup_elem(&calls, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&calls, &k, &one, BPF_NOEXIST);
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    count(1);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
    count(2);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
