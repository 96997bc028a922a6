//! Lifecycle on the host kernel: SIGINT, SIGTERM and SIGHUP each detach everything (no
//! program left loaded, no perf fd, no kprobe_events entry) and exit 0 after a final
//! summary, with every event delivered; a second loader on the same probe does not disturb
//! the first; `kill -9` leaves nothing the kernel keeps (kprobe_events leftovers of a
//! killed legacy-mode loader are covered by the `kill9-legacy` VM scenario, as this kernel
//! has no kprobes). Root only.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const PROGRAM: &str = "on_getppid";

fn perf_fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|l| l.to_string_lossy() == "anon_inode:[perf_event]")
                .count()
        })
        .unwrap_or(0)
}

fn loaded_copies() -> usize {
    loaded_program_names()
        .iter()
        .filter(|n| n.as_str() == PROGRAM)
        .count()
}

fn our_kprobe_events() -> String {
    [
        "/sys/kernel/tracing/kprobe_events",
        "/sys/kernel/debug/tracing/kprobe_events",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .flat_map(|t| {
        t.lines()
            .filter(|l| l.contains("redbpf_loader/") || l.contains("aya_"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    })
    .collect::<Vec<_>>()
    .join("\n")
}

#[test]
fn sigint_sigterm_and_sighup_each_detach_everything() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    let before = loaded_copies();
    for (sig, name) in [
        (libc::SIGINT, "SIGINT"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGHUP, "SIGHUP"),
    ] {
        let l = spawn_typed_events(&obj);
        let pid = l.pid();
        assert_eq!(loaded_copies(), before + 1, "{name}: program not loaded");
        assert!(perf_fds_of(pid) > 0, "{name}: no perf fds while running");
        getppid_n(20);
        std::thread::sleep(Duration::from_millis(200));
        let (status, lines) = l.stop(sig);
        assert!(status.success(), "{name}: exit {status}");
        assert_eq!(summary(&lines)["type"], "summary");
        assert_eq!(
            my_events(&lines).len(),
            20,
            "{name}: events lost at shutdown"
        );
        assert_eq!(loaded_copies(), before, "{name}: program still loaded");
        assert_eq!(perf_fds_of(pid), 0, "{name}: perf fds left");
        assert_eq!(our_kprobe_events(), "", "{name}: kprobe_events left");
    }
}

#[test]
fn a_second_loader_does_not_disturb_the_first() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    let before = loaded_copies();
    let args = [
        "--json",
        "--event-type",
        "events=event",
        obj.to_str().unwrap(),
    ];
    let mut first = Loader::spawn(&args);
    first.wait_attached(1);
    let mut second = Loader::spawn(&args);
    second.wait_attached(1);
    assert_eq!(loaded_copies(), before + 2);
    getppid_n(100);
    std::thread::sleep(Duration::from_millis(300));
    let (status, second_lines) = second.stop(libc::SIGTERM);
    assert!(status.success());
    assert_eq!(
        my_events(&second_lines).len(),
        100,
        "the second loader missed events"
    );
    assert_eq!(
        loaded_copies(),
        before + 1,
        "the second exit took the first down"
    );
    getppid_n(100);
    std::thread::sleep(Duration::from_millis(300));
    let (status, first_lines) = first.stop(libc::SIGINT);
    assert!(status.success());
    assert_eq!(
        my_events(&first_lines).len(),
        200,
        "the first loader lost events"
    );
    assert_eq!(loaded_copies(), before);
}

#[test]
fn kill_9_leaves_nothing_and_the_next_run_works() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    let before = loaded_copies();
    let mut l = Loader::spawn(&["--json", obj.to_str().unwrap()]);
    l.wait_attached(1);
    let pid = l.pid();
    let (status, _) = l.stop(libc::SIGKILL);
    assert!(!status.success());
    // The kernel drops programs and perf events with the last fd; give it a moment.
    for _ in 0..50 {
        if loaded_copies() == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(loaded_copies(), before, "program survived kill -9");
    assert_eq!(perf_fds_of(pid), 0);
    assert_eq!(our_kprobe_events(), "");

    let mut l = Loader::spawn(&["--json", "--duration", "1", obj.to_str().unwrap()]);
    l.wait_attached(1);
    let (status, lines) = l.finish();
    assert!(status.success());
    let kernel = lines
        .iter()
        .find(|v| v["type"] == "kernel")
        .expect("kernel line");
    assert_eq!(kernel["leftovers_removed"], 0);
    assert!(lines.iter().any(|v| v["type"] == "attached"));
}

/// `--legacy` on the host kernel (its tracepoints attach the same way): RLIMIT_MEMLOCK is
/// raised from the 16 KiB it was started with (to infinity with CAP_SYS_RESOURCE, else to
/// the 1 MiB hard limit), the run lock is held while the loader runs and gone after it,
/// and a lock file nobody holds (a killed loader's) is removed at start.
#[test]
fn legacy_mode_raises_memlock_and_holds_its_run_lock() {
    let Some(_g) = root_serial() else { return };
    let obj = bpf_object("tp_getppid", &[]);
    let locks = std::path::Path::new("/run/redbpf-loader");
    std::fs::create_dir_all(locks).unwrap();
    // A pid above any pid_max on this machine: certainly not running.
    let stale = locks.join("4194999.lock");
    std::fs::write(&stale, b"").unwrap();

    let mut l = Loader::spawn_with(
        &["prlimit", "--memlock=16384:1048576"],
        &["--json", "--legacy", obj.to_str().unwrap()],
    );
    l.wait_attached(1);
    let pid = l.pid();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let memlock = limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .unwrap();
    // CAP_SYS_RESOURCE is bit 24 of the effective set (containers often drop it).
    let cap_eff = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|h| u64::from_str_radix(h.trim(), 16).unwrap())
        .unwrap();
    let sys_resource = cap_eff & (1 << 24) != 0;
    let want = if sys_resource {
        ["unlimited", "unlimited"]
    } else {
        ["1048576", "1048576"]
    };
    assert_eq!(
        memlock.split_whitespace().collect::<Vec<_>>()[3..5],
        want,
        "{memlock}"
    );
    let mine = locks.join(format!("{pid}.lock"));
    let f = std::fs::File::open(&mine).expect("the loader's run lock file");
    assert!(
        matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)),
        "the run lock is not held"
    );
    drop(f);
    assert!(
        !stale.exists(),
        "a stale lock file survived a loader's start"
    );

    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success(), "{lines:?}");
    let kernel = lines.iter().find(|v| v["type"] == "kernel").unwrap();
    assert_eq!(kernel["legacy"], true, "{kernel}");
    // The truth of this kernel: kprobe_events where tracefs has it, else none at all.
    let events = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|t| std::path::Path::new(t).join("kprobe_events").exists());
    let want_kprobes = if events { "kprobe_events" } else { "none" };
    assert_eq!(kernel["kprobes"], want_kprobes, "{kernel}");
    let want = if sys_resource {
        "raised"
    } else {
        "raised to hard limit 1048576"
    };
    assert_eq!(kernel["memlock"], want, "{kernel}");
    assert!(!mine.exists(), "the run lock file outlived the loader");
}

/// `--output FILE` with logrotate's convention: the file is moved away, SIGHUP, and the
/// loader goes on writing into a new FILE; nothing lost, nothing doubled.
#[test]
fn output_file_is_reopened_on_sighup() {
    let Some(_g) = root_serial() else { return };
    let dir = tmp();
    let file = dir.join("loader.json");
    let rotated = dir.join("loader.json.1");
    // The directory outlives test runs: start from no file.
    std::fs::remove_file(&file).ok();
    std::fs::remove_file(&rotated).ok();
    let obj = bpf_object("tp_getppid", &[]);
    let mut child = std::process::Command::new(loader_bin())
        .args(["--json", "--output"])
        .arg(&file)
        .arg(&obj)
        .spawn()
        .unwrap();
    let read = |p: &std::path::Path| -> Vec<Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let wait_for = |p: &std::path::Path, n: usize| {
        for _ in 0..100 {
            if my_events(&read(p)).len() >= n {
                return;
            }
            getppid_n(0);
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} has fewer than {n} of my events: {:?}",
            p.display(),
            read(p)
        );
    };
    for _ in 0..100 {
        if read(&file).iter().any(|v| v["type"] == "attached") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    getppid_n(3);
    wait_for(&file, 3);
    std::fs::rename(&file, &rotated).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(200));
    getppid_n(2);
    wait_for(&file, 2);
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(
        child.wait().unwrap().success(),
        "SIGHUP did not stop it; SIGINT did, cleanly"
    );
    let (old, new) = (read(&rotated), read(&file));
    assert_eq!(my_events(&old).len(), 3, "{old:?}");
    assert_eq!(my_events(&new).len(), 2, "{new:?}");
    assert_eq!(new.last().unwrap()["type"], "summary", "{new:?}");
    assert!(
        old.iter().all(|v| v["type"] != "summary"),
        "old: {old:?}\nnew: {new:?}"
    );
}
