//! End-to-end tests against the running kernel. They need root (CI runs as root) and
//! print `skipping: <why>` when it is missing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn c_tracepoint_streams_typed_events_map_dumps_and_printk() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    let l = spawn_typed_events(&obj);
    getppid_n(5);
    let me = std::process::id();
    wait_my_events(&l, 5);
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}");

    let attached: Vec<_> = lines.iter().filter(|v| v["type"] == "attached").collect();
    assert_eq!(attached.len(), 1, "{lines:?}");
    assert_eq!(
        attached[0]["section"],
        "tracepoint/syscalls/sys_enter_getppid"
    );
    assert_eq!(attached[0]["target"], "syscalls:sys_enter_getppid");

    let mine = my_events(&lines);
    assert_eq!(mine.len(), 5, "{lines:?}");
    for e in &mine {
        assert_eq!(e["map"], "events");
        assert_eq!(e["data"]["kind"], "KIND_ENTER", "enum by name: {e}");
        assert_eq!(e["data"]["uid"], 0);
        assert!(
            e["data"]["comm"].as_str().is_some_and(|c| !c.is_empty()),
            "{e}"
        );
        assert!(e["data"]["seq"].is_u64());
    }

    // Hash map dump decoded by key: our pid called getppid 5 times.
    let counts = last_dump(&lines, "counts");
    let ours = counts
        .iter()
        .find(|e| e["key"].as_u64() == Some(u64::from(me)))
        .unwrap_or_else(|| panic!("no entry for pid {me}: {counts:?}"));
    assert_eq!(ours["value"], 5);

    // Per-CPU array: one value per CPU plus their sum.
    let sent = last_dump(&lines, "sent");
    let values = sent[0]["values"].as_array().unwrap();
    let total: u64 = values.iter().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sent[0]["sum"].as_u64(), Some(total));

    // printk lines from trace_pipe.
    let msg = format!("getppid from {me}");
    let printk: Vec<_> = lines
        .iter()
        .filter(|v| v["type"] == "printk" && v["msg"] == msg.as_str())
        .collect();
    assert!(!printk.is_empty(), "no printk line '{msg}': {lines:?}");
    // trace_pipe shows the thread id.
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    assert_eq!(printk[0]["pid"].as_i64(), Some(i64::from(tid)));
    // The only printk caller attached: the line is attributed to it.
    assert_eq!(printk[0]["object"], "tp_getppid.bpf", "{}", printk[0]);
    assert_eq!(printk[0]["program"], "on_getppid", "{}", printk[0]);

    let s = summary(&lines);
    assert_eq!(s["attached"], 1);
    assert_eq!(s["errors"], 0);
    assert!(!loaded_program_names().iter().any(|n| n == "on_getppid"));
}

#[test]
fn lost_records_equal_bpf_counter_minus_delivered() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    // One page per CPU, drained only every 2 s: a burst must overflow.
    let mut l = Loader::spawn(&[
        "--json",
        "--pages",
        "1",
        "--flush-ms",
        "2000",
        "--wakeup-bytes",
        "100000",
        "--no-printk",
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(1);
    getppid_n(20_000);
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    let s = summary(&lines);
    let delivered = s["events"].as_u64().unwrap();
    let lost = s["lost"].as_u64().unwrap();
    let lost_lines: u64 = lines
        .iter()
        .filter(|v| v["type"] == "lost")
        .map(|v| v["count"].as_u64().unwrap())
        .sum();
    let event_lines = lines.iter().filter(|v| v["type"] == "event").count() as u64;
    let sent = last_dump(&lines, "sent")[0]["sum"].as_u64().unwrap();
    assert!(lost > 0, "a 1-page buffer should lose records: {s}");
    assert_eq!(lost, lost_lines);
    assert_eq!(delivered, event_lines);
    assert_eq!(
        sent,
        delivered + lost,
        "BPF counter {sent} vs delivered {delivered} + lost {lost}"
    );
}

#[test]
fn uprobe_and_uretprobe_on_a_test_binary() {
    let Some(_g) = root_serial() else { return };
    let bin = host_binary("uprobe_target");
    let define = format!("-DTARGET=\"{}\"", bin.display());
    let obj = bpf_object("uprobe", &[&define]);
    let mut l = Loader::spawn(&[
        "--json",
        "--event-type",
        "calls=call",
        "--uprobe-target",
        bin.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    let child = Command::new(&bin).spawn().unwrap();
    let pid = u64::from(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGTERM);
    assert!(status.success());
    let attached: Vec<_> = lines.iter().filter(|v| v["type"] == "attached").collect();
    assert_eq!(attached.len(), 2, "{lines:?}");
    let calls = |ret: u64| -> Vec<u64> {
        lines
            .iter()
            .filter(|v| {
                v["type"] == "event"
                    && v["data"]["pid"].as_u64() == Some(pid)
                    && v["data"]["ret"] == ret
            })
            .map(|v| v["data"]["arg"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(calls(0), vec![1, 2, 3, 4, 5], "{lines:?}");
    assert_eq!(calls(1), vec![10, 20, 30, 40, 50], "{lines:?}");
}

struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in &self.0 {
            // Best effort cleanup.
            Command::new("ip").args(["netns", "del", ns]).status().ok();
        }
    }
}

fn ip(args: &[&str]) {
    let st = Command::new("ip").args(args).status().expect("iproute2");
    assert!(st.success(), "ip {args:?}");
}

/// Two network namespaces joined by a veth pair: `veth-a` 192.0.2.1 in the first,
/// `veth-b` 192.0.2.2 in the second. Deleted when the guard drops.
fn veth_netns() -> (Netns, String, String) {
    let id = std::process::id();
    let (a, b) = (format!("ldra{id}"), format!("ldrb{id}"));
    let ns = Netns(vec![a.clone(), b.clone()]);
    ip(&["netns", "add", &a]);
    ip(&["netns", "add", &b]);
    ip(&[
        "link", "add", "veth-a", "netns", &a, "type", "veth", "peer", "name", "veth-b", "netns", &b,
    ]);
    ip(&["-n", &a, "addr", "add", "192.0.2.1/24", "dev", "veth-a"]);
    ip(&["-n", &b, "addr", "add", "192.0.2.2/24", "dev", "veth-b"]);
    ip(&["-n", &a, "link", "set", "veth-a", "up"]);
    ip(&["-n", &b, "link", "set", "veth-b", "up"]);
    (ns, a, b)
}

#[test]
fn xdp_and_socket_filter_on_a_veth_pair_in_a_netns() {
    xdp_and_socket_filter(&[]);
}

/// `--legacy`: the loader's own XDP load and netlink attachment (what kernels below 4.17
/// get, where aya's expected_attach_type is refused), detached again at exit.
#[test]
fn xdp_without_aya_attach_type_in_legacy_mode() {
    xdp_and_socket_filter(&["--legacy"]);
}

fn xdp_and_socket_filter(extra: &[&str]) {
    let Some(_g) = root_serial() else { return };
    let (_ns, a, b) = veth_netns();

    let obj = bpf_object("net", &[]);
    let mut args = vec!["--json", "--iface", "veth-a"];
    args.extend_from_slice(extra);
    args.push(obj.to_str().unwrap());
    let mut l = Loader::spawn_with(&["ip", "netns", "exec", &a], &args);
    l.wait_attached(2);
    // Ten UDP datagrams from the other namespace (plus ARP) to veth-a.
    let st = Command::new("ip")
        .args(["netns", "exec", &b, "bash", "-c"])
        .arg("for i in 1 2 3 4 5 6 7 8 9 10; do echo x > /dev/udp/192.0.2.1/9; done")
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    let kinds: Vec<_> = lines
        .iter()
        .filter(|v| v["type"] == "attached")
        .map(|v| {
            (
                v["kind"].as_str().unwrap().to_owned(),
                v["section"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("xdp".into(), "xdp/count_pass".into())),
        "{lines:?}"
    );
    assert!(
        kinds.contains(&("socket_filter".into(), "socketfilter/count_all".into())),
        "{lines:?}"
    );
    let packets = last_dump(&lines, "packets");
    let xdp = packets.iter().find(|e| e["key"] == 0).unwrap()["value"]
        .as_u64()
        .unwrap();
    let filt = packets.iter().find(|e| e["key"] == 1).unwrap()["value"]
        .as_u64()
        .unwrap();
    assert!(xdp >= 10, "XDP saw {xdp} packets: {lines:?}");
    assert!(filt >= 10, "socket filter saw {filt} packets: {lines:?}");
    let passed = lines
        .iter()
        .rev()
        .find(|v| v["type"] == "packets")
        .unwrap_or_else(|| panic!("no packets line: {lines:?}"));
    assert!(passed["count"].as_u64().unwrap() >= 10, "{passed}");
    // Detached at exit: the interface has no XDP program left.
    let link = Command::new("ip")
        .args(["-n", &a, "-d", "link", "show", "veth-a"])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(!link.contains("prog/xdp"), "{link}");
}

/// redbpf's `tc_action/NAME` runs as a classifier on `--iface` ingress and its verdicts
/// count: datagrams to UDP port 9 are dropped before a listener sees them, port 10 passes.
#[test]
fn tc_action_drops_udp_to_port_9_on_a_veth_in_a_netns() {
    let Some(_g) = root_serial() else { return };
    let (_ns, a, b) = veth_netns();
    let obj = bpf_object("tc", &[]);
    let mut l = Loader::spawn_with(
        &["ip", "netns", "exec", &a],
        &["--json", "--iface", "veth-a", obj.to_str().unwrap()],
    );
    l.wait_attached(1);
    // A listener on ports 9 and 10 in the first namespace, counting for 3 s.
    let listener = Command::new("ip")
        .args(["netns", "exec", &a, "/usr/bin/python3", "-c"])
        .arg(
            "import select, socket, time\n\
             socks = {}\n\
             for port in (9, 10):\n\
             \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
             \x20   s.bind(('192.0.2.1', port)); socks[s] = port\n\
             got = {9: 0, 10: 0}\n\
             end = time.time() + 3\n\
             while time.time() < end:\n\
             \x20   for s in select.select(list(socks), [], [], 0.1)[0]:\n\
             \x20       s.recv(64); got[socks[s]] += 1\n\
             print(got[9], got[10])\n",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let st = Command::new("ip")
        .args(["netns", "exec", &b, "bash", "-c"])
        .arg(
            "for i in 1 2 3 4 5 6 7 8 9 10; do \
             echo x > /dev/udp/192.0.2.1/9; echo y > /dev/udp/192.0.2.1/10; done",
        )
        .status()
        .unwrap();
    assert!(st.success());
    let out = listener.wait_with_output().unwrap();
    let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    let attached = lines
        .iter()
        .find(|v| v["type"] == "attached")
        .unwrap_or_else(|| panic!("{lines:?}"));
    assert_eq!(attached["kind"], "tc_action", "{attached}");
    assert_eq!(attached["section"], "tc_action/drop_udp_9", "{attached}");
    assert_eq!(attached["target"], "veth-a ingress", "{attached}");
    assert_eq!(got, "0 10", "the listener's datagrams on ports 9 and 10");
    let verdicts = last_dump(&lines, "verdicts");
    let count = |k: u64| {
        verdicts.iter().find(|e| e["key"] == k).unwrap()["value"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(count(1), 10, "dropped: {lines:?}");
    assert!(count(0) >= 10, "passed: {lines:?}");
}

#[test]
fn closed_stdout_and_sigint_leave_nothing_attached() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    // `| head -1`: the loader must notice, detach and exit 0.
    let script = format!(
        "{} --json {} | head -1; echo \"status=${{PIPESTATUS[0]}}\"",
        loader_bin(),
        obj.display()
    );
    let child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    getppid_n(10);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "kernel");
    assert!(text.contains("status=0"), "{text}");
    assert!(!loaded_program_names().iter().any(|n| n == "on_getppid"));

    // SIGINT with events flowing.
    let mut l = Loader::spawn(&["--json", obj.to_str().unwrap()]);
    l.wait_attached(1);
    assert!(loaded_program_names().iter().any(|n| n == "on_getppid"));
    getppid_n(10);
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    summary(&lines);
    assert!(!loaded_program_names().iter().any(|n| n == "on_getppid"));
    let kprobe_events =
        std::fs::read_to_string("/sys/kernel/tracing/kprobe_events").unwrap_or_default();
    assert!(
        !kprobe_events.contains("aya"),
        "leftover kprobe events: {kprobe_events}"
    );
}

#[test]
fn kprobe_without_kprobe_support_reports_one_clear_error_and_others_run() {
    let Some(_g) = root_serial() else { return };
    let tp = bpf_object("tp_getppid", &[]);
    let kp = bpf_object("kprobe_execve", &[]);
    let mut l = Loader::spawn(&[
        "--json",
        "--duration",
        "1",
        kp.to_str().unwrap(),
        tp.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    let (status, lines) = l.finish();
    assert!(status.success(), "{lines:?}");
    let kprobe_supported = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    let kp_line = lines
        .iter()
        .find(|v| {
            v["object"] == "kprobe_execve.bpf" && (v["type"] == "attached" || v["type"] == "error")
        })
        .unwrap_or_else(|| panic!("{lines:?}"));
    if kprobe_supported {
        assert_eq!(kp_line["type"], "attached", "{kp_line}");
        assert!(kp_line["target"].as_str().unwrap().contains("sys_execve"));
    } else {
        assert_eq!(kp_line["type"], "error");
        assert_eq!(kp_line["section"], "kprobe/sys_execve");
        assert!(
            kp_line["error"].as_str().unwrap().contains("kprobe"),
            "{kp_line}"
        );
    }
    assert!(lines
        .iter()
        .any(|v| v["type"] == "attached" && v["program"] == "on_getppid"));
}

#[test]
fn project_probes_execsnoop_and_exectrack() {
    let Some(_g) = root_serial() else { return };
    let (Some(snoop), Some(track)) = (project_probe("execsnoop"), project_probe("exectrack"))
    else {
        eprintln!("skipping: target/bpf/programs/{{execsnoop,exectrack}} not built (run `cargo bpf build` / make)");
        return;
    };
    let mut l = Loader::spawn(&["--json", snoop.to_str().unwrap(), track.to_str().unwrap()]);
    l.wait_attached(2);
    let child = Command::new("/bin/true")
        .args(["loader-test-arg", "two"])
        .spawn()
        .unwrap();
    let pid = u64::from(child.id());
    child.wait_with_output().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    let ev = lines
        .iter()
        .find(|v| {
            v["type"] == "event"
                && v["object"] == "execsnoop"
                && v["data"]["pid"].as_u64() == Some(pid)
        })
        .unwrap_or_else(|| panic!("no execsnoop event for {pid}: {lines:?}"));
    assert_eq!(ev["data"]["filename"], "/bin/true", "{ev}");
    let argv = ev["data"]["argv"]
        .as_array()
        .unwrap_or_else(|| panic!("{ev}"));
    assert!(argv.iter().any(|a| a == "loader-test-arg"), "{ev}");
    let execs = lines
        .iter()
        .rev()
        .find(|v| v["type"] == "map" && v["object"] == "exectrack")
        .and_then(|v| v["entries"].as_array())
        .unwrap_or_else(|| panic!("no exectrack dump: {lines:?}"));
    let e = execs
        .iter()
        .find(|e| e["key"].as_u64() == Some(pid))
        .unwrap_or_else(|| panic!("pid {pid} not tracked: {execs:?}"));
    assert_eq!(e["value"]["pid"].as_u64(), Some(pid));
    assert!(e["value"]["comm"].is_string());
}

/// A program using `.rodata` fails alone where global data is missing (below 5.2, and with
/// `--legacy`): compat_tracepoints' sched_process_exit program keeps a string constant in
/// `.rodata.str1.1` (the redbpf 2.x crate compiled as it is), its getppid program runs.
#[test]
fn global_data_program_fails_alone_in_legacy_mode() {
    let Some(_g) = root_serial() else { return };
    let obj = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bpf/compat/compat_tracepoints/compat_tracepoints.elf");
    if !obj.is_file() {
        panic!("{} missing: run `make compat-probes`", obj.display());
    }
    let mut l = Loader::spawn(&["--json", "--legacy", obj.to_str().unwrap()]);
    l.wait_attached(1);
    getppid_n(5);
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    let attached: Vec<&str> = lines
        .iter()
        .filter(|v| v["type"] == "attached")
        .filter_map(|v| v["program"].as_str())
        .collect();
    assert_eq!(attached, ["outer_getppid"], "{lines:?}");
    let err = lines
        .iter()
        .find(|v| v["type"] == "error")
        .unwrap_or_else(|| panic!("no error line: {lines:?}"));
    assert_eq!(err["program"], "outer_process_exit", "{err}");
    assert_eq!(
        err["section"], "tracepoint/sched:sched_process_exit",
        "{err}"
    );
    let msg = err["error"].as_str().unwrap();
    assert!(msg.contains(".rodata") && msg.contains("5.2"), "{msg}");
}

/// A perf event array defined as goebpf's execsnoop defines it (type and max_entries, no
/// key or value size): the loader fills in 4 and 4 as goebpf, cilium/ebpf and libbpf do
/// (before: `failed to create map 'events': Invalid argument`), and its records stream.
#[test]
fn perf_array_without_sizes_is_completed() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &["-DGOEBPF_PERF_DEF"]);
    let l = spawn_typed_events(&obj);
    getppid_n(5);
    wait_my_events(&l, 5);
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    assert!(lines.iter().all(|v| v["type"] != "error"), "{lines:?}");
    assert!(my_events(&lines).len() >= 5, "{lines:?}");
}

/// redbpf's XDP capture pattern (`MapData::with_payload`, compat-probes' `compat_xdp`): the
/// record's `payload` is the packet bytes from `offset` to `size`, equal to what was sent.
#[test]
fn xdp_map_data_payload_is_the_packet_sent() {
    let Some(_g) = root_serial() else { return };
    let obj = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/bpf/compat/compat_xdp/compat_xdp.elf");
    assert!(
        obj.is_file(),
        "{} missing: run `make compat-probes`",
        obj.display()
    );
    let (_ns, a, b) = veth_netns();
    let args = [
        "--json",
        "--iface",
        "veth-a",
        "--programs",
        "inspect",
        obj.to_str().unwrap(),
    ];
    let mut l = Loader::spawn_with(&["ip", "netns", "exec", &a], &args);
    l.wait_attached(1);
    let sent = "mapdata-payload!";
    let st = Command::new("ip")
        .args(["netns", "exec", &b, "bash", "-c"])
        .arg(format!(
            "for i in 1 2 3; do printf {sent} > /dev/udp/192.0.2.1/9; done"
        ))
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    let hex: String = sent.bytes().map(|b| format!("{b:02x}")).collect();
    let udp: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "event" && v["map"] == "PACKETS")
        .filter(|v| {
            v["data"]["payload"]
                .as_str()
                .is_some_and(|p| p.ends_with(&hex))
        })
        .collect();
    assert_eq!(udp.len(), 3, "{lines:?}");
    for e in udp {
        let d = &e["data"];
        // Ethernet 14 + IPv4 20 + UDP 8 + the text: all below the probe's 64-byte cap.
        let len = 14 + 20 + 8 + sent.len() as u64;
        assert_eq!(d["data"]["len"], len, "{e}");
        assert_eq!(
            (d["offset"].as_u64(), d["size"].as_u64()),
            (Some(14), Some(len)),
            "{e}"
        );
        let payload = d["payload"].as_str().unwrap();
        assert_eq!(payload.len() as u64, 2 * (len - 14), "{e}");
        assert!(payload.starts_with("45"), "an IPv4 header first: {e}");
    }
}

/// Another reader holding trace_pipe: one error line saying so (counted), the rest runs;
/// `--strict` makes it exit 1.
#[test]
fn a_busy_trace_pipe_is_an_error_line_not_silence() {
    let Some(_g) = root_serial() else { return };
    let tracefs = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .into_iter()
        .map(std::path::Path::new)
        .find(|p| p.join("trace_pipe").exists())
        .expect("tracefs");
    let _holder = std::fs::File::open(tracefs.join("trace_pipe")).unwrap();
    let obj = bpf_object("tp_getppid", &[]);
    for (strict, want) in [(false, Some(0)), (true, Some(1))] {
        let mut args = vec!["--json", "--duration", "1"];
        if strict {
            args.push("--strict");
        }
        let out = Command::new(loader_bin())
            .args(&args)
            .arg(&obj)
            .output()
            .unwrap();
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(out.status.code(), want, "strict={strict}: {lines:?}");
        let errors: Vec<&Value> = lines.iter().filter(|v| v["type"] == "error").collect();
        assert_eq!(errors.len(), 1, "{lines:?}");
        let e = errors[0]["error"].as_str().unwrap();
        assert!(e.contains("another reader holds it"), "{e}");
        assert_eq!(errors[0]["object"], "tp_getppid.bpf");
        assert_eq!(summary(&lines)["errors"], 1);
    }
}

/// Two attached programs calling bpf_trace_printk: the loader cannot tell whose a line
/// is, so lines are marked foreign, and `--no-foreign-printk` leaves them out.
#[test]
fn printk_lines_of_unknown_origin_are_marked_and_can_be_left_out() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    let me = std::process::id();
    let msg = format!("getppid from {me}");
    for leave_out in [false, true] {
        let o = obj.to_str().unwrap();
        let mut args = vec!["--json", o, o];
        if leave_out {
            args.push("--no-foreign-printk");
        }
        let mut l = Loader::spawn(&args);
        l.wait_attached(2);
        getppid_n(3);
        std::thread::sleep(Duration::from_millis(500));
        let (status, lines) = l.stop(libc::SIGINT);
        assert!(status.success());
        let printk: Vec<&Value> = lines
            .iter()
            .filter(|v| v["type"] == "printk" && v["msg"] == msg.as_str())
            .collect();
        if leave_out {
            assert!(printk.is_empty(), "{printk:?}");
            assert!(summary(&lines)["filtered"].as_u64().unwrap() >= 3);
        } else {
            assert!(printk.len() >= 3, "{lines:?}");
            assert!(printk
                .iter()
                .all(|p| p["foreign"] == true && p.get("object").is_none()));
        }
    }
}

/// Two objects calling bpf_trace_printk with different formats (one built on the stack,
/// one in .rodata): each line carries the program whose format it matches; a third
/// program's lines (run by another loader) match neither and are foreign.
#[test]
fn printk_lines_are_told_apart_by_their_formats() {
    let Some(_g) = root_serial() else { return };
    let stack_fmt = bpf_object("tp_getppid", &[]);
    let rodata_fmt = bpf_object("printk_getpgid", &[]);
    let other = bpf_object("printk_getpgid", &["-DOTHER"]);
    let mut l = Loader::spawn(&[
        "--json",
        stack_fmt.to_str().unwrap(),
        rodata_fmt.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    let mut second = Loader::spawn(&["--json", "--no-printk", other.to_str().unwrap()]);
    second.wait_attached(1);
    let me = std::process::id();
    getppid_n(3);
    for _ in 0..2 {
        // SAFETY: getpgid of a (likely absent) pid: an ESRCH at worst.
        unsafe { libc::getpgid(424242) };
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    second.stop(libc::SIGINT);
    let printk = |msg: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|v| v["type"] == "printk" && v["msg"] == msg)
            .collect()
    };
    let from_stack = printk(&format!("getppid from {me}"));
    assert_eq!(from_stack.len(), 3, "{lines:?}");
    assert!(from_stack
        .iter()
        .all(|p| p["object"] == "tp_getppid.bpf" && p["program"] == "on_getppid"));
    let from_rodata = printk(&format!("getpgid(424242) by {me}"));
    assert_eq!(from_rodata.len(), 2, "{lines:?}");
    assert!(from_rodata
        .iter()
        .all(|p| p["object"] == "printk_getpgid.bpf" && p["program"] == "getpgid_printk"));
    let foreign = printk(&format!("someone else: 424242 {me}"));
    assert_eq!(foreign.len(), 2, "{lines:?}");
    assert!(foreign
        .iter()
        .all(|p| p["foreign"] == true && p.get("object").is_none()));
}
