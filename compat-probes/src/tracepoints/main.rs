#![no_std]
#![no_main]
use redbpf_macros::{printk, tracepoint};
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut COUNTS: PerCpuArray<u64> = PerCpuArray::with_max_entries(1);

#[tracepoint("syscalls:sys_enter_getppid")]
fn getppid(_args: *const c_void) {
    if let Some(n) = unsafe { COUNTS.get_mut(0) } {
        *n += 1;
    }
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    printk!("compat getppid from %u", pid);
}

#[tracepoint("sched:sched_process_exit")]
pub fn process_exit(_args: *const c_void) {
    bpf_trace_printk(b"exit\0");
}
