//! `xdp`, `xdp/NAME` on `--iface`. Kernel >= 4.8 (generic/SKB mode 4.12). Tries the
//! kernel's default mode, then SKB (generic) mode, which every driver supports.

use aya::programs::{Xdp, XdpMode};

use super::{load_error, AttachError, Attached, Context};

/// Loads and attaches an XDP program to `--iface`.
pub fn attach(p: &mut Xdp, ctx: &mut Context) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let iface = ctx.iface.clone().ok_or(AttachError::NeedIface)?;
    if let Err(first) = p.attach(&iface, XdpMode::Default) {
        p.attach(&iface, XdpMode::Skb).map_err(|e| {
            AttachError::attach(
                &iface,
                if first.to_string() == e.to_string() {
                    e
                } else {
                    first
                },
            )
        })?;
    }
    Ok(Attached::to(iface))
}
