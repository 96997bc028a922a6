//! Program types (from the ELF section name) and map types (`BPF_MAP_TYPE_*`), with the
//! first kernel release that can load them.

use super::Version;

const fn v(major: u32, minor: u32) -> Version {
    Version::new(major, minor)
}

/// The program type a section name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgType {
    /// `BPF_PROG_TYPE_*` in lower case, or the attach flavour that made it newer
    /// (`uprobe`, `cgroup_sock_addr`, ...).
    pub name: &'static str,
    /// First release that loads and attaches it.
    pub since: Version,
}

const fn pt(name: &'static str, since: Version) -> Option<ProgType> {
    Some(ProgType { name, since })
}

/// The program type of a section (`kprobe/sys_execve`, `xdp/count`, `cgroup/connect4`...),
/// in redbpf, libbpf, cilium/ebpf and goebpf spellings. `None` for kinds this table does
/// not know.
pub fn program_type(section: &str) -> Option<ProgType> {
    let (kind, rest) = section.split_once('/').unwrap_or((section, ""));
    match kind {
        "socket" | "socketfilter" => pt("socket_filter", v(3, 19)),
        "kprobe" | "kretprobe" => pt("kprobe", v(4, 1)),
        "uprobe" | "uretprobe" => pt("uprobe", v(4, 3)),
        "classifier" | "tc" | "tc_cls" => pt("sched_cls", v(4, 1)),
        // redbpf's tc_action programs are loaded as direct-action classifiers.
        "tc_action" => pt("sched_cls", v(4, 1)),
        "action" => pt("sched_act", v(4, 1)),
        "tracepoint" | "tp" => pt("tracepoint", v(4, 7)),
        "xdp" => match rest {
            "devmap" => pt("xdp (devmap)", v(5, 8)),
            "cpumap" => pt("xdp (cpumap)", v(5, 9)),
            _ => pt("xdp", v(4, 8)),
        },
        "xdp.frags" => pt("xdp (frags)", v(5, 18)),
        "perf_event" => pt("perf_event", v(4, 9)),
        "cgroup_skb" => pt("cgroup_skb", v(4, 10)),
        "cgroup" => cgroup_type(rest),
        "lwt_in" | "lwt_out" | "lwt_xmit" => pt("lwt", v(4, 10)),
        "sockops" => pt("sock_ops", v(4, 13)),
        "sk_skb" | "streamparser" | "streamverdict" => pt("sk_skb", v(4, 14)),
        "sk_msg" => pt("sk_msg", v(4, 17)),
        "raw_tracepoint" | "raw_tp" => pt("raw_tracepoint", v(4, 17)),
        "lwt_seg6local" => pt("lwt_seg6local", v(4, 18)),
        "lirc_mode2" => pt("lirc_mode2", v(4, 18)),
        "sk_reuseport" => pt("sk_reuseport", v(4, 19)),
        "flow_dissector" => pt("flow_dissector", v(4, 20)),
        "raw_tracepoint.w" | "raw_tp.w" => pt("raw_tracepoint_writable", v(5, 2)),
        "fentry" | "fexit" | "fmod_ret" | "tp_btf" => pt("tracing", v(5, 5)),
        "freplace" => pt("ext", v(5, 6)),
        "struct_ops" => pt("struct_ops", v(5, 6)),
        "lsm" => pt("lsm", v(5, 7)),
        "iter" | "task_iter" => pt("tracing (iter)", v(5, 8)),
        "sk_lookup" => pt("sk_lookup", v(5, 9)),
        "fentry.s" | "fexit.s" | "fmod_ret.s" => pt("tracing (sleepable)", v(5, 10)),
        "lsm.s" => pt("lsm (sleepable)", v(5, 11)),
        "syscall" => pt("syscall", v(5, 14)),
        "kprobe.multi" | "kretprobe.multi" => pt("kprobe (multi)", v(5, 18)),
        "netfilter" => pt("netfilter", v(6, 4)),
        "uprobe.multi" | "uretprobe.multi" => pt("uprobe (multi)", v(6, 6)),
        "tcx" => pt("sched_cls (tcx)", v(6, 6)),
        "netkit" => pt("sched_cls (netkit)", v(6, 7)),
        _ => None,
    }
}

fn cgroup_type(attach: &str) -> Option<ProgType> {
    match attach {
        "skb" => pt("cgroup_skb", v(4, 10)),
        "sock" | "sock_create" => pt("cgroup_sock", v(4, 10)),
        "dev" => pt("cgroup_device", v(4, 15)),
        "post_bind4" | "post_bind6" => pt("cgroup_sock (post_bind)", v(4, 17)),
        "bind4" | "bind6" | "connect4" | "connect6" => pt("cgroup_sock_addr", v(4, 17)),
        "sendmsg4" | "sendmsg6" => pt("cgroup_sock_addr (sendmsg)", v(4, 18)),
        "recvmsg4" | "recvmsg6" => pt("cgroup_sock_addr (recvmsg)", v(5, 2)),
        "sysctl" => pt("cgroup_sysctl", v(5, 2)),
        "getsockopt" | "setsockopt" => pt("cgroup_sockopt", v(5, 3)),
        "sock_release" => pt("cgroup_sock (release)", v(5, 9)),
        "getpeername4" | "getpeername6" | "getsockname4" | "getsockname6" => {
            pt("cgroup_sock_addr (getname)", v(5, 8))
        }
        _ => None,
    }
}

/// Ring buffer map type.
pub const MAP_RINGBUF: u32 = 27;

/// Perf event array map type.
pub const MAP_PERF_EVENT_ARRAY: u32 = 4;

/// Indexed by `BPF_MAP_TYPE_*`; entry 0 is unspec.
static MAP_TYPES: [(&str, Version); 34] = [
    ("unspec", v(0, 0)),
    ("hash", v(3, 19)),
    ("array", v(3, 19)),
    ("prog_array", v(4, 2)),
    ("perf_event_array", v(4, 3)),
    ("percpu_hash", v(4, 6)),
    ("percpu_array", v(4, 6)),
    ("stack_trace", v(4, 6)),
    ("cgroup_array", v(4, 8)),
    ("lru_hash", v(4, 10)),
    ("lru_percpu_hash", v(4, 10)),
    ("lpm_trie", v(4, 11)),
    ("array_of_maps", v(4, 12)),
    ("hash_of_maps", v(4, 12)),
    ("devmap", v(4, 14)),
    ("sockmap", v(4, 14)),
    ("cpumap", v(4, 15)),
    ("xskmap", v(4, 18)),
    ("sockhash", v(4, 18)),
    ("cgroup_storage", v(4, 19)),
    ("reuseport_sockarray", v(4, 19)),
    ("percpu_cgroup_storage", v(4, 20)),
    ("queue", v(4, 20)),
    ("stack", v(4, 20)),
    ("sk_storage", v(5, 2)),
    ("devmap_hash", v(5, 4)),
    ("struct_ops", v(5, 6)),
    ("ringbuf", v(5, 8)),
    ("inode_storage", v(5, 10)),
    ("task_storage", v(5, 11)),
    ("bloom_filter", v(5, 16)),
    ("user_ringbuf", v(6, 1)),
    ("cgrp_storage", v(6, 2)),
    ("arena", v(6, 9)),
];

/// A map type's name and first release; `None` for 0 and unknown numbers.
pub fn map_type(t: u32) -> Option<(&'static str, Version)> {
    let idx = usize::try_from(t).ok().filter(|&i| i > 0)?;
    MAP_TYPES.get(idx).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section_kinds() {
        let since = |s| program_type(s).map(|p| p.since.to_string());
        assert_eq!(since("kprobe/sys_execve").as_deref(), Some("4.1"));
        assert_eq!(since("uretprobe/malloc").as_deref(), Some("4.3"));
        assert_eq!(
            since("tracepoint/syscalls:sys_enter_execve").as_deref(),
            Some("4.7")
        );
        assert_eq!(since("xdp/count").as_deref(), Some("4.8"));
        assert_eq!(since("xdp").as_deref(), Some("4.8"));
        assert_eq!(since("socketfilter/icmp_udp").as_deref(), Some("3.19"));
        assert_eq!(since("streamparser/parse").as_deref(), Some("4.14"));
        assert_eq!(
            since("raw_tracepoint/sched_switch").as_deref(),
            Some("4.17")
        );
        assert_eq!(since("cgroup/connect4").as_deref(), Some("4.17"));
        assert_eq!(since("lsm/bpf").as_deref(), Some("5.7"));
        assert_eq!(since("fentry/do_unlinkat").as_deref(), Some("5.5"));
        assert_eq!(program_type("mystery/x"), None);
        assert_eq!(program_type("cgroup/mystery"), None);
    }

    #[test]
    fn map_kinds() {
        assert_eq!(map_type(4), Some(("perf_event_array", v(4, 3))));
        assert_eq!(map_type(MAP_RINGBUF), Some(("ringbuf", v(5, 8))));
        assert_eq!(map_type(22), Some(("queue", v(4, 20))));
        assert_eq!(map_type(33), Some(("arena", v(6, 9))));
        assert_eq!(map_type(0), None);
        assert_eq!(map_type(34), None);
        let mut last = v(0, 0);
        for &(name, ver) in &MAP_TYPES {
            assert!(
                ver >= last,
                "{name}: map types were numbered in release order"
            );
            last = ver;
        }
    }
}
