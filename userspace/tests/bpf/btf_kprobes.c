// BTF-defined maps (libbpf's headers) fed from free-form kprobe sections: goebpf's
// `kprobe/guess_execve` (the execve syscall on whatever kernel runs it) sends a record per
// exec to a perf event array given no max_entries, and a cilium/ebpf-style label,
// `kprobe/exec_counter`, placed with `--attach kprobe/exec_counter=sys_execve`, counts
// the execs of each pid in a hash map whose __type()s name its key and value. Below 4.18
// the kernel takes no BTF: the loader creates these maps from their sizes alone, as
// libbpf does.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct exec_count {
    __u64 calls;
    char comm[16];
};

struct exec_record {
    __u64 ts;
    __u32 pid;
    __u32 uid;
    char comm[16];
    __u32 cpu;
    __u32 probe; // 1: guess_execve
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, struct exec_count);
} execs SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} records SEC(".maps");

SEC("kprobe/guess_execve")
int goebpf_execve(void *ctx)
{
    struct exec_record r = {};
    r.ts = bpf_ktime_get_ns();
    r.pid = bpf_get_current_pid_tgid() >> 32;
    r.uid = (__u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(r.comm, sizeof(r.comm));
    r.cpu = bpf_get_smp_processor_id();
    r.probe = 1;
    // The CPU's own slot (BPF_F_CURRENT_CPU is 4.8+; this runs on 4.4 too).
    bpf_perf_event_output(ctx, &records, r.cpu, &r, sizeof(r));
    return 0;
}

SEC("kprobe/exec_counter")
int cilium_exec_counter(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct exec_count *c = bpf_map_lookup_elem(&execs, &pid);
    if (!c) {
        struct exec_count init = {};
        bpf_get_current_comm(init.comm, sizeof(init.comm));
        bpf_map_update_elem(&execs, &pid, &init, BPF_NOEXIST);
        c = bpf_map_lookup_elem(&execs, &pid);
        if (!c)
            return 0;
    }
    __sync_fetch_and_add(&c->calls, 1);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
// goebpf's objects carry it: "the running kernel's version" (kprobes before 5.0 need it).
__u32 _version SEC("version") = 0xFFFFFFFE;
