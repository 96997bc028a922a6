//! Counts execve calls in an Array map (the cilium kprobe example).
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EXEC_COUNT: Array<u64> = Array::with_max_entries(1);

#[kprobe("sys_execve")]
fn execve_enter(_regs: Registers) {
    // SAFETY: the map is only touched through BPF helpers.
    unsafe {
        if let Some(count) = EXEC_COUNT.get_mut(0) {
            *count += 1;
        }
    }
}
