//! `cargo bpf build`: redbpf 2.x probe crates -> BPF ELF objects, on today's stable Rust,
//! with the LLVM that ships inside the rustc toolchain (nothing to install or pin).
//!
//! ```text
//! probe crate --cargo rustc--> x86_64 LTO bitcode --llvm::retarget--> BPF ELF --btf--> .elf
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

mod btf;
mod cargo;
mod headers;
mod llvm;
mod patch;

#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo", version, about)]
enum Cli {
    /// Build redbpf probes into BPF objects.
    #[command(subcommand)]
    Bpf(Bpf),
}

#[derive(Subcommand)]
enum Bpf {
    /// Build the probe crate in the current directory: one `<target-dir>/bpf/programs/<name>/<name>.elf` per program.
    Build(BuildArgs),
}

#[derive(Args)]
struct BuildArgs {
    /// Cargo target directory (default: the workspace's).
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
    /// Path to the probe crate's Cargo.toml (default: the crate in the current directory).
    #[arg(long, value_name = "PATH")]
    manifest_path: Option<PathBuf>,
    /// Where the objects go (default: `<target-dir>/bpf/programs`).
    #[arg(long, short = 'o', value_name = "DIR")]
    output_dir: Option<PathBuf>,
    /// Kernel headers tree (KERNEL_SOURCE and KERNEL_VERSION in the environment win).
    #[arg(long, value_name = "DIR")]
    kernel_headers: Option<PathBuf>,
    /// BPF instruction set: v1 runs on every kernel, v2 needs 4.14, v3 needs 5.1.
    #[arg(long, default_value = "v1", value_parser = ["v1", "v2", "v3"])]
    cpu: String,
    /// Programs to build (default: all of the crate's programs).
    #[arg(value_name = "PROBE")]
    probes: Vec<String>,
}

/// Set when rustc runs us as its linker (see `cargo::bitcode`).
pub const LINKER_ENV: &str = "CARGO_BPF_AS_LINKER";

fn main() -> ExitCode {
    if std::env::var_os(LINKER_ENV).is_some() {
        return fake_link();
    }
    // `cargo bpf ...` runs us as `cargo-bpf bpf ...`; also accept `cargo-bpf build ...`.
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("bpf") {
        args.insert(1, "bpf".into());
    }
    let Cli::Bpf(Bpf::Build(build_args)) = Cli::parse_from(args);
    match build(&build_args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo-bpf: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn build(args: &BuildArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("no current directory")?;
    let (workspace_target, own_macros) = cargo::workspace(args.manifest_path.as_deref())?;
    // Absolute: cargo runs rustc from the workspace root, not from here.
    let target_dir = match &args.target_dir {
        Some(dir) if dir.is_relative() => cwd.join(dir),
        Some(dir) => dir.clone(),
        None => workspace_target,
    };
    // The drop-in macros replace crates.io's (a config patch wins over the crate's own),
    // unless the workspace carries a redbpf-macros of its own.
    let macros = patch::materialise(&target_dir).with_context(|| {
        format!(
            "cannot write the drop-in redbpf-macros under {}",
            target_dir.display()
        )
    })?;
    let mut patches: Vec<String> = if own_macros {
        Vec::new()
    } else {
        patch::config_for(
            "registry+https://github.com/rust-lang/crates.io-index",
            &macros,
        )
        .into_iter()
        .collect()
    };
    let crates = cargo::probe_crates(args.manifest_path.as_deref(), &cwd, &target_dir, &patches)?;
    let llvm_path = llvm::toolchain_llvm()?;
    let llvm = llvm::Api::load(&llvm_path)?;
    let options = llvm::retarget::Options {
        cpu: args.cpu.clone(),
    };
    let mut built = 0;
    for krate in &crates {
        let headers = headers::resolve(args.kernel_headers.as_deref(), &krate.dir)?;
        // redbpf from git: patch that source too.
        if let Some(git) = krate
            .macros_source
            .as_deref()
            .and_then(|s| patch::config_for(s, &macros))
        {
            if !own_macros && !patches.contains(&git) {
                patches.push(git);
            }
        }
        let bins: Vec<&String> = krate
            .bins
            .iter()
            .filter(|b| args.probes.is_empty() || args.probes.contains(b))
            .collect();
        for probe in &args.probes {
            if !krate.bins.contains(probe) && crates.len() == 1 {
                anyhow::bail!(
                    "{}: no program named {probe} (programs: {})",
                    krate.name,
                    krate.bins.join(", ")
                );
            }
        }
        for bin in bins {
            build_program(
                &llvm,
                &options,
                krate,
                bin,
                &headers,
                &patches,
                args.output_dir.as_deref(),
            )?;
            built += 1;
        }
    }
    eprintln!("    Finished {built} BPF program(s)");
    Ok(())
}

fn build_program(
    llvm: &llvm::Api,
    options: &llvm::retarget::Options,
    krate: &cargo::ProbeCrate,
    bin: &str,
    headers: &headers::Headers,
    patch: &[String],
    output_dir: Option<&Path>,
) -> Result<()> {
    let bpf_dir = krate.target_dir.join("bpf");
    let bitcode = bpf_dir.join("bitcode").join(format!("{bin}.bc"));
    std::fs::create_dir_all(bitcode.parent().unwrap_or(&bpf_dir))?;
    cargo::bitcode(krate, bin, headers, patch, &bitcode)?;
    let out_dir = output_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| bpf_dir.join("programs"))
        .join(bin);
    let elf = out_dir.join(format!("{bin}.elf"));
    if is_newer(&elf, &bitcode) && is_newer(&elf, &std::env::current_exe()?) {
        eprintln!("       Fresh {bin}");
        return Ok(());
    }
    let code =
        std::fs::read(&bitcode).with_context(|| format!("cannot read {}", bitcode.display()))?;
    let output = llvm::retarget::compile(llvm, &code, options)
        .with_context(|| format!("{}: program {bin}", krate.name))?;
    for warning in &output.warnings {
        eprintln!("cargo-bpf: warning: {bin}: {warning}");
    }
    let mut object = output.object;
    btf::sanitize_object(&mut object).with_context(|| format!("{bin}: BTF"))?;
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(&elf, &object).with_context(|| format!("cannot write {}", elf.display()))?;
    eprintln!(
        "    Compiled {bin} -> {} ({} instructions)",
        elf.display(),
        instruction_count(&object)
    );
    Ok(())
}

/// rustc "links" the probe binary after emitting its bitcode; the binary itself is useless
/// but cargo wants it to exist to consider the program fresh. Write an empty file at `-o`.
fn fake_link() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let output = args
        .iter()
        .position(|a| a == "-o")
        .and_then(|i| args.get(i + 1));
    match output.map(|o| std::fs::write(o, b"")) {
        Some(Ok(())) => ExitCode::SUCCESS,
        _ => {
            eprintln!("cargo-bpf (as linker): no writable -o argument");
            ExitCode::FAILURE
        }
    }
}

fn is_newer(a: &Path, b: &Path) -> bool {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    matches!((m(a), m(b)), (Some(a), Some(b)) if a >= b)
}

/// BPF instructions in all executable sections (8 bytes each).
fn instruction_count(elf: &[u8]) -> u64 {
    use object::{Object, ObjectSection, SectionFlags};
    let Ok(file) = object::File::parse(elf) else {
        return 0;
    };
    file.sections()
        .filter(|s| matches!(s.flags(), SectionFlags::Elf { sh_flags } if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0))
        .map(|s| s.size() / 8)
        .sum()
}
