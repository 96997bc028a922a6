//! `loader check [--kernel VERSION] [--json] OBJECT.elf...`

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::Parser;

use super::report::{Format, Printer, Summary};
use super::Version;

/// Lists, for every program of each object, what a kernel release cannot run (too many
/// instructions, loops, BPF-to-BPF calls, global data, new helpers, program and map types,
/// ring buffers, newer instruction sets) and the release that lifted each limit. Loads
/// nothing. Exit status: 0 all compatible, 1 something incompatible, 2 bad input.
#[derive(Debug, Parser)]
#[command(name = "loader check", bin_name = "loader check", version)]
pub struct CheckCli {
    /// Kernel release to check against: 4.14, 4.14.0, 5.10.251 (default: the running kernel).
    #[arg(long, value_name = "VERSION", value_parser = parse_kernel)]
    pub kernel: Option<Version>,

    /// Print JSON lines (`check` per program, `error` per unreadable object, a final `summary`).
    #[arg(long)]
    pub json: bool,

    /// BPF objects (ELF files) to check.
    #[arg(value_name = "OBJECT.elf", required = true)]
    pub objects: Vec<PathBuf>,
}

fn parse_kernel(s: &str) -> Result<Version, String> {
    Version::parse(s)
        .ok_or_else(|| format!("expected a kernel release like 4.14 or 5.10.251, got '{s}'"))
}

/// The running kernel's release (the distribution's real one, as the loader reads it).
pub fn running_kernel() -> Option<Version> {
    crate::kernel::running_version().map(|(major, minor, _)| Version::new(major, minor))
}

/// Checks the objects, writing results to `out` and human diagnostics to `err`; returns the
/// exit status.
pub fn run(cli: &CheckCli, kernel: Version, out: impl Write, mut err: impl Write) -> u8 {
    let format = if cli.json {
        Format::Json
    } else {
        Format::Human
    };
    let mut printer = Printer::new(out, format, kernel);
    let mut summary = Summary::default();
    let result = (|| -> io::Result<()> {
        for path in &cli.objects {
            let name = path.display().to_string();
            let analysis = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|data| super::analyze(&data).map_err(|e| crate::error_chain(&e)));
            match analysis {
                Ok(programs) => {
                    summary.objects += 1;
                    for a in &programs {
                        summary.programs += 1;
                        if a.problems(kernel).is_empty() {
                            summary.ok += 1;
                        } else {
                            summary.incompatible += 1;
                        }
                        printer.program(&name, a)?;
                    }
                }
                Err(e) => {
                    summary.errors += 1;
                    writeln!(err, "loader check: {name}: {e}")?;
                    printer.error(&name, &e)?;
                }
            }
        }
        printer.summary(&summary)
    })();
    match result {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            writeln!(err, "loader check: writing output: {e}").ok();
            2
        }
        _ if summary.errors > 0 => 2,
        _ if summary.incompatible > 0 => 1,
        _ => 0,
    }
}

/// Entry point for `loader check ...` (`args` starts with `check`).
pub fn main<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match CheckCli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            e.print().ok();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    let Some(kernel) = cli.kernel.or_else(running_kernel) else {
        crate::say!("loader check: cannot read the running kernel's release; pass --kernel");
        return 2;
    };
    run(&cli, kernel, io::stdout().lock(), io::stderr().lock())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_argument_forms() {
        let c = CheckCli::try_parse_from(["check", "--kernel", "5.10.251", "a.elf"]).unwrap();
        assert_eq!(c.kernel, Some(Version::new(5, 10)));
        let c =
            CheckCli::try_parse_from(["check", "--kernel", "4.14.0", "--json", "a.elf", "b.elf"])
                .unwrap();
        assert_eq!(c.kernel, Some(Version::new(4, 14)));
        assert!(c.json);
        assert_eq!(c.objects.len(), 2);
        assert!(CheckCli::try_parse_from(["check", "--kernel", "four", "a.elf"]).is_err());
        assert!(CheckCli::try_parse_from(["check", "--kernel", "4.14"]).is_err());
    }

    #[test]
    fn unreadable_objects_exit_2_with_one_line() {
        let cli = CheckCli::try_parse_from(["check", "/nonexistent/x.elf"]).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert_eq!(run(&cli, Version::new(4, 14), &mut out, &mut err), 2);
        let err = String::from_utf8(err).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("loader check: /nonexistent/x.elf: "),
            "{err}"
        );
    }

    #[test]
    fn running_kernel_is_readable_here() {
        assert!(running_kernel().is_some());
    }
}
