//! `loader check`: what an older kernel cannot run in an object, found without loading
//! anything. Pure: reads the ELF bytes only.
//!
//! Per program (its function plus every BPF function it calls), the rules are:
//!
//! | kind | what | lifted in |
//! |---|---|---|
//! | `insns` | more than 4096 instructions | 5.2 |
//! | `loop` | a back-edge in the control-flow graph | 5.3 |
//! | `bpf_call` | BPF-to-BPF calls (with tail calls: 5.10) | 4.16 |
//! | `global_data` | relocations to `.data`/`.rodata`/`.bss` (and `.data.*`...) | 5.2 |
//! | `helper` | helpers, by id (see [`helpers`]) | per helper |
//! | `kfunc` | calls to kernel functions | 5.13 |
//! | `program_type` | the section's program type (see [`types`]) | per type |
//! | `map_type` | the object's maps, legacy `maps*` and BTF `.maps` | per type |
//! | `ringbuf` | ring buffer maps and `bpf_ringbuf_*` helpers | 5.8 |
//! | `helper_flag` | `bpf_perf_event_output` with `BPF_F_CURRENT_CPU` (redbpf's `PerfMap::insert`) | 4.8 |
//! | `kern_version` | a kprobe/uprobe object whose `version` section names one release (not redbpf's "any", 0xFFFFFFFE): before 5.0 it loads on that release only | 5.0 |
//! | `cpu` | jlt/jle/jslt/jsle (cpu v2, 4.14), jmp32 (v3, 5.1), atomics (5.12), sdiv/smod, movsx, ldsx, bswap, gotol (v4, 6.6) | per instruction |
//!
//! Maps belong to the object, so a map type the kernel lacks is reported on every program
//! of the object: the object's maps are all created before any program loads.
//!
//! libbpf-tools' fallback (a BTF ring buffer that the program also feeds with
//! bpf_perf_event_output, behind `bpf_core_type_exists(struct bpf_ringbuf)`) needs no ring
//! buffer: below 5.8 the loader makes the map a perf event array and the check false, so
//! such a program's ring buffer helpers and map are not requirements (the perf array is).

pub mod btf;
pub mod cli;
pub mod helpers;
pub mod insn;
pub mod report;
pub mod types;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionKind, SymbolKind};

use crate::elf::{self, ElfError};
use insn::{Call, Insn, INSN_SIZE};

/// `BPF_FUNC_perf_event_output`.
const HELPER_PERF_EVENT_OUTPUT: i32 = 25;

/// `BPF_MAXINSNS`: the per-program limit before 5.2.
pub const MAX_INSNS_OLD: usize = 4096;

/// A kernel release, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// e.g. 4
    pub major: u32,
    /// e.g. 14
    pub minor: u32,
}

impl Version {
    /// `major.minor`
    pub const fn new(major: u32, minor: u32) -> Version {
        Version { major, minor }
    }

    /// `4.14`, `4.14.0`, `5.10.251`, `6.18.44-fc-v595` (the sublevel is ignored).
    pub fn parse(s: &str) -> Option<Version> {
        if !s.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        let (major, minor, _) = crate::kernel::parse_release(s)?;
        Some(Version { major, minor })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The release a feature needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Needs {
    /// Available from this release on.
    Since(Version),
    /// No release this checker knows has it (an unknown helper id or map type).
    Unknown,
}

impl Needs {
    /// Whether a `kernel` release lacks it.
    pub fn missing_on(self, kernel: Version) -> bool {
        match self {
            Needs::Since(v) => v > kernel,
            Needs::Unknown => true,
        }
    }
}

impl fmt::Display for Needs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Needs::Since(v) => v.fmt(f),
            Needs::Unknown => f.write_str("unknown"),
        }
    }
}

/// The rule a requirement comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Instruction count over `BPF_MAXINSNS`.
    Insns,
    /// A loop (back-edge).
    Loop,
    /// BPF-to-BPF calls.
    BpfCall,
    /// `.data`/`.rodata`/`.bss` use.
    GlobalData,
    /// A helper.
    Helper,
    /// A kfunc call.
    Kfunc,
    /// The program type.
    ProgramType,
    /// A map type.
    MapType,
    /// Ring buffer maps or helpers.
    Ringbuf,
    /// A helper flag older kernels take for something else.
    HelperFlag,
    /// A fixed `kern_version`.
    KernVersion,
    /// An instruction-set extension.
    Cpu,
}

impl Kind {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Insns => "insns",
            Kind::Loop => "loop",
            Kind::BpfCall => "bpf_call",
            Kind::GlobalData => "global_data",
            Kind::Helper => "helper",
            Kind::Kfunc => "kfunc",
            Kind::ProgramType => "program_type",
            Kind::MapType => "map_type",
            Kind::Ringbuf => "ringbuf",
            Kind::HelperFlag => "helper_flag",
            Kind::KernVersion => "kern_version",
            Kind::Cpu => "cpu",
        }
    }
}

/// One thing a program needs from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Requirement {
    /// The rule.
    pub kind: Kind,
    /// What exactly, e.g. `bpf_probe_read_kernel (113)`.
    pub what: String,
    /// The release that has it.
    pub needs: Needs,
}

fn req(kind: Kind, what: impl Into<String>, needs: Version) -> Requirement {
    Requirement {
        kind,
        what: what.into(),
        needs: Needs::Since(needs),
    }
}

/// Everything one program needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramAnalysis {
    /// Function symbol.
    pub program: String,
    /// ELF section.
    pub section: String,
    /// Instruction slots, including the BPF functions it calls.
    pub insns: usize,
    /// Every requirement, old ones included, sorted and deduplicated.
    pub requirements: Vec<Requirement>,
}

impl ProgramAnalysis {
    /// The requirements `kernel` does not meet.
    pub fn problems(&self, kernel: Version) -> Vec<&Requirement> {
        self.requirements
            .iter()
            .filter(|r| r.needs.missing_on(kernel))
            .collect()
    }

    /// The oldest release that meets every requirement.
    pub fn min_kernel(&self) -> Option<Needs> {
        self.requirements.iter().map(|r| r.needs).max()
    }
}

/// Errors reading an object for checking.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The ELF model refused it.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// The object crate refused it.
    #[error("not a valid ELF object")]
    Object(#[from] object::Error),
    /// Something the checker cannot make sense of.
    #[error("malformed object: {0}")]
    Malformed(String),
}

/// Where a relocation in code points.
#[derive(Debug, Clone)]
struct RelocTarget {
    section: Option<object::SectionIndex>,
    section_name: String,
    symbol: String,
    section_symbol: bool,
    value: u64,
}

/// A function symbol: slots `[start, end)` of its section.
#[derive(Debug, Clone)]
struct Function {
    name: String,
    start: usize,
    end: usize,
}

/// A code section, decoded.
#[derive(Debug, Default)]
struct Code {
    name: String,
    insns: Vec<Insn>,
    functions: Vec<Function>,
    relocs: HashMap<usize, RelocTarget>,
}

impl Code {
    /// The function starting at `start`; without a symbol there, up to the next function.
    fn function_at(&self, start: usize) -> Function {
        if let Some(f) = self.functions.iter().find(|f| f.start == start) {
            return f.clone();
        }
        let end = self
            .functions
            .iter()
            .map(|f| f.start)
            .filter(|&s| s > start)
            .min()
            .unwrap_or(self.insns.len());
        Function {
            name: format!("{}+{}", self.name, start),
            start,
            end,
        }
    }
}

fn is_global_data(section: &str) -> bool {
    [".data", ".rodata", ".bss"]
        .iter()
        .any(|p| section == *p || section.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
}

fn code_sections(file: &elf::Elf<'_>) -> Result<HashMap<object::SectionIndex, Code>, CheckError> {
    let mut codes = HashMap::new();
    for section in file.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let mut code = Code {
            name: section.name().unwrap_or("").to_owned(),
            insns: insn::decode(section.data()?),
            ..Code::default()
        };
        for (offset, reloc) in section.relocations() {
            let RelocationTarget::Symbol(si) = reloc.target() else {
                continue;
            };
            let sym = file.symbol_by_index(si)?;
            let section_index = sym.section_index();
            let section_name = match section_index {
                Some(i) => file.section_by_index(i)?.name().unwrap_or("").to_owned(),
                None => String::new(),
            };
            if offset % INSN_SIZE as u64 != 0 {
                continue;
            }
            code.relocs.insert(
                (offset / INSN_SIZE as u64) as usize,
                RelocTarget {
                    section: section_index,
                    section_name,
                    symbol: sym.name().unwrap_or("").to_owned(),
                    section_symbol: sym.kind() == SymbolKind::Section,
                    value: sym.address(),
                },
            );
        }
        codes.insert(section.index(), code);
    }
    for sym in file.symbols() {
        let (Some(idx), SymbolKind::Text) = (sym.section_index(), sym.kind()) else {
            continue;
        };
        let Some(code) = codes.get_mut(&idx) else {
            continue;
        };
        let name = sym.name().unwrap_or("");
        if name.is_empty() {
            continue;
        }
        let start = (sym.address() / INSN_SIZE as u64) as usize;
        let end = if sym.size() == 0 {
            0 // filled in below
        } else {
            start.saturating_add((sym.size() / INSN_SIZE as u64) as usize)
        };
        code.functions.push(Function {
            name: name.to_owned(),
            start,
            end,
        });
    }
    for code in codes.values_mut() {
        code.functions.sort_by_key(|f| f.start);
        let starts: Vec<usize> = code.functions.iter().map(|f| f.start).collect();
        let len = code.insns.len();
        for f in &mut code.functions {
            if f.end == 0 {
                f.end = starts
                    .iter()
                    .copied()
                    .filter(|&s| s > f.start)
                    .min()
                    .unwrap_or(len);
            }
            f.end = f.end.min(len);
        }
    }
    Ok(codes)
}

/// The object's maps: `(name, BPF_MAP_TYPE_*)`, legacy definitions then BTF `.maps`.
fn object_maps(
    file: &elf::Elf<'_>,
    info: &elf::ObjectInfo,
) -> Result<Vec<(String, u32)>, CheckError> {
    let mut maps: Vec<(String, u32)> = info
        .maps
        .iter()
        .map(|m| (m.name.clone(), m.def.map_type))
        .collect();
    if info.has_btf_maps {
        let btf = file
            .section_by_name(".BTF")
            .ok_or_else(|| CheckError::Malformed("a .maps section but no .BTF".into()))?;
        let found =
            btf::maps(btf.data()?).map_err(|e| CheckError::Malformed(format!(".BTF: {e}")))?;
        maps.extend(
            found
                .into_iter()
                .filter_map(|m| Some((m.name, m.map_type?))),
        );
    }
    Ok(maps)
}

fn map_requirement(name: &str, t: u32) -> Requirement {
    match types::map_type(t) {
        Some((tname, since)) => {
            let kind = if t == types::MAP_RINGBUF {
                Kind::Ringbuf
            } else {
                Kind::MapType
            };
            req(kind, format!("map {name} ({tname})"), since)
        }
        None => Requirement {
            kind: Kind::MapType,
            what: format!("map {name} (type {t})"),
            needs: Needs::Unknown,
        },
    }
}

fn helper_requirement(id: i32) -> Requirement {
    match helpers::helper(id) {
        Some((name, since)) => {
            let kind = if helpers::is_ringbuf(id) {
                Kind::Ringbuf
            } else {
                Kind::Helper
            };
            req(kind, format!("bpf_{name} ({id})"), since)
        }
        None => Requirement {
            kind: Kind::Helper,
            what: format!("helper {id} (unknown)"),
            needs: Needs::Unknown,
        },
    }
}

/// Walks a program and the functions it calls.
fn analyze_program(
    codes: &HashMap<object::SectionIndex, Code>,
    section: object::SectionIndex,
    entry: usize,
    reqs: &mut BTreeSet<Requirement>,
) -> usize {
    let mut todo = vec![(section, entry)];
    let mut seen = HashSet::new();
    let mut total = 0usize;
    let mut tail_calls = false;
    let mut bpf_calls = false;
    while let Some((si, start)) = todo.pop() {
        if !seen.insert((si, start)) {
            continue;
        }
        let Some(code) = codes.get(&si) else {
            continue;
        };
        let func = code.function_at(start);
        let body = code
            .insns
            .get(func.start..func.end.max(func.start))
            .unwrap_or(&[]);
        total += body.len();
        let mut pc = 0usize;
        while let Some(&insn) = body.get(pc) {
            let abs = func.start + pc;
            let reloc = code.relocs.get(&abs);
            match insn::call(insn) {
                Some(Call::Helper(id)) => {
                    tail_calls |= id == 12;
                    reqs.insert(helper_requirement(id));
                    let flags = insn::const_reg_before(body, pc, 3);
                    if id == HELPER_PERF_EVENT_OUTPUT
                        && flags.is_some_and(|f| f & 0xffff_ffff == 0xffff_ffff)
                    {
                        // Before 4.8 the index is taken as is: slot 0xffffffff, -E2BIG, every
                        // record dropped while the program loads and runs.
                        reqs.insert(req(
                            Kind::HelperFlag,
                            format!(
                                "{}: bpf_perf_event_output with BPF_F_CURRENT_CPU",
                                func.name
                            ),
                            Version::new(4, 8),
                        ));
                    }
                }
                Some(Call::Kfunc(id)) => {
                    reqs.insert(req(
                        Kind::Kfunc,
                        format!("kfunc (BTF id {id})"),
                        Version::new(5, 13),
                    ));
                }
                Some(Call::Function(imm)) => {
                    bpf_calls = true;
                    let (target_section, base) = match reloc {
                        Some(r) => (r.section, (r.value / INSN_SIZE as u64) as i64),
                        None => (Some(si), abs as i64 + 1),
                    };
                    let target = base + i64::from(imm) + if reloc.is_some() { 1 } else { 0 };
                    let callee = match (target_section, usize::try_from(target)) {
                        (Some(ts), Ok(t)) if codes.get(&ts).is_some_and(|c| t < c.insns.len()) => {
                            todo.push((ts, t));
                            codes
                                .get(&ts)
                                .map(|c| c.function_at(t).name)
                                .unwrap_or_default()
                        }
                        _ => format!("an invalid target ({target})"),
                    };
                    reqs.insert(req(
                        Kind::BpfCall,
                        format!("{} calls {callee}", func.name),
                        Version::new(4, 16),
                    ));
                }
                None => {}
            }
            if let Some(e) = insn::extension(insn) {
                reqs.insert(req(
                    Kind::Cpu,
                    format!("{} ({})", e.mnemonic, e.set),
                    e.since,
                ));
            }
            if let Some(r) = reloc.filter(|r| is_global_data(&r.section_name)) {
                let what = if r.section_symbol || r.symbol.is_empty() {
                    r.section_name.clone()
                } else {
                    format!("{} in {}", r.symbol, r.section_name)
                };
                reqs.insert(req(Kind::GlobalData, what, Version::new(5, 2)));
            }
            pc += insn.width();
        }
        let edges = insn::back_edges(body);
        if let Some(&(from, to)) = edges.first() {
            let more = match edges.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more)"),
            };
            reqs.insert(req(
                Kind::Loop,
                format!("{}: insn {from} jumps back to {to}{more}", func.name),
                Version::new(5, 3),
            ));
        }
    }
    if tail_calls && bpf_calls {
        reqs.insert(req(
            Kind::BpfCall,
            "tail calls mixed with BPF-to-BPF calls",
            Version::new(5, 10),
        ));
    }
    total
}

/// `version` sections that ask for the running kernel's version: redbpf's "any"
/// (0xFFFFFFFE, which the loader replaces) and 0 (what many C objects leave).
const ANY_VERSION: [u32; 2] = [0xFFFF_FFFE, 0];

/// Before 5.0 the kernel loads a kprobe-type program (kprobes and uprobes) only if its
/// kern_version equals LINUX_VERSION_CODE: a `version` section naming one release pins
/// the object to that release (seen on a real 4.19.222, whose code is 4.19.255).
fn kern_version_requirement(section: &str, version: Option<u32>) -> Option<Requirement> {
    let kind = section.split('/').next().unwrap_or_default();
    if !matches!(kind, "kprobe" | "kretprobe" | "uprobe" | "uretprobe") {
        return None;
    }
    let v = version.filter(|v| !ANY_VERSION.contains(v))?;
    let (major, minor, sub) = (v >> 16, (v >> 8) & 0xff, v & 0xff);
    Some(Requirement {
        kind: Kind::KernVersion,
        what: format!(
            "kern_version {major}.{minor}.{sub} fixed in the object's version section (before 5.0 \
             only a kernel whose LINUX_VERSION_CODE is exactly that loads it)"
        ),
        needs: Needs::Since(Version::new(5, 0)),
    })
}

/// Analyses every program of an object (parsing it: see [`crate::object::Object`], which
/// keeps the analysis with the rest of the parsed object).
pub fn analyze(data: &[u8]) -> Result<Vec<ProgramAnalysis>, CheckError> {
    crate::object::Object::parse("", data.to_vec())?.analyses
}

/// libbpf-tools' ring-buffer-or-perf fallback: the BTF ring buffers some program passes
/// to bpf_perf_event_output, and the program sections that check
/// `bpf_core_type_exists(struct bpf_ringbuf)` (none of either without both).
fn ring_fallback(file: &elf::Elf<'_>, maps: &[(String, u32)]) -> (Vec<String>, Vec<String>) {
    let sections = |name| file.section_by_name(name).and_then(|s| s.data().ok());
    let guarded: Vec<String> = match (sections(".BTF"), sections(".BTF.ext")) {
        (Some(btf), Some(ext)) => crate::object::sanitize::core_relocations(btf, ext)
            .unwrap_or_default()
            .into_iter()
            .filter(|r| {
                r.kind == crate::object::sanitize::CORE_TYPE_EXISTS && r.type_name == "bpf_ringbuf"
            })
            .map(|r| r.section)
            .collect(),
        _ => Vec::new(),
    };
    if guarded.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let perf_fed: Vec<String> = elf::output_sizes(file)
        .into_iter()
        .filter(|o| o.helper == elf::HELPER_PERF_EVENT_OUTPUT)
        .map(|o| o.map)
        .collect();
    let rings = maps
        .iter()
        .filter(|(n, t)| *t == types::MAP_RINGBUF && perf_fed.contains(n))
        .map(|(n, _)| n.clone())
        .collect();
    (rings, guarded)
}

/// Analyses every program of a parsed object, `info` being what [`elf::read_info`] read.
pub fn analyze_file(
    file: &elf::Elf<'_>,
    info: &elf::ObjectInfo,
) -> Result<Vec<ProgramAnalysis>, CheckError> {
    let codes = code_sections(file)?;
    let maps = object_maps(file, info)?;
    let (fallback_maps, guarded_sections) = ring_fallback(file, &maps);
    let mut out = Vec::new();
    for p in &info.programs {
        let entry = codes.iter().find_map(|(si, c)| {
            if c.name != p.section {
                return None;
            }
            c.functions
                .iter()
                .find(|f| f.name == p.symbol)
                .map(|f| (*si, f.start))
        });
        let Some((section, start)) = entry else {
            return Err(CheckError::Malformed(format!(
                "program {} not found in section {}",
                p.symbol, p.section
            )));
        };
        let mut reqs = BTreeSet::new();
        let insns = analyze_program(&codes, section, start, &mut reqs);
        if insns > MAX_INSNS_OLD {
            reqs.insert(req(
                Kind::Insns,
                format!("{insns} instructions (more than {MAX_INSNS_OLD})"),
                Version::new(5, 2),
            ));
        }
        if let Some(t) = types::program_type(&p.section) {
            reqs.insert(req(Kind::ProgramType, t.name, t.since));
        }
        if let Some(r) = kern_version_requirement(&p.section, info.version) {
            reqs.insert(r);
        }
        if let crate::section::AttachSpec::Unsupported { kind } = crate::section::parse(&p.section)
        {
            // The kernel may well run it; this loader does not (it would report it
            // unsupported on every kernel), so no release makes it ok.
            reqs.insert(Requirement {
                kind: Kind::ProgramType,
                what: format!("{kind}: a program kind this loader does not run"),
                needs: Needs::Unknown,
            });
        }
        for (name, t) in &maps {
            if fallback_maps.contains(name) {
                let mut r = map_requirement(name, types::MAP_PERF_EVENT_ARRAY);
                r.what = format!("map {name} (ringbuf from 5.8, perf_event_array before)");
                reqs.insert(r);
            } else {
                reqs.insert(map_requirement(name, *t));
            }
        }
        if guarded_sections.contains(&p.section) && !fallback_maps.is_empty() {
            reqs.retain(|r| r.kind != Kind::Ringbuf);
        }
        out.push(ProgramAnalysis {
            program: p.symbol.clone(),
            section: p.section.clone(),
            insns,
            requirements: reqs.into_iter().collect(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        assert_eq!(Version::parse("4.14"), Some(Version::new(4, 14)));
        assert_eq!(Version::parse("4.14.0"), Some(Version::new(4, 14)));
        assert_eq!(Version::parse("5.10.251"), Some(Version::new(5, 10)));
        assert_eq!(Version::parse("6.18.44-fc-v595"), Some(Version::new(6, 18)));
        assert_eq!(Version::parse("4"), None);
        assert_eq!(Version::parse("v4.14"), None);
        assert_eq!(Version::parse(""), None);
        assert!(Version::new(4, 9) < Version::new(4, 14));
        assert!(Version::new(4, 20) < Version::new(5, 0));
        assert_eq!(Version::new(4, 9).to_string(), "4.9");
    }

    #[test]
    fn needs_compare_with_kernels() {
        let k = Version::new(4, 14);
        assert!(!Needs::Since(Version::new(4, 14)).missing_on(k));
        assert!(Needs::Since(Version::new(4, 16)).missing_on(k));
        assert!(Needs::Unknown.missing_on(Version::new(99, 0)));
        assert!(Needs::Since(Version::new(9, 0)) < Needs::Unknown);
    }

    #[test]
    fn global_data_sections() {
        for s in [
            ".data",
            ".rodata",
            ".bss",
            ".rodata.str1.1",
            ".data.counters",
            ".bss.x",
        ] {
            assert!(is_global_data(s), "{s}");
        }
        for s in [".datax", "maps", ".maps", ".text", "license", ".rodatafoo"] {
            assert!(!is_global_data(s), "{s}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(analyze(b"garbage").is_err());
        assert!(analyze(b"\x7fELF\x02\x01\x01 not really").is_err());
    }
}
