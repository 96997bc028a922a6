//! `uprobe/SYMBOL` (+ `--uprobe-target`), `uprobe//path/bin:SYMBOL`, and the `uretprobe`
//! forms. Kernel >= 4.3 (aya uses the uprobe PMU from 4.17, tracefs `uprobe_events` before).

use std::num::NonZeroU32;

use aya::programs::uprobe::UProbeScope;
use aya::programs::UProbe;

use super::{load_error, AttachError, Attached, Context};

/// Loads and attaches a uprobe/uretprobe.
pub fn attach(
    p: &mut UProbe,
    target: Option<&str>,
    symbol: &str,
    ctx: &mut Context,
) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let target = target
        .map(str::to_owned)
        .or_else(|| ctx.uprobe_target.clone())
        .ok_or(AttachError::NeedUprobeTarget)?;
    let scope = match ctx.uprobe_pid.and_then(NonZeroU32::new) {
        Some(pid) => UProbeScope::OneProcess(pid),
        None => UProbeScope::AllProcesses,
    };
    let what = format!("{target}:{symbol}");
    p.attach(symbol, &target, scope)
        .map_err(|e| AttachError::attach(&what, e))?;
    Ok(Attached::to(what))
}
