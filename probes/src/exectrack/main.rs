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
    let mut info = ExecInfo { pid, comm: [0; 16] };
    // The raw helper writes comm in place (the by-value wrapper costs a copy).
    // SAFETY: the buffer is 16 bytes, as passed.
    unsafe { gen::bpf_get_current_comm(info.comm.as_mut_ptr() as *mut c_void, 16) };
    // SAFETY: maps are shared with the kernel, which serialises updates.
    unsafe { EXECS.set(&pid, &info) };
}
