#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<u64> = Array::with_max_entries(1);
#[kprobe("vfs_read")]
fn wide_multiply(regs: Registers) {
    let p = (regs.parm1() as u128) * (regs.parm2() as u128);
    unsafe { OUT.set(0, &((p >> 64) as u64)) };
}
