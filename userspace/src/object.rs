//! The parsed object: the stage between the BPF ELF file and the kernel. One ELF parse
//! ([`elf::open`]) gives everything the later stages need: the programs with their attach
//! specs, the legacy map definitions, the types of records and map entries (DWARF), the
//! checker's analysis (what an older kernel cannot run), and the section layout from which
//! the aya-ready bytes are made for a given kernel. Pure: no syscalls, so every part is
//! unit-tested on fabricated objects without root.

use object::{Object as _, ObjectSection as _};

use crate::check::btf::BtfMap;
use crate::check::{self, CheckError, ProgramAnalysis};
use crate::dwarf::{Type, TypeTable};
use crate::elf::{self, ElfError, Layout, MapInfo, ObjectInfo, OutputSize, ProgramInfo};
use crate::section::{self, AttachSpec};

pub mod sanitize;

/// Why the aya-ready copy of an object could not be made for this kernel.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The ELF itself.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// The object's BTF could not be rewritten (or read).
    #[error("{0}")]
    Btf(String),
    /// A CO-RE relocation only the kernel's own BTF answers, on a kernel without one.
    #[error(
        "section {section}: CO-RE relocation (kind {kind}) of type `{ty}` needs the kernel's \
         BTF (/sys/kernel/btf/vmlinux), which this kernel does not have"
    )]
    NeedsKernelBtf {
        /// The program section.
        section: String,
        /// `BPF_CORE_*`
        kind: u32,
        /// The local type's name.
        ty: String,
    },
}

/// One BPF object, parsed.
#[derive(Debug)]
pub struct Object {
    /// The name messages use: the file stem, or the built-in probe's name.
    pub name: String,
    /// Programs, maps, license, version.
    pub info: ObjectInfo,
    /// Record and map types from the debug info (empty without debug info).
    pub types: TypeTable,
    /// Why the debug info could not be used, when it could not.
    pub types_error: Option<String>,
    /// The checker's per-program analysis (helpers, instructions, global data...).
    pub analyses: Result<Vec<ProgramAnalysis>, CheckError>,
    /// BTF-defined maps (`.maps`): names, types, key and value type names.
    pub btf_maps: Vec<BtfMap>,
    /// Constant record sizes the programs pass with each map to the output helpers.
    pub output_sizes: Vec<OutputSize>,
    /// The bpf_trace_printk calls of each program section, with their formats.
    pub printk_formats: Vec<crate::printk::Format>,
    layout: Layout,
    bytes: Vec<u8>,
}

/// A program left out of its object because it uses global data the kernel lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalDataProgram {
    /// Function symbol.
    pub symbol: String,
    /// ELF section.
    pub section: String,
    /// `.rodata`, `FOO in .data`...
    pub what: String,
}

/// How the aya-ready copy of an object is made for one kernel.
#[derive(Debug, Clone, Default)]
pub struct AyaPlan {
    /// Program sections to turn into data (left out: see [`Object::global_data_programs`]).
    pub as_data: Vec<String>,
    /// Possible CPUs, for perf event arrays defined without max_entries.
    pub ncpus: Option<usize>,
    /// LINUX_VERSION_CODE written where the `version` section says "any" (0xFFFFFFFE).
    pub kern_version: u32,
    /// BTF `.maps` definitions lose their key/value type ids (the kernel takes no BTF).
    pub drop_btf_type_ids: bool,
    /// Whether the kernel has ring buffers, when known: without them, ring buffers the
    /// programs also feed with bpf_perf_event_output become perf event arrays.
    pub ring_buffers: Option<bool>,
    /// No kernel BTF: the loader answers `bpf_core_type_exists(struct bpf_ringbuf)` itself
    /// (with `ring_buffers`) and refuses every other CO-RE relocation.
    pub resolve_core_locally: bool,
    /// The kernel takes BTF function and line info with a program (5.0; 4.20 has only the
    /// first): else `.BTF.ext` is hidden from aya, which would send them and have the load
    /// refused with E2BIG and no log (as on 4.19). CO-RE relocations, also in `.BTF.ext`,
    /// are read from the original bytes.
    pub func_info: bool,
}

impl Object {
    /// Parses `bytes` once. Errors only on what no later stage could use (not a BPF ELF
    /// object, symbols outside their sections); missing debug info or an object the checker
    /// cannot follow are kept as `types_error` and `analyses`.
    pub fn parse(name: impl Into<String>, bytes: Vec<u8>) -> Result<Object, ElfError> {
        let file = elf::open(&bytes)?;
        let info = elf::read_info(&file)?;
        let layout = Layout::read(&file)?;
        let (types, types_error) = match TypeTable::from_file(&file) {
            Ok(t) => (t, None),
            Err(e) => (TypeTable::default(), Some(crate::error_chain(&e))),
        };
        let analyses = check::analyze_file(&file, &info);
        let btf_maps = if info.has_btf_maps {
            file.section_by_name(".BTF")
                .and_then(|s| s.data().ok())
                .and_then(|d| check::btf::maps(d).ok())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let output_sizes = elf::output_sizes(&file);
        let printk_formats = crate::printk::formats(&file);
        drop(file);
        Ok(Object {
            name: name.into(),
            info,
            types,
            types_error,
            analyses,
            btf_maps,
            output_sizes,
            printk_formats,
            layout,
            bytes,
        })
    }

    /// The file's bytes, as read.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Programs in section order, each with where its section says to attach it.
    pub fn programs(&self) -> impl Iterator<Item = (&ProgramInfo, AttachSpec)> {
        self.info
            .programs
            .iter()
            .map(|p| (p, section::parse(&p.section)))
    }

    /// Whether any program is a kprobe or kretprobe (only those resolve kernel symbols).
    pub fn has_kprobes(&self) -> bool {
        self.programs()
            .any(|(_, spec)| matches!(spec, AttachSpec::KProbe { .. }))
    }

    /// The legacy map named `name`.
    pub fn map(&self, name: &str) -> Option<&MapInfo> {
        self.info.maps.iter().find(|m| m.name == name)
    }

    /// The record type of perf or ring buffer map `name`, and where it came from:
    /// `--event-type` first (`override_ty`, a type name), then redbpf's `PerfMap<T>`, then
    /// the one struct of the size every output of the map passes (`sizeof(e)`).
    pub fn record_type(&self, name: &str, override_ty: Option<&str>) -> Option<(Type, String)> {
        if let Some(t) = override_ty.and_then(|t| self.types.named_type(t)) {
            return Some((t, "--event-type".to_owned()));
        }
        if let Some(t) = self.types.perf_record_type(name) {
            return Some((t, "the map's PerfMap<T>".to_owned()));
        }
        let mut sizes = self
            .output_sizes
            .iter()
            .filter(|o| o.map == name)
            .filter_map(|o| o.size);
        let size = sizes.next()?;
        if sizes.any(|s| s != size) {
            return None;
        }
        self.struct_of_size(size).map(|(n, t)| {
            (
                t,
                format!("sizeof(struct {n}) passed with the map to an output helper"),
            )
        })
    }

    /// The one named struct of `size` bytes, if there is exactly one. Map definitions
    /// (the types of the `maps` symbols: `struct bpf_map_def`, iproute2's, goebpf's) and
    /// BPF_ANNOTATE_KV_PAIR holders are no record types and do not count.
    fn struct_of_size(&self, size: u32) -> Option<(String, Type)> {
        let definitions: Vec<String> = self
            .info
            .maps
            .iter()
            .filter_map(|m| match self.types.variable_type(&m.name) {
                Some(Type::Struct { name, .. }) => Some(name),
                _ => None,
            })
            .collect();
        let mut found: Vec<(String, Type)> = self
            .types
            .structs_of_size(size)
            .into_iter()
            .filter(|(n, _)| !n.starts_with("____btf_map_") && !definitions.contains(n))
            .collect();
        (found.len() == 1).then(|| found.remove(0))
    }

    /// Key and value types of hash/array map `name`, each with where it came from: redbpf's
    /// map types or libbpf's BPF_ANNOTATE_KV_PAIR, then a BTF `.maps` definition's
    /// `__type(key/value, ...)`, then, for sizes no integer has, the one struct of that size.
    pub fn kv_types(
        &self,
        name: &str,
        key_size: u32,
        value_size: u32,
    ) -> [Option<(Type, String)>; 2] {
        let (k, v) = self.types.map_kv_types(name);
        let btf = self.btf_maps.iter().find(|m| m.name == name);
        let pick = |annotated: Option<Type>, btf_name: Option<&String>, size: u32| {
            annotated
                .map(|t| (t, "the map's annotation".to_owned()))
                .or_else(|| {
                    let n = btf_name?;
                    let n = n.strip_prefix("struct ").unwrap_or(n);
                    Some((
                        self.types.named_type(n)?,
                        "the BTF map definition".to_owned(),
                    ))
                })
                .or_else(|| {
                    (!matches!(size, 1 | 2 | 4 | 8)).then_some(())?;
                    self.struct_of_size(size)
                        .map(|(n, t)| (t, format!("the one struct of {size} bytes ({n})")))
                })
        };
        [
            pick(k, btf.and_then(|m| m.key.as_ref()), key_size),
            pick(v, btf.and_then(|m| m.value.as_ref()), value_size),
        ]
    }

    /// Whether program `symbol` calls bpf_trace_printk (per the checker's helper list; the
    /// object-wide flag where the checker could not follow the object).
    pub fn calls_printk(&self, symbol: &str) -> bool {
        match &self.analyses {
            Ok(analyses) => analyses.iter().any(|a| {
                a.program == symbol
                    && a.requirements
                        .iter()
                        .any(|r| r.kind == check::Kind::Helper && r.what.ends_with("(6)"))
            }),
            Err(_) => self.info.uses_printk,
        }
    }

    /// The formats program `p` passes to bpf_trace_printk (None for a call whose format the
    /// code does not tell; one None when it calls printk from code outside its section).
    pub fn printk_formats_of(&self, p: &ProgramInfo) -> Vec<Option<String>> {
        let f: Vec<Option<String>> = self
            .printk_formats
            .iter()
            .filter(|f| f.section == p.section)
            .map(|f| f.text.clone())
            .collect();
        if f.is_empty() {
            vec![None]
        } else {
            f
        }
    }

    /// The programs that use `.rodata`/`.data`/`.bss` (per `loader check`'s rule).
    pub fn global_data_programs(&self) -> Vec<GlobalDataProgram> {
        let Ok(analyses) = &self.analyses else {
            return Vec::new();
        };
        analyses
            .iter()
            .filter_map(|a| {
                let what: Vec<&str> = a
                    .requirements
                    .iter()
                    .filter(|r| r.kind == check::Kind::GlobalData)
                    .map(|r| r.what.as_str())
                    .collect();
                (!what.is_empty()).then(|| GlobalDataProgram {
                    symbol: a.program.clone(),
                    section: a.section.clone(),
                    what: what.join(", "),
                })
            })
            .collect()
    }

    /// The copy of the object aya 0.14 loads on the kernel `plan` describes: sections
    /// renamed or hidden ([`elf::rewrite_for_aya`]), perf arrays completed as other
    /// loaders complete them, and the running kernel's version code where the object asks
    /// for it.
    pub fn aya_bytes(&self, plan: &AyaPlan) -> Result<Vec<u8>, PrepareError> {
        let keep_btf = self.info.has_btf_maps;
        // Before 5.0 aya would give the object's BTF to every program (refused): BTF maps
        // are handed over as legacy definitions and the BTF hidden.
        let legacy_maps = keep_btf && !plan.func_info;
        let btf = elf::KeepBtf {
            btf: keep_btf && !legacy_maps,
            ext: keep_btf && !legacy_maps,
            maps_as_legacy: legacy_maps,
        };
        let mut out = elf::rewrite_for_aya(&self.bytes, &self.layout, btf, &plan.as_data)?;
        elf::complete_perf_arrays(&self.info, plan.ncpus, &mut out);
        if let (Some(0xFFFF_FFFE), Some(off)) = (self.info.version, self.info.version_offset) {
            if let Some(dst) = off.checked_add(4).and_then(|end| out.get_mut(off..end)) {
                dst.copy_from_slice(&plan.kern_version.to_le_bytes());
            }
        }
        let edits = self.map_edits(plan);
        if legacy_maps {
            elf::btf_maps_as_legacy(&mut out, &self.layout, &self.legacy_map_defs(plan))?;
        } else if !edits.is_empty() {
            let btf = self
                .section_bytes(".BTF")
                .ok_or_else(|| PrepareError::Btf("a .maps section but no .BTF".to_owned()))?;
            let new = sanitize::rewrite_btf_maps(btf, &edits).map_err(PrepareError::Btf)?;
            elf::replace_section(&mut out, &self.layout, ".BTF", &new)?;
        }
        // aya sees no .BTF.ext with legacy maps: the loader answers CO-RE itself.
        if (plan.resolve_core_locally || legacy_maps) && keep_btf {
            self.resolve_core(plan, &mut out)?;
        }
        Ok(out)
    }

    fn section_bytes(&self, name: &str) -> Option<&[u8]> {
        let (off, size) = self.layout.section_range(name)?;
        self.bytes.get(off..off.checked_add(size)?)
    }

    /// BTF ring buffers that some program also passes to bpf_perf_event_output: the
    /// libbpf-tools fallback pattern (ring buffer on 5.8+, perf event array before).
    pub fn fallback_ring_buffers(&self) -> Vec<&str> {
        self.btf_maps
            .iter()
            .filter(|m| m.map_type == Some(check::types::MAP_RINGBUF))
            .filter(|m| {
                self.output_sizes
                    .iter()
                    .any(|o| o.map == m.name && o.helper == elf::HELPER_PERF_EVENT_OUTPUT)
            })
            .map(|m| m.name.as_str())
            .collect()
    }

    /// The `.maps` definitions `plan` changes.
    /// The BTF-defined maps as legacy definitions, with the edits of [`Self::map_edits`]
    /// applied (ring buffers falling back to perf event arrays) and perf event arrays
    /// completed as libbpf completes them (4-byte keys and values, a slot per CPU).
    fn legacy_map_defs(&self, plan: &AyaPlan) -> Vec<(String, elf::MapDef)> {
        let edits = self.map_edits(plan);
        let ncpus = plan.ncpus.and_then(|n| u32::try_from(n).ok()).unwrap_or(0);
        self.btf_maps
            .iter()
            .map(|m| {
                let to_perf = edits
                    .iter()
                    .any(|e| e.name == m.name && e.to_perf.is_some());
                let map_type = if to_perf {
                    elf::map_type::PERF_EVENT_ARRAY
                } else {
                    m.map_type.unwrap_or(0)
                };
                let perf = map_type == elf::map_type::PERF_EVENT_ARRAY;
                let def = elf::MapDef {
                    map_type,
                    key_size: if perf { 4 } else { m.key_size.unwrap_or(0) },
                    value_size: if perf { 4 } else { m.value_size.unwrap_or(0) },
                    max_entries: match m.max_entries {
                        _ if to_perf => ncpus,
                        Some(0) | None if perf => ncpus,
                        n => n.unwrap_or(0),
                    },
                    flags: m.map_flags.unwrap_or(0),
                };
                (m.name.clone(), def)
            })
            .collect()
    }

    fn map_edits(&self, plan: &AyaPlan) -> Vec<sanitize::MapEdit> {
        let to_perf = plan.ring_buffers == Some(false);
        let fallback = self.fallback_ring_buffers();
        self.btf_maps
            .iter()
            .filter_map(|m| {
                let perf = (to_perf && fallback.contains(&m.name.as_str()))
                    .then(|| plan.ncpus.and_then(|n| u32::try_from(n).ok()).unwrap_or(0));
                let drop = plan.drop_btf_type_ids && (m.key.is_some() || m.value.is_some());
                (perf.is_some() || drop).then(|| sanitize::MapEdit {
                    name: m.name.clone(),
                    drop_type_ids: drop,
                    to_perf: perf,
                })
            })
            .collect()
    }

    /// Answers the CO-RE relocations aya leaves alone without kernel BTF: a ring buffer
    /// existence check gets `plan.ring_buffers`; any other one is an error.
    fn resolve_core(&self, plan: &AyaPlan, out: &mut [u8]) -> Result<(), PrepareError> {
        let (Some(btf), Some(ext)) = (self.section_bytes(".BTF"), self.section_bytes(".BTF.ext"))
        else {
            return Ok(());
        };
        let relos = sanitize::core_relocations(btf, ext).map_err(PrepareError::Btf)?;
        for r in relos {
            if plan.as_data.contains(&r.section) {
                continue; // not loaded
            }
            if r.kind != sanitize::CORE_TYPE_EXISTS || r.type_name != "bpf_ringbuf" {
                return Err(PrepareError::NeedsKernelBtf {
                    section: r.section,
                    kind: r.kind,
                    ty: r.type_name,
                });
            }
            let exists = plan.ring_buffers.unwrap_or(false);
            let (off, _) = self.layout.section_range(&r.section).ok_or_else(|| {
                PrepareError::Btf(format!("CO-RE relocation in missing section {}", r.section))
            })?;
            let at = off.saturating_add(r.insn_off as usize);
            sanitize::patch_imm(out, at, u32::from(exists))
                .map_err(|e| PrepareError::Btf(format!("section {}: {e}", r.section)))?;
        }
        Ok(())
    }

    /// Why map `name` could not be created on kernel `(major, minor)`, when its type is
    /// newer than that kernel (percpu_array on 4.4 fails with EINVAL and nothing else).
    pub fn map_type_hint(&self, name: &str, kernel: (u32, u32)) -> Option<String> {
        let t = match self.map(name) {
            Some(m) => m.def.map_type,
            None => self.btf_maps.iter().find(|m| m.name == name)?.map_type?,
        };
        let (type_name, since) = check::types::map_type(t)?;
        let (major, minor) = kernel;
        (check::Version::new(major, minor) < since).then(|| {
            format!(" ({type_name} maps need Linux {since}; this kernel is {major}.{minor})")
        })
    }
}

#[cfg(test)]
mod tests;
