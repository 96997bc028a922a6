//! execsnoop, kprobe variant (the goebpf seed): ktime, pid, uid, gid, comm, filename and
//! up to 20 argv entries per execve, through a perf event array.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::exec::{emit_exec, syscall_args, ExecBuf, ExecEvent};
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EVENTS: PerfMap<ExecEvent> = PerfMap::with_max_entries(1024);

#[map]
static mut BUF: PerCpuArray<ExecBuf> = PerCpuArray::with_max_entries(1);

#[kprobe("sys_execve")]
fn execve_enter(regs: Registers) {
    let (filename, argv) = syscall_args(&regs);
    // SAFETY: per-CPU scratch buffer; the program runs with preemption disabled.
    if let Some(buf) = unsafe { BUF.get_mut(0) } {
        emit_exec(
            regs.ctx,
            buf,
            unsafe { &mut EVENTS },
            filename as *const u8,
            argv as *const *const u8,
        );
    }
}
