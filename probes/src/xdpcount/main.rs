//! XDP packet and byte counters per IP protocol (index = IP protocol number; 256 = not IPv4).
#![no_std]
#![no_main]
#![allow(static_mut_refs)]
use probes::net::Counter;
use redbpf_probes::maps::PerCpuArray;
use redbpf_probes::xdp::prelude::*;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut PROTOCOLS: PerCpuArray<Counter> = PerCpuArray::with_max_entries(257);

#[xdp]
fn count(ctx: XdpContext) -> XdpResult {
    let proto = match ctx.ip() {
        // SAFETY: ip() checked the header against the packet bounds.
        Ok(ip) => u32::from(unsafe { (*ip).protocol }),
        Err(_) => 256,
    };
    // SAFETY: per-CPU values, no concurrent writer.
    if let Some(c) = unsafe { PROTOCOLS.get_mut(proto) } {
        c.packets += 1;
        c.bytes += ctx.len() as u64;
    }
    Ok(XdpAction::Pass)
}
