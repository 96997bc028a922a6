//! Boots a kernel and initramfs under qemu and collects the serial console.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::console::{self, Marker};

pub const QEMU: &str = "qemu-system-x86_64";

/// How long qemu may take to exit after the guest printed its result line.
const POWEROFF_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Tcg,
    Kvm,
}

impl Accel {
    /// `auto` picks KVM only when /dev/kvm is usable AND the CPU has vmx/svm (a nested
    /// /dev/kvm without them is slower than TCG and stops on emulation failures).
    pub fn choose(setting: &str) -> Result<Self> {
        match setting {
            "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            "auto" => {
                let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
                let virt = cpuinfo
                    .lines()
                    .filter(|l| l.starts_with("flags"))
                    .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"));
                let kvm = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/kvm")
                    .is_ok();
                Ok(if virt && kvm { Accel::Kvm } else { Accel::Tcg })
            }
            other => bail!("unknown accelerator {other:?} (auto, tcg or kvm)"),
        }
    }

    fn args(self) -> [&'static str; 4] {
        match self {
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        }
    }
}

#[derive(Debug, Clone)]
pub struct VmConfig {
    pub accel: Accel,
    pub memory: String,
    pub smp: u32,
    pub timeout: Duration,
    /// Copy the console to stderr as it arrives.
    pub echo: bool,
}

/// What one boot produced.
#[derive(Debug, Clone)]
pub struct VmRun {
    pub console: String,
    pub marker: Option<Marker>,
    /// From starting qemu to the result line.
    pub boot_to_result: Option<Duration>,
    pub timed_out: bool,
    /// qemu's own stderr (bad options, missing files).
    pub qemu_stderr: String,
    pub qemu_status: Option<std::process::ExitStatus>,
}

enum Msg {
    Line(String),
    Eof,
}

pub fn boot(kernel: &Path, initrd: &Path, cfg: &VmConfig, label: &str) -> Result<VmRun> {
    let mut cmd = Command::new(QEMU);
    cmd.args(cfg.accel.args())
        .args(["-m", &cfg.memory, "-smp", &cfg.smp.to_string()])
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-serial", "stdio", "-no-reboot"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().with_context(|| {
        format!("cannot start {QEMU} (install it with `apt-get install qemu-system-x86`)")
    })?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let mut stderr = child.stderr.take().context("qemu stderr")?;
    let (tx, rx) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .replace('\r', "");
                    if tx.send(Msg::Line(line)).is_err() {
                        return;
                    }
                }
            }
        }
        // The receiver may be gone after a timeout; nothing to tell then.
        tx.send(Msg::Eof).ok();
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        // Whatever qemu managed to say is all there is.
        stderr.read_to_string(&mut s).ok();
        s
    });

    let mut run = VmRun {
        console: String::new(),
        marker: None,
        boot_to_result: None,
        timed_out: false,
        qemu_stderr: String::new(),
        qemu_status: None,
    };
    let hard_deadline = start + cfg.timeout;
    loop {
        let deadline = match run.boot_to_result {
            Some(t) => hard_deadline.min(start + t + POWEROFF_GRACE),
            None => hard_deadline,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Line(line)) => {
                if cfg.echo {
                    eprintln!("[{label}] {line}");
                }
                if run.marker.is_none() {
                    if let Some(m) = console::parse_marker(&line) {
                        run.boot_to_result = Some(start.elapsed());
                        run.marker = Some(m);
                    }
                }
                run.console.push_str(&line);
                run.console.push('\n');
            }
            Ok(Msg::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                run.timed_out = run.marker.is_none();
                if let Err(e) = child.kill() {
                    eprintln!("vm-tests: {label}: cannot kill qemu: {e}");
                }
                break;
            }
        }
    }
    run.qemu_status = Some(child.wait().context("waiting for qemu")?);
    if reader.join().is_err() {
        eprintln!("vm-tests: {label}: console reader panicked");
    }
    run.qemu_stderr = err_reader.join().unwrap_or_default();
    Ok(run)
}
