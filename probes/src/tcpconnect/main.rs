//! tcpconnect: IPv4 TCP connects with pid, comm, addresses, ports and the result, from a
//! kprobe + kretprobe pair on tcp_v4_connect.
//!
//! Without BTF relocations the `struct sock` fields are read at the offsets of the start
//! of `struct sock_common`, unchanged since Linux 3.x: skc_daddr 0, skc_rcv_saddr 4,
//! skc_dport 12, skc_num 14.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::net::ConnectEvent;
use redbpf_probes::kprobe::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EVENTS: PerfMap<ConnectEvent> = PerfMap::with_max_entries(1024);

/// Reads a `T` at `sk + offset`, 0 on failure. The destination is zeroed first: before
/// 4.6 the verifier refuses a helper writing to uninitialised stack ("invalid indirect read
/// from stack", seen on Ubuntu's 4.4), which redbpf's `bpf_probe_read` hands it.
#[inline(always)]
fn read<T: Copy + Default>(sk: u64, offset: u64) -> T {
    let mut v = T::default();
    // SAFETY: bpf_probe_read checks the kernel address and writes at most size_of::<T>().
    unsafe {
        gen::bpf_probe_read(
            &mut v as *mut T as *mut c_void,
            core::mem::size_of::<T>() as u32,
            (sk + offset) as *const c_void,
        )
    };
    v
}

/// `parms` are tcp_v4_connect's arguments (sk, uaddr, addr_len), saved at entry.
#[kretprobe("tcp_v4_connect")]
fn tcp_v4_connect(regs: Registers, parms: [u64; 5]) {
    let sk = parms[0];
    let pid_tgid = bpf_get_current_pid_tgid();
    let event = ConnectEvent {
        pid: (pid_tgid >> 32) as u32,
        uid: bpf_get_current_uid_gid() as u32,
        daddr: read(sk, 0),
        saddr: read(sk, 4),
        dport: u16::from_be(read(sk, 12)),
        sport: read(sk, 14),
        ret: regs.rc() as i32,
        comm: probes::perf::current_comm(),
    };
    // SAFETY: maps are shared with the kernel, which serialises updates.
    probes::perf::output(regs.ctx, unsafe { &mut EVENTS }, &event);
}
