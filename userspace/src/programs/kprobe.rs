//! `kprobe/SYM`, `kretprobe/SYM`. Kernel >= 4.1; the perf kprobe PMU from 4.17 (aya uses
//! tracefs `kprobe_events` before that and removes the events it created on detach).
//! A syscall written `sys_NAME` is resolved against /proc/kallsyms first.

use aya::programs::KProbe;

use super::{load_error, AttachError, Attached, Context};
use crate::kernel;

/// Loads and attaches a kprobe/kretprobe.
pub fn attach(p: &mut KProbe, symbol: &str, ctx: &mut Context) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let resolved = kernel::resolve_kprobe_symbol(symbol, ctx.kallsyms())?;
    // aya needs tracefs for the legacy path; make sure it is mounted.
    ctx.tracefs()?;
    p.attach(&resolved, 0).map_err(|e| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let pmu = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
        let events = ctx
            .tracefs()
            .map(|t| t.join("kprobe_events").exists())
            .unwrap_or(false);
        match kernel::parse_release(release.trim()) {
            Some(v) if !pmu && !events => AttachError::Kernel(kernel::KernelError::NoKprobes(
                format!("{}.{}.{}", v.0, v.1, v.2),
            )),
            _ => AttachError::attach(&resolved, e),
        }
    })?;
    Ok(Attached::to(resolved))
}
