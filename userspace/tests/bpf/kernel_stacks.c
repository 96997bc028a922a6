// Kernel stack ids from a kprobe (getppid's syscall function) into records, in a legacy
// `maps` STACK_TRACE map: what a profiling tool keeps on a kernel without BTF.
typedef unsigned int u32;
typedef int s32;
typedef unsigned long long u64;

#define SEC(n) __attribute__((section(n), used))

struct bpf_map_def {
    u32 type, key_size, value_size, max_entries, map_flags;
};

static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_perf_event_output)(void *ctx, void *map, u64 flags, void *data, u64 size) = (void *)25;
static long (*bpf_get_stackid)(void *ctx, void *map, u64 flags) = (void *)27;

struct bpf_map_def SEC("maps") stacks = {.type = 7, .key_size = 4, .value_size = 127 * 8, .max_entries = 256};
struct bpf_map_def SEC("maps") syscalls = {.type = 4, .key_size = 4, .value_size = 4, .max_entries = 64};

struct syscall {
    u32 pid;
    s32 kstack;
};

SEC("kprobe/sys_getppid")
int getppid_stack(void *ctx)
{
    struct syscall s = {.pid = bpf_get_current_pid_tgid() >> 32};
    s.kstack = bpf_get_stackid(ctx, &stacks, 0);
    bpf_perf_event_output(ctx, &syscalls, 0xffffffffULL, &s, sizeof(s));
    return 0;
}

char _license[] SEC("license") = "GPL";
