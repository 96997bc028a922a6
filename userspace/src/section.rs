//! Section name -> where to attach. Pure.
//!
//! Accepted forms (redbpf, libbpf, cilium/ebpf and goebpf objects):
//!
//! | section | attaches to |
//! |---|---|
//! | `kprobe/SYM`, `kretprobe/SYM` | kernel function `SYM`; `sys_NAME` resolved on the running kernel (`__x64_sys_NAME`, `sys_NAME`, `SyS_NAME`) |
//! | `tracepoint/CAT/NAME`, `tracepoint/CAT:NAME`, `tp/...` | tracepoint `CAT:NAME` |
//! | `tracepoint/NAME` | the tracepoint `events/*/NAME` found in tracefs |
//! | `raw_tracepoint/NAME`, `raw_tp/NAME` | raw tracepoint `NAME` |
//! | `uprobe/SYMBOL`, `uretprobe/SYMBOL` | `SYMBOL` in the binary given by `--uprobe-target` |
//! | `uprobe//path/to/bin:SYMBOL`, `uprobe/lib:SYMBOL` | `SYMBOL` in that binary (or library) |
//! | `xdp`, `xdp/NAME` | the interface given by `--iface` |
//! | `socketfilter/NAME`, `socket` | a raw AF_PACKET socket bound to `--iface` |

/// Where a program wants to be attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachSpec {
    /// `kprobe/SYM` or `kretprobe/SYM`.
    KProbe {
        /// Kernel symbol as written in the section.
        symbol: String,
        /// kretprobe
        ret: bool,
    },
    /// A tracepoint; `category` None means "look it up in tracefs".
    TracePoint {
        /// e.g. `syscalls`
        category: Option<String>,
        /// e.g. `sys_enter_execve`
        name: String,
    },
    /// A raw tracepoint.
    RawTracePoint {
        /// e.g. `sched_switch`
        name: String,
    },
    /// A uprobe or uretprobe.
    UProbe {
        /// Binary from the section, if it names one.
        target: Option<String>,
        /// Function symbol.
        symbol: String,
        /// uretprobe
        ret: bool,
    },
    /// XDP on `--iface`.
    Xdp,
    /// Socket filter on a packet socket bound to `--iface`.
    SocketFilter,
    /// redbpf's `tc_action/NAME`: a direct-action classifier on `--iface` ingress.
    TcAction,
    /// Anything else.
    Unsupported {
        /// The section kind (text before the first `/`).
        kind: String,
    },
}

impl AttachSpec {
    /// Short kind name for JSON (`kprobe`, `tracepoint`, ...).
    pub fn kind(&self) -> &str {
        match self {
            AttachSpec::KProbe { ret: false, .. } => "kprobe",
            AttachSpec::KProbe { ret: true, .. } => "kretprobe",
            AttachSpec::TracePoint { .. } => "tracepoint",
            AttachSpec::RawTracePoint { .. } => "raw_tracepoint",
            AttachSpec::UProbe { ret: false, .. } => "uprobe",
            AttachSpec::UProbe { ret: true, .. } => "uretprobe",
            AttachSpec::Xdp => "xdp",
            AttachSpec::SocketFilter => "socket_filter",
            AttachSpec::TcAction => "tc_action",
            AttachSpec::Unsupported { kind } => kind,
        }
    }
}

impl AttachSpec {
    /// Where it attaches, as `loader --list` shows it (before any kernel is asked).
    pub fn target(&self) -> String {
        match self {
            AttachSpec::KProbe { symbol, .. } => symbol.clone(),
            AttachSpec::TracePoint {
                category: Some(c),
                name,
            } => format!("{c}:{name}"),
            AttachSpec::TracePoint { name, .. } | AttachSpec::RawTracePoint { name } => {
                name.clone()
            }
            AttachSpec::UProbe {
                target: Some(t),
                symbol,
                ..
            } => format!("{t}:{symbol}"),
            AttachSpec::UProbe { symbol, .. } => format!("--uprobe-target:{symbol}"),
            AttachSpec::Xdp | AttachSpec::SocketFilter | AttachSpec::TcAction => {
                "--iface".to_owned()
            }
            AttachSpec::Unsupported { .. } => "-".to_owned(),
        }
    }
}

/// `spec` attached to `target` instead (`--attach SECTION=TARGET`): a kernel symbol for
/// kprobes, `path:symbol` for uprobes, `category:name` for tracepoints; other kinds keep
/// their spec (they attach to `--iface`).
pub fn retarget(spec: &AttachSpec, target: &str) -> AttachSpec {
    match spec {
        AttachSpec::KProbe { ret, .. } => AttachSpec::KProbe {
            symbol: target.to_owned(),
            ret: *ret,
        },
        AttachSpec::UProbe { ret, .. } => match target.rsplit_once(':') {
            Some((path, symbol)) => AttachSpec::UProbe {
                target: Some(path.to_owned()),
                symbol: symbol.to_owned(),
                ret: *ret,
            },
            None => AttachSpec::UProbe {
                target: None,
                symbol: target.to_owned(),
                ret: *ret,
            },
        },
        AttachSpec::TracePoint { .. } => parse(&format!("tracepoint/{target}")),
        AttachSpec::RawTracePoint { .. } => AttachSpec::RawTracePoint {
            name: target.to_owned(),
        },
        other => other.clone(),
    }
}

/// Parses a program section name.
pub fn parse(section: &str) -> AttachSpec {
    let (kind, rest) = section.split_once('/').unwrap_or((section, ""));
    match kind {
        "kprobe" | "kretprobe" => AttachSpec::KProbe {
            // goebpf's `guess_NAME`: the kernel function of syscall NAME, whatever this
            // kernel calls it (resolved like `sys_NAME`).
            symbol: match rest.strip_prefix("guess_") {
                Some(syscall) => format!("sys_{syscall}"),
                None => rest.to_owned(),
            },
            ret: kind == "kretprobe",
        },
        "tracepoint" | "tp" => {
            let split = rest.split_once(':').or_else(|| rest.split_once('/'));
            match split {
                Some((cat, name)) => AttachSpec::TracePoint {
                    category: Some(cat.to_owned()),
                    name: name.to_owned(),
                },
                None => AttachSpec::TracePoint {
                    category: None,
                    name: rest.to_owned(),
                },
            }
        }
        "raw_tracepoint" | "raw_tp" => AttachSpec::RawTracePoint {
            name: rest.to_owned(),
        },
        "uprobe" | "uretprobe" => {
            let ret = kind == "uretprobe";
            match rest.rsplit_once(':') {
                Some((target, symbol)) if !target.is_empty() => AttachSpec::UProbe {
                    target: Some(target.to_owned()),
                    symbol: symbol.to_owned(),
                    ret,
                },
                _ => AttachSpec::UProbe {
                    target: None,
                    symbol: rest.to_owned(),
                    ret,
                },
            }
        }
        "xdp" => AttachSpec::Xdp,
        "socketfilter" | "socket" => AttachSpec::SocketFilter,
        "tc_action" | "classifier" => AttachSpec::TcAction,
        other => AttachSpec::Unsupported {
            kind: other.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(cat: Option<&str>, name: &str) -> AttachSpec {
        AttachSpec::TracePoint {
            category: cat.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    #[test]
    fn tracepoint_forms() {
        assert_eq!(
            parse("tracepoint/syscalls/sys_enter_execve"),
            tp(Some("syscalls"), "sys_enter_execve")
        );
        assert_eq!(
            parse("tracepoint/syscalls:sys_enter_execve"),
            tp(Some("syscalls"), "sys_enter_execve")
        );
        assert_eq!(
            parse("tracepoint/sys_enter_execve"),
            tp(None, "sys_enter_execve")
        );
        assert_eq!(
            parse("tp/sched/sched_switch"),
            tp(Some("sched"), "sched_switch")
        );
    }

    #[test]
    fn probe_forms() {
        assert_eq!(
            parse("kretprobe/sys_execve"),
            AttachSpec::KProbe {
                symbol: "sys_execve".into(),
                ret: true
            }
        );
        assert_eq!(
            parse("uprobe//usr/bin/bash:readline"),
            AttachSpec::UProbe {
                target: Some("/usr/bin/bash".into()),
                symbol: "readline".into(),
                ret: false
            }
        );
        assert_eq!(
            parse("uretprobe/my_func"),
            AttachSpec::UProbe {
                target: None,
                symbol: "my_func".into(),
                ret: true
            }
        );
    }

    #[test]
    fn goebpf_guess_and_attach_overrides() {
        assert_eq!(
            parse("kprobe/guess_execve"),
            AttachSpec::KProbe {
                symbol: "sys_execve".into(),
                ret: false
            }
        );
        let free = parse("uprobe/bash_readline");
        assert_eq!(
            retarget(&free, "/bin/bash:readline"),
            AttachSpec::UProbe {
                target: Some("/bin/bash".into()),
                symbol: "readline".into(),
                ret: false
            }
        );
        assert_eq!(
            retarget(&parse("kretprobe/whatever"), "vfs_read"),
            AttachSpec::KProbe {
                symbol: "vfs_read".into(),
                ret: true
            }
        );
        assert_eq!(
            retarget(&parse("tracepoint/mine"), "syscalls:sys_enter_openat"),
            tp(Some("syscalls"), "sys_enter_openat")
        );
        assert_eq!(retarget(&parse("xdp/x"), "eth0"), AttachSpec::Xdp);
    }

    #[test]
    fn network_and_unknown_forms() {
        assert_eq!(parse("xdp/pass"), AttachSpec::Xdp);
        assert_eq!(parse("xdp"), AttachSpec::Xdp);
        assert_eq!(parse("socketfilter/count"), AttachSpec::SocketFilter);
        assert_eq!(parse("socket"), AttachSpec::SocketFilter);
        assert_eq!(
            parse("raw_tracepoint/sched_switch"),
            AttachSpec::RawTracePoint {
                name: "sched_switch".into()
            }
        );
        assert_eq!(parse("streamparser/x").kind(), "streamparser");
    }
}
