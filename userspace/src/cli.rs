//! Command line.

use std::path::PathBuf;

/// Examples, the `check` subcommand and the exit codes, after the options in `--help`.
const AFTER_HELP: &str = "\
Examples:
  sudo loader execsnoop                      one built-in probe, as a table
  sudo loader --json my.elf | jq .           any object, as JSON lines
  loader --list                              the built-in probes' programs
  loader check --kernel 4.14 my.elf          what a 4.14 kernel cannot run (loads nothing)

Exit status: 0 when a program ran until Ctrl-C/SIGTERM/--duration/a closed stdout (every
failure is an `error` line), 1 when nothing could be attached (or, with --strict, on any
error; with --verify, when a program is rejected), 2 on usage errors and when no OBJECT
could be read. `loader help` prints this; `loader check --help` explains check.";

use clap::Parser;

/// Load every program of redbpf-era (and C: libbpf, cilium/ebpf, goebpf) BPF objects,
/// attach each by its ELF section name, and stream perf records, map contents and printk
/// output as JSON lines (`--json`) or a human table.
///
/// With no OBJECT, runs the probes built into this binary.
#[derive(Debug, Parser)]
#[command(name = "loader", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// BPF objects to load: ELF files, or the names of probes built into this binary
    /// (`loader execsnoop`; `loader --list` shows them).
    #[arg(value_name = "OBJECT")]
    pub objects: Vec<PathBuf>,

    /// List the objects' programs (object, program, section, kind, target) and exit.
    #[arg(long, conflicts_with_all = ["verify", "duration", "interval"])]
    pub list: bool,

    /// Print JSON lines on stdout (one `type`-tagged object per line).
    #[arg(long)]
    pub json: bool,

    /// Record field FIELD holds stack ids of STACK_TRACE map MAP: its frames are
    /// symbolized into the record (fields with `stack` in their name are found by
    /// themselves when the object has one STACK_TRACE map).
    #[arg(long, value_name = "FIELD=MAP", value_parser = attach_pair)]
    pub stack: Vec<(String, String)>,

    /// Print folded stacks for flame graphs (`comm;outer;...;inner COUNT`, one line per
    /// distinct stack, user frames then kernel frames, as bcc's `profile -f`): records with
    /// stack id fields count 1 each, and hash maps whose key holds stack ids and whose value
    /// is a number (bcc's {pid, stack ids, comm} -> count) add their counts. Printed at
    /// exit and every --interval (each print: the counts since the previous one). Without
    /// --json, stdout carries only these lines (`| flamegraph.pl`); with it, `folded` lines.
    #[arg(long, conflicts_with_all = ["list", "verify"])]
    pub folded: bool,

    /// Print map MAP as a log2 histogram (bpftrace's hist()): its key is the bucket index.
    /// Maps whose key struct has a `slot` or `bucket` field are histograms by themselves.
    #[arg(long, value_name = "MAP")]
    pub hist: Vec<String>,

    /// Serve Prometheus metrics on http://ADDR/metrics (e.g. 127.0.0.1:9435): the loader's
    /// counters and every dumped map's number values, read at scrape time.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// With --metrics: one series per CPU (a `cpu` label) for per-CPU maps, not their sum.
    #[arg(long, requires = "metrics")]
    pub metrics_per_cpu: bool,

    /// With --metrics: at most N series per map (the rest counted as dropped).
    #[arg(long, value_name = "N", default_value_t = 10_000, requires = "metrics")]
    pub metrics_max_series: usize,

    /// Write the output to FILE (appending) instead of stdout; SIGHUP then reopens FILE
    /// (for logrotate) instead of stopping the loader.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Stop after this many seconds (default: run until Ctrl-C/SIGTERM/SIGHUP).
    #[arg(long, value_name = "SECS", value_parser = duration_secs)]
    pub duration: Option<f64>,

    /// Dump hash/array maps every SECS seconds, at least 0.1 (they are always dumped at exit).
    #[arg(long, value_name = "SECS", value_parser = interval_secs)]
    pub interval: Option<f64>,

    /// Only these programs: an object (`execsnoop`), object/program, a function symbol, a
    /// section or its last part (`sys_enter_execve`); glob patterns allowed (`exec*`);
    /// repeat or comma-separate. A name that matches nothing is a usage error.
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub programs: Vec<String>,

    /// Skip these programs (same matching as --programs).
    #[arg(long, value_delimiter = ',', value_name = "NAME")]
    pub skip: Vec<String>,

    /// Dump only these maps (object/map or map name, globs allowed); scratch maps (one-entry
    /// per-CPU buffers, redbpf's PARMS_*) are dumped only when named here.
    #[arg(long, value_delimiter = ',', value_name = "MAP")]
    pub maps: Vec<String>,

    /// Only records (and printk lines) of this process id: a filter applied by the loader
    /// to records with a `pid` (or `tgid`) field (and, like --comm, --uid and --failed, in
    /// the kernel by probes that declare a LOADER_FILTER map, as execsnoop does).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Only records (and printk lines) of this command (a record's `comm` field; the
    /// kernel keeps 15 characters).
    #[arg(long, value_name = "NAME")]
    pub comm: Option<String>,

    /// Only records of this user id (a record's `uid` field).
    #[arg(long, value_name = "UID")]
    pub uid: Option<u32>,

    /// Only records whose `ret` (or `retval`) field is negative: failed calls.
    #[arg(long)]
    pub failed: bool,

    /// Network interface for xdp/socketfilter programs.
    #[arg(long, value_name = "IFACE")]
    pub iface: Option<String>,

    /// Binary (or library) for `uprobe/SYMBOL` sections that name none.
    #[arg(long, value_name = "PATH")]
    pub uprobe_target: Option<PathBuf>,

    /// Only fire uprobes in this process.
    #[arg(long, value_name = "PID")]
    pub uprobe_pid: Option<u32>,

    /// Attach the programs of section SECTION to TARGET instead of what the section says
    /// (free-form sections: `kprobe/guess_execve=sys_execve`,
    /// `uprobe/bash_readline=/bin/bash:readline`, `tracepoint/x=syscalls:sys_enter_openat`).
    #[arg(long, value_name = "SECTION=TARGET", value_parser = attach_pair)]
    pub attach: Vec<(String, String)>,

    /// Decode records of perf map MAP (or values of hash/array map MAP) as debug-info type STRUCT.
    #[arg(long, value_name = "MAP=STRUCT")]
    pub event_type: Vec<String>,

    /// Per-CPU perf buffer size in pages (rounded up to a power of two). Default: 8 MiB
    /// shared by the online CPUs, 64 to 1024 pages each (4 MiB per CPU on 2 CPUs: ~25 ms of
    /// records at 3M/s, enough to ride out a sleeping reader CPU's wake-up).
    #[arg(long, value_name = "PAGES")]
    pub pages: Option<usize>,

    /// Wake the reader once this many bytes are queued per CPU (default: a quarter of the buffer).
    #[arg(long, value_name = "BYTES")]
    pub wakeup_bytes: Option<u32>,

    /// Drain all perf buffers at least every MS milliseconds, so a trickle is not delayed.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    pub flush_ms: u64,

    /// Exit non-zero as soon as any program fails to load or attach.
    #[arg(long)]
    pub strict: bool,

    /// Do not read bpf_trace_printk output from trace_pipe.
    #[arg(long)]
    pub no_printk: bool,

    /// Leave out printk lines the loader cannot tell are its programs' (when several or
    /// none of the attached programs call bpf_trace_printk).
    #[arg(long)]
    pub no_foreign_printk: bool,

    /// Use the code paths of 4.x kernels even on a newer one (they are chosen by themselves
    /// on kernels before 4.17): kprobes through tracefs kprobe_events instead of the perf
    /// PMU, no object BTF, RLIMIT_MEMLOCK raised, kern_version set.
    #[arg(long)]
    pub legacy: bool,

    /// Load every program (the kernel verifier runs) and exit without attaching: one
    /// `loaded` or `error` line per program; exit status 1 if any is rejected.
    #[arg(long, conflicts_with_all = ["duration", "interval"])]
    pub verify: bool,
}

impl Cli {
    /// `--event-type` pairs.
    pub fn event_types(&self) -> Result<Vec<(String, String)>, String> {
        self.event_type
            .iter()
            .map(|s| {
                s.split_once('=')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| format!("--event-type expects MAP=STRUCT, got '{s}'"))
            })
            .collect()
    }

    /// `--pid`, `--comm`, `--uid`, `--failed`.
    pub fn filter(&self) -> crate::filter::Filter {
        crate::filter::Filter {
            pid: self.pid,
            comm: self.comm.clone(),
            uid: self.uid,
            failed: self.failed,
        }
    }

    /// `--programs`, `--skip` and `--maps`.
    pub fn selection(&self) -> crate::select::Selection {
        crate::select::Selection::new(&self.programs, &self.skip, &self.maps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_flags_split_on_commas() {
        let c = Cli::parse_from(["loader", "--programs", "execsnoop,other", "x.elf"]);
        let s = c.selection();
        assert!(s.wants(
            "o",
            "outer_execsnoop",
            "tracepoint/syscalls/sys_enter_execve"
        ));
        assert!(s.wants("other", "p", "kprobe/bar"));
        assert!(!s.wants("o", "foo", "kprobe/bar"));
        let c = Cli::parse_from(["loader", "--skip", "sys_enter_execve"]);
        assert!(!c
            .selection()
            .wants("o", "x", "tracepoint/syscalls:sys_enter_execve"));
        assert!(c.selection().wants("o", "y", "xdp/pass"));
    }

    #[test]
    fn event_type_pairs() {
        let c = Cli::parse_from(["loader", "--event-type", "events=event_t"]);
        assert_eq!(
            c.event_types().unwrap(),
            vec![("events".into(), "event_t".into())]
        );
        let c = Cli::parse_from(["loader", "--event-type", "bad"]);
        assert!(c.event_types().is_err());
    }
}

fn attach_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((section, target)) if !section.is_empty() && !target.is_empty() => {
            Ok((section.to_owned(), target.to_owned()))
        }
        _ => Err(format!("expected SECTION=TARGET, got {s:?}")),
    }
}

/// Longest `--duration`/`--interval` taken: ten years, far below what `Duration` holds.
const MAX_SECS: f64 = 10.0 * 365.0 * 86400.0;

/// Seconds: a finite number above `min` and at most [`MAX_SECS`].
fn secs_at_least(s: &str, min: f64) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || v < min || v <= 0.0 {
        return Err(format!("{s:?}: give a number of seconds of at least {min}"));
    }
    if v > MAX_SECS {
        return Err(format!("{s:?}: at most {MAX_SECS} seconds (ten years)"));
    }
    Ok(v)
}

fn duration_secs(s: &str) -> Result<f64, String> {
    secs_at_least(s, 0.001)
}

fn interval_secs(s: &str) -> Result<f64, String> {
    secs_at_least(s, 0.1)
}

#[cfg(test)]
mod secs_tests {
    use super::*;

    #[test]
    fn seconds_are_finite_positive_and_bounded() {
        assert_eq!(duration_secs("2.5"), Ok(2.5));
        for bad in ["inf", "-inf", "nan", "NaN", "-1", "0", "1e300", "x", ""] {
            assert!(duration_secs(bad).is_err(), "{bad}");
        }
        assert!(interval_secs("0.001").is_err());
        assert_eq!(interval_secs("0.5"), Ok(0.5));
    }
}
