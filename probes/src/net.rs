//! Network records.

/// One IPv4 TCP connect, as reported by `tcpconnect`.
#[repr(C)]
pub struct ConnectEvent {
    pub pid: u32,
    pub uid: u32,
    /// Addresses and ports in network byte order, as the kernel keeps them.
    pub saddr: u32,
    pub daddr: u32,
    pub dport: u16,
    pub sport: u16,
    /// Return value of tcp_v4_connect (0 or -errno).
    pub ret: i32,
    pub comm: [u8; 16],
}

/// Packets and bytes per IP protocol, as counted by `xdpcount`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Counter {
    pub packets: u64,
    pub bytes: u64,
}
