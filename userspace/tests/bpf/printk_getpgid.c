// bpf_trace_printk as libbpf's bpf_printk() writes it from 5.2 on: the format a static
// const string in .rodata (global data), not a stack copy. -DOTHER builds another
// program's format (the tests run it in a second loader: its lines are foreign to the first).
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(n) __attribute__((section(n), used))

static long (*bpf_trace_printk)(const char *fmt, u32 fmt_size, ...) = (void *)6;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;

struct sys_enter_getpgid {
    u64 common;
    long id;
    long pid;
};

SEC("tracepoint/syscalls/sys_enter_getpgid")
int getpgid_printk(struct sys_enter_getpgid *ctx)
{
#ifdef OTHER
    static const char fmt[] = "someone else: %ld %d\n";
#else
    static const char fmt[] = "getpgid(%ld) by %d\n";
#endif
    bpf_trace_printk(fmt, sizeof(fmt), ctx->pid, (u32)(bpf_get_current_pid_tgid() >> 32));
    return 0;
}

char _license[] SEC("license") = "GPL";
