/* Ring-buffer twin of bench/probe for bench/throughput.sh's ring rows: every getppid(2) of
 * the load generator (comm "loadgen") bumps CALLS[0] (offered) and writes one 48-byte
 * `struct call` into the BPF ring buffer EVENTS; a failed reserve (ring full) bumps
 * CALLS[1] (lost: the kernel keeps no lost count for ring buffers). Built with
 * clang -O2 -g -target bpf against libbpf's headers; read by the loader and by
 * bench/peers/libbpf_reader.c (ringbuf mode). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct call {
	__u64 ts;
	__u64 seq; /* this CPU's call counter after this call: gaps show drops */
	__u32 pid;
	__u32 tgid;
	__u32 uid;
	__u32 cpu;
	char comm[16];
};

/* The first 8 bytes of "loadgen\0" as a little-endian u64. */
#define LOADGEN 0x006e656764616f6cULL

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_BYTES);
} EVENTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} CALLS SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getppid")
int getppid(void *ctx)
{
	union {
		char s[16];
		__u64 head;
	} comm;
	__u32 key = 0;
	__u64 *n, id;
	struct call *c;

	bpf_get_current_comm(comm.s, sizeof comm.s);
	if (comm.head != LOADGEN)
		return 0;
	n = bpf_map_lookup_elem(&CALLS, &key);
	if (!n)
		return 0;
	*n += 1;
	c = bpf_ringbuf_reserve(&EVENTS, sizeof *c, 0);
	if (!c) {
		key = 1;
		n = bpf_map_lookup_elem(&CALLS, &key);
		if (n)
			*n += 1;
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	c->ts = bpf_ktime_get_ns();
	c->seq = *n;
	c->pid = (__u32)id;
	c->tgid = id >> 32;
	c->uid = (__u32)bpf_get_current_uid_gid();
	c->cpu = bpf_get_smp_processor_id();
	__builtin_memcpy(c->comm, comm.s, sizeof comm.s);
	bpf_ringbuf_submit(c, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
