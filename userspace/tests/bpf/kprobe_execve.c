// C-era kprobe on a syscall written `sys_execve` (resolved on the running kernel).
typedef unsigned int u32;
typedef unsigned long long u64;
#define SEC(n) __attribute__((section(n), used))
struct bpf_map_def { u32 type, key_size, value_size, max_entries, map_flags; };
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
struct bpf_map_def SEC("maps") execs = { .type = 2, .key_size = 4, .value_size = 8, .max_entries = 1 };
SEC("kprobe/sys_execve")
int kprobe_execve(void *ctx)
{
    u32 k = 0;
    u64 *v = bpf_map_lookup_elem(&execs, &k);
    if (v)
        __sync_fetch_and_add(v, 1);
    return 0;
}
char _license[] SEC("license") = "GPL";
unsigned int _version SEC("version") = 0xFFFFFFFE;
