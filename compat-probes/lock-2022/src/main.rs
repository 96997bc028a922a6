//! Counts vfs_read calls per process, in a HashMap and a PerfMap, the 2.3 way.
#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Read {
    pub pid: u32,
    pub count: u64,
}

#[map]
static mut READS: HashMap<u32, u64> = HashMap::with_max_entries(1024);

#[map(link_section = "maps/read_events")]
static mut READ_EVENTS: PerfMap<Read> = PerfMap::with_max_entries(1024);

#[kprobe]
fn vfs_read(regs: Registers) {
    let pid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let count = unsafe { READS.get(&pid) }.copied().unwrap_or(0) + 1;
    unsafe {
        READS.set(&pid, &count);
        READ_EVENTS.insert(regs.ctx, &Read { pid, count });
    }
}
