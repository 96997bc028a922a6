//! `kprobe/SYM`, `kretprobe/SYM`. Kernel >= 4.1. Two ways to attach, chosen by
//! [`crate::legacy`]: the perf kprobe PMU (4.17+, through aya), or a tracefs
//! `kprobe_events` entry (every kernel; legacy mode and kernels without the PMU).
//! A syscall written `sys_NAME` is resolved against /proc/kallsyms first.

use std::os::fd::AsFd;

use aya::programs::{KProbe, ProbeKind};

use super::{load_error, AttachError, Attached, Context};
use crate::kernel;
use crate::legacy::KprobeMode;
use crate::sys::probe_event;

/// Loads and attaches a kprobe/kretprobe.
pub fn attach(p: &mut KProbe, symbol: &str, ctx: &mut Context) -> Result<Attached, AttachError> {
    p.load().map_err(load_error)?;
    let tracefs = ctx.tracefs()?;
    if ctx.kprobes == KprobeMode::Events && !tracefs.join("kprobe_events").exists() {
        return Err(no_kprobes());
    }
    let resolved = kernel::resolve_kprobe_symbol(symbol, ctx.kallsyms())?;
    if ctx.kprobes == KprobeMode::Events {
        let prog = p.fd().map_err(|e| AttachError::attach(&resolved, e))?;
        let index = ctx.probe_events;
        ctx.probe_events += 1;
        let retprobe = matches!(p.kind(), ProbeKind::Return);
        let event = probe_event::attach_kprobe(&tracefs, prog.as_fd(), retprobe, &resolved, index)?;
        let mut att = Attached::to(resolved);
        att.probe_event = Some(event);
        return Ok(att);
    }
    p.attach(&resolved, 0).map_err(|e| {
        if !kernel::has_kprobe_pmu() && !tracefs.join("kprobe_events").exists() {
            no_kprobes()
        } else {
            AttachError::attach(&resolved, e)
        }
    })?;
    Ok(Attached::to(resolved))
}

fn no_kprobes() -> AttachError {
    AttachError::Kernel(kernel::KernelError::NoKprobes(kernel::release()))
}
