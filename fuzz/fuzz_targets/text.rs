//! Kernel text parsers: release strings, /proc/version_signature, Debian's /proc/version,
//! CPU lists, trace_pipe lines, kprobe_events, kallsyms lookups, section names and the
//! checker's `--kernel` versions, all on the same arbitrary text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use loader::check::{self, Version};
use loader::{elf, kernel, legacy, section};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();

    if let Some(v) = kernel::parse_release(text) {
        // The release is reported as it is; only LINUX_VERSION_CODE packs it into bytes.
        let code = kernel::version_code(v);
        assert_eq!(code >> 8, (v.0.min(255) << 8) | v.1.min(255));
    }
    kernel::parse_vdso_range(text);
    if let Some(v) = kernel::parse_version_signature(text) {
        kernel::version_code(v);
    }
    if let Some(v) = kernel::parse_debian_proc_version(text) {
        kernel::version_code(v);
    }
    kernel::parse_cpu_list(text);
    for line in text.lines() {
        if let Some(p) = kernel::parse_trace_pipe_line(line) {
            assert!(line.contains(p.msg));
        }
    }
    for e in legacy::loader_events(text) {
        assert!(text.contains(e.id.as_str()));
    }
    // First line: the symbol wanted; the rest: /proc/kallsyms.
    let (symbol, kallsyms) = text.split_once('\n').unwrap_or((text, ""));
    let symbols = kernel::KernelSymbols::parse(kallsyms);
    if let Ok(found) = kernel::resolve_kprobe_symbol(symbol, &symbols) {
        assert!(kallsyms.contains(found.as_str()));
    }
    for line in text.lines().take(64) {
        section::parse(line).kind();
        elf::aya_knows_section(line);
        check::types::program_type(line);
        if let Some(v) = Version::parse(line) {
            v.to_string();
        }
        let name = legacy::event_name(1234, 0, true, line);
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
});
