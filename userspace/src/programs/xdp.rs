//! `xdp`, `xdp/NAME` on `--iface`. Kernel >= 4.8 (generic/SKB mode 4.12). Tries the
//! kernel's default mode, then SKB (generic) mode, which every driver supports.
//!
//! Below 4.17 (and with `--legacy`) the loader loads and attaches XDP programs itself:
//! aya 0.14 sets `expected_attach_type`, which those kernels refuse with E2BIG or EINVAL
//! and an empty verifier log. The instructions come from [`crate::relocate`] (relocated
//! against the maps aya created), the load from [`sys::prog`] and the attachment from
//! rtnetlink ([`sys::netlink`]), as `ip link set dev X xdp` does.

use std::os::fd::{AsRawFd, OwnedFd};

use aya::programs::{Xdp, XdpMode};

use super::{load_error, AttachError, Attached, Context};
use crate::relocate;
use crate::sys::{self, netlink, prog};

/// An XDP program the loader attached itself; dropping it removes it from the interface.
pub struct XdpLink {
    ifindex: u32,
    flags: u32,
    iface: String,
    _prog: OwnedFd,
}

impl Drop for XdpLink {
    fn drop(&mut self) {
        if let Err(e) = netlink::set_xdp(self.ifindex, -1, self.flags) {
            crate::say!(
                "loader: removing the XDP program from {}: {}",
                self.iface,
                crate::error_chain(&e)
            );
        }
    }
}

/// Loads and attaches an XDP program to `--iface`.
pub fn attach(p: &mut Xdp, name: &str, ctx: &mut Context) -> Result<Attached, AttachError> {
    if ctx.own_xdp_load {
        return attach_own(name, ctx);
    }
    p.load().map_err(load_error)?;
    let (iface, _) = ctx.iface()?;
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

/// Loads program `name` of the current object without aya's `expected_attach_type`.
pub fn load_own(name: &str, ctx: &Context) -> Result<OwnedFd, AttachError> {
    let raw = ctx.raw_object.as_ref().ok_or(AttachError::WrongType)?;
    let code = relocate::program_code(&raw.bytes, name, &raw.map_fds)?;
    prog::prog_load(prog::PROG_TYPE_XDP, &code.insns, &code.license, 0).map_err(|e| {
        if e.log.trim().is_empty() {
            AttachError::RefusedNoLog { io_error: e.source }
        } else {
            AttachError::Verifier {
                io_error: e.source,
                verifier_log: e.log,
            }
        }
    })
}

fn attach_own(name: &str, ctx: &mut Context) -> Result<Attached, AttachError> {
    let (iface, ifindex) = ctx.iface()?;
    let fd = load_own(name, ctx)?;
    let mut last = None;
    for flags in [0, netlink::XDP_FLAGS_SKB_MODE] {
        match netlink::set_xdp(ifindex, fd.as_raw_fd(), flags) {
            Ok(()) => {
                let mut att = Attached::to(iface.clone());
                att.xdp_link = Some(XdpLink {
                    ifindex,
                    flags,
                    iface,
                    _prog: fd,
                });
                return Ok(att);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(AttachError::Sys(last.unwrap_or_else(|| {
        sys::SyscallError {
            call: "RTM_SETLINK IFLA_XDP",
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        }
    })))
}
