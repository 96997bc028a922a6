//! Sending records to a perf event array, and filling them, on every kernel since 4.4.

use redbpf_probes::kprobe::prelude::*;

/// Sends `record` to `map` at the slot of the CPU it runs on, which the loader opens a
/// buffer for. redbpf's `PerfMap::insert` passes `BPF_F_CURRENT_CPU` instead, which
/// kernels before 4.8 take as slot 0xffffffff and drop (`-E2BIG`): seen on Ubuntu's 4.4,
/// where tcpconnect attached and reported nothing.
#[inline(always)]
pub fn output<C, T>(ctx: *mut C, map: &mut PerfMap<T>, record: &T) {
    let cpu = bpf_get_smp_processor_id();
    // SAFETY: PerfMap<T> is a bpf_map_def underneath (repr(transparent)); `record` is a
    // whole `T` the kernel copies out.
    unsafe {
        gen::bpf_perf_event_output(
            ctx as *mut c_void,
            map as *mut PerfMap<T> as *mut c_void,
            u64::from(cpu),
            record as *const T as *mut c_void,
            core::mem::size_of::<T>() as u64,
        )
    };
}

/// The task's comm, into a zeroed buffer: before 4.6 the verifier refuses a helper writing
/// to uninitialised stack ("invalid indirect read from stack", seen on Ubuntu's 4.4),
/// which redbpf's `bpf_get_current_comm` hands it.
#[inline(always)]
pub fn current_comm() -> [u8; 16] {
    let mut c = [0u8; 16];
    // SAFETY: `c` is 16 bytes, as passed.
    unsafe { gen::bpf_get_current_comm(c.as_mut_ptr() as *mut c_void, 16) };
    c
}
