// Stack ids into records, as profiling tools keep them: a uprobe's user stack
// (BPF_F_USER_STACK) and a tracepoint's kernel stack, both in one STACK_TRACE map.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 1024);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct call {
    __u32 pid;
    __s32 user_stack_id;
};

struct syscall {
    __u32 pid;
    __s32 kstack;
    __u64 seq;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} calls SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} syscalls SEC(".maps");

SEC("uprobe/stack_test_leaf")
int on_leaf(void *ctx)
{
    struct call c = {.pid = bpf_get_current_pid_tgid() >> 32};
    c.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    bpf_perf_event_output(ctx, &calls, BPF_F_CURRENT_CPU, &c, sizeof(c));
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct syscall s = {.pid = bpf_get_current_pid_tgid() >> 32, .seq = 1};
    s.kstack = bpf_get_stackid(ctx, &stacks, 0);
    bpf_perf_event_output(ctx, &syscalls, BPF_F_CURRENT_CPU, &s, sizeof(s));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
