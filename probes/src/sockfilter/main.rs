//! Socket filter passing only ICMP and UDP to its socket, counting what it sees per
//! IP protocol on the way.
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use redbpf_probes::socket_filter::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut SEEN: Array<u64> = Array::with_max_entries(256);

/// Ethernet header length, then the protocol byte of the IPv4 header.
const IP_PROTOCOL: usize = 14 + 9;
const ETH_TYPE: usize = 12;

#[socket_filter]
fn icmp_udp(skb: SkBuff) -> SkBuffResult {
    if skb.load::<u16>(ETH_TYPE)? != 0x0800 {
        return Ok(SkBuffAction::Ignore);
    }
    let proto = skb.load::<u8>(IP_PROTOCOL)?;
    // SAFETY: maps are shared with the kernel; the counter is bumped atomically enough
    // for statistics.
    if let Some(n) = unsafe { SEEN.get_mut(proto as u32) } {
        *n += 1;
    }
    match proto {
        1 | 17 => Ok(SkBuffAction::SendToUserspace),
        _ => Ok(SkBuffAction::Ignore),
    }
}
