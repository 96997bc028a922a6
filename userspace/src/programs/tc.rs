//! redbpf's `tc_action/NAME` (renamed `classifier` for aya when the object is read): a
//! direct-action classifier on `--iface` ingress. From 6.6 aya attaches it as a TCX link;
//! before, through netlink under a clsact qdisc (4.5+), which is added when the first
//! attempt fails for want of one, and left in place afterwards, as `tc` does.

use aya::programs::tc::{self, SchedClassifier, TcAttachType};

use super::{load_error, AttachError, Attached, Context};

/// Loads and attaches a TC program to `--iface` ingress.
pub fn attach(p: &mut SchedClassifier, ctx: &mut Context) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let (iface, _) = ctx.iface()?;
    if p.attach(&iface, TcAttachType::Ingress).is_err() {
        // No clsact qdisc yet (before 6.6). If adding one fails, the retry says why.
        tc::qdisc_add_clsact(&iface).ok();
        p.attach(&iface, TcAttachType::Ingress)
            .map_err(|e| AttachError::attach(&iface, e))?;
    }
    Ok(Attached::to(format!("{iface} ingress")))
}
