// One object mixing a good program with everything that must fail on its own: a section
// kind nobody runs, a program the verifier rejects, a kprobe on a missing function and a
// tracepoint that does not exist. The good program sends
// records exactly as long as `struct rec`, shorter, and longer.
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(n) __attribute__((section(n), used))

struct bpf_map_def {
    u32 type, key_size, value_size, max_entries, map_flags;
};

static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_perf_event_output)(void *ctx, void *map, u64 flags, void *data, u64 size) = (void *)25;

struct rec {
    u32 pid;
    u32 kind;
    u64 a;
    u64 b;
};

struct bpf_map_def SEC("maps") records = {
    .type = 4, /* PERF_EVENT_ARRAY */
    .key_size = 4,
    .value_size = 4,
    .max_entries = 64,
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int good(void *ctx)
{
    u64 buf[4] = {};
    struct rec *r = (struct rec *)buf;
    r->pid = bpf_get_current_pid_tgid() >> 32;
    r->a = 0x1111;
    r->b = 0x2222;
    r->kind = 1;
    bpf_perf_event_output(ctx, &records, 0xffffffffULL, r, sizeof(struct rec));
    r->kind = 2;
    bpf_perf_event_output(ctx, &records, 0xffffffffULL, r, 12);
    r->kind = 3;
    buf[3] = 0x41; /* "A": 8 bytes past the struct */
    bpf_perf_event_output(ctx, &records, 0xffffffffULL, buf, sizeof(buf));
    return 0;
}

SEC("weird/thing")
int unknown_kind(void *ctx)
{
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int rejected(void *ctx)
{
    /* Far outside the tracepoint context: the verifier refuses the access. */
    return *(volatile u32 *)((char *)ctx + 100000);
}

SEC("kprobe/no_such_kernel_function_for_redbpf_tests")
int missing_kprobe(void *ctx)
{
    return 0;
}

SEC("tracepoint/no_such_category/no_such_event")
int missing_tracepoint(void *ctx)
{
    return 0;
}

char _license[] SEC("license") = "GPL";
