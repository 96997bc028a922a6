#![no_std]
#![no_main]
use redbpf_macros::map;
use redbpf_probes::tc::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map(link_section = "maps")]
static mut BLOCKED: TcHashMap<u16, u8> = TcHashMap::<u16, u8>::with_max_entries(1024, TcMapPinning::GlobalNamespace);

#[tc_action]
fn block_ports(skb: SkBuff) -> TcActionResult {
    let port = skb.load::<u16>(14 + 20 + 2)?;
    if unsafe { BLOCKED.get(&port) }.is_some() {
        return Ok(TcAction::Shot);
    }
    Ok(TcAction::Ok)
}
