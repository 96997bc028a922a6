//! `cargo bpf load`: runs this project's `loader` (userspace/) on the objects `cargo bpf
//! build` wrote, as redbpf's `cargo bpf load` loaded them with redbpf.
//!
//! The loader is the one next to this executable (`make install` and `cargo install` put
//! both in one directory), else the first `loader` on `PATH`. It replaces this process, so
//! Ctrl-C, its output and its exit status are the loader's own.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::Args;

#[derive(Args)]
pub struct LoadArgs {
    /// BPF objects to load (default: every `<output-dir>/*/*.elf`, i.e. the crate's
    /// `<target-dir>/bpf/programs/*/*.elf`).
    #[arg(value_name = "OBJECT")]
    objects: Vec<PathBuf>,
    /// Cargo target directory the objects were built under (default: the workspace's).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Path to the probe crate's Cargo.toml (default: the crate in the current directory).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Where `cargo bpf build --output-dir` wrote the objects (default:
    /// `<target-dir>/bpf/programs`).
    #[arg(long, short = 'o', value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Network interface for XDP and socket filter programs (the loader's --iface).
    #[arg(
        long = "interface",
        short = 'i',
        visible_alias = "iface",
        value_name = "IFACE"
    )]
    interface: Option<String>,
    /// Binary or library for uprobes that name none (the loader's --uprobe-target).
    #[arg(long, short = 'u', value_name = "PATH")]
    uprobe_path: Option<PathBuf>,
    /// Arguments for the loader, after `--`: `cargo bpf load -- --json --duration 5`
    /// (`loader --help` lists them).
    #[arg(last = true, value_name = "LOADER_ARGS")]
    loader_args: Vec<OsString>,
}

pub fn run(args: &LoadArgs) -> Result<()> {
    let objects = if args.objects.is_empty() {
        default_objects(args)?
    } else {
        args.objects.clone()
    };
    let loader = find_loader()?;
    let mut cmd = Command::new(&loader);
    if let Some(iface) = &args.interface {
        cmd.arg("--iface").arg(iface);
    }
    if let Some(path) = &args.uprobe_path {
        cmd.arg("--uprobe-target").arg(path);
    }
    cmd.args(&args.loader_args).args(&objects);
    eprintln!(
        "     Running `{}{}`",
        loader.display(),
        cmd.get_args()
            .map(|a| format!(" {}", a.to_string_lossy()))
            .collect::<String>()
    );
    exec(cmd).with_context(|| format!("cannot run {}", loader.display()))
}

#[cfg(unix)]
fn exec(mut cmd: Command) -> Result<()> {
    use std::os::unix::process::CommandExt;
    // Only returns on failure.
    Err(cmd.exec().into())
}

#[cfg(not(unix))]
fn exec(mut cmd: Command) -> Result<()> {
    let status = cmd.status()?;
    std::process::exit(status.code().unwrap_or(1));
}

/// `<output-dir>/*/*.elf`, sorted; an error saying how to get some when there is none.
fn default_objects(args: &LoadArgs) -> Result<Vec<PathBuf>> {
    let dir = match (&args.output_dir, &args.target_dir) {
        (Some(out), _) => out.clone(),
        (None, Some(target)) => target.join("bpf").join("programs"),
        (None, None) => crate::cargo::workspace(args.manifest_path.as_deref())?
            .target_dir
            .join("bpf")
            .join("programs"),
    };
    let objects = objects_in(&dir);
    if objects.is_empty() {
        bail!(
            "no BPF objects in {}: build them first with `cargo bpf build`, or name the objects",
            dir.display()
        );
    }
    Ok(objects)
}

fn objects_in(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|program| std::fs::read_dir(program.path()).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.extension().is_some_and(|e| e == "elf") && p.is_file())
        .collect();
    found.sort();
    found
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// `loader` next to this executable, else on `PATH`.
fn find_loader() -> Result<PathBuf> {
    let me = std::env::current_exe().context("cannot find the cargo-bpf executable")?;
    let beside = me.parent().map(|dir| dir.join("loader"));
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("loader"));
    beside
        .into_iter()
        .chain(on_path)
        .find(|p| is_executable(p))
        .with_context(|| {
            format!(
                "no `loader` next to {} nor on PATH: install this project's loader \
                 (`make install`, or `cargo install --path userspace` in its checkout)",
                me.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_objects_are_one_per_program_directory() {
        let dir = std::env::temp_dir().join(format!("cargo-bpf-load-{}", std::process::id()));
        for (program, file) in [("b", "b.elf"), ("a", "a.elf"), ("a", "a.bc"), ("c", "")] {
            std::fs::create_dir_all(dir.join(program)).unwrap();
            if !file.is_empty() {
                std::fs::write(dir.join(program).join(file), b"").unwrap();
            }
        }
        assert_eq!(
            objects_in(&dir),
            vec![dir.join("a/a.elf"), dir.join("b/b.elf")]
        );
        assert!(objects_in(&dir.join("none")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
