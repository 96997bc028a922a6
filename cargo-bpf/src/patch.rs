//! Brings the drop-in crates to probe crates that do not patch them themselves:
//! `redbpf-macros` (the proc macros) and, for crates with a `cargo-bpf` build-dependency,
//! the `cargo-bpf` library (`cargo_bpf_lib`, from `dropins/cargo-bpf`).
//!
//! Their sources are compiled into this binary and written to
//! `<target-dir>/bpf/dropins/<name>-<version>/`, with the version the probe crate's lock
//! pins (a patch only replaces the exact locked version); cargo is then told, with
//! `--config` patch tables, to use them instead of crates.io's (or a git repository's).
//! Neither asks for more than the crates they replace did (syn 1, quote 1, proc-macro2 1;
//! nothing at all for cargo-bpf), so they resolve within any lock that resolved those.

use std::path::{Path, PathBuf};

/// One drop-in crate: package name, its files, and its manifest with `{version}` to fill.
pub struct DropIn {
    pub name: &'static str,
    files: &'static [(&'static str, &'static str)],
    manifest: &'static str,
}

pub const MACROS: DropIn = DropIn {
    name: "redbpf-macros",
    files: &[
        ("src/lib.rs", include_str!("../../redbpf-macros/src/lib.rs")),
        ("src/map.rs", include_str!("../../redbpf-macros/src/map.rs")),
        (
            "src/printk.rs",
            include_str!("../../redbpf-macros/src/printk.rs"),
        ),
        (
            "src/probe.rs",
            include_str!("../../redbpf-macros/src/probe.rs"),
        ),
        (
            "src/program.rs",
            include_str!("../../redbpf-macros/src/program.rs"),
        ),
    ],
    manifest: r#"[package]
name = "redbpf-macros"
version = "{version}"
edition = "2021"
description = "Drop-in procedural macros for redbpf-probes 2.x (written by cargo-bpf)"
license = "MIT OR Apache-2.0"

[lib]
proc-macro = true

[dependencies]
proc-macro2 = "1"
quote = "1"
syn = { version = "1", features = ["full"] }

[workspace]
"#,
};

pub const CARGO_BPF_LIB: DropIn = DropIn {
    name: "cargo-bpf",
    files: &[
        (
            "src/lib.rs",
            include_str!("../../dropins/cargo-bpf/src/lib.rs"),
        ),
        (
            "src/accessors.rs",
            include_str!("../../dropins/cargo-bpf/src/accessors.rs"),
        ),
    ],
    manifest: include_str!("../../dropins/cargo-bpf/Cargo.toml"),
};

/// The version a drop-in gets when the lock pins none.
pub const DEFAULT_VERSION: &str = "2.3.0";

impl DropIn {
    /// Writes the crate under `target_dir` as `version` (only files whose content changed,
    /// so cargo's fingerprints stay fresh) and returns its directory.
    pub fn materialise(&self, target_dir: &Path, version: &str) -> std::io::Result<PathBuf> {
        let root = target_dir
            .join("bpf")
            .join("dropins")
            .join(format!("{}-{version}", self.name));
        std::fs::create_dir_all(root.join("src"))?;
        let manifest = self.manifest_for(version);
        let files = self.files.iter().map(|(n, c)| (*n, *c));
        for (name, content) in files.chain([("Cargo.toml", manifest.as_str())]) {
            let path = root.join(name);
            if std::fs::read_to_string(&path).ok().as_deref() != Some(content) {
                std::fs::write(&path, content)?;
            }
        }
        Ok(root)
    }

    fn manifest_for(&self, version: &str) -> String {
        let mut out = String::new();
        let mut in_package = false;
        for line in self.manifest.lines() {
            if line.starts_with('[') {
                in_package = line.trim() == "[package]";
            }
            if in_package && line.starts_with("version") {
                out.push_str(&format!("version = \"{version}\"\n"));
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// The `--config` value patching `source` (a cargo package source id) with `dir`.
    pub fn config_for(&self, source: &str, dir: &Path) -> Option<String> {
        let table = if source.starts_with("registry+") || source.starts_with("sparse+") {
            "crates-io".to_string()
        } else if let Some(git) = source.strip_prefix("git+") {
            let url = git.split(['?', '#']).next().unwrap_or(git);
            format!("{url:?}")
        } else {
            return None;
        };
        Some(format!(
            "patch.{table}.{}.path={:?}",
            self.name,
            dir.display().to_string()
        ))
    }
}

/// A version the drop-ins stand in for: 2.x (redbpf 1.x crates are refused before).
pub fn supported(version: &str) -> bool {
    version.starts_with("2.")
}

/// A drop-in cargo did not use: the resolved graph holds the registry's package.
#[derive(Debug, PartialEq, Eq)]
pub struct Unused {
    /// Which of the drop-ins.
    pub index: usize,
    /// The 2.x version cargo chose instead, when the drop-in had another one.
    pub retry_with: Option<String>,
    /// One line saying what cargo kept and why.
    pub message: String,
}

/// The first of `dropins` (written as `versions`) that `resolved` shows cargo did not use.
pub fn unused(
    dropins: &[&DropIn],
    versions: &[String],
    resolved: &[crate::cargo::Resolved],
) -> Option<Unused> {
    dropins
        .iter()
        .zip(versions)
        .enumerate()
        .find_map(|(index, (dropin, version))| {
            let kept = resolved.iter().find(|p| {
                p.name == dropin.name
                    && p.source
                        .as_deref()
                        .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+"))
            })?;
            let why = if kept.version == *version {
                "a feature the drop-in does not have is asked for, or another package \
                 requires that version from the registry"
                    .to_string()
            } else {
                format!(
                    "the lock or a `=` requirement pins {} while the drop-in is {version}",
                    kept.version
                )
            };
            Some(Unused {
                index,
                retry_with: (kept.version != *version && supported(&kept.version))
                    .then(|| kept.version.clone()),
                message: format!(
                    "the drop-in {} was not used: cargo kept {} {} from {} ({why})",
                    dropin.name,
                    kept.name,
                    kept.version,
                    kept.source.as_deref().unwrap_or_default()
                ),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tables_for_registry_and_git() {
        let dir = Path::new("/t/redbpf-macros");
        assert_eq!(
            MACROS
                .config_for("registry+https://github.com/rust-lang/crates.io-index", dir)
                .unwrap(),
            r#"patch.crates-io.redbpf-macros.path="/t/redbpf-macros""#
        );
        assert_eq!(
            MACROS
                .config_for(
                    "git+https://github.com/foniod/redbpf?branch=main#5533198",
                    dir
                )
                .unwrap(),
            r#"patch."https://github.com/foniod/redbpf".redbpf-macros.path="/t/redbpf-macros""#
        );
        assert!(MACROS.config_for("path+file:///x", dir).is_none());
    }

    #[test]
    fn embedded_sources_are_complete() {
        let files = MACROS.files;
        for (name, _) in files {
            let module = name.trim_start_matches("src/").trim_end_matches(".rs");
            if module != "lib" {
                assert!(
                    files[0].1.contains(&format!("mod {module};")),
                    "{module} not in lib.rs"
                );
            }
        }
        let on_disk =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../redbpf-macros/src"))
                .unwrap();
        assert_eq!(
            on_disk.count(),
            files.len(),
            "a redbpf-macros source file is not embedded"
        );
    }

    #[test]
    fn unused_drop_ins_are_named() {
        let registry = "registry+https://github.com/rust-lang/crates.io-index";
        let package = |name: &str, version: &str, source: Option<&str>| crate::cargo::Resolved {
            name: name.into(),
            version: version.into(),
            source: source.map(str::to_owned),
        };
        let dropins = [&MACROS, &CARGO_BPF_LIB];
        let versions = ["2.3.0".to_string(), "2.3.0".to_string()];
        let used = [
            package("redbpf-macros", "2.3.0", None),
            package("cargo-bpf", "2.3.0", None),
        ];
        assert_eq!(unused(&dropins, &versions, &used), None);
        // Another 2.x version: retried with it.
        let pinned = [
            package("redbpf-macros", "2.3.0", None),
            package("cargo-bpf", "2.1.0", Some(registry)),
        ];
        let u = unused(&dropins, &versions, &pinned).unwrap();
        assert_eq!((u.index, u.retry_with.as_deref()), (1, Some("2.1.0")));
        assert!(
            u.message.contains("pins 2.1.0 while the drop-in is 2.3.0"),
            "{}",
            u.message
        );
        // The same version and still unused: no retry, one line saying so.
        let same = [package("redbpf-macros", "2.3.0", Some(registry))];
        let u = unused(&dropins, &versions, &same).unwrap();
        assert_eq!(u.retry_with, None);
        assert!(
            u.message.starts_with("the drop-in redbpf-macros was not used: cargo kept redbpf-macros 2.3.0 from registry+"),
            "{}",
            u.message
        );
        assert!(!u.message.contains('\n'));
        // git sources are patched separately.
        let git = [package(
            "redbpf-macros",
            "2.3.0",
            Some("git+https://github.com/foniod/redbpf#1"),
        )];
        assert_eq!(unused(&dropins, &versions, &git), None);
    }

    #[test]
    fn drop_in_cargo_bpf_is_complete() {
        let on_disk = std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dropins/cargo-bpf/src"
        ))
        .unwrap();
        assert_eq!(on_disk.count(), CARGO_BPF_LIB.files.len());
    }

    #[test]
    fn written_with_the_pinned_version() {
        let m = MACROS.manifest_for("2.2.0");
        assert!(m.contains("\nversion = \"2.2.0\"\n"), "{m}");
        assert!(m.contains("syn = { version = \"1\""), "{m}");
        let c = CARGO_BPF_LIB.manifest_for("2.1.0");
        assert!(
            c.contains("name = \"cargo-bpf\"\nversion = \"2.1.0\""),
            "{c}"
        );
        assert!(c.contains("llvm13 = []"), "{c}");
    }
}
