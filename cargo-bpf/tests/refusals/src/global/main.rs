#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<u64> = Array::with_max_entries(1);
static mut CALLS: u64 = 0;
#[kprobe("vfs_read")]
fn counts_in_a_global(_regs: Registers) {
    unsafe {
        CALLS += 1;
        OUT.set(0, &*core::ptr::addr_of!(CALLS));
    }
}
