//! Drives cargo: finds the probe crate and its programs (`cargo metadata`), and compiles each
//! program to LTO bitcode (`cargo rustc` with a `bpf-probe` profile given through `--config`,
//! so the crate needs no special manifest).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::headers::Headers;

/// A probe crate and the programs (bins) it builds.
#[derive(Debug)]
pub struct ProbeCrate {
    pub name: String,
    pub manifest: PathBuf,
    pub dir: PathBuf,
    pub bins: Vec<String>,
    pub has_probes_feature: bool,
    pub target_dir: PathBuf,
    /// Source id of the redbpf-macros it resolves to, when that is not a local path
    /// (a git repository the crates.io patch does not cover).
    pub macros_source: Option<String>,
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn metadata(manifest: Option<&Path>, no_deps: bool, config: &[String]) -> Result<Value> {
    let mut cmd = cargo();
    cmd.args([
        "metadata",
        "--format-version",
        "1",
        "--filter-platform",
        "x86_64-unknown-linux-gnu",
    ]);
    if no_deps {
        cmd.arg("--no-deps");
    }
    if let Some(m) = manifest {
        cmd.arg("--manifest-path").arg(m);
    }
    for value in config {
        cmd.args(["--config", value]);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `cargo metadata`")?;
    if !out.status.success() {
        bail!("`cargo metadata` failed ({})", out.status);
    }
    serde_json::from_slice(&out.stdout).context("`cargo metadata` printed invalid JSON")
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The workspace's target directory, and whether the workspace has its own redbpf-macros
/// member (then it patches itself and must not be patched again).
pub fn workspace(manifest: Option<&Path>) -> Result<(PathBuf, bool)> {
    let meta = metadata(manifest, true, &[])?;
    let own_macros = meta["packages"]
        .as_array()
        .is_some_and(|p| p.iter().any(|p| str_of(p, "name") == "redbpf-macros"));
    Ok((PathBuf::from(str_of(&meta, "target_directory")), own_macros))
}

/// The probe crates in reach: the package whose directory holds `cwd` (or the manifest
/// given), else every workspace member depending on redbpf-probes. `config` (the macro
/// patches) is passed so the lock file does not flip between resolutions.
pub fn probe_crates(
    manifest: Option<&Path>,
    cwd: &Path,
    target_dir: &Path,
    config: &[String],
) -> Result<Vec<ProbeCrate>> {
    let meta = metadata(manifest, false, config)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let macros_source = packages
        .iter()
        .find(|p| str_of(p, "name") == "redbpf-macros")
        .and_then(|p| p.get("source").and_then(Value::as_str))
        .map(str::to_owned);
    let uses_redbpf = |p: &Value| {
        p["dependencies"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| str_of(d, "name") == "redbpf-probes"))
    };
    let mut found: Vec<ProbeCrate> = packages
        .iter()
        .filter(|p| members.contains(&str_of(p, "id")) && uses_redbpf(p))
        .map(|p| {
            let manifest = PathBuf::from(str_of(p, "manifest_path"));
            let has_probes_feature = p["features"].get("probes").is_some();
            let bins = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .map(|t| str_of(t, "name").to_owned())
                .collect();
            ProbeCrate {
                name: str_of(p, "name").to_owned(),
                dir: manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
                manifest,
                bins,
                has_probes_feature,
                target_dir: target_dir.to_path_buf(),
                macros_source: macros_source.clone(),
            }
        })
        .collect();
    if let Some(here) = found.iter().position(|c| cwd.starts_with(&c.dir)) {
        found = vec![found.swap_remove(here)];
    }
    if found.is_empty() {
        bail!("no crate depending on redbpf-probes here (run `cargo bpf build` in a probe crate or pass --manifest-path)");
    }
    Ok(found)
}

/// `--config` values for the bpf-probe profile: host-target LTO bitcode with debug info,
/// no unwinding, one codegen unit.
const PROFILE: &[&str] = &[
    "profile.bpf-probe.inherits=\"release\"",
    "profile.bpf-probe.opt-level=3",
    "profile.bpf-probe.lto=true",
    "profile.bpf-probe.panic=\"abort\"",
    "profile.bpf-probe.debug=2",
    "profile.bpf-probe.codegen-units=1",
    "profile.bpf-probe.incremental=false",
    "profile.bpf-probe.debug-assertions=false",
    "profile.bpf-probe.overflow-checks=false",
];

/// Compiles one program to bitcode at `bitcode`; cargo's diagnostics go to stderr.
pub fn bitcode(
    krate: &ProbeCrate,
    bin: &str,
    headers: &Headers,
    patch: &[String],
    bitcode: &Path,
) -> Result<()> {
    let mut cmd = cargo();
    cmd.arg("rustc")
        .arg("--manifest-path")
        .arg(&krate.manifest)
        .args([
            "--profile",
            "bpf-probe",
            "--bin",
            bin,
            "--message-format",
            "json-diagnostic-rendered-ansi",
        ])
        .arg("--target-dir")
        .arg(&krate.target_dir);
    if krate.has_probes_feature {
        cmd.args(["--features", "probes"]);
    }
    for value in PROFILE
        .iter()
        .copied()
        .chain(patch.iter().map(String::as_str))
    {
        cmd.args(["--config", value]);
    }
    // `link` keeps cargo's idea of the outputs (so unchanged programs stay fresh); the
    // "linker" is this very binary, which writes an empty file.
    let me = std::env::current_exe().context("cannot find the cargo-bpf executable")?;
    cmd.arg("--")
        .arg(format!("--emit=llvm-bc={},link", bitcode.display()))
        .arg(format!("-Clinker={}", me.display()))
        .env(crate::LINKER_ENV, "1");
    match headers {
        Headers::Source(dir) => cmd.env("KERNEL_SOURCE", dir).env_remove("KERNEL_VERSION"),
        Headers::Version(v) => cmd.env("KERNEL_VERSION", v).env_remove("KERNEL_SOURCE"),
    };
    if std::env::var_os("LIBCLANG_PATH").is_none() && Path::new("/usr/lib/llvm-14/lib").is_dir() {
        // bindgen 0.59 (redbpf-probes) needs libclang 14; newer ones make it panic.
        cmd.env("LIBCLANG_PATH", "/usr/lib/llvm-14/lib");
    }
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run `cargo rustc`")?;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if str_of(&msg, "reason") == "compiler-message" {
            eprint!("{}", str_of(&msg["message"], "rendered"));
        }
    }
    if !output.status.success() {
        bail!("{}: program {bin} does not compile", krate.name);
    }
    if !bitcode.is_file() {
        bail!(
            "{}: cargo succeeded but wrote no bitcode at {}",
            krate.name,
            bitcode.display()
        );
    }
    Ok(())
}
