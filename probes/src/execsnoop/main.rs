//! execsnoop, tracepoint variant (runs where kprobes cannot): the same records as
//! `execsnoop_kprobe`, from `syscalls:sys_enter_execve`.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::exec::{emit_exec, ExecBuf, ExecEvent, SysEnterExecve};
use redbpf_macros::tracepoint;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EVENTS: PerfMap<ExecEvent> = PerfMap::with_max_entries(1024);

#[map]
static mut BUF: PerCpuArray<ExecBuf> = PerCpuArray::with_max_entries(1);

#[tracepoint("syscalls:sys_enter_execve")]
fn execve_enter(args: *const SysEnterExecve) {
    // SAFETY: tracepoint programs may read their context directly.
    let (filename, argv) = unsafe { ((*args).filename, (*args).argv) };
    // SAFETY: per-CPU scratch buffer; the program runs with preemption disabled.
    if let Some(buf) = unsafe { BUF.get_mut(0) } {
        emit_exec(
            args as *mut SysEnterExecve,
            buf,
            unsafe { &mut EVENTS },
            filename,
            argv,
        );
    }
}
