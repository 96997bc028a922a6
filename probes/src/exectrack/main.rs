//! Tracepoint `syscalls:sys_enter_execve` keeping pid -> {pid, comm} in a hash map.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::exec::ExecInfo;
use redbpf_macros::tracepoint;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EXECS: HashMap<u32, ExecInfo> = HashMap::with_max_entries(10240);

#[tracepoint("syscalls:sys_enter_execve")]
fn exec_enter(_args: *const c_void) {
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let info = ExecInfo {
        pid,
        comm: bpf_get_current_comm().map(|c| c as u8),
    };
    // SAFETY: maps are shared with the kernel, which serialises updates.
    unsafe { EXECS.set(&pid, &info) };
}
