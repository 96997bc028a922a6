//! Drives cargo: finds the probe crate and its programs (`cargo metadata`), and compiles each
//! program to LTO bitcode (`cargo rustc` with a `bpf-probe` profile given through `--config`,
//! so the crate needs no special manifest).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::headers::Headers;
use crate::lock::LockCopy;

/// A probe crate and the programs (bins) it builds.
#[derive(Debug, Clone)]
pub struct ProbeCrate {
    pub name: String,
    pub manifest: PathBuf,
    pub dir: PathBuf,
    pub bins: Vec<String>,
    /// Each program's `required-features`.
    pub required_features: BTreeMap<String, Vec<String>>,
    /// The `[features]` table: what each feature enables.
    pub features: BTreeMap<String, Vec<String>>,
    pub has_probes_feature: bool,
    /// The tool's target directory (`<it>/bpf/...` holds the outputs).
    pub target_dir: PathBuf,
    /// Cargo's (a separate one when the bindings differ, see `--flat-ip-headers`).
    pub cargo_target_dir: PathBuf,
    /// Source id of the redbpf-macros it resolves to, when that is not a local path
    /// (a git repository the crates.io patch does not cover).
    pub macros_source: Option<String>,
    /// The same for the cargo-bpf library (a build-dependency).
    pub cargo_bpf_source: Option<String>,
}

/// `--color`: whether cargo's and rustc's messages carry ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// Only when stderr (where they go) is a terminal.
    Auto,
    Always,
    Never,
}

static COLOR: OnceLock<bool> = OnceLock::new();

/// Decides once, for every cargo command the tool runs, whether they colour their output.
pub fn set_color(color: Color) {
    let on = match color {
        Color::Auto => std::io::stderr().is_terminal(),
        Color::Always => true,
        Color::Never => false,
    };
    let _already_set = COLOR.set(on);
}

fn colored() -> bool {
    COLOR.get().copied().unwrap_or(false)
}

/// A cargo command that colours its messages only when asked to (`--color` is explicit:
/// cargo's own `auto` would look at its stderr, which is ours, but rustc's rendered
/// diagnostics come through a pipe).
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["--color", if colored() { "always" } else { "never" }]);
    cmd
}

fn metadata(
    manifest: Option<&Path>,
    no_deps: bool,
    config: &[String],
    lock: Option<&LockCopy>,
) -> Result<Value> {
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
    if let Some(lock) = lock {
        lock.apply(&mut cmd);
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

/// What `cargo metadata --no-deps` says of the workspace around the probe crate.
#[derive(Debug)]
pub struct Workspace {
    pub target_dir: PathBuf,
    /// Where its `Cargo.lock` is.
    pub root: PathBuf,
    /// It has a redbpf-macros member of its own (then it patches itself and must not be
    /// patched again).
    pub own_macros: bool,
    /// A member depends on the `cargo-bpf` library (usually as a build-dependency).
    pub uses_cargo_bpf: bool,
}

pub fn workspace(manifest: Option<&Path>) -> Result<Workspace> {
    let meta = metadata(manifest, true, &[], None)?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let own_macros = packages
        .iter()
        .any(|p| str_of(p, "name") == "redbpf-macros");
    let uses_cargo_bpf = packages.iter().any(|p| {
        p["dependencies"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| str_of(d, "name") == "cargo-bpf"))
    });
    Ok(Workspace {
        target_dir: PathBuf::from(str_of(&meta, "target_directory")),
        root: PathBuf::from(str_of(&meta, "workspace_root")),
        own_macros,
        uses_cargo_bpf,
    })
}

/// A package of the resolved crate graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub version: String,
    /// None for path packages (the drop-ins, once patched in).
    pub source: Option<String>,
}

/// The probe crates in reach: the package whose directory holds `cwd` (or the manifest
/// given), else every workspace member depending on redbpf-probes. `config` (the macro
/// patches) is passed so the lock file does not flip between resolutions.
pub fn probe_crates(
    manifest: Option<&Path>,
    cwd: &Path,
    target_dir: &Path,
    config: &[String],
    lock: &LockCopy,
) -> Result<(Vec<ProbeCrate>, Vec<Resolved>)> {
    let meta = metadata(manifest, false, config, Some(lock))?;
    let packages = meta["packages"].as_array().cloned().unwrap_or_default();
    let resolved = packages
        .iter()
        .map(|p| Resolved {
            name: str_of(p, "name").to_owned(),
            version: str_of(p, "version").to_owned(),
            source: p.get("source").and_then(Value::as_str).map(str::to_owned),
        })
        .collect();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let source_of = |name: &str| {
        packages
            .iter()
            .find(|p| str_of(p, "name") == name)
            .and_then(|p| p.get("source").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let macros_source = source_of("redbpf-macros");
    let cargo_bpf_source = source_of("cargo-bpf");
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
            let strings = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            let bin_targets: Vec<&Value> = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .collect();
            let bins = bin_targets
                .iter()
                .map(|t| str_of(t, "name").to_owned())
                .collect();
            let required_features = bin_targets
                .iter()
                .map(|t| {
                    (
                        str_of(t, "name").to_owned(),
                        strings(&t["required-features"]),
                    )
                })
                .collect();
            let features = p["features"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, enables)| (name.clone(), strings(enables)))
                .collect();
            ProbeCrate {
                name: str_of(p, "name").to_owned(),
                dir: manifest.parent().map(Path::to_path_buf).unwrap_or_default(),
                manifest,
                bins,
                required_features,
                features,
                has_probes_feature,
                target_dir: target_dir.to_path_buf(),
                cargo_target_dir: target_dir.to_path_buf(),
                macros_source: macros_source.clone(),
                cargo_bpf_source: cargo_bpf_source.clone(),
            }
        })
        .collect();
    if let Some(here) = found.iter().position(|c| cwd.starts_with(&c.dir)) {
        found = vec![found.swap_remove(here)];
    }
    if found.is_empty() {
        bail!("no crate depending on redbpf-probes here (run `cargo bpf build` in a probe crate or pass --manifest-path)");
    }
    Ok((found, resolved))
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
/// How the tool runs cargo for every program.
pub struct Build<'a> {
    pub headers: &'a Headers,
    pub patch: &'a [String],
    pub lock: &'a LockCopy,
    /// Extra `BINDGEN_EXTRA_CLANG_ARGS` for redbpf-probes' bindgen.
    pub bindgen_args: Option<String>,
    /// `--features` for the probe crate (`probes` included when it has one).
    pub features: Vec<String>,
}

impl ProbeCrate {
    /// The features on when `requested` are: with `default` and what each one enables
    /// (another feature of the crate; `dep:x` and `x/y` are not features of its own).
    pub fn enabled_features(&self, requested: &[String]) -> Vec<String> {
        let mut on: Vec<String> = Vec::new();
        let mut todo: Vec<String> = requested.to_vec();
        todo.push("default".into());
        while let Some(feature) = todo.pop() {
            if on.contains(&feature) || !self.features.contains_key(&feature) {
                continue;
            }
            if let Some(enables) = self.features.get(&feature) {
                todo.extend(enables.iter().filter(|e| !e.contains(['/', ':'])).cloned());
            }
            on.push(feature);
        }
        on.sort();
        on
    }

    /// The required-features of `bin` that `enabled` lacks.
    pub fn missing_features(&self, bin: &str, enabled: &[String]) -> Vec<String> {
        self.required_features
            .get(bin)
            .into_iter()
            .flatten()
            .filter(|f| !enabled.contains(f))
            .cloned()
            .collect()
    }
}

/// `--features` values as cargo takes them: comma- or space-separated, or repeated.
pub fn split_features(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for feature in values.iter().flat_map(|v| v.split([',', ' '])) {
        if !feature.is_empty() && !out.iter().any(|f| f == feature) {
            out.push(feature.to_owned());
        }
    }
    out
}

pub fn bitcode(krate: &ProbeCrate, bin: &str, build: &Build, bitcode: &Path) -> Result<()> {
    let Build {
        headers,
        patch,
        lock,
        ..
    } = build;
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
            if colored() {
                "json-diagnostic-rendered-ansi"
            } else {
                "json"
            },
        ])
        .arg("--target-dir")
        .arg(&krate.cargo_target_dir);
    lock.apply(&mut cmd);
    if !build.features.is_empty() {
        cmd.arg("--features").arg(build.features.join(","));
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
        .env(crate::LINKER_ENV, "1")
        // For build scripts calling the drop-in cargo_bpf_lib::build().
        .env("CARGO_BPF_TOOL", &me);
    if let Some(extra) = &build.bindgen_args {
        let args = match std::env::var("BINDGEN_EXTRA_CLANG_ARGS") {
            Ok(mine) if !mine.is_empty() => format!("{mine} {extra}"),
            _ => extra.clone(),
        };
        cmd.env("BINDGEN_EXTRA_CLANG_ARGS", args);
    }
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
    let mut anonymous_ip_addrs = false;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if str_of(&msg, "reason") == "compiler-message" {
            let rendered = str_of(&msg["message"], "rendered");
            // The JSON line: its plain `message` has no colour codes.
            anonymous_ip_addrs |= is_anonymous_ip_addr_error(line);
            eprint!("{rendered}");
        }
    }
    if !output.status.success() {
        if anonymous_ip_addrs && build.bindgen_args.is_none() {
            bail!(
                "{}: program {bin} does not compile: these kernel headers put iphdr/ipv6hdr's \
                 saddr/daddr in an anonymous union (__struct_group, Linux 5.16+ and Debian's \
                 5.10); rebuild with `cargo bpf build --flat-ip-headers` to read them as plain \
                 fields",
                krate.name
            );
        }
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

/// rustc's error for `ip.saddr` when the bindings have it at `__bindgen_anon_1.saddr`.
fn is_anonymous_ip_addr_error(rendered: &str) -> bool {
    ["saddr", "daddr"]
        .iter()
        .any(|f| rendered.contains(&format!("no field `{f}` on type")))
        && rendered.contains("__bindgen_anon_1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_anonymous_union_error() {
        let rendered = "error[E0609]: no field `saddr` on type `iphdr`\n  --> src/main.rs:9:20\n\
                        help: one of the expressions' fields has a field of the same name\n  \
                        |     ip.__bindgen_anon_1.__bindgen_anon_1.saddr";
        assert!(is_anonymous_ip_addr_error(rendered));
        assert!(!is_anonymous_ip_addr_error(
            "error[E0609]: no field `x` on type `iphdr`"
        ));
    }
}
