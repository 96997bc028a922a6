#![no_std]
#![no_main]
use core::ptr;
use memoffset::offset_of;
use redbpf_probes::sockmap::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map(link_section = "maps/echo_sockmap")]
static mut SOCKMAP: SockMap = SockMap::with_max_entries(1024);

#[stream_parser]
fn parse(skb: SkBuff) -> StreamParserResult {
    let len: u32 = unsafe {
        let addr = (skb.skb as usize + offset_of!(__sk_buff, len)) as *const u32;
        ptr::read(addr)
    };
    Ok(StreamParserAction::MessageLength(len))
}

#[stream_verdict]
fn verdict(skb: SkBuff) -> SkAction {
    match unsafe { SOCKMAP.redirect(skb.skb as *mut _, 0) } {
        Ok(_) => SkAction::Pass,
        Err(_) => SkAction::Drop,
    }
}
