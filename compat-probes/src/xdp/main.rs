#![no_std]
#![no_main]
use redbpf_probes::maps::HashMap;
use redbpf_probes::xdp::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[repr(C)]
pub struct Packet {
    pub saddr: u32,
    pub len: u32,
}

#[map]
static mut PACKETS: PerfMap<Packet> = PerfMap::with_max_entries(1024);

#[map]
static mut BY_SOURCE: HashMap<u32, u64> = HashMap::with_max_entries(1024);

#[map]
static mut DEVICES: DevMap = DevMap::with_max_entries(8);

#[xdp]
fn inspect(ctx: XdpContext) -> XdpResult {
    // Debian's 5.10/6.1 headers wrap saddr/daddr in an anonymous struct group: key by
    // protocol, which every header version has at the top level.
    let ip = unsafe { *ctx.ip()? };
    let saddr = ip.protocol as u32;
    unsafe {
        match BY_SOURCE.get_mut(&saddr) {
            Some(n) => *n += 1,
            None => BY_SOURCE.set(&saddr, &1),
        }
        // redbpf's capture pattern: the first bytes of the packet ride along with the
        // record (the kernel appends `size` bytes); `payload()` is what follows the
        // 14-byte Ethernet header.
        let len = ctx.len() as u32;
        let size = if len < 64 { len } else { 64 };
        let data = MapData::with_payload(Packet { saddr, len }, 14, size);
        PACKETS.insert(&ctx, &data);
    }
    if let Transport::TCP(_) = ctx.transport()? {
        return Ok(XdpAction::Pass);
    }
    Ok(XdpAction::Pass)
}

#[xdp("redirect")]
fn redirect(_ctx: XdpContext) -> XdpResult {
    match unsafe { DEVICES.redirect(0) } {
        Ok(_) => Ok(XdpAction::Redirect),
        Err(_) => Ok(XdpAction::Pass),
    }
}
