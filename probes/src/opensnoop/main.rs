//! opensnoop: every openat(2) with its flags and result (fd or -errno), from the syscall
//! tracepoints.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use redbpf_macros::tracepoint;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[repr(C)]
pub struct OpenEvent {
    pub pid: u32,
    pub uid: u32,
    pub flags: u32,
    /// File descriptor, or -errno.
    pub ret: i32,
    pub comm: [u8; 16],
    pub filename: [u8; 256],
}

#[repr(C)]
struct SysEnterOpenat {
    common: u64,
    syscall_nr: i32,
    pad: u32,
    dfd: i64,
    filename: *const u8,
    flags: i64,
    mode: i64,
}

#[repr(C)]
struct SysExit {
    common: u64,
    syscall_nr: i32,
    pad: u32,
    ret: i64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct OpenArgs {
    filename: u64,
    flags: u64,
}

#[map]
static mut EVENTS: PerfMap<OpenEvent> = PerfMap::with_max_entries(1024);

#[map]
static mut INFLIGHT: HashMap<u64, OpenArgs> = HashMap::with_max_entries(10240);

#[map]
static mut BUF: PerCpuArray<OpenEvent> = PerCpuArray::with_max_entries(1);

#[tracepoint("syscalls:sys_enter_openat")]
fn openat_enter(args: *const SysEnterOpenat) {
    // SAFETY: tracepoint programs may read their context directly.
    let open = unsafe {
        OpenArgs {
            filename: (*args).filename as u64,
            flags: (*args).flags as u64,
        }
    };
    // SAFETY: maps are shared with the kernel, which serialises updates.
    unsafe { INFLIGHT.set(&bpf_get_current_pid_tgid(), &open) };
}

#[tracepoint("syscalls:sys_exit_openat")]
fn openat_exit(args: *const SysExit) {
    let id = bpf_get_current_pid_tgid();
    // SAFETY: see openat_enter.
    let open = match unsafe { INFLIGHT.get(&id) } {
        Some(open) => *open,
        None => return,
    };
    // SAFETY: see openat_enter.
    unsafe { INFLIGHT.delete(&id) };
    // SAFETY: per-CPU scratch buffer; the program runs with preemption disabled.
    let Some(e) = (unsafe { BUF.get_mut(0) }) else {
        return;
    };
    e.pid = (id >> 32) as u32;
    e.uid = bpf_get_current_uid_gid() as u32;
    e.flags = open.flags as u32;
    // SAFETY: tracepoint context.
    e.ret = unsafe { (*args).ret } as i32;
    e.comm = bpf_get_current_comm().map(|c| c as u8);
    // SAFETY: bpf_probe_read_str checks the user pointer.
    unsafe {
        bpf_probe_read_str(
            e.filename.as_mut_ptr() as *mut c_void,
            e.filename.len() as u32,
            open.filename as *const c_void,
        )
    };
    // SAFETY: see openat_enter.
    unsafe { EVENTS.insert(args as *mut SysExit, e) };
}
