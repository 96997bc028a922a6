// uprobe/uretprobe on a test binary's function, in both section forms:
// `uprobe/SYMBOL` (binary from --uprobe-target) and `uretprobe//path/to/bin:SYMBOL`.
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(n) __attribute__((section(n), used))
struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; };
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_perf_event_output)(void *ctx, void *map, u64 flags, void *data, u64 size) = (void *)25;

struct pt_regs_x86 { u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di; };

struct call { u32 pid; u32 ret; u64 arg; };

struct bpf_map_def SEC("maps") calls = { .type = 4, .key_size = 4, .value_size = 4, .max_entries = 64 };

SEC("uprobe/loader_test_target")
int on_entry(struct pt_regs_x86 *ctx)
{
    struct call c = { .pid = bpf_get_current_pid_tgid() >> 32, .ret = 0, .arg = ctx->di };
    bpf_perf_event_output(ctx, &calls, 0xffffffffULL, &c, sizeof(c));
    return 0;
}

SEC("uretprobe/" TARGET ":loader_test_target")
int on_return(struct pt_regs_x86 *ctx)
{
    struct call c = { .pid = bpf_get_current_pid_tgid() >> 32, .ret = 1, .arg = ctx->ax };
    bpf_perf_event_output(ctx, &calls, 0xffffffffULL, &c, sizeof(c));
    return 0;
}

char _license[] SEC("license") = "GPL";
