//! The host's verdicts on the C-object scenarios (objects built by clang from
//! userspace/tests/bpf/, in libbpf's, libbpf-tools' and goebpf's styles), each judged
//! field by field against the exec workload the guest ran.

use serde_json::Value;

use crate::scenario::{Workload, EXEC_PROGRAMS};

/// The comm of a process the guest driver forked, at its execve (before the exec renames
/// it): the driver's own, from `/vmtests/bin/vm-tests`.
pub const DRIVER_COMM: &str = "vm-tests";

/// BPF ring buffers came in 5.8: below, libbpf-tools' pattern goes through the heap slot
/// and a perf event.
const RING_BUFFERS: (u32, u32) = (5, 8);

fn type_of(v: &Value) -> &str {
    v.get("type").and_then(Value::as_str).unwrap_or("")
}

fn events<'a>(lines: &'a [Value], map: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| type_of(v) == "event" && v["map"] == map)
        .map(|v| &v["data"])
        .collect()
}

/// The record type the `decode` line of `map` names.
fn record_type<'a>(lines: &'a [Value], map: &str) -> Option<&'a str> {
    lines
        .iter()
        .find(|v| type_of(v) == "decode" && v["map"] == map)
        .and_then(|v| v["record"]["type"].as_str())
}

/// ringbuf_fallback: one `events` record per workload exec, typed `exec_event` with no
/// flag, its filename the program run, comm the driver's, uid 0, and `via` the path the
/// program took: 1 (ring buffer) from 5.8, 2 (heap slot + perf event) before.
pub fn check_ring_fallback(
    kernel: (u32, u32),
    w: Workload,
    lines: &[Value],
    failures: &mut Vec<String>,
) -> u64 {
    let Workload::Exec { rounds } = w else {
        failures.push("ringbuf_fallback needs the exec workload".to_owned());
        return 0;
    };
    if record_type(lines, "events") != Some("exec_event") {
        failures.push(format!(
            "events should decode as exec_event without flags; decode lines: {:?}",
            lines
                .iter()
                .filter(|v| type_of(v) == "decode")
                .collect::<Vec<_>>()
        ));
    }
    let via = if kernel >= RING_BUFFERS { 1 } else { 2 };
    let got = events(lines, "events");
    if got.len() as u64 != w.expected_execs() {
        failures.push(format!(
            "{} events, expected exactly {} (the workload's execs)",
            got.len(),
            w.expected_execs()
        ));
    }
    for p in EXEC_PROGRAMS {
        let n = got
            .iter()
            .filter(|d| d["filename"].as_str() == Some(p.path))
            .count();
        if n as u32 != rounds {
            failures.push(format!(
                "{n} events with filename {}, expected {rounds}",
                p.path
            ));
        }
    }
    for d in &got {
        let known = EXEC_PROGRAMS
            .iter()
            .any(|p| d["filename"].as_str() == Some(p.path));
        if !known
            || d["comm"] != DRIVER_COMM
            || d["uid"] != 0
            || d["via"] != via
            || d["pid"].as_u64().is_none_or(|p| p == 0)
            || d["ts"].as_u64().is_none_or(|t| t == 0)
        {
            failures.push(format!(
                "event {d}: expected a workload filename, comm {DRIVER_COMM}, uid 0, via {via} \
                 ({} on {}.{}), a pid and a timestamp",
                if via == 1 {
                    "ring buffer"
                } else {
                    "perf fallback"
                },
                kernel.0,
                kernel.1
            ));
        }
    }
    got.len() as u64
}

/// btf_kprobes: both free-form kprobes attached (`kprobe/guess_execve` and
/// `kprobe/exec_counter` via `--attach`) on the execve syscall; one `records` event per
/// exec (probe 1, comm the driver's, each exec its own pid); the BTF hash `execs` dumped
/// with exactly those pids, each `calls` 1 and the same comm.
pub fn check_btf_kprobes(w: Workload, lines: &[Value], failures: &mut Vec<String>) -> u64 {
    for section in ["kprobe/guess_execve", "kprobe/exec_counter"] {
        let att = lines
            .iter()
            .find(|v| type_of(v) == "attached" && v["section"] == section);
        match att.and_then(|a| a["target"].as_str()) {
            Some(t) if t.to_ascii_lowercase().ends_with("sys_execve") => {}
            other => failures.push(format!(
                "{section} should be attached to the execve syscall, got {other:?}"
            )),
        }
    }
    if record_type(lines, "records") != Some("exec_record") {
        failures.push("records should decode as exec_record without flags".to_owned());
    }
    let got = events(lines, "records");
    let expected = w.expected_execs();
    if got.len() as u64 != expected {
        failures.push(format!(
            "{} records, expected exactly {expected} (the workload's execs)",
            got.len()
        ));
    }
    let mut pids: Vec<u64> = Vec::new();
    for d in &got {
        match d["pid"].as_u64() {
            Some(p) if p > 0 && d["probe"] == 1 && d["comm"] == DRIVER_COMM && d["uid"] == 0 => {
                pids.push(p)
            }
            _ => failures.push(format!(
                "record {d}: expected probe 1, comm {DRIVER_COMM}, uid 0 and a pid"
            )),
        }
    }
    pids.sort_unstable();
    pids.dedup();
    if pids.len() != got.len() {
        failures.push(format!(
            "records of {} distinct pids for {} execs (each exec forks its own)",
            pids.len(),
            got.len()
        ));
    }
    let dump = lines
        .iter()
        .rev()
        .find(|v| type_of(v) == "map" && v["map"] == "execs")
        .and_then(|v| v["entries"].as_array());
    let Some(dump) = dump else {
        failures.push("no dump of the BTF hash map execs".to_owned());
        return got.len() as u64;
    };
    let mut keys: Vec<u64> = dump.iter().filter_map(|e| e["key"].as_u64()).collect();
    keys.sort_unstable();
    if keys != pids {
        failures.push(format!("execs holds pids {keys:?}, the records {pids:?}"));
    }
    for e in dump {
        if e["value"]["calls"] != 1 || e["value"]["comm"] != DRIVER_COMM {
            failures.push(format!(
                "execs entry {e}: expected calls 1 and comm {DRIVER_COMM}"
            ));
        }
    }
    got.len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ring_lines(via: u32) -> Vec<Value> {
        let mut lines =
            vec![json!({"type":"decode","map":"events","record":{"type":"exec_event"}})];
        for (i, p) in EXEC_PROGRAMS.iter().enumerate() {
            lines.push(json!({"type":"event","map":"events","data":{
                "ts": 5, "pid": 100 + i, "uid": 0, "via": via, "comm": DRIVER_COMM,
                "filename": p.path}}));
        }
        lines
    }

    #[test]
    fn ring_fallback_path_follows_the_kernel() {
        let w = Workload::Exec { rounds: 1 };
        let mut f = Vec::new();
        assert_eq!(check_ring_fallback((6, 1), w, &ring_lines(1), &mut f), 2);
        assert!(f.is_empty(), "{f:?}");
        check_ring_fallback((4, 15), w, &ring_lines(1), &mut f);
        assert_eq!(f.len(), 2, "via 1 on 4.15 is wrong: {f:?}");
        f.clear();
        check_ring_fallback((4, 15), w, &ring_lines(2), &mut f);
        assert!(f.is_empty(), "{f:?}");
        check_ring_fallback(
            (4, 15),
            Workload::Exec { rounds: 2 },
            &ring_lines(2),
            &mut f,
        );
        assert!(!f.is_empty());
    }

    #[test]
    fn btf_kprobes_pids_must_match_the_dump() {
        let mut lines = vec![
            json!({"type":"attached","section":"kprobe/guess_execve","target":"__x64_sys_execve"}),
            json!({"type":"attached","section":"kprobe/exec_counter","target":"__x64_sys_execve"}),
            json!({"type":"decode","map":"records","record":{"type":"exec_record"}}),
        ];
        for pid in [7, 8] {
            lines.push(json!({"type":"event","map":"records","data":{
                "pid": pid, "uid": 0, "probe": 1, "comm": DRIVER_COMM}}));
        }
        let entry = |k: u64| json!({"key": k, "value": {"calls": 1, "comm": DRIVER_COMM}});
        let mut ok = lines.clone();
        ok.push(json!({"type":"map","map":"execs","entries":[entry(7), entry(8)]}));
        let w = Workload::Exec { rounds: 1 };
        let mut f = Vec::new();
        check_btf_kprobes(w, &ok, &mut f);
        assert!(f.is_empty(), "{f:?}");
        lines.push(json!({"type":"map","map":"execs","entries":[entry(7), entry(9)]}));
        check_btf_kprobes(w, &lines, &mut f);
        assert_eq!(f.len(), 1, "{f:?}");
    }
}

/// The decode line of dumped map `map`: the type its values decode as, and from where.
fn value_type<'a>(lines: &'a [Value], map: &str) -> (Option<&'a str>, Option<&'a str>) {
    let d = lines
        .iter()
        .find(|v| type_of(v) == "decode" && v["map"] == map);
    (
        d.and_then(|v| v["value"]["type"].as_str()),
        d.and_then(|v| v["value"]["from"].as_str()),
    )
}

/// The value of `key` in the last dump of `map`.
fn dumped<'a>(lines: &'a [Value], map: &str, key: u64) -> Option<&'a Value> {
    let dump = lines
        .iter()
        .rev()
        .find(|v| type_of(v) == "map" && v["map"] == map)?;
    dump["entries"]
        .as_array()?
        .iter()
        .find(|e| e["key"].as_u64() == Some(key))
        .map(|e| &e["value"])
}

/// The getppid workload's call count and the guest driver's pid, or a failure naming
/// `what` needs them.
fn getppid_driver(
    w: Workload,
    driver: Option<u64>,
    what: &str,
    failures: &mut Vec<String>,
) -> Option<(u64, u64)> {
    match (w, driver) {
        (Workload::Getppid { calls }, Some(pid)) => Some((u64::from(calls), pid)),
        _ => {
            failures.push(format!(
                "{what} needs the getppid workload and the driver's pid"
            ));
            None
        }
    }
}

/// The records of `map` whose `pid` is `pid`.
fn events_of<'a>(lines: &'a [Value], map: &str, pid: u64) -> Vec<&'a Value> {
    events(lines, map)
        .into_iter()
        .filter(|d| d["pid"].as_u64() == Some(pid))
        .collect()
}

/// legacy_layouts: libbpf's `calls_by_pid` (typed by its BPF_ANNOTATE_KV_PAIR), iproute2's
/// `elf_map` and goebpf's `go_map` (typed from the program) each count the driver's
/// getppid calls under its pid with the object's tag (20, 36, 40), and goebpf's perf array
/// without sizes streams one `sample` (tag 4) per call.
pub fn check_legacy_layouts(
    w: Workload,
    driver: Option<u64>,
    lines: &[Value],
    failures: &mut Vec<String>,
) -> u64 {
    let Some((calls, pid)) = getppid_driver(w, driver, "legacy_layouts", failures) else {
        return 0;
    };
    for (map, ty, tag) in [
        ("calls_by_pid", "calls", 20),
        ("elf_map", "elf_value", 36),
        ("go_map", "go_value", 40),
    ] {
        let (got_ty, from) = value_type(lines, map);
        if got_ty != Some(ty) {
            failures.push(format!(
                "{map}: values decode as {got_ty:?} ({from:?}), expected {ty}"
            ));
        }
        let v = dumped(lines, map, pid);
        let fields = v.map(|v| (v["count"].as_u64(), v["pid"].as_u64(), v["tag"].as_u64()));
        if fields != Some((Some(calls), Some(pid), Some(tag))) {
            failures.push(format!(
                "{map}[{pid}] = {v:?}, expected count {calls}, pid {pid}, tag {tag}"
            ));
        }
    }
    if record_type(lines, "go_events") != Some("sample") {
        failures.push("go_events records should decode as sample".into());
    }
    let mine = events_of(lines, "go_events", pid);
    if mine.len() as u64 != calls || mine.iter().any(|d| d["tag"].as_u64() != Some(4)) {
        failures.push(format!(
            "{} go_events samples of pid {pid} (expected {calls}, tag 4): {mine:?}",
            mine.len()
        ));
    }
    mine.len() as u64
}

/// kernel_stacks.c's kprobe on getppid's syscall function: one `syscalls` record per
/// getppid call of the driver, its `kstack` id resolved into `kstack_frames` through
/// /proc/kallsyms, innermost first: the probed function (`__x64_sys_getppid`,
/// `SyS_getppid`, `__do_sys_getppid`: a name with `getppid`), then the syscall entry path.
/// (A syscall tracepoint's `bpf_get_stackid` gave -EFAULT in every qemu guest, 6.1 too:
/// the unwinder found no frame above the tracepoint's saved registers there.)
pub fn check_kernel_stacks(
    w: Workload,
    driver: Option<u64>,
    lines: &[Value],
    failures: &mut Vec<String>,
) -> u64 {
    let Some((calls, pid)) = getppid_driver(w, driver, "kernel stacks", failures) else {
        return 0;
    };
    let mine = events_of(lines, "syscalls", pid);
    if mine.len() as u64 != calls {
        failures.push(format!(
            "{} syscalls records of pid {pid}, expected {calls}",
            mine.len()
        ));
    }
    for d in &mine {
        let syms: Vec<&str> = d["kstack_frames"]
            .as_array()
            .map(|f| f.iter().filter_map(|f| f["sym"].as_str()).collect())
            .unwrap_or_default();
        if !syms.first().is_some_and(|s| s.contains("getppid")) || syms.len() < 2 {
            failures.push(format!(
                "record {d}: kstack_frames should start at getppid's syscall function and \
                 name the entry path"
            ));
        }
    }
    mine.len() as u64
}

#[cfg(test)]
mod legacy_layout_tests {
    use super::*;
    use serde_json::json;

    fn lines(count: u64, samples: usize) -> Vec<Value> {
        let mut v = Vec::new();
        for (map, ty, tag) in [
            ("calls_by_pid", "calls", 20),
            ("elf_map", "elf_value", 36),
            ("go_map", "go_value", 40),
        ] {
            v.push(json!({"type": "decode", "map": map, "value": {"type": ty, "from": "x"}}));
            v.push(json!({"type": "map", "map": map, "entries": [
                {"key": 1, "value": {"count": 99, "pid": 1, "tag": tag}},
                {"key": 42, "value": {"count": count, "pid": 42, "tag": tag}},
            ]}));
        }
        v.push(json!({"type": "decode", "map": "go_events", "record": {"type": "sample"}}));
        for _ in 0..samples {
            v.push(json!({"type": "event", "map": "go_events", "data": {"pid": 42, "tag": 4}}));
        }
        v.push(json!({"type": "event", "map": "go_events", "data": {"pid": 1, "tag": 4}}));
        v
    }

    #[test]
    fn legacy_layouts_count_the_drivers_calls_only() {
        let w = Workload::Getppid { calls: 5 };
        let mut f = Vec::new();
        assert_eq!(check_legacy_layouts(w, Some(42), &lines(5, 5), &mut f), 5);
        assert!(f.is_empty(), "{f:?}");
        let mut f = Vec::new();
        check_legacy_layouts(w, Some(42), &lines(4, 6), &mut f);
        assert_eq!(f.len(), 4, "three counts and the samples: {f:?}");
        let mut f = Vec::new();
        check_legacy_layouts(w, None, &lines(5, 5), &mut f);
        assert_eq!(f.len(), 1);
    }
}

#[cfg(test)]
mod kernel_stack_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kernel_stacks_must_start_at_the_tracepoint_handler() {
        let frame = |sym: &str| json!({"addr": "0xffffffff81000000", "sym": sym, "offset": 1});
        let ok = json!({"type": "event", "map": "syscalls", "data": {"pid": 7, "kstack": 3,
            "kstack_frames": [frame("__x64_sys_getppid"), frame("do_syscall_64")]}});
        let bare = json!({"type": "event", "map": "syscalls", "data": {"pid": 7, "kstack": 3}});
        let other = json!({"type": "event", "map": "syscalls", "data": {"pid": 8}});
        let w = Workload::Getppid { calls: 2 };
        let mut f = Vec::new();
        let lines = [ok.clone(), ok.clone(), other.clone()];
        assert_eq!(check_kernel_stacks(w, Some(7), &lines, &mut f), 2);
        assert!(f.is_empty(), "{f:?}");
        let mut f = Vec::new();
        check_kernel_stacks(w, Some(7), &[ok, bare, other], &mut f);
        assert_eq!(f.len(), 1, "{f:?}");
    }
}
