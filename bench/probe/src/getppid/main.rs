//! Throughput benchmark probe: every getppid(2) of the load generator (comm `loadgen`;
//! other processes' calls are ignored) bumps a per-CPU call counter (`CALLS`, read at the
//! end: offered = sum over CPUs) and sends one 48-byte `Call` record into the perf map
//! `EVENTS`. Lost = offered - delivered.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use bench_probe::Call;
use redbpf_macros::tracepoint;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EVENTS: PerfMap<Call> = PerfMap::with_max_entries(1024);

#[map]
static mut CALLS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1);

/// The first 8 bytes of the load generator's comm.
const LOADGEN: u64 = u64::from_ne_bytes(*b"loadgen\0");

#[tracepoint("syscalls:sys_enter_getppid")]
fn getppid(args: *const c_void) {
    let comm = bpf_get_current_comm();
    // SAFETY: [c_char; 16] and [u8; 16] have the same size and layout.
    let comm = unsafe { core::mem::transmute::<[c_char; 16], [u8; 16]>(comm) };
    let head = [
        comm[0], comm[1], comm[2], comm[3], comm[4], comm[5], comm[6], comm[7],
    ];
    if u64::from_ne_bytes(head) != LOADGEN {
        return;
    }
    // SAFETY: per-CPU slot; the program runs with preemption disabled, so no other writer.
    let seq = match unsafe { CALLS.get_mut(0) } {
        Some(n) => {
            *n += 1;
            *n
        }
        None => return,
    };
    let id = bpf_get_current_pid_tgid();
    let call = Call {
        ts: bpf_ktime_get_ns(),
        seq,
        pid: id as u32,
        tgid: (id >> 32) as u32,
        uid: bpf_get_current_uid_gid() as u32,
        cpu: bpf_get_smp_processor_id(),
        comm,
    };
    // SAFETY: the perf map is shared with the kernel, which serialises output per CPU.
    unsafe { EVENTS.insert(args as *mut c_void, &call) };
}
