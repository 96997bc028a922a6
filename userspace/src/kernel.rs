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
    #[error("kernel symbol {0} not found in /proc/kallsyms (tried {1}); `--attach SECTION=SYMBOL` attaches the section to another function")]
    SymbolMissing(String, String),
    /// Neither the kprobe PMU nor tracefs kprobe_events exist.
    #[error("this kernel ({0}) cannot attach kprobes: no kprobe PMU and no kprobe_events (CONFIG_KPROBES or CONFIG_KPROBE_EVENTS is off)")]
    NoKprobes(String),
    /// A tracepoint name matched no tracefs event.
    #[error("no tracepoint named {0} under {1}/events")]
    NoTracepoint(String, String),
}

/// `(major, minor, patch)` from a release string like `6.18.44-fc-v595` or `4.19.316`: the
/// real numbers, never clamped (the clamp belongs to [`version_code`] alone).
pub fn parse_release(release: &str) -> Option<(u32, u32, u32)> {
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major = nums.next()?.parse().ok()?;
    let minor = nums.next()?.parse().ok()?;
    let patch = nums.next().and_then(|p| p.parse().ok()).unwrap_or(0u32);
    Some((major, minor, patch))
}

/// The stable series that hard-coded the sublevel of `LINUX_VERSION_CODE` to 255 once they
/// came near it, and the first release that did: `(major, minor, first sublevel)`. From
/// then on 4.19.222 reports 4.19.255, and a kprobe carrying 4.19.222 is refused.
const SUBLEVEL_PINNED: &[(u32, u32, u32)] = &[(4, 4, 257), (4, 9, 257), (4, 14, 252), (4, 19, 222)];

/// `LINUX_VERSION_CODE` of `(major, minor, patch)`: what kprobe programs must carry in
/// `kern_version` before 5.0, by the stable series' rule: the sublevel is 255 from the
/// release where the series pinned it ([`SUBLEVEL_PINNED`]), and clamped to 255 anywhere.
/// The running kernel's own value, where it can be read, is [`running_version_code`].
pub fn version_code(v: (u32, u32, u32)) -> u32 {
    let pinned = SUBLEVEL_PINNED
        .iter()
        .any(|&(maj, min, from)| v.0 == maj && v.1 == min && v.2 >= from);
    let sub = if pinned { 255 } else { v.2.min(255) };
    (v.0.min(255) << 16) | (v.1.min(255) << 8) | sub
}

/// The `LINUX_VERSION_CODE` the kernel wrote into the vDSO image `vdso` (an ELF note named
/// `Linux`, type 0, a 4-byte value): exactly what `bpf(BPF_PROG_LOAD)` compares
/// `kern_version` with, whatever the distribution's version strings say.
pub fn parse_vdso_version_code(vdso: &[u8]) -> Option<u32> {
    use object::elf::{FileHeader64, PT_NOTE};
    use object::read::elf::{FileHeader, ProgramHeader};
    let header = FileHeader64::<object::Endianness>::parse(vdso).ok()?;
    let endian = header.endian().ok()?;
    for segment in header.program_headers(endian, vdso).ok()? {
        if segment.p_type(endian) != PT_NOTE {
            continue;
        }
        let Ok(Some(mut notes)) = segment.notes(endian, vdso) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == b"Linux" && note.n_type(endian) == 0 {
                let desc: [u8; 4] = note.desc().get(..4)?.try_into().ok()?;
                return Some(match endian {
                    object::Endianness::Little => u32::from_le_bytes(desc),
                    object::Endianness::Big => u32::from_be_bytes(desc),
                });
            }
        }
    }
    None
}

/// The `[vdso]` mapping's address range in a `/proc/self/maps` text.
pub fn parse_vdso_range(maps: &str) -> Option<(usize, usize)> {
    let line = maps.lines().find(|l| l.trim_end().ends_with("[vdso]"))?;
    let range = line.split_whitespace().next()?;
    let (start, end) = range.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (start < end).then_some((start, end))
}

/// The running kernel's `LINUX_VERSION_CODE`, read from this process's vDSO, if it has one.
pub fn running_version_code() -> Option<u32> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let (start, end) = parse_vdso_range(&maps)?;
    // SAFETY: the kernel maps the vDSO readable at [start, end) for the whole life of the
    // process and never changes it; /proc/self/maps just said where it is.
    let image = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
    parse_vdso_version_code(image)
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

/// Whether tracefs has `kprobe_events` (CONFIG_KPROBE_EVENTS), mounting tracefs if needed.
pub fn has_kprobe_events() -> bool {
    tracefs().is_ok_and(|t| t.join("kprobe_events").exists())
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

/// How many CPUs are possible (per-CPU map values are laid out for these, one per possible
/// CPU in order, as the kernel's num_possible_cpus() counts them). None when
/// /sys/devices/system/cpu/possible cannot be read or lists nothing (a container without
/// /sys): then no per-CPU value may be read at all, since the kernel would write one
/// value per possible CPU into a buffer sized by a guess.
pub fn possible_cpus() -> Option<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").ok()?;
    possible_count(&text)
}

/// [`possible_cpus`] of a CPU list text.
pub fn possible_count(text: &str) -> Option<usize> {
    let n = parse_cpu_list(text).len();
    (n > 0).then_some(n)
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
        Err(e) => why.push(format!("tracefs: {}", crate::error_chain(&e))),
    }
    match crate::sys::mount_fs("debugfs", "/sys/kernel/debug") {
        Ok(()) if Path::new("/sys/kernel/debug/tracing/events").is_dir() => {
            return Ok(PathBuf::from("/sys/kernel/debug/tracing"));
        }
        Ok(()) => why.push("debugfs has no tracing".to_owned()),
        Err(e) => why.push(format!("debugfs: {}", crate::error_chain(&e))),
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

/// Parses a bpf_trace_printk line of trace_pipe, in each form kernels since 4.x write:
/// `comm-123 [001] d..31 456.789: bpf_trace_printk: msg` (4.20+),
/// `comm-123 [001] d... 456.789: 0: msg` (4.15-4.19) and
/// `comm-123 [001] d... 456.789: 0x00000001: msg` (4.14 and older) and
/// `comm-123 [001] d... 456.789: : msg` (Ubuntu's 4.4). Lines of other
/// tracers (`...: some_function: msg`) are not ours: None.
pub fn parse_trace_pipe_line(line: &str) -> Option<PrintkLine<'_>> {
    let bracket = line.find(" [")?;
    let task = line.get(..bracket)?.trim();
    let (comm, pid) = task.rsplit_once('-')?;
    let pid = pid.parse().ok()?;
    let after = line.get(bracket + 2..)?;
    let (cpu, rest) = after.split_once(']')?;
    let cpu = cpu.trim().parse().ok();
    // `<flags> <timestamp>: <origin>: <msg>`
    let (_, rest) = rest.split_once(": ")?;
    let (origin, msg) = rest.split_once(": ")?;
    if !is_printk_origin(origin) {
        return None;
    }
    Some(PrintkLine {
        comm,
        pid,
        cpu,
        msg: msg.trim_end_matches('\n'),
    })
}

/// What stands before a bpf_trace_printk message: the helper's name, or the instruction
/// pointer older kernels print there (`0`, `0x00000001`, nothing at all on 4.4).
fn is_printk_origin(origin: &str) -> bool {
    if origin == "bpf_trace_printk" || origin.is_empty() {
        return true;
    }
    let digits = origin.strip_prefix("0x").unwrap_or(origin);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v595"), Some((6, 18, 44)));
        assert_eq!(parse_release("4.9.337-1"), Some((4, 9, 337)));
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
    fn stable_series_pin_the_sublevel() {
        // Measured on a real 4.19.222: its kern_version must be 267263 (4.19.255).
        assert_eq!(version_code((4, 19, 222)), 267263);
        assert_eq!(version_code((4, 19, 221)), 267229);
        assert_eq!(version_code((4, 14, 252)), 0x040eff);
        assert_eq!(version_code((4, 14, 98)), 0x040e62);
        assert_eq!(version_code((4, 9, 257)), 0x0409ff);
        assert_eq!(version_code((4, 4, 256)), 0x040400 + 255);
        assert_eq!(version_code((4, 4, 210)), 0x0404d2);
        assert_eq!(version_code((4, 15, 18)), 266002);
        assert_eq!(version_code((5, 4, 300)), 0x0504ff);
    }

    #[test]
    fn vdso_of_this_process_names_the_running_kernel() {
        // The host's own vDSO: an input written by the kernel, not by this test.
        let code = running_version_code().expect("this process has a vDSO with a Linux note");
        let uname = parse_release(&release()).unwrap();
        assert_eq!(code >> 16, uname.0, "{code:#x}");
        assert_eq!((code >> 8) & 0xff, uname.1, "{code:#x}");
    }

    #[test]
    fn vdso_parsing_rejects_garbage() {
        assert_eq!(parse_vdso_version_code(b""), None);
        assert_eq!(
            parse_vdso_version_code(&[0x7f, b'E', b'L', b'F', 0, 0]),
            None
        );
        let maps = "7ffd1000-7ffd3000 r--p 00000000 00:00 0                          [vvar]\n\
                    7ffd3000-7ffd5000 r-xp 00000000 00:00 0                          [vdso]\n";
        assert_eq!(parse_vdso_range(maps), Some((0x7ffd3000, 0x7ffd5000)));
        assert_eq!(parse_vdso_range("junk"), None);
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
        // The real sublevel: only LINUX_VERSION_CODE is clamped.
        assert_eq!(parse_debian_proc_version(debian), Some((4, 19, 316)));
        let bookworm = "Linux version 6.1.0-56-cloud-amd64 (debian-kernel@lists.debian.org) \
                        (gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) \
                        #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (2026-05-02)";
        assert_eq!(parse_debian_proc_version(bookworm), Some((6, 1, 192)));
        let own_build = "Linux version 6.18.44 (gcc (Debian 12.2.0-14+deb12u1) 12.2.0) #1 SMP";
        assert_eq!(parse_debian_proc_version(own_build), None);
    }

    #[test]
    fn possible_cpu_counts() {
        assert_eq!(possible_count("0-1\n"), Some(2));
        assert_eq!(possible_count("0,3"), Some(2));
        assert_eq!(possible_count(""), None);
        assert_eq!(possible_count("garbage"), None);
        assert!(possible_cpus().is_some_and(|n| n >= 1));
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

    #[test]
    fn trace_pipe_lines_of_legacy_kernels() {
        // As written by a real 4.14.98 and a real 4.19.222 (busybox in a qemu guest).
        let k414 = "         busybox-2190  [000] d...   535.092217: 0x00000001: Hello World\n";
        let p = parse_trace_pipe_line(k414).unwrap();
        assert_eq!(
            (p.comm, p.pid, p.cpu, p.msg),
            ("busybox", 2190, Some(0), "Hello World")
        );
        let k419 = "            true-231   [001] d...    12.345678: 0: Hello World";
        let p = parse_trace_pipe_line(k419).unwrap();
        assert_eq!(
            (p.comm, p.pid, p.cpu, p.msg),
            ("true", 231, Some(1), "Hello World")
        );
        // Ubuntu 16.04's 4.4.0-210, in a qemu guest.
        let k44 = "        vm-tests-104   [000] d...     2.307232: : Hello World";
        let p = parse_trace_pipe_line(k44).unwrap();
        assert_eq!(
            (p.comm, p.pid, p.cpu, p.msg),
            ("vm-tests", 104, Some(0), "Hello World")
        );
        // A message holding ": " keeps it.
        let p = parse_trace_pipe_line("a-1 [000] d... 1.0: 0: k: v").unwrap();
        assert_eq!(p.msg, "k: v");
        // Another tracer's trace_printk names its function: not a BPF program's line.
        let other = "  kworker/0:1-42  [000] .... 9.9: my_module_fn: something";
        assert_eq!(parse_trace_pipe_line(other), None);
    }
}
