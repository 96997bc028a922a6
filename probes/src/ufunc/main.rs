//! A uprobe/uretprobe pair on a user function, `ufunc_target(a, b)` by default: each call's
//! arguments and result. Attach it to any binary with `loader --uprobe-target PATH`.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use redbpf_probes::uprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[repr(C)]
pub struct CallEvent {
    pub pid: u32,
    /// 0 for a call, 1 for a return.
    pub is_return: u32,
    pub arg0: u64,
    pub arg1: u64,
    pub ret: u64,
    pub comm: [u8; 16],
}

#[map]
static mut CALLS: PerfMap<CallEvent> = PerfMap::with_max_entries(1024);

#[inline(always)]
fn send(regs: &Registers, is_return: u32, arg0: u64, arg1: u64, ret: u64) {
    let event = CallEvent {
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        is_return,
        arg0,
        arg1,
        ret,
        comm: probes::perf::current_comm(),
    };
    // SAFETY: maps are shared with the kernel, which serialises updates.
    probes::perf::output(regs.ctx, unsafe { &mut CALLS }, &event);
}

#[uprobe("ufunc_target")]
fn ufunc_enter(regs: Registers) {
    send(&regs, 0, regs.parm1(), regs.parm2(), 0);
}

#[uretprobe("ufunc_target")]
fn ufunc_return(regs: Registers) {
    send(&regs, 1, 0, 0, regs.rc());
}
