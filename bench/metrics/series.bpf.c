// make bench's scrape benchmark: a hash map of one u64 per getpgid(2) argument in
// [SERIES_BASE, SERIES_BASE + 16384), which bench/metrics.sh fills with 10k distinct
// arguments: 10k labelled series (`n="..."`) for `loader --metrics` to serve. Other
// processes' getpgid calls (arguments of real pids) stay out of the map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define SERIES_BASE 2000000000ULL

struct series_key {
    __u32 n;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, struct series_key);
    __type(value, __u64);
} series SEC(".maps");

struct sys_enter {
    __u64 common;
    __s64 nr;
    __u64 args[6];
};

SEC("tracepoint/syscalls/sys_enter_getpgid")
int count(struct sys_enter *ctx)
{
    __u64 arg = ctx->args[0], one = 1, *v;
    if (arg < SERIES_BASE || arg >= SERIES_BASE + 16384)
        return 0;
    struct series_key k = {.n = arg - SERIES_BASE};
    v = bpf_map_lookup_elem(&series, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    else
        bpf_map_update_elem(&series, &k, &one, BPF_NOEXIST);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
