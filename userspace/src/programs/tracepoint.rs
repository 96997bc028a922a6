//! `tracepoint/CAT/NAME`, `tracepoint/CAT:NAME`, `tracepoint/NAME`. Kernel >= 4.7.

use aya::programs::TracePoint;

use super::{load_error, AttachError, Attached, Context};
use crate::kernel;

/// Loads and attaches a tracepoint program; a bare name is looked up in tracefs.
pub fn attach(
    p: &mut TracePoint,
    category: Option<&str>,
    name: &str,
    ctx: &mut Context,
) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let tracefs = ctx.tracefs()?;
    let category = match category {
        Some(c) => c.to_owned(),
        None => kernel::find_tracepoint_category(&tracefs, name)?,
    };
    let target = format!("{category}:{name}");
    if !tracefs.join("events").join(&category).join(name).is_dir() {
        return Err(
            kernel::KernelError::NoTracepoint(target, tracefs.display().to_string()).into(),
        );
    }
    p.attach(&category, name)
        .map_err(|e| AttachError::attach(&target, e))?;
    Ok(Attached::to(target))
}
