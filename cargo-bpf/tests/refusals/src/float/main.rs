#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<u64> = Array::with_max_entries(1);
#[kprobe("vfs_read")]
fn scaled_by_a_float(regs: Registers) {
    let scaled = regs.parm1() as f64 * 1.5;
    unsafe { OUT.set(0, &(scaled as u64)) };
}
