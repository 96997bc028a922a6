//! Brings the drop-in `redbpf-macros` to probe crates that do not patch it themselves.
//!
//! The macro crate's sources are compiled into this binary and written to
//! `<target-dir>/bpf/redbpf-macros/`; cargo is then told, with `--config` patch tables, to
//! use them instead of crates.io's (or redbpf's git repository's) redbpf-macros.

use std::path::{Path, PathBuf};

const FILES: &[(&str, &str)] = &[
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
];

const MANIFEST: &str = r#"[package]
name = "redbpf-macros"
version = "2.3.0"
edition = "2021"
description = "Drop-in procedural macros for redbpf-probes 2.3 (written by cargo-bpf)"
license = "MIT OR Apache-2.0"

[lib]
proc-macro = true

[dependencies]
proc-macro2 = "1"
quote = "1"
syn = { version = "2", features = ["full"] }

[workspace]
"#;

/// Writes the macro crate under `target_dir` (only files whose content changed, so cargo's
/// fingerprints stay fresh) and returns its directory.
pub fn materialise(target_dir: &Path) -> std::io::Result<PathBuf> {
    let root = target_dir.join("bpf").join("redbpf-macros");
    std::fs::create_dir_all(root.join("src"))?;
    for (name, content) in FILES.iter().copied().chain([("Cargo.toml", MANIFEST)]) {
        let path = root.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(content) {
            std::fs::write(&path, content)?;
        }
    }
    Ok(root)
}

/// The `--config` value patching `source` (a cargo package source id) with `dir`.
pub fn config_for(source: &str, dir: &Path) -> Option<String> {
    let table = if source.starts_with("registry+") || source.starts_with("sparse+") {
        "crates-io".to_string()
    } else if let Some(git) = source.strip_prefix("git+") {
        let url = git.split(['?', '#']).next().unwrap_or(git);
        format!("{url:?}")
    } else {
        return None;
    };
    Some(format!(
        "patch.{table}.redbpf-macros.path={:?}",
        dir.display().to_string()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_tables_for_registry_and_git() {
        let dir = Path::new("/t/redbpf-macros");
        assert_eq!(
            config_for("registry+https://github.com/rust-lang/crates.io-index", dir).unwrap(),
            r#"patch.crates-io.redbpf-macros.path="/t/redbpf-macros""#
        );
        assert_eq!(
            config_for(
                "git+https://github.com/foniod/redbpf?branch=main#5533198",
                dir
            )
            .unwrap(),
            r#"patch."https://github.com/foniod/redbpf".redbpf-macros.path="/t/redbpf-macros""#
        );
        assert!(config_for("path+file:///x", dir).is_none());
    }

    #[test]
    fn embedded_sources_are_complete() {
        for (name, _) in FILES {
            let module = name.trim_start_matches("src/").trim_end_matches(".rs");
            if module != "lib" {
                assert!(
                    FILES[0].1.contains(&format!("mod {module};")),
                    "{module} not in lib.rs"
                );
            }
        }
        let on_disk =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../redbpf-macros/src"))
                .unwrap();
        assert_eq!(
            on_disk.count(),
            FILES.len(),
            "a redbpf-macros source file is not embedded"
        );
    }
}
