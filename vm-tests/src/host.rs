//! The host side: check the inputs, build the initramfs once, boot every kernel, check
//! every scenario's output and print the table.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::assets::{self, Cache, Kernel, KernelSpec};
use crate::check::{self, Outcome, Prediction};
use crate::console;
use crate::elf;
use crate::initramfs::{self, Contents};
use crate::qemu::{self, VmConfig};
use crate::report::{self, KernelReport};
use crate::scenario::{self, LoaderTiming, Probe, Scenario, GUEST_OBJECTS};

/// A kernel to boot: a distribution's package, or an image the user gives.
#[derive(Debug, Clone)]
pub enum KernelChoice {
    Package(KernelSpec),
    Image(PathBuf),
}

impl KernelChoice {
    fn resolve(&self, cache: &Cache) -> Result<Kernel> {
        match self {
            KernelChoice::Package(spec) => assets::fetch_kernel(spec, cache),
            KernelChoice::Image(path) => assets::kernel_image(path),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub kernels: Vec<KernelChoice>,
    pub scenarios: Vec<Scenario>,
    pub loader: Option<PathBuf>,
    pub objects: Option<PathBuf>,
    /// Searched after `objects`, in order (the compat probes, the C objects).
    pub extra_objects: Vec<PathBuf>,
    pub guest_bin: PathBuf,
    pub cache: Cache,
    pub vm: VmConfig,
    pub timing: LoaderTiming,
}

/// Checks every input up front, so a missing one fails before any download or boot.
fn contents(o: &Options, scenarios: &[Scenario]) -> Result<Contents> {
    elf::check_static(&o.guest_bin).context(
        "the guest driver (this binary unless --guest-bin) must be static; build vm-tests with \
         RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target x86_64-unknown-linux-gnu -p vm-tests",
    )?;
    let needs_loader: Vec<_> = scenarios
        .iter()
        .filter(|s| s.needs_loader())
        .map(|s| s.name)
        .collect();
    let mut loader = None;
    let mut objects: Vec<(String, PathBuf)> = Vec::new();
    let mut plan = Vec::new();
    if !needs_loader.is_empty() {
        let why = format!("scenarios {} need it", needs_loader.join(", "));
        let path = o.loader.clone().with_context(|| {
            format!("no loader binary: pass --loader PATH or set VMTESTS_LOADER ({why})")
        })?;
        if !path.is_file() {
            bail!("loader binary {} does not exist ({why})", path.display());
        }
        elf::check_static(&path)?;
        loader = Some(path);
        if o.objects.is_none() {
            bail!("no probe object directory: pass --objects DIR or set VMTESTS_OBJECTS ({why})");
        }
    }
    for s in scenarios {
        let mut guest_paths = Vec::new();
        if let Probe::Loader {
            objects: wanted, ..
        } = s.probe
        {
            let dir = o.objects.as_deref().context("no --objects")?;
            let mut dirs = vec![dir];
            dirs.extend(o.extra_objects.iter().map(PathBuf::as_path));
            for names in wanted {
                let host = scenario::find_object_in(&dirs, names)
                    .with_context(|| format!("scenario {}", s.name))?;
                let file = host
                    .file_name()
                    .context("object without a file name")?
                    .to_string_lossy()
                    .into_owned();
                guest_paths.push(format!("{GUEST_OBJECTS}/{file}"));
                if !objects.iter().any(|(f, _)| *f == file) {
                    objects.push((file, host));
                }
            }
        }
        plan.push(scenario::step(s, &guest_paths, o.timing));
    }
    Ok(Contents {
        busybox: assets::fetch_busybox(&o.cache)?,
        guest_bin: o.guest_bin.clone(),
        loader,
        objects,
        plan,
    })
}

/// `loader check --kernel <series>` on the host over the objects of the `CheckAgrees`
/// scenarios: what the guest's `--verify` run must agree with. Each such step then waits
/// for one settled line per predicted program.
fn predict(
    contents: &mut Contents,
    scenarios: &[Scenario],
    series: &str,
) -> Result<Vec<Prediction>> {
    let Some(step_index) = scenarios
        .iter()
        .position(|s| s.expect == crate::scenario::Expect::CheckAgrees)
    else {
        return Ok(Vec::new());
    };
    let loader = contents.loader.as_ref().context("no loader")?;
    // The objects that step verifies (its arguments name them by guest path), not every
    // object the guest carries for other scenarios.
    let verified: Vec<&PathBuf> = match contents.plan.get(step_index).map(|st| &st.run) {
        Some(crate::scenario::Run::Loader { args, .. }) => contents
            .objects
            .iter()
            .filter(|(file, _)| args.iter().any(|a| a.ends_with(&format!("/{file}"))))
            .map(|(_, host)| host)
            .collect(),
        _ => Vec::new(),
    };
    let out = std::process::Command::new(loader)
        .args(["check", "--json", "--kernel", series])
        .args(verified)
        .output()
        .with_context(|| format!("running {} check", loader.display()))?;
    let predictions = check::parse_predictions(&String::from_utf8_lossy(&out.stdout));
    if predictions.is_empty() {
        bail!(
            "`loader check --kernel {series}` predicted nothing: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    if let Some(crate::scenario::Run::Loader { wait_attached, .. }) =
        contents.plan.get_mut(step_index).map(|st| &mut st.run)
    {
        *wait_attached = predictions.len();
    }
    Ok(predictions)
}

/// Runs everything; Ok(true) when every scenario passed on every kernel.
pub fn run(o: &Options) -> Result<bool> {
    // Every input checked before any download or boot.
    contents(o, &o.scenarios)?;
    let work = tempfile::Builder::new()
        .prefix("vm-tests-")
        .tempdir()
        .context("creating a temporary directory")?;
    let mut reports = Vec::new();
    for (i, choice) in o.kernels.iter().enumerate() {
        let kernel = choice.resolve(&o.cache)?;
        let (scenarios, not_here) = scenario::for_kernel(&o.scenarios, kernel.version);
        for (s, why) in &not_here {
            eprintln!(
                "vm-tests: linux {}: scenario {} does not apply: {why}",
                kernel.series, s.name
            );
        }
        let initrd = work.path().join(format!("initramfs-{i}.cpio"));
        let mut contents = contents(o, &scenarios)?;
        let predictions = predict(&mut contents, &scenarios, &kernel.series)?;
        let size = initramfs::build(&contents, &initrd)?;
        eprintln!(
            "vm-tests: linux {}: initramfs {:.1} MiB, {} scenario(s): {}",
            kernel.series,
            size as f64 / (1 << 20) as f64,
            scenarios.len(),
            scenarios
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        );
        reports.push(boot_and_check(
            o,
            &kernel,
            &scenarios,
            &initrd,
            &predictions,
        )?);
    }
    print!("{}", report::table(&reports));
    Ok(reports.iter().all(|r| r.problems.is_empty()))
}

/// Boots `kernel` on `initrd` and checks each scenario's output.
fn boot_and_check(
    o: &Options,
    kernel: &Kernel,
    scenarios: &[Scenario],
    initrd: &std::path::Path,
    predictions: &[Prediction],
) -> Result<KernelReport> {
    {
        let label = format!("linux {}", kernel.series);
        eprintln!(
            "vm-tests: booting {} ({}, {:?})",
            kernel.package,
            kernel.vmlinuz.display(),
            o.vm.accel
        );
        let vm = qemu::boot(&kernel.vmlinuz, initrd, &o.vm, &label)
            .with_context(|| format!("kernel {}", kernel.package))?;
        let parsed = console::parse(&vm.console);
        let outcomes: Vec<Outcome> = scenarios
            .iter()
            .map(|s| check::check_on(s, parsed.steps.get(s.name), kernel.version, predictions))
            .collect();
        let mut problems = Vec::new();
        match (&vm.marker, vm.timed_out) {
            (_, true) => problems.push(format!(
                "timed out after {}s without a VMTEST-RESULT line",
                o.vm.timeout.as_secs()
            )),
            (None, false) => problems.push(format!(
                "no VMTEST-RESULT line; qemu exited with {}",
                vm.qemu_status.map(|s| s.to_string()).unwrap_or_default()
            )),
            (Some(m), _) if !m.ok => problems.push(format!("guest reported fail: {}", m.details)),
            _ => {}
        }
        for out in outcomes.iter().filter(|o| !o.ok()) {
            for f in &out.failures {
                problems.push(format!("{}: {f}", out.scenario));
            }
        }
        if !problems.is_empty() {
            eprintln!(
                "vm-tests: ---- console of {} ----\n{}vm-tests: ---- end of console ----",
                kernel.package, vm.console
            );
            if !vm.qemu_stderr.trim().is_empty() {
                eprintln!("vm-tests: qemu stderr:\n{}", vm.qemu_stderr.trim_end());
            }
            eprintln!("vm-tests: FAIL on {}:", kernel.package);
            for p in &problems {
                eprintln!("  - {p}");
            }
        }
        Ok(KernelReport {
            series: kernel.series.clone(),
            package: kernel.package.clone(),
            boot_to_result: vm.boot_to_result,
            guest_uptime: vm
                .marker
                .as_ref()
                .and_then(|m| m.uptime())
                .map(Duration::from_secs_f64),
            info: parsed.info.join(" "),
            outcomes,
            problems,
        })
    }
}
