#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<u64> = Array::with_max_entries(1);
extern "C" {
    fn getpid() -> i32;
}
#[kprobe("vfs_read")]
fn calls_libc(_regs: Registers) {
    let pid = unsafe { getpid() } as u64;
    unsafe { OUT.set(0, &pid) };
}
