//! The scenarios: what runs in the guest (serialised into the initramfs as the plan) and
//! what the host expects of its output.
//!
//! Adding a scenario is one entry in [`catalogue`]: the probe objects it loads, the
//! workload that triggers them and an [`Expect`] the host checks the JSON against.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Where the harness puts things in the guest.
pub const GUEST_DIR: &str = "/vmtests";
pub const GUEST_PLAN: &str = "/vmtests/plan.json";
pub const GUEST_LOADER: &str = "/vmtests/bin/loader";
pub const GUEST_SELF: &str = "/vmtests/bin/vm-tests";
pub const GUEST_OBJECTS: &str = "/vmtests/objects";

/// The programs the exec workload runs, each once per round, with exactly this argv.
/// The paths are busybox applet links made by /init.
pub const EXEC_PROGRAMS: &[ExecProgram] = &[
    ExecProgram {
        path: "/bin/true",
        argv: &["true", "vmtest-exec", "alpha"],
    },
    ExecProgram {
        path: "/bin/echo",
        argv: &["echo", "vmtest-exec", "beta", "gamma"],
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecProgram {
    pub path: &'static str,
    pub argv: &'static [&'static str],
}

/// What the guest runs for one scenario (the plan is a list of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub run: Run,
    pub workload: Workload,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Run {
    /// No loader: the guest driver itself adds a kprobe on the execve syscall through
    /// tracefs `kprobe_events`, runs the workload, reads the hit count and removes it.
    KprobeSelftest,
    /// `loader ARGS...`; the workload runs once `wait_attached` `attached` lines were
    /// seen (none if they are not there after `attach_timeout_secs`), then the loader gets
    /// SIGINT and is killed if it has not exited `stop_timeout_secs` later. Nothing depends
    /// on how fast the guest is: a slow TCG guest only waits longer.
    Loader {
        args: Vec<String>,
        wait_attached: usize,
        attach_timeout_secs: u64,
        stop_timeout_secs: u64,
        /// Run the same loader first and SIGKILL it once attached.
        #[serde(default)]
        kill_first: bool,
        /// Run the same loader, renamed, alongside the checked one (see [`Scenario`]).
        #[serde(default)]
        companion: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// Every [`EXEC_PROGRAMS`] entry `rounds` times.
    Exec { rounds: u32 },
    /// `connects` loopback connections to a listener on 127.0.0.1:`port`.
    TcpConnect { port: u16, connects: u32 },
    /// `calls` calls of the guest driver's own `ufunc_target` (see [`ufunc_args`]).
    Ufunc { calls: u32 },
    /// `calls` getppid(2) calls by the guest driver.
    Getppid { calls: u32 },
}

/// The arguments of the `i`-th ufunc workload call (from 1).
pub fn ufunc_args(i: u64) -> (u64, u64) {
    (i, 1000 + i * 7)
}

/// What `ufunc_target(a, b)` returns.
pub fn ufunc_result(a: u64, b: u64) -> u64 {
    a * 3 + b
}

impl Workload {
    pub fn expected_execs(&self) -> u64 {
        match self {
            Workload::Exec { rounds } => u64::from(*rounds) * EXEC_PROGRAMS.len() as u64,
            Workload::TcpConnect { .. } | Workload::Ufunc { .. } | Workload::Getppid { .. } => 0,
        }
    }
}

/// What the host checks in a scenario's output, beyond the common checks (clean exit, no
/// `error` line, every line JSON, no kprobe_events left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The selftest's `hits` equals the workload's exec count.
    SelftestHits,
    /// A map dump holds exactly the workload's exec count.
    ExecCount,
    /// One event per workload exec, with its filename (and argv when reported).
    ExecSnoop,
    /// One event per loopback connect to the workload's port.
    TcpConnect,
    /// One `printk` line per workload exec with the probe's message (trace_pipe's format
    /// differs per kernel: 4.14, 4.15-4.19 and 4.20+ each have their own).
    Printk(&'static str),
    /// One call and one return event per ufunc workload call, with its arguments and
    /// result.
    Ufunc,
    /// `loader --verify` on every object agrees with `loader check --kernel <this kernel>`
    /// run on the host: each program check calls ok has a `loaded` line, each other one an
    /// `error` line (see `check::Prediction`).
    CheckAgrees,
    /// The kernel cannot run the object's programs: each gets an error line containing
    /// this text, nothing attaches, the loader exits 1.
    Refused(&'static str),
    /// A map counts the workload's packets: the last dump of `map` has, at `key`, a
    /// `field` (any number of the value if None) of at least 3 per loopback connect
    /// (SYN, SYN-ACK, ACK all cross `lo`).
    PacketCount {
        map: &'static str,
        key: u64,
        field: Option<&'static str>,
    },
    /// libbpf-tools' ring-buffer-or-perf object: one typed record per exec through the
    /// ring buffer from 5.8, the perf fallback before (see `c_objects`).
    RingFallback,
    /// BTF maps fed by goebpf- and cilium-style free-form kprobes (see `c_objects`).
    BtfKprobes,
    /// libbpf's, iproute2's and goebpf's legacy map layouts, counted per getppid caller
    /// (see `c_objects`).
    LegacyLayouts,
    /// Kernel stack ids in records, symbolized through the guest's /proc/kallsyms (see
    /// `c_objects`).
    KernelStacks,
}

/// How a scenario probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    KprobeSelftest,
    /// Objects by name, each a list of acceptable names (the first found is used),
    /// looked up as `<objects>/<name>/<name>.elf` or `<objects>/<name>.elf`.
    Loader {
        objects: &'static [&'static [&'static str]],
        legacy: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    pub probe: Probe,
    pub workload: Workload,
    pub expect: Expect,
    /// Programs the loader should report attached.
    pub attached: usize,
    /// A first loader run is killed with SIGKILL once attached (leaving its kprobe_events
    /// entries behind); the checked run must remove them at start.
    pub kill_first: bool,
    /// A companion loader, a copy of the binary under another name, attaches first and
    /// stays attached while the checked loader runs and exits: the checked loader must
    /// leave the companion's kprobe events alone (its run lock, not its name, tells it that
    /// loader is alive), and the companion must count the workload too.
    pub companion: bool,
    /// The oldest kernel `(major, minor)` the scenario makes sense on, and why.
    pub since: ((u32, u32), &'static str),
    /// More loader arguments (`--iface lo`).
    pub args: &'static [&'static str],
    /// The first kernel `(major, minor)` the scenario no longer applies to (a refusal
    /// scenario stops making sense where the feature exists).
    pub before: (u32, u32),
}

/// Any kernel this harness boots (kprobes through kprobe_events came in 4.1).
const ANY: ((u32, u32), &str) = ((4, 1), "");

impl Scenario {
    pub fn needs_loader(&self) -> bool {
        matches!(self.probe, Probe::Loader { .. })
    }

    /// Whether its programs are kprobes (which make kprobe_events entries in legacy mode).
    pub fn uses_kprobes(&self) -> bool {
        !matches!(
            self.expect,
            Expect::PacketCount { .. }
                | Expect::Ufunc
                | Expect::Refused(_)
                | Expect::CheckAgrees
                | Expect::RingFallback
                | Expect::LegacyLayouts
        )
    }
}

const EXECCOUNT: &[&[&str]] = &[&["execcount"]];
const EXECSNOOP: &[&[&str]] = &[&["execsnoop_kprobe", "execsnoop-kprobe", "execsnoop"]];
const TCPCONNECT: &[&[&str]] = &[&["tcpconnect"]];
const HELLO: &[&[&str]] = &[&["hello"]];
const HELLO_MSG: Expect = Expect::Printk("Hello World");

const EXEC: Workload = Workload::Exec { rounds: 3 };
const TCP: Workload = Workload::TcpConnect {
    port: 4242,
    connects: 2,
};

/// A loader scenario; each object is listed with the perf kprobe PMU and again with
/// `--legacy` (tracefs kprobe_events).
const fn loader(
    name: &'static str,
    objects: &'static [&'static [&'static str]],
    legacy: bool,
    workload: Workload,
    expect: Expect,
    attached: usize,
) -> Scenario {
    Scenario {
        name,
        probe: Probe::Loader { objects, legacy },
        workload,
        expect,
        attached,
        kill_first: false,
        companion: false,
        since: ANY,
        args: &[],
        before: NEVER,
    }
}

/// No kernel: the scenario applies from `since` on.
const NEVER: (u32, u32) = (u32::MAX, 0);

/// The scenarios of `all` that apply to a kernel `(major, minor)`, and the others with the
/// reason they do not.
pub fn for_kernel(
    all: &[Scenario],
    version: (u32, u32),
) -> (Vec<Scenario>, Vec<(Scenario, String)>) {
    let mut here = Vec::new();
    let mut not_here = Vec::new();
    for s in all {
        let ((major, minor), why) = s.since;
        if version < (major, minor) {
            not_here.push((*s, format!("needs {major}.{minor}: {why}")));
        } else if version >= s.before {
            let (a, b) = s.before;
            not_here.push((*s, format!("checks a refusal of kernels before {a}.{b}")));
        } else {
            here.push(*s);
        }
    }
    (here, not_here)
}

const XDPCOUNT: &[&[&str]] = &[&["xdpcount"]];
const EXECTRACK: &[&[&str]] = &[&["exectrack"]];
/// Every built-in probe and every compat probe (`--extra-objects`).
const EVERY_OBJECT: &[&[&str]] = &[
    &["execcount"],
    &["execsnoop"],
    &["execsnoop_kprobe"],
    &["exectrack"],
    &["hello"],
    &["opensnoop"],
    &["sockfilter"],
    &["tcpconnect"],
    &["ufunc"],
    &["xdpcount"],
    &["compat_kprobes"],
    &["compat_socket"],
    &["compat_sockmap"],
    &["compat_tailcall"],
    &["compat_tc"],
    &["compat_tracepoints"],
    &["compat_uprobes"],
    &["compat_xdp"],
    &["ringbuf_fallback"],
    &["btf_kprobes"],
];
/// C objects (`make c-objects`: clang on userspace/tests/bpf/).
const RINGBUF_FALLBACK: &[&[&str]] = &[&["ringbuf_fallback"]];
const BTF_KPROBES: &[&[&str]] = &[&["btf_kprobes"]];
const LEGACY_LAYOUTS: &[&[&str]] = &[&["legacy_layouts"]];
const STACKS: &[&[&str]] = &[&["kernel_stacks"]];
/// BPF_F_CURRENT_CPU (legacy_layouts' perf output) came in 4.8.
const CURRENT_CPU: ((u32, u32), &str) = ((4, 8), "BPF_F_CURRENT_CPU");
/// The cilium-style label goes where --attach says; goebpf's guess_execve needs nothing.
const EXEC_COUNTER_ATTACH: &[&str] = &["--attach", "kprobe/exec_counter=sys_execve"];
const NO_WORKLOAD: Workload = Workload::Exec { rounds: 0 };
const UFUNC: &[&[&str]] = &[&["ufunc"]];
const UFUNC_CALLS: Workload = Workload::Ufunc { calls: 4 };
/// The guest driver is the uprobe target: it exports `ufunc_target`.
const SELF_TARGET: &[&str] = &["--uprobe-target", GUEST_SELF];
const SOCKFILTER: &[&[&str]] = &[&["sockfilter"]];
const LO: &[&str] = &["--iface", "lo"];
/// TCP is IP protocol 6.
const XDP_TCP: Expect = Expect::PacketCount {
    map: "PROTOCOLS",
    key: 6,
    field: Some("packets"),
};
const SOCKET_TCP: Expect = Expect::PacketCount {
    map: "SEEN",
    key: 6,
    field: None,
};
/// XDP on an interface without a driver of its own (generic XDP) came in 4.12.
const GENERIC_XDP: ((u32, u32), &str) = ((4, 12), "generic (SKB) XDP on lo");

/// execsnoop reads the filename and argv with bpf_probe_read_str.
const STR_READ: ((u32, u32), &str) = ((4, 11), "bpf_probe_read_str");

/// Every scenario, in the order they run in the guest.
pub const CATALOGUE: &[Scenario] = &[
    Scenario {
        name: "kprobe-selftest",
        probe: Probe::KprobeSelftest,
        workload: EXEC,
        expect: Expect::SelftestHits,
        attached: 1,
        kill_first: false,
        companion: false,
        since: ANY,
        args: &[],
        before: NEVER,
    },
    loader("execcount", EXECCOUNT, false, EXEC, Expect::ExecCount, 1),
    loader(
        "execcount-legacy",
        EXECCOUNT,
        true,
        EXEC,
        Expect::ExecCount,
        1,
    ),
    Scenario {
        since: STR_READ,
        ..loader("execsnoop", EXECSNOOP, false, EXEC, Expect::ExecSnoop, 3)
    },
    Scenario {
        since: STR_READ,
        ..loader(
            "execsnoop-legacy",
            EXECSNOOP,
            true,
            EXEC,
            Expect::ExecSnoop,
            3,
        )
    },
    loader("tcpconnect", TCPCONNECT, false, TCP, Expect::TcpConnect, 2),
    loader(
        "tcpconnect-legacy",
        TCPCONNECT,
        true,
        TCP,
        Expect::TcpConnect,
        2,
    ),
    // XDP and a socket filter on the guest's loopback, counting the TCP workload's packets.
    // Below 4.17 (and with --legacy) the loader loads XDP itself (aya's
    // expected_attach_type is refused there).
    Scenario {
        since: GENERIC_XDP,
        args: LO,
        ..loader("xdp", XDPCOUNT, false, TCP, XDP_TCP, 1)
    },
    Scenario {
        since: GENERIC_XDP,
        args: LO,
        ..loader("xdp-legacy", XDPCOUNT, true, TCP, XDP_TCP, 1)
    },
    Scenario {
        since: ((4, 5), "bpf_skb_load_bytes"),
        args: LO,
        ..loader("socketfilter", SOCKFILTER, false, TCP, SOCKET_TCP, 1)
    },
    // uprobe + uretprobe (uprobe_events below 4.17, left empty at exit).
    Scenario {
        args: SELF_TARGET,
        ..loader("ufunc", UFUNC, false, UFUNC_CALLS, Expect::Ufunc, 2)
    },
    // The real verifier of each kernel against `loader check`'s prediction, for every
    // program of every built-in and compat object.
    Scenario {
        args: &["--verify"],
        ..loader(
            "check-agrees",
            EVERY_OBJECT,
            false,
            NO_WORKLOAD,
            Expect::CheckAgrees,
            0,
        )
    },
    // Tracepoint programs came in 4.7: on 4.4 exectrack's program is refused, alone and
    // named, and nothing else happens.
    Scenario {
        before: (4, 7),
        ..loader(
            "tracepoint-refused",
            EXECTRACK,
            false,
            EXEC,
            Expect::Refused("a program type this kernel does not have"),
            0,
        )
    },
    loader("printk", HELLO, false, EXEC, HELLO_MSG, 1),
    loader("printk-legacy", HELLO, true, EXEC, HELLO_MSG, 1),
    // kill -9 of a --legacy loader leaves its kprobe_events entries; the next run removes them.
    Scenario {
        kill_first: true,
        ..loader("kill9-legacy", EXECCOUNT, true, EXEC, Expect::ExecCount, 1)
    },
    // A live loader under another name keeps its kprobe events when a second one starts.
    Scenario {
        companion: true,
        ..loader(
            "concurrent-legacy",
            EXECCOUNT,
            true,
            EXEC,
            Expect::ExecCount,
            1,
        )
    },
    // C objects. libbpf-tools' ring buffer with its perf fallback (5.8+: the ring; below:
    // the loader makes `events` a perf array and answers the CO-RE check).
    Scenario {
        since: STR_READ,
        ..loader(
            "c-ringbuf-fallback",
            RINGBUF_FALLBACK,
            false,
            EXEC,
            Expect::RingFallback,
            1,
        )
    },
    // BTF .maps (created without BTF types below 4.18) fed by free-form kprobes.
    Scenario {
        args: EXEC_COUNTER_ATTACH,
        ..loader(
            "c-btf-kprobes",
            BTF_KPROBES,
            false,
            EXEC,
            Expect::BtfKprobes,
            2,
        )
    },
    Scenario {
        args: EXEC_COUNTER_ATTACH,
        ..loader(
            "c-btf-kprobes-legacy",
            BTF_KPROBES,
            true,
            EXEC,
            Expect::BtfKprobes,
            2,
        )
    },
    // Legacy map layouts (libbpf's bpf_map_def with BPF_ANNOTATE_KV_PAIR, iproute2's
    // bpf_elf_map, goebpf's with a perf array without sizes), typed without flags.
    Scenario {
        since: CURRENT_CPU,
        ..loader(
            "c-legacy-layouts",
            LEGACY_LAYOUTS,
            false,
            Workload::Getppid { calls: 5 },
            Expect::LegacyLayouts,
            1,
        )
    },
    // Kernel stacks (bpf_get_stackid in a kprobe, a legacy STACK_TRACE map) symbolized on
    // kernels without BTF or build ids.
    Scenario {
        since: CURRENT_CPU,
        ..loader(
            "c-kernel-stacks",
            STACKS,
            false,
            Workload::Getppid { calls: 4 },
            Expect::KernelStacks,
            1,
        )
    },
];

pub fn catalogue() -> Vec<Scenario> {
    CATALOGUE.to_vec()
}

/// Picks scenarios by name (`all`, an exact name, or a base name selecting both modes).
pub fn select(names: &[String]) -> Result<Vec<Scenario>> {
    let all = catalogue();
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(all);
    }
    let mut picked = Vec::new();
    for n in names {
        let matching: Vec<_> = all
            .iter()
            .filter(|s| s.name == n || s.name.strip_suffix("-legacy") == Some(n.as_str()))
            .collect();
        if matching.is_empty() {
            let known: Vec<_> = all.iter().map(|s| s.name).collect();
            bail!("unknown scenario {n:?}; known: all, {}", known.join(", "));
        }
        for s in matching {
            if !picked.contains(s) {
                picked.push(*s);
            }
        }
    }
    // Keep catalogue order whatever the command line order.
    picked.sort_by_key(|s| all.iter().position(|a| a == s));
    Ok(picked)
}

/// Finds the object file for one entry of [`Probe::Loader::objects`].
pub fn find_object(dir: &Path, names: &[&str]) -> Result<PathBuf> {
    find_object_in(&[dir], names)
}

/// [`find_object`] over several directories, in order.
pub fn find_object_in(dirs: &[&Path], names: &[&str]) -> Result<PathBuf> {
    let mut tried = Vec::new();
    for n in names {
        for dir in dirs {
            for p in [
                dir.join(n).join(format!("{n}.elf")),
                dir.join(format!("{n}.elf")),
            ] {
                if p.is_file() {
                    return Ok(p);
                }
                tried.push(p.display().to_string());
            }
        }
    }
    bail!(
        "probe object {} not found; tried:\n  {}\n(build the probes with `cargo bpf build` or pass --objects)",
        names[0],
        tried.join("\n  ")
    )
}

/// Loader timing knobs: upper bounds only, never how long a step takes.
#[derive(Debug, Clone, Copy)]
pub struct LoaderTiming {
    /// How long the guest waits for the loader's `attached` lines.
    pub attach_timeout_secs: u64,
    /// How long the loader may take to exit after SIGINT.
    pub stop_timeout_secs: u64,
}

/// The guest step for `s`; `objects` are the guest paths of its resolved objects.
pub fn step(s: &Scenario, objects: &[String], timing: LoaderTiming) -> Step {
    let run = match s.probe {
        Probe::KprobeSelftest => Run::KprobeSelftest,
        Probe::Loader { legacy, .. } => {
            let mut args = vec!["--json".to_owned()];
            if legacy {
                args.push("--legacy".to_owned());
            }
            args.extend(s.args.iter().map(|a| a.to_string()));
            args.extend(objects.iter().cloned());
            Run::Loader {
                args,
                // A refusal settles with its error line (the guest counts those too).
                wait_attached: if matches!(s.expect, Expect::Refused(_)) {
                    1
                } else {
                    s.attached
                },
                attach_timeout_secs: timing.attach_timeout_secs,
                stop_timeout_secs: timing.stop_timeout_secs,
                kill_first: s.kill_first,
                companion: s.companion,
            }
        }
    };
    Step {
        name: s.name.to_owned(),
        run,
        workload: s.workload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_are_unique_and_paired() {
        let all = catalogue();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for s in &all {
            if let Probe::Loader { legacy: true, .. } = s.probe {
                assert!(s.name.ends_with("-legacy"), "{}", s.name);
            }
        }
    }

    #[test]
    fn select_by_base_name_takes_both_modes() {
        let s = select(&["execcount".into()]).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name).collect();
        assert_eq!(names, ["execcount", "execcount-legacy"]);
        let s = select(&["tcpconnect-legacy".into(), "kprobe-selftest".into()]).unwrap();
        let names: Vec<_> = s.iter().map(|s| s.name).collect();
        assert_eq!(names, ["kprobe-selftest", "tcpconnect-legacy"]);
        assert!(select(&["nope".into()]).is_err());
        assert_eq!(select(&[]).unwrap().len(), catalogue().len());
    }

    #[test]
    fn loader_step_arguments() {
        let s = select(&["execsnoop-legacy".into()]).unwrap()[0];
        let st = step(
            &s,
            &["/vmtests/objects/execsnoop.elf".into()],
            LoaderTiming {
                attach_timeout_secs: 120,
                stop_timeout_secs: 60,
            },
        );
        let Run::Loader { args, .. } = &st.run else {
            panic!("not a loader step")
        };
        assert_eq!(
            args,
            &["--json", "--legacy", "/vmtests/objects/execsnoop.elf"]
        );
        let json = serde_json::to_string(&st).unwrap();
        let back: Step = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
    }

    #[test]
    fn object_lookup_layouts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("execcount")).unwrap();
        std::fs::write(dir.path().join("execcount/execcount.elf"), b"").unwrap();
        std::fs::write(dir.path().join("execsnoop.elf"), b"").unwrap();
        assert!(find_object(dir.path(), &["execcount"]).is_ok());
        let p = find_object(dir.path(), EXECSNOOP[0]).unwrap();
        assert!(p.ends_with("execsnoop.elf"));
        let e = find_object(dir.path(), &["tcpconnect"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tcpconnect"), "{e}");
    }

    #[test]
    fn scenarios_follow_the_kernel_version() {
        let (here, not_here) = for_kernel(CATALOGUE, (4, 4));
        assert!(here.iter().any(|s| s.name == "execcount"));
        assert!(here.iter().all(|s| !s.name.starts_with("execsnoop")));
        assert_eq!(
            not_here.len(),
            8,
            "execsnoop and xdp in both modes, socketfilter, c-ringbuf-fallback, \
             c-legacy-layouts, c-kernel-stacks"
        );
        assert!(not_here[0].1.contains("4.11"), "{}", not_here[0].1);
        assert!(here.iter().any(|s| s.name == "tracepoint-refused"));
        let (here, not_here) = for_kernel(CATALOGUE, (4, 15));
        assert_eq!(here.len(), CATALOGUE.len() - 1);
        assert_eq!(not_here[0].0.name, "tracepoint-refused");
    }

    #[test]
    fn expected_exec_count() {
        assert_eq!(Workload::Exec { rounds: 3 }.expected_execs(), 6);
    }
}
