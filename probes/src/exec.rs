//! execve records: the goebpf/Dropbox execsnoop layout. A fixed header, then argv as
//! NUL-separated strings appended after it (the `argv` flexible member).

use redbpf_probes::kprobe::prelude::*;

use crate::filter::{self, LoaderFilter};

/// Arguments copied per exec (argv[0..ARGS_MAX]).
pub const ARGS_MAX: usize = 20;
/// Longest single argument copied (longer ones are cut, NUL-terminated).
pub const ARG_LEN: usize = 128;
/// argv bytes are written at offsets below this; a power of two, used as a mask so that
/// even 4.x verifiers can bound every write.
const ARGS_SPACE: usize = 2048;

#[repr(C)]
pub struct ExecEvent {
    /// When the exec began.
    pub ktime_ns: u64,
    pub pid: u32,
    /// The process that forked this one (0: it was forked before the probe was loaded).
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// execve's result: 0, or -errno for an exec that failed.
    pub ret: i32,
    /// Number of argv entries that follow.
    pub argc: u32,
    /// The command after the exec (the old one where it failed), as bcc's execsnoop.
    pub comm: [u8; 16],
    pub filename: [u8; 256],
    /// argv[0..argc], each NUL-terminated, follows the header in the record.
    pub argv: [u8; 0],
}

/// An exec between its entry and its return: too big for the 512-byte BPF stack, so it is
/// built in a slot of an array map (`INFLIGHT`) picked by thread id.
#[repr(C)]
pub struct ExecBuf {
    /// `pid_tgid` of the thread that filled the slot.
    pub owner: u64,
    /// argv bytes written after the header.
    pub len: u64,
    pub event: ExecEvent,
    pub args: [u8; ARGS_SPACE + ARG_LEN],
}

/// Slots of the in-flight array: execs running at once on threads whose ids agree in their
/// low bits share one, and the later entry wins (the earlier exec is not reported).
pub const SLOTS: u32 = 1024;

/// Processes remembered with their parent (an LRU map: old entries make room).
pub const PARENTS: u32 = 16384;

/// The in-flight slot of the current thread.
#[inline(always)]
pub fn slot_of(pid_tgid: u64) -> u32 {
    pid_tgid as u32 & (SLOTS - 1)
}

/// `pid -> {pid, comm}` as kept by `exectrack`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecInfo {
    pub pid: u32,
    pub comm: [u8; 16],
}

/// The `syscalls:sys_enter_execve` tracepoint record (see its `format` in tracefs).
#[repr(C)]
pub struct SysEnterExecve {
    pub common: u64,
    pub syscall_nr: i32,
    pub pad: u32,
    pub filename: *const u8,
    pub argv: *const *const u8,
    pub envp: *const *const u8,
}

/// On x86_64 kernels >= 4.17 the syscall symbol (`__x64_sys_execve`) takes a pointer to the
/// user's pt_regs; before, it took the arguments themselves. A kernel pointer tells them apart:
/// bit 63 is set in every kernel address and in no user one. (Not `>= 0xffff_8000_0000_0000`:
/// with 5-level paging the kernel stacks sit lower, e.g. 0xff4d_e37f_c03d_bf58 on Debian 6.1
/// under qemu, where that test read the pt_regs pointer as the filename.)
#[inline(always)]
pub fn syscall_args(regs: &Registers) -> (u64, u64) {
    let first = regs.parm1();
    if first >> 63 != 0 {
        let inner = first as *const pt_regs;
        // SAFETY: bpf_probe_read checks the address; failures give 0.
        unsafe {
            let di = bpf_probe_read(&(*inner).di as *const _).unwrap_or(0);
            let si = bpf_probe_read(&(*inner).si as *const _).unwrap_or(0);
            (di, si)
        }
    } else {
        (first, regs.parm2())
    }
}

/// `v & (ARGS_SPACE - 1)`, the mask kept in the program whatever LLVM proves: LLVM drops a
/// mask it finds redundant on one path (it did, for the size below), and the 4.14/4.15
/// verifiers then reject an unbounded size (`R5 min value is negative`). The volatile
/// reload hides `v`'s range from LLVM; the verifier sees the mask.
#[inline(always)]
fn in_args_space(v: usize) -> usize {
    // SAFETY: a volatile read of a local that lives for the whole call.
    let v = unsafe { core::ptr::read_volatile(&v) };
    v & (ARGS_SPACE - 1)
}

#[inline(always)]
fn read_str(dst: *mut u8, len: usize, src: *const u8) -> i64 {
    // SAFETY: bpf_probe_read_str checks `src`; `dst..dst+len` is inside the caller's buffer.
    unsafe { bpf_probe_read_str(dst as *mut c_void, len as u32, src as *const c_void) as i64 }
}

/// At an execve's entry: fills the thread's in-flight slot with the header and argv.
/// `filename` and `argv` are user addresses, only ever read through bpf_probe_read(_str),
/// which checks them: nothing is dereferenced directly.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
#[inline(always)]
pub fn enter(inflight: &mut Array<ExecBuf>, filename: *const u8, argv: *const *const u8) {
    let pid_tgid = bpf_get_current_pid_tgid();
    // The slot is this thread's until its exec returns (see SLOTS).
    let Some(buf) = inflight.get_mut(slot_of(pid_tgid)) else {
        return;
    };
    buf.owner = pid_tgid;
    let uid_gid = bpf_get_current_uid_gid();
    let e = &mut buf.event;
    e.ktime_ns = bpf_ktime_get_ns();
    e.pid = (pid_tgid >> 32) as u32;
    e.uid = uid_gid as u32;
    e.gid = (uid_gid >> 32) as u32;
    read_str(e.filename.as_mut_ptr(), e.filename.len(), filename);
    let mut off = 0usize;
    let mut argc = 0u32;
    macro_rules! arg {
        ($($i:literal)*) => {$(
            // SAFETY: reading the user's argv array through bpf_probe_read.
            let p: *const u8 = unsafe { bpf_probe_read(argv.add($i)) }.unwrap_or(core::ptr::null());
            if p.is_null() || off >= ARGS_SPACE {
                return done(buf, off, argc);
            }
            let n = read_str(buf.args.as_mut_ptr().wrapping_add(in_args_space(off)), ARG_LEN, p);
            if n <= 0 {
                return done(buf, off, argc);
            }
            off += n as usize;
            argc += 1;
        )*};
    }
    arg!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
    done(buf, off, argc)
}

#[inline(always)]
fn done(buf: &mut ExecBuf, off: usize, argc: u32) {
    buf.event.argc = argc;
    buf.len = off as u64;
}

/// The maps an exec's return uses.
pub struct ExitMaps<'a> {
    pub inflight: &'a mut Array<ExecBuf>,
    pub parents: &'a mut LruHashMap<u32, u32>,
    pub events: &'a mut PerfMap<ExecEvent>,
    pub filter: &'a mut Array<LoaderFilter>,
}

/// At an execve's return: completes the thread's exec with its result, parent and (new)
/// command, and sends header + argv through `events` when it passes the loader's filter.
#[inline(always)]
pub fn exit<C>(ctx: *mut C, maps: ExitMaps<'_>, ret: i64) {
    let ExitMaps {
        inflight,
        parents,
        events,
        filter,
    } = maps;
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(buf) = inflight.get_mut(slot_of(pid_tgid)) else {
        return;
    };
    if buf.owner != pid_tgid {
        return; // entered before the probe was loaded, or its slot was taken
    }
    buf.owner = 0;
    let e = &mut buf.event;
    e.ret = ret as i32;
    let pid = (pid_tgid >> 32) as u32;
    e.ppid = parents.get(&pid).copied().unwrap_or(0);
    // SAFETY: `comm` is 16 bytes, as passed.
    unsafe { gen::bpf_get_current_comm(e.comm.as_mut_ptr() as *mut c_void, 16) };
    if !filter::passes(filter, e.pid, e.uid, &e.comm, ret) {
        return;
    }
    let size = core::mem::size_of::<ExecEvent>() + in_args_space(buf.len as usize);
    // PerfMap<T> is a bpf_map_def underneath (repr(transparent)).
    bpf_perf_event_output(
        ctx as *mut c_void,
        events as *mut PerfMap<ExecEvent> as *mut c_void,
        #[allow(clippy::unnecessary_cast)] // u32 in some kernels' bindings
        {
            BPF_F_CURRENT_CPU as u64
        },
        e as *const ExecEvent as *const c_void,
        size as u64,
    );
}

/// The `sched:sched_process_fork` tracepoint record, as 32-bit words. Its layout changed:
/// older kernels inline both comms (`char parent_comm[16]` at 8, `parent_pid` at 24,
/// `child_comm[16]` at 28, `child_pid` at 44); newer ones (6.18 here) give them as
/// `__data_loc` words (`parent_comm` at 8, `parent_pid` at 12, `child_comm` at 16,
/// `child_pid` at 20, the strings after the 24 fixed bytes).
#[repr(C)]
pub struct SchedProcessFork {
    pub words: [u32; 12],
}

/// The child's pid in a fork record, telling the two layouts apart by where the forking
/// thread's own id (`parent_pid`) sits.
#[inline(always)]
fn fork_child(args: *const SchedProcessFork, tid: u32) -> Option<u32> {
    // Read through bpf_probe_read, not directly: a direct read past the record's fixed
    // part (24 bytes on new kernels) makes attaching fail with EACCES.
    // SAFETY: bpf_probe_read checks the address; a failed read gives 0.
    let w = |i: usize| unsafe { bpf_probe_read(&(*args).words[i] as *const u32) }.unwrap_or(0);
    if w(2) & 0xffff == 24 && w(3) == tid {
        Some(w(5))
    } else if w(6) == tid {
        Some(w(11))
    } else {
        None
    }
}

/// At a fork: remembers the child's parent process (the current one's tgid; the record's
/// `parent_pid` is the forking thread).
#[inline(always)]
pub fn fork(args: *const SchedProcessFork, parents: &mut LruHashMap<u32, u32>) {
    let pid_tgid = bpf_get_current_pid_tgid();
    if let Some(child) = fork_child(args, pid_tgid as u32) {
        parents.set(&child, &((pid_tgid >> 32) as u32));
    }
}

/// The `syscalls:sys_exit_*` tracepoint record.
#[repr(C)]
pub struct SysExit {
    pub common: u64,
    pub syscall_nr: i32,
    pub pad: u32,
    pub ret: i64,
}
