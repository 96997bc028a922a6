//! Before any object: what the running kernel is and offers, the legacy paths it needs,
//! RLIMIT_MEMLOCK, kprobe events that killed loaders left behind, and the run lock. All
//! reported in one `kernel` line.

use std::path::Path;

use crate::cli::Cli;
use crate::kernel;
use crate::legacy::{self, KprobeMode, Mode};
use crate::message::{KernelLine, Message};
use crate::stream::State;
use crate::sys;
use crate::sys::probe_event;
use crate::sys::run_lock::{self, RunLock};

/// What [`kernel`] decided.
pub(crate) struct KernelSetup {
    /// Legacy paths.
    pub(crate) mode: Mode,
    /// LINUX_VERSION_CODE for kprobe programs.
    pub(crate) kern_version: u32,
    /// Held until the end, after every kprobe event is removed.
    pub(crate) run_lock: Option<RunLock>,
}

/// Reads the kernel's version and features, decides the legacy paths, raises
/// RLIMIT_MEMLOCK where maps are charged to it, removes kprobe events that killed loaders
/// left behind, takes this loader's run lock when it will create kprobe events itself, and
/// reports all of it in one `kernel` line.
pub(crate) fn kernel(cli: &Cli, st: &mut State) -> KernelSetup {
    let version = kernel::running_version();
    let facts = legacy::Facts {
        version,
        kprobe_pmu: kernel::has_kprobe_pmu(),
    };
    let mode = legacy::decide(facts, cli.legacy);
    let memlock = if mode.raise_memlock {
        match sys::raise_memlock() {
            Ok(sys::Memlock::Unlimited) => "raised".to_owned(),
            Ok(sys::Memlock::HardLimit(bytes)) => {
                crate::say!(
                    "loader: warning: RLIMIT_MEMLOCK raised only to its hard limit, {bytes} bytes (no CAP_SYS_RESOURCE); large maps may fail on this kernel"
                );
                format!("raised to hard limit {bytes}")
            }
            Err(e) => {
                let e = crate::error_chain(&e);
                crate::say!("loader: warning: {e}; map creation may fail on this kernel");
                e
            }
        }
    } else {
        "unchanged".to_owned()
    };
    let locks = Path::new(run_lock::DIR);
    let run_lock = match mode.kprobes {
        KprobeMode::Events => match run_lock::claim(locks) {
            Ok(l) => Some(l),
            Err(e) => {
                crate::say!(
                    "loader: warning: cannot take the run lock in {}: {e} (other loaders keep this one's kprobe events while its pid runs)",
                    locks.display()
                );
                None
            }
        },
        KprobeMode::Pmu => None,
    };
    let mut leftovers = 0;
    if let Ok(tracefs) = kernel::tracefs() {
        for ev in probe_event::remove_leftovers(&tracefs, locks) {
            crate::say!(
                "loader: removed kprobe event {} left by process {} (that loader is gone)",
                ev.id,
                ev.pid
            );
            leftovers += 1;
        }
    }
    // After the events: a free lock file is what tells a reused pid's events are stale.
    run_lock::remove_stale(locks);
    let v = version.unwrap_or((0, 0, 0));
    // The vDSO's note is the kernel's own LINUX_VERSION_CODE; the stable series' rule
    // applied to the version strings is the fallback where there is no vDSO.
    let code = kernel::running_version_code().unwrap_or_else(|| kernel::version_code(v));
    let release = kernel::release();
    // The mode says how kprobes would be made; the line says whether they can be at all.
    let mut reason = mode.reason.clone();
    let kprobes = match mode.kprobes {
        KprobeMode::Events if !kernel::has_kprobe_events() => {
            reason = "no kprobe PMU and no kprobe_events: kprobes cannot attach here".to_owned();
            "none".to_owned()
        }
        other => other.to_string(),
    };
    let line = KernelLine {
        release: &release,
        version: &format!("{}.{}.{}", v.0, v.1, v.2),
        version_code: code,
        legacy: mode.legacy,
        kprobes: &kprobes,
        btf: mode.btf,
        memlock: &memlock,
        leftovers,
        reason: &reason,
    };
    let r = st.sink.message(&Message::Kernel(&line));
    st.check(r);
    KernelSetup {
        mode,
        kern_version: code,
        run_lock,
    }
}

/// Deletes what is left of this process's kprobe/uprobe events once every program is
/// detached: aya's tracefs uprobes (< 4.17) are not always removed by aya itself.
pub(crate) fn remove_own_probe_events() {
    // Only where tracefs is mounted already: nothing can have been created otherwise.
    let Some(tracefs) = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("events").is_dir())
    else {
        return;
    };
    for ev in probe_event::remove_leftovers(tracefs, Path::new(run_lock::DIR)) {
        crate::say!("loader: removed probe event {} at exit", ev.id);
    }
}
