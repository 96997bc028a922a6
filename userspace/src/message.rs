//! Every line the loader (and `loader check`) prints, as typed values. The sinks in
//! [`crate::sink`] render them: JSON lines or the human table.
//!
//! One JSON shape for every line: a flat object tagged by `type`, its fields beside it.
//! - `{"type":"kernel","release":R,"version":V,"version_code":N,"legacy":B,"kprobes":K,"btf":B,"memlock":M,"leftovers_removed":N,"reason":S}`
//! - `{"type":"attached","object":O,"program":P,"section":S,"kind":K,"target":T}`
//! - `{"type":"program","object":O,"program":P,"section":S,"kind":K,"target":T}` (`--list`)
//! - `{"type":"decode","object":O,"map":M,"record":{"type":T,"from":S}|null}` for a perf
//!   array or ring buffer, `{"type":"decode","object":O,"map":M,"key":{..},"value":{..}}` for
//!   a dumped map: the types its data decodes as, and where each came from
//! - `{"type":"loaded","object":O,"program":P,"section":S}` (`--verify`)
//! - `{"type":"error","object":O,"program":P|null,"section":S|null,"error":E,"verifier_log":L?}`
//! - `{"type":"event","object":O,"map":M,"cpu":C,"data":{...}}`
//! - `{"type":"lost","object":O,"map":M,"cpu":C,"count":N}`
//! - `{"type":"map","object":O,"map":M,"map_type":T,"entries":[{"key":K,"value":V}]}`
//!   (per-CPU maps: `{"key":K,"values":[per CPU],"sum":S}`, `sum` for integer values)
//! - `{"type":"hist","object":O,"map":M,"key":{...}|null,"buckets":[{"min":N,"max":N,"count":N}]}`
//!   after a histogram map's dump (`--hist`, or a key with a `slot`/`bucket` field)
//! - `{"type":"folded","object":O,"map":M,"stack":"comm;outer;...;inner","count":N}` with
//!   `--folded`: one line per distinct stack (flame graph input), at exit and every `--interval`
//! - `{"type":"packets","object":O,"program":P,"iface":I,"count":N}` (socket filters)
//! - `{"type":"printk","pid":N,"comm":C,"cpu":N,"msg":M,"object":O,"program":P}` (object and
//!   program when one attached program of ours calls bpf_trace_printk, else `"foreign":true`
//!   when several or none do: the line may be another tool's)
//! - `{"type":"summary","events":N,"lost":N,"filtered":N,"attached":N,"errors":N,"duration_ms":N,"maps":[...]}`
//! - `loader check`: `{"type":"check","object":O,"program":P,"section":S,"kernel":K,"insns":N,"min_kernel":V|null,"ok":B,"problems":[{"kind","what","needs"}]}`,
//!   `error` as above, and `{"type":"summary","kernel":K,"objects":N,"programs":N,"ok":N,"incompatible":N,"errors":N}`
//!
//! Strings are JSON strings when the bytes are UTF-8; bytes that are not (a filename, an
//! argument) are written as `{"bytes":"<base64>"}` instead, so they stay recoverable.

use crate::check::{self, ProgramAnalysis};
use crate::dwarf::Type;

/// The `kernel` line: version, legacy decisions, leftovers cleaned.
#[derive(Debug, Clone, Copy)]
pub struct KernelLine<'a> {
    /// `uname -r`
    pub release: &'a str,
    /// upstream version (`4.19.316`)
    pub version: &'a str,
    /// LINUX_VERSION_CODE written into kprobe programs
    pub version_code: u32,
    /// legacy mode on
    pub legacy: bool,
    /// `perf_pmu`, `kprobe_events`, or `none` (kprobes cannot attach)
    pub kprobes: &'a str,
    /// object BTF may be loaded
    pub btf: bool,
    /// `raised`, `unchanged` or an error
    pub memlock: &'a str,
    /// leftover kprobe events of dead loaders removed at start
    pub leftovers: usize,
    /// why legacy / fallback
    pub reason: &'a str,
}

/// Counters for one perf map, for the summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MapCount {
    /// object name
    pub object: String,
    /// map name
    pub map: String,
    /// records delivered
    pub events: u64,
    /// records the kernel reported lost
    pub lost: u64,
    /// records no type decoded (written as hex)
    pub hex: u64,
}

/// The loader's final summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// records delivered
    pub events: u64,
    /// records lost
    pub lost: u64,
    /// records read but left out by `--pid`/`--comm`/`--uid`/`--failed`
    pub filtered: u64,
    /// programs attached
    pub attached: u64,
    /// errors reported
    pub errors: u64,
    /// run time
    pub duration_ms: u64,
    /// per perf map
    pub maps: Vec<MapCount>,
}

/// One perf record, with the type it decodes as.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// object name
    pub object: &'a str,
    /// perf event array
    pub map: &'a str,
    /// CPU whose ring it came from
    pub cpu: u32,
    /// record type from the debug info (or `--event-type`)
    pub ty: Option<&'a Type>,
    /// raw sample bytes
    pub data: &'a [u8],
    /// symbolized stacks of its stack id fields: `(key, frames)` (usually none)
    pub stacks: &'a [(String, Vec<crate::stacks::Frame>)],
}

/// A line other than a record or a map dump.
#[derive(Debug, Clone, Copy)]
pub enum Message<'a> {
    /// What the loader found out about the running kernel and the paths it chose.
    Kernel(&'a KernelLine<'a>),
    /// A program was attached.
    Attached {
        /// object name
        object: &'a str,
        /// function symbol
        program: &'a str,
        /// ELF section
        section: &'a str,
        /// `kprobe`, `tracepoint`...
        kind: &'a str,
        /// what it is attached to
        target: &'a str,
    },
    /// A program of an object (`loader --list`).
    Program {
        /// object name
        object: &'a str,
        /// function symbol
        program: &'a str,
        /// ELF section
        section: &'a str,
        /// `kprobe`, `tracepoint`...
        kind: &'a str,
        /// where it attaches (`--iface` where the command line says)
        target: &'a str,
    },
    /// What a map's keys and values (or records) decode as, and where each type came from.
    Decode {
        /// object name
        object: &'a str,
        /// map name
        map: &'a str,
        /// a perf array or ring buffer (records), else a dumped map (values)
        records: bool,
        /// `(type, source)` of the keys
        key: Option<(&'a str, &'a str)>,
        /// `(type, source)` of the values or records; None: hex
        value: Option<(&'a str, &'a str)>,
    },
    /// A program passed the verifier (`--verify`).
    Loaded {
        /// object name
        object: &'a str,
        /// function symbol
        program: &'a str,
        /// ELF section
        section: &'a str,
    },
    /// Something failed: an object, a program, a map.
    Error {
        /// object name
        object: &'a str,
        /// function symbol, when a program failed
        program: Option<&'a str>,
        /// its section
        section: Option<&'a str>,
        /// one line
        error: &'a str,
        /// the verifier's log, when it rejected the program
        verifier_log: Option<&'a str>,
    },
    /// The kernel dropped records.
    Lost {
        /// object name
        object: &'a str,
        /// perf event array
        map: &'a str,
        /// CPU
        cpu: u32,
        /// records dropped
        count: u64,
    },
    /// Packets a socket filter passed.
    Packets {
        /// object name
        object: &'a str,
        /// function symbol
        program: &'a str,
        /// interface
        iface: &'a str,
        /// packets so far
        count: u64,
    },
    /// A bpf_trace_printk line.
    Printk {
        /// `(object, program)` that wrote it, when the loader can tell (one attached
        /// program of ours calls bpf_trace_printk); None: it may be another tool's
        origin: Option<(&'a str, &'a str)>,
        /// writer's pid
        pid: u32,
        /// writer's command
        comm: &'a str,
        /// CPU, where the kernel's format says
        cpu: Option<u32>,
        /// the message
        msg: &'a str,
    },
    /// A log2 histogram of a map's dump.
    Hist {
        /// object name
        object: &'a str,
        /// map name
        map: &'a str,
        /// the key's other fields, JSON (one histogram each); None for a plain bucket key
        key: Option<&'a serde_json::Value>,
        /// from the lowest to the highest filled bucket
        buckets: &'a [crate::hist::Bucket],
    },
    /// `--folded`: one distinct stack and how often it was seen since the last print.
    Folded {
        /// object name
        object: &'a str,
        /// the perf array whose records, or the hash map whose keys, held the stack ids
        map: &'a str,
        /// `comm;outermost;...;innermost` (user frames, then kernel frames)
        stack: &'a str,
        /// records (or the map's count) for it
        count: u64,
    },
    /// The loader's last line.
    Summary(&'a Summary),
    /// `loader check`: one program's verdict on `kernel`.
    Check {
        /// object path
        object: &'a str,
        /// the analysis
        analysis: &'a ProgramAnalysis,
        /// release checked against
        kernel: check::Version,
    },
    /// `loader check`'s last line.
    CheckSummary {
        /// release checked against
        kernel: check::Version,
        /// totals
        summary: &'a check::report::Summary,
    },
}

impl Message<'_> {
    /// The `type` of its JSON line.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Kernel(_) => "kernel",
            Message::Attached { .. } => "attached",
            Message::Program { .. } => "program",
            Message::Decode { .. } => "decode",
            Message::Hist { .. } => "hist",
            Message::Folded { .. } => "folded",
            Message::Loaded { .. } => "loaded",
            Message::Error { .. } => "error",
            Message::Lost { .. } => "lost",
            Message::Packets { .. } => "packets",
            Message::Printk { .. } => "printk",
            Message::Summary(_) | Message::CheckSummary { .. } => "summary",
            Message::Check { .. } => "check",
        }
    }
}
