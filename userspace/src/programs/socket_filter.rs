//! `socketfilter/NAME`, `socket`: the filter runs on a raw `AF_PACKET` socket bound to
//! `--iface`; the loader counts the packets it lets through. Kernel >= 3.19.

use aya::programs::SocketFilter;

use super::{load_error, AttachError, Attached, Context};
use crate::sys;

/// Loads the filter, opens the packet socket and attaches the filter to it.
pub fn attach(p: &mut SocketFilter, ctx: &mut Context) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let (iface, index) = ctx.iface()?;
    let socket = sys::packet_socket(index)?;
    p.attach(&socket)
        .map_err(|e| AttachError::attach(&iface, e))?;
    let mut att = Attached::to(iface);
    att.socket = Some(socket);
    Ok(att)
}
