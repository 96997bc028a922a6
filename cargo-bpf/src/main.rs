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
mod load;
mod lock;
mod patch;
mod scaffold;

#[derive(Parser)]
#[command(name = "cargo", bin_name = "cargo", version, propagate_version = true)]
enum Cli {
    /// Create, build and load redbpf probes.
    Bpf(BpfCli),
}

#[derive(Args)]
#[command(version, about)]
struct BpfCli {
    /// Colour in cargo's and rustc's messages: auto (only when stderr is a terminal),
    /// always, never.
    #[arg(long, global = true, value_enum, default_value_t = cargo::Color::Auto, value_name = "WHEN")]
    color: cargo::Color,
    #[command(subcommand)]
    command: Bpf,
}

#[derive(Subcommand)]
enum Bpf {
    /// Create a probe crate at PATH: Cargo.toml (redbpf-probes and redbpf-macros 2.3, a
    /// `probes` feature) and src/lib.rs; add programs with `cargo bpf add`.
    New(scaffold::NewArgs),
    /// Add a program to the probe crate in the current directory: src/NAME/main.rs (a
    /// tracepoint probe that builds as it is), src/NAME/mod.rs (types shared with user
    /// space), a `[[bin]]` NAME with required-features = ["probes"].
    Add(scaffold::AddArgs),
    /// Build the probe crate in the current directory: one `<target-dir>/bpf/programs/<name>/<name>.elf` per program.
    Build(BuildArgs),
    /// Run this project's `loader` on the built objects (default: every
    /// `<target-dir>/bpf/programs/*/*.elf` of the crate); arguments after `--` go to the loader.
    Load(load::LoadArgs),
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
    /// Features of the probe crate to enable, besides `probes` (comma- or space-separated,
    /// or repeated). Without PROBE names, the programs built are those whose
    /// required-features are then all enabled.
    #[arg(long, short = 'F', visible_short_alias = 'f', value_name = "FEATURES")]
    features: Vec<String>,
    /// Kernel headers tree (KERNEL_SOURCE and KERNEL_VERSION in the environment win).
    #[arg(long, value_name = "DIR")]
    kernel_headers: Option<PathBuf>,
    /// BPF instruction set: v1 runs on every kernel, v2 needs 4.14, v3 needs 5.1.
    #[arg(long, default_value = "v1", value_parser = ["v1", "v2", "v3"])]
    cpu: String,
    /// Give iphdr/ipv6hdr's saddr/daddr back as plain fields when the kernel headers wrap
    /// them in an anonymous union (`__struct_group`: Linux 5.16+ and Debian's 5.10), so
    /// probes reading `ip.saddr` build against them. Nothing else in the bindings changes;
    /// cargo's files for this go to `<target-dir>/flat-ip-<hash>`.
    #[arg(long)]
    flat_ip_headers: bool,
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
    let Cli::Bpf(cli) = Cli::parse_from(args);
    cargo::set_color(cli.color);
    let result = match &cli.command {
        Bpf::New(args) => scaffold::new(args),
        Bpf::Add(args) => scaffold::add(args),
        Bpf::Build(args) => build(args),
        Bpf::Load(args) => load::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cargo-bpf: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What redbpf 2.0 changed, for the one-line refusal of 1.x crates.
const REDBPF_1X: &str = "port it to redbpf-probes/redbpf-macros 2.x: 2.0 names each map by its \
    static (`#[map(\"name\")]` is gone), returns i64 from helpers and builds its bindings from \
    kernel headers with bpf-sys";

fn build(args: &BuildArgs) -> Result<()> {
    let cwd = std::env::current_dir().context("no current directory")?;
    let ws = cargo::workspace(args.manifest_path.as_deref())?;
    // Absolute: cargo runs rustc from the workspace root, not from here.
    let target_dir = match &args.target_dir {
        Some(dir) if dir.is_relative() => cwd.join(dir),
        Some(dir) => dir.clone(),
        None => ws.target_dir.clone(),
    };
    // cargo never writes the crate's own Cargo.lock: it works on a copy.
    let lock = lock::LockCopy::prepare(&ws.root, &target_dir).with_context(|| {
        format!(
            "cannot copy {} under {}",
            ws.root.join("Cargo.lock").display(),
            target_dir.display()
        )
    })?;
    // The drop-ins replace crates.io's (a config patch wins over the crate's own), with
    // the version the lock pins: a patch of another version would not be used.
    let mut dropins: Vec<&patch::DropIn> = Vec::new();
    if !ws.own_macros {
        dropins.push(&patch::MACROS);
    }
    if ws.uses_cargo_bpf {
        dropins.push(&patch::CARGO_BPF_LIB);
    }
    let mut versions: Vec<String> = dropins
        .iter()
        .map(|d| {
            lock.pinned(d.name)
                .filter(|v| patch::supported(v))
                .unwrap_or_else(|| patch::DEFAULT_VERSION.to_string())
        })
        .collect();
    let mut attempt = 0;
    let (crates, patches, dirs) = loop {
        let mut patches = Vec::new();
        let mut dirs = Vec::new();
        for (dropin, version) in dropins.iter().zip(&versions) {
            let dir = dropin.materialise(&target_dir, version).with_context(|| {
                format!(
                    "cannot write the drop-in {} under {}",
                    dropin.name,
                    target_dir.display()
                )
            })?;
            patches.extend(dropin.config_for(
                "registry+https://github.com/rust-lang/crates.io-index",
                &dir,
            ));
            dirs.push(dir);
        }
        let (crates, resolved) = cargo::probe_crates(
            args.manifest_path.as_deref(),
            &cwd,
            &target_dir,
            &patches,
            &lock,
        )?;
        let name = crates.first().map(|c| c.name.as_str()).unwrap_or_default();
        if let Some(old) = resolved
            .iter()
            .find(|p| p.name == "redbpf-probes" && !patch::supported(&p.version))
        {
            anyhow::bail!(
                "{name}: uses redbpf-probes {} (redbpf 1.x), which `cargo bpf build` does not \
                 build; {REDBPF_1X}",
                old.version
            );
        }
        match patch::unused(&dropins, &versions, &resolved) {
            None => break (crates, patches, dirs),
            // Resolved to another 2.x version than the lock said (or with no lock): once
            // more with that one.
            Some(unused) if attempt == 0 && unused.retry_with.is_some() => {
                versions[unused.index] = unused.retry_with.unwrap_or_default();
                attempt += 1;
            }
            Some(unused) => anyhow::bail!("{name}: {}", unused.message),
        }
    };
    let flat_ip = if args.flat_ip_headers {
        Some(headers::write_flat_ip_header(&target_dir).with_context(|| {
            format!(
                "cannot write the --flat-ip-headers include under {}",
                target_dir.display()
            )
        })?)
    } else {
        None
    };
    let llvm_path = llvm::toolchain_llvm()?;
    let llvm = llvm::Api::load(&llvm_path)?;
    let options = llvm::retarget::Options {
        cpu: args.cpu.clone(),
    };
    let requested = cargo::split_features(&args.features);
    let mut built = 0;
    for krate in &crates {
        let mut krate_patches = patches.clone();
        // redbpf (or cargo-bpf) from git: patch that source too.
        for (dropin, dir) in dropins.iter().zip(&dirs) {
            let source = if dropin.name == patch::MACROS.name {
                krate.macros_source.as_deref()
            } else {
                krate.cargo_bpf_source.as_deref()
            };
            if let Some(git) = source
                .filter(|s| s.starts_with("git+"))
                .and_then(|s| dropin.config_for(s, dir))
            {
                if !krate_patches.contains(&git) {
                    krate_patches.push(git);
                }
            }
        }
        let headers = headers::resolve(args.kernel_headers.as_deref(), &krate.dir)?;
        let mut krate = krate.clone();
        if flat_ip.is_some() {
            // bindgen's extra arguments are not in cargo's fingerprint: other bindings,
            // other target directory.
            krate.cargo_target_dir = target_dir.join(headers::flat_ip_target_name());
        }
        let mut features = requested.clone();
        if krate.has_probes_feature && !features.iter().any(|f| f == "probes") {
            features.insert(0, "probes".into());
        }
        let enabled = krate.enabled_features(&features);
        let build = cargo::Build {
            headers: &headers,
            patch: &krate_patches,
            lock: &lock,
            bindgen_args: flat_ip
                .as_ref()
                .map(|h| format!("-include {}", h.display())),
            features,
        };
        for probe in &args.probes {
            if !krate.bins.contains(probe) && crates.len() == 1 {
                anyhow::bail!(
                    "{}: no program named {probe} (programs: {})",
                    krate.name,
                    krate.bins.join(", ")
                );
            }
            let missing = krate.missing_features(probe, &enabled);
            if !missing.is_empty() && krate.bins.contains(probe) {
                anyhow::bail!(
                    "{}: program {probe} needs the feature(s) {}: `cargo bpf build --features {}`",
                    krate.name,
                    missing.join(", "),
                    missing.join(",")
                );
            }
        }
        // Without names, the programs whose required-features are on (as redbpf did).
        let bins: Vec<&String> = krate
            .bins
            .iter()
            .filter(|b| {
                if args.probes.is_empty() {
                    krate.missing_features(b, &enabled).is_empty()
                } else {
                    args.probes.contains(b)
                }
            })
            .collect();
        for bin in bins {
            build_program(
                &llvm,
                &options,
                &krate,
                bin,
                &build,
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
    build: &cargo::Build,
    output_dir: Option<&Path>,
) -> Result<()> {
    let bpf_dir = krate.target_dir.join("bpf");
    let bitcode = bpf_dir.join("bitcode").join(format!("{bin}.bc"));
    std::fs::create_dir_all(bitcode.parent().unwrap_or(&bpf_dir))?;
    cargo::bitcode(krate, bin, build, &bitcode)?;
    let out_dir = output_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| bpf_dir.join("programs"))
        .join(bin);
    let elf = out_dir.join(format!("{bin}.elf"));
    // What the object was compiled with besides its bitcode: a change (`--cpu v3` after
    // `v1`) recompiles even though the bitcode is older than the object.
    let stamp = bpf_dir.join("stamps").join(format!("{bin}.options"));
    let wanted = format!(
        "{options:?} cargo-bpf {} -> {}\n",
        env!("CARGO_PKG_VERSION"),
        elf.display()
    );
    let same_options = std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted);
    if same_options && is_newer(&elf, &bitcode) && is_newer(&elf, &std::env::current_exe()?) {
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
    std::fs::create_dir_all(bpf_dir.join("stamps"))?;
    std::fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
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
