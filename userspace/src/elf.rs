//! The BPF object as the loader sees it: programs (function symbol -> ELF section), legacy
//! map definitions, license/version, and the byte-level rewrite that lets aya load
//! redbpf-era objects. Pure: no syscalls.

use std::cell::Cell;

use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Endian, Endianness, Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// Errors reading an object file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not a parseable 64-bit ELF file.
    #[error("not a valid 64-bit ELF object")]
    Parse(#[from] object::Error),
    /// A structural problem aya would panic on.
    #[error("malformed object: {0}")]
    Malformed(String),
}

/// `struct bpf_map_def` as laid out in legacy `maps` sections (first 20 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapDef {
    /// `BPF_MAP_TYPE_*`
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes.
    pub value_size: u32,
    /// Maximum number of entries.
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
}

impl MapDef {
    fn parse(b: &[u8]) -> Option<Self> {
        let word = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                b.get(i * 4..i * 4 + 4)?.try_into().ok()?,
            ))
        };
        Some(MapDef {
            map_type: word(0)?,
            key_size: word(1)?,
            value_size: word(2)?,
            max_entries: word(3)?,
            flags: word(4).unwrap_or(0),
        })
    }
}

/// Map type numbers the loader treats specially.
pub mod map_type {
    /// BPF_MAP_TYPE_HASH
    pub const HASH: u32 = 1;
    /// BPF_MAP_TYPE_ARRAY
    pub const ARRAY: u32 = 2;
    /// BPF_MAP_TYPE_PERF_EVENT_ARRAY
    pub const PERF_EVENT_ARRAY: u32 = 4;
    /// BPF_MAP_TYPE_PERCPU_HASH
    pub const PERCPU_HASH: u32 = 5;
    /// BPF_MAP_TYPE_PERCPU_ARRAY
    pub const PERCPU_ARRAY: u32 = 6;
    /// BPF_MAP_TYPE_LRU_HASH
    pub const LRU_HASH: u32 = 9;
    /// BPF_MAP_TYPE_LRU_PERCPU_HASH
    pub const LRU_PERCPU_HASH: u32 = 10;
    /// BPF_MAP_TYPE_STACK_TRACE
    pub const STACK_TRACE: u32 = 7;
    /// BPF_MAP_TYPE_RINGBUF (5.8)
    pub const RINGBUF: u32 = 27;

    /// A short name for JSON output.
    pub fn name(t: u32) -> &'static str {
        match t {
            HASH => "hash",
            ARRAY => "array",
            PERF_EVENT_ARRAY => "perf_event_array",
            PERCPU_HASH => "percpu_hash",
            PERCPU_ARRAY => "percpu_array",
            LRU_HASH => "lru_hash",
            LRU_PERCPU_HASH => "lru_percpu_hash",
            RINGBUF => "ringbuf",
            _ => "other",
        }
    }

    /// Maps whose contents are dumped (`{"type":"map"}`).
    pub fn dumpable(t: u32) -> bool {
        matches!(
            t,
            HASH | ARRAY | PERCPU_HASH | PERCPU_ARRAY | LRU_HASH | LRU_PERCPU_HASH
        )
    }

    /// Per-CPU maps (one value per possible CPU).
    pub fn per_cpu(t: u32) -> bool {
        matches!(t, PERCPU_HASH | PERCPU_ARRAY | LRU_PERCPU_HASH)
    }
}

/// A program: the function symbol aya names it by, and the section that says how to attach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    /// Function symbol (aya's program name), e.g. `outer_execsnoop`.
    pub symbol: String,
    /// ELF section name, e.g. `tracepoint/syscalls/sys_enter_execve`.
    pub section: String,
}

/// A legacy map definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapInfo {
    /// Symbol name (aya's map name), e.g. `EVENTS`.
    pub name: String,
    /// Its section (`maps`, `maps/EVENTS`).
    pub section: String,
    /// The definition.
    pub def: MapDef,
    /// File offset of the definition's first byte (`type`; then key_size, value_size,
    /// max_entries at +4, +8, +12), where it can be told.
    pub def_offset: Option<usize>,
}

/// What the loader knows about one object before handing it to aya.
#[derive(Debug, Clone, Default)]
pub struct ObjectInfo {
    /// Programs, in section order.
    pub programs: Vec<ProgramInfo>,
    /// Legacy maps.
    pub maps: Vec<MapInfo>,
    /// `license` section contents.
    pub license: Option<String>,
    /// `version` section (0xFFFFFFFE = the running kernel).
    pub version: Option<u32>,
    /// File offset of the `version` section's 4 bytes (to write the running kernel's code).
    pub version_offset: Option<usize>,
    /// Whether any code calls `bpf_trace_printk` (helper 6).
    pub uses_printk: bool,
    /// Whether the object has a BTF-defined `.maps` section (then its BTF is kept).
    pub has_btf_maps: bool,
}

impl ObjectInfo {
    /// The program whose function symbol is `symbol`.
    pub fn program_by_symbol(&self, symbol: &str) -> Option<&ProgramInfo> {
        self.programs.iter().find(|p| p.symbol == symbol)
    }
}

/// `e_machine` of BPF objects.
const EM_BPF: u16 = 247;

/// A parsed 64-bit little-endian ELF file (BPF objects are nothing else here).
pub type Elf<'data> = ElfFile64<'data, Endianness>;

/// A section of an [`Elf`].
pub type ElfSection<'data> = object::read::elf::ElfSection64<'data, 'data, Endianness>;

thread_local! {
    /// ELF parses done by [`open`] on this thread: the object stage parses each object
    /// once, and a test holds it to that.
    static PARSES: Cell<usize> = const { Cell::new(0) };
}

/// How many times [`open`] has parsed an ELF file on this thread.
pub fn parse_count() -> usize {
    PARSES.with(Cell::get)
}

/// Parses `data` as a BPF object: a 64-bit ELF file for EM_BPF, little-endian (a host
/// object would otherwise be handed to the kernel as BPF code). The only ELF parse of the
/// loader: everything else reads the returned file.
pub fn open(data: &[u8]) -> Result<Elf<'_>, ElfError> {
    PARSES.with(|n| n.set(n.get() + 1));
    let elf = Elf::parse(data)?;
    let machine = elf.elf_header().e_machine(elf.endian());
    if machine != EM_BPF {
        return Err(ElfError::Malformed(format!(
            "e_machine is {machine}, not EM_BPF (247): not a BPF object"
        )));
    }
    if elf.endian() != Endianness::Little {
        return Err(ElfError::Malformed(
            "big-endian BPF object: this loader runs little-endian (x86_64/arm64) kernels"
                .to_owned(),
        ));
    }
    Ok(elf)
}

const BPF_CALL: u8 = 0x85;
const HELPER_TRACE_PRINTK: i32 = 6;

fn calls_helper(code: &[u8], helper: i32) -> bool {
    code.chunks_exact(8).any(|insn| {
        insn.first() == Some(&BPF_CALL)
            && insn.get(1).is_some_and(|regs| regs >> 4 == 0)
            && insn
                .get(4..8)
                .and_then(|b| b.try_into().ok())
                .map(i32::from_le_bytes)
                == Some(helper)
    })
}

fn is_program_section(name: &str, kind: SectionKind) -> bool {
    kind == SectionKind::Text && !name.starts_with(".text") && !name.is_empty()
}

/// Reads programs, legacy maps, license and version out of a parsed object. Errors on
/// anything aya would panic on (symbols outside their section).
pub fn read_info(file: &Elf<'_>) -> Result<ObjectInfo, ElfError> {
    let mut info = ObjectInfo::default();
    for section in file.sections() {
        read_special_section(&section, &mut info)?;
    }
    for sym in file.symbols() {
        let Some(idx) = sym.section_index() else {
            continue;
        };
        let section = file.section_by_index(idx)?;
        let sname = section.name().unwrap_or("");
        let name = sym.name().unwrap_or("");
        let in_range = sym
            .address()
            .checked_add(sym.size())
            .is_some_and(|end| end <= section.size());
        if sym.kind() == SymbolKind::Text
            && !name.is_empty()
            && is_program_section(sname, section.kind())
        {
            if !in_range {
                return Err(ElfError::Malformed(format!(
                    "program symbol {name} lies outside section {sname}"
                )));
            }
            info.programs.push(ProgramInfo {
                symbol: name.to_owned(),
                section: sname.to_owned(),
            });
        } else if sname.starts_with("maps")
            && sname != "maps.ext"
            && !name.is_empty()
            && sym.kind() != SymbolKind::Section
        {
            if !in_range {
                return Err(ElfError::Malformed(format!(
                    "map symbol {name} lies outside section {sname}"
                )));
            }
            info.maps.push(read_map_def(file, &section, &sym)?);
        }
    }
    Ok(info)
}

/// `license`, `version`, `.maps` and printk calls in code.
fn read_special_section(section: &ElfSection<'_>, info: &mut ObjectInfo) -> Result<(), ElfError> {
    let name = section.name().unwrap_or("");
    let sdata = section.data()?;
    if name == "license" {
        let end = sdata.iter().position(|&b| b == 0).unwrap_or(sdata.len());
        info.license = Some(String::from_utf8_lossy(sdata.get(..end).unwrap_or(&[])).into());
    } else if name == "version" {
        info.version = sdata
            .get(0..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes);
        info.version_offset = section
            .file_range()
            .filter(|&(_, size)| size >= 4)
            .and_then(|(off, _)| usize::try_from(off).ok());
    } else if name == ".maps" {
        info.has_btf_maps = true;
    }
    if section.kind() == SectionKind::Text && calls_helper(sdata, HELPER_TRACE_PRINTK) {
        info.uses_printk = true;
    }
    Ok(())
}

/// The legacy definition `sym` names in its `maps*` section.
fn read_map_def(
    file: &Elf<'_>,
    section: &ElfSection<'_>,
    sym: &object::read::elf::ElfSymbol64<'_, '_, Endianness>,
) -> Result<MapInfo, ElfError> {
    let sname = section.name().unwrap_or("");
    let name = sym.name().unwrap_or("");
    let bytes = section.data()?;
    let start = sym.address() as usize;
    let def = bytes
        .get(start..start.saturating_add(sym.size() as usize))
        .and_then(MapDef::parse)
        .ok_or_else(|| {
            ElfError::Malformed(format!("map {name} in {sname} is not a bpf_map_def"))
        })?;
    let file_len = file.data().len();
    let def_offset = section
        .file_range()
        .and_then(|(off, _)| usize::try_from(off).ok())
        .and_then(|off| off.checked_add(start))
        .filter(|&o| o.checked_add(16).is_some_and(|end| end <= file_len));
    Ok(MapInfo {
        def_offset,
        name: name.to_owned(),
        section: sname.to_owned(),
        def,
    })
}

/// A record size a program passes with a map to an output helper: what tells the type
/// of C records that no annotation names (`bpf_perf_event_output(ctx, &events, flags, &e,
/// sizeof(e))`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSize {
    /// The map symbol (`events`).
    pub map: String,
    /// The constant size argument, when it is one.
    pub size: Option<u32>,
    /// The helper: 25 perf_event_output, 130 ringbuf_output, 131 ringbuf_reserve.
    pub helper: i32,
}

/// `BPF_FUNC_perf_event_output`.
pub const HELPER_PERF_EVENT_OUTPUT: i32 = 25;

/// `(helper id, register holding the map, register holding the size)` of the output
/// helpers: perf_event_output, ringbuf_output, ringbuf_reserve.
const OUTPUT_HELPERS: [(i32, usize, usize); 3] = [(25, 2, 5), (130, 1, 3), (131, 1, 2)];

/// Every (map, size) pair passed to an output helper, found by following the argument
/// registers through the straight-line code before each call: `r5 = 24` and `r2 = <map
/// events>` (a relocated 64-bit load), through register moves. Sizes computed at run time
/// are None.
pub fn output_sizes(file: &Elf<'_>) -> Vec<OutputSize> {
    let mut out = Vec::new();
    for section in file.sections() {
        if section.kind() != SectionKind::Text {
            continue;
        }
        let Ok(code) = section.data() else { continue };
        let mut relocated = std::collections::HashMap::new();
        for (offset, reloc) in section.relocations() {
            if let object::RelocationTarget::Symbol(si) = reloc.target() {
                if let Ok(sym) = file.symbol_by_index(si) {
                    relocated.insert(offset, sym.name().unwrap_or("").to_owned());
                }
            }
        }
        scan_outputs(code, &relocated, &mut out);
    }
    out.sort_by(|a, b| (&a.map, a.size, a.helper).cmp(&(&b.map, b.size, b.helper)));
    out.dedup();
    out
}

/// [`output_sizes`] over one section's instructions.
fn scan_outputs(
    code: &[u8],
    relocated: &std::collections::HashMap<u64, String>,
    out: &mut Vec<OutputSize>,
) {
    let mut consts: [Option<i64>; 11] = [None; 11];
    let mut maps: [Option<&str>; 11] = Default::default();
    let mut at = 0usize;
    while let Some(insn) = code.get(at..at + 8) {
        let (op, dst, src) = (
            insn[0],
            usize::from(insn[1] & 0xf),
            usize::from(insn[1] >> 4),
        );
        let imm = i64::from(i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]));
        let (dst, src) = (dst.min(10), src.min(10));
        match op {
            0xb7 => (consts[dst], maps[dst]) = (Some(imm), None), // r = imm
            0xbf => (consts[dst], maps[dst]) = (consts[src], maps[src]), // r = r
            0x18 => {
                // r = imm64: a map when relocated to one.
                maps[dst] = relocated.get(&(at as u64)).map(String::as_str);
                consts[dst] = None;
                at += 8;
            }
            0x85 if src == 0 => {
                if let Some(&(_, m, n)) = OUTPUT_HELPERS.iter().find(|h| i64::from(h.0) == imm) {
                    if let Some(map) = maps[m] {
                        out.push(OutputSize {
                            map: map.to_owned(),
                            size: consts[n].and_then(|s| u32::try_from(s).ok()),
                            helper: imm as i32,
                        });
                    }
                }
                for r in 0..=5 {
                    (consts[r], maps[r]) = (None, None);
                }
            }
            // Other ALU and loads write their destination; stores and jumps write none.
            _ if matches!(op & 7, 0 | 1 | 4 | 7) => (consts[dst], maps[dst]) = (None, None),
            _ => {}
        }
        at += 8;
    }
}

/// Whether aya 0.14 parses this program section name itself.
pub fn aya_knows_section(section: &str) -> bool {
    let mut parts = section.split('/');
    let kind = parts.next().unwrap_or("");
    match kind {
        "kprobe" | "kretprobe" | "uprobe" | "uretprobe" | "tracepoint" | "tp" | "raw_tp"
        | "raw_tracepoint" | "socket" | "perf_event" | "sk_msg" | "sockops" | "classifier"
        | "lsm" | "fentry" | "fexit" | "sk_lookup" => true,
        "xdp" => matches!(parts.next(), None | Some("cpumap") | Some("devmap")),
        _ => false,
    }
}

/// How one section name is rewritten for aya.
#[derive(Debug, PartialEq, Eq)]
enum Patch {
    /// Write a NUL at this byte of the name (truncating it).
    Truncate(usize),
    /// Replace the first byte (hiding the section from aya's name matching).
    Hide,
    /// Clear SHF_EXECINSTR: aya then ignores the section (program kinds aya cannot parse).
    NotCode,
    /// Give the section another name, appended to a grown copy of the section name table
    /// (writing over the old name could clobber a symbol name sharing its tail).
    Rename(&'static str),
}

/// Which BTF sections aya sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepBtf {
    /// `.BTF` (needed for BTF-defined `.maps`)
    pub btf: bool,
    /// `.BTF.ext` (function/line info and CO-RE relocations)
    pub ext: bool,
    /// `.maps` renamed `maps`: its definitions are rewritten as legacy ones
    /// ([`btf_maps_as_legacy`]).
    pub maps_as_legacy: bool,
}

fn patch_for(name: &str, is_code: bool, keep: KeepBtf) -> Option<Patch> {
    if is_code && !name.starts_with(".text") {
        if name.starts_with("xdp/") && !aya_knows_section(name) {
            return Some(Patch::Truncate(3));
        }
        if name == "socketfilter" || name.starts_with("socketfilter/") {
            return Some(Patch::Truncate(6));
        }
        // redbpf's TC programs are direct-action classifiers: aya's `classifier`.
        if name.starts_with("tc_action/") {
            return Some(Patch::Rename("classifier"));
        }
        if !aya_knows_section(name) && name != "xdp" {
            return Some(Patch::NotCode);
        }
        return None;
    }
    match name {
        "maps.ext" => Some(Patch::Hide),
        ".maps" if keep.maps_as_legacy => Some(Patch::Rename("maps")),
        // BPF_ANNOTATE_KV_PAIR's `.maps.<name>` holders: type annotations, not maps (aya
        // would read them as BTF-defined maps).
        n if n.starts_with(".maps.") => Some(Patch::Hide),
        ".BTF" if !keep.btf => Some(Patch::Hide),
        ".BTF.ext" if !keep.ext => Some(Patch::Hide),
        _ => None,
    }
}

/// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
const PERF_EVENT_ARRAY: u32 = 4;

/// Fills in what goebpf, cilium/ebpf and libbpf fill in for a perf event array whose
/// definition leaves it out (goebpf's execsnoop gives only the type and max_entries): key
/// and value size 4 (the kernel takes nothing else), and max_entries the possible CPUs
/// when 0. Patches `out` (the aya-ready copy, same offsets as the input); returns the
/// names of the maps completed.
pub fn complete_perf_arrays(
    info: &ObjectInfo,
    ncpus: Option<usize>,
    out: &mut [u8],
) -> Vec<String> {
    let mut done = Vec::new();
    for m in &info.maps {
        let (Some(off), true) = (m.def_offset, m.def.map_type == PERF_EVENT_ARRAY) else {
            continue;
        };
        let mut put = |at: usize, v: u32| {
            if let Some(dst) = out.get_mut(off + at..off + at + 4) {
                dst.copy_from_slice(&v.to_le_bytes());
            }
        };
        let mut changed = false;
        if m.def.key_size == 0 {
            put(4, 4);
            changed = true;
        }
        if m.def.value_size == 0 {
            put(8, 4);
            changed = true;
        }
        if m.def.max_entries == 0 {
            if let Some(n) = ncpus.and_then(|n| u32::try_from(n).ok()) {
                put(12, n);
                changed = true;
            }
        }
        if changed {
            done.push(m.name.clone());
        }
    }
    done
}

/// One section header, as the aya rewrite needs it.
#[derive(Debug, Clone)]
struct SectionFacts {
    /// Its name, when UTF-8.
    name: Option<String>,
    /// `sh_name`: offset of the name in the section name table.
    name_offset: u32,
    /// `sh_flags`.
    flags: u64,
    /// Non-empty PROGBITS with SHF_EXECINSTR.
    is_code: bool,
    /// `sh_offset` and `sh_size`.
    file_offset: u64,
    size: u64,
}

/// Where the section headers and their names sit in the file: what [`rewrite_for_aya`]
/// patches, read once at parse time (the rewrite then needs no second parse).
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// `e_shoff`
    shoff: usize,
    /// `e_shentsize`
    shentsize: usize,
    /// `e_shstrndx`
    strtab_index: usize,
    /// File offset and size of the section name table.
    strtab_off: usize,
    strtab_size: usize,
    sections: Vec<SectionFacts>,
    /// The symbols defined in `.maps` (BTF-defined maps), for [`btf_maps_as_legacy`].
    btf_map_symbols: Vec<MapSymbol>,
}

/// A symbol of a BTF-defined map: its name and where its `Elf64_Sym` sits in the file.
#[derive(Debug, Clone, Default)]
struct MapSymbol {
    name: String,
    entry: usize,
}

impl Layout {
    /// Reads the section header layout of a parsed object.
    pub fn read(elf: &Elf<'_>) -> Result<Layout, ElfError> {
        let endian = elf.endian();
        let header = elf.elf_header();
        let data = elf.data();
        let table = elf.elf_section_table();
        let strtab_index = header.shstrndx(endian, data)? as usize;
        let strtab = table.section(object::SectionIndex(strtab_index))?;
        let mut sections = Vec::new();
        for sh in table.iter() {
            let flags = sh.sh_flags(endian);
            sections.push(SectionFacts {
                name: table
                    .section_name(endian, sh)
                    .ok()
                    .and_then(|n| std::str::from_utf8(n).ok())
                    .map(str::to_owned),
                name_offset: sh.sh_name(endian),
                flags,
                is_code: sh.sh_type(endian) == object::elf::SHT_PROGBITS
                    && flags & u64::from(object::elf::SHF_EXECINSTR) != 0
                    && sh.sh_size(endian) > 0,
                file_offset: sh.sh_offset(endian),
                size: sh.sh_size(endian),
            });
        }
        Ok(Layout {
            shoff: header.e_shoff(endian) as usize,
            shentsize: header.e_shentsize(endian) as usize,
            strtab_index,
            strtab_off: strtab.sh_offset(endian) as usize,
            strtab_size: strtab.sh_size(endian) as usize,
            btf_map_symbols: btf_map_symbols(elf, &sections),
            sections,
        })
    }
}

/// The symbols of section `.maps` with the file offsets of their symbol table entries.
fn btf_map_symbols(elf: &Elf<'_>, sections: &[SectionFacts]) -> Vec<MapSymbol> {
    let endian = elf.endian();
    let Some(maps) = sections
        .iter()
        .position(|s| s.name.as_deref() == Some(".maps"))
    else {
        return Vec::new();
    };
    let table = elf.elf_section_table();
    let Some(symtab) = table
        .iter()
        .find(|sh| sh.sh_type(endian) == object::elf::SHT_SYMTAB)
    else {
        return Vec::new();
    };
    let (off, entsize) = (
        symtab.sh_offset(endian) as usize,
        symtab.sh_entsize(endian) as usize,
    );
    elf.symbols()
        .filter(|sym| sym.section_index().map(|i| i.0) == Some(maps))
        .filter_map(|sym| {
            Some(MapSymbol {
                name: sym.name().ok()?.to_owned(),
                entry: off.checked_add(sym.index().0.checked_mul(entsize)?)?,
            })
        })
        .collect()
}

/// aya 0.14's legacy `bpf_map_def`: type, key_size, value_size, max_entries, map_flags,
/// id, pinning.
const AYA_MAP_DEF: usize = 28;

/// Turns the BTF-defined maps of `out` into legacy ones, for kernels that take no BTF with
/// programs (before 5.0; aya would hand the object's BTF to every program, which 4.19
/// refuses with E2BIG): `.maps` becomes a `maps` section of `defs` (one aya `bpf_map_def`
/// per map, in `defs`' order, written at the end of the file), each map's symbol points at
/// its own. The caller hides `.BTF`, so aya creates the maps from these alone.
pub fn btf_maps_as_legacy(
    out: &mut Vec<u8>,
    layout: &Layout,
    defs: &[(String, MapDef)],
) -> Result<(), ElfError> {
    let mut section = Vec::with_capacity(defs.len() * AYA_MAP_DEF);
    let endian = Endianness::Little;
    for (i, (name, d)) in defs.iter().enumerate() {
        let sym = layout
            .btf_map_symbols
            .iter()
            .find(|s| &s.name == name)
            .ok_or_else(|| ElfError::Malformed(format!("no symbol for map {name} in .maps")))?;
        for v in [
            d.map_type,
            d.key_size,
            d.value_size,
            d.max_entries,
            d.flags,
            0,
            0,
        ] {
            section.extend_from_slice(&v.to_le_bytes());
        }
        // st_value and st_size are at 8 and 16 in Elf64_Sym.
        put(
            out,
            sym.entry + 8,
            &endian.write_u64((i * AYA_MAP_DEF) as u64),
        )?;
        put(out, sym.entry + 16, &endian.write_u64(AYA_MAP_DEF as u64))?;
    }
    replace_section(out, layout, ".maps", &section)
}

impl Layout {
    /// File offset and size of the first section named `name`.
    pub fn section_range(&self, name: &str) -> Option<(usize, usize)> {
        let s = self
            .sections
            .iter()
            .find(|s| s.name.as_deref() == Some(name))?;
        Some((
            usize::try_from(s.file_offset).ok()?,
            usize::try_from(s.size).ok()?,
        ))
    }
}

/// Gives section `name` of `out` (a copy of the object `layout` was read from) new
/// contents: written at the end of the file, the section header pointed at them.
pub fn replace_section(
    out: &mut Vec<u8>,
    layout: &Layout,
    name: &str,
    bytes: &[u8],
) -> Result<(), ElfError> {
    let index = layout
        .sections
        .iter()
        .position(|s| s.name.as_deref() == Some(name))
        .ok_or_else(|| ElfError::Malformed(format!("no section {name}")))?;
    out.resize(out.len().next_multiple_of(8), 0);
    let at = out.len() as u64;
    out.extend_from_slice(bytes);
    let endian = Endianness::Little;
    let hdr = layout.shoff + index * layout.shentsize;
    put(out, hdr + 24, &endian.write_u64(at))?;
    put(out, hdr + 32, &endian.write_u64(bytes.len() as u64))?;
    Ok(())
}

/// Returns a copy of `data` (the little-endian object `layout` was read from) that aya
/// 0.14 accepts: `xdp/<name>` -> `xdp`, `socketfilter/<name>` -> `socket`, `maps.ext`
/// and (unless `.maps` needs it) the object BTF hidden, and program sections of kinds aya
/// does not know turned into data (they are reported as unsupported instead of failing
/// the whole object). The program sections named in `as_data` are turned into data too:
/// aya then neither loads nor relocates them (a program using `.rodata` on a kernel
/// without global data would otherwise fail the whole object in relocation).
pub fn rewrite_for_aya(
    data: &[u8],
    layout: &Layout,
    keep_btf: KeepBtf,
    as_data: &[String],
) -> Result<Vec<u8>, ElfError> {
    let endian = Endianness::Little;
    let mut out = data.to_vec();
    let mut renames = Vec::new();
    for (i, sh) in layout.sections.iter().enumerate() {
        let Some(name) = sh.name.as_deref() else {
            continue;
        };
        let patch = if sh.is_code && as_data.iter().any(|d| d == name) {
            Some(Patch::NotCode)
        } else {
            patch_for(name, sh.is_code, keep_btf)
        };
        let Some(patch) = patch else {
            continue;
        };
        if sh.name_offset as usize >= layout.strtab_size {
            return Err(ElfError::Malformed(format!(
                "section name of {name} out of range"
            )));
        }
        let name_off = layout.strtab_off + sh.name_offset as usize;
        match patch {
            Patch::Truncate(at) => {
                if let Some(b) = out.get_mut(name_off + at) {
                    *b = 0;
                }
            }
            Patch::Rename(new) => renames.push((i, new)),
            Patch::Hide => {
                if let Some(b) = out.get_mut(name_off) {
                    *b = b'_';
                }
            }
            Patch::NotCode => {
                // sh_flags is at offset 8 in Elf64_Shdr.
                let at = layout.shoff + i * layout.shentsize + 8;
                let new = sh.flags & !u64::from(object::elf::SHF_EXECINSTR);
                put(&mut out, at, &new.to_le_bytes())?;
            }
        }
    }
    if !renames.is_empty() {
        rename_sections(&mut out, layout, &renames, endian)?;
    }
    Ok(out)
}

/// Gives sections new names: the section name table moves to the end of the file, grown
/// by the new names; every old offset (section and symbol names) stays valid in the copy,
/// which is taken from `out` so that it keeps the in-place patches already made.
fn rename_sections(
    out: &mut Vec<u8>,
    layout: &Layout,
    renames: &[(usize, &str)],
    endian: Endianness,
) -> Result<(), ElfError> {
    let (off, size) = (layout.strtab_off, layout.strtab_size);
    let mut table = out
        .get(off..off.saturating_add(size))
        .ok_or_else(|| ElfError::Malformed("section name table out of range".into()))?
        .to_vec();
    for &(i, new) in renames {
        let name_at = u32::try_from(table.len())
            .map_err(|_| ElfError::Malformed("section name table too large".into()))?;
        table.extend_from_slice(new.as_bytes());
        table.push(0);
        put(
            out,
            layout.shoff + i * layout.shentsize,
            &endian.write_u32(name_at),
        )?;
    }
    out.resize(out.len().next_multiple_of(8), 0);
    let table_at = out.len() as u64;
    let table_len = table.len() as u64;
    out.extend_from_slice(&table);
    // sh_offset and sh_size are at 24 and 32 in Elf64_Shdr.
    let hdr = layout.shoff + layout.strtab_index * layout.shentsize;
    put(out, hdr + 24, &endian.write_u64(table_at))?;
    put(out, hdr + 32, &endian.write_u64(table_len))?;
    Ok(())
}

/// Overwrites `out[at..at + bytes.len()]`.
fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), ElfError> {
    out.get_mut(at..at.saturating_add(bytes.len()))
        .ok_or_else(|| ElfError::Malformed(format!("section header at {at} out of range")))?
        .copy_from_slice(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redbpf_sections_get_patched_and_known_ones_do_not() {
        const NONE: KeepBtf = KeepBtf {
            btf: false,
            ext: false,
            maps_as_legacy: false,
        };
        const ALL: KeepBtf = KeepBtf {
            btf: true,
            ext: true,
            maps_as_legacy: false,
        };
        assert_eq!(patch_for("xdp/pass", true, NONE), Some(Patch::Truncate(3)));
        assert_eq!(patch_for("xdp", true, NONE), None);
        assert_eq!(patch_for("xdp/devmap", true, NONE), None);
        assert_eq!(
            patch_for("socketfilter/f", true, NONE),
            Some(Patch::Truncate(6))
        );
        assert_eq!(
            patch_for("tc_action/block", true, NONE),
            Some(Patch::Rename("classifier"))
        );
        assert_eq!(patch_for("maps.ext", false, NONE), Some(Patch::Hide));
        assert_eq!(patch_for(".maps.counts", false, NONE), Some(Patch::Hide));
        assert_eq!(patch_for(".maps", false, ALL), None);
        assert_eq!(patch_for(".BTF", false, NONE), Some(Patch::Hide));
        assert_eq!(patch_for(".BTF.ext", false, ALL), None);
        let legacy = KeepBtf {
            maps_as_legacy: true,
            ..NONE
        };
        assert_eq!(patch_for(".BTF", false, legacy), Some(Patch::Hide));
        assert_eq!(patch_for(".BTF.ext", false, legacy), Some(Patch::Hide));
        assert_eq!(
            patch_for(".maps", false, legacy),
            Some(Patch::Rename("maps"))
        );
        assert_eq!(
            patch_for("tracepoint/syscalls/sys_enter_execve", true, NONE),
            None
        );
        assert_eq!(patch_for("kprobe/sys_execve", true, NONE), None);
        assert_eq!(
            patch_for("streamparser/x", true, NONE),
            Some(Patch::NotCode)
        );
        assert_eq!(patch_for(".text", true, NONE), None);
        assert_eq!(patch_for("maps/EVENTS", false, NONE), None);
    }

    #[test]
    fn printk_calls_are_found() {
        let mut insn = [0u8; 16];
        insn[8] = BPF_CALL;
        insn[12..16].copy_from_slice(&6i32.to_le_bytes());
        assert!(calls_helper(&insn, 6));
        assert!(!calls_helper(&insn, 25));
        insn[9] = 0x10; // src_reg 1: a BPF-to-BPF call, not a helper
        assert!(!calls_helper(&insn, 6));
    }

    #[test]
    fn map_def_parses_20_bytes_and_rejects_short() {
        let mut b = Vec::new();
        for v in [4u32, 4, 4, 128, 0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        assert_eq!(
            MapDef::parse(&b),
            Some(MapDef {
                map_type: 4,
                key_size: 4,
                value_size: 4,
                max_entries: 128,
                flags: 0
            })
        );
        assert_eq!(MapDef::parse(&b[..12]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(open(b"not an elf at all").is_err());
        assert!(open(b"\x7fELF\x02\x01\x01garbage").is_err());
        let mut trunc = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        trunc.resize(80, 0xff);
        assert!(open(&trunc).is_err());
    }
}
