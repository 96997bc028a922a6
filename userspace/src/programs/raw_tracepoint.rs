//! `raw_tracepoint/NAME`. Kernel >= 4.17.

use aya::programs::RawTracePoint;

use super::{load_error, AttachError, Attached};

/// Loads and attaches a raw tracepoint program.
pub fn attach(p: &mut RawTracePoint, name: &str) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    p.attach(name).map_err(|e| AttachError::attach(name, e))?;
    Ok(Attached::to(name))
}
