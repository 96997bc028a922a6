//! Counts IPv4 packets per (source, destination) address pair.
#![no_std]
#![no_main]
use redbpf_probes::xdp::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Pair {
    pub saddr: u32,
    pub daddr: u32,
}

#[map]
static mut PAIRS: HashMap<Pair, u64> = HashMap::with_max_entries(1024);

#[xdp]
fn addrs(ctx: XdpContext) -> XdpResult {
    let ip = unsafe { *ctx.ip()? };
    let pair = Pair {
        saddr: ip.saddr,
        daddr: ip.daddr,
    };
    unsafe {
        let n = PAIRS.get(&pair).copied().unwrap_or(0);
        PAIRS.set(&pair, &(n + 1));
    }
    Ok(XdpAction::Pass)
}
