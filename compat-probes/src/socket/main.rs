#![no_std]
#![no_main]
use redbpf_probes::socket_filter::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[socket_filter]
fn tcp_only(skb: SkBuff) -> SkBuffResult {
    let eth_len = 14;
    let eth_proto = skb.load::<u16>(12)? as u32;
    if eth_proto != ETH_P_IP {
        return Ok(SkBuffAction::Ignore);
    }
    let ip_proto = skb.load::<u8>(eth_len + 9)? as u32;
    if ip_proto != IPPROTO_TCP {
        return Ok(SkBuffAction::Ignore);
    }
    Ok(SkBuffAction::SendToUserspace)
}
