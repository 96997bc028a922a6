// The ring-buffer-or-perf pattern of libbpf-tools (its compat.bpf.h), written here from
// its description: `events` is declared a BPF ring buffer and `heap` a one-slot per-CPU
// array of the record. Where the kernel has ring buffers (a CO-RE existence check of
// `struct bpf_ringbuf`, answered from the kernel's BTF) the record is reserved in the ring
// and submitted; elsewhere it is filled in the heap slot and sent with
// bpf_perf_event_output, the loader having turned `events` into a perf event array with
// 4-byte keys and values before load, as libbpf-tools' userspace does below 5.8.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

// Only its existence in the running kernel matters (kernel/bpf/ringbuf.c has it from 5.8).
struct bpf_ringbuf {
    int present;
};

#define PATH_BYTES 64

struct exec_event {
    __u64 ts;
    __u32 pid;
    __u32 uid;
    __u32 via; // 1: reserved in the ring buffer, 2: the heap slot and a perf event
    char comm[16];
    char filename[PATH_BYTES];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct exec_event);
} heap SEC(".maps");

static __always_inline int have_ring(void)
{
    return bpf_core_type_exists(struct bpf_ringbuf);
}

static __always_inline struct exec_event *event_slot(void)
{
    __u32 slot = 0;
    if (have_ring())
        return bpf_ringbuf_reserve(&events, sizeof(struct exec_event), 0);
    return bpf_map_lookup_elem(&heap, &slot);
}

static __always_inline void event_send(void *ctx, struct exec_event *e)
{
    if (have_ring()) {
        bpf_ringbuf_submit(e, 0);
        return;
    }
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, sizeof(*e));
}

// tracepoint syscalls:sys_enter_execve: 8 bytes of common fields, the syscall number,
// then the arguments.
struct execve_args {
    __u64 common;
    __s64 nr;
    const char *filename;
    const char *const *argv;
    const char *const *envp;
};

SEC("tracepoint/syscalls/sys_enter_execve")
int exec_enter(struct execve_args *ctx)
{
    struct exec_event *e = event_slot();
    if (!e)
        return 0;
    e->ts = bpf_ktime_get_ns();
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->uid = (__u32)bpf_get_current_uid_gid();
    e->via = have_ring() ? 1 : 2;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_probe_read_str(e->filename, sizeof(e->filename), ctx->filename);
    event_send(ctx, e);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
