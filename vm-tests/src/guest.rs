//! The guest side (`vm-tests guest PLAN`), started by the initramfs /init: runs each step
//! of the plan, drives its workload, and prints everything on the console in the line
//! protocol of [`crate::console`]. It judges nothing; the host checks.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::console::Tag;
use crate::scenario::{self, Run, Step, Workload, EXEC_PROGRAMS, GUEST_LOADER};

/// Prints one protocol line (stdout is line-buffered; the console is stdout).
fn say(tag: Tag, scenario: &str, text: &str) {
    let mut out = std::io::stdout().lock();
    // The console is all we have: if it is gone there is no one to tell.
    if writeln!(out, "{} {scenario} {text}", tag.as_str()).is_err() {
        std::process::exit(3);
    }
}

/// Runs the plan at `plan`; false if any step could not run as planned.
pub fn run(plan: &Path) -> Result<bool> {
    let text =
        std::fs::read(plan).with_context(|| format!("cannot read plan {}", plan.display()))?;
    let steps: Vec<Step> =
        serde_json::from_slice(&text).with_context(|| format!("bad plan {}", plan.display()))?;
    let tracefs = tracefs_dir();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let pmu = std::fs::read_to_string("/sys/bus/event_source/devices/kprobe/type")
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|_| "none".to_owned());
    let sym = execve_symbol().unwrap_or_else(|e| format!("none({e})"));
    say(
        Tag::Info,
        "-",
        &format!(
            "kernel={} tracefs={} kprobe_pmu={pmu} execve_symbol={sym}",
            kernel.trim(),
            tracefs.display()
        ),
    );
    let mut all_ok = true;
    for step in &steps {
        say(Tag::Begin, &step.name, "");
        let start = Instant::now();
        let exit = match &step.run {
            Run::KprobeSelftest => match selftest(step, &tracefs) {
                Ok(()) => "0".to_owned(),
                Err(e) => {
                    say(Tag::Err, &step.name, &format!("selftest: {e:#}"));
                    "error".to_owned()
                }
            },
            Run::Loader {
                args,
                wait_attached,
                attach_timeout_secs,
                stop_timeout_secs,
                kill_first,
                companion,
            } => {
                let attach_timeout = Duration::from_secs(*attach_timeout_secs);
                let stop_timeout = Duration::from_secs(*stop_timeout_secs);
                let run = || -> Result<String> {
                    kill_first_loader(step, args, *wait_attached, *kill_first)?;
                    let companion = if *companion {
                        Some(Companion::start(
                            step,
                            args,
                            *wait_attached,
                            attach_timeout,
                        )?)
                    } else {
                        None
                    };
                    let exit =
                        run_loader(step, args, *wait_attached, attach_timeout, stop_timeout)?;
                    if let Some(c) = companion {
                        c.finish(step, stop_timeout)?;
                    }
                    Ok(exit)
                };
                match run() {
                    Ok(exit) => exit,
                    Err(e) => {
                        say(Tag::Err, &step.name, &format!("driver: {e:#}"));
                        "error".to_owned()
                    }
                }
            }
        };
        // The loader's exit status is judged by the host, per scenario (a refusal scenario
        // expects 1); the guest fails only when the driver itself could not run a step.
        all_ok &= exit != "error";
        // What is left after the loader: kprobe_events lines as they are, uprobe_events
        // lines (aya's uprobes below 4.17) marked, both judged as leftovers by the host.
        for (file, mark) in [("kprobe_events", ""), ("uprobe_events", "uprobe_events: ")] {
            match std::fs::read_to_string(tracefs.join(file)) {
                Ok(events) => {
                    for line in events.lines().filter(|l| !l.trim().is_empty()) {
                        say(Tag::KprobeEvent, &step.name, &format!("{mark}{line}"));
                    }
                }
                Err(e) => say(
                    Tag::Err,
                    &step.name,
                    &format!("cannot read {}/{file}: {e}", tracefs.display()),
                ),
            }
        }
        say(
            Tag::End,
            &step.name,
            &format!("exit={exit} elapsed={:.2}", start.elapsed().as_secs_f64()),
        );
    }
    Ok(all_ok)
}

/// tracefs, mounted by /init at /sys/kernel/tracing or reachable through debugfs.
fn tracefs_dir() -> PathBuf {
    for d in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(d).join("kprobe_events").exists() {
            return PathBuf::from(d);
        }
    }
    PathBuf::from("/sys/kernel/tracing")
}

/// The execve syscall's symbol on this kernel (`__x64_sys_execve` from 4.17 on).
fn execve_symbol() -> Result<String> {
    let syms = std::fs::read_to_string("/proc/kallsyms").context("reading /proc/kallsyms")?;
    for want in ["__x64_sys_execve", "sys_execve"] {
        if syms
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(want))
        {
            return Ok(want.to_owned());
        }
    }
    bail!("no __x64_sys_execve or sys_execve in /proc/kallsyms")
}

/// Appends one command to a tracefs control file (truncating would drop every probe).
fn append(path: &Path, line: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(format!("{line}\n").as_bytes())
        .with_context(|| format!("writing {line:?} to {}", path.display()))
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {text:?} to {}", path.display()))
}

/// The loader-free check of the whole path: a kprobe on execve through kprobe_events.
fn selftest(step: &Step, tracefs: &Path) -> Result<()> {
    const GROUP_EVENT: &str = "vmtests/execve";
    let sym = execve_symbol()?;
    let events = tracefs.join("kprobe_events");
    append(&events, &format!("p:{GROUP_EVENT} {sym}"))?;
    let enable = tracefs.join("events").join(GROUP_EVENT).join("enable");
    let result = (|| {
        write_file(&enable, "1")?;
        let attached = serde_json::json!({
            "type": "attached", "object": "kprobe-selftest",
            "program": GROUP_EVENT, "symbol": sym,
        });
        say(Tag::Out, &step.name, &attached.to_string());
        let workload = run_workload(&step.workload);
        write_file(&enable, "0")?;
        say(Tag::Info, &step.name, &workload?);
        let hits = kprobe_hits(&tracefs.join("kprobe_profile"), "execve")?;
        let line = serde_json::json!({"type": "selftest", "symbol": sym, "hits": hits});
        say(Tag::Out, &step.name, &line.to_string());
        Ok(())
    })();
    let removed = append(&events, &format!("-:{GROUP_EVENT}"));
    result.and(removed)
}

/// The hit count of `event` in tracefs `kprobe_profile` (`name hits misses` lines).
fn kprobe_hits(profile: &Path, event: &str) -> Result<u64> {
    let text = std::fs::read_to_string(profile)
        .with_context(|| format!("reading {}", profile.display()))?;
    parse_kprobe_profile(&text, event)
        .with_context(|| format!("no {event} line in {}:\n{text}", profile.display()))
}

pub(crate) fn parse_kprobe_profile(text: &str, event: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let f: Vec<_> = l.split_whitespace().collect();
        let name = *f.first()?;
        if f.len() == 3 && (name == event || name.rsplit('/').next() == Some(event)) {
            f[1].parse().ok()
        } else {
            None
        }
    })
}

/// Runs the workload; returns a one-line description for the console.
fn run_workload(w: &Workload) -> Result<String> {
    match *w {
        Workload::Exec { rounds } => {
            for _ in 0..rounds {
                for p in EXEC_PROGRAMS {
                    let status = Command::new(p.path)
                        .arg0(p.argv[0])
                        .args(&p.argv[1..])
                        .stdin(Stdio::null())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .with_context(|| format!("exec {}", p.path))?;
                    if !status.success() {
                        bail!("{} {:?} exited with {status}", p.path, p.argv);
                    }
                }
            }
            Ok(format!(
                "workload=exec execs={} pid={}",
                w.expected_execs(),
                std::process::id()
            ))
        }
        Workload::TcpConnect { port, connects } => {
            let addr = (Ipv4Addr::LOCALHOST, port);
            let listener =
                TcpListener::bind(addr).with_context(|| format!("listen on 127.0.0.1:{port}"))?;
            for _ in 0..connects {
                let mut client = TcpStream::connect(addr)
                    .with_context(|| format!("connect to 127.0.0.1:{port}"))?;
                let (mut server, _) = listener.accept().context("accept")?;
                server.write_all(b"x").context("write")?;
                let mut byte = [0u8; 1];
                client.read_exact(&mut byte).context("read")?;
            }
            Ok(format!(
                "workload=tcp_connect port={port} connects={connects} pid={}",
                std::process::id()
            ))
        }
        Workload::Ufunc { calls } => {
            for i in 1..=u64::from(calls) {
                let (a, b) = scenario::ufunc_args(i);
                let r = ufunc_target(std::hint::black_box(a), std::hint::black_box(b));
                if r != scenario::ufunc_result(a, b) {
                    bail!("ufunc_target({a}, {b}) returned {r}");
                }
            }
            Ok(format!(
                "workload=ufunc calls={calls} pid={}",
                std::process::id()
            ))
        }
        Workload::Getppid { calls } => {
            for _ in 0..calls {
                // SAFETY: getppid(2) has no arguments and cannot fail.
                std::hint::black_box(unsafe { libc::getppid() });
            }
            Ok(format!(
                "workload=getppid calls={calls} pid={}",
                std::process::id()
            ))
        }
    }
}

/// The uprobe target of the `ufunc` probe (`uprobe/ufunc_target`): a symbol of this static
/// binary, called by the ufunc workload, so `--uprobe-target` is this executable.
#[no_mangle]
#[inline(never)]
pub extern "C" fn ufunc_target(a: u64, b: u64) -> u64 {
    std::hint::black_box(scenario::ufunc_result(a, b))
}

/// Forwards a child's output, line by line, as `tag` lines; tells `attached` about each
/// program that settled: an `attached` line (`loaded` with --verify), or an `error` line
/// naming a program (it will
/// never attach, so waiting for it only wastes the attach timeout; the host fails the
/// scenario on the error line).
fn forward(
    stream: impl Read + Send + 'static,
    tag: Tag,
    name: String,
    attached: Option<mpsc::Sender<()>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    say(Tag::Err, &name, &format!("reading loader output: {e}"));
                    return;
                }
            }
            let line = String::from_utf8_lossy(&buf);
            let line = line.trim_end_matches(['\n', '\r']);
            say(tag, &name, line);
            if let Some(tx) = &attached {
                let is_attached = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .is_some_and(|v| {
                        v["type"] == "attached"
                            || v["type"] == "loaded"
                            || (v["type"] == "error" && v["program"].is_string())
                    });
                if is_attached {
                    // The receiver stops listening once the workload started.
                    tx.send(()).ok();
                }
            }
        }
    })
}

fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => c.to_string(),
        (None, Some(s)) => format!("signal{s}"),
        _ => "unknown".to_owned(),
    }
}

/// With `kill_first`: starts the loader, waits for its `attached` lines, kills it with
/// SIGKILL (no cleanup can run) and reports the kprobe_events entries it left.
fn kill_first_loader(
    step: &Step,
    args: &[String],
    wait_attached: usize,
    kill_first: bool,
) -> Result<()> {
    if !kill_first {
        return Ok(());
    }
    let mut child = Command::new(GUEST_LOADER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawning {GUEST_LOADER}"))?;
    let out = child.stdout.take().context("loader stdout")?;
    let mut seen = 0;
    for line in BufReader::new(out).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"type\":\"attached\"") {
            seen += 1;
            if seen >= wait_attached {
                break;
            }
        }
    }
    child.kill().context("SIGKILL of the first loader")?;
    let status = child.wait()?;
    say(
        Tag::Info,
        &step.name,
        &format!(
            "first loader: attached={seen} then {}",
            describe_exit(status)
        ),
    );
    let events = std::fs::read_to_string(tracefs_dir().join("kprobe_events"))
        .context("reading kprobe_events")?;
    for line in events.lines().filter(|l| !l.trim().is_empty()) {
        say(Tag::KprobeLeftover, &step.name, line);
    }
    Ok(())
}

/// Says each line of kprobe_events now under `tag` (a read failure as an error line).
fn report_kprobe_events(tag: Tag, step: &Step) {
    match std::fs::read_to_string(tracefs_dir().join("kprobe_events")) {
        Ok(events) => {
            for line in events.lines().filter(|l| !l.trim().is_empty()) {
                say(tag, &step.name, line);
            }
        }
        Err(e) => say(Tag::Err, &step.name, &format!("reading kprobe_events: {e}")),
    }
}

/// A loader process whose stdout and stderr are forwarded to the console.
struct Spawned {
    child: Child,
    forwarders: [thread::JoinHandle<()>; 2],
}

impl Spawned {
    /// Starts `bin args...` with stdout under `out_tag` and stderr under `err_tag`, and waits
    /// up to `attach_timeout` for `wait_attached` `attached` lines. Returns how many came
    /// (the forwarder drops its sender when stdout closes, so an early exit ends the wait).
    fn start(
        bin: &str,
        args: &[String],
        step: &Step,
        (out_tag, err_tag): (Tag, Tag),
        wait_attached: usize,
        attach_timeout: Duration,
    ) -> Result<(Spawned, usize)> {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {bin}"))?;
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().context("loader stdout")?;
        let err = child.stderr.take().context("loader stderr")?;
        let forwarders = [
            forward(out, out_tag, step.name.clone(), Some(tx)),
            forward(err, err_tag, step.name.clone(), None),
        ];
        let deadline = Instant::now() + attach_timeout;
        let mut seen = 0;
        while seen < wait_attached {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(()) => seen += 1,
                Err(_) => break,
            }
        }
        Ok((Spawned { child, forwarders }, seen))
    }

    /// Whether it has exited already.
    fn exited(&mut self) -> Result<bool> {
        Ok(self.child.try_wait()?.is_some())
    }

    /// Ctrl-C, as a user stops it (the loader drains its rings, dumps its maps, detaches),
    /// then SIGKILL if it has not exited `stop_timeout` later. Returns how it exited.
    fn stop(mut self, step: &Step, stop_timeout: Duration) -> Result<String> {
        if !self.exited()? {
            interrupt(&self.child)?;
        }
        let exit = wait_with_timeout(&mut self.child, Instant::now() + stop_timeout)?;
        // The pipes close when the loader exits; the forwarders then finish.
        for h in self.forwarders {
            if h.join().is_err() {
                say(Tag::Err, &step.name, "output forwarder panicked");
            }
        }
        Ok(exit)
    }
}

/// The companion loader: a copy of the loader binary under another name, so that nothing
/// but its run lock can tell the checked loader it is alive.
struct Companion(Spawned);

const COMPANION_BIN: &str = "/vmtests/bin/tracer";

impl Companion {
    fn start(
        step: &Step,
        args: &[String],
        wait_attached: usize,
        attach_timeout: Duration,
    ) -> Result<Companion> {
        std::fs::copy(GUEST_LOADER, COMPANION_BIN)
            .with_context(|| format!("copying {GUEST_LOADER} to {COMPANION_BIN}"))?;
        let tags = (Tag::Companion, Tag::Info);
        let (spawned, seen) = Spawned::start(
            COMPANION_BIN,
            args,
            step,
            tags,
            wait_attached,
            attach_timeout,
        )?;
        say(
            Tag::Info,
            &step.name,
            &format!("companion {COMPANION_BIN}: attached_seen={seen}/{wait_attached}"),
        );
        Ok(Companion(spawned))
    }

    /// Reports kprobe_events (the checked loader has exited; the companion has not), then
    /// stops the companion the way the checked loader was stopped.
    fn finish(self, step: &Step, stop_timeout: Duration) -> Result<()> {
        report_kprobe_events(Tag::KprobeCompanion, step);
        let exit = self.0.stop(step, stop_timeout)?;
        say(Tag::Info, &step.name, &format!("companion exit={exit}"));
        Ok(())
    }
}

fn run_loader(
    step: &Step,
    args: &[String],
    wait_attached: usize,
    attach_timeout: Duration,
    stop_timeout: Duration,
) -> Result<String> {
    let start = Instant::now();
    let tags = (Tag::Out, Tag::Err);
    let (mut loader, seen) = Spawned::start(
        GUEST_LOADER,
        args,
        step,
        tags,
        wait_attached,
        attach_timeout,
    )?;
    say(
        Tag::Info,
        &step.name,
        &format!(
            "attached_seen={seen}/{wait_attached} after={:.2}",
            start.elapsed().as_secs_f64()
        ),
    );
    // With --legacy the probes live in kprobe_events now; through the perf PMU they don't.
    report_kprobe_events(Tag::KprobeDuring, step);
    if loader.exited()? {
        say(
            Tag::Err,
            &step.name,
            "loader exited before the workload ran",
        );
    } else if seen < wait_attached {
        // A workload run before the probes are in place would only blur the failure.
        say(
            Tag::Err,
            &step.name,
            &format!(
                "no workload: {seen} of {wait_attached} programs attached after {} s",
                attach_timeout.as_secs()
            ),
        );
    } else {
        match run_workload(&step.workload) {
            Ok(desc) => say(Tag::Info, &step.name, &desc),
            Err(e) => say(Tag::Err, &step.name, &format!("workload: {e:#}")),
        }
    }
    loader.stop(step, stop_timeout)
}

/// Sends SIGINT to `child`, which must not have been reaped yet.
fn interrupt(child: &Child) -> Result<()> {
    let pid = libc::pid_t::try_from(child.id()).context("loader pid out of range")?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the caller has
    // not reaped `child`, so its pid (a zombie at worst) cannot have been reused.
    if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e).context("SIGINT to the loader");
        }
    }
    Ok(())
}

fn wait_with_timeout(child: &mut Child, deadline: Instant) -> Result<String> {
    loop {
        if let Some(status) = child.try_wait().context("waiting for the loader")? {
            return Ok(describe_exit(status));
        }
        if Instant::now() >= deadline {
            child.kill().context("killing the loader")?;
            child.wait().context("reaping the loader")?;
            return Ok("timeout".to_owned());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kprobe_profile_lines() {
        let text = "  execve                                          6               0\n  \
                    other                                            9               1\n";
        assert_eq!(parse_kprobe_profile(text, "execve"), Some(6));
        assert_eq!(parse_kprobe_profile(text, "other"), Some(9));
        assert_eq!(
            parse_kprobe_profile("  vmtests/execve  4  0\n", "execve"),
            Some(4)
        );
        assert_eq!(parse_kprobe_profile("", "execve"), None);
    }
}
