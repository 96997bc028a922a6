//! Legacy mode: the code paths a 4.x kernel needs, chosen from the running kernel's version
//! and feature probes (or forced with `--legacy` to exercise them on a newer kernel).
//!
//! | what                          | modern               | legacy                          |
//! |-------------------------------|----------------------|---------------------------------|
//! | kprobes / kretprobes          | perf kprobe PMU      | tracefs `kprobe_events` (< 4.17, or no PMU) |
//! | object BTF                    | loaded for `.maps`   | never loaded (BTF-defined maps refused)    |
//! | RLIMIT_MEMLOCK                | left alone (memcg)   | raised to infinity (< 5.11)     |
//! | `kern_version` of kprobes     | ignored by the kernel| LINUX_VERSION_CODE (checked < 5.0) |
//!
//! Program and map names (4.15) and the version the kernel expects are handled at load time
//! by aya's feature probes and by the `version` section we write (see `run`).
//!
//! Everything here is pure; the kprobe_events writes live in `sys::probe_event`.

use std::fmt;

/// How kprobes are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KprobeMode {
    /// `perf_event_open` on the kprobe PMU (kernel >= 4.17).
    #[default]
    Pmu,
    /// A tracefs `kprobe_events` entry plus a tracepoint perf event (every kernel).
    Events,
}

impl fmt::Display for KprobeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KprobeMode::Pmu => "perf_pmu",
            KprobeMode::Events => "kprobe_events",
        })
    }
}

/// What was found out about the running kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// Real upstream version (distribution strings taken into account), if known.
    pub version: Option<(u32, u32, u32)>,
    /// `/sys/bus/event_source/devices/kprobe` exists.
    pub kprobe_pmu: bool,
}

/// The decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode {
    /// The 4.x code paths are in use.
    pub legacy: bool,
    /// ... because `--legacy` asked for them.
    pub forced: bool,
    /// How kprobes are created.
    pub kprobes: KprobeMode,
    /// Whether object BTF may be loaded (only ever needed for BTF-defined maps).
    pub btf: bool,
    /// Whether RLIMIT_MEMLOCK must be raised before creating maps.
    pub raise_memlock: bool,
    /// Why, for the `kernel` line.
    pub reason: String,
}

const PMU_SINCE: (u32, u32, u32) = (4, 17, 0);
const MEMCG_ACCOUNTING_SINCE: (u32, u32, u32) = (5, 11, 0);

/// Decides the mode. An unknown version counts as old: every legacy path also works on a
/// new kernel, not the other way round.
pub fn decide(facts: Facts, forced: bool) -> Mode {
    let old = facts.version.is_none_or(|v| v < PMU_SINCE);
    let legacy = forced || old;
    let mut why = Vec::new();
    if forced {
        why.push("--legacy".to_owned());
    }
    match facts.version {
        Some(v) if v < PMU_SINCE => why.push(format!("kernel {}.{} < 4.17", v.0, v.1)),
        None => why.push("kernel version unknown".to_owned()),
        Some(_) => {}
    }
    let kprobes = if legacy || !facts.kprobe_pmu {
        if !legacy {
            why.push("no kprobe PMU: kprobes through kprobe_events".to_owned());
        }
        KprobeMode::Events
    } else {
        KprobeMode::Pmu
    };
    Mode {
        legacy,
        forced,
        kprobes,
        btf: !legacy,
        raise_memlock: legacy || facts.version.is_none_or(|v| v < MEMCG_ACCOUNTING_SINCE),
        reason: why.join("; "),
    }
}

/// The tracefs group our kprobe events are created in.
pub const EVENT_GROUP: &str = "redbpf_loader";
/// tracefs refuses event names longer than this (MAX_EVENT_NAME_LEN - 1).
const EVENT_NAME_MAX: usize = 63;

/// The event name for the `index`-th probe of process `pid` on `symbol`:
/// `p1234_0_do_sys_open` (`r` for return probes). Only `[A-Za-z0-9_]` survive.
pub fn event_name(pid: u32, index: usize, retprobe: bool, symbol: &str) -> String {
    let mut name = format!("{}{pid}_{index}_", if retprobe { 'r' } else { 'p' });
    for c in symbol.chars() {
        if name.len() >= EVENT_NAME_MAX {
            break;
        }
        name.push(if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        });
    }
    name
}

/// A kprobe event in `kprobe_events` made by a loader (ours or aya's legacy path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftoverEvent {
    /// `group/event`, as `-:` wants it.
    pub id: String,
    /// The process that created it.
    pub pid: u32,
    /// In our group (its creator held a run lock), not aya's.
    pub ours: bool,
}

/// The run lock (`sys::run_lock`) of the process that created an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Locked: that loader is running.
    Held,
    /// The file is there and nobody holds it: that loader died (its pid may live on in
    /// another process).
    Free,
    /// No file: that process never took one.
    Missing,
}

/// Whether `ev` is a dead loader's and should be removed, given whether its pid is
/// running now and the state of that pid's run lock. Called before this loader (pid `me`)
/// creates any event, so one carrying `me` is a dead loader's whose pid came round to us.
/// When in doubt, an event stays: a stale one costs a little overhead, removing a live one
/// breaks someone's tracing.
pub fn is_leftover(ev: &LeftoverEvent, me: u32, pid_running: bool, lock: LockState) -> bool {
    if ev.pid == me {
        return true;
    }
    if !pid_running {
        return true;
    }
    // A running pid: ours are judged by the lock (a free one means the pid was reused after
    // a kill -9); another aya program's events cannot be judged and are never touched.
    ev.ours && lock == LockState::Free
}

/// Our events (group [`EVENT_GROUP`]) and aya's (`kprobes/aya_<pid>_...`, and
/// `uprobes/aya_<pid>_...` for uprobes below 4.17) listed in the text of `kprobe_events` or
/// `uprobe_events` (`p:group/event target` per line), with the pid that made each.
pub fn loader_events(kprobe_events: &str) -> Vec<LeftoverEvent> {
    kprobe_events
        .lines()
        .filter_map(|line| {
            let def = line.split_whitespace().next()?;
            let (_, id) = def.split_once(':')?;
            let (group, event) = id.split_once('/')?;
            let ours = group == EVENT_GROUP;
            let pid = if ours {
                event.get(1..)?.split('_').next()?.parse().ok()?
            } else if group == "kprobes" || group == "uprobes" {
                event
                    .strip_prefix("aya_")?
                    .split('_')
                    .next()?
                    .parse()
                    .ok()?
            } else {
                return None;
            };
            Some(LeftoverEvent {
                id: id.to_owned(),
                pid,
                ours,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(v: (u32, u32, u32), pmu: bool) -> Facts {
        Facts {
            version: Some(v),
            kprobe_pmu: pmu,
        }
    }

    #[test]
    fn new_kernels_use_the_pmu_and_old_ones_kprobe_events() {
        let m = decide(facts((6, 1, 192), true), false);
        assert!(!m.legacy && m.btf && !m.raise_memlock);
        assert_eq!(m.kprobes, KprobeMode::Pmu);

        let m = decide(facts((4, 14, 336), false), false);
        assert!(m.legacy && !m.btf && m.raise_memlock && !m.forced);
        assert_eq!(m.kprobes, KprobeMode::Events);
        assert!(m.reason.contains("4.14 < 4.17"), "{}", m.reason);

        let m = decide(facts((5, 10, 251), true), false);
        assert!(
            !m.legacy && m.raise_memlock,
            "memcg accounting came in 5.11"
        );
    }

    #[test]
    fn forced_and_fallback() {
        let m = decide(facts((6, 1, 0), true), true);
        assert!(m.legacy && m.forced && !m.btf);
        assert_eq!(m.kprobes, KprobeMode::Events);
        assert_eq!(m.reason, "--legacy");

        // A new kernel without the PMU keeps its modern paths but falls back for kprobes.
        let m = decide(facts((6, 18, 44), false), false);
        assert!(!m.legacy && m.btf);
        assert_eq!(m.kprobes, KprobeMode::Events);
        assert!(m.reason.contains("no kprobe PMU"), "{}", m.reason);

        let unknown = Facts {
            version: None,
            kprobe_pmu: true,
        };
        assert!(decide(unknown, false).legacy);
    }

    #[test]
    fn event_names_are_identifiers_and_short() {
        assert_eq!(event_name(42, 0, false, "do_sys_open"), "p42_0_do_sys_open");
        assert_eq!(
            event_name(42, 3, true, "tcp_v4_connect.cold"),
            "r42_3_tcp_v4_connect_cold"
        );
        let long = event_name(4_000_000, 12, false, &"x".repeat(200));
        assert_eq!(long.len(), 63);
    }

    #[test]
    fn leftovers_are_ours_and_ayas_only() {
        let text = "p:redbpf_loader/p77_0___x64_sys_execve __x64_sys_execve\n\
                    r:redbpf_loader/r77_1_tcp_v4_connect tcp_v4_connect\n\
                    p:kprobes/aya_900_p_do_sys_open_0x0_0 do_sys_open\n\
                    p:uprobes/aya_901_p__bin_ufunc_0x4f0_1 /bin/ufunc:0x00000000000004f0\n\
                    p:kprobes/myprobe vfs_read\n\
                    p:other/p12_0_x x\n\
                    garbage\n";
        let got = loader_events(text);
        assert_eq!(
            got,
            vec![
                LeftoverEvent {
                    id: "redbpf_loader/p77_0___x64_sys_execve".into(),
                    pid: 77,
                    ours: true,
                },
                LeftoverEvent {
                    id: "redbpf_loader/r77_1_tcp_v4_connect".into(),
                    pid: 77,
                    ours: true,
                },
                LeftoverEvent {
                    id: "kprobes/aya_900_p_do_sys_open_0x0_0".into(),
                    pid: 900,
                    ours: false,
                },
                LeftoverEvent {
                    id: "uprobes/aya_901_p__bin_ufunc_0x4f0_1".into(),
                    pid: 901,
                    ours: false,
                },
            ]
        );
        assert!(loader_events("").is_empty());
    }

    #[test]
    fn only_dead_loaders_events_are_leftovers() {
        let ours = |pid| LeftoverEvent {
            id: format!("redbpf_loader/p{pid}_0_f"),
            pid,
            ours: true,
        };
        let aya = LeftoverEvent {
            id: "kprobes/aya_9_p_f_0x0_0".into(),
            pid: 9,
            ours: false,
        };
        use LockState::*;
        // Carrying our pid before we made any: a dead loader's, whatever the lock says.
        assert!(is_leftover(&ours(5), 5, true, Held));
        // The creator is gone: removed, ours or aya's.
        assert!(is_leftover(&ours(7), 5, false, Missing));
        assert!(is_leftover(&aya, 5, false, Missing));
        // Its pid runs: a held lock is a live loader, whatever its name.
        assert!(!is_leftover(&ours(7), 5, true, Held));
        // A free lock: the loader died and the pid was reused.
        assert!(is_leftover(&ours(7), 5, true, Free));
        // No lock file: cannot tell, keep.
        assert!(!is_leftover(&ours(7), 5, true, Missing));
        // A running aya program's events are never touched.
        assert!(!is_leftover(&aya, 5, true, Free));
    }
}
