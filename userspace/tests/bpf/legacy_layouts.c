// Legacy `maps` definitions in the layouts of the loaders of their day, in one object:
// libbpf's 20-byte `struct bpf_map_def`, iproute2's 36-byte `struct bpf_elf_map`, goebpf's
// 40-byte definition, and a perf event array defined goebpf's way (type and max_entries
// only). The 20-byte map's types are named the way kernel samples and old libbpf did,
// with BPF_ANNOTATE_KV_PAIR; the others' values are typed by nothing but their size.
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(n) __attribute__((section(n), used))

struct bpf_map_def {
    u32 type, key_size, value_size, max_entries, map_flags;
};

struct bpf_elf_map {
    u32 type, size_key, size_value, max_elem, flags, id, pinning, inner_id, inner_idx;
};

struct goebpf_map_def {
    u32 map_type, key_size, value_size, max_entries, map_flags, pinning;
    u32 inner_map_def, persistent_path_hash, reserved[2];
};

#define BPF_ANNOTATE_KV_PAIR(name, type_key, type_val)                                  \
    struct ____btf_map_##name {                                                         \
        type_key key;                                                                    \
        type_val value;                                                                  \
    };                                                                                   \
    struct ____btf_map_##name __attribute__((section(".maps." #name), used))          \
        ____btf_map_##name = {}

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, u64 flags) = (void *)2;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;
static long (*bpf_perf_event_output)(void *ctx, void *map, u64 flags, void *data, u64 size) = (void *)25;

struct calls {
    u64 count;
    u32 pid;
    u32 tag;
};

struct elf_value {
    u32 pid;
    u32 tag;
    u64 count;
    u64 stamp;
};

struct go_value {
    u64 count;
    u32 pid;
    u32 tag;
    u64 a, b;
};

struct sample {
    u32 pid;
    u32 tag;
    u64 count;
    u64 x, y, z;
};

struct bpf_map_def SEC("maps") calls_by_pid = {
    .type = 1, .key_size = 4, .value_size = sizeof(struct calls), .max_entries = 64,
};
BPF_ANNOTATE_KV_PAIR(calls_by_pid, u32, struct calls);

struct bpf_elf_map SEC("maps") elf_map = {
    .type = 1, .size_key = 4, .size_value = sizeof(struct elf_value), .max_elem = 64,
};

struct goebpf_map_def SEC("maps") go_map = {
    .map_type = 1, .key_size = 4, .value_size = sizeof(struct go_value), .max_entries = 64,
};

struct goebpf_map_def SEC("maps") go_events = {
    .map_type = 4, /* PERF_EVENT_ARRAY: no sizes, no max_entries */
};

SEC("tracepoint/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct calls *c = bpf_map_lookup_elem(&calls_by_pid, &pid);
    struct calls c0 = {.count = 1, .pid = pid, .tag = 20};
    if (c)
        c->count++;
    else
        bpf_map_update_elem(&calls_by_pid, &pid, &c0, 0);
    struct elf_value *e = bpf_map_lookup_elem(&elf_map, &pid);
    struct elf_value e0 = {.pid = pid, .tag = 36, .count = 1};
    if (e)
        e->count++;
    else
        bpf_map_update_elem(&elf_map, &pid, &e0, 0);
    struct go_value *g = bpf_map_lookup_elem(&go_map, &pid);
    struct go_value g0 = {.count = 1, .pid = pid, .tag = 40};
    if (g)
        g->count++;
    else
        bpf_map_update_elem(&go_map, &pid, &g0, 0);
    struct sample s = {.pid = pid, .tag = 4, .count = c ? c->count : 1};
    bpf_perf_event_output(ctx, &go_events, 0xffffffffULL, &s, sizeof(s));
    return 0;
}

char _license[] SEC("license") = "GPL";
