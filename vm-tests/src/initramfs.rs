//! The guest's root file system: busybox, a dumb /init, the static guest driver (this
//! binary), the loader, the probe objects and the plan, as one newc cpio archive.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cpio::CpioWriter;
use crate::scenario::{Step, GUEST_LOADER, GUEST_OBJECTS, GUEST_PLAN, GUEST_SELF};

/// /init: mount the pseudo file systems, bring up loopback, run the plan, print the one result line, power off.
/// The judging happens on the host; this script only reports the driver's exit status.
pub fn init_script() -> String {
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
# Only emergencies on the console: a kernel message (4.15: "serial8250: too much work for
# irq4") once landed in the middle of a long JSON line.
echo 1 > /proc/sys/kernel/printk
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
ip link set lo up
if {GUEST_SELF} guest {GUEST_PLAN}; then R=ok; else R="fail driver-exit=$?"; fi
echo "VMTEST-RESULT $R kernel=$(uname -r) uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
"#
    )
}

/// What goes into the archive besides /init.
#[derive(Debug, Clone)]
pub struct Contents {
    pub busybox: PathBuf,
    /// A static build of this crate, run as `vm-tests guest`.
    pub guest_bin: PathBuf,
    pub loader: Option<PathBuf>,
    /// (file name under /vmtests/objects, host path)
    pub objects: Vec<(String, PathBuf)>,
    pub plan: Vec<Step>,
}

/// An executable's bytes without debug info (`strip --strip-debug`), to keep the
/// initramfs small; unchanged if `strip` is not available. Probe objects are never
/// stripped: the loader needs their BTF and debug info.
fn stripped(path: &Path) -> Result<Vec<u8>> {
    let tmp = tempfile::NamedTempFile::new().context("creating a temporary file")?;
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(tmp.path())
        .arg(path)
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => std::fs::read(tmp.path())
            .with_context(|| format!("reading stripped {}", path.display())),
        _ => std::fs::read(path).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes the archive to `out` and returns its size.
pub fn build(c: &Contents, out: &Path) -> Result<u64> {
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut w = CpioWriter::new(BufWriter::new(file));
    let write = |w: &mut CpioWriter<_>| -> Result<()> {
        for d in [
            "bin",
            "dev",
            "proc",
            "sys",
            "tmp",
            "run",
            "vmtests",
            "vmtests/bin",
        ] {
            w.dir(d, 0o755)?;
        }
        w.dir(GUEST_OBJECTS, 0o755)?;
        w.file("init", 0o755, init_script().as_bytes())?;
        let busybox = std::fs::read(&c.busybox)
            .with_context(|| format!("reading busybox {}", c.busybox.display()))?;
        w.file("bin/busybox", 0o755, &busybox)?;
        w.file(GUEST_SELF, 0o755, &stripped(&c.guest_bin)?)?;
        if let Some(loader) = &c.loader {
            w.file(GUEST_LOADER, 0o755, &stripped(loader)?)?;
        }
        for (name, path) in &c.objects {
            let bytes = std::fs::read(path)
                .with_context(|| format!("reading probe object {}", path.display()))?;
            w.file(&format!("{GUEST_OBJECTS}/{name}"), 0o644, &bytes)?;
        }
        let plan = serde_json::to_vec_pretty(&c.plan).context("serialising the plan")?;
        w.file(GUEST_PLAN, 0o644, &plan)?;
        Ok(())
    };
    write(&mut w).with_context(|| format!("writing initramfs {}", out.display()))?;
    w.finish()
        .and_then(|b| b.into_inner().map_err(|e| e.into_error()))
        .with_context(|| format!("writing initramfs {}", out.display()))?;
    Ok(std::fs::metadata(out)
        .with_context(|| format!("stat {}", out.display()))?
        .len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_prints_one_marker_and_powers_off() {
        let s = init_script();
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert_eq!(s.matches("VMTEST-RESULT").count(), 1);
        assert!(s.contains("/vmtests/bin/vm-tests guest /vmtests/plan.json"));
        assert!(s.trim_end().ends_with("poweroff -f"));
    }

    #[test]
    fn builds_an_archive_with_everything() {
        let dir = tempfile::tempdir().unwrap();
        let fake = |name: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, name.as_bytes()).unwrap();
            p
        };
        let c = Contents {
            busybox: fake("busybox"),
            guest_bin: fake("guest"),
            loader: Some(fake("loader")),
            objects: vec![("execcount.elf".into(), fake("execcount.elf"))],
            plan: vec![],
        };
        let out = dir.path().join("initrd.cpio");
        let size = build(&c, &out).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes.len() as u64, size);
        let text = String::from_utf8_lossy(&bytes);
        for name in [
            "bin/busybox\0",
            "init\0",
            "vmtests/bin/vm-tests\0",
            "vmtests/bin/loader\0",
            "vmtests/objects/execcount.elf\0",
            "vmtests/plan.json\0",
            "TRAILER!!!\0",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}
