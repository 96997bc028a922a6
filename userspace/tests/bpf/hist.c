// A log2 histogram as bcc and bpftrace tools keep them: the argument of getpgid(2), per
// process, bucketed by log2 in a hash map whose key struct has a `slot` field.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct hist_key {
    __u32 pid;
    __u32 slot;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct hist_key);
    __type(value, __u64);
} getpgid_arg SEC(".maps");

/* The syscalls:sys_enter_* tracepoint record. */
struct sys_enter {
    __u64 common;
    long id;
    unsigned long args[6];
};

static __u32 log2_u64(__u64 v)
{
    __u32 r = 0;
    if (v >> 32) { v >>= 32; r += 32; }
    if (v >> 16) { v >>= 16; r += 16; }
    if (v >> 8) { v >>= 8; r += 8; }
    if (v >> 4) { v >>= 4; r += 4; }
    if (v >> 2) { v >>= 2; r += 2; }
    if (v >> 1) r += 1;
    return r;
}

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(struct sys_enter *ctx)
{
    struct hist_key k = {.pid = bpf_get_current_pid_tgid() >> 32, .slot = log2_u64(ctx->args[0])};
    __u64 one = 1, *n = bpf_map_lookup_elem(&getpgid_arg, &k);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&getpgid_arg, &k, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
