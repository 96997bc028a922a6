//! execve records: the goebpf/Dropbox execsnoop layout. A fixed header, then argv as
//! NUL-separated strings appended after it (the `argv` flexible member).

use redbpf_probes::kprobe::prelude::*;

/// Arguments copied per exec (argv[0..ARGS_MAX]).
pub const ARGS_MAX: usize = 20;
/// Longest single argument copied (longer ones are cut, NUL-terminated).
pub const ARG_LEN: usize = 128;
/// argv bytes are written at offsets below this; a power of two, used as a mask so that
/// even 4.x verifiers can bound every write.
const ARGS_SPACE: usize = 2048;

#[repr(C)]
pub struct ExecEvent {
    pub ktime_ns: u64,
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Number of argv entries that follow.
    pub argc: u32,
    pub comm: [u8; 16],
    pub filename: [u8; 256],
    /// argv[0..argc], each NUL-terminated, follows the header in the record.
    pub argv: [u8; 0],
}

/// Per-CPU scratch space: too big for the 512-byte BPF stack.
#[repr(C)]
pub struct ExecBuf {
    pub event: ExecEvent,
    pub args: [u8; ARGS_SPACE + ARG_LEN],
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

/// Fills the per-CPU buffer with one exec and sends header + argv through `events`.
#[inline(always)]
pub fn emit_exec<C>(
    ctx: *mut C,
    buf: &mut ExecBuf,
    events: &mut PerfMap<ExecEvent>,
    filename: *const u8,
    argv: *const *const u8,
) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let e = &mut buf.event;
    e.ktime_ns = bpf_ktime_get_ns();
    e.pid = (pid_tgid >> 32) as u32;
    e.uid = uid_gid as u32;
    e.gid = (uid_gid >> 32) as u32;
    // SAFETY: `comm` is 16 bytes, as passed.
    unsafe { gen::bpf_get_current_comm(e.comm.as_mut_ptr() as *mut c_void, 16) };
    read_str(e.filename.as_mut_ptr(), e.filename.len(), filename);
    let mut off = 0usize;
    let mut argc = 0u32;
    macro_rules! arg {
        ($($i:literal)*) => {$(
            // SAFETY: reading the user's argv array through bpf_probe_read.
            let p: *const u8 = unsafe { bpf_probe_read(argv.add($i)) }.unwrap_or(core::ptr::null());
            if p.is_null() || off >= ARGS_SPACE {
                return send(ctx, buf, events, off, argc);
            }
            let n = read_str(buf.args.as_mut_ptr().wrapping_add(in_args_space(off)), ARG_LEN, p);
            if n <= 0 {
                return send(ctx, buf, events, off, argc);
            }
            off += n as usize;
            argc += 1;
        )*};
    }
    arg!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19);
    send(ctx, buf, events, off, argc)
}

#[inline(always)]
fn send<C>(ctx: *mut C, buf: &mut ExecBuf, events: &mut PerfMap<ExecEvent>, off: usize, argc: u32) {
    buf.event.argc = argc;
    let size = core::mem::size_of::<ExecEvent>() + in_args_space(off);
    // PerfMap<T> is a bpf_map_def underneath (repr(transparent)).
    bpf_perf_event_output(
        ctx as *mut c_void,
        events as *mut PerfMap<ExecEvent> as *mut c_void,
        BPF_F_CURRENT_CPU as u64,
        buf as *const ExecBuf as *const c_void,
        size as u64,
    );
}
