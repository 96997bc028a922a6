#!/usr/bin/python3
"""Benchmark peer: bcc's Python perf-buffer reader on the getppid workload.

The BPF side matches bench/probe (only the process named loadgen; a per-CPU call counter
and one 48-byte record per call);
the Python side is the usual bcc loop: open_perf_buffer + perf_buffer_poll, each record
cast to its ctypes struct in the callback and counted. 64 pages per CPU, like the others.

On SIGINT/SIGTERM it detaches, polls once more and prints on stderr:
    bcc: delivered=N lost=N offered=N
"""
import os
import signal
import sys

from bcc import BPF

PROGRAM = r"""
struct call {
    u64 ts;
    u64 seq;
    u32 pid;
    u32 tgid;
    u32 uid;
    u32 cpu;
    char comm[16];
};

BPF_PERF_OUTPUT(events);
BPF_PERCPU_ARRAY(calls, u64, 1);

TRACEPOINT_PROBE(syscalls, sys_enter_getppid) {
    struct call c = {};
    bpf_get_current_comm(&c.comm, sizeof(c.comm));
    /* Only the load generator's calls: "loadgen\0". */
    if (*(u64 *)c.comm != 0x006e656764616f6cULL)
        return 0;
    int zero = 0;
    u64 *n = calls.lookup(&zero);
    if (!n)
        return 0;
    *n += 1;
    u64 id = bpf_get_current_pid_tgid();
    c.ts = bpf_ktime_get_ns();
    c.seq = *n;
    c.pid = (u32)id;
    c.tgid = id >> 32;
    c.uid = (u32)bpf_get_current_uid_gid();
    c.cpu = bpf_get_smp_processor_id();
    events.perf_submit(args, &c, sizeof(c));
    return 0;
}
"""

delivered = 0
lost = 0
stop = False


def on_stop(_sig, _frame):
    global stop
    stop = True


def main():
    global delivered, lost
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    b = BPF(text=PROGRAM)
    table = b["events"]

    def on_event(_cpu, data, _size):
        global delivered
        table.event(data)
        delivered += 1

    def on_lost(count):
        global lost
        lost += count

    table.open_perf_buffer(on_event, page_cnt=pages, lost_cb=on_lost)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    print("bcc: attached", file=sys.stderr, flush=True)
    while not stop:
        b.perf_buffer_poll(timeout=100)
    b.detach_tracepoint(tp=b"syscalls:sys_enter_getppid")
    # Take what is still queued.
    seen = -1
    while seen != delivered + lost:
        seen = delivered + lost
        b.perf_buffer_poll(timeout=50)
    offered = sum(b["calls"][0])
    print(f"bcc: delivered={delivered} lost={lost} offered={offered}", file=sys.stderr, flush=True)
    # Skip bcc's destructors, which raise on the already-detached perf array.
    os._exit(0)


if __name__ == "__main__":
    main()
