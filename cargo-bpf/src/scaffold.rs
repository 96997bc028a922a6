//! `cargo bpf new` and `cargo bpf add`: the probe crate layout redbpf 2.x's cargo-bpf made
//! and its TUTORIAL.md walks through.
//!
//! ```text
//! NAME/Cargo.toml          redbpf-probes, redbpf-macros 2.3, cty; features probes; [lib]
//! NAME/src/lib.rs          #![no_std], then one `pub mod PROGRAM;` per program
//! NAME/src/PROGRAM/mod.rs  types shared by the probe and user space
//! NAME/src/PROGRAM/main.rs the BPF program: a [[bin]] with required-features = ["probes"]
//! ```
//!
//! One difference: redbpf 2.3 also wrote a `cargo-bpf` build-dependency that no build script
//! used. It is left out (a crate that has one still builds: the drop-in library replaces it).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct NewArgs {
    /// Directory to create (it must not exist).
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Package name (default: the directory's name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[derive(Args)]
pub struct AddArgs {
    /// The program's name: its code goes to src/NAME/, its object to
    /// `<target-dir>/bpf/programs/NAME/NAME.elf`.
    #[arg(value_name = "NAME")]
    name: String,
}

fn manifest(package: &str) -> String {
    format!(
        r#"[package]
name = "{package}"
version = "0.1.0"
edition = "2018"

[dependencies]
cty = "0.2"
redbpf-macros = "2.3.0"
redbpf-probes = "2.3.0"

# `cargo bpf build` turns `probes` on: each program ([[bin]], added by `cargo bpf add`)
# requires it, so user-space crates can depend on this one for its shared types.
[features]
default = []
probes = []

[lib]
path = "src/lib.rs"
"#
    )
}

const LIB_RS: &str = "#![no_std]\n";

fn shared_types(program: &str) -> String {
    format!(
        r#"//! What `{program}` and user space both see: `#[repr(C)]`, so the layout is the same on
//! both sides (the loader decodes it from the object's debug info).

/// One record of the `EVENTS` perf map.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Event {{
    pub pid: u32,
    pub uid: u32,
    /// The task's name, NUL-padded.
    pub comm: [u8; 16],
}}
"#
    )
}

fn program_main(library: &str, program: &str) -> String {
    format!(
        r#"//! `{program}`: sends an `Event` to user space at every execve(2).
//!
//! `cargo bpf build` compiles it to `<target-dir>/bpf/programs/{program}/{program}.elf`;
//! `sudo cargo bpf load` runs it and prints the events. Other attach points: `#[kprobe]`,
//! `#[kretprobe]`, `#[uprobe]`, `#[xdp]`, `#[socket_filter]` (with their preludes, e.g.
//! `redbpf_probes::xdp::prelude::*`); a tracepoint's fields are listed in
//! /sys/kernel/tracing/events/<category>/<event>/format.
#![no_std]
#![no_main]
use redbpf_probes::kprobe::prelude::*;

use {library}::{program}::Event;

program!(0xFFFFFFFE, "GPL");

#[map]
static mut EVENTS: PerfMap<Event> = PerfMap::with_max_entries(1024);

#[tracepoint("syscalls:sys_enter_execve")]
fn sys_enter_execve(args: *const c_void) {{
    let event = Event {{
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        uid: bpf_get_current_uid_gid() as u32,
        comm: bpf_get_current_comm().map(|c| c as u8),
    }};
    // SAFETY: a BPF program runs on one CPU without preemption, and the perf map's
    // output helper takes the program's own context.
    unsafe {{ (*core::ptr::addr_of_mut!(EVENTS)).insert(args as *mut c_void, &event) }};
}}
"#
    )
}

/// A package name cargo accepts: ASCII letters, digits, `-` and `_`, not starting with a digit.
fn check_name(what: &str, name: &str) -> Result<()> {
    let valid = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if !valid {
        bail!("`{name}` is not a valid {what} name: use ASCII letters, digits, `-` and `_`, not starting with a digit");
    }
    if ["self", "super", "crate", "core", "std", "test"].contains(&ident(name).as_str()) {
        bail!("`{name}` cannot be a {what} name: it is a Rust keyword or standard crate");
    }
    Ok(())
}

fn ident(name: &str) -> String {
    name.replace('-', "_")
}

pub fn new(args: &NewArgs) -> Result<()> {
    let path = &args.path;
    if path.exists() {
        bail!("destination {} already exists", path.display());
    }
    let name = match &args.name {
        Some(name) => name.clone(),
        None => path
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
            .with_context(|| {
                format!(
                    "cannot take a package name from {}: pass --name",
                    path.display()
                )
            })?,
    };
    check_name("package", &name)?;
    let src = path.join("src");
    std::fs::create_dir_all(&src).with_context(|| format!("cannot create {}", src.display()))?;
    write(&path.join("Cargo.toml"), &manifest(&name))?;
    write(&src.join("lib.rs"), LIB_RS)?;
    eprintln!(
        "     Created probe crate `{name}` at {} (add a program: `cd {} && cargo bpf add NAME`)",
        path.display(),
        path.display()
    );
    Ok(())
}

pub fn add(args: &AddArgs) -> Result<()> {
    let name = &args.name;
    check_name("program", name)?;
    let manifest_path = Path::new("Cargo.toml");
    let cwd = std::env::current_dir().context("no current directory")?;
    let manifest = std::fs::read_to_string(manifest_path).with_context(|| {
        format!(
            "no Cargo.toml in {}: run `cargo bpf add` in a probe crate (`cargo bpf new` makes one)",
            cwd.display()
        )
    })?;
    let package = package_of(&manifest)
        .with_context(|| format!("{}: no [package] name", cwd.join("Cargo.toml").display()))?;
    if manifest_has_bin(&manifest, name) {
        bail!("{package}: a program named {name} already exists");
    }
    if !has_probes_feature(&manifest) {
        bail!(
            "{package}: Cargo.toml has no `probes` feature, which programs require: add \
             `probes = []` under [features]"
        );
    }
    let dir = Path::new("src").join(name);
    if dir.exists() {
        bail!("{package}: {} already exists", cwd.join(&dir).display());
    }
    let lib = Path::new("src").join("lib.rs");
    let mut lib_rs = std::fs::read_to_string(&lib)
        .with_context(|| format!("cannot read {}", cwd.join(&lib).display()))?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write(&dir.join("mod.rs"), &shared_types(name))?;
    write(
        &dir.join("main.rs"),
        &program_main(&ident(&package), &ident(name)),
    )?;
    if !lib_rs.is_empty() && !lib_rs.ends_with('\n') {
        lib_rs.push('\n');
    }
    if ident(name) != *name {
        // The module is named by the identifier, its directory by the program.
        lib_rs.push_str(&format!("#[path = \"{name}/mod.rs\"]\n"));
    }
    lib_rs.push_str(&format!("pub mod {};\n", ident(name)));
    write(&lib, &lib_rs)?;
    let mut manifest = manifest;
    if !manifest.ends_with('\n') {
        manifest.push('\n');
    }
    manifest.push_str(&format!(
        "\n[[bin]]\nname = \"{name}\"\npath = \"src/{name}/main.rs\"\nrequired-features = [\"probes\"]\n"
    ));
    write(manifest_path, &manifest)?;
    eprintln!(
        "       Added program `{name}` to {package}: src/{name}/main.rs (build it: `cargo bpf build {name}`)"
    );
    Ok(())
}

fn write(path: &Path, content: &str) -> Result<()> {
    std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))
}

/// Lines of `manifest` with the table each is in (comments and blank lines left out).
fn keys(manifest: &str) -> impl Iterator<Item = (String, &str, &str)> {
    let mut table = String::new();
    manifest.lines().filter_map(move |line| {
        let line = line.trim();
        if line.starts_with('[') {
            table = line.trim_matches(['[', ']', ' ']).to_owned();
            return None;
        }
        let (key, value) = line.split_once('=')?;
        if key.trim_start().starts_with('#') {
            return None;
        }
        Some((table.clone(), key.trim(), value.trim()))
    })
}

fn unquote(value: &str) -> &str {
    value.trim().trim_matches(['"', '\''])
}

fn package_of(manifest: &str) -> Option<String> {
    keys(manifest)
        .find(|(table, key, _)| table == "package" && *key == "name")
        .map(|(_, _, value)| unquote(value).to_owned())
}

fn manifest_has_bin(manifest: &str, name: &str) -> bool {
    keys(manifest)
        .any(|(table, key, value)| table == "bin" && key == "name" && unquote(value) == name)
}

fn has_probes_feature(manifest: &str) -> bool {
    keys(manifest).any(|(table, key, _)| table == "features" && unquote(key) == "probes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_add_needs_from_the_manifest() {
        let mut m = manifest("hello-bpf");
        assert_eq!(package_of(&m).as_deref(), Some("hello-bpf"));
        assert!(has_probes_feature(&m));
        assert!(!manifest_has_bin(&m, "openmonitor"));
        m.push_str("\n[[bin]]\nname = \"openmonitor\"\npath = \"src/openmonitor/main.rs\"\n");
        assert!(manifest_has_bin(&m, "openmonitor"));
        assert!(!has_probes_feature(
            "[features]\n# probes = []\ndefault = []\n"
        ));
    }

    #[test]
    fn names_cargo_and_rust_accept() {
        for ok in ["probes", "hello-bpf", "open_monitor", "x2"] {
            check_name("program", ok).unwrap();
        }
        for bad in ["2x", "a.b", "a b", "", "self", "std"] {
            assert!(check_name("program", bad).is_err(), "{bad}");
        }
    }
}
