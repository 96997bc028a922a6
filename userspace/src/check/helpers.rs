//! BPF helper id -> (name, first kernel release that has it).
//!
//! Ids are the `BPF_FUNC_*` numbers of `include/uapi/linux/bpf.h`; the list stopped growing at
//! 211 (new functionality has been kfuncs since 6.2). Versions are the mainline release in which
//! each helper first appeared (the bcc "kernel-versions" table and the kernel history).

use super::Version;

const fn v(major: u32, minor: u32) -> Version {
    Version::new(major, minor)
}

/// Indexed by helper id; entry 0 is `BPF_FUNC_unspec`.
static HELPERS: [(&str, Version); 212] = [
    ("unspec", v(0, 0)),
    ("map_lookup_elem", v(3, 19)),
    ("map_update_elem", v(3, 19)),
    ("map_delete_elem", v(3, 19)),
    ("probe_read", v(4, 1)),
    ("ktime_get_ns", v(4, 1)),
    ("trace_printk", v(4, 1)),
    ("get_prandom_u32", v(4, 1)),
    ("get_smp_processor_id", v(4, 1)),
    ("skb_store_bytes", v(4, 1)),
    // 10
    ("l3_csum_replace", v(4, 1)),
    ("l4_csum_replace", v(4, 1)),
    ("tail_call", v(4, 2)),
    ("clone_redirect", v(4, 2)),
    ("get_current_pid_tgid", v(4, 2)),
    ("get_current_uid_gid", v(4, 2)),
    ("get_current_comm", v(4, 2)),
    ("get_cgroup_classid", v(4, 3)),
    ("skb_vlan_push", v(4, 3)),
    ("skb_vlan_pop", v(4, 3)),
    // 20
    ("skb_get_tunnel_key", v(4, 3)),
    ("skb_set_tunnel_key", v(4, 3)),
    ("perf_event_read", v(4, 3)),
    ("redirect", v(4, 4)),
    ("get_route_realm", v(4, 4)),
    ("perf_event_output", v(4, 4)),
    ("skb_load_bytes", v(4, 5)),
    ("get_stackid", v(4, 6)),
    ("csum_diff", v(4, 6)),
    ("skb_get_tunnel_opt", v(4, 6)),
    // 30
    ("skb_set_tunnel_opt", v(4, 6)),
    ("skb_change_proto", v(4, 8)),
    ("skb_change_type", v(4, 8)),
    ("skb_under_cgroup", v(4, 8)),
    ("get_hash_recalc", v(4, 8)),
    ("get_current_task", v(4, 8)),
    ("probe_write_user", v(4, 8)),
    ("current_task_under_cgroup", v(4, 9)),
    ("skb_change_tail", v(4, 9)),
    ("skb_pull_data", v(4, 9)),
    // 40
    ("csum_update", v(4, 9)),
    ("set_hash_invalid", v(4, 9)),
    ("get_numa_node_id", v(4, 10)),
    ("skb_change_head", v(4, 10)),
    ("xdp_adjust_head", v(4, 10)),
    ("probe_read_str", v(4, 11)),
    ("get_socket_cookie", v(4, 12)),
    ("get_socket_uid", v(4, 12)),
    ("set_hash", v(4, 13)),
    ("setsockopt", v(4, 13)),
    // 50
    ("skb_adjust_room", v(4, 13)),
    ("redirect_map", v(4, 14)),
    ("sk_redirect_map", v(4, 14)),
    ("sock_map_update", v(4, 14)),
    ("xdp_adjust_meta", v(4, 15)),
    ("perf_event_read_value", v(4, 15)),
    ("perf_prog_read_value", v(4, 15)),
    ("getsockopt", v(4, 15)),
    ("override_return", v(4, 16)),
    ("sock_ops_cb_flags_set", v(4, 16)),
    // 60
    ("msg_redirect_map", v(4, 17)),
    ("msg_apply_bytes", v(4, 17)),
    ("msg_cork_bytes", v(4, 17)),
    ("msg_pull_data", v(4, 17)),
    ("bind", v(4, 17)),
    ("xdp_adjust_tail", v(4, 18)),
    ("skb_get_xfrm_state", v(4, 18)),
    ("get_stack", v(4, 18)),
    ("skb_load_bytes_relative", v(4, 18)),
    ("fib_lookup", v(4, 18)),
    // 70
    ("sock_hash_update", v(4, 18)),
    ("msg_redirect_hash", v(4, 18)),
    ("sk_redirect_hash", v(4, 18)),
    ("lwt_push_encap", v(4, 18)),
    ("lwt_seg6_store_bytes", v(4, 18)),
    ("lwt_seg6_adjust_srh", v(4, 18)),
    ("lwt_seg6_action", v(4, 18)),
    ("rc_repeat", v(4, 18)),
    ("rc_keydown", v(4, 18)),
    ("skb_cgroup_id", v(4, 18)),
    // 80
    ("get_current_cgroup_id", v(4, 18)),
    ("get_local_storage", v(4, 19)),
    ("sk_select_reuseport", v(4, 19)),
    ("skb_ancestor_cgroup_id", v(4, 19)),
    ("sk_lookup_tcp", v(4, 20)),
    ("sk_lookup_udp", v(4, 20)),
    ("sk_release", v(4, 20)),
    ("map_push_elem", v(4, 20)),
    ("map_pop_elem", v(4, 20)),
    ("map_peek_elem", v(4, 20)),
    // 90
    ("msg_push_data", v(4, 20)),
    ("msg_pop_data", v(5, 0)),
    ("rc_pointer_rel", v(5, 0)),
    ("spin_lock", v(5, 1)),
    ("spin_unlock", v(5, 1)),
    ("sk_fullsock", v(5, 1)),
    ("tcp_sock", v(5, 1)),
    ("skb_ecn_set_ce", v(5, 1)),
    ("get_listener_sock", v(5, 1)),
    ("skc_lookup_tcp", v(5, 2)),
    // 100
    ("tcp_check_syncookie", v(5, 2)),
    ("sysctl_get_name", v(5, 2)),
    ("sysctl_get_current_value", v(5, 2)),
    ("sysctl_get_new_value", v(5, 2)),
    ("sysctl_set_new_value", v(5, 2)),
    ("strtol", v(5, 2)),
    ("strtoul", v(5, 2)),
    ("sk_storage_get", v(5, 2)),
    ("sk_storage_delete", v(5, 2)),
    ("send_signal", v(5, 3)),
    // 110
    ("tcp_gen_syncookie", v(5, 3)),
    ("skb_output", v(5, 5)),
    ("probe_read_user", v(5, 5)),
    ("probe_read_kernel", v(5, 5)),
    ("probe_read_user_str", v(5, 5)),
    ("probe_read_kernel_str", v(5, 5)),
    ("tcp_send_ack", v(5, 5)),
    ("send_signal_thread", v(5, 5)),
    ("jiffies64", v(5, 5)),
    ("read_branch_records", v(5, 6)),
    // 120
    ("get_ns_current_pid_tgid", v(5, 7)),
    ("xdp_output", v(5, 6)),
    ("get_netns_cookie", v(5, 7)),
    ("get_current_ancestor_cgroup_id", v(5, 7)),
    ("sk_assign", v(5, 7)),
    ("ktime_get_boot_ns", v(5, 8)),
    ("seq_printf", v(5, 8)),
    ("seq_write", v(5, 8)),
    ("sk_cgroup_id", v(5, 8)),
    ("sk_ancestor_cgroup_id", v(5, 8)),
    // 130
    ("ringbuf_output", v(5, 8)),
    ("ringbuf_reserve", v(5, 8)),
    ("ringbuf_submit", v(5, 8)),
    ("ringbuf_discard", v(5, 8)),
    ("ringbuf_query", v(5, 8)),
    ("csum_level", v(5, 8)),
    ("skc_to_tcp6_sock", v(5, 9)),
    ("skc_to_tcp_sock", v(5, 9)),
    ("skc_to_tcp_timewait_sock", v(5, 9)),
    ("skc_to_tcp_request_sock", v(5, 9)),
    // 140
    ("skc_to_udp6_sock", v(5, 9)),
    ("get_task_stack", v(5, 9)),
    ("load_hdr_opt", v(5, 10)),
    ("store_hdr_opt", v(5, 10)),
    ("reserve_hdr_opt", v(5, 10)),
    ("inode_storage_get", v(5, 10)),
    ("inode_storage_delete", v(5, 10)),
    ("d_path", v(5, 10)),
    ("copy_from_user", v(5, 10)),
    ("snprintf_btf", v(5, 10)),
    // 150
    ("seq_printf_btf", v(5, 10)),
    ("skb_cgroup_classid", v(5, 10)),
    ("redirect_neigh", v(5, 10)),
    ("per_cpu_ptr", v(5, 10)),
    ("this_cpu_ptr", v(5, 10)),
    ("redirect_peer", v(5, 10)),
    ("task_storage_get", v(5, 11)),
    ("task_storage_delete", v(5, 11)),
    ("get_current_task_btf", v(5, 11)),
    ("bprm_opts_set", v(5, 11)),
    // 160
    ("ktime_get_coarse_ns", v(5, 11)),
    ("ima_inode_hash", v(5, 11)),
    ("sock_from_file", v(5, 11)),
    ("check_mtu", v(5, 12)),
    ("for_each_map_elem", v(5, 13)),
    ("snprintf", v(5, 13)),
    ("sys_bpf", v(5, 14)),
    ("btf_find_by_name_kind", v(5, 14)),
    ("sys_close", v(5, 14)),
    ("timer_init", v(5, 15)),
    // 170
    ("timer_set_callback", v(5, 15)),
    ("timer_start", v(5, 15)),
    ("timer_cancel", v(5, 15)),
    ("get_func_ip", v(5, 15)),
    ("get_attach_cookie", v(5, 15)),
    ("task_pt_regs", v(5, 15)),
    ("get_branch_snapshot", v(5, 16)),
    ("trace_vprintk", v(5, 16)),
    ("skc_to_unix_sock", v(5, 16)),
    ("kallsyms_lookup_name", v(5, 16)),
    // 180
    ("find_vma", v(5, 17)),
    ("loop", v(5, 17)),
    ("strncmp", v(5, 17)),
    ("get_func_arg", v(5, 17)),
    ("get_func_ret", v(5, 17)),
    ("get_func_arg_cnt", v(5, 17)),
    ("get_retval", v(5, 18)),
    ("set_retval", v(5, 18)),
    ("xdp_get_buff_len", v(5, 18)),
    ("xdp_load_bytes", v(5, 18)),
    // 190
    ("xdp_store_bytes", v(5, 18)),
    ("copy_from_user_task", v(5, 18)),
    ("skb_set_tstamp", v(5, 18)),
    ("ima_file_hash", v(5, 18)),
    ("kptr_xchg", v(5, 19)),
    ("map_lookup_percpu_elem", v(5, 19)),
    ("skc_to_mptcp_sock", v(5, 19)),
    ("dynptr_from_mem", v(5, 19)),
    ("ringbuf_reserve_dynptr", v(5, 19)),
    ("ringbuf_submit_dynptr", v(5, 19)),
    // 200
    ("ringbuf_discard_dynptr", v(5, 19)),
    ("dynptr_read", v(5, 19)),
    ("dynptr_write", v(5, 19)),
    ("dynptr_data", v(5, 19)),
    ("tcp_raw_gen_syncookie_ipv4", v(6, 0)),
    ("tcp_raw_gen_syncookie_ipv6", v(6, 0)),
    ("tcp_raw_check_syncookie_ipv4", v(6, 0)),
    ("tcp_raw_check_syncookie_ipv6", v(6, 0)),
    ("ktime_get_tai_ns", v(6, 1)),
    ("user_ringbuf_drain", v(6, 1)),
    // 210
    ("cgrp_storage_get", v(6, 2)),
    ("cgrp_storage_delete", v(6, 2)),
];

/// A helper's name without the `bpf_` prefix and the first release that has it; `None` for
/// 0 and for ids no kernel defines.
pub fn helper(id: i32) -> Option<(&'static str, Version)> {
    let idx = usize::try_from(id).ok().filter(|&i| i > 0)?;
    HELPERS.get(idx).copied()
}

/// The ring buffer helpers (`bpf_ringbuf_output` .. `bpf_ringbuf_query`).
pub fn is_ringbuf(id: i32) -> bool {
    (130..=134).contains(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_ids() {
        assert_eq!(helper(1), Some(("map_lookup_elem", v(3, 19))));
        assert_eq!(helper(6), Some(("trace_printk", v(4, 1))));
        assert_eq!(helper(25), Some(("perf_event_output", v(4, 4))));
        assert_eq!(helper(45), Some(("probe_read_str", v(4, 11))));
        assert_eq!(helper(51), Some(("redirect_map", v(4, 14))));
        assert_eq!(helper(113), Some(("probe_read_kernel", v(5, 5))));
        assert_eq!(helper(130), Some(("ringbuf_output", v(5, 8))));
        assert_eq!(helper(181), Some(("loop", v(5, 17))));
        assert_eq!(helper(211), Some(("cgrp_storage_delete", v(6, 2))));
        assert_eq!(helper(0), None);
        assert_eq!(helper(-1), None);
        assert_eq!(helper(212), None);
    }

    #[test]
    fn versions_never_go_backwards_by_more_than_a_release() {
        // Ids were handed out in merge order; a later id is at most one release older
        // (helpers from parallel trees landing in the same window).
        let mut max = v(0, 0);
        for (i, &(name, ver)) in HELPERS.iter().enumerate().skip(1) {
            assert!(!name.is_empty() && !name.starts_with("bpf_"), "{i}");
            assert!(
                ver >= max || (max.major == ver.major && max.minor - ver.minor <= 1),
                "helper {i} {name} ({ver}) after {max}"
            );
            max = max.max(ver);
        }
    }

    #[test]
    fn ringbuf_helpers() {
        assert!(is_ringbuf(130) && is_ringbuf(134));
        assert!(!is_ringbuf(129) && !is_ringbuf(198));
    }
}
