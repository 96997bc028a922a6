// Legacy-style (goebpf / cilium era) object: SEC("maps") definitions, a syscalls
// tracepoint, a perf event array, a hash map, a per-CPU array and bpf_trace_printk.
// Self-contained: no libbpf headers.
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(n) __attribute__((section(n), used))

struct bpf_map_def {
    u32 type, key_size, value_size, max_entries, map_flags;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, u64 flags) = (void *)2;
static long (*bpf_trace_printk)(const char *fmt, u32 fmt_size, ...) = (void *)6;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static u64 (*bpf_get_current_uid_gid)(void) = (void *)15;
static long (*bpf_get_current_comm)(void *buf, u32 size) = (void *)16;
static long (*bpf_perf_event_output)(void *ctx, void *map, u64 flags, void *data, u64 size) = (void *)25;

#define BPF_F_CURRENT_CPU 0xffffffffULL

enum kind { KIND_ENTER = 1, KIND_OTHER = 2 };

struct event {
    u32 pid;
    u32 uid;
    u32 gid;
    enum kind kind;
    u64 seq;
    char comm[16];
};

#ifdef GOEBPF_PERF_DEF
/* As goebpf's execsnoop (the project's seed 004) declares its perf array: the type and
 * max_entries only; goebpf, cilium/ebpf and libbpf fill in key and value size 4. */
struct bpf_map_def SEC("maps") events = {
    .type = 4, /* PERF_EVENT_ARRAY */
    .max_entries = 1024,
};
#else
struct bpf_map_def SEC("maps") events = {
    .type = 4, /* PERF_EVENT_ARRAY */
    .key_size = 4,
    .value_size = 4,
    .max_entries = 64,
};
#endif

struct bpf_map_def SEC("maps") counts = {
    .type = 1, /* HASH */
    .key_size = 4,
    .value_size = 8,
    .max_entries = 1024,
};

/* [0] = calls seen by the program (perf output attempted), per CPU */
struct bpf_map_def SEC("maps") sent = {
    .type = 6, /* PERCPU_ARRAY */
    .key_size = 4,
    .value_size = 8,
    .max_entries = 1,
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    u64 one = 1, *c = bpf_map_lookup_elem(&counts, &pid);
    if (c)
        __sync_fetch_and_add(c, 1);
    else
        bpf_map_update_elem(&counts, &pid, &one, 0);

    u32 zero = 0;
    u64 *s = bpf_map_lookup_elem(&sent, &zero);
    u64 seq = 0;
    if (s) {
        seq = *s;
        *s += 1;
    }

    struct event e = {};
    e.pid = pid;
    e.uid = bpf_get_current_uid_gid();
    e.gid = bpf_get_current_uid_gid() >> 32;
    e.kind = KIND_ENTER;
    e.seq = seq;
    bpf_get_current_comm(e.comm, sizeof(e.comm));
    bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));

    char fmt[] = "getppid from %d\n";
    bpf_trace_printk(fmt, sizeof(fmt), pid);
    return 0;
}

char _license[] SEC("license") = "GPL";
unsigned int _version SEC("version") = 0xFFFFFFFE;
