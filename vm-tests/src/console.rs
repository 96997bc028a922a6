//! The line protocol on the guest's serial console, and its parser on the host.
//!
//! ```text
//! VMTEST-INFO - kernel=6.1.0-37-cloud-amd64 tracefs=/sys/kernel/tracing kprobe_pmu=6 ...
//! VMTEST-BEGIN execsnoop
//! VMTEST-OUT execsnoop {"type":"attached",...}      one per loader stdout line, verbatim
//! VMTEST-ERR execsnoop <loader stderr line>
//! VMTEST-INFO execsnoop attached_seen=1/1 after=0.84
//! VMTEST-KPROBE-DURING execsnoop p:kprobes/... ...  kprobe_events while the loader runs
//! VMTEST-KPROBE-EVENT execsnoop p:kprobes/... ...   kprobe_events left after the loader
//! VMTEST-COMPANION name {"type":...}                  a companion loader's stdout
//! VMTEST-KPROBE-COMPANION name p:...                 kprobe_events once the checked
//!                                                     loader exited, the companion still on
//! VMTEST-END execsnoop exit=0 elapsed=6.31
//! VMTEST-RESULT ok kernel=6.1.0-37-cloud-amd64 uptime=21.04   printed once by /init
//! ```
//!
//! Kernel messages may share the console, so a tag is looked for anywhere in a line.

use std::collections::BTreeMap;

pub const RESULT: &str = "VMTEST-RESULT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Begin,
    Out,
    Err,
    Info,
    KprobeEvent,
    KprobeDuring,
    KprobeLeftover,
    KprobeCompanion,
    Companion,
    End,
}

impl Tag {
    pub const ALL: [Tag; 10] = [
        Tag::Begin,
        Tag::Out,
        Tag::Err,
        Tag::Info,
        Tag::KprobeDuring,
        Tag::KprobeLeftover,
        Tag::KprobeEvent,
        Tag::KprobeCompanion,
        Tag::Companion,
        Tag::End,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Begin => "VMTEST-BEGIN",
            Tag::Out => "VMTEST-OUT",
            Tag::Err => "VMTEST-ERR",
            Tag::Info => "VMTEST-INFO",
            Tag::KprobeEvent => "VMTEST-KPROBE-EVENT",
            Tag::KprobeDuring => "VMTEST-KPROBE-DURING",
            Tag::KprobeLeftover => "VMTEST-KPROBE-LEFTOVER",
            Tag::KprobeCompanion => "VMTEST-KPROBE-COMPANION",
            Tag::Companion => "VMTEST-COMPANION",
            Tag::End => "VMTEST-END",
        }
    }
}

/// The final `VMTEST-RESULT ok|fail <details>` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub ok: bool,
    pub details: String,
}

impl Marker {
    /// `uptime=SECS` from the details: the guest's boot-to-result time.
    pub fn uptime(&self) -> Option<f64> {
        field(&self.details, "uptime")?.parse().ok()
    }
}

/// Everything the guest printed for one scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepOutput {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub info: Vec<String>,
    pub kprobe_events: Vec<String>,
    /// kprobe_events while the loader ran (after attaching, before the workload).
    pub kprobe_during: Vec<String>,
    /// kprobe_events after a first loader run was killed with SIGKILL.
    pub kprobe_leftover: Vec<String>,
    /// kprobe_events after the checked loader exited, its companion still attached.
    pub kprobe_companion: Vec<String>,
    /// The companion loader's stdout.
    pub companion: Vec<String>,
    /// The `VMTEST-END` details (`exit=0 elapsed=6.31`), if the step finished.
    pub end: Option<String>,
}

impl StepOutput {
    pub fn exit(&self) -> Option<&str> {
        field(self.end.as_deref()?, "exit")
    }

    pub fn elapsed(&self) -> Option<f64> {
        field(self.end.as_deref()?, "elapsed")?.parse().ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Console {
    pub marker: Option<Marker>,
    /// `VMTEST-INFO -` lines about the whole guest.
    pub info: Vec<String>,
    pub steps: BTreeMap<String, StepOutput>,
}

/// The value of `key=value` in a space-separated details string.
pub fn field<'a>(details: &'a str, key: &str) -> Option<&'a str> {
    details
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// Finds a marker line (used while the guest still runs).
pub fn parse_marker(line: &str) -> Option<Marker> {
    let at = line.find(RESULT)?;
    let rest = line[at + RESULT.len()..].trim();
    let (word, details) = rest.split_once(' ').unwrap_or((rest, ""));
    let ok = match word {
        "ok" => true,
        "fail" => false,
        _ => return None,
    };
    Some(Marker {
        ok,
        details: details.trim().to_owned(),
    })
}

pub fn parse(text: &str) -> Console {
    let mut c = Console::default();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(m) = parse_marker(line) {
            c.marker = Some(m);
            continue;
        }
        let Some((tag, rest)) = Tag::ALL.iter().find_map(|t| {
            let at = line.find(t.as_str())?;
            let rest = line[at + t.as_str().len()..].strip_prefix(' ')?;
            Some((*t, rest))
        }) else {
            continue;
        };
        let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
        if name == "-" {
            c.info.push(text.to_owned());
            continue;
        }
        let step = c.steps.entry(name.to_owned()).or_default();
        let text = text.to_owned();
        match tag {
            Tag::Begin => {}
            Tag::Out => step.stdout.push(text),
            Tag::Err => step.stderr.push(text),
            Tag::Info => step.info.push(text),
            Tag::KprobeEvent => step.kprobe_events.push(text),
            Tag::KprobeDuring => step.kprobe_during.push(text),
            Tag::KprobeLeftover => step.kprobe_leftover.push(text),
            Tag::KprobeCompanion => step.kprobe_companion.push(text),
            Tag::Companion => step.companion.push(text),
            Tag::End => step.end = Some(text),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
[    0.000000] Linux version 6.1.0
VMTEST-INFO - kernel=6.1.0-37-cloud-amd64 kprobe_pmu=6\r
VMTEST-BEGIN execsnoop
VMTEST-OUT execsnoop {\"type\":\"attached\",\"program\":\"x y\"}
[    3.1] random: crng init doneVMTEST-OUT execsnoop {\"type\":\"summary\"}
VMTEST-ERR execsnoop warning: slow
VMTEST-INFO execsnoop attached_seen=1/1 after=0.84
VMTEST-KPROBE-DURING execsnoop p:kprobes/y __x64_sys_execve
VMTEST-KPROBE-EVENT execsnoop p:kprobes/x __x64_sys_execve
VMTEST-COMPANION execsnoop {\"type\":\"summary\"}
VMTEST-KPROBE-COMPANION execsnoop p:redbpf_loader/p9_0_x x
VMTEST-END execsnoop exit=0 elapsed=6.31
VMTEST-BEGIN tcpconnect
VMTEST-RESULT ok kernel=6.1.0-37-cloud-amd64 uptime=21.04
";

    #[test]
    fn parses_steps_and_marker() {
        let c = parse(SAMPLE);
        let m = c.marker.as_ref().unwrap();
        assert!(m.ok);
        assert_eq!(m.uptime(), Some(21.04));
        assert_eq!(c.info, ["kernel=6.1.0-37-cloud-amd64 kprobe_pmu=6"]);
        let s = &c.steps["execsnoop"];
        assert_eq!(
            s.stdout,
            [
                "{\"type\":\"attached\",\"program\":\"x y\"}",
                "{\"type\":\"summary\"}"
            ]
        );
        assert_eq!(s.stderr, ["warning: slow"]);
        assert_eq!(s.kprobe_events, ["p:kprobes/x __x64_sys_execve"]);
        assert_eq!(s.kprobe_during, ["p:kprobes/y __x64_sys_execve"]);
        assert_eq!(s.companion, ["{\"type\":\"summary\"}"]);
        assert_eq!(s.kprobe_companion, ["p:redbpf_loader/p9_0_x x"]);
        assert_eq!(s.exit(), Some("0"));
        assert_eq!(s.elapsed(), Some(6.31));
        let t = &c.steps["tcpconnect"];
        assert_eq!(t.end, None);
        assert_eq!(t.exit(), None);
    }

    #[test]
    fn marker_forms() {
        assert_eq!(
            parse_marker("VMTEST-RESULT fail driver-exit=1 uptime=3.2"),
            Some(Marker {
                ok: false,
                details: "driver-exit=1 uptime=3.2".into()
            })
        );
        assert!(parse_marker("VMTEST-RESULT ok").unwrap().ok);
        assert_eq!(parse_marker("VMTEST-RESULT maybe"), None);
        assert_eq!(parse_marker("nothing here"), None);
        assert_eq!(parse("no markers\n"), Console::default());
    }
}
