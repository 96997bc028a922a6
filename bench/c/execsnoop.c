/* execsnoop (tracepoint variant) in C: the same logic as probes/src/execsnoop. */
#include "common.h"
#define ARGS_SPACE 2048
#define ARG_LEN 128
struct exec_event {
    __u64 ktime_ns; __u32 pid, uid, gid, argc; char comm[16]; char filename[256]; char argv[0];
};
struct exec_buf { struct exec_event event; char args[ARGS_SPACE + ARG_LEN]; };
struct sys_enter_execve { __u64 common; __s32 nr; __u32 pad; const char *filename; const char *const *argv; const char *const *envp; };
struct bpf_map_def SEC("maps/EVENTS") EVENTS = { BPF_MAP_TYPE_PERF_EVENT_ARRAY, 4, 4, 1024, 0 };
struct bpf_map_def SEC("maps/BUF") BUF = { BPF_MAP_TYPE_PERCPU_ARRAY, 4, sizeof(struct exec_buf), 1, 0 };

ALWAYS_INLINE void send(void *ctx, struct exec_buf *buf, __u32 off, __u32 argc) {
    buf->event.argc = argc;
    bpf_perf_event_output(ctx, &EVENTS, BPF_F_CURRENT_CPU, buf, sizeof(struct exec_event) + (off & (ARGS_SPACE - 1)));
}

SEC("tracepoint/syscalls:sys_enter_execve")
int execve_enter(struct sys_enter_execve *args) {
    __u32 key = 0;
    struct exec_buf *buf = bpf_map_lookup_elem(&BUF, &key);
    if (!buf) return 0;
    __u64 pid_tgid = bpf_get_current_pid_tgid(), uid_gid = bpf_get_current_uid_gid();
    buf->event.ktime_ns = bpf_ktime_get_ns();
    buf->event.pid = pid_tgid >> 32;
    buf->event.uid = uid_gid;
    buf->event.gid = uid_gid >> 32;
    bpf_get_current_comm(buf->event.comm, sizeof(buf->event.comm));
    bpf_probe_read_str(buf->event.filename, sizeof(buf->event.filename), args->filename);
    __u32 off = 0, argc = 0;
#pragma unroll
    for (int i = 0; i < 20; i++) {
        const char *p = 0;
        bpf_probe_read(&p, sizeof(p), &args->argv[i]);
        if (!p || off >= ARGS_SPACE) break;
        long n = bpf_probe_read_str(&buf->args[off & (ARGS_SPACE - 1)], ARG_LEN, p);
        if (n <= 0) break;
        off += n;
        argc++;
    }
    send(args, buf, off, argc);
    return 0;
}
char _license[] SEC("license") = "GPL";
