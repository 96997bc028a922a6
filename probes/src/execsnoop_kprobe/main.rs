//! execsnoop, kprobe variant (the goebpf seed): ktime, pid, ppid, uid, gid, result, comm,
//! filename and up to 20 argv entries per execve, through a perf event array. The kprobe
//! copies filename and argv, the kretprobe adds the result and sends the record, and
//! `sched:sched_process_fork` remembers each new process's parent.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::exec::{self, syscall_args, ExecBuf, ExecEvent, SchedProcessFork};
use probes::filter::LoaderFilter;
use redbpf_macros::tracepoint;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EVENTS: PerfMap<ExecEvent> = PerfMap::with_max_entries(1024);

#[map]
static mut INFLIGHT: Array<ExecBuf> = Array::with_max_entries(exec::SLOTS);

#[map]
static mut INFLIGHT_PARENTS: LruHashMap<u32, u32> = LruHashMap::with_max_entries(exec::PARENTS);

/// `--pid`, `--uid`, `--comm`, `--failed`, written by the loader (see probes::filter).
#[map]
static mut LOADER_FILTER: Array<LoaderFilter> = Array::with_max_entries(1);

#[kprobe("sys_execve")]
fn execve_enter(regs: Registers) {
    let (filename, argv) = syscall_args(&regs);
    // SAFETY: the maps are this object's; the kernel serialises their updates.
    exec::enter(
        unsafe { &mut INFLIGHT },
        filename as *const u8,
        argv as *const *const u8,
    );
}

#[kretprobe("sys_execve")]
fn execve_exit(regs: Registers) {
    let ret = regs.rc() as i64;
    // SAFETY: see execve_enter.
    let maps = unsafe {
        exec::ExitMaps {
            inflight: &mut INFLIGHT,
            parents: &mut INFLIGHT_PARENTS,
            events: &mut EVENTS,
            filter: &mut LOADER_FILTER,
        }
    };
    exec::exit(regs.ctx, maps, ret);
}

#[tracepoint("sched:sched_process_fork")]
fn process_fork(args: *const SchedProcessFork) {
    // SAFETY: see execve_enter.
    exec::fork(args, unsafe { &mut INFLIGHT_PARENTS });
}
