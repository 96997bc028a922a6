#![no_std]

/// One record per getppid(2) call: 48 bytes (56 with the kernel's size word and padding).
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Call {
    /// bpf_ktime_get_ns()
    pub ts: u64,
    /// This CPU's call counter after this call (1, 2, ...): gaps show drops.
    pub seq: u64,
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub cpu: u32,
    pub comm: [u8; 16],
}
