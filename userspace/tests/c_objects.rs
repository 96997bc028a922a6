//! C objects as the ecosystem builds them, loaded with no flags: libbpf's own headers with
//! BTF-defined maps (a ring buffer, a typed hash map, a perf array without max_entries),
//! and legacy `maps` definitions in libbpf's, iproute2's and goebpf's layouts with
//! BPF_ANNOTATE_KV_PAIR. Each record and map value is checked field by field against the
//! system calls the test itself makes. Root only.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn decode<'a>(lines: &'a [Value], map: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["type"] == "decode" && v["map"] == map)
        .unwrap_or_else(|| panic!("no decode line for {map}: {lines:?}"))
}

fn getppid(n: usize) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
}

fn getpgid(n: usize) {
    for _ in 0..n {
        // SAFETY: getpgid(0) asks about the caller; no preconditions.
        unsafe { libc::getpgid(0) };
    }
}

/// The comm the kernel reports for this thread (the test harness names its threads).
fn my_comm() -> String {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .unwrap()
        .trim_end()
        .to_owned()
}

#[test]
fn libbpf_btf_maps_ring_buffer_and_perf_array_decode_without_flags() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("libbpf_maps", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&["--json", obj.to_str().unwrap()]);
    l.wait_attached(2);
    let me = std::process::id();
    getppid(5);
    getpgid(3);
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");

    assert_eq!(decode(&lines, "rb")["record"]["type"], "event");
    assert_eq!(decode(&lines, "perf")["record"]["type"], "other");
    let stats = decode(&lines, "stats");
    assert_eq!(
        (&stats["key"]["type"], &stats["value"]["type"]),
        (&"u32".into(), &"stat".into())
    );
    assert_eq!(stats["value"]["from"], "the BTF map definition");

    let mine = |map: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|v| v["type"] == "event" && v["map"] == map && v["data"]["pid"] == me)
            .map(|v| &v["data"])
            .collect()
    };
    let rb = mine("rb");
    let seqs: Vec<u64> = rb.iter().map(|d| d["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        [1, 2, 3, 4, 5],
        "ring buffer records in order: {rb:?}"
    );
    for d in &rb {
        assert_eq!(d["uid"], 0);
        assert_eq!(d["comm"], my_comm().as_str());
    }
    let perf = mine("perf");
    assert_eq!(perf.len(), 3, "{lines:?}");
    for d in &perf {
        assert_eq!(d["kind"], 7);
        assert_eq!(
            d["magic"], "1234605616436508552",
            "u64 above 2^53 as a string"
        );
    }
    let dump = last_dump(&lines, "stats");
    let entry = dump
        .iter()
        .find(|e| e["key"] == me)
        .expect("our pid in stats");
    assert_eq!(entry["value"]["calls"], 5);
    // SAFETY: gettid has no preconditions.
    assert_eq!(entry["value"]["last_tid"], unsafe { libc::gettid() });
    let s = summary(&lines);
    assert_eq!(s["errors"], 0);
    let counted: u64 = s["maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["events"].as_u64().unwrap())
        .sum();
    assert_eq!(
        counted,
        s["events"].as_u64().unwrap(),
        "ring buffer counted with the perf map"
    );
}

#[test]
fn legacy_map_layouts_of_libbpf_iproute2_and_goebpf_decode_without_flags() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("legacy_layouts", &[]);
    let mut l = Loader::spawn(&["--json", obj.to_str().unwrap()]);
    l.wait_attached(1);
    let me = std::process::id();
    getppid(4);
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");

    let calls = decode(&lines, "calls_by_pid");
    assert_eq!(calls["value"]["type"], "calls");
    assert_eq!(calls["value"]["from"], "the map's annotation");
    assert_eq!(decode(&lines, "elf_map")["value"]["type"], "elf_value");
    assert_eq!(decode(&lines, "go_map")["value"]["type"], "go_value");
    assert_eq!(decode(&lines, "go_events")["record"]["type"], "sample");
    for (map, tag) in [("calls_by_pid", 20), ("elf_map", 36), ("go_map", 40)] {
        let dump = last_dump(&lines, map);
        let v = &dump
            .iter()
            .find(|e| e["key"] == me)
            .unwrap_or_else(|| panic!("{map}: {dump:?}"))["value"];
        assert_eq!(
            (v["count"].as_u64(), v["pid"].as_u64(), v["tag"].as_u64()),
            (Some(4), Some(me.into()), Some(tag)),
            "{map}: {v}"
        );
    }
    let samples: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "event" && v["map"] == "go_events" && v["data"]["pid"] == me)
        .collect();
    assert_eq!(
        samples.len(),
        4,
        "goebpf's perf array without sizes streams: {lines:?}"
    );
    assert!(samples.iter().all(|e| e["data"]["tag"] == 4));
}

/// Free-form sections (`uprobe/count_calls`, `tracepoint/my_getppid`) attach where
/// `--attach` says; without it they fail, each error naming the flag that would fix it.
#[test]
fn free_form_sections_go_where_attach_says() {
    let Some(_g) = root_serial() else { return };
    let bin = host_binary("uprobe_target");
    let obj = bpf_object("freeform", &["-I/usr/include/x86_64-linux-gnu"]);
    let uprobe = format!("uprobe/count_calls={}:loader_test_target", bin.display());
    let mut l = Loader::spawn(&[
        "--json",
        "--attach",
        &uprobe,
        "--attach",
        "tracepoint/my_getppid=syscalls:sys_enter_getppid",
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    let out = std::process::Command::new(&bin).output().unwrap();
    assert!(out.status.success());
    getppid(3);
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    let targets: Vec<&str> = lines
        .iter()
        .filter(|v| v["type"] == "attached")
        .map(|v| v["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"syscalls:sys_enter_getppid"),
        "{targets:?}"
    );
    assert!(
        targets.iter().any(|t| t.ends_with(":loader_test_target")),
        "{targets:?}"
    );
    let hits = last_dump(&lines, "hits");
    let slot = |k: u64| {
        hits.iter().find(|e| e["key"] == k).unwrap()["value"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        slot(0),
        5,
        "the target binary calls its function 5 times: {hits:?}"
    );
    assert!(slot(1) >= 3, "{hits:?}");

    // Without --attach: each program fails alone, and the error says what to pass.
    let out = std::process::Command::new(loader_bin())
        .args(["--json", "--duration", "0.5", "--uprobe-target"])
        .arg(&bin)
        .arg(&obj)
        .output()
        .unwrap();
    let errors: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "error")
        .map(|v| v["error"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("has no symbol count_calls") && e.contains("--attach")),
        "{errors:?}"
    );
    // An --attach section no object has is a usage error.
    let out = std::process::Command::new(loader_bin())
        .args(["--attach", "kprobe/nope=vfs_read"])
        .arg(&obj)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--attach kprobe/nope=vfs_read"));
}

#[test]
fn event_type_naming_no_map_or_no_type_is_a_usage_error() {
    let obj = bpf_object("legacy_layouts", &[]);
    for pair in ["nosuchmap=sample", "go_events=no_such_struct"] {
        let out = std::process::Command::new(loader_bin())
            .args(["--json", "--event-type", pair])
            .arg(&obj)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{pair}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&format!("--event-type {pair}")), "{stderr}");
    }
}

/// A map whose key has a `slot` field prints as log2 histograms, one per pid, with the
/// counts of the values the test passed to getpgid(2).
#[test]
fn slot_keyed_maps_print_as_log2_histograms() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("hist", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&["--json", obj.to_str().unwrap()]);
    l.wait_attached(1);
    let me = std::process::id();
    for v in [1, 2, 3, 5, 9, 1000, 1000] {
        // SAFETY: getpgid of a (likely absent) pid: an ESRCH at worst.
        unsafe { libc::getpgid(v) };
    }
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    let hist = lines
        .iter()
        .find(|v| v["type"] == "hist" && v["key"]["pid"] == me)
        .unwrap_or_else(|| panic!("no histogram of our pid: {lines:?}"));
    let buckets: Vec<(u64, u64, u64)> = hist["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["min"].as_u64().unwrap(),
                b["max"].as_u64().unwrap(),
                b["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        buckets,
        [
            (0, 1, 1),
            (2, 3, 2),
            (4, 7, 1),
            (8, 15, 1),
            (16, 31, 0),
            (32, 63, 0),
            (64, 127, 0),
            (128, 255, 0),
            (256, 511, 0),
            (512, 1023, 2)
        ]
    );
}

/// Stack ids in records come out as symbolized frames: a uprobe's user stack names the
/// test binary's own functions, a syscall tracepoint's kernel stack the kernel's.
#[test]
fn stack_ids_become_symbolized_frames() {
    let Some(_g) = root_serial() else { return };
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/stack_target.c");
    let bin = tmp().join("stack_target");
    let st = std::process::Command::new("clang")
        .args(["-O1", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    let obj = bpf_object("stacks", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&[
        "--json",
        "--uprobe-target",
        bin.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    let mut child = std::process::Command::new(&bin).spawn().unwrap();
    let pid = child.id();
    getppid(2);
    std::thread::sleep(Duration::from_millis(1500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(child.wait().unwrap().success());
    assert!(status.success());
    let calls: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "event" && v["map"] == "calls" && v["data"]["pid"] == pid)
        .collect();
    assert_eq!(calls.len(), 3, "{lines:?}");
    for c in &calls {
        let frames = c["data"]["user_stack"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}"));
        let syms: Vec<&str> = frames.iter().filter_map(|f| f["sym"].as_str()).collect();
        assert_eq!(syms.first(), Some(&"stack_test_leaf"), "{c}");
        assert!(
            syms.contains(&"stack_test_middle") && syms.contains(&"main"),
            "{c}"
        );
        assert!(
            frames[0]["module"]
                .as_str()
                .unwrap()
                .ends_with("stack_target"),
            "{c}"
        );
    }
    let me = std::process::id();
    let sys: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "event" && v["map"] == "syscalls" && v["data"]["pid"] == me)
        .collect();
    assert!(sys.len() >= 2, "{lines:?}");
    let frames = sys[0]["data"]["kstack_frames"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", sys[0]));
    assert!(
        frames
            .iter()
            .any(|f| f["sym"].as_str().is_some_and(|s| s.contains("syscall"))),
        "a syscall entry function in the kernel stack: {frames:?}"
    );
    assert!(frames
        .iter()
        .all(|f| f["addr"].as_str().unwrap().starts_with("0xffff")));
}

/// The kernel's release is at least `major.minor`.
fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut parts = r.trim().split(|c: char| !c.is_ascii_digit());
    let v: (u32, u32) = (
        parts.next().unwrap().parse().unwrap(),
        parts.next().unwrap().parse().unwrap(),
    );
    v >= (major, minor)
}

/// libbpf-tools' ring-buffer-or-perf object: one `exec_event` per exec the test makes,
/// typed with no flags, through the ring buffer on a 5.8+ kernel (`via` 1).
#[test]
fn ring_buffer_with_perf_fallback_streams_one_typed_event_per_exec() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("ringbuf_fallback", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&["--json", obj.to_str().unwrap()]);
    l.wait_attached(1);
    let mut children = Vec::new();
    for (path, args) in [
        ("/bin/true", &["ring", "one"][..]),
        ("/bin/echo", &["ring", "two"][..]),
        ("/bin/true", &["ring"][..]),
    ] {
        let mut c = std::process::Command::new(path)
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        children.push((c.id(), path));
        assert!(c.wait().unwrap().success());
    }
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    assert_eq!(decode(&lines, "events")["record"]["type"], "exec_event");
    let via = if kernel_at_least(5, 8) { 1 } else { 2 };
    let comm = my_comm();
    for (pid, path) in &children {
        let mine: Vec<&Value> = lines
            .iter()
            .filter(|v| v["type"] == "event" && v["map"] == "events" && v["data"]["pid"] == *pid)
            .map(|v| &v["data"])
            .collect();
        assert_eq!(mine.len(), 1, "one event for pid {pid}: {lines:?}");
        let d = mine[0];
        assert_eq!(d["filename"], *path, "{d}");
        assert_eq!(d["comm"], comm.as_str(), "comm before the exec: {d}");
        assert_eq!(
            (d["uid"].as_u64(), d["via"].as_u64()),
            (Some(0), Some(via)),
            "{d}"
        );
        assert!(d["ts"].as_u64().unwrap() > 0);
    }
    assert_eq!(summary(&lines)["errors"], 0);
}

/// What the loader makes of the same object for a kernel without ring buffers and without
/// BTF of its own: `events` a perf event array (4-byte keys and values, one slot per
/// CPU), both CO-RE existence checks answered 0, `heap`'s BTF types dropped when asked;
/// `loader check` calls it fine on 4.15 and names no ring buffer requirement on 4.4.
#[test]
fn ring_buffer_fallback_object_as_prepared_for_kernels_without_ring_buffers() {
    use loader::object::{sanitize, AyaPlan, Object};
    let obj = bpf_object("ringbuf_fallback", &["-I/usr/include/x86_64-linux-gnu"]);
    let parsed = Object::parse("rf", std::fs::read(&obj).unwrap()).unwrap();
    assert_eq!(parsed.fallback_ring_buffers(), ["events"]);
    // The relocations from the object as compiled (a kernel before 5.0 gets no .BTF.ext),
    // the instructions from `bytes`.
    let compiled = object::File::parse(parsed.bytes()).unwrap();
    let guard_values = |bytes: &[u8]| -> Vec<u32> {
        use object::{Object as _, ObjectSection as _};
        let f = object::File::parse(bytes).unwrap();
        let sec = |n| f.section_by_name(n).unwrap().data().unwrap();
        let orig = |n| compiled.section_by_name(n).unwrap().data().unwrap();
        let relos = sanitize::core_relocations(orig(".BTF"), orig(".BTF.ext")).unwrap();
        assert!(!relos.is_empty());
        relos
            .iter()
            .map(|r| {
                assert_eq!((r.kind, r.type_name.as_str()), (8, "bpf_ringbuf"));
                let code = sec(&r.section);
                let at = r.insn_off as usize + 4;
                u32::from_le_bytes(code[at..at + 4].try_into().unwrap())
            })
            .collect()
    };
    // As compiled: "exists" (1), the ring buffer path.
    assert!(guard_values(parsed.bytes()).iter().all(|&v| v == 1));
    let plan = AyaPlan {
        ncpus: Some(3),
        drop_btf_type_ids: true,
        ring_buffers: Some(false),
        resolve_core_locally: true,
        func_info: true,
        ..AyaPlan::default()
    };
    let out = parsed.aya_bytes(&plan).unwrap();
    assert!(guard_values(&out).iter().all(|&v| v == 0));
    // Before 5.0 (no BTF with programs): legacy map definitions, the BTF hidden.
    let legacy = parsed
        .aya_bytes(&AyaPlan {
            func_info: false,
            ..plan.clone()
        })
        .unwrap();
    assert!(guard_values(&legacy).iter().all(|&v| v == 0));
    let legacy = Object::parse("rf", legacy).unwrap();
    assert!(legacy.btf_maps.is_empty(), "{:?}", legacy.btf_maps);
    let def = |name: &str| {
        let d = legacy.map(name).unwrap().def;
        (d.map_type, d.key_size, d.value_size, d.max_entries)
    };
    assert_eq!(
        def("events"),
        (4, 4, 4, 3),
        "a perf event array, a slot per CPU"
    );
    let heap = parsed.btf_maps.iter().find(|m| m.name == "heap").unwrap();
    assert_eq!(
        def("heap"),
        (6, 4, heap.value_size.unwrap(), 1),
        "the per-CPU heap as defined"
    );
    let again = Object::parse("rf", out).unwrap();
    let events = again.btf_maps.iter().find(|m| m.name == "events").unwrap();
    assert_eq!(events.map_type, Some(4), "a perf event array: {events:?}");
    let heap = again.btf_maps.iter().find(|m| m.name == "heap").unwrap();
    assert_eq!(
        (heap.map_type, &heap.key, &heap.value),
        (Some(6), &None, &None)
    );
    // With ring buffers nothing changes.
    let kept = parsed
        .aya_bytes(&AyaPlan {
            ring_buffers: Some(true),
            resolve_core_locally: true,
            func_info: true,
            ..AyaPlan::default()
        })
        .unwrap();
    assert!(guard_values(&kept).iter().all(|&v| v == 1));
    let kept = Object::parse("rf", kept).unwrap();
    assert_eq!(kept.btf_maps, parsed.btf_maps);

    let check = |k: &str| {
        std::process::Command::new(loader_bin())
            .args(["check", "--json", "--kernel", k])
            .arg(&obj)
            .output()
            .unwrap()
    };
    let out = check("4.15");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = String::from_utf8_lossy(&check("4.4").stdout).into_owned();
    assert!(out.contains("map heap (percpu_array)"), "{out}");
    assert!(!out.contains(r#""kind":"ringbuf""#), "{out}");
    // Before perf event arrays (4.3) the fallback map itself is the problem.
    let out = String::from_utf8_lossy(&check("4.2").stdout).into_owned();
    assert!(
        out.contains("map events (ringbuf from 5.8, perf_event_array before)"),
        "{out}"
    );
    assert!(!out.contains(r#""kind":"ringbuf""#), "{out}");
}

/// BTF maps in legacy mode (what a 4.x kernel gets): created from their sizes alone, yet
/// still dumped and decoded with their BTF types; the free-form and goebpf kprobe
/// programs of btf_kprobes pass the verifier in both modes.
#[test]
fn btf_maps_load_without_btf_types_in_legacy_mode() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("libbpf_maps", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&["--json", "--legacy", obj.to_str().unwrap()]);
    l.wait_attached(2);
    let me = std::process::id();
    getppid(4);
    std::thread::sleep(Duration::from_millis(300));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    let kernel = lines.iter().find(|v| v["type"] == "kernel").unwrap();
    assert_eq!(
        (&kernel["legacy"], &kernel["btf"]),
        (&true.into(), &false.into())
    );
    assert_eq!(decode(&lines, "stats")["value"]["type"], "stat");
    let dump = last_dump(&lines, "stats");
    let entry = dump.iter().find(|e| e["key"] == me).expect("our pid");
    assert_eq!(entry["value"]["calls"], 4, "{entry}");
    let rb: Vec<u64> = lines
        .iter()
        .filter(|v| v["type"] == "event" && v["map"] == "rb" && v["data"]["pid"] == me)
        .map(|v| v["data"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(rb, [1, 2, 3, 4]);

    let kp = bpf_object("btf_kprobes", &["-I/usr/include/x86_64-linux-gnu"]);
    for legacy in [false, true] {
        let mut args = vec!["--verify", "--json"];
        if legacy {
            args.push("--legacy");
        }
        let out = std::process::Command::new(loader_bin())
            .args(&args)
            .arg(&kp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let loaded: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "loaded")
            .map(|v| v["section"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(loaded, ["kprobe/guess_execve", "kprobe/exec_counter"]);
    }
}
