//! Facts about the running kernel, parsed from text (pure functions, unit tested), plus the
//! few helpers that read them from /proc and /sys.

use std::path::{Path, PathBuf};

/// Errors finding kernel facilities.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// tracefs/debugfs could not be found or mounted.
    #[error("tracefs not found and mounting it failed: {0}")]
    NoTracefs(String),
    /// A kernel symbol is missing from /proc/kallsyms.
    #[error("kernel symbol {0} not found in /proc/kallsyms (tried {1})")]
    SymbolMissing(String, String),
    /// Neither the kprobe PMU nor tracefs kprobe_events exist.
    #[error("this kernel ({0}) cannot attach kprobes: no kprobe PMU and no kprobe_events (CONFIG_KPROBES or CONFIG_KPROBE_EVENTS is off)")]
    NoKprobes(String),
    /// A tracepoint name matched no tracefs event.
    #[error("no tracepoint named {0} under {1}/events")]
    NoTracepoint(String, String),
}

/// `(major, minor, patch)` from a release string like `6.18.44-fc-v595` or `4.9.337`.
/// Patch is clamped to 255 as in LINUX_VERSION_CODE.
pub fn parse_release(release: &str) -> Option<(u32, u32, u32)> {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = nums.next()?.parse().ok()?;
    let minor = nums.next()?.parse().ok()?;
    let patch = nums
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0u32)
        .min(255);
    Some((major, minor, patch))
}

/// `LINUX_VERSION_CODE` of `(major, minor, patch)`: what kprobe programs must carry in
/// `kern_version` before 5.0. The patch level is clamped to 255, as the kernel does for
/// stable series that went beyond it (4.4.302, 4.9.337, 4.14.336 ...).
pub fn version_code(v: (u32, u32, u32)) -> u32 {
    (v.0.min(255) << 16) | (v.1.min(255) << 8) | v.2.min(255)
}

/// The upstream version in Ubuntu's `/proc/version_signature`
/// (`Ubuntu 4.15.0-213.224-generic 4.15.18`): its last word.
pub fn parse_version_signature(s: &str) -> Option<(u32, u32, u32)> {
    let last = s.split_whitespace().last()?;
    if !last.starts_with(|c: char| c.is_ascii_digit()) || last.matches('.').count() < 2 {
        return None;
    }
    parse_release(last)
}

/// The upstream version Debian writes into `/proc/version`
/// (`... #1 SMP Debian 4.19.316-1 (2024-06-25)`): `uname -r` there says only `4.19.0-27`.
pub fn parse_debian_proc_version(s: &str) -> Option<(u32, u32, u32)> {
    // Only the build tag after `#` counts: the compiler part may say `(Debian 12.2.0-14)`.
    let tag = s.rsplit_once(" #")?.1;
    tag.rmatch_indices("Debian ").find_map(|(at, m)| {
        let rest = tag.get(at + m.len()..)?;
        let word = rest.split_whitespace().next()?;
        if word.starts_with(|c: char| c.is_ascii_digit()) && word.matches('.').count() >= 2 {
            parse_release(word)
        } else {
            None
        }
    })
}

/// The running kernel's real version, from the most precise source there is: Ubuntu's
/// version signature, Debian's `/proc/version`, then the release string.
pub fn running_version() -> Option<(u32, u32, u32)> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    parse_version_signature(&read("/proc/version_signature"))
        .or_else(|| parse_debian_proc_version(&read("/proc/version")))
        .or_else(|| parse_release(read("/proc/sys/kernel/osrelease").trim()))
}

/// The release string (`uname -r`).
pub fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// Whether the perf kprobe PMU exists (kernel >= 4.17 with CONFIG_KPROBE_EVENTS).
pub fn has_kprobe_pmu() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
}

/// Whether the kernel exposes its own BTF (5.4+, CONFIG_DEBUG_INFO_BTF).
pub fn has_kernel_btf() -> bool {
    Path::new("/sys/kernel/btf/vmlinux").exists()
}

/// More CPUs than any kernel has (NR_CPUS is at most 8192): a list naming more is cut
/// there, so that a list like `0-4294967295` cannot allocate without bound.
pub const MAX_CPUS: usize = 1 << 16;

/// CPU list as in /sys/devices/system/cpu/possible (`0-3,5`), at most [`MAX_CPUS`] long.
pub fn parse_cpu_list(s: &str) -> Vec<u32> {
    let mut cpus = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        let room = MAX_CPUS.saturating_sub(cpus.len());
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<u32>(), b.parse::<u32>()) {
                    cpus.extend((a..=b).take(room));
                }
            }
            None if room > 0 => {
                if let Ok(a) = part.parse() {
                    cpus.push(a);
                }
            }
            None => {}
        }
    }
    cpus
}

/// Possible CPUs (per-CPU map values are laid out for these).
pub fn possible_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default()
}

/// Online CPUs (perf buffers are opened on these).
pub fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .map(|s| parse_cpu_list(&s))
        .unwrap_or_default()
}

/// Candidates for a kprobe symbol: a syscall written `sys_NAME` has per-version names.
pub fn kprobe_candidates(symbol: &str) -> Vec<String> {
    match symbol.strip_prefix("sys_") {
        Some(name) => vec![
            format!("__x64_sys_{name}"),
            format!("__arm64_sys_{name}"),
            format!("sys_{name}"),
            format!("SyS_{name}"),
        ],
        None => vec![symbol.to_owned()],
    }
}

/// The symbol names of /proc/kallsyms.
#[derive(Debug, Default)]
pub struct KernelSymbols(std::collections::HashSet<String>);

impl KernelSymbols {
    /// From the text of /proc/kallsyms (`address type name [module]` per line).
    pub fn parse(kallsyms: &str) -> Self {
        KernelSymbols(
            kallsyms
                .lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .map(str::to_owned)
                .collect(),
        )
    }

    /// Reads /proc/kallsyms (empty when unreadable).
    pub fn read() -> Self {
        Self::parse(&std::fs::read_to_string("/proc/kallsyms").unwrap_or_default())
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
}

/// Resolves a kprobe symbol against the kernel's symbols.
pub fn resolve_kprobe_symbol(symbol: &str, symbols: &KernelSymbols) -> Result<String, KernelError> {
    let candidates = kprobe_candidates(symbol);
    candidates
        .iter()
        .find(|c| symbols.contains(c))
        .cloned()
        .ok_or_else(|| KernelError::SymbolMissing(symbol.to_owned(), candidates.join(", ")))
}

/// Finds tracefs, mounting tracefs (or debugfs on old kernels) if necessary.
pub fn tracefs() -> Result<PathBuf, KernelError> {
    let candidates = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
    for c in candidates {
        if Path::new(c).join("events").is_dir() {
            return Ok(PathBuf::from(c));
        }
    }
    let mut why = Vec::new();
    match crate::sys::mount_fs("tracefs", "/sys/kernel/tracing") {
        Ok(()) if Path::new("/sys/kernel/tracing/events").is_dir() => {
            return Ok(PathBuf::from("/sys/kernel/tracing"));
        }
        Ok(()) => why.push("tracefs mounted without events".to_owned()),
        Err(e) => why.push(format!("tracefs: {e}")),
    }
    match crate::sys::mount_fs("debugfs", "/sys/kernel/debug") {
        Ok(()) if Path::new("/sys/kernel/debug/tracing/events").is_dir() => {
            return Ok(PathBuf::from("/sys/kernel/debug/tracing"));
        }
        Ok(()) => why.push("debugfs has no tracing".to_owned()),
        Err(e) => why.push(format!("debugfs: {e}")),
    }
    Err(KernelError::NoTracefs(why.join("; ")))
}

/// The category of a tracepoint given only by name (`events/*/NAME`).
pub fn find_tracepoint_category(tracefs: &Path, name: &str) -> Result<String, KernelError> {
    let events = tracefs.join("events");
    let missing = || KernelError::NoTracepoint(name.to_owned(), tracefs.display().to_string());
    let dir = std::fs::read_dir(&events).map_err(|_| missing())?;
    let mut cats: Vec<String> = dir
        .filter_map(Result::ok)
        .filter(|e| e.path().join(name).join("id").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    cats.sort();
    cats.into_iter().next().ok_or_else(missing)
}

/// One `bpf_trace_printk` line from trace_pipe.
#[derive(Debug, PartialEq, Eq)]
pub struct PrintkLine<'a> {
    /// Task name (may contain spaces and dashes).
    pub comm: &'a str,
    /// Thread id.
    pub pid: u32,
    /// CPU.
    pub cpu: Option<u32>,
    /// The message.
    pub msg: &'a str,
}

/// Parses `  comm-123  [001] d..31 456.789: bpf_trace_printk: msg`.
pub fn parse_trace_pipe_line(line: &str) -> Option<PrintkLine<'_>> {
    let (head, msg) = line.split_once(": bpf_trace_printk: ")?;
    let bracket = head.find(" [")?;
    let task = head.get(..bracket)?.trim();
    let (comm, pid) = task.rsplit_once('-')?;
    let pid = pid.parse().ok()?;
    let after = head.get(bracket + 2..)?;
    let cpu = after.split(']').next().and_then(|c| c.trim().parse().ok());
    Some(PrintkLine {
        comm,
        pid,
        cpu,
        msg: msg.trim_end_matches('\n'),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v595"), Some((6, 18, 44)));
        assert_eq!(parse_release("4.9.337-1"), Some((4, 9, 255)));
        assert_eq!(parse_release("5.10"), Some((5, 10, 0)));
        assert_eq!(parse_release("garbage"), None);
    }

    #[test]
    fn version_codes_clamp_the_patch_level() {
        assert_eq!(version_code((4, 14, 0)), 0x040e00);
        assert_eq!(version_code((5, 10, 251)), 0x050afb);
        assert_eq!(version_code((4, 9, 337)), 0x0409ff);
    }

    #[test]
    fn distribution_version_strings() {
        assert_eq!(
            parse_version_signature("Ubuntu 4.15.0-213.224-generic 4.15.18\n"),
            Some((4, 15, 18))
        );
        assert_eq!(parse_version_signature(""), None);
        assert_eq!(parse_version_signature("garbage words"), None);
        let debian = "Linux version 4.19.0-27-amd64 (debian-kernel@lists.debian.org) \
                      (gcc version 8.3.0 (Debian 8.3.0-6)) #1 SMP Debian 4.19.316-1 (2024-06-25)\n";
        // The sublevel is clamped as in LINUX_VERSION_CODE.
        assert_eq!(parse_debian_proc_version(debian), Some((4, 19, 255)));
        let bookworm = "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) \
                        (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) \
                        #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-05-02)";
        assert_eq!(parse_debian_proc_version(bookworm), Some((6, 1, 192)));
        let own_build = "Linux version 6.18.44 (gcc (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP";
        assert_eq!(parse_debian_proc_version(own_build), None);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-2,5"), vec![0, 1, 2, 5]);
        assert_eq!(parse_cpu_list(""), Vec::<u32>::new());
    }

    #[test]
    fn huge_cpu_ranges_are_cut_not_allocated() {
        // Found by fuzz/ (target `text`): `7-824967195` asked for 3 GiB.
        assert_eq!(parse_cpu_list("7-824967195").len(), MAX_CPUS);
        assert_eq!(parse_cpu_list("0-4294967295,0-4294967295").len(), MAX_CPUS);
        let many = "1,".repeat(MAX_CPUS + 10);
        assert_eq!(parse_cpu_list(&many).len(), MAX_CPUS);
        assert_eq!(parse_cpu_list("3-1"), Vec::<u32>::new());
    }

    #[test]
    fn syscall_symbols_resolve_per_kernel() {
        let new = KernelSymbols::parse("ffff0 T __x64_sys_execve\nffff1 T do_execve\n");
        let old = KernelSymbols::parse("ffff0 T SyS_execve\nffff1 T sys_execve\n");
        assert_eq!(
            resolve_kprobe_symbol("sys_execve", &new).unwrap(),
            "__x64_sys_execve"
        );
        assert_eq!(
            resolve_kprobe_symbol("sys_execve", &old).unwrap(),
            "sys_execve"
        );
        assert_eq!(
            resolve_kprobe_symbol("do_execve", &new).unwrap(),
            "do_execve"
        );
        let err = resolve_kprobe_symbol("nope", &new).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
    }

    #[test]
    fn trace_pipe_lines() {
        let l = "     my-prog 2-1234    [001] d..31  5678.123456: bpf_trace_printk: hello 42\n";
        assert_eq!(
            parse_trace_pipe_line(l),
            Some(PrintkLine {
                comm: "my-prog 2",
                pid: 1234,
                cpu: Some(1),
                msg: "hello 42"
            })
        );
        assert_eq!(parse_trace_pipe_line("junk"), None);
    }
}
