//! Helpers for the root tests: compile C BPF objects, run the loader binary, collect its
//! JSON lines, stop it with a signal.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Root tests share trace_pipe and global syscalls: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when the test can load BPF; otherwise prints a loud skip line.
#[track_caller]
pub fn have_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: not root (these tests load BPF programs; CI runs them as root)");
        return false;
    }
    true
}

/// The preamble of every root test: `None` (after the loud skip line) without root, else
/// the guard that runs root tests one at a time.
#[track_caller]
pub fn root_serial() -> Option<MutexGuard<'static, ()>> {
    have_root().then(serial)
}

pub fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// Compiles tests/bpf/<name>.c for BPF (extra clang args allowed), once per test binary:
/// tests run in parallel and share objects. A variant with extra args gets its own file
/// (`<name>-<args>.bpf.o`); without, `<name>.bpf.o` (the loader names objects by file stem).
#[track_caller]
pub fn bpf_object(name: &str, extra: &[&str]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let stem = if extra.is_empty() {
        name.to_owned()
    } else {
        let flags: String = extra
            .concat()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{name}-{flags}")
    };
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(&stem) {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/bpf/{name}.c"));
    let out = tmp().join(format!("{stem}.bpf.o"));
    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-c"])
        .args(extra)
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("clang must be installed (Debian package clang)");
    assert!(status.success(), "clang failed on {}", src.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(stem, out.clone());
    out
}

/// Compiles tests/bpf/<name>.c as a host program.
#[track_caller]
pub fn host_binary(name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/bpf/{name}.c"));
    let out = tmp().join(name);
    let status = Command::new("clang")
        .args(["-O1", "-g", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("clang must be installed");
    assert!(status.success(), "clang failed on {}", src.display());
    out
}

/// The project's own probe object `name`, if `cargo bpf build` produced it.
pub fn project_probe(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LOADER_TEST_PROBES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bpf/programs"));
    let p = dir.join(name).join(format!("{name}.elf"));
    p.is_file().then_some(p)
}

pub fn loader_bin() -> &'static str {
    env!("CARGO_BIN_EXE_loader")
}

/// A running loader whose stdout lines are collected.
pub struct Loader {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Loader {
    /// Runs `prefix... loader args...` (prefix e.g. `ip netns exec NS`).
    #[track_caller]
    pub fn spawn_with(prefix: &[&str], args: &[&str]) -> Loader {
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(loader_bin());
                c
            }
            None => Command::new(loader_bin()),
        };
        let mut child = cmd
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn loader");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Loader {
            child,
            lines,
            reader: Some(reader),
        }
    }

    #[track_caller]
    pub fn spawn(args: &[&str]) -> Loader {
        Self::spawn_with(&[], args)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn values(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Waits until a line satisfies `pred`.
    #[track_caller]
    pub fn wait_for(&mut self, what: &str, pred: impl Fn(&Value) -> bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if self.values().iter().any(&pred) {
                return;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!(
                    "loader exited ({st}) before {what}; output: {:?}",
                    self.values()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; output: {:?}", self.values());
    }

    /// Waits until every program reported attached or error (the line count settles).
    #[track_caller]
    pub fn wait_attached(&mut self, n: usize) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let v = self.values();
            let done = v
                .iter()
                .filter(|x| x["type"] == "attached" || x["type"] == "error")
                .count();
            if done >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "timed out waiting for {n} attach results: {:?}",
            self.values()
        );
    }

    /// Sends `sig`, waits for exit, returns the status and every line.
    #[track_caller]
    pub fn stop(self, sig: i32) -> (ExitStatus, Vec<Value>) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.child.id() as i32, sig) };
        self.finish()
    }

    /// Waits for a self-terminating run (`--duration`).
    #[track_caller]
    pub fn finish(mut self) -> (ExitStatus, Vec<Value>) {
        let start = Instant::now();
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                if let Some(r) = self.reader.take() {
                    r.join().unwrap();
                }
                return (st, self.values());
            }
            if start.elapsed() > Duration::from_secs(30) {
                self.child.kill().ok();
                panic!("loader did not exit; output: {:?}", self.values());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Best effort: the test already failed or finished.
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// Calls getppid(2) `n` times (the C test objects trace `syscalls:sys_enter_getppid`).
pub fn getppid_n(n: usize) {
    for _ in 0..n {
        // SAFETY: getppid has no preconditions.
        unsafe { libc::getppid() };
    }
}

/// The `event` lines this test process caused (`data.pid` is ours).
pub fn my_events(lines: &[Value]) -> Vec<&Value> {
    let me = u64::from(std::process::id());
    lines
        .iter()
        .filter(|v| v["type"] == "event" && v["data"]["pid"].as_u64() == Some(me))
        .collect()
}

/// `loader --json` on a tp_getppid-style object, its `events` records typed as `event`,
/// once its program is attached.
pub fn spawn_typed_events(obj: &Path) -> Loader {
    let mut l = Loader::spawn(&[
        "--json",
        "--event-type",
        "events=event",
        obj.to_str().unwrap(),
    ]);
    l.wait_attached(1);
    l
}

/// Waits (4 s at most) until `n` events of this process have come from `l`.
pub fn wait_my_events(l: &Loader, n: usize) {
    for _ in 0..200 {
        if my_events(&l.values()).len() >= n {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Names of loaded BPF programs, from `bpftool prog show --json`.
pub fn loaded_program_names() -> Vec<String> {
    let out = Command::new("bpftool")
        .args(["prog", "show", "--json"])
        .output()
        .expect("bpftool must be installed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Entries of the last `{"type":"map"}` dump of `map`.
pub fn last_dump<'a>(lines: &'a [Value], map: &str) -> &'a Vec<Value> {
    lines
        .iter()
        .rev()
        .find(|v| v["type"] == "map" && v["map"] == map)
        .and_then(|v| v["entries"].as_array())
        .unwrap_or_else(|| panic!("no dump of map {map}: {lines:?}"))
}

pub fn summary(lines: &[Value]) -> &Value {
    let last = lines.last().expect("some output");
    assert_eq!(
        last["type"], "summary",
        "last line must be the summary: {lines:?}"
    );
    last
}
