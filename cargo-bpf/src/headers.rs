//! Which kernel headers redbpf-probes' bindgen runs over.
//!
//! Precedence: `KERNEL_SOURCE` (a headers tree, or a directory with `build`/`source`), then
//! `KERNEL_VERSION` (`/lib/modules/<version>/{build,source}`), then `--kernel-headers`, then
//! the project's `kernel-headers/bookworm` fetched by `make kernel-headers` (looked up from
//! the probe crate upwards), then the running kernel's `/lib/modules/$(uname -r)`.

use std::path::{Path, PathBuf};

const KCONFIG: &str = "include/linux/kconfig.h";
const VERSION_H: &str = "include/generated/uapi/linux/version.h";

#[derive(Debug, thiserror::Error)]
pub enum HeadersError {
    #[error("kernel headers at {path} ({origin}) are incomplete: no {missing}; {hint}")]
    Incomplete {
        path: PathBuf,
        /// Where that path came from (`KERNEL_SOURCE`, `--kernel-headers`, ...).
        origin: String,
        missing: &'static str,
        hint: Hint,
    },
    #[error("no kernel headers found (tried: {tried}); {hint}")]
    NotFound { tried: String, hint: Hint },
}

/// What to do about missing headers, for a crate at some place: the ways every crate has,
/// and `make kernel-headers` only for crates inside this project (where it works).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// This project's checkout, when the crate is inside it.
    pub project: Option<PathBuf>,
}

impl Hint {
    pub fn for_crate(crate_dir: &Path) -> Hint {
        Hint {
            project: crate_dir
                .ancestors()
                .find(|dir| dir.join("kernel-headers").join("fetch.sh").is_file())
                .map(Path::to_path_buf),
        }
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pass --kernel-headers DIR (a kernel headers tree), set KERNEL_SOURCE=DIR, or \
             KERNEL_VERSION=x.y.z for /lib/modules/x.y.z (your distribution's \
             linux-headers package)"
        )?;
        if let Some(project) = &self.project {
            write!(
                f,
                ", or run `make kernel-headers` in {} (Debian 12's 6.1 headers into \
                 kernel-headers/bookworm)",
                project.display()
            )?;
        }
        Ok(())
    }
}

/// What to hand to redbpf-probes' build script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headers {
    Source(PathBuf),
    Version(String),
}

/// Checks that `dir` is a tree bpf-sys accepts: either itself a headers tree, or a directory
/// holding `build` (generated headers) and `source` (the common tree). The error names
/// the part that is missing; `origin` and `hint` complete it.
pub fn validate(dir: &Path, origin: &str, hint: &Hint) -> Result<(), HeadersError> {
    let has = |p: &Path| p.is_file();
    let incomplete = |path: PathBuf, missing| HeadersError::Incomplete {
        path,
        origin: origin.to_owned(),
        missing,
        hint: hint.clone(),
    };
    let split = has(&dir.join("source").join(KCONFIG)) || has(&dir.join("build").join(KCONFIG));
    if split {
        let build_ok =
            has(&dir.join("build").join(VERSION_H)) || has(&dir.join("source").join(VERSION_H));
        return if build_ok {
            Ok(())
        } else {
            Err(incomplete(dir.join("build"), VERSION_H))
        };
    }
    if !has(&dir.join(KCONFIG)) {
        return Err(incomplete(dir.to_owned(), KCONFIG));
    }
    Ok(())
}

pub fn resolve(explicit: Option<&Path>, crate_dir: &Path) -> Result<Headers, HeadersError> {
    let hint = Hint::for_crate(crate_dir);
    if let Some(src) = std::env::var_os("KERNEL_SOURCE").filter(|s| !s.is_empty()) {
        let path = PathBuf::from(src);
        validate(&path, "set by KERNEL_SOURCE", &hint)?;
        return Ok(Headers::Source(path));
    }
    if let Ok(version) = std::env::var("KERNEL_VERSION") {
        if !version.is_empty() {
            validate(
                &Path::new("/lib/modules").join(&version),
                "set by KERNEL_VERSION",
                &hint,
            )?;
            return Ok(Headers::Version(version));
        }
    }
    if let Some(dir) = explicit {
        validate(dir, "given with --kernel-headers", &hint)?;
        return Ok(Headers::Source(dir.to_owned()));
    }
    let mut tried = Vec::new();
    for dir in crate_dir.ancestors() {
        let candidate = dir.join("kernel-headers").join("bookworm");
        if candidate.exists() {
            validate(&candidate, "found above the crate", &hint)?;
            return Ok(Headers::Source(candidate));
        }
    }
    tried.push("kernel-headers/bookworm above the crate".to_string());
    if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        let dir = Path::new("/lib/modules").join(release.trim());
        if validate(&dir, "the running kernel's", &hint).is_ok() {
            return Ok(Headers::Version(release.trim().to_string()));
        }
        tried.push(dir.display().to_string());
    }
    Err(HeadersError::NotFound {
        tried: tried.join(", "),
        hint,
    })
}

/// `--flat-ip-headers`: included (`-include`) by redbpf-probes' bindgen before its own
/// headers. uapi's `__struct_group(TAG, NAME, ATTRS, MEMBERS...)` is a union of an
/// anonymous and a named struct of MEMBERS, which bindgen turns into
/// `iphdr.__bindgen_anon_1.__bindgen_anon_1.saddr`. While uapi's ip.h and ipv6.h (and only
/// they) are read, it becomes MEMBERS themselves, followed by an empty (zero-size) struct
/// named NAME so that header code naming the group (`&iph->addrs` in net/ip.h) still
/// parses; the structs stay `Copy` in Rust (`*ctx.ip()?` copies an iphdr). Both groups
/// hold 4-byte-aligned members with nothing after them: the layout is the kernel's. Headers without `__struct_group` (before 5.16) are read unchanged, and so is
/// any bindgen run without kernel headers (bpf-sys's over libbpf).
const FLAT_IP_H: &str = r#"/* Written by cargo-bpf for --flat-ip-headers. */
#ifndef CARGO_BPF_FLAT_IP_H
#define CARGO_BPF_FLAT_IP_H
/* Only for bindgen runs over kernel headers (bpf-sys runs one over libbpf's alone). */
#if defined(__KERNEL__) && defined(__has_include)
#if __has_include(<uapi/linux/ip.h>) && __has_include(<uapi/linux/in6.h>)
/* What ip.h and ipv6.h include, read first with the kernel's own macros (kconfig.h
   first, as redbpf-probes' own header does: it is included again there, a no-op). */
#include <linux/kconfig.h>
#include <linux/types.h>
#include <linux/stddef.h>
#include <asm/byteorder.h>
#include <uapi/linux/in6.h>
#pragma push_macro("__struct_group")
#undef __struct_group
#define __struct_group(TAG, NAME, ATTRS, MEMBERS...) \
	MEMBERS struct { } NAME
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#pragma pop_macro("__struct_group")
#endif
#endif
#endif
"#;

/// A name for cargo's target directory under `--flat-ip-headers`: bindgen's extra
/// arguments and the header's content are in no fingerprint of cargo's, so bindings made
/// with another version of the header live in another directory.
pub fn flat_ip_target_name() -> String {
    // FNV-1a, 32 bits: stable across builds of this tool.
    let hash = FLAT_IP_H.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("flat-ip-{hash:08x}")
}

/// Writes the `--flat-ip-headers` include under `target_dir` and returns its path.
pub fn write_flat_ip_header(target_dir: &Path) -> std::io::Result<PathBuf> {
    let dir = target_dir.join("bpf").join("include");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("cargo-bpf-flat-ip.h");
    if std::fs::read_to_string(&path).ok().as_deref() != Some(FLAT_IP_H) {
        std::fs::write(&path, FLAT_IP_H)?;
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "").unwrap();
    }

    #[test]
    fn split_and_flat_trees() {
        let tmp = std::env::temp_dir().join(format!("cargo-bpf-headers-{}", std::process::id()));
        let outside = Hint { project: None };
        let split = tmp.join("split");
        touch(&split.join("source").join(KCONFIG));
        let err = validate(&split, "KERNEL_SOURCE", &outside)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("version.h") && err.contains("(KERNEL_SOURCE)"),
            "{err}"
        );
        touch(&split.join("build").join(VERSION_H));
        validate(&split, "KERNEL_SOURCE", &outside).unwrap();

        let flat = tmp.join("flat");
        let err = validate(&flat, "--kernel-headers", &outside)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&flat.display().to_string()), "{err}");
        touch(&flat.join(KCONFIG));
        validate(&flat, "--kernel-headers", &outside).unwrap();
        std::fs::remove_dir_all(tmp).unwrap();
    }

    #[test]
    fn the_hint_fits_where_the_crate_is() {
        let outside = Hint::for_crate(Path::new("/nonexistent/probes")).to_string();
        for way in [
            "--kernel-headers DIR",
            "KERNEL_SOURCE=DIR",
            "KERNEL_VERSION=x.y.z",
        ] {
            assert!(outside.contains(way), "{outside}");
        }
        assert!(!outside.contains("make kernel-headers"), "{outside}");
        let project = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let inside = Hint::for_crate(&project.join("compat-probes")).to_string();
        assert!(
            inside.contains(&format!(
                "run `make kernel-headers` in {}",
                project.display()
            )),
            "{inside}"
        );
        assert!(!inside.contains('\n'), "{inside}");
    }
}
