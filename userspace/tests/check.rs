//! `loader check`: one C object per rule, each flagging exactly its problem at 4.14 and
//! passing from the release that lifted the limit; the built-in probes against 4.9, 4.14,
//! 4.19 and 5.10; bad input. No root needed: nothing is loaded.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// tests/bpf/check_NAME.c compiled with `flags`.
#[track_caller]
fn object(name: &str, flags: &[&str]) -> PathBuf {
    common::bpf_object(&format!("check_{name}"), flags)
}

/// Runs `loader check --json --kernel KERNEL OBJECTS...`: (exit status, check lines, summary).
#[track_caller]
fn check(kernel: &str, objects: &[&Path]) -> (i32, Vec<Value>, Value) {
    let out = Command::new(common::loader_bin())
        .args(["check", "--json", "--kernel", kernel])
        .args(objects)
        .output()
        .expect("run loader check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mut lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{summary}");
    (out.status.code().unwrap_or(-1), lines, summary)
}

/// (kind, what, needs) of every problem of a check line.
fn problems(line: &Value) -> BTreeSet<(String, String, String)> {
    line["problems"]
        .as_array()
        .expect("problems array")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().unwrap_or_default().to_owned();
            (s("kind"), s("what"), s("needs"))
        })
        .collect()
}

/// Asserts that at 4.14 the one program of tests/bpf/check_NAME.c has exactly `expected`
/// problems, and that it is fine on the release that lifted them.
#[track_caller]
fn rule(name: &str, expected: &[(&str, &str, &str)]) -> Value {
    rule_at(name, &[], "4.14", expected)
}

/// [`rule`] with clang flags and another kernel.
#[track_caller]
fn rule_at(name: &str, flags: &[&str], kernel: &str, expected: &[(&str, &str, &str)]) -> Value {
    let obj = object(name, flags);
    let (code, lines, summary) = check(kernel, &[&obj]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["type"], "check");
    assert_eq!(line["kernel"], kernel);
    assert_eq!(line["ok"], false);
    let want: BTreeSet<_> = expected
        .iter()
        .map(|(k, w, n)| (k.to_string(), w.to_string(), n.to_string()))
        .collect();
    assert_eq!(problems(line), want, "{line}");
    assert_eq!(code, 1, "incompatible means exit status 1");
    assert_eq!(summary["incompatible"], 1);

    let lifted = expected.iter().map(|e| e.2).max_by_key(|v| {
        let (a, b) = v.split_once('.').unwrap();
        (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap())
    });
    let lifted = lifted.unwrap();
    assert_eq!(line["min_kernel"], lifted);
    let (code, lines, _) = check(lifted, &[&obj]);
    assert_eq!(code, 0, "{name} should pass on {lifted}: {lines:?}");
    assert_eq!(lines[0]["ok"], true);
    line.clone()
}

/// The one problem of check_NAME.c at 4.14, whose text depends on code generation.
#[track_caller]
fn only_problem(name: &str) -> (String, String, String) {
    let obj = object(name, &[]);
    let (_, lines, _) = check("4.14", &[&obj]);
    let p = problems(&lines[0]);
    assert_eq!(p.len(), 1, "{p:?}");
    p.into_iter().next().unwrap()
}

#[test]
fn check_more_than_4096_instructions() {
    let (kind, what, needs) = only_problem("insns");
    assert_eq!((kind.as_str(), needs.as_str()), ("insns", "5.2"));
    assert!(what.ends_with(" instructions (more than 4096)"), "{what}");
    let line = rule("insns", &[("insns", what.as_str(), "5.2")]);
    assert!(line["insns"].as_u64().unwrap() > 4096, "{line}");
}

#[test]
fn check_bounded_loop() {
    let (kind, what, needs) = only_problem("loop");
    assert_eq!((kind.as_str(), needs.as_str()), ("loop", "5.3"));
    assert!(what.starts_with("loop: insn "), "{what}");
    rule("loop", &[("loop", what.as_str(), "5.3")]);
}

#[test]
fn check_bpf_to_bpf_call() {
    rule("call", &[("bpf_call", "caller calls twice", "4.16")]);
}

#[test]
fn check_global_variables() {
    rule(
        "global",
        &[
            ("global_data", "calls in .bss", "5.2"),
            ("global_data", "last_pid in .data", "5.2"),
        ],
    );
}

#[test]
fn check_fixed_kern_version() {
    rule(
        "kern_version",
        &[(
            "kern_version",
            "kern_version 4.14.0 fixed in the object's version section (before 5.0 only a \
             kernel whose LINUX_VERSION_CODE is exactly that loads it)",
            "5.0",
        )],
    );
}

#[test]
fn check_ring_buffer_map_and_helper() {
    rule(
        "ringbuf",
        &[
            ("ringbuf", "bpf_ringbuf_output (130)", "5.8"),
            ("ringbuf", "map events (ringbuf)", "5.8"),
        ],
    );
}

#[test]
fn check_helper_newer_than_the_kernel() {
    rule(
        "helper",
        &[("helper", "bpf_probe_read_kernel (113)", "5.5")],
    );
}

#[test]
fn check_map_type_newer_than_the_kernel() {
    rule("map_type", &[("map_type", "map queue (queue)", "4.20")]);
}

#[test]
fn check_program_type_newer_than_the_kernel() {
    rule("prog_type", &[("program_type", "raw_tracepoint", "4.17")]);
}

#[test]
fn check_cpu_v4_instructions() {
    rule(
        "cpu_v4",
        &[
            ("cpu", "movsx (cpu v4)", "6.6"),
            ("cpu", "sdiv (cpu v4)", "6.6"),
        ],
    );
}

#[test]
fn check_cpu_v3_and_v2_jumps() {
    // -mcpu=v3: 32-bit compares are JMP32 jumps (5.1); at 4.14 that is the only problem.
    rule_at(
        "cpu_v3",
        &["-mcpu=v3"],
        "4.14",
        &[("cpu", "jmp32 (cpu v3)", "5.1")],
    );
    // -mcpu=v2: the same source uses jlt (4.14), a problem on 4.9 only.
    rule_at(
        "cpu_v3",
        &["-mcpu=v2"],
        "4.9",
        &[("cpu", "jlt (cpu v2)", "4.14")],
    );
}

#[test]
fn check_human_output_lists_problems_with_versions() {
    let obj = object("helper", &[]);
    let out = Command::new(common::loader_bin())
        .args(["check", "--kernel", "4.14.0"])
        .arg(&obj)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("FAIL  "), "{text}");
    assert!(text.contains("bpf_probe_read_kernel (113)"), "{text}");
    assert!(text.contains("needs 5.5"), "{text}");
    assert!(
        text.contains("Linux 4.14: 1 program in 1 object: 0 ok, 1 incompatible"),
        "{text}"
    );

    let out = Command::new(common::loader_bin())
        .args(["check", "--kernel", "5.10.251"])
        .arg(&obj)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok    "));
}

#[test]
fn check_bad_input_exits_2_with_one_line_naming_the_file() {
    let bad = common::tmp().join("check_garbage.elf");
    std::fs::write(&bad, b"\x7fELF\x02\x01\x01 definitely not an object").unwrap();
    let missing = common::tmp().join("check_missing.elf");
    for path in [&bad, &missing] {
        let out = Command::new(common::loader_bin())
            .args(["check", "--kernel", "4.14"])
            .arg(path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("loader check: "), "{stderr}");
        assert!(stderr.contains(&*path.to_string_lossy()), "{stderr}");
    }
    // A good object next to a bad one is still checked; bad input wins the exit status.
    let good = object("call", &[]);
    let (code, lines, summary) = check("4.14", &[&good, &bad]);
    assert_eq!(code, 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[1]["type"], "error");
    assert_eq!(summary["errors"], 1);
    // Usage errors are 2 as well.
    let out = Command::new(common::loader_bin())
        .args(["check", "--kernel", "four"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_corrupted_objects_never_panic() {
    let data = std::fs::read(object("ringbuf", &[])).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..3000 {
        let mut d = data.clone();
        if round % 10 == 0 {
            d.truncate((next() % data.len() as u64) as usize);
        } else {
            for _ in 0..1 + next() % 8 {
                let at = (next() % d.len() as u64) as usize;
                d[at] = next() as u8;
            }
        }
        // Any verdict or error is fine; a panic fails the test.
        loader::check::analyze(&d).ok();
    }
}

/// Kernels the probes are checked against.
const KERNELS: [&str; 4] = ["4.9", "4.14", "4.19", "5.10"];

/// Problems the built-in probes are known to have on 4.9 (the README explains them).
/// What 4.9 lacks for the built-in probes: execsnoop's string reads (4.11) and its
/// pid -> parent LRU map (4.10).
const KNOWN_ON_4_9: [&str; 2] = ["bpf_probe_read_str (45)", "map INFLIGHT_PARENTS (lru_hash)"];

fn built_probes() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf/programs");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    e.path()
                        .join(format!("{}.elf", e.file_name().to_string_lossy()))
                })
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

#[test]
fn check_built_in_probes_pass_4_14() {
    let probes = built_probes();
    if probes.is_empty() {
        eprintln!("skipping: no probes in target/bpf/programs (run `cargo bpf build`)");
        return;
    }
    let refs: Vec<&Path> = probes.iter().map(PathBuf::as_path).collect();
    let mut matrix = String::from("probe/program");
    for k in KERNELS {
        matrix.push_str(&format!(" | {k}"));
    }
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    for kernel in KERNELS {
        let (code, lines, summary) = check(kernel, &refs);
        assert_eq!(summary["errors"], 0, "{summary}");
        for (i, line) in lines.iter().enumerate() {
            let d = &line;
            let object = Path::new(d["object"].as_str().unwrap())
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let name = format!("{object}/{}", d["program"].as_str().unwrap());
            let cell = if d["ok"] == true {
                "ok".to_owned()
            } else {
                let p = problems(line);
                p.iter()
                    .map(|(_, w, n)| format!("{w} needs {n}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if rows.len() <= i {
                rows.push((name.clone(), Vec::new()));
            }
            rows[i].1.push(cell);
            if kernel == "4.9" {
                for (_, what, _) in problems(line) {
                    assert!(
                        KNOWN_ON_4_9.contains(&what.as_str()),
                        "{name} on 4.9: {what}"
                    );
                }
            } else {
                assert_eq!(d["ok"], true, "{name} must run on {kernel}: {line}");
            }
        }
        if kernel != "4.9" {
            assert_eq!(code, 0);
        }
    }
    for (name, cells) in rows {
        matrix.push_str(&format!("\n{name} | {}", cells.join(" | ")));
    }
    eprintln!("{matrix}");
}

#[test]
fn check_compat_probes_are_all_readable() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf/compat");
    let objects: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    e.path()
                        .join(format!("{}.elf", e.file_name().to_string_lossy()))
                })
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    if objects.is_empty() {
        eprintln!("skipping: no compat probes in target/bpf/compat");
        return;
    }
    let refs: Vec<&Path> = objects.iter().map(PathBuf::as_path).collect();
    let (code, lines, summary) = check("5.10", &refs);
    assert_eq!(summary["errors"], 0, "{summary}");
    assert!(code == 0 || code == 1, "{lines:?}");
    assert!(lines.len() >= objects.len());
}

/// redbpf's own `PerfMap::insert` (the compat crate, through the crates.io redbpf-probes
/// 2.3) passes BPF_F_CURRENT_CPU, which kernels before 4.8 take as slot 0xffffffff (seen
/// on Ubuntu's 4.4: tcpconnect attached, 0 events). tcpconnect now sends at the CPU's slot.
#[test]
fn check_current_cpu_flag_needs_4_8() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf");
    let tcp = root.join("programs/tcpconnect/tcpconnect.elf");
    let snoop = root.join("programs/execsnoop/execsnoop.elf");
    if !tcp.is_file() || !snoop.is_file() {
        eprintln!("skipping: no probes in target/bpf/programs (run `cargo bpf build`)");
        return;
    }
    let flagged = |lines: &[Value]| -> Vec<String> {
        lines
            .iter()
            .flat_map(problems)
            .filter(|(k, _, _)| k == "helper_flag")
            .map(|(_, w, n)| format!("{w} needs {n}"))
            .collect()
    };
    let (_, lines, _) = check("4.4", &[&snoop]);
    let f = flagged(&lines);
    assert!(
        f.iter().any(|w| w.contains("BPF_F_CURRENT_CPU needs 4.8")),
        "{lines:?}"
    );
    let (_, lines, _) = check("4.4", &[&tcp]);
    assert!(flagged(&lines).is_empty(), "{lines:?}");
    let (_, lines, _) = check("4.8", &[&snoop]);
    assert!(flagged(&lines).is_empty(), "{lines:?}");
}
