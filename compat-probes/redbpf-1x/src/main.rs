//! The 1.x form: maps named by `#[map("name")]`.
#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map("counts")]
static mut COUNTS: HashMap<u32, u64> = HashMap::with_max_entries(1024);

#[kprobe("vfs_read")]
pub fn vfs_read(_regs: Registers) {}
