//! Counts packets by protocol in an Array and hands TCP ones to user space.
#![no_std]
#![no_main]
use redbpf_probes::socket_filter::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut PROTOCOLS: Array<u64> = Array::with_max_entries(256);

#[socket_filter]
fn by_protocol(skb: SkBuff) -> SkBuffResult {
    // Ethernet (14 bytes), then the IPv4 protocol byte at offset 9.
    let protocol: u8 = skb.load(14 + 9)?;
    unsafe {
        if let Some(n) = PROTOCOLS.get_mut(protocol as u32) {
            *n += 1;
        }
    }
    if protocol == 6 {
        Ok(SkBuffAction::SendToUserspace)
    } else {
        Ok(SkBuffAction::Ignore)
    }
}
