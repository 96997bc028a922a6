#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<i64> = Array::with_max_entries(1);
#[kprobe("vfs_read")]
fn signed_division(regs: Registers) {
    let q = (regs.parm1() as i64) / (regs.parm2() as i64 | 1);
    unsafe { OUT.set(0, &q) };
}
