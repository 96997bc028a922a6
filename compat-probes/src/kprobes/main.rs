#![no_std]
#![no_main]
use compat_probes::{Key, Sample};
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut HASH: HashMap<u64, Sample> = HashMap::with_max_entries(1024);

#[map(link_section = "maps/percpu_hash")]
static mut PERCPU_HASH: PerCpuHashMap<Key, u64> = PerCpuHashMap::with_max_entries(1024);

#[map]
static mut LRU: LruHashMap<u32, u64> = LruHashMap::with_max_entries(1024);

#[map]
static mut LRU_PERCPU: LruPerCpuHashMap<u32, u64> = LruPerCpuHashMap::with_max_entries(1024);

#[map]
static mut ARRAY: Array<u64> = Array::with_max_entries(4);

#[map]
static mut PERCPU_ARRAY: PerCpuArray<Sample> = PerCpuArray::with_max_entries(1);

#[map(link_section = "maps/events")]
static mut EVENTS: PerfMap<Sample> = PerfMap::with_max_entries(1024);

#[map]
static mut STACKS: StackTrace = StackTrace::with_max_entries(1024);

#[kprobe]
fn vfs_read(regs: Registers) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let sample = Sample {
        pid: pid_tgid >> 32,
        value: regs.parm3(),
        comm: bpf_get_current_comm().map(|c| c as u8),
    };
    unsafe {
        HASH.set(&pid_tgid, &sample);
        if let Some(s) = HASH.get_mut(&pid_tgid) {
            s.value += 1;
        }
        let key = Key { pid: (pid_tgid >> 32) as u32, cpu: bpf_get_smp_processor_id() };
        match PERCPU_HASH.get_mut(&key) {
            Some(n) => *n += 1,
            None => PERCPU_HASH.set(&key, &1),
        }
        if let Some(v) = LRU.get_val(&(pid_tgid as u32)) {
            LRU.set(&(pid_tgid as u32), &(v + 1));
        }
        LRU_PERCPU.set(&(pid_tgid as u32), &1);
        if let Some(n) = ARRAY.get_mut(0) {
            *n += 1;
        }
        ARRAY.set(1, &bpf_ktime_get_ns());
        if let Some(s) = PERCPU_ARRAY.get_mut(0) {
            s.value = regs.parm2();
        }
        if let Ok(id) = STACKS.stack_id(regs.ctx, 0) {
            ARRAY.set(2, &(id as u64));
        }
        EVENTS.insert(regs.ctx, &sample);
    }
}

#[kprobe("do_sys_openat2")]
fn open_entry(_regs: Registers) {
    unsafe { HASH.delete(&bpf_get_current_pid_tgid()) };
}

#[kretprobe("do_sys_openat2")]
fn open_return(regs: Registers) {
    unsafe { ARRAY.set(3, &regs.rc()) };
}

#[kretprobe]
fn vfs_write(regs: Registers, parms: [u64; 5]) {
    let sample = Sample { pid: parms[0], value: regs.rc(), comm: [0; 16] };
    unsafe { EVENTS.insert(regs.ctx, &sample) };
}
