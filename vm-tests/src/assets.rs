//! What the guest boots from, fetched once into the cache directory: Debian cloud kernels
//! (newest available ABI, resolved at run time) and a static busybox.
//!
//! Cache layout (`$VMTESTS_CACHE_DIR`, default `$XDG_CACHE_HOME/redbpf-vm` or
//! `~/.cache/redbpf-vm`):
//!
//! ```text
//! debs/<package>_<version>_amd64.deb   downloaded with apt-get download
//! debs/<package>.unavailable           a failed download, not retried for a day
//! kernels/<deb stem>/boot/vmlinuz-*    unpacked with dpkg-deb (nothing else)
//! apt-bullseye/                        private apt configuration, lists, archives
//! busybox/bin/busybox                  only if the host's /bin/busybox is not static
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::apt::{self, Apt, Mirrors};
use crate::elf;

/// A Debian kernel series this harness boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSpec {
    /// What users type: `6.1`, `5.10`.
    pub series: &'static str,
    /// The Debian release whose archive has it.
    pub release: &'static str,
    /// Package name around the ABI number.
    pub prefix: &'static str,
    pub suffix: &'static str,
}

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        series: "6.1",
        release: "bookworm",
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
    },
    KernelSpec {
        series: "5.10",
        release: "bullseye",
        prefix: "linux-image-5.10.0-",
        suffix: "-cloud-amd64-unsigned",
    },
];

/// How many ABIs, newest first, are tried before giving up (the newest security ABIs of
/// an old release sometimes answer 404).
const MAX_TRIES: usize = 8;

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub series: &'static str,
    pub package: String,
    pub vmlinuz: PathBuf,
}

/// The cache directory and what lives in it.
#[derive(Debug, Clone)]
pub struct Cache {
    pub root: PathBuf,
}

impl Cache {
    /// `explicit`, else `$XDG_CACHE_HOME/redbpf-vm`, else `~/.cache/redbpf-vm`.
    pub fn locate(explicit: Option<PathBuf>) -> Result<Self> {
        let root = match explicit {
            Some(p) => p,
            None => match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
                Some(x) => PathBuf::from(x).join("redbpf-vm"),
                None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                    Some(h) => PathBuf::from(h).join(".cache/redbpf-vm"),
                    None => {
                        bail!("no cache directory: set VMTESTS_CACHE_DIR, XDG_CACHE_HOME or HOME")
                    }
                },
            },
        };
        for sub in ["debs", "kernels"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create cache directory {}", d.display()))?;
        }
        Ok(Self { root })
    }

    fn debs(&self) -> PathBuf {
        self.root.join("debs")
    }
}

/// The host's Debian codename from /etc/os-release (`bookworm`), if any.
fn host_codename() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim_matches('"').to_owned())
}

/// Resolves, downloads (once) and unpacks the newest available kernel of `spec`.
pub fn fetch_kernel(spec: &KernelSpec, cache: &Cache) -> Result<Kernel> {
    let on_host = host_codename().as_deref() == Some(spec.release);
    let apt = if on_host {
        Apt::host()
    } else {
        let mirrors = Mirrors::from_host()?;
        Apt::private(
            &cache.root.join(format!("apt-{}", spec.release)),
            spec.release,
            &mirrors,
        )?
    };
    let pattern = format!("{}<abi>{}", spec.prefix, spec.suffix);
    let mut updated = false;
    if !apt.has_lists() {
        eprintln!("vm-tests: {}: apt-get update", apt.label);
        apt.update()
            .with_context(|| format!("kernel {}: updating {}", spec.series, apt.label))?;
        updated = true;
    }
    loop {
        let candidates = apt
            .search(spec.prefix, spec.suffix)
            .with_context(|| format!("kernel {}: looking up {pattern}", spec.series))?;
        let mut failures = Vec::new();
        for c in candidates.iter().take(MAX_TRIES) {
            let unavailable = cache.debs().join(format!("{}.unavailable", c.name));
            let deb = match apt::find_deb(&cache.debs(), &c.name) {
                Some(deb) => deb,
                None if !updated && recently_failed(&unavailable) => {
                    failures.push(format!(
                        "{}: did not download within the last day ({})",
                        c.name,
                        unavailable.display()
                    ));
                    continue;
                }
                None => {
                    eprintln!(
                        "vm-tests: kernel {}: apt-get download {}",
                        spec.series, c.name
                    );
                    match apt.download(&c.name, &cache.debs()) {
                        Ok(deb) => deb,
                        Err(e) => {
                            eprintln!(
                                "vm-tests: kernel {}: {} did not download, trying an older ABI",
                                spec.series, c.name
                            );
                            // Remember it, so the next runs do not ask the mirror again today.
                            if let Err(w) = std::fs::write(&unavailable, format!("{e}\n")) {
                                eprintln!("vm-tests: warning: {}: {w}", unavailable.display());
                            }
                            failures.push(format!("{}: {e}", c.name));
                            continue;
                        }
                    }
                }
            };
            let vmlinuz = unpack_kernel(&deb, cache)
                .with_context(|| format!("kernel {}: unpacking {}", spec.series, deb.display()))?;
            return Ok(Kernel {
                series: spec.series,
                package: c.name.clone(),
                vmlinuz,
            });
        }
        if !on_host && !updated {
            // Stale private lists name packages the mirror no longer has: refresh once.
            eprintln!("vm-tests: {}: apt-get update", apt.label);
            apt.update()
                .with_context(|| format!("kernel {}: updating {}", spec.series, apt.label))?;
            updated = true;
            continue;
        }
        if candidates.is_empty() {
            bail!(
                "kernel {}: no package {pattern} in {}'s lists{}",
                spec.series,
                apt.label,
                if on_host {
                    " (run `apt-get update`)"
                } else {
                    ""
                }
            );
        }
        bail!(
            "kernel {}: none of the {} newest {pattern} packages downloaded:\n{}",
            spec.series,
            failures.len(),
            failures.join("\n")
        );
    }
}

/// Whether `marker` (written when a download failed) is less than a day old.
fn recently_failed(marker: &Path) -> bool {
    std::fs::metadata(marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(24 * 3600))
}

/// Unpacks only `./boot/vmlinuz-*` of a kernel .deb into `kernels/<deb stem>/`.
fn unpack_kernel(deb: &Path, cache: &Cache) -> Result<PathBuf> {
    let stem = deb
        .file_stem()
        .with_context(|| format!("{}: no file name", deb.display()))?;
    let dir = cache.root.join("kernels").join(stem);
    if !dir.join("boot").is_dir() {
        let tmp = dir.with_extension(format!("tmp{}", std::process::id()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot remove {}", tmp.display()))?;
        }
        apt::unpack(deb, "./boot/vmlinuz-*", &tmp)?;
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), dir.display()))?;
    }
    let boot = dir.join("boot");
    let mut found: Vec<_> = std::fs::read_dir(&boot)
        .with_context(|| format!("cannot read {}", boot.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("{}: no vmlinuz-* in {}", deb.display(), boot.display()))
}

/// A static busybox: the host's /bin/busybox (package busybox-static) if it is static,
/// else ./bin/busybox unpacked from a downloaded busybox-static .deb.
pub fn fetch_busybox(cache: &Cache) -> Result<PathBuf> {
    let host = Path::new("/bin/busybox");
    match elf::check_static(host) {
        Ok(()) => return Ok(host.to_owned()),
        Err(e) => eprintln!("vm-tests: not using the host's busybox: {e}"),
    }
    let unpacked = cache.root.join("busybox/bin/busybox");
    if unpacked.exists() {
        return Ok(unpacked);
    }
    let deb = match apt::find_deb(&cache.debs(), "busybox-static") {
        Some(deb) => deb,
        None => Apt::host()
            .download("busybox-static", &cache.debs())
            .context("fetching busybox-static")?,
    };
    apt::unpack(&deb, "./bin/busybox", &cache.root.join("busybox"))
        .with_context(|| format!("unpacking {}", deb.display()))?;
    elf::check_static(&unpacked)?;
    Ok(unpacked)
}
