// Shared by the check_*.c objects (tests/check.rs): each breaks exactly one rule of
// `loader check --kernel 4.14` and is otherwise fine there. Self-contained: no libbpf.
typedef unsigned int u32;
typedef unsigned long long u64;

#define SEC(n) __attribute__((section(n), used))
#define __noinline __attribute__((noinline))

struct bpf_map_def {
    u32 type, key_size, value_size, max_entries, map_flags;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, u64 flags) = (void *)2;
static u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;

char _license[] SEC("license") = "GPL";
#ifndef CHECK_VERSION
#define CHECK_VERSION 0xFFFFFFFE /* redbpf's "any kernel" */
#endif
unsigned int _version SEC("version") = CHECK_VERSION;
