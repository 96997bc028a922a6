//! execsnoop, tracepoint variant (runs where kprobes cannot): the same records as
//! `execsnoop_kprobe`. `syscalls:sys_enter_execve` copies filename and argv,
//! `syscalls:sys_exit_execve` adds the result and sends the record, `sched:sched_process_fork`
//! remembers each new process's parent.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::exec::{self, ExecBuf, ExecEvent, SchedProcessFork, SysEnterExecve, SysExit};
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

#[tracepoint("syscalls:sys_enter_execve")]
fn execve_enter(args: *const SysEnterExecve) {
    // SAFETY: tracepoint programs may read their context directly.
    let (filename, argv) = unsafe { ((*args).filename, (*args).argv) };
    // SAFETY: the maps are this object's; the kernel serialises their updates.
    exec::enter(unsafe { &mut INFLIGHT }, filename, argv);
}

#[tracepoint("syscalls:sys_exit_execve")]
fn execve_exit(args: *const SysExit) {
    // SAFETY: tracepoint context.
    let ret = unsafe { (*args).ret };
    // SAFETY: see execve_enter.
    let maps = unsafe {
        exec::ExitMaps {
            inflight: &mut INFLIGHT,
            parents: &mut INFLIGHT_PARENTS,
            events: &mut EVENTS,
            filter: &mut LOADER_FILTER,
        }
    };
    exec::exit(args as *mut SysExit, maps, ret);
}

#[tracepoint("sched:sched_process_fork")]
fn process_fork(args: *const SchedProcessFork) {
    // SAFETY: see execve_enter.
    exec::fork(args, unsafe { &mut INFLIGHT_PARENTS });
}
