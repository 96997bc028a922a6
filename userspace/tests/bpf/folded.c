// Stacks counted in a hash map, the shape bcc's profile and offcputime keep:
// {pid, user stack id, kernel stack id, comm} -> count. The uprobe counts user stacks
// only, the getppid tracepoint both (a user program's own syscall: its frames under the
// kernel's).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 1024);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct key_t {
    __u32 pid;
    __s32 user_stack_id;
    __s32 kernel_stack_id;
    char name[16];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, struct key_t);
    __type(value, __u64);
} counts SEC(".maps");

static void count(struct key_t *k)
{
    __u64 one = 1, *n;
    k->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(k->name, sizeof(k->name));
    n = bpf_map_lookup_elem(&counts, k);
    if (n)
        __sync_fetch_and_add(n, 1);
    else
        bpf_map_update_elem(&counts, k, &one, BPF_NOEXIST);
}

SEC("uprobe/stack_test_leaf")
int on_leaf(void *ctx)
{
    struct key_t k = {};
    k.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    k.kernel_stack_id = -1;
    count(&k);
    return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct key_t k = {};
    k.user_stack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    k.kernel_stack_id = bpf_get_stackid(ctx, &stacks, 0);
    count(&k);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
