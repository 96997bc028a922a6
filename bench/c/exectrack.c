/* exectrack in C: the same logic as probes/src/exectrack, for instruction counts. */
#include "common.h"
struct exec_info { __u32 pid; char comm[16]; };
struct bpf_map_def SEC("maps/EXECS") EXECS = { BPF_MAP_TYPE_HASH, 4, sizeof(struct exec_info), 10240, 0 };
SEC("tracepoint/syscalls:sys_enter_execve")
int exec_enter(void *ctx) {
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct exec_info info = { .pid = pid };
    bpf_get_current_comm(info.comm, sizeof(info.comm));
    bpf_map_update_elem(&EXECS, &pid, &info, 0);
    return 0;
}
char _license[] SEC("license") = "GPL";
