// A libbpf-style object (libbpf's own headers, BTF-defined maps, no flags needed to read
// it): a ring buffer of `struct event` reserved with sizeof, a hash map whose __type()s
// name its key and value, and a BTF perf event array given neither max_entries nor
// anything but its key/value sizes, fed with bpf_perf_event_output(..., sizeof(o)).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
    __u32 pid;
    __u32 uid;
    char comm[16];
    __u64 seq;
};

struct stat {
    __u64 calls;
    __u32 last_tid;
    __u32 flags;
};

struct other {
    __u32 pid;
    __u32 kind;
    __u64 seq;
    __u64 magic;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 16);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, struct stat);
} stats SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 pid = id >> 32;
    struct stat init = {}, *s = bpf_map_lookup_elem(&stats, &pid);
    if (!s) {
        bpf_map_update_elem(&stats, &pid, &init, BPF_NOEXIST);
        s = bpf_map_lookup_elem(&stats, &pid);
        if (!s)
            return 0;
    }
    __sync_fetch_and_add(&s->calls, 1);
    s->last_tid = (__u32)id;
    struct event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = pid;
    e->uid = (__u32)bpf_get_current_uid_gid();
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    e->seq = s->calls;
    bpf_ringbuf_submit(e, 0);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
    struct other o = {};
    o.pid = bpf_get_current_pid_tgid() >> 32;
    o.kind = 7;
    o.magic = 0x1122334455667788ULL;
    bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &o, sizeof(o));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
