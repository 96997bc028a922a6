//! What the guest boots from, fetched once into the cache directory: Debian cloud kernels
//! and Ubuntu's generic 4.15 and 4.4 (newest available ABI, resolved at run time), or a
//! kernel image the user gives; and a static busybox.
//!
//! Cache layout (`$VMTESTS_CACHE_DIR`, default `$XDG_CACHE_HOME/redbpf-vm` or
//! `~/.cache/redbpf-vm`):
//!
//! ```text
//! debs/<package>_<version>_amd64.deb   downloaded with apt-get download
//! debs/<package>.unavailable           a failed download, not retried for a day
//! kernels/<deb stem>/boot/vmlinuz-*    unpacked with dpkg-deb (nothing else)
//! apt-bullseye/                        private apt configuration, lists, archives
//! apt-ubuntu-bionic/                   the same for Ubuntu's archive
//! busybox/bin/busybox                  only if the host's /bin/busybox is not static
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::apt::{self, Apt, Mirrors};
use crate::elf;

/// Whose archive a kernel package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distro {
    Debian,
    /// Ubuntu's archive, beside the host's Debian mirror (`apt::ubuntu_archive`).
    Ubuntu,
}

/// A distribution kernel series this harness boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelSpec {
    /// What users type: `6.1`, `5.10`, `4.15`, `4.4`.
    pub series: &'static str,
    pub distro: Distro,
    /// The release whose archive has it (`bookworm`, `bionic`).
    pub release: &'static str,
    /// Ubuntu suites to list (Debian: the release and its security suite).
    pub suites: &'static [&'static str],
    /// Package name around the ABI number.
    pub prefix: &'static str,
    pub suffix: &'static str,
    /// `(major, minor)`: which scenarios make sense there.
    pub version: (u32, u32),
}

pub const KERNELS: &[KernelSpec] = &[
    KernelSpec {
        series: "6.1",
        distro: Distro::Debian,
        release: "bookworm",
        suites: &[],
        prefix: "linux-image-6.1.0-",
        suffix: "-cloud-amd64-unsigned",
        version: (6, 1),
    },
    KernelSpec {
        series: "5.10",
        distro: Distro::Debian,
        release: "bullseye",
        suites: &[],
        prefix: "linux-image-5.10.0-",
        suffix: "-cloud-amd64-unsigned",
        version: (5, 10),
    },
    // Ubuntu 18.04's kernel: no kprobe PMU (< 4.17), no BTF, the 4.x verifier.
    KernelSpec {
        series: "4.15",
        distro: Distro::Ubuntu,
        release: "bionic",
        suites: &["bionic", "bionic-updates"],
        prefix: "linux-image-unsigned-4.15.0-",
        suffix: "-generic",
        version: (4, 15),
    },
    // Ubuntu 16.04's kernel: no bpf_probe_read_str (4.11), no tracepoint programs (4.7).
    KernelSpec {
        series: "4.4",
        distro: Distro::Ubuntu,
        release: "xenial",
        suites: &["xenial", "xenial-updates"],
        prefix: "linux-image-4.4.0-",
        suffix: "-generic",
        version: (4, 4),
    },
];

/// How many ABIs, newest first, are tried before giving up (the newest security ABIs of
/// an old release sometimes answer 404).
const MAX_TRIES: usize = 8;

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `4.15`, or the version an image names.
    pub series: String,
    /// The package, or the image's path.
    pub package: String,
    pub vmlinuz: PathBuf,
    /// `(major, minor)`.
    pub version: (u32, u32),
}

/// A kernel image given by the user (`--kernel-image`): its version is read from the
/// bzImage's setup header.
pub fn kernel_image(path: &Path) -> Result<Kernel> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let version = bzimage_version(&bytes).with_context(|| {
        format!(
            "{}: not an x86 bzImage with a version string (qemu -kernel needs one)",
            path.display()
        )
    })?;
    let (major, minor) = parse_major_minor(&version)
        .with_context(|| format!("{}: version {version:?} has no x.y", path.display()))?;
    Ok(Kernel {
        series: format!("{major}.{minor}"),
        package: format!("{} ({version})", path.display()),
        vmlinuz: path.to_owned(),
        version: (major, minor),
    })
}

/// The version string of an x86 bzImage (`4.15.0-213-generic (buildd@...) #224-Ubuntu`):
/// the setup header (`HdrS` at 0x202) points to it with `kernel_version` at 0x20e,
/// relative to 0x200.
pub fn bzimage_version(image: &[u8]) -> Option<String> {
    if image.get(0x202..0x206)? != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes(image.get(0x20e..0x210)?.try_into().ok()?);
    let start = usize::from(ptr).checked_add(0x200)?;
    let text = image.get(start..)?;
    let end = text.iter().position(|&b| b == 0)?;
    let s = std::str::from_utf8(&text[..end]).ok()?;
    Some(s.split_whitespace().next()?.to_owned())
}

/// `(major, minor)` of a release like `4.19.222` or `4.15.0-213-generic`.
pub fn parse_major_minor(release: &str) -> Option<(u32, u32)> {
    let mut nums = release.split(|c: char| !c.is_ascii_digit());
    Some((nums.next()?.parse().ok()?, nums.next()?.parse().ok()?))
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
    let on_host = spec.distro == Distro::Debian && host_codename().as_deref() == Some(spec.release);
    let apt = match spec.distro {
        _ if on_host => Apt::host(),
        Distro::Debian => Apt::private(
            &cache.root.join(format!("apt-{}", spec.release)),
            spec.release,
            &Mirrors::from_host()?,
        )?,
        Distro::Ubuntu => Apt::private_ubuntu(
            &cache.root.join(format!("apt-ubuntu-{}", spec.release)),
            spec.suites,
            &Mirrors::from_host()?,
        )?,
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
                series: spec.series.to_owned(),
                package: c.name.clone(),
                vmlinuz,
                version: spec.version,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bzimage_version_from_the_setup_header() {
        let mut img = vec![0u8; 0x400];
        img[0x202..0x206].copy_from_slice(b"HdrS");
        img[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        let v = b"4.19.222 (me@host) #1 SMP Tue\0";
        img[0x300..0x300 + v.len()].copy_from_slice(v);
        assert_eq!(bzimage_version(&img).as_deref(), Some("4.19.222"));
        img[0x202] = b'X';
        assert_eq!(bzimage_version(&img), None);
        assert_eq!(bzimage_version(b"short"), None);
        assert_eq!(parse_major_minor("4.15.0-213-generic"), Some((4, 15)));
        assert_eq!(parse_major_minor("x"), None);
    }

    #[test]
    fn series_names_are_unique() {
        let mut s: Vec<_> = KERNELS.iter().map(|k| k.series).collect();
        s.sort();
        s.dedup();
        assert_eq!(s.len(), KERNELS.len());
    }
}
