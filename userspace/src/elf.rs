//! The BPF object as the loader sees it: programs (function symbol -> ELF section), legacy
//! map definitions, license/version, and the byte-level rewrite that lets aya load
//! redbpf-era objects. Pure: no syscalls.

use object::read::elf::{ElfFile64, FileHeader, SectionHeader};
use object::{Endian, Endianness, Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};

/// Errors reading an object file.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not a parseable 64-bit ELF file.
    #[error("not a valid 64-bit ELF object: {0}")]
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

/// Refuses objects built for another machine (a host object would otherwise be handed to
/// the kernel as BPF code).
fn check_machine(data: &[u8]) -> Result<(), ElfError> {
    let elf = ElfFile64::<Endianness>::parse(data)?;
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
    Ok(())
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

/// Parses an object. Errors on anything aya would panic on (symbols outside their section).
pub fn parse(data: &[u8]) -> Result<ObjectInfo, ElfError> {
    let file = object::File::parse(data)?;
    check_machine(data)?;
    let mut info = ObjectInfo::default();
    for section in file.sections() {
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
            let bytes = section.data()?;
            let start = sym.address() as usize;
            let def = bytes
                .get(start..start + sym.size() as usize)
                .and_then(MapDef::parse)
                .ok_or_else(|| {
                    ElfError::Malformed(format!("map {name} in {sname} is not a bpf_map_def"))
                })?;
            let def_offset = section
                .file_range()
                .and_then(|(off, _)| usize::try_from(off).ok())
                .and_then(|off| off.checked_add(start))
                .filter(|&o| o.checked_add(16).is_some_and(|end| end <= data.len()));
            info.maps.push(MapInfo {
                def_offset,
                name: name.to_owned(),
                section: sname.to_owned(),
                def,
            });
        }
    }
    Ok(info)
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

fn patch_for(name: &str, is_code: bool, keep_btf: bool) -> Option<Patch> {
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
        ".BTF" | ".BTF.ext" if !keep_btf => Some(Patch::Hide),
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

/// Returns a copy of `data` that aya 0.14 accepts: `xdp/<name>` -> `xdp`,
/// `socketfilter/<name>` -> `socket`, `maps.ext` and (unless `.maps` needs it) the
/// object BTF hidden, and program sections of kinds aya does not know turned into data
/// (they are reported as unsupported instead of failing the whole object).
pub fn rewrite_for_aya(data: &[u8], keep_btf: bool) -> Result<Vec<u8>, ElfError> {
    rewrite_for_aya_without(data, keep_btf, &[])
}

/// [`rewrite_for_aya`], with the program sections named in `as_data` also turned into
/// data: aya then neither loads nor relocates them (a program using `.rodata` on a kernel
/// without global data would otherwise fail the whole object in relocation).
pub fn rewrite_for_aya_without(
    data: &[u8],
    keep_btf: bool,
    as_data: &[String],
) -> Result<Vec<u8>, ElfError> {
    let elf = ElfFile64::<Endianness>::parse(data)?;
    let endian = elf.endian();
    let header = elf.elf_header();
    let sections = header.sections(endian, data)?;
    let strtab_index = header.shstrndx(endian, data)?;
    let strtab = sections.section(object::SectionIndex(strtab_index as usize))?;
    let strtab_off = strtab.sh_offset(endian) as usize;
    let strtab_size = strtab.sh_size(endian) as usize;
    let shoff = header.e_shoff(endian) as usize;
    let shentsize = header.e_shentsize(endian) as usize;
    let mut out = data.to_vec();
    let mut renames = Vec::new();
    for (i, sh) in sections.iter().enumerate() {
        let name_bytes = sections.section_name(endian, sh)?;
        let Ok(name) = std::str::from_utf8(name_bytes) else {
            continue;
        };
        let flags = sh.sh_flags(endian);
        let is_code = sh.sh_type(endian) == object::elf::SHT_PROGBITS
            && flags & u64::from(object::elf::SHF_EXECINSTR) != 0
            && sh.sh_size(endian) > 0;
        let patch = if is_code && as_data.iter().any(|d| d == name) {
            Some(Patch::NotCode)
        } else {
            patch_for(name, is_code, keep_btf)
        };
        let Some(patch) = patch else {
            continue;
        };
        let name_off = strtab_off + sh.sh_name(endian) as usize;
        if sh.sh_name(endian) as usize >= strtab_size {
            return Err(ElfError::Malformed(format!(
                "section name of {name} out of range"
            )));
        }
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
                let at = shoff + i * shentsize + 8;
                let new = flags & !u64::from(object::elf::SHF_EXECINSTR);
                let bytes = if endian == Endianness::Little {
                    new.to_le_bytes()
                } else {
                    new.to_be_bytes()
                };
                if let Some(dst) = out.get_mut(at..at + 8) {
                    dst.copy_from_slice(&bytes);
                }
            }
        }
    }
    if !renames.is_empty() {
        // The table moves to the end of the file, grown by the new names; every old offset
        // (section and symbol names) stays valid in the copy, which is taken from `out` so
        // that it keeps the in-place patches above.
        let mut table = out
            .get(strtab_off..strtab_off + strtab_size)
            .ok_or_else(|| ElfError::Malformed("section name table out of range".into()))?
            .to_vec();
        for (i, new) in renames {
            let name_at = u32::try_from(table.len())
                .map_err(|_| ElfError::Malformed("section name table too large".into()))?;
            table.extend_from_slice(new.as_bytes());
            table.push(0);
            put(&mut out, shoff + i * shentsize, &endian.write_u32(name_at))?;
        }
        out.resize(out.len().next_multiple_of(8), 0);
        let table_at = out.len() as u64;
        let table_len = table.len() as u64;
        out.extend_from_slice(&table);
        // sh_offset and sh_size are at 24 and 32 in Elf64_Shdr.
        let hdr = shoff + strtab_index as usize * shentsize;
        put(&mut out, hdr + 24, &endian.write_u64(table_at))?;
        put(&mut out, hdr + 32, &endian.write_u64(table_len))?;
    }
    Ok(out)
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
        assert_eq!(patch_for("xdp/pass", true, false), Some(Patch::Truncate(3)));
        assert_eq!(patch_for("xdp", true, false), None);
        assert_eq!(patch_for("xdp/devmap", true, false), None);
        assert_eq!(
            patch_for("socketfilter/f", true, false),
            Some(Patch::Truncate(6))
        );
        assert_eq!(
            patch_for("tc_action/block", true, false),
            Some(Patch::Rename("classifier"))
        );
        assert_eq!(patch_for("maps.ext", false, false), Some(Patch::Hide));
        assert_eq!(patch_for(".BTF", false, false), Some(Patch::Hide));
        assert_eq!(patch_for(".BTF.ext", false, true), None);
        assert_eq!(
            patch_for("tracepoint/syscalls/sys_enter_execve", true, false),
            None
        );
        assert_eq!(patch_for("kprobe/sys_execve", true, false), None);
        assert_eq!(
            patch_for("streamparser/x", true, false),
            Some(Patch::NotCode)
        );
        assert_eq!(patch_for(".text", true, false), None);
        assert_eq!(patch_for("maps/EVENTS", false, false), None);
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
        assert!(parse(b"not an elf at all").is_err());
        assert!(rewrite_for_aya(b"\x7fELF\x02\x01\x01garbage", false).is_err());
        let mut trunc = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        trunc.resize(80, 0xff);
        assert!(parse(&trunc).is_err());
    }
}
