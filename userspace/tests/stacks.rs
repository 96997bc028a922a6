//! Stacks out of the kernel, end to end on the host kernel: `--folded` lines from the
//! stack ids of records (a uprobe's user stacks in a binary the test builds, a syscall
//! tracepoint's kernel stacks) and of a hash map counting stacks as bcc's profilers do,
//! and STACK_TRACE map dumps as symbolized frames. Counts are the calls the test made.
//! Root only.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// tests/bpf/folded_target.c, built with frame pointers and no sibling calls.
#[track_caller]
fn folded_target() -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/folded_target.c");
    let bin = tmp().join("folded_target");
    let st = Command::new("clang")
        .args([
            "-O1",
            "-g",
            "-fno-omit-frame-pointer",
            "-fno-optimize-sibling-calls",
            "-o",
        ])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("clang must be installed");
    assert!(st.success(), "clang failed on {}", src.display());
    bin
}

/// Runs folded_target: `a` calls through stack_test_a, `b` through stack_test_b.
#[track_caller]
fn run_target(bin: &Path, a: usize, b: usize) -> u32 {
    let mut child = Command::new(bin)
        .args([a.to_string(), b.to_string()])
        .spawn()
        .unwrap();
    let pid = child.id();
    // It sleeps 2 s after its calls, while the loader reads its mappings.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(child.wait().unwrap().success());
    pid
}

/// `loader ARGS` without --json: stdout is only folded lines; attach lines on stderr.
struct TextLoader {
    child: std::process::Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl TextLoader {
    #[track_caller]
    fn spawn(args: &[&str], attached: usize) -> TextLoader {
        let mut child = Command::new(loader_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn loader");
        let err = child.stderr.take().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = stderr.clone();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines() {
                let Ok(l) = l else { break };
                eprintln!("{l}");
                lines.lock().unwrap().push(l);
            }
        });
        let l = TextLoader { child, stderr };
        let start = Instant::now();
        while l.attached() < attached {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "not attached: {:?}",
                l.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // Without --json the attach lines go out as each program attaches, before the
        // perf rings are opened (after the object's last program): give those a moment.
        std::thread::sleep(Duration::from_millis(500));
        l
    }

    /// Programs attached so far: `loader: attached OBJECT/PROGRAM ...` lines (what
    /// `--folded` prints), or the table's block head `loader: attached N programs:`.
    fn attached(&self) -> usize {
        let lines = self.stderr.lock().unwrap();
        lines
            .iter()
            .filter_map(|l| l.strip_prefix("loader: attached "))
            .map(|rest| {
                let first = rest.split(' ').next().unwrap_or("");
                first.parse::<usize>().unwrap_or(1)
            })
            .sum()
    }

    /// SIGINT, then every stdout line.
    #[track_caller]
    fn stop(mut self) -> Vec<String> {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut out = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(self.child.wait().unwrap().success());
        out.lines().map(str::to_owned).collect()
    }
}

/// `(stack, count)` of a folded line: frames, a space, a count.
#[track_caller]
fn parse_folded(line: &str) -> (String, u64) {
    let (stack, count) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("not a folded line: {line:?}"));
    let count = count
        .parse()
        .unwrap_or_else(|_| panic!("no count: {line:?}"));
    (stack.to_owned(), count)
}

/// The command name the kernel has for this process (its main thread).
fn my_process_comm() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .unwrap()
        .trim_end()
        .to_owned()
}

#[test]
fn folded_user_stacks_of_uprobe_records_name_the_binarys_functions_with_call_counts() {
    let Some(_g) = root_serial() else { return };
    let bin = folded_target();
    let obj = bpf_object("stacks", &["-I/usr/include/x86_64-linux-gnu"]);
    let l = TextLoader::spawn(
        &[
            "--folded",
            "--programs",
            "on_leaf",
            "--uprobe-target",
            bin.to_str().unwrap(),
            obj.to_str().unwrap(),
        ],
        1,
    );
    run_target(&bin, 5, 2);
    let lines = l.stop();
    let folded: Vec<(String, u64)> = lines.iter().map(|l| parse_folded(l)).collect();
    // One line per distinct stack: the two paths to the leaf, with their call counts.
    let mine: Vec<&(String, u64)> = folded
        .iter()
        .filter(|(s, _)| s.starts_with("folded_target;"))
        .collect();
    assert_eq!(mine.len(), 2, "{lines:?}");
    let a = mine
        .iter()
        .find(|(s, _)| s.ends_with(";main;stack_test_a;stack_test_leaf"))
        .unwrap_or_else(|| panic!("no stack through stack_test_a: {lines:?}"));
    let b = mine
        .iter()
        .find(|(s, _)| s.ends_with(";main;stack_test_b;stack_test_leaf"))
        .unwrap_or_else(|| panic!("no stack through stack_test_b: {lines:?}"));
    assert_eq!((a.1, b.1), (5, 2), "{lines:?}");
}

#[test]
fn folded_kernel_stacks_of_tracepoint_records_count_the_syscalls() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("stacks", &["-I/usr/include/x86_64-linux-gnu"]);
    let me = std::process::id().to_string();
    let l = TextLoader::spawn(
        &[
            "--folded",
            "--programs",
            "on_getppid",
            "--pid",
            &me,
            obj.to_str().unwrap(),
        ],
        1,
    );
    getppid_n(7);
    std::thread::sleep(Duration::from_millis(300));
    let lines = l.stop();
    assert!(!lines.is_empty(), "no folded line");
    let comm = my_process_comm();
    let mut total = 0;
    for line in &lines {
        let (stack, count) = parse_folded(line);
        let frames: Vec<&str> = stack.split(';').collect();
        assert_eq!(frames[0], comm, "{line}");
        // Outermost first: the syscall entry before the dispatcher.
        let at = |name: &str| frames.iter().position(|f| *f == name);
        let (entry, dispatch) = (
            frames
                .iter()
                .position(|f| f.starts_with("entry_SYSCALL_64")),
            at("do_syscall_64"),
        );
        assert!(
            entry.is_some() && dispatch.is_some() && entry < dispatch,
            "{line}"
        );
        total += count;
    }
    assert_eq!(total, 7, "{lines:?}");
}

#[test]
fn folded_stack_count_map_every_interval_and_a_stack_trace_dump_without_pids() {
    let Some(_g) = root_serial() else { return };
    let bin = folded_target();
    let obj = bpf_object("folded", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&[
        "--json",
        "--folded",
        "--interval",
        "0.3",
        "--maps",
        "stacks,counts",
        "--uprobe-target",
        bin.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    run_target(&bin, 4, 3);
    std::thread::sleep(Duration::from_millis(700));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    // Each print counts what grew since the previous one: the sums over every print
    // are the calls, though several prints passed.
    let mut sums: std::collections::BTreeMap<String, u64> = Default::default();
    for v in lines.iter().filter(|v| v["type"] == "folded") {
        assert_eq!(v["map"], "counts", "{v}");
        let stack = v["stack"].as_str().unwrap();
        if stack.starts_with("folded_target;") {
            *sums.entry(stack.to_owned()).or_default() += v["count"].as_u64().unwrap();
        }
    }
    let find = |suffix: &str| -> Vec<u64> {
        sums.iter()
            .filter(|(s, _)| s.ends_with(suffix))
            .map(|(_, n)| *n)
            .collect()
    };
    // The uprobe's user stacks alone.
    assert_eq!(find(";main;stack_test_a;stack_test_leaf"), [4], "{sums:?}");
    assert_eq!(find(";main;stack_test_b;stack_test_leaf"), [3], "{sums:?}");
    // The leaf's own getppid: its user frames, then the kernel's from the syscall entry.
    let syscall = |path: &str| -> Vec<u64> {
        sums.iter()
            .filter(|(s, _)| {
                s.split_once(&format!(";main;{path};stack_test_leaf;"))
                    .is_some_and(|(_, kernel)| kernel.starts_with("entry_SYSCALL_64"))
            })
            .map(|(_, n)| *n)
            .collect()
    };
    assert_eq!(syscall("stack_test_a"), [4], "{sums:?}");
    assert_eq!(syscall("stack_test_b"), [3], "{sums:?}");
    // Folded, the counts map is not dumped; the stack map is, symbolized.
    assert!(!lines
        .iter()
        .any(|v| v["type"] == "map" && v["map"] == "counts"));
    let dumps: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "map" && v["map"] == "stacks")
        .collect();
    assert!(!dumps.is_empty(), "no stacks dump: {lines:?}");
    let entries = dumps.last().unwrap()["entries"].as_array().unwrap();
    let is_kernel = |f: &Value| f["addr"].as_str().unwrap().starts_with("0xffff");
    let kernel: Vec<&Value> = entries
        .iter()
        .filter(|e| e["stack"].as_array().unwrap().iter().all(is_kernel))
        .collect();
    assert!(!kernel.is_empty(), "{entries:?}");
    for e in &kernel {
        let syms: Vec<&str> = e["stack"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["sym"].as_str())
            .collect();
        assert!(syms.contains(&"do_syscall_64"), "{e}");
    }
    // User stacks whose process no record named stay addresses, and say so.
    let user: Vec<&Value> = entries
        .iter()
        .filter(|e| !e["stack"].as_array().unwrap().iter().any(is_kernel))
        .collect();
    assert!(
        user.len() >= 4,
        "two paths, uprobe and syscall: {entries:?}"
    );
    for e in &user {
        assert!(
            e["user"].as_str().is_some_and(|s| s.contains("no process")),
            "{e}"
        );
        assert!(
            e["stack"]
                .as_array()
                .unwrap()
                .iter()
                .all(|f| f.get("sym").is_none()),
            "{e}"
        );
    }
}

#[test]
fn stack_trace_dump_symbolizes_user_stacks_through_the_records_process() {
    let Some(_g) = root_serial() else { return };
    let bin = folded_target();
    let obj = bpf_object("stacks", &["-I/usr/include/x86_64-linux-gnu"]);
    let mut l = Loader::spawn(&[
        "--json",
        "--maps",
        "stacks",
        "--uprobe-target",
        bin.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(2);
    let mut child = Command::new(&bin).args(["2", "1"]).spawn().unwrap();
    let pid = child.id();
    getppid_n(3);
    std::thread::sleep(Duration::from_millis(700));
    // The dump at exit, while the target still sleeps: its mappings are there to read.
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(child.wait().unwrap().success());
    assert!(status.success(), "{lines:?}");
    let dump = lines
        .iter()
        .find(|v| v["type"] == "map" && v["map"] == "stacks")
        .unwrap_or_else(|| panic!("no stacks dump: {lines:?}"));
    assert_eq!(dump["map_type"], "stack_trace");
    let entries = dump["entries"].as_array().unwrap();
    let syms = |e: &Value| -> Vec<String> {
        e["stack"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["sym"].as_str().map(str::to_owned))
            .collect()
    };
    let user: Vec<Vec<String>> = entries
        .iter()
        .filter(|e| e["pid"] == pid)
        .map(syms)
        .collect();
    let prefix = |p: &[&str]| {
        user.iter()
            .filter(|s| s.starts_with(&p.iter().map(|x| x.to_string()).collect::<Vec<_>>()))
            .count()
    };
    assert_eq!(
        prefix(&["stack_test_leaf", "stack_test_a", "main"]),
        1,
        "{entries:?}"
    );
    assert_eq!(
        prefix(&["stack_test_leaf", "stack_test_b", "main"]),
        1,
        "{entries:?}"
    );
    // The ids the records carried are the dump's keys.
    let ids: Vec<u64> = lines
        .iter()
        .filter(|v| v["type"] == "event" && v["map"] == "calls" && v["data"]["pid"] == pid)
        .map(|v| v["data"]["user_stack_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{lines:?}");
    for id in ids {
        assert!(
            entries.iter().any(|e| e["key"] == id),
            "id {id} not in the dump"
        );
    }
    let me = std::process::id();
    let kernel = lines
        .iter()
        .find(|v| v["type"] == "event" && v["map"] == "syscalls" && v["data"]["pid"] == me)
        .unwrap_or_else(|| panic!("no syscall record: {lines:?}"));
    let kid = &kernel["data"]["kstack"];
    let k = entries
        .iter()
        .find(|e| e["key"] == *kid)
        .unwrap_or_else(|| panic!("kernel stack {kid} not dumped"));
    assert!(syms(k).iter().any(|s| s == "do_syscall_64"), "{k}");
}
