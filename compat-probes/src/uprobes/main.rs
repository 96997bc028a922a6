#![no_std]
#![no_main]
use redbpf_probes::uprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut CALLS: HashMap<u64, u64> = HashMap::with_max_entries(1024);

#[uprobe]
fn getaddrinfo(regs: Registers) {
    unsafe { CALLS.set(&bpf_get_current_pid_tgid(), &regs.parm1()) };
}

#[uretprobe]
fn getaddrinfo_ret(regs: Registers) {
    unsafe { CALLS.delete(&regs.rc()) };
}

#[uretprobe("malloc")]
fn malloc_ret(regs: Registers, parms: [u64; 5]) {
    unsafe { CALLS.set(&parms[0], &regs.rc()) };
}
