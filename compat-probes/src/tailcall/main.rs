#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut JUMP: ProgramArray = ProgramArray::with_max_entries(4);

#[map]
static mut HITS: Array<u64> = Array::with_max_entries(2);

#[kprobe("vfs_fsync")]
fn first(regs: Registers) {
    unsafe {
        if let Some(n) = HITS.get_mut(0) {
            *n += 1;
        }
        let _ = JUMP.tail_call(regs.ctx, 1);
    }
}

#[kprobe("vfs_fsync_range")]
fn second(_regs: Registers) {
    unsafe {
        if let Some(n) = HITS.get_mut(1) {
            *n += 1;
        }
    }
}
