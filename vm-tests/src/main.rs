//! `vm-tests`: boot real kernels under qemu and check the loader there. See lib.rs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use vm_tests::assets::{Cache, KERNELS};
use vm_tests::host::{self, KernelChoice, Options};
use vm_tests::qemu::{Accel, VmConfig};
use vm_tests::scenario::{self, LoaderTiming, Probe};

/// Boot Debian's 6.1 and 5.10 cloud kernels and Ubuntu's 4.15 and 4.4 under qemu with a busybox initramfs holding
/// the static loader, the probe objects and a workload; check the JSON on the console.
///
/// This binary must be static (it also runs inside the guest): build it with
/// RUSTFLAGS='-C target-feature=+crt-static' cargo build --release
/// --target x86_64-unknown-linux-gnu -p vm-tests -p loader
#[derive(Debug, Parser)]
#[command(name = "vm-tests", args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,

    /// Kernel series to boot: 6.1, 5.10, 4.15, 4.4 or all (comma-separated list allowed);
    /// default all, or none when --kernel-image is given.
    #[arg(long, env = "VMTESTS_KERNEL", value_delimiter = ',')]
    kernel: Vec<String>,

    /// Also boot this kernel image (an x86 bzImage: a distribution's vmlinuz or one built
    /// locally, everything needed built in); repeatable. Scenarios follow its version.
    #[arg(long, value_name = "PATH")]
    kernel_image: Vec<PathBuf>,

    /// Scenarios to run: all, or names (a base name like `execsnoop` also selects its
    /// `-legacy` twin). `kprobe-selftest` needs neither loader nor objects.
    #[arg(
        long,
        env = "VMTESTS_SCENARIOS",
        default_value = "all",
        value_delimiter = ','
    )]
    scenario: Vec<String>,

    /// Scenarios to leave out, by exact name (known failures, documented where set).
    #[arg(long, env = "VMTESTS_SKIP", value_delimiter = ',')]
    skip: Vec<String>,
    /// Static `loader` binary (required by every scenario but kprobe-selftest).
    #[arg(long, env = "VMTESTS_LOADER")]
    loader: Option<PathBuf>,

    /// Probe objects: <DIR>/<name>/<name>.elf or <DIR>/<name>.elf (target/bpf/programs).
    #[arg(long, env = "VMTESTS_OBJECTS")]
    objects: Option<PathBuf>,

    /// More probe objects, searched after --objects in order (the compat probes:
    /// target/bpf/compat; the C objects: target/bpf/c-objects); repeatable.
    #[arg(long, env = "VMTESTS_EXTRA_OBJECTS", value_delimiter = ':')]
    extra_objects: Vec<PathBuf>,

    /// Static binary run as the guest driver; default: this executable.
    #[arg(long, env = "VMTESTS_GUEST_BIN")]
    guest_bin: Option<PathBuf>,

    /// Download cache; default $XDG_CACHE_HOME/redbpf-vm or ~/.cache/redbpf-vm.
    #[arg(long, env = "VMTESTS_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Seconds a whole boot may take before the guest is killed.
    #[arg(long, env = "VMTESTS_TIMEOUT", default_value_t = 600)]
    timeout: u64,

    /// auto, tcg or kvm (auto: kvm only if the CPU shows vmx/svm).
    #[arg(long, env = "VMTESTS_ACCEL", default_value = "auto")]
    accel: String,

    /// Guest memory, as qemu's -m takes it.
    #[arg(long, env = "VMTESTS_MEMORY", default_value = "1G")]
    memory: String,

    /// Guest CPUs.
    #[arg(long, env = "VMTESTS_SMP", default_value_t = 2)]
    smp: u32,

    /// Seconds the guest waits for the loader's `attached` lines before giving up.
    #[arg(long, env = "VMTESTS_ATTACH_TIMEOUT", default_value_t = 120)]
    attach_timeout: u64,

    /// Seconds the loader may take to exit after SIGINT before it is killed.
    #[arg(long, env = "VMTESTS_STOP_TIMEOUT", default_value_t = 60)]
    stop_timeout: u64,

    /// Copy the guest console to stderr as it arrives.
    #[arg(short, long, env = "VMTESTS_VERBOSE")]
    verbose: bool,

    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Inside the guest (started by /init): run the plan, print the console protocol.
    #[command(hide = true)]
    Guest { plan: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("vm-tests: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    if let Some(Cmd::Guest { plan }) = &cli.command {
        return vm_tests::guest::run(plan);
    }
    if cli.list {
        for s in scenario::CATALOGUE {
            let what = match s.probe {
                Probe::KprobeSelftest => {
                    "no loader: kprobe_events from the guest driver".to_owned()
                }
                Probe::Loader { objects, legacy } => format!(
                    "loader{} {}",
                    if legacy { " --legacy" } else { "" },
                    objects
                        .iter()
                        .map(|o| o.join("|"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            };
            println!("{:<20} {what}", s.name);
        }
        return Ok(true);
    }
    let all = cli.kernel.iter().any(|k| k == "all")
        || (cli.kernel.is_empty() && cli.kernel_image.is_empty());
    let mut kernels: Vec<KernelChoice> = if all {
        KERNELS.iter().copied().map(KernelChoice::Package).collect()
    } else {
        let mut picked = Vec::new();
        for k in &cli.kernel {
            match KERNELS.iter().find(|s| s.series == k) {
                Some(s) => picked.push(KernelChoice::Package(*s)),
                None => bail!(
                    "unknown kernel {k:?}; known: all, {}",
                    KERNELS
                        .iter()
                        .map(|s| s.series)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        }
        picked
    };
    for image in &cli.kernel_image {
        if !image.is_file() {
            bail!("--kernel-image {}: no such file", image.display());
        }
        kernels.push(KernelChoice::Image(image.clone()));
    }
    let guest_bin = match cli.guest_bin {
        Some(p) => p,
        None => std::env::current_exe()?,
    };
    let opts = Options {
        kernels,
        scenarios: {
            let mut picked = scenario::select(&cli.scenario)?;
            picked.retain(|s| !cli.skip.iter().any(|k| k == s.name));
            for k in cli.skip.iter().filter(|k| !k.is_empty()) {
                eprintln!("vm-tests: skipping scenario {k} (VMTESTS_SKIP)");
            }
            picked
        },
        loader: cli.loader,
        objects: cli.objects,
        extra_objects: cli.extra_objects,
        guest_bin,
        cache: Cache::locate(cli.cache_dir)?,
        vm: VmConfig {
            accel: Accel::choose(&cli.accel)?,
            memory: cli.memory,
            smp: cli.smp,
            timeout: Duration::from_secs(cli.timeout),
            echo: cli.verbose,
        },
        timing: LoaderTiming {
            attach_timeout_secs: cli.attach_timeout,
            stop_timeout_secs: cli.stop_timeout,
        },
    };
    host::run(&opts)
}
