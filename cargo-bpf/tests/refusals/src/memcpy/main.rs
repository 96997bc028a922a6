#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;
program!(0xFFFFFFFE, "GPL");
#[map]
static mut OUT: Array<[u8; 64]> = Array::with_max_entries(1);
#[kprobe("vfs_read")]
fn copies_a_runtime_length(regs: Registers) {
    let n = (regs.parm3() & 63) as usize;
    let src = [7u8; 64];
    let mut dst = [0u8; 64];
    dst[..n].copy_from_slice(&src[..n]);
    unsafe { OUT.set(0, &dst) };
}
