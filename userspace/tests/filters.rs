//! `--comm`, `--pid`, `--failed`: post-filters on the built-in execsnoop and opensnoop
//! records, with real execs and opens of files made for the test. Root only.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn events<'a>(lines: &'a [Value], field: &str, value: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["type"] == "event" && v["data"][field].as_str() == Some(value))
        .collect()
}

#[test]
fn comm_and_pid_keep_only_matching_execs() {
    let Some(_g) = root_serial() else {
        eprintln!("skipping: not root");
        return;
    };
    let dir = tmp();
    let target = dir.join("filtered_true");
    std::fs::copy("/bin/true", &target).unwrap();
    let other = dir.join("filtered_other");
    std::fs::copy("/bin/true", &other).unwrap();
    let t = target.to_str().unwrap();
    let run_by = |shell: &str, n: usize| {
        let script = format!("for i in $(seq {n}); do {t}; done");
        assert!(Command::new(shell)
            .args(["-c", &script])
            .status()
            .unwrap()
            .success());
    };

    // --comm: execsnoop's comm is the command after the exec (bcc's -n).
    let mut l = Loader::spawn(&["execsnoop", "--json", "--comm", "filtered_true"]);
    l.wait_attached(3);
    run_by("sh", 3);
    for _ in 0..2 {
        assert!(Command::new(&other).status().unwrap().success());
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    let mine = events(&lines, "filename", t);
    assert_eq!(mine.len(), 3, "only the execs of filtered_true: {mine:?}");
    let all: Vec<&Value> = lines.iter().filter(|v| v["type"] == "event").collect();
    assert!(
        all.iter().all(|e| e["data"]["comm"] == "filtered_true"),
        "{all:?}"
    );
    // execsnoop applies the filter in the kernel (its LOADER_FILTER map): the loader read
    // none of filtered_other's execs, so it left none out itself.
    let s = summary(&lines);
    assert_eq!(s["filtered"], 0, "filtered in the kernel: {s}");

    // --pid: the pid of the exec'ing process, here a shell told to exec the file.
    let mut child = Command::new("sh")
        .args(["-c", &format!("read x; exec {t}")])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut l = Loader::spawn(&["execsnoop", "--json", "--pid", &pid]);
    l.wait_attached(3);
    run_by("sh", 2);
    drop(child.stdin.take()); // `read` ends: the shell execs
    assert!(child.wait().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    let (_, lines) = l.stop(libc::SIGINT);
    let mine = events(&lines, "filename", t);
    assert_eq!(mine.len(), 1, "{lines:?}");
    assert_eq!(mine[0]["data"]["pid"].to_string(), pid);
}

#[test]
fn failed_keeps_only_negative_returns() {
    let Some(_g) = root_serial() else {
        eprintln!("skipping: not root");
        return;
    };
    let dir = tmp();
    let present = dir.join("present");
    std::fs::write(&present, b"x").unwrap();
    let absent = dir.join("absent");
    let mut l = Loader::spawn(&["opensnoop", "--json", "--failed"]);
    l.wait_attached(2);
    for _ in 0..3 {
        std::fs::File::open(&present).unwrap();
        assert!(std::fs::File::open(&absent).is_err());
    }
    std::thread::sleep(Duration::from_millis(500));
    let (status, lines) = l.stop(libc::SIGINT);
    assert!(status.success());
    assert!(
        events(&lines, "filename", present.to_str().unwrap()).is_empty(),
        "{lines:?}"
    );
    let failed = events(&lines, "filename", absent.to_str().unwrap());
    assert_eq!(failed.len(), 3, "{lines:?}");
    assert!(
        failed.iter().all(|e| e["data"]["ret"] == -2),
        "ENOENT: {failed:?}"
    );
}

/// execsnoop pairs each exec's entry with its return: `ret` is 0 or -errno, `ppid` the
/// process that forked the exec'ing one, `comm` the command after the exec (bcc's
/// execsnoop columns), and `--failed` keeps the failed ones.
#[test]
fn execsnoop_reports_result_and_parent() {
    let Some(_g) = root_serial() else {
        eprintln!("skipping: not root");
        return;
    };
    let dir = tmp();
    let target = dir.join("snooped_true");
    std::fs::copy("/bin/true", &target).unwrap();
    let absent = dir.join("no_such_program");
    std::fs::remove_file(&absent).ok();
    let script = format!(
        "read x; {}; {} 2>/dev/null; exit 0",
        target.display(),
        absent.display()
    );
    for failed_only in [false, true] {
        let mut args = vec!["execsnoop", "--json"];
        if failed_only {
            args.push("--failed");
        }
        let mut l = Loader::spawn(&args);
        l.wait_attached(3);
        // The shell is forked while the loader runs; it forks once per command.
        let mut sh = Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let sh_pid = u64::from(sh.id());
        drop(sh.stdin.take());
        assert!(sh.wait().unwrap().success());
        std::thread::sleep(Duration::from_millis(500));
        let (status, lines) = l.stop(libc::SIGINT);
        assert!(status.success());
        let ok = events(&lines, "filename", target.to_str().unwrap());
        let bad = events(&lines, "filename", absent.to_str().unwrap());
        assert_eq!(bad.len(), 1, "{lines:?}");
        let b = &bad[0]["data"];
        assert_eq!(
            (b["ret"].as_i64(), b["ppid"].as_u64()),
            (Some(-2), Some(sh_pid)),
            "{b}"
        );
        assert_eq!(b["comm"], "sh", "a failed exec keeps the old command");
        if failed_only {
            assert!(ok.is_empty(), "--failed: {ok:?}");
            continue;
        }
        assert_eq!(ok.len(), 1, "{lines:?}");
        let o = &ok[0]["data"];
        assert_eq!(
            (o["ret"].as_i64(), o["ppid"].as_u64()),
            (Some(0), Some(sh_pid)),
            "{o}"
        );
        assert_eq!(o["comm"], "snooped_true", "the command after the exec");
        assert_ne!(o["pid"].as_u64(), Some(sh_pid), "a child of the shell");
    }
}
