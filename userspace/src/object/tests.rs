//! The parse stage on objects fabricated here with `object::write` (no root, no files).

use object::write::{self, Relocation, SectionId, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, ObjectSection as _, RelocationFlags, SectionKind,
    SymbolFlags, SymbolKind, SymbolScope,
};

use super::*;
use crate::elf::map_type;

const MOV_R0_0: [u8; 8] = [0xb7, 0, 0, 0, 0, 0, 0, 0];
const EXIT: [u8; 8] = [0x95, 0, 0, 0, 0, 0, 0, 0];
const CALL_PRINTK: [u8; 8] = [0x85, 0, 0, 0, 6, 0, 0, 0];
/// `r1 = <64-bit immediate>` (two slots), relocated to a map or a data section.
const LD_IMM64_R1: [u8; 16] = [0x18, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn writer(arch: Architecture) -> write::Object<'static> {
    write::Object::new(BinaryFormat::Elf, arch, Endianness::Little)
}

fn program(w: &mut write::Object<'_>, section: &str, symbol: &str, code: &[u8]) -> SectionId {
    let id = w.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Text);
    w.append_section_data(id, code, 8);
    w.add_symbol(Symbol {
        name: symbol.as_bytes().to_vec(),
        value: 0,
        size: code.len() as u64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(id),
        flags: SymbolFlags::None,
    });
    id
}

fn data(w: &mut write::Object<'_>, section: &str, bytes: &[u8]) -> SectionId {
    let id = w.add_section(Vec::new(), section.as_bytes().to_vec(), SectionKind::Data);
    w.append_section_data(id, bytes, 4);
    id
}

/// A legacy map definition `[type, key, value, max_entries, flags]` named `name`.
fn map(w: &mut write::Object<'_>, section: &str, name: &str, def: [u32; 5]) {
    let bytes: Vec<u8> = def.iter().flat_map(|v| v.to_le_bytes()).collect();
    let id = data(w, section, &bytes);
    w.add_symbol(Symbol {
        name: name.as_bytes().to_vec(),
        value: 0,
        size: bytes.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(id),
        flags: SymbolFlags::None,
    });
}

/// goebpf's execsnoop shape: a tracepoint program calling printk, a perf array defined
/// without sizes, GPL, and redbpf's "any kernel" version.
fn tracepoint_object() -> Vec<u8> {
    let mut w = writer(Architecture::Bpf);
    let code = [CALL_PRINTK, MOV_R0_0, EXIT].concat();
    program(
        &mut w,
        "tracepoint/syscalls/sys_enter_execve",
        "on_exec",
        &code,
    );
    map(
        &mut w,
        "maps/events",
        "events",
        [map_type::PERF_EVENT_ARRAY, 0, 0, 0, 0],
    );
    map(
        &mut w,
        "maps",
        "counts",
        [map_type::PERCPU_ARRAY, 4, 8, 1, 0],
    );
    data(&mut w, "license", b"GPL\0");
    data(&mut w, "version", &0xFFFF_FFFEu32.to_le_bytes());
    w.write().unwrap()
}

fn section_named<'a>(file: &'a elf::Elf<'a>, name: &str) -> Option<elf::ElfSection<'a>> {
    use object::Object as _;
    file.section_by_name(name)
}

#[test]
fn one_parse_gives_programs_maps_license_version_and_types() {
    let bytes = tracepoint_object();
    let before = elf::parse_count();
    let obj = Object::parse("fab", bytes).unwrap();
    // Everything the later stages ask of it, with no second parse.
    let plan = AyaPlan {
        as_data: obj
            .global_data_programs()
            .into_iter()
            .map(|g| g.section)
            .collect(),
        ncpus: Some(3),
        kern_version: 0x040f12,
        ..AyaPlan::default()
    };
    obj.aya_bytes(&plan).unwrap();
    assert!(!obj.has_kprobes());
    assert_eq!(obj.record_type("events", None), None);
    assert!(obj.map_type_hint("counts", (4, 4)).is_some());
    assert_eq!(
        elf::parse_count() - before,
        1,
        "the object was parsed more than once"
    );

    assert_eq!(obj.name, "fab");
    let progs: Vec<_> = obj.programs().collect();
    assert_eq!(progs.len(), 1);
    assert_eq!(progs[0].0.symbol, "on_exec");
    assert_eq!(
        progs[0].1,
        AttachSpec::TracePoint {
            category: Some("syscalls".into()),
            name: "sys_enter_execve".into()
        }
    );
    assert_eq!(obj.info.license.as_deref(), Some("GPL"));
    assert_eq!(obj.info.version, Some(0xFFFF_FFFE));
    assert!(obj.info.uses_printk);
    assert!(!obj.info.has_btf_maps);
    let events = obj.map("events").unwrap();
    assert_eq!(events.section, "maps/events");
    assert_eq!(events.def.map_type, map_type::PERF_EVENT_ARRAY);
    assert_eq!(obj.map("counts").unwrap().def.value_size, 8);
    assert_eq!(
        obj.types_error, None,
        "no debug info is an empty table, not an error"
    );
    let analyses = obj.analyses.as_ref().unwrap();
    assert_eq!(analyses.len(), 1);
    assert_eq!(analyses[0].insns, 3);
}

#[test]
fn aya_bytes_complete_perf_arrays_and_write_the_version_code() {
    let obj = Object::parse("fab", tracepoint_object()).unwrap();
    let plan = AyaPlan {
        ncpus: Some(6),
        kern_version: 0x040f12,
        ..AyaPlan::default()
    };
    let out = obj.aya_bytes(&plan).unwrap();
    let again = Object::parse("out", out).unwrap();
    let events = again.map("events").unwrap().def;
    assert_eq!(
        (events.key_size, events.value_size, events.max_entries),
        (4, 4, 6)
    );
    // Not a perf array: untouched.
    assert_eq!(
        again.map("counts").unwrap().def,
        obj.map("counts").unwrap().def
    );
    assert_eq!(again.info.version, Some(0x040f12));
    // Unknown CPU count: max_entries stays 0 (the kernel then refuses it, named).
    let plan = AyaPlan {
        ncpus: None,
        ..plan
    };
    let again = Object::parse("out", obj.aya_bytes(&plan).unwrap()).unwrap();
    assert_eq!(again.map("events").unwrap().def.max_entries, 0);
}

#[test]
fn redbpf_sections_are_renamed_and_unknown_kinds_become_data() {
    let mut w = writer(Architecture::Bpf);
    let code = [MOV_R0_0, EXIT].concat();
    program(&mut w, "xdp/pass", "pass", &code);
    program(&mut w, "socketfilter/count", "count", &code);
    program(&mut w, "tc_action/block", "block", &code);
    program(&mut w, "streamparser/parse", "parse", &code);
    program(&mut w, "kprobe/do_sys_open", "open", &code);
    data(&mut w, "license", b"GPL\0");
    let obj = Object::parse("fab", w.write().unwrap()).unwrap();
    assert!(obj.has_kprobes());
    let out = obj.aya_bytes(&AyaPlan::default()).unwrap();
    let file = elf::open(&out).unwrap();
    for name in ["xdp", "socket", "classifier", "kprobe/do_sys_open"] {
        let s = section_named(&file, name).unwrap_or_else(|| panic!("no section {name}"));
        assert_eq!(s.kind(), SectionKind::Text, "{name}");
    }
    let parse = section_named(&file, "streamparser/parse").unwrap();
    assert_ne!(
        parse.kind(),
        SectionKind::Text,
        "aya would fail the object on it"
    );
    // The symbols still name their programs.
    let info = elf::read_info(&file).unwrap();
    let syms: Vec<_> = info.programs.iter().map(|p| p.symbol.as_str()).collect();
    assert_eq!(syms, ["pass", "count", "block", "open"]);
}

#[test]
fn global_data_programs_are_found_and_can_be_left_out() {
    let mut w = writer(Architecture::Bpf);
    let rodata = data(&mut w, ".rodata", b"hello\0\0\0");
    let code = [&LD_IMM64_R1[..], &MOV_R0_0, &EXIT].concat();
    let uses = program(&mut w, "kprobe/a", "uses_rodata", &code);
    program(&mut w, "kprobe/b", "plain", &[MOV_R0_0, EXIT].concat());
    let sym = w.section_symbol(rodata);
    w.add_relocation(
        uses,
        Relocation {
            offset: 0,
            symbol: sym,
            addend: 0,
            flags: RelocationFlags::Elf { r_type: 1 },
        },
    )
    .unwrap();
    data(&mut w, "license", b"GPL\0");
    let obj = Object::parse("fab", w.write().unwrap()).unwrap();
    let left_out = obj.global_data_programs();
    assert_eq!(left_out.len(), 1, "{left_out:?}");
    assert_eq!(left_out[0].symbol, "uses_rodata");
    assert_eq!(left_out[0].section, "kprobe/a");
    assert!(left_out[0].what.contains(".rodata"), "{left_out:?}");
    let plan = AyaPlan {
        as_data: vec![left_out[0].section.clone()],
        ..AyaPlan::default()
    };
    let out = obj.aya_bytes(&plan).unwrap();
    let file = elf::open(&out).unwrap();
    assert_ne!(
        section_named(&file, "kprobe/a").unwrap().kind(),
        SectionKind::Text
    );
    assert_eq!(
        section_named(&file, "kprobe/b").unwrap().kind(),
        SectionKind::Text
    );
}

#[test]
fn a_map_type_newer_than_the_kernel_is_named() {
    let obj = Object::parse("fab", tracepoint_object()).unwrap();
    let hint = obj.map_type_hint("counts", (4, 4)).unwrap();
    assert!(hint.contains("percpu_array maps need Linux 4.6"), "{hint}");
    assert!(hint.contains("this kernel is 4.4"), "{hint}");
    assert_eq!(obj.map_type_hint("counts", (4, 15)), None);
    assert_eq!(obj.map_type_hint("nope", (4, 4)), None);
}

#[test]
fn host_objects_and_broken_symbols_are_refused() {
    let mut w = writer(Architecture::X86_64);
    program(&mut w, "kprobe/x", "x", &[MOV_R0_0, EXIT].concat());
    let e = Object::parse("host", w.write().unwrap()).unwrap_err();
    assert!(e.to_string().contains("not EM_BPF"), "{e}");

    let mut w = writer(Architecture::Bpf);
    let id = program(&mut w, "kprobe/x", "x", &[MOV_R0_0, EXIT].concat());
    w.add_symbol(Symbol {
        name: b"beyond".to_vec(),
        value: 8,
        size: 64,
        kind: SymbolKind::Text,
        scope: SymbolScope::Linkage,
        weak: false,
        section: SymbolSection::Section(id),
        flags: SymbolFlags::None,
    });
    let e = Object::parse("broken", w.write().unwrap()).unwrap_err();
    assert!(
        e.to_string()
            .contains("beyond lies outside section kprobe/x"),
        "{e}"
    );
}
